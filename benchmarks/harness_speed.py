"""The harness' own time, measured as a user pays it: whole ``harness`` processes, one after another.

Cases (issue "the harness' own time near zero"), each against its target:

- start-up of ``harness --help``, ``validate``, ``list models`` and ``plugins`` (under 0.5 s);
- the README's main job (``harness run protocols/kde_vs_test.yaml``) cold, then again with every
  job cached (at least 20x faster), then ``harness report`` on its output (under 1 s);
- partial_anomaly over 15 categories answered from the cache (under 2 s);
- a real category (magnetic tile, 256 px, PaDiM from random init): the harness' own share of the
  wall time, i.e. everything but the fit and scoring times that run.json records (at most 15 %);
- a detector that costs nothing on magnetic tile at 256 px: cold (under 15 s), cached (under 3 s),
  peak memory (under 1.5 GB), and peak memory with 1 vs 15 categories (does not grow).

    python benchmarks/harness_speed.py                 # print the table
    python benchmarks/harness_speed.py --write-readme  # and write it into README.md

The magnetic-tile cases need ``../shared/data/magnetic_tile`` ("Saliency of magnetic tile surface
defects", Huang, Qiu and Yuan, 2020) and are skipped without it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
MAGNETIC_TILE = REPO.parent / "shared" / "data" / "magnetic_tile"
MARKERS = ("<!-- harness-speed:start -->", "<!-- harness-speed:end -->")
ZERO_COST = [{"name": "zero_cost"}]
PADIM = [{"name": "padim", "options": {"backbone": "resnet18", "pre_trained": False, "n_features": 64}}]


@dataclass
class Measure:
    """One case: what was measured, its value, the target and whether it was met."""

    case: str
    value: str
    target: str
    met: bool | None


@dataclass
class Process:
    """A finished ``harness`` process: wall seconds and peak resident memory (MB)."""

    seconds: float
    peak_mb: float


def harness(args: list[str], env: dict[str, str]) -> Process:
    """Run ``harness ARGS`` as a whole process; its own peak RSS comes from wait4."""
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    output = child.stdout.read() if child.stdout else b""
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode not in (0, 1):
        tail = output.decode(errors="replace").strip().splitlines()[-3:]
        raise RuntimeError(f"harness {' '.join(args)} exited {child.returncode}: {' | '.join(tail)}")
    return Process(seconds, usage.ru_maxrss / 1024)


def environment(home: Path) -> dict[str, str]:
    """A fresh HARNESS_HOME, offline settings, and the zero-cost plugin importable."""
    env = dict(os.environ)
    path = [str(REPO / "benchmarks"), env.get("PYTHONPATH", "")]
    env.update(
        HARNESS_HOME=str(home),
        HARNESS_PLUGINS="zero_cost_plugin",
        PYTHONPATH=os.pathsep.join(p for p in path if p),
        HF_HUB_OFFLINE="1",
        YOLO_OFFLINE="1",
    )
    return env


def protocol_file(folder: Path, name: str, base: str, changes: dict[str, object]) -> Path:
    """A shipped protocol with top-level ``changes`` (dataset and models), written to ``folder``."""
    data = yaml.safe_load((REPO / "protocols" / base).read_text())
    data.update(changes)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def magnetic_tile_dataset(size: int) -> dict[str, object]:
    """The README's folder-layout spelling of the magnetic tile set."""
    types = {"blowhole": "Blowhole", "break": "Break", "crack": "Crack", "fray": "Fray", "uneven": "Uneven"}
    return {
        "layout": "folder",
        "root": str(MAGNETIC_TILE),
        "image_size": size,
        "options": {
            "category": "magnetic_tile",
            "normal_dir": "MT_Free/Imgs",
            "abnormal_dirs": {k: f"MT_{v}/Imgs" for k, v in types.items()},
            "image_pattern": "*.jpg",
            "mask_pattern": "{stem}.png",
        },
    }


def many_categories(home: Path, target: Path, count: int) -> Path:
    """An MVTec-shaped tree of ``count`` categories, copies of the embedded dataset's three."""
    sys.path.insert(0, str(REPO))
    os.environ["HARNESS_HOME"] = str(home)
    from harness.data.synthetic import CATEGORIES, ensure_generated

    source = ensure_generated()
    for index in range(count):
        shutil.copytree(source / CATEGORIES[index % len(CATEGORIES)], target / f"category_{index:02d}")
    return target


def startup(work: Path) -> list[Measure]:
    """Median of three start-ups of the commands that run no model."""
    env = environment(work / "home-startup")
    cases = {
        "`harness --help`": ["--help"],
        "`harness validate` (main protocol)": ["validate", str(REPO / "protocols" / "kde_vs_test.yaml")],
        "`harness list models`": ["list", "models"],
        "`harness plugins`": ["plugins"],
    }
    harness(["--help"], env)  # warm the file-system cache once
    measures = []
    for name, args in cases.items():
        seconds = statistics.median(harness(args, env).seconds for _ in range(3))
        measures.append(Measure(f"start-up: {name}", f"{seconds:.2f} s", "< 0.5 s", seconds < 0.5))
    return measures


