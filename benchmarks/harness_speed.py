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

Also: the job's own process per job (9 zero-cost jobs, ``isolate`` true vs false), the harness
against anomalib's Engine (``overhead_vs_engine.py``), 1,500 oracle calibrations in one process
(``partial_anomaly_speed.py``), and with ``--with-tests`` the README's test command.

    python benchmarks/harness_speed.py                 # print the table
    python benchmarks/harness_speed.py --write-readme  # and write it into README.md
    python benchmarks/harness_speed.py --quick         # reduced cases: checks the script, measures nothing
    python benchmarks/harness_speed.py --cases main,isolate   # some cases only

The magnetic-tile cases need ``../shared/data/magnetic_tile`` ("Saliency of magnetic tile surface
defects", Huang, Qiu and Yuan, 2020) and are skipped without it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
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
GENERATED_BY = "Measured by `python benchmarks/harness_speed.py"
ZERO_COST = [{"name": "zero_cost"}]
PADIM = [{"name": "padim", "options": {"backbone": "resnet18", "pre_trained": False, "n_features": 64}}]
MT_TYPES = {"blowhole": "Blowhole", "break": "Break", "crack": "Crack", "fray": "Fray", "uneven": "Uneven"}


@dataclass
class Measure:
    """One case: what was measured, its value, the target and whether it was met."""

    case: str
    value: str
    target: str
    met: bool | None


@dataclass
class Process:
    """A finished ``harness`` process: wall seconds, peak resident memory (MB) and CPU seconds.

    ``cpu_seconds`` (user + system) counts the process and every descendant it waited for: its jobs'
    processes and theirs.
    """

    seconds: float
    peak_mb: float
    cpu_seconds: float = 0.0


@dataclass
class Settings:
    """Full measurement, or ``quick``: reduced cases that check the script end to end."""

    quick: bool = False

    @property
    def repeats(self) -> int:
        return 1 if self.quick else 3

    @property
    def categories(self) -> int:
        return 3 if self.quick else 15


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
    return Process(seconds, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime)


def environment(home: Path) -> dict[str, str]:
    """A fresh HARNESS_HOME, offline settings, the zero-cost plugin importable, and Python's bytecode cache on.

    Python keeps compiled modules (``__pycache__``) by default, and pip compiles installed packages; an
    environment that turns this off (``PYTHONDONTWRITEBYTECODE``, as this project's sandbox does)
    makes every process compile the harness' and its plugins' sources again, 0.1-0.2 s a start that
    no installed user pays. :func:`compile_sources` compiles them once before any case is measured.
    """
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    path = [str(REPO / "benchmarks"), env.get("PYTHONPATH", "")]
    env.update(
        HARNESS_HOME=str(home),
        HARNESS_PLUGINS="zero_cost_plugin",
        PYTHONPATH=os.pathsep.join(p for p in path if p),
        HF_HUB_OFFLINE="1",
        YOLO_OFFLINE="1",
    )
    env.pop("HARNESS_CACHE_DIR", None)  # the cache under each case's own HARNESS_HOME
    return env


def protocol_file(folder: Path, name: str, base: str, changes: dict[str, object]) -> Path:
    """A shipped protocol with top-level ``changes`` (dataset and models), written to ``folder``."""
    data = yaml.safe_load((REPO / "protocols" / base).read_text())
    data.update(changes)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def magnetic_tile_dataset(size: int, root: Path = MAGNETIC_TILE) -> dict[str, object]:
    """The README's folder-layout spelling of the magnetic tile set."""
    return {
        "layout": "folder",
        "root": str(root),
        "image_size": size,
        "options": {
            "category": "magnetic_tile",
            "normal_dir": "MT_Free/Imgs",
            "abnormal_dirs": {k: f"MT_{v}/Imgs" for k, v in MT_TYPES.items()},
            "image_pattern": "*.jpg",
            "mask_pattern": "{stem}.png",
        },
    }


def magnetic_tile_sample(target: Path, normals: int = 120, per_type: int = 6) -> Path:
    """A small copy of the magnetic tile set (the first images of each folder, with their masks)."""
    for folder, count in [("Free", normals), *((v, per_type) for v in MT_TYPES.values())]:
        source, copy = MAGNETIC_TILE / f"MT_{folder}" / "Imgs", target / f"MT_{folder}" / "Imgs"
        copy.mkdir(parents=True)
        for image in sorted(source.glob("*.jpg"))[:count]:
            for path in (image, image.with_suffix(".png")):
                if path.is_file():
                    shutil.copy(path, copy / path.name)
    return target


def many_categories(home: Path, target: Path, count: int) -> Path:
    """An MVTec-shaped tree of ``count`` categories, copies of the embedded dataset's three."""
    sys.path.insert(0, str(REPO))
    os.environ["HARNESS_HOME"] = str(home)
    from harness.data.synthetic import CATEGORIES, ensure_generated

    source = ensure_generated()
    for index in range(count):
        shutil.copytree(source / CATEGORIES[index % len(CATEGORIES)], target / f"category_{index:02d}")
    return target


def startup(work: Path, settings: Settings) -> list[Measure]:
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
        seconds = statistics.median(harness(args, env).seconds for _ in range(settings.repeats))
        measures.append(Measure(f"start-up: {name}", f"{seconds:.2f} s", "< 0.5 s", seconds < 0.5))
    return measures


def main_protocols(work: Path, settings: Settings) -> dict[str, Path]:
    """The shipped kde_vs_test, partial_anomaly and missing_type files (quick: zero-cost, one category)."""
    names = {"kde": "kde_vs_test.yaml", "partial": "partial_anomaly.yaml", "missing": "missing_type.yaml"}
    if not settings.quick:
        return {key: REPO / "protocols" / name for key, name in names.items()}
    changes = {"models": ZERO_COST, "dataset": {"layout": "mvtec", "categories": ["weave"], "image_size": 64}}
    return {key: protocol_file(work, f"quick-{key}", name, changes) for key, name in names.items()}


def main_job(work: Path, settings: Settings) -> list[Measure]:
    """The README's main command cold, cached, ``harness report``, then two protocols from its cache."""
    env = environment(work / "home-main")
    out, files = work / "main-out", main_protocols(work, settings)
    args = ["run", str(files["kde"]), "--out", str(out)]
    cold = harness(args, env)
    cached = harness(args, env)
    report = statistics.median(harness(["report", str(out)], env).seconds for _ in range(settings.repeats))
    partial = harness(["run", str(files["partial"]), "--out", str(work / "main-partial")], env)
    missing = harness(["run", str(files["missing"]), "--out", str(work / "main-missing")], env)
    ratio = cold.seconds / cached.seconds
    return [
        Measure("main job, cold (fit + score + analyse + report)", f"{cold.seconds:.1f} s", "-", None),
        Measure("main job, every job cached", f"{cached.seconds:.2f} s ({ratio:.1f}x faster)", ">= 20x", ratio >= 20),
        Measure("`harness report` on its output", f"{report:.2f} s", "< 1 s", report < 1),
        Measure("main job, cold, peak memory", f"{cold.peak_mb:.0f} MB", "-", None),
        Measure("partial_anomaly after the main job (from the cache)", f"{partial.seconds:.1f} s", "-", None),
        Measure("missing_type after the main job (from the cache)", f"{missing.seconds:.1f} s", "-", None),
    ]


def partial_anomaly_15(work: Path, settings: Settings) -> list[Measure]:
    """kde_vs_test fills the cache for 15 categories; partial_anomaly then answers from it."""
    home, count = work / "home-15", settings.categories
    env = environment(home)
    root = many_categories(home, work / "fifteen", count)
    dataset = {"layout": "mvtec", "root": str(root), "image_size": 128}
    kde = protocol_file(work, "kde15", "kde_vs_test.yaml", {"dataset": dataset, "models": ZERO_COST})
    partial = protocol_file(work, "partial15", "partial_anomaly.yaml", {"dataset": dataset, "models": ZERO_COST})
    many = harness(["run", str(kde), "--out", str(work / "kde15-out")], env)
    harness(["run", str(partial), "--out", str(work / "partial15-out")], env)  # its own figures, once
    again = harness(["run", str(partial), "--out", str(work / "partial15-out")], env)
    dataset_one = {**dataset, "categories": ["category_00"]}
    one = protocol_file(work, "kde1", "kde_vs_test.yaml", {"dataset": dataset_one, "models": ZERO_COST})
    # each cold, in a HARNESS_HOME of its own: like with like (a cached run imports no KDE, metric or plotting
    # library); the peak differs from run to run by about 12 MB, so each side is the median of the repeats
    peaks = {"many": [many.peak_mb], "single": []}
    for index in range(settings.repeats):
        if index:
            home = environment(work / f"home-15-{index}")
            peaks["many"].append(harness(["run", str(kde), "--out", str(work / f"kde15-{index}")], home).peak_mb)
        single = harness(["run", str(one), "--out", str(work / f"kde1-{index}")], environment(work / f"home-1-{index}"))
        peaks["single"].append(single.peak_mb)
    many_mb, single_mb = statistics.median(peaks["many"]), statistics.median(peaks["single"])
    growth = many_mb / single_mb
    return [
        Measure(
            f"partial_anomaly, {count} categories, from the cache", f"{again.seconds:.2f} s", "< 2 s", again.seconds < 2
        ),
        Measure(
            f"zero-cost detector, peak memory {count} vs 1 categories (both cold, median of {settings.repeats})",
            f"{many_mb:.0f} / {single_mb:.0f} MB ({growth:.2f}x; runs: {'/'.join(f'{m:.0f}' for m in peaks['many'])})",
            "does not grow (< 1.25x)",
            growth < 1.25,
        ),
    ]


def magnetic_tile(work: Path, settings: Settings) -> list[Measure]:
    """PaDiM and the zero-cost detector on the real magnetic tile set at 256 px (quick: a sample, 64 px)."""
    if not MAGNETIC_TILE.is_dir():
        return [Measure("magnetic tile cases", "skipped: ../shared/data/magnetic_tile not present", "-", None)]
    env = environment(work / "home-mt")
    size = 64 if settings.quick else 256
    root = magnetic_tile_sample(work / "mt-sample") if settings.quick else MAGNETIC_TILE
    dataset = magnetic_tile_dataset(size, root)
    padim = protocol_file(work, "mt-padim", "kde_vs_test.yaml", {"dataset": dataset, "models": PADIM})
    run = harness(["run", str(padim), "--out", str(work / "mt-padim")], env)
    record = json.loads((work / "mt-padim" / "run.json").read_text())
    model_seconds = sum((j.get("fit_seconds") or 0) + (j.get("score_seconds") or 0) for j in record["jobs"])
    share = 1 - model_seconds / run.seconds
    timings = record["timings"]  # from the run's start: until every job is scored and stored, and to the end
    own = {
        "start-up": run.seconds - timings["total_seconds"],
        "around the fit (planning, imports, hand-over, storing)": timings["scoring_seconds"] - model_seconds,
        "after it (analysis, figures, reports)": timings["total_seconds"] - timings["scoring_seconds"],
    }
    zero = protocol_file(work, "mt-zero", "kde_vs_test.yaml", {"dataset": dataset, "models": ZERO_COST})
    cold = harness(["run", str(zero), "--out", str(work / "mt-zero")], env)
    cached = harness(["run", str(zero), "--out", str(work / "mt-zero")], env)
    return [
        Measure(
            f"PaDiM, magnetic tile {size} px: harness' own share of the wall time",
            f"{100 * share:.0f} % of {run.seconds:.1f} s (model {model_seconds:.1f} s; the cores busy "
            f"{100 * run.cpu_seconds / (run.seconds * (os.cpu_count() or 1)):.0f} % of the run; harness: "
            + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in own.items())
            + ")",
            "<= 15 %",
            share <= 0.15,
        ),
        Measure(
            f"zero-cost detector, magnetic tile {size} px, cold", f"{cold.seconds:.1f} s", "< 15 s", cold.seconds < 15
        ),
        Measure(
            f"zero-cost detector, magnetic tile {size} px, cached",
            f"{cached.seconds:.2f} s",
            "< 3 s",
            cached.seconds < 3,
        ),
        Measure(
            f"zero-cost detector, magnetic tile {size} px, peak memory",
            f"{cold.peak_mb:.0f} MB",
            "< 1.5 GB",
            cold.peak_mb < 1536,
        ),
    ]


