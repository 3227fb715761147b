"""Attacks and faults on the cache, the output folder, the report and the jobs (issue 14, deliverables 2, 3, 5, 6).

Each case runs the real ``harness`` command in-process on a tiny synthetic dataset and checks the
exit status, that the error is one line without a traceback, and that earlier results and
foreign files survive.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import SMALL_SYNTHETIC, FixedScores, copy_run, run_once

TESTS = Path(__file__).resolve().parents[1]
PROTOCOL = """
protocol: kde_vs_test
dataset: {{synthetic: {synthetic}, categories: [weave], image_size: 32{dataset}}}
models: {models}
calibrations: [test_f1_oracle, kde]
analysis: {{bootstrap: 20, review: 0, map_panels: false}}
seeds: [0]
{extra}
"""
FIXED = "[{name: fixed_scores}]"


def protocol(tmp_path: Path, models: str = FIXED, dataset: str = "", extra: str = "", name: str = "p") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(PROTOCOL.format(synthetic=SMALL_SYNTHETIC, models=models, dataset=dataset, extra=extra))
    return path


@pytest.fixture(autouse=True)
def faulty_plugin():
    """Register tests/plugins/faulty.py in-process (its models: faulty, file_weights)."""
    from harness.plugins import get_plugins

    plugins = get_plugins()
    if "faulty" not in plugins.registry("models"):
        spec = importlib.util.spec_from_file_location("faulty", TESTS / "plugins" / "faulty.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        plugins.register(module, "test-faulty")


def one_line(err: str) -> str:
    """The single line of ``err`` (asserting there is exactly one and no traceback)."""
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture(scope="module")
def ran_once(tmp_path_factory) -> Path:
    """One finished run per module (and test process): the output folder and cache that ``ran`` copies."""
    folder = tmp_path_factory.mktemp("ran")
    code = run_once("run", str(protocol(folder)), "--out", str(folder / "out"), "--cache", str(folder / "cache"))
    assert code == 0
    return folder


@pytest.fixture
def ran(ran_once, tmp_path):
    """One finished run: (protocol, out, cache, results.csv text), the test's own copy of it."""
    path, out, cache = protocol(tmp_path), tmp_path / "out", tmp_path / "cache"
    copy_run(ran_once / "out", out)
    copy_run(ran_once / "cache", cache)
    FixedScores.calls = []
    return path, out, cache, (out / "results.csv").read_text()


def entry_folder(cache: Path) -> Path:
    (link,) = [p for p in cache.iterdir() if p.is_symlink()]
    return link.resolve()


# -- cache integrity -------------------------------------------------------------------------------


def _truncate(path: Path, keep: float) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def _drop_rows(path: Path) -> None:
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-3]))


def _flip_score(path: Path) -> None:
    text = path.read_text()
    index = text.rindex(".") + 1  # a digit of the last score: same size, other content
    path.write_text(text[:index] + ("1" if text[index] != "1" else "2") + text[index + 1 :])


def _garble_counts(path: Path) -> None:
    meta = json.loads(path.read_text())
    meta["n_test"] -= 3
    path.write_text(json.dumps(meta))


def _pickled_maps(path: Path) -> None:
    marker = path.parent / "PWNED"
    np.savez(path, maps=np.array([_Payload(str(marker))], dtype=object))


class _Payload:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


