"""Protocol files by path or by name: the shipped protocols are package data (``harness/protocols``).

``harness run kde_vs_test`` finds ``harness/protocols/kde_vs_test.yaml`` in the installed package;
a path to an existing file always wins over a shipped name, as in lm-evaluation-harness.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import yaml

from harness.errors import ProtocolError
from harness.names import unknown_message


def shipped_protocols() -> dict[str, Path]:
    """Shipped protocol name (file stem) -> file, from the protocols installed with the package."""
    folder = Path(str(files("harness") / "protocols"))
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))} if folder.is_dir() else {}


def resolve_protocol_path(text: str | Path) -> Path:
    """``text`` as an existing file, else the shipped protocol of that name (``kde_vs_test[.yaml]``)."""
    path = Path(text)
    if path.is_file():
        return path
    shipped = shipped_protocols()
    name = path.name[: -len(path.suffix)] if path.suffix in (".yaml", ".yml") else path.name
    if path.parent == Path(".") and name in shipped:
        return shipped[name]
    raise ProtocolError(
        f"protocol file {text} not found and it is not a shipped protocol; "
        + unknown_message("protocol", name, shipped).split(". ", 1)[-1]
        + " (`harness list protocols` describes them)"
    )


def describe(path: Path) -> str:
    """One line about a protocol file: its ``title``, else its first comment line."""
    text = path.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        data = None
    if isinstance(data, dict) and data.get("title"):
        return str(data["title"])
    comment = next((line.lstrip("# ").strip() for line in text.splitlines() if line.startswith("#")), "")
    return comment or (str(data.get("protocol", "")) if isinstance(data, dict) else "")