def job_process(work: Path, settings: Settings) -> list[Measure]:
    """The job's own process: zero-cost jobs fitted in child processes vs in the harness' process."""
    env = environment(work / "home-isolate")
    seeds = [0] if settings.quick else [0, 1, 2]
    changes = {"models": ZERO_COST, "seeds": seeds, "dataset": {"layout": "mvtec", "image_size": 32}}
    protocol = protocol_file(work, "isolate", "kde_vs_test.yaml", changes)
    harness(["run", str(protocol), "--out", str(work / "isolate-warm"), "--cache", str(work / "c-warm")], env)
    seconds = {}
    for isolate in ("true", "false"):
        out, cache = work / f"isolate-{isolate}", work / f"c-{isolate}"
        args = ["run", str(protocol), "--out", str(out), "--cache", str(cache), "--set", f"executor.isolate={isolate}"]
        seconds[isolate] = harness(args, env).seconds
    jobs = 3 * len(seeds)
    per_job = (seconds["true"] - seconds["false"]) / jobs
    value = f"{per_job:+.2f} s per job ({seconds['true']:.1f} vs {seconds['false']:.1f} s, {jobs} jobs)"
    return [Measure("job in its own process (energy tracked) vs `isolate: false`", value, "-", None)]


def script(name: str, *args: str) -> str:
    """Another script under benchmarks/, run as a whole process; its standard output."""
    command = [sys.executable, str(REPO / "benchmarks" / name), *args]
    result = subprocess.run(command, capture_output=True, text=True, env=environment(Path(tempfile.mkdtemp())))
    if result.returncode:
        raise RuntimeError(f"{name} exited {result.returncode}: {result.stderr.strip()[-300:]}")
    return result.stdout