DAMAGE = {
    "scores_rows_cut": lambda e: _drop_rows(e / "scores.csv"),
    "scores_mid_row": lambda e: _truncate(e / "scores.csv", 0.6),
    "scores_checksum": lambda e: _flip_score(e / "scores.csv"),
    "scores_missing": lambda e: (e / "scores.csv").unlink(),
    "maps_truncated": lambda e: _truncate(e / "maps.npz", 0.5),
    "maps_missing": lambda e: (e / "maps.npz").unlink(),
    "maps_pickle": lambda e: _pickled_maps(e / "maps.npz"),
    "meta_truncated": lambda e: _truncate(e / "meta.json", 0.5),
    "meta_garbled_counts": lambda e: _garble_counts(e / "meta.json"),
    "meta_missing": lambda e: (e / "meta.json").unlink(),
    "meta_empty": lambda e: (e / "meta.json").write_text(""),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damaged_cache_entry_is_named_and_refitted(cli, ran, tmp_path, damage):
    path, out, cache, first = ran
    entry = entry_folder(cache)
    DAMAGE[damage](entry)
    code, _, err = cli("run", str(path), "--out", str(tmp_path / "again"), "--cache", str(cache))
    assert code == 0, err
    line = one_line(err)
    assert "damaged" in line and "refitting" in line and cache.name in line
    assert FixedScores.calls == ["fit"]
    assert (tmp_path / "again" / "results.csv").read_text() == first
    assert (out / "results.csv").read_text() == first  # earlier results untouched
    assert not (entry / "PWNED").exists()


def test_cache_link_pointing_outside_is_not_followed(cli, ran, tmp_path):
    path, _, cache, _ = ran
    (link,) = [p for p in cache.iterdir() if p.is_symlink()]
    outside = tmp_path / "elsewhere"
    shutil.copytree(link.resolve(), outside)
    link.unlink()
    link.symlink_to(outside)
    code, _, err = cli("run", str(path), "--out", str(tmp_path / "again"), "--cache", str(cache))
    assert code == 0 and "outside the cache" in one_line(err)
    assert FixedScores.calls == ["fit"]


def test_second_run_reuses_a_healthy_entry_silently(cli, ran, tmp_path):
    path, _, cache, _ = ran
    code, _, err = cli("run", str(path), "--out", str(tmp_path / "again"), "--cache", str(cache))
    assert code == 0 and err.strip() == "" and FixedScores.calls == []


@pytest.mark.parametrize("change", ["rewritten_in_place", "moved_same_bytes", "copied_same_bytes"])
def test_options_naming_files_are_keyed_by_content(cli, tmp_path, change):
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"\x05" * 64)
    models = f"[{{name: file_weights, options: {{weights: {weights}}}}}]"
    cache = tmp_path / "cache"
    code, _, err = cli("run", str(protocol(tmp_path, models)), "--out", str(tmp_path / "a"), "--cache", str(cache))
    assert code == 0, err
    first = json.loads((tmp_path / "a" / "run.json").read_text())["jobs"][0]["key"]
    if change == "rewritten_in_place":
        os.utime(weights, ns=(1, 1))
        weights.write_bytes(b"\x09" * 64)
        target = weights
    else:
        target = tmp_path / "moved.bin"
        (shutil.move if change == "moved_same_bytes" else shutil.copy)(weights, target)
    models = f"[{{name: file_weights, options: {{weights: {target}}}}}]"
    code, _, err = cli("run", str(protocol(tmp_path, models)), "--out", str(tmp_path / "b"), "--cache", str(cache))
    assert code == 0, err
    second = json.loads((tmp_path / "b" / "run.json").read_text())["jobs"][0]
    if change == "rewritten_in_place":
        assert second["key"] != first and second["status"] == "fitted"
    else:
        assert second["key"] == first and second["status"] == "cached"


@pytest.mark.parametrize("how", ["moved", "copied"])
def test_dataset_moved_or_copied_reuses_its_scores(cli, tmp_path, synthetic_root, how):
    first_root = tmp_path / "data-a"
    shutil.copytree(synthetic_root, first_root)
    cache = tmp_path / "cache"
    dataset = f", layout: mvtec, root: {first_root}"
    code, _, err = cli(
        "run", str(protocol(tmp_path, dataset=dataset)), "--out", str(tmp_path / "a"), "--cache", str(cache)
    )
    assert code == 0, err
    second_root = tmp_path / "elsewhere" / "data-b"
    second_root.parent.mkdir()
    (shutil.move if how == "moved" else shutil.copytree)(first_root, second_root)
    FixedScores.calls = []
    dataset = f", layout: mvtec, root: {second_root}"
    code, _, err = cli(
        "run", str(protocol(tmp_path, dataset=dataset)), "--out", str(tmp_path / "b"), "--cache", str(cache)
    )
    assert code == 0, err
    assert FixedScores.calls == []  # no refit
    scores = next((tmp_path / "b" / "scores").glob("*.csv")).read_text()
    assert str(second_root) in scores and str(first_root) not in scores  # rows joined to today's files
    metrics = ["auroc", "f1", "threshold"]
    a, b = (pd.read_csv(tmp_path / name / "results.csv")[metrics] for name in ("a", "b"))
    pd.testing.assert_frame_equal(a, b)


