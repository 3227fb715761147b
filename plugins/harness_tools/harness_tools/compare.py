"""``harness compare OUT1 OUT2 ...``: one leaderboard over several finished runs of the same protocol.

Nothing is rerun: each output folder's stored results are summarised by its protocol kind and
stacked with a ``run`` column, with the change in the primary metric against the first run. Runs
whose protocol version, harness version or data fingerprints differ are compared all the same,
but every difference is listed at the top of the HTML and LaTeX outputs and in ``compare.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from harness import HarnessError, write_atomic
from harness.runs import run_identity

IDENTITY_CHECKS = {"protocol_version": "protocol version", "harness_version": "harness version"}


@dataclass
class Comparison:
    """The stacked leaderboard, its columns, the runs' identities and the differences between them."""

    protocol: str
    table: pd.DataFrame
    columns: list[str]
    runs: list[dict[str, Any]]
    differences: list[str] = field(default_factory=list)
    metric: str | None = None


def _label(out: Path, taken: set[str]) -> str:
    label, index = out.name or str(out), 2
    while label in taken:
        label, index = f"{out.name}-{index}", index + 1
    return label


def differences(runs: list[dict[str, Any]]) -> list[str]:
    """One sentence per way the runs differ from the first: versions, data fingerprints, categories."""
    first, found = runs[0], []
    for run in runs[1:]:
        for key, name in IDENTITY_CHECKS.items():
            if run[key] != first[key]:
                found.append(f"{name}: {first['run']} has {first[key]}, {run['run']} has {run[key]}")
        ours, theirs = first["data_fingerprints"], run["data_fingerprints"]
        changed = sorted(c for c in set(ours) & set(theirs) if ours[c] != theirs[c])
        if changed:
            found.append(f"data fingerprint differs between {first['run']} and {run['run']} for {', '.join(changed)}")
        if set(ours) != set(theirs):
            found.append(
                f"categories differ: {first['run']} has {', '.join(sorted(ours))}; {run['run']} has "
                f"{', '.join(sorted(theirs))}"
            )
    return found


def compare_runs(outs: list[Path]) -> Comparison:
    """Summarise each output folder and stack the leaderboards; refuse runs of different protocol kinds."""
    from harness.runs import get_plugins, load_results, primary_metric

    if len(outs) < 2:
        raise HarnessError("compare needs at least two output folders, e.g. `harness compare results/a results/b`")
    loaded = [(out, *load_results(out)[:2]) for out in outs]
    kinds = {run["protocol"] for _, _, run in loaded}
    if len(kinds) > 1:
        listing = ", ".join(f"{out} ({run['protocol']})" for out, _, run in loaded)
        raise HarnessError(f"compare takes runs of one protocol kind; got {listing}")
    analysis = get_plugins().analysis(kinds.pop(), key="protocol (from run.json)")
    frames, runs, taken = [], [], set()
    for out, rows, run in loaded:
        label = _label(out, taken)
        taken.add(label)
        runs.append({"run": label, "folder": str(out), **run_identity(run)})
        frames.append(analysis.summarise(rows).assign(run=label))
    table = pd.concat(frames, ignore_index=True)
    columns = ["run", *analysis.columns("leaderboard", table)]
    metric = "f1" if "oracle" in table and "f1" in table else primary_metric(table)
    if metric is not None:
        table = _with_delta(table, metric, runs[0]["run"])
        columns.insert(columns.index(metric) + 1 if metric in columns else len(columns), f"delta_{metric}")
    return Comparison(runs[0]["protocol"], table, columns, runs, differences(runs), metric)


def _with_delta(table: pd.DataFrame, metric: str, baseline: str) -> pd.DataFrame:
    """``delta_<metric>``: each row's metric minus the first run's for the same model, calibration, setting."""
    keys = [c for c in ("model", "calibration", "setting", "fraction", "mode") if c in table.columns]
    base = table[table["run"] == baseline][[*keys, metric]].rename(columns={metric: "_base"})
    merged = table.merge(base, on=keys, how="left")
    return merged.assign(**{f"delta_{metric}": merged[metric] - merged["_base"]}).drop(columns="_base")


def _environment() -> Any:
    """Jinja over this package's templates, set up as the harness's report templates are."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    return Environment(
        loader=FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def write_comparison(comparison: Comparison, target: Path) -> list[Path]:
    """``compare.csv``, ``compare.html`` and ``compare.tex`` (+ ``tables/compare.tex``) in ``target``."""
    from harness.runs import LatexWriter, html_table, latex_table, tex

    target.mkdir(parents=True, exist_ok=True)
    columns = [c for c in comparison.columns if c in comparison.table.columns]
    csv = target / "compare.csv"
    write_atomic(csv, comparison.table[columns].to_csv(index=False))
    runs = target / "compare.json"
    document = {"protocol": comparison.protocol, "runs": comparison.runs, "differences": comparison.differences}
    write_atomic(runs, json.dumps(document, indent=1, ensure_ascii=False))
    html = target / "compare.html"
    template = _environment().get_template("compare.html.j2")
    write_atomic(html, template.render(comparison=comparison, leaderboard=html_table(comparison.table, columns)))
    writer = LatexWriter(target, f"compare-{comparison.protocol}")
    caption = tex(f"{comparison.protocol}: runs {', '.join(r['run'] for r in comparison.runs)}.")
    item = writer.table("compare", latex_table(comparison.table, columns), caption)
    notes = "".join(f"\\item {tex(d)}\n" for d in comparison.differences)
    body = f"\\paragraph{{Differences between the runs}}\n\\begin{{itemize}}\n{notes}\\end{{itemize}}\n"
    body = body if notes else ""
    tex_path = target / "compare.tex"
    write_atomic(tex_path, _COMPARE_TEX.replace("%BODY%", body + f"\\input{{{item['input']}}}\n"))
    return [csv, runs, html, tex_path]


_COMPARE_TEX = r"""\documentclass[10pt]{article}
\usepackage[a4paper,margin=2cm,landscape]{geometry}
\usepackage[utf8]{inputenc}
\usepackage[T1]{fontenc}
\usepackage{lmodern}
\usepackage{textcomp}
\usepackage{booktabs}
\usepackage{graphicx}
\begin{document}
%BODY%\end{document}
"""
