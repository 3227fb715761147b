r"""``report.tex`` and one ``\input``-able file per table under ``tables/``, for papers.

Every table is a complete ``table`` float with ``\caption`` and ``\label{tab:...}`` (booktabs);
``report.tex`` only ``\input``s them, so ``\input{results/kde_vs_test/tables/leaderboard}`` drops
the same table into a paper. Figures are included as PDF (vector) where the run wrote one.
Text is escaped for LaTeX; characters beyond what ``inputenc``/T1 typesets (e.g. CJK) are
transliterated or spelled as code points, so any model or category name compiles.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.store import write_atomic

if TYPE_CHECKING:
    import pandas as pd
    from jinja2 import Environment, Template

TABLES = "tables"
SYMBOLS = {"↑": r"$\uparrow$", "↓": r"$\downarrow$", "×": r"$\times$", "±": r"$\pm$", "≥": r"$\geq$", "≤": r"$\leq$"}
_UNTYPESETTABLE = re.compile(rf"[^\u0000-\u017f\u2013\u2014\u2018\u2019\u201c\u201d{''.join(SYMBOLS)}]")
"""Characters beyond Latin-1 and Latin Extended-A (utf8 inputenc with T1 fonts), dashes, quotes and :data:`SYMBOLS`."""


def _ascii(match: re.Match[str]) -> str:
    """An untypesettable character transliterated (``ﬁ`` as ``fi``), else spelled as its code point."""
    return unicodedata.normalize("NFKD", match[0]).encode("ascii", "ignore").decode() or f"[U+{ord(match[0]):04X}]"


LATEX_SPECIALS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


class _Escaped(str):
    """Text already escaped for LaTeX (escaping it again is a no-op)."""

    __slots__ = ()


def latex_escape(text: object) -> str:
    """Escape LaTeX special characters in ``text`` (control characters dropped)."""
    if isinstance(text, _Escaped):
        return text
    return _Escaped("".join(LATEX_SPECIALS.get(ch, ch) for ch in str(text) if ch >= " " or ch in "\t"))


def _escaped_tree(value: Any) -> Any:
    """Every string in a JSON tree (run.json, which may come from anyone) escaped for LaTeX; numbers kept."""
    if isinstance(value, dict):
        return {k: _escaped_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_escaped_tree(v) for v in value]
    if isinstance(value, (bool, int, float)) or value is None:
        return value
    return tex(value)


def tex(text: object) -> str:
    """``text`` escaped for LaTeX and reduced to characters pdflatex can typeset (once: escaped text is kept)."""
    if isinstance(text, _Escaped):
        return text
    escaped = latex_escape(_UNTYPESETTABLE.sub(_ascii, str(text)))
    for symbol, command in SYMBOLS.items():
        escaped = escaped.replace(symbol, command)
    return _Escaped(escaped)


def slug(text: str) -> str:
    """A label- and file-name-safe form of ``text``."""
    ascii_text = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Za-z0-9]+", "-", ascii_text).strip("-").lower() or "x"


def _latex_environment(**options: Any) -> Environment:
    r"""Jinja2 for the LaTeX templates: ``\BLOCK{}``, ``\VAR{}`` and ``\#{}`` delimiters, nothing autoescaped."""
    from harness.report import _environment

    delimiters = {"block_start_string": r"\BLOCK{", "variable_start_string": r"\VAR{", "comment_start_string": r"\#{"}
    ends = {"block_end_string": "}", "variable_end_string": "}", "comment_end_string": "}"}
    return _environment(autoescape=False, **delimiters, **ends, **options)


@functools.cache
def _table_template() -> Template:
    return _latex_environment(keep_trailing_newline=True).get_template("table.tex.j2")


def table_tex(table: dict[str, Any], caption: str, label: str) -> str:
    """A booktabs ``table`` float (``reports/table.tex.j2``) from a rendered table (``spec``, ``headers``, ``rows``)."""
    return _table_template().render(table=table, caption=caption, label=label)


def latex_table(frame: pd.DataFrame, columns: list[str]) -> dict[str, Any]:
    """Column spec, escaped headers and cells of ``frame[columns]`` (oracle rows marked)."""
    import pandas as pd

    from harness.report import _header, _value, _with_intervals, row_records

    frame = _with_intervals(frame)
    columns = [c for c in columns if c in frame.columns]
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) and frame[c].dtype != bool for c in columns]
    body = []
    for row in row_records(frame):
        cells = [tex(_value(row, c)).replace("–", "--") for c in columns]
        if row.get("oracle", False) is True and "calibration" in columns:
            cells[columns.index("calibration")] += " (oracle)"
        body.append(cells)
    headers = [tex(_header(c)) for c in columns]
    return {"spec": "".join("r" if n else "l" for n in numeric), "headers": headers, "rows": body}