# -- output safety ---------------------------------------------------------------------------------


@pytest.mark.parametrize("foreign", ["notes.txt", "figures/mine.png", "deep/er/data.bin", "results.csv"])
def test_out_with_foreign_files_is_refused(cli, tmp_path, foreign):
    out = tmp_path / "out"
    (out / foreign).parent.mkdir(parents=True, exist_ok=True)
    (out / foreign).write_text("user data")
    code, _, err = cli("run", str(protocol(tmp_path)), "--out", str(out), "--cache", str(tmp_path / "c"))
    assert code == 2 and "did not write" in one_line(err) and "--force" in err
    assert (out / foreign).read_text() == "user data"
    assert FixedScores.calls == []  # found before fitting


def test_foreign_symlink_in_out_is_refused_and_kept(cli, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "precious").write_text("keep")
    (out / "link").symlink_to(tmp_path / "precious")
    code, _, err = cli("run", str(protocol(tmp_path)), "--out", str(out), "--cache", str(tmp_path / "c"))
    assert code == 2 and "did not write" in one_line(err)
    assert (out / "link").is_symlink() and (tmp_path / "precious").read_text() == "keep"


def test_force_writes_beside_foreign_files_and_removes_only_owned_ones(cli, ran, tmp_path):
    path, out, cache, _ = ran
    (out / "notes.txt").write_text("user data")
    (out / "figures" / "mine.png").write_text("user figure")
    stale = out / "figures" / "scores_fixed_scores_weave_seed0.png"
    assert stale.is_file()
    code, _, err = cli("run", str(path), "--out", str(out), "--cache", str(cache))
    assert code == 2 and "did not write" in one_line(err)
    code, _, err = cli("run", str(path), "--out", str(out), "--cache", str(cache), "--force")
    assert code == 0, err
    assert (out / "notes.txt").read_text() == "user data"
    assert (out / "figures" / "mine.png").read_text() == "user figure"
    owned = json.loads((out / ".harness-owned.json").read_text())["files"]
    assert "notes.txt" not in owned and "results.csv" in owned


def test_stale_owned_files_are_removed_foreign_ones_kept(cli, ran, tmp_path):
    _, out, cache, _ = ran
    (out / "figures" / "mine.png").write_text("user figure")
    ours = out / "figures" / "old_harness_figure.png"
    ours.write_text("x")
    from harness.ownership import record

    record(out, ["figures/old_harness_figure.png"])
    path = protocol(tmp_path, name="again")
    code, _, err = cli("run", str(path), "--out", str(out), "--cache", str(cache), "--force")
    assert code == 0, err
    assert not ours.exists()  # the harness wrote it: an earlier run's output, replaced
    assert (out / "figures" / "mine.png").read_text() == "user figure"


def test_force_never_replaces_a_foreign_file_of_the_same_name(cli, ran, tmp_path):
    path, out, cache, _ = ran
    from harness.ownership import MANIFEST

    manifest = json.loads((out / MANIFEST).read_text())
    del manifest["files"]["report.html"]
    (out / MANIFEST).write_text(json.dumps(manifest))
    (out / "report.html").write_text("<p>the user's own page</p>")
    code, _, err = cli("run", str(path), "--out", str(out), "--cache", str(cache), "--force")
    assert code == 2 and "would be replaced" in one_line(err)
    assert (out / "report.html").read_text() == "<p>the user's own page</p>"