def engine_overhead(work: Path, settings: Settings) -> list[Measure]:
    """``overhead_vs_engine.py``: one job through the harness vs anomalib's Engine, interleaved repeats."""
    repeats = "1" if settings.quick else "5"
    output = script("overhead_vs_engine.py", "--repeats", repeats)
    percent = float(re.search(r"overhead\s*:\s*([-+0-9.]+) %", output).group(1))
    medians = re.findall(r"median ([0-9.]+) s", output)
    value = f"{percent:+.1f} % (median {medians[1]} s vs {medians[0]} s, {repeats} repeats)"
    return [Measure("PaDiM job through the harness vs anomalib's Engine (128 px)", value, "<= 5 %", percent <= 5)]


def calibrations(work: Path, settings: Settings) -> list[Measure]:
    """``partial_anomaly_speed.py``: 1,500 oracle calibrations from scores in memory."""
    output = script("partial_anomaly_speed.py", "--repeats", "1" if settings.quick else "5")
    found = {}
    for name, count, ms in re.findall(r"(\w+)\s*: (\d+) calibrations in median (\d+) ms", output):
        found[name] = f"{count} in {ms} ms"
    peak = re.search(r"per pass \(MB\): ([0-9.]+)", output).group(1)
    value = f"Youden {found['youden']}, F1 {found['f1']}; traced peak {peak} MB per pass"
    return [Measure("oracle calibrations in one process (15 categories x 10 fractions x 10 draws)", value, "-", None)]


