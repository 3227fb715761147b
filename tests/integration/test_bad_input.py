"""Bad input: one clear line, exit status 2, no traceback, no partial output, earlier results kept."""

import subprocess
import sys

import pytest
from PIL import Image


def _protocol(tmp_path, body):
    path = tmp_path / "p.yaml"
    path.write_text(body)
    return path


BASE = """protocol: kde_vs_test
dataset: {{synthetic: {{n_train: 16, n_test_good: 6, n_per_defect: 2, size: 64, seed: 0}}, categories: [weave],
          image_size: 32}}
models: [{{name: fixed_scores}}]
{extra}
"""


def _folder_dataset(root, corrupt=False):
    for folder, n in (("good", 8), ("dent", 3)):
        (root / folder).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(
                ((i * 20) % 255 * (1 if folder == "good" else 0) + 10) * __import__("numpy").ones((16, 16, 3), "uint8")
            ).save(root / folder / f"{i}.png")
    if corrupt:
        (root / "dent" / "2.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")


def _folder_overrides(root):
    settings = [
        f"dataset.root={root}",
        "dataset.layout=folder",
        "dataset.categories=null",
        "dataset.options={normal_dir: good, abnormal_dirs: {dent: dent}}",
    ]
    return [arg for setting in settings for arg in ("--set", setting)]


CASES = {
    "malformed yaml": ("protocol: kde_vs_test\nmodels: [padim\n", [], "malformed YAML"),
    "unknown key": (BASE.format(extra="seedz: [0]"), [], "Did you mean 'seeds'"),
    "unknown model": (BASE.format(extra="").replace("fixed_scores", "padimm"), [], "unknown model 'padimm'"),
    "unknown calibration": (BASE.format(extra="calibrations: [kdee]"), [], "Did you mean 'kde'"),
    "unknown protocol kind": (BASE.format(extra="").replace("kde_vs_test", "kde_vs_tset"), [], "unknown protocol"),
    "missing dataset path": (BASE.format(extra=""), ["dataset.root=/nonexistent/mvtec"], "does not exist"),
    "unknown category": (BASE.format(extra=""), ["dataset.categories=[wheat]"], "unknown category 'wheat'"),
    "bad override": (BASE.format(extra=""), ["seeds"], "KEY=VALUE"),
    "bad calibration option": (
        BASE.format(extra="calibrations: [{name: kde, options: {percentil: 90}}]"),
        [],
        "percentil",
    ),
    "bad image size": (BASE.format(extra=""), ["dataset.image_size=0"], "image_size"),
    "protocol is a list": ("- protocol: kde_vs_test\n", [], "must be a YAML mapping"),
    "unknown executor": (BASE.format(extra="executor: {name: slurmm}"), [], "unknown executor 'slurmm'"),
    "bad executor option": (BASE.format(extra="executor: {name: local, workerz: 2}"), [], "workerz"),
    "folder layout without normal_dir": (
        BASE.format(extra=""),
        ["dataset.layout=folder", "dataset.root=/tmp", "dataset.categories=null"],
        "normal_dir",
    ),
    "override index out of range": (BASE.format(extra=""), ["models.5.name=padim"], "not an index"),
    "unknown analysis option": (BASE.format(extra="analysis: {bootstrapp: 10}"), [], "Did you mean 'bootstrap'"),
    "bad analysis value": (
        BASE.format(extra="").replace("kde_vs_test", "partial_anomaly"),
        ["analysis.draws=0"],
        "'analysis.draws': input should be greater than 0",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_gives_one_line_and_exit_2(cli, tmp_path, case):
    body, overrides, expected = CASES[case]
    path = _protocol(tmp_path, body)
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.csv").write_text("earlier results\n")
    args = ["run", str(path), "--out", str(out)] + [a for o in overrides for a in ("--set", o)]
    code, stdout, stderr = cli(*args)
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and expected in lines[0], stderr
    assert "Traceback" not in stderr + stdout
    assert (out / "results.csv").read_text() == "earlier results\n"
    assert not (out / "report.html").exists()


def test_empty_category(cli, tmp_path):
    root = tmp_path / "data"
    _folder_dataset(root)
    for p in (root / "dent").iterdir():
        p.unlink()
    path = _protocol(tmp_path, BASE.format(extra=""))
    code, _, stderr = cli(
        "run",
        str(path),
        "--out",
        str(tmp_path / "out"),
        *_folder_overrides(root),
    )
    assert code == 2 and "needs both defect-free and defective test images" in stderr


def test_corrupt_image(cli, tmp_path):
    root = tmp_path / "data"
    _folder_dataset(root, corrupt=True)
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.html").write_text("earlier")
    path = _protocol(tmp_path, BASE.format(extra=""))
    code, _, stderr = cli(
        "run",
        str(path),
        "--out",
        str(out),
        *_folder_overrides(root),
    )
    assert code == 2 and "cannot read image" in stderr and "2.png" in stderr
    assert (out / "report.html").read_text() == "earlier" and not (out / "results.csv").exists()


def test_unwritable_output(cli, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code, _, stderr = cli("run", str(_protocol(tmp_path, BASE.format(extra=""))), "--out", str(blocker / "out"))
    assert code == 2 and "cannot write to output folder" in stderr and "--out" in stderr


def test_missing_protocol_file(cli, tmp_path):
    code, _, stderr = cli("run", str(tmp_path / "nope.yaml"))
    assert code == 2 and "not found" in stderr and "harness list protocols" in stderr


def test_report_of_a_folder_without_results(cli, tmp_path):
    code, _, stderr = cli("report", str(tmp_path))
    assert code == 2 and "holds no finished run" in stderr


def test_console_script_exit_status_and_no_traceback(tmp_path):
    path = _protocol(tmp_path, "protocol: kde_vs_test\nmodels: [padim\n")
    result = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", str(path)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert result.stderr.strip().startswith("Error: ") and "Traceback" not in result.stderr