@pytest.mark.parametrize("where", ["equal", "out_inside_cache", "cache_inside_out"])
def test_out_and_cache_must_not_nest(cli, ran, tmp_path, where):
    path, out, cache, first = ran
    before = sorted(p.name for p in cache.iterdir())
    target, cache_arg = {
        "equal": (cache, cache),
        "out_inside_cache": (cache / "results", cache),
        "cache_inside_out": (out, out / "scores-cache"),
    }[where]
    code, _, err = cli("run", str(path), "--out", str(target), "--cache", str(cache_arg))
    assert code == 2 and "score cache" in one_line(err)
    assert sorted(p.name for p in cache.iterdir()) == before
    assert (out / "results.csv").read_text() == first


# -- report reads only its own files ------------------------------------------------------------------


def _plant_manifest(out: Path, name: str, secret: Path) -> None:
    from harness.ownership import MANIFEST

    (out / MANIFEST).unlink()  # as from a results folder received by mail
    entries = json.loads((out / "figures" / "manifest.json").read_text())
    entries.append({"file": name, "caption": "x", "kind": "figure"})
    (out / "figures" / "manifest.json").write_text(json.dumps(entries))


@pytest.mark.parametrize("kind", ["absolute", "dotdot", "symlink", "subfolder", "symlinked_table"])
def test_report_reads_only_files_inside_figures(cli, ran, tmp_path, kind):
    _, out, _, _ = ran
    secret = tmp_path / "secret.png"
    secret.write_text("TOP-SECRET-CONTENT")
    name = {"absolute": str(secret), "dotdot": "../../secret.png", "subfolder": "sub/x.png"}.get(kind, "link.png")
    if kind in ("symlink", "symlinked_table"):
        (out / "figures" / name).symlink_to(secret)
    _plant_manifest(out, name, secret)
    if kind == "symlinked_table":
        entries = json.loads((out / "figures" / "manifest.json").read_text())
        entries[-1]["kind"] = "table"
        (out / "figures" / "manifest.json").write_text(json.dumps(entries))
    (out / "report.html").unlink()
    code, _, err = cli("report", str(out))
    assert code == 2
    assert "figures/" in one_line(err) or "is a link" in err
    assert not (out / "report.html").exists()


def test_edited_figure_manifest_fails_its_recorded_checksum(cli, ran):
    _, out, _, _ = ran
    entries = json.loads((out / "figures" / "manifest.json").read_text())
    entries.append({"file": "/etc/passwd", "caption": "x"})
    (out / "figures" / "manifest.json").write_text(json.dumps(entries))
    code, _, err = cli("report", str(out))
    assert code == 2 and "checksum" in one_line(err)


LATEX_ATTACK = r"x\input{/etc/passwd}\immediate\write18{touch /tmp/pwned}_&%$#^~"


@pytest.mark.parametrize("field", ["model_label", "title", "dataset_root", "protocol_version", "caption", "seeds"])
def test_latex_injection_is_escaped(cli, tmp_path, field):
    models = f"[{{name: fixed_scores, label: {json.dumps(LATEX_ATTACK)}}}]" if field == "model_label" else FIXED
    out = tmp_path / "out"
    code, _, err = cli("run", str(protocol(tmp_path, models)), "--out", str(out), "--cache", str(tmp_path / "c"))
    assert code == 0, err
    if field != "model_label":
        run = json.loads((out / "run.json").read_text())
        if field == "title":
            run["title"] = LATEX_ATTACK
        elif field == "dataset_root":
            run["dataset"]["root"] = LATEX_ATTACK
        elif field == "protocol_version":
            run["protocol_version"] = LATEX_ATTACK
        elif field == "seeds":
            run["seeds"] = [LATEX_ATTACK]
        else:
            entries = json.loads((out / "figures" / "manifest.json").read_text())
            entries[0]["caption"] = LATEX_ATTACK
            (out / "figures" / "manifest.json").write_text(json.dumps(entries))
        (out / "run.json").write_text(json.dumps(run))
        (out / ".harness-owned.json").unlink()  # as a folder received by mail: no manifest
        shutil.rmtree(out / "tables", ignore_errors=True)  # its table files would be taken for foreign ones
        code, _, err = cli("report", str(out))
        assert code == 0, err
    tex = "".join(p.read_text() for p in [out / "report.tex", *sorted((out / "tables").glob("*.tex"))])
    assert r"\input{/etc" not in tex and r"\write18" not in tex and r"\immediate" not in tex
    # seeds are joined then escaped again (doubly escaped, still inert); report.tex does not show the root
    if field not in ("seeds", "dataset_root"):
        assert r"\textbackslash{}input\{/etc/passwd\}" in tex
    assert "}_&%$#" not in (out / "report.html").read_text()  # HTML-escaped as well
    if shutil.which("pdflatex"):
        import subprocess

        result = subprocess.run(
            ["pdflatex", "-interaction=nonstopmode", "-no-shell-escape", "report.tex"], cwd=out, capture_output=True
        )
        assert result.returncode == 0, result.stdout[-2000:]