def test_suite(work: Path, settings: Settings) -> list[Measure]:
    """The README's test command (quick: one small test file)."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    command += ["tests/unit/test_metrics.py"] if settings.quick else ["-n", "2", "-m", "not slow"]
    env = {k: v for k, v in os.environ.items() if k not in ("HARNESS_HOME", "HARNESS_CACHE_DIR")}
    started = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=env)
    minutes = (time.perf_counter() - started) / 60
    summary = (result.stdout.strip().splitlines() or ["?"])[-1].strip("= ")
    name = "test command, one file (quick)" if settings.quick else '`pytest -n 2 -m "not slow"`'
    return [Measure(name, f"{minutes:.1f} min ({summary})", "< 10 min", minutes < 10 and result.returncode == 0)]


CASES = {
    "startup": startup,
    "main": main_job,
    "partial15": partial_anomaly_15,
    "magnetic_tile": magnetic_tile,
    "isolate": job_process,
    "engine": engine_overhead,
    "calibrations": calibrations,
    "tests": test_suite,
}


def table(measures: list[Measure], settings: Settings | None = None, cases: list[str] | None = None) -> str:
    """The Markdown table the README shows, with the machine it was measured on."""
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}"
    flags = " --quick" if settings and settings.quick else ""
    flags += f" --cases {','.join(cases)}" if cases else ""
    lines = [
        f"{GENERATED_BY}{flags} --write-readme` on {time.strftime('%Y-%m-%d')} ({machine}; no GPU unless named).",
        "",
        "| case | measured | target | met |",
        "|---|---|---|---|",
    ]
    if settings and settings.quick:
        lines.insert(1, "**Quick check of the script (reduced cases): not a measurement of the harness.**")
    marks = {True: "yes", False: "**no**", None: ""}
    lines += [f"| {m.case} | {m.value} | {m.target} | {marks[m.met]} |" for m in measures]
    return "\n".join(lines)


def write_readme(text: str, readme: Path = REPO / "README.md") -> None:
    """Replace the text between the README's harness-speed markers."""
    content = readme.read_text()
    start, end = (content.index(marker) for marker in MARKERS)
    readme.write_text(content[: start + len(MARKERS[0])] + "\n" + text + "\n" + content[end:])