def main_job(work: Path) -> list[Measure]:
    """The README's main command cold, cached, and ``harness report`` on its output."""
    env = environment(work / "home-main")
    out = work / "main-out"
    args = ["run", str(REPO / "protocols" / "kde_vs_test.yaml"), "--out", str(out)]
    cold = harness(args, env)
    cached = harness(args, env)
    report = statistics.median(harness(["report", str(out)], env).seconds for _ in range(3))
    ratio = cold.seconds / cached.seconds
    return [
        Measure("main job, cold (fit + score + analyse + report)", f"{cold.seconds:.1f} s", "-", None),
        Measure("main job, every job cached", f"{cached.seconds:.2f} s ({ratio:.1f}x faster)", ">= 20x", ratio >= 20),
        Measure("`harness report` on its output", f"{report:.2f} s", "< 1 s", report < 1),
        Measure("main job, cold, peak memory", f"{cold.peak_mb:.0f} MB", "-", None),
    ]


def partial_anomaly_15(work: Path) -> list[Measure]:
    """kde_vs_test fills the cache for 15 categories; partial_anomaly then answers from it."""
    home = work / "home-15"
    env = environment(home)
    root = many_categories(home, work / "fifteen", 15)
    dataset = {"layout": "mvtec", "root": str(root), "image_size": 128}
    kde = protocol_file(work, "kde15", "kde_vs_test.yaml", {"dataset": dataset, "models": ZERO_COST})
    partial = protocol_file(work, "partial15", "partial_anomaly.yaml", {"dataset": dataset, "models": ZERO_COST})
    fifteen = harness(["run", str(kde), "--out", str(work / "kde15-out")], env)
    harness(["run", str(partial), "--out", str(work / "partial15-out")], env)  # its own figures, once
    again = harness(["run", str(partial), "--out", str(work / "partial15-out")], env)
    dataset_one = {**dataset, "categories": ["category_00"]}
    one = protocol_file(work, "kde1", "kde_vs_test.yaml", {"dataset": dataset_one, "models": ZERO_COST})
    single = harness(["run", str(one), "--out", str(work / "kde1-out")], env)
    growth = fifteen.peak_mb / single.peak_mb
    return [
        Measure("partial_anomaly, 15 categories, from the cache", f"{again.seconds:.2f} s", "< 2 s", again.seconds < 2),
        Measure(
            "zero-cost detector, peak memory 15 vs 1 categories",
            f"{fifteen.peak_mb:.0f} / {single.peak_mb:.0f} MB ({growth:.2f}x)",
            "does not grow (< 1.25x)",
            growth < 1.25,
        ),
    ]


def magnetic_tile(work: Path) -> list[Measure]:
    """PaDiM and the zero-cost detector on the real magnetic tile set at 256 px."""
    if not MAGNETIC_TILE.is_dir():
        return [Measure("magnetic tile cases", "skipped: ../shared/data/magnetic_tile not present", "-", None)]
    env = environment(work / "home-mt")
    dataset = magnetic_tile_dataset(256)
    padim = protocol_file(work, "mt-padim", "kde_vs_test.yaml", {"dataset": dataset, "models": PADIM})
    run = harness(["run", str(padim), "--out", str(work / "mt-padim")], env)
    jobs = json.loads((work / "mt-padim" / "run.json").read_text())["jobs"]
    model_seconds = sum((j.get("fit_seconds") or 0) + (j.get("score_seconds") or 0) for j in jobs)
    share = 1 - model_seconds / run.seconds
    zero = protocol_file(work, "mt-zero", "kde_vs_test.yaml", {"dataset": dataset, "models": ZERO_COST})
    cold = harness(["run", str(zero), "--out", str(work / "mt-zero")], env)
    cached = harness(["run", str(zero), "--out", str(work / "mt-zero")], env)
    return [
        Measure(
            "PaDiM, magnetic tile 256 px: harness' own share of the wall time",
            f"{100 * share:.0f} % of {run.seconds:.1f} s (model {model_seconds:.1f} s)",
            "<= 15 %",
            share <= 0.15,
        ),
        Measure("zero-cost detector, magnetic tile 256 px, cold", f"{cold.seconds:.1f} s", "< 15 s", cold.seconds < 15),
        Measure(
            "zero-cost detector, magnetic tile 256 px, cached", f"{cached.seconds:.2f} s", "< 3 s", cached.seconds < 3
        ),
        Measure(
            "zero-cost detector, magnetic tile 256 px, peak memory",
            f"{cold.peak_mb:.0f} MB",
            "< 1.5 GB",
            cold.peak_mb < 1536,
        ),
    ]


def table(measures: list[Measure]) -> str:
    """The Markdown table the README shows, with the machine it was measured on."""
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}"
    lines = [
        f"Measured by `python benchmarks/harness_speed.py --write-readme` on {time.strftime('%Y-%m-%d')} "
        f"({machine}; no GPU unless named).",
        "",
        "| case | measured | target | met |",
        "|---|---|---|---|",
    ]
    marks = {True: "yes", False: "**no**", None: ""}
    lines += [f"| {m.case} | {m.value} | {m.target} | {marks[m.met]} |" for m in measures]
    return "\n".join(lines)


def write_readme(text: str) -> None:
    """Replace the text between the README's harness-speed markers."""
    readme = REPO / "README.md"
    content = readme.read_text()
    start, end = (content.index(marker) for marker in MARKERS)
    readme.write_text(content[: start + len(MARKERS[0])] + "\n" + text + "\n" + content[end:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-readme", action="store_true", help="write the table into README.md")
    parser.add_argument("--skip-real", action="store_true", help="skip the magnetic tile cases")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="harness-speed-") as folder:
        work = Path(folder)
        measures = startup(work) + main_job(work) + partial_anomaly_15(work)
        if not options.skip_real:
            measures += magnetic_tile(work)
    text = table(measures)
    print(text)
    if options.write_readme:
        write_readme(text)


if __name__ == "__main__":
    main()
