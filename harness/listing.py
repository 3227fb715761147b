"""What ``harness list KIND`` shows: one record per entry, printed as a table with headers or as JSON."""

from __future__ import annotations

from typing import Any

from harness.plugins import Plugins


def _call(entry: Any, method: str) -> Any:
    """``entry.method()`` when the entry has it (wrapped or duck-typed), else None."""
    function = getattr(entry, method, None)
    return function() if callable(function) else None


def entry_rows(plugins: Plugins, kind: str) -> list[dict[str, Any]]:
    """One record per registered model, dataset layout or calibration: name, plugin, status, notes."""
    rows = []
    for name, entry in sorted(plugins.registry(kind).items()):
        reason = _call(entry, "reason_unavailable") or _call(entry, "why_unavailable")
        download = _call(entry, "default_download") or _call(getattr(entry, "factory", None), "default_download")
        row: dict[str, Any] = {"name": name, "plugin": plugins.owner(kind, name).name}
        row["status"] = f"cannot run here: {reason}" if reason else "ok"
        if kind == "models":
            row["download"] = download or ""
        if kind == "calibrations":
            row["oracle"] = bool(getattr(entry, "oracle", False))
        if kind == "metrics":
            row["status"] = f"{entry.level} level, {'higher' if entry.higher_is_better else 'lower'} is better"
        rows.append(row)
    return rows


def protocol_rows(plugins: Plugins) -> list[dict[str, Any]]:
    """One record per shipped protocol file (name, kind, title) and per registered protocol kind."""
    import yaml

    from harness.protocol_files import describe, shipped_protocols

    rows = []
    for name, path in shipped_protocols().items():
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        rows.append({"name": name, "type": "file", "kind": str(data.get("protocol", "")), "about": describe(path)})
    for name, analysis in sorted(plugins.registry("protocols").items()):
        owner = plugins.owner("protocols", name).name
        rows.append({"name": name, "type": "kind", "kind": name, "about": f"{analysis.title} [{owner}]"})
    return rows


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """Rows as a fixed-width table with an upper-case header line; the last column is not padded."""
    widths = [max([len(c), *(len(str(r.get(c, ""))) for r in rows)]) for c in columns]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    for row in rows:
        lines.append("  ".join(str(row.get(c, "")).ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    return "\n".join(lines)