def compile_sources() -> None:
    """Compile the harness' and plugins' sources to ``__pycache__`` (git-ignored), as pip does for installed ones."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "harness"), str(REPO / "plugins")], env=env)


def measure(names: list[str], settings: Settings) -> list[Measure]:
    """Run the named cases one after another, sources compiled first; a case that fails is a row saying so."""
    compile_sources()
    measures = []
    with tempfile.TemporaryDirectory(prefix="harness-speed-") as folder:
        for name in names:
            work = Path(folder) / name
            work.mkdir()
            try:
                measures += CASES[name](work, settings)
            except Exception as error:  # one failed case must not lose the others
                measures.append(Measure(f"{name}: failed", str(error).replace("|", "/")[:200], "-", False))
    return measures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-readme", action="store_true", help="write the table into README.md")
    parser.add_argument("--skip-real", action="store_true", help="skip the magnetic tile cases")
    parser.add_argument("--quick", action="store_true", help="reduced cases: check the script end to end")
    parser.add_argument("--with-tests", action="store_true", help="also time the README's test command")
    parser.add_argument("--cases", help=f"comma-separated, of: {', '.join(CASES)}")
    options = parser.parse_args()
    names = options.cases.split(",") if options.cases else [c for c in CASES if c != "tests"]
    if options.with_tests and "tests" not in names:
        names.append("tests")
    if options.skip_real:
        names = [n for n in names if n != "magnetic_tile"]
    unknown = sorted(set(names) - set(CASES))
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; known: {', '.join(CASES)}")
    settings = Settings(quick=options.quick)
    text = table(measure(names, settings), settings, names if options.cases else None)
    print(text)
    if options.write_readme:
        write_readme(text)


if __name__ == "__main__":
    main()
