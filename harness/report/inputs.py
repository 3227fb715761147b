"""What ``harness report`` reads, checked: results.csv, run.json and figures/manifest.json of a results folder.

Partial or foreign data is refused with one line (exit 2): a results.csv cut mid-row or empty,
a run.json cut short or missing fields, row counts that disagree with run.json, a file whose
checksum differs from the one the run recorded, and figure entries that are not plain names of
files inside ``figures/`` (absolute, ``..``, links leading out).
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import OutputError
from harness.ownership import check_unchanged

if TYPE_CHECKING:
    import pandas as pd

RUN_FIELDS = ("protocol", "counts", "jobs", "dataset", "versions")
RESULT_COLUMNS = ("model", "category")
FIGURE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
FIGURE_KINDS = ("figure", "table")


def _refuse(path: Path, why: str) -> OutputError:
    return OutputError(f"{path}: {why}; rerun `harness run` to write complete results")


def _read_json(path: Path, kind: type, what: str) -> Any:
    """The JSON value in ``path``, refused unless it parses and is a ``kind`` (``what`` names it in the error)."""
    try:
        value = json.loads(path.read_text(errors="replace"))
    except ValueError as exc:
        raise _refuse(path, f"is not valid JSON (cut short?): {exc}") from None
    if not isinstance(value, kind):
        raise _refuse(path, f"is not {what}")
    return value


def read_results(path: Path) -> pd.DataFrame:
    """results.csv, whole and parseable: a header, at least one row, every row as long as the header."""
    import pandas as pd

    text = path.read_text(errors="replace")
    if not text.strip():
        raise _refuse(path, "is empty")
    if not text.endswith("\n"):
        raise _refuse(path, "ends mid-row (cut short)")
    rows = list(csv.reader(io.StringIO(text)))
    header = rows[0]
    missing = [c for c in RESULT_COLUMNS if c not in header]
    if missing:
        raise _refuse(path, f"lacks the column(s) {', '.join(missing)} the harness writes")
    if len(rows) < 2:
        raise _refuse(path, "has a header but no rows")
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise _refuse(path, f"line {number} has {len(row)} fields, the header {len(header)}")
    try:
        frame = pd.read_csv(path, keep_default_na=True)
    except (ValueError, pd.errors.ParserError) as exc:
        raise _refuse(path, f"cannot be parsed ({str(exc).splitlines()[0]})") from None
    if "error" in frame:
        frame["error"] = frame["error"].fillna("")
    return frame


def read_run(path: Path) -> dict[str, Any]:
    """run.json, whole: valid JSON with the fields and job counts the harness writes."""
    run = _read_json(path, dict, "a run record")
    missing = [name for name in RUN_FIELDS if name not in run]
    if missing:
        raise _refuse(path, f"lacks the field(s) {', '.join(missing)}")
    counts = run["counts"]
    if not isinstance(counts, dict) or not all(isinstance(counts.get(k), int) for k in ("fitted", "cached", "failed")):
        raise _refuse(path, "has no job counts (counts.fitted, counts.cached, counts.failed)")
    if not isinstance(run["jobs"], list) or len(run["jobs"]) != sum(counts[k] for k in ("fitted", "cached", "failed")):
        raise _refuse(path, "lists another number of jobs than its counts")
    if not isinstance(run["protocol"], str):
        raise _refuse(path, "names no protocol")
    supervision = run.get("supervision") or {}
    if supervision and not (
        isinstance(supervision, dict) and isinstance(supervision.get("anomaly_train_fraction"), (int, float))
    ):
        raise _refuse(path, "has a supervision record without a numeric anomaly_train_fraction")
    return run


def check_consistent(rows: pd.DataFrame, run: dict[str, Any], path: Path) -> None:
    """Rows of results.csv against run.json: as many failed jobs, and a row for every model that ran."""
    failed = int((rows["status"] == "failed").sum()) if "status" in rows else 0
    if failed != run["counts"]["failed"]:
        raise _refuse(path, f"holds {failed} failed job row(s), run.json counts {run['counts']['failed']}")
    ran = {str(job.get("model")) for job in run["jobs"] if isinstance(job, dict) and job.get("status") != "failed"}
    missing = sorted(ran - set(rows["model"].astype(str)))
    if missing:
        raise _refuse(path, f"has no rows for model(s) {', '.join(missing)} that run.json says ran")


def read_manifest(figure_dir: Path) -> list[dict[str, Any]]:
    """figures/manifest.json: each entry a plain file name inside ``figure_dir`` (missing files are skipped)."""
    path = figure_dir / "manifest.json"
    if not path.is_file():
        return []
    entries = _read_json(path, list, "a list of figures")
    return [entry for entry in (_figure(entry, figure_dir, path) for entry in entries) if entry is not None]


def _figure(entry: Any, figure_dir: Path, manifest: Path) -> dict[str, Any] | None:
    if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
        raise _refuse(manifest, f"has an entry without a file name: {str(entry)[:80]}")
    name = entry["file"]
    if not FIGURE_NAME.match(name) or ".." in name:
        raise OutputError(
            f"{manifest}: figure file {name!r} is not a plain name inside figures/ (absolute, '..' or a folder); "
            "the harness reads only files it wrote into the results folder"
        )
    target = figure_dir / name
    if target.is_symlink() or (target.exists() and figure_dir.resolve() not in target.resolve().parents):
        raise OutputError(f"{manifest}: figure file {name!r} is a link; the harness reads only files it wrote")
    if not target.is_file():
        return None
    kind = entry.get("kind", "figure")
    if kind not in FIGURE_KINDS:
        raise _refuse(manifest, f"figure {name!r} has kind {kind!r}; expected one of {', '.join(FIGURE_KINDS)}")
    text = {k: (None if entry.get(k) is None else str(entry[k])) for k in ("category", "model")}
    return {**entry, **text, "file": name, "caption": str(entry.get("caption", "")), "kind": kind}


def load_results(out: Path) -> tuple[pd.DataFrame, dict[str, Any], list[dict[str, Any]]]:
    """``results.csv``, ``run.json`` and the figure manifest of a results folder, each checked whole."""
    import pandas as pd

    results_path, run_path = out / "results.csv", out / "run.json"
    if not results_path.is_file() or not run_path.is_file():
        raise OutputError(
            f"{out} holds no finished run (results.csv and run.json); run `harness run PROTOCOL --out {out}` first"
        )
    for name in ("results.csv", "summary.csv", "run.json", "figures/manifest.json"):
        if (out / name).is_file():
            check_unchanged(out, name)
    rows, run = read_results(results_path), read_run(run_path)
    check_consistent(rows, run, results_path)
    if (out / "summary.csv").is_file():  # the kind's aggregate rows, beside the per-job ones
        rows = pd.concat([rows, read_results(out / "summary.csv")], ignore_index=True)
    return rows, run, read_manifest(out / "figures")