# -- harness report refuses partial data ----------------------------------------------------------------


def _cut(path: Path, keep: float) -> None:
    _truncate(path, keep)


PARTIAL = {
    "results_mid_row": lambda out: _cut(out / "results.csv", 0.7),
    "results_empty": lambda out: (out / "results.csv").write_text(""),
    "results_header_only": lambda out: (out / "results.csv").write_text(
        (out / "results.csv").read_text().splitlines(keepends=True)[0]
    ),
    "results_no_model_column": lambda out: (out / "results.csv").write_text("a,b\n1,2\n"),
    "run_truncated": lambda out: _cut(out / "run.json", 0.5),
    "run_empty": lambda out: (out / "run.json").write_text(""),
    "run_missing_counts": lambda out: (out / "run.json").write_text(
        json.dumps({k: v for k, v in json.loads((out / "run.json").read_text()).items() if k != "counts"})
    ),
    "run_counts_disagree": lambda out: (out / "run.json").write_text(
        json.dumps({**json.loads((out / "run.json").read_text()), "counts": {"fitted": 0, "cached": 0, "failed": 1}})
    ),
}


@pytest.mark.parametrize("keep_manifest", [False, True], ids=["foreign_folder", "own_folder"])
@pytest.mark.parametrize("damage", sorted(PARTIAL))
def test_report_refuses_partial_results(cli, ran, damage, keep_manifest):
    _, out, _, _ = ran
    PARTIAL[damage](out)
    if not keep_manifest:
        (out / ".harness-owned.json").unlink()
    before = (out / "report.html").read_text()
    code, _, err = cli("report", str(out))
    assert code == 2, err
    assert one_line(err).startswith("Error: ")
    assert (out / "report.html").read_text() == before  # nothing re-rendered from partial data


def test_report_refuses_rows_cut_at_a_row_boundary_by_checksum(cli, ran):
    _, out, _, _ = ran
    lines = (out / "results.csv").read_text().splitlines(keepends=True)
    (out / "results.csv").write_text("".join(lines[:-1]))
    code, _, err = cli("report", str(out))
    assert code == 2 and "checksum" in one_line(err)


# -- faults are isolated -----------------------------------------------------------------------------