def finding_table(finding: Any) -> dict[str, Any] | None:
    """The finding's table in the same shape, or None when it has none."""
    from harness.report.layout import fmt

    if not finding.rows:
        return None
    rows = [
        [tex(fmt(v, c)).replace("–", "--") for v, c in zip(row, finding.columns, strict=True)] for row in finding.rows
    ]
    spec = "".join("l" if isinstance(v, str) else "r" for v in finding.rows[0])
    return {"spec": spec, "headers": [tex(h) for h in finding.headers], "rows": rows}


def _figure_file(entry: dict[str, Any], figure_dir: Path) -> str:
    pdf = Path(entry["file"]).with_suffix(".pdf")
    return f"figures/{pdf.as_posix()}" if (figure_dir / pdf).is_file() else f"figures/{entry['file']}"


def report_tables(out: Path) -> list[str]:
    """The table files a report in ``out`` has (``tables/*.tex``), as paths relative to ``out``."""
    return sorted(f"{TABLES}/{p.name}" for p in (out / TABLES).glob("*.tex")) if (out / TABLES).is_dir() else []


class LatexWriter:
    """Writes ``tables/*.tex`` for one report and collects what ``report.tex`` inputs, in order."""

    def __init__(self, target: Path, protocol: str) -> None:
        self.folder = target / TABLES
        self.prefix = slug(protocol)
        self.names: set[str] = set()
        self.written: list[Path] = []

    def table(self, name: str, table: dict[str, Any], caption: str) -> dict[str, str]:
        """Write ``tables/<name>.tex`` (a unique name); the item ``report.tex`` inputs."""
        base = name = slug(name)
        index = 2
        while name in self.names:  # x, x-2, x-3, ...
            name, index = f"{base}-{index}", index + 1
        self.names.add(name)
        write_atomic(self.folder / f"{name}.tex", table_tex(table, caption, f"tab:{self.prefix}-{name}"))
        self.written.append(self.folder / f"{name}.tex")
        return {"input": f"{TABLES}/{name}"}

    def items(self, manifest: list[dict[str, Any]], category: str | None, figure_dir: Path) -> list[dict[str, str]]:
        """The figures (PDF where written) and tables (CSV rendered to ``tables/``) of one section."""
        import pandas as pd

        items = []
        for entry in [e for e in manifest if e.get("category") == category and (figure_dir / e["file"]).is_file()]:
            caption = tex(entry["caption"])
            if entry.get("kind") == "table":
                frame = pd.read_csv(figure_dir / entry["file"])
                items.append(self.table(Path(entry["file"]).stem, latex_table(frame, list(frame.columns)), caption))
            else:
                label = f"fig:{self.prefix}-{slug(Path(entry['file']).stem)}"
                items.append({"figure": _figure_file(entry, figure_dir), "caption": caption, "label": label})
        return items


def _section(section: Any, writer: LatexWriter) -> dict[str, Any]:
    """A plugin's :class:`~harness.contract.ReportSection`, escaped; its table written to ``tables/``."""
    table = section.table
    rendered = latex_table(table, list(table.columns)) if table is not None else None
    return {
        "title": tex(section.title),
        "paragraphs": [tex(p.strip()) for p in section.text.split("\n\n") if p.strip()],
        "table": writer.table(f"section-{section.title}", rendered, tex(section.title)) if rendered else None,
    }


def render_latex(
    context: dict[str, Any], ok: pd.DataFrame, manifest: list[dict[str, Any]], figure_dir: Path, target: Path
) -> tuple[str, list[Path]]:
    """Write the report's tables under ``target/tables``; return ``report.tex`` (which inputs them) and the tables."""
    analysis, summary, run = context["analysis"], context["summary"], context["run"]
    writer = LatexWriter(target, run["protocol"])
    finding = context.get("finding")
    found = finding_table(finding) if finding is not None else None
    finding_item = writer.table("finding", found, tex(finding.headline)) if found else None
    leaderboard = None
    if not summary.empty:
        columns = analysis.columns("latex", summary)
        note = getattr(analysis, "leaderboard_note", "Summary over categories and seeds.")
        caption = tex(f"{note} ↑ higher is better, ↓ lower is better.")
        leaderboard = writer.table("leaderboard", latex_table(summary, columns), caption)
    detail = analysis.columns("detail", ok)
    per_category = [
        {
            "name": tex(name),
            "table": writer.table(f"category-{name}", latex_table(ok[ok["category"] == name], detail), tex(name)),
            "entries": writer.items(manifest, name, figure_dir),
        }
        for name in context["categories"]
    ]
    template = _latex_environment().get_template("report.tex.j2")
    text = template.render(
        title=tex(context["title"]),
        description=tex(analysis.description),
        headline=tex(finding.headline) if finding is not None else "",
        finding=finding_item,
        run=_escaped_tree(run),
        esc=tex,
        leaderboard=leaderboard,
        entries=writer.items(manifest, None, figure_dir),
        per_category=per_category,
        sections=[_section(section, writer) for section in context.get("sections", [])],
    )
    return text, writer.written