FAULTS = {
    "raise": "RuntimeError: planted failure",
    "exit0": "sys.exit(0)",
    "exit_msg": "sys.exit('plugin gave up')",
    "os_exit": "exited with status 0",
    "sigkill": "SIGKILL",
    "segfault": "SIGSEGV",
    "nan_maps": "non-finite anomaly maps",
    "inf_maps": "non-finite anomaly maps",
    "nan_scores": "non-finite image scores",
    "hang": "timed out after 2 s (executor.timeout)",
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_plugin_fault_fails_its_own_rows(cli, ran, tmp_path, monkeypatch, fault):
    _, out, cache, first = ran
    temp = tmp_path / "temp"  # where the jobs' hand-over folders go (tempfile's directory, inherited by the jobs)
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    models = f"[{{name: fixed_scores}}, {{name: faulty, options: {{fault: {fault}}}}}]"
    extra = "executor: {timeout: 2}" if fault == "hang" else ""
    path = protocol(tmp_path, models, extra=extra, name="faults")
    target = tmp_path / "faults-out"
    code, _, err = cli("run", str(path), "--out", str(target), "--cache", str(cache))
    assert code == 1, err
    assert "job(s) failed" in one_line(err)
    rows = pd.read_csv(target / "results.csv")
    failed = rows[rows["status"] == "failed"]
    assert list(failed["model"]) == ["faulty"]
    assert FAULTS[fault] in failed["error"].iloc[0]
    assert (rows.loc[rows["status"] == "ok", "model"] == "fixed_scores").sum() >= 2
    assert (out / "results.csv").read_text() == first
    assert not list(temp.iterdir()), "a killed or crashed job's hand-over folder was left behind"


# -- found before fitting ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "problem", ["cache_is_file", "cache_under_file", "home_is_file", "out_is_file", "out_under_file"]
)
def test_unwritable_places_are_found_before_fitting(cli, tmp_path, monkeypatch, problem):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    out, cache = tmp_path / "out", tmp_path / "cache"
    if problem == "cache_is_file":
        cache = blocker
    elif problem == "cache_under_file":
        cache = blocker / "cache"
    elif problem == "home_is_file":
        monkeypatch.setenv("HARNESS_HOME", str(blocker))
    elif problem == "out_is_file":
        out = blocker
    else:
        out = blocker / "out"
    code, _, err = cli("run", str(protocol(tmp_path)), "--out", str(out), "--cache", str(cache))
    assert code == 2, err
    assert one_line(err).startswith("Error: ") and str(blocker) in err
    assert FixedScores.calls == []
    assert blocker.read_text() == "not a folder"


@pytest.mark.slow
def test_damaged_entry_is_one_line_in_a_real_terminal_run(tmp_path):
    """The same through ``python -m harness.cli`` (the job's own process must not repeat the warning)."""
    import subprocess
    import sys

    env = {
        **os.environ,
        "HARNESS_PLUGINS": "faulty",
        "PYTHONPATH": os.pathsep.join([str(TESTS / "plugins"), os.environ.get("PYTHONPATH", "")]),
    }
    path = protocol(tmp_path, "[{name: faulty, options: {fault: none}}]")
    cache = tmp_path / "cache"

    def run(out: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "harness.cli", "run", str(path), "--out", str(tmp_path / out)]
        return subprocess.run([*command, "--cache", str(cache)], env=env, capture_output=True, text=True, timeout=600)

    assert run("a").returncode == 0
    _drop_rows(entry_folder(cache) / "scores.csv")
    result = run("b")
    assert result.returncode == 0, result.stderr
    assert "damaged" in one_line(result.stderr)
    assert json.loads((tmp_path / "b" / "run.json").read_text())["counts"]["fitted"] == 1


@pytest.mark.slow
def test_jobs_start_in_spawned_processes_once_cuda_is_initialised(cli, tmp_path, monkeypatch):
    """A forked child cannot use CUDA the parent initialised: such a parent spawns its jobs instead."""
    import harness.isolation

    monkeypatch.setattr(harness.isolation, "_cuda_initialised", lambda: True)
    monkeypatch.setenv("HARNESS_PLUGINS", "faulty")
    monkeypatch.syspath_prepend(str(TESTS / "plugins"))  # spawned children get the parent's sys.path
    models = "[{name: faulty, options: {fault: none}}, {name: faulty, label: broken, options: {fault: os_exit}}]"
    out = tmp_path / "out"
    code, _, err = cli("run", str(protocol(tmp_path, models)), "--out", str(out), "--cache", str(tmp_path / "c"))
    assert code == 1 and "job(s) failed" in one_line(err)
    rows = pd.read_csv(out / "results.csv")
    assert set(rows.loc[rows["status"] == "ok", "model"]) == {"faulty"}
    assert "exited with status 0" in rows.loc[rows["status"] == "failed", "error"].iloc[0]
