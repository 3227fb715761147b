"""`harness validate` rejects every bad value of issue 13 before anything is fitted: exit 2, one line, no traceback."""

from __future__ import annotations

import pytest

BASE = """protocol: {kind}
dataset:
  synthetic: {{n_train: 16, n_test_good: 6, n_per_defect: 2, size: 64, seed: 0}}
  categories: [weave]
  image_size: {size}
models: [{{name: fixed_scores}}]
calibrations:
  - test_f1_oracle
  - {{name: kde, options: {{percentile: 97.5, bandwidth: {bandwidth}}}}}
seeds: {seeds}
{extra}
"""


def body(kind="kde_vs_test", size="32", bandwidth="scott", seeds="[0]", extra=""):
    return BASE.format(kind=kind, size=size, bandwidth=bandwidth, seeds=seeds, extra=extra)


BOMB = "protocol: kde_vs_test\nmodels: [fixed_scores]\n" + "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9) if prev else ', '.join(['lol'] * 9)}]\n"
    for prev, name in zip(["", "a", "b", "c", "d", "e", "f", "g", "h"], "abcdefghi", strict=True)
)

# (protocol text, --set overrides, text the one error line must contain)
CASES = {
    "image_size true": (body(size="true"), [], "key 'dataset.image_size'"),
    "image_size as a string": (body(size='"64"'), [], "key 'dataset.image_size'"),
    "bootstrap abc": (body(), ["analysis.bootstrap=abc"], "key 'analysis.bootstrap': input should be a valid integer"),
    "bootstrap negative": (body(), ["analysis.bootstrap=-1"], "key 'analysis.bootstrap'"),
    "kde bandwidth foo": (body(bandwidth="foo"), [], "key 'calibrations.1.options.bandwidth'"),
    "kde percentile 100": (body(), ["calibrations.1.options.percentile=100"], "options.percentile"),
    "kde unknown option": (body(), ["calibrations.1.options.percentil=90"], "Did you mean 'percentile'"),
    "executor workers abc": (body(), ["executor.workers=abc"], "key 'executor.workers'"),
    "executor workers 0": (body(), ["executor.workers=0"], "key 'executor.workers'"),
    "executor unknown": (body(extra="executor: {name: slurmm}"), [], "unknown executor 'slurmm'"),
    "executor unknown option": (body(extra="executor: {name: local, workerz: 2}"), [], "Did you mean 'workers'"),
    "ray cpus zero": (body(extra="executor: {name: ray, cpus_per_job: 0}"), [], "key 'executor.cpus_per_job'"),
    "negative seed": (body(seeds="[0, -1]"), [], "key 'seeds.1'"),
    "seed true": (body(seeds="[true]"), [], "key 'seeds.0'"),
    "seed as text": (body(), ["seeds=[a]"], "key 'seeds.0'"),
    "holdout true": (body(extra="holdout_fraction: true"), [], "key 'holdout_fraction'"),
    "holdout 1": (body(), ["holdout_fraction=1"], "key 'holdout_fraction'"),
    "version text": (body(extra="version: one"), [], "key 'version'"),
    "seed twice": (body(seeds="[0, 1, 0]"), [], "key 'seeds': 0 appears twice"),
    "category twice": (
        body(),
        ["dataset.categories=[weave, weave]"],
        "key 'dataset.categories': 'weave' appears twice",
    ),
    "report format twice": (body(extra="report: {formats: [html, html]}"), [], "'html' appears twice"),
    "fraction twice": (body(kind="partial_anomaly"), ["analysis.fractions=[0.5, 0.5]"], "0.5 appears twice"),
    "shots twice": (body(kind="few_shot"), ["analysis.shots=[2, 2]"], "key 'analysis.shots': 2 appears twice"),
    "rate twice": (body(kind="noisy_training"), ["analysis.rates=[0.1, 0.1]"], "key 'analysis.rates'"),
    "option a plain factory does not take": (
        body().replace("{name: fixed_scores}", "{name: fixed_scores, options: {fial: x}}"),
        [],
        "key 'models.0.options.fial': unknown option of fixed_scores 'fial'. Did you mean 'fail'?",
    ),
    "holdout 0 with kde": (
        body(),
        ["holdout_fraction=0"],
        "key 'holdout_fraction': calibration 'kde' needs held-out normal images, but category 'weave'",
    ),
    "holdout rounds to none": (body(), ["holdout_fraction=0.01"], "would hold out none of its 16 training images"),
    "holdout nan": (body(), ["holdout_fraction=.nan"], "key 'holdout_fraction': input should be a finite number"),
    "grid intensity inf": (body(), ["efficiency.grid_intensity=.inf"], "key 'efficiency.grid_intensity'"),
    "timeout inf": (body(), ["executor.timeout=.inf"], "key 'executor.timeout': input should be a finite number"),
    "country not alpha-3": (body(), ["efficiency.country=1e9"], "key 'efficiency.country'"),
    "efficiency repeats 0": (body(extra="efficiency: {latency_repeats: 0}"), [], "key 'efficiency.latency_repeats'"),
    "efficiency energy text": (body(), ["efficiency.energy=maybe"], "key 'efficiency.energy'"),
    "supervision fraction": (
        body(extra="supervision: {anomaly_train_fraction: 1.5}"),
        [],
        "key 'supervision.anomaly_train_fraction'",
    ),
    "report format": (body(extra="report: {formats: [pdf]}"), [], "key 'report.formats.0'"),
    "empty categories": (body(), ["dataset.categories=[]"], "key 'dataset.categories'"),
    "max_train_images 0": (body(), ["dataset.max_train_images=0"], "key 'dataset.max_train_images'"),
    "synthetic size text": (body(), ["dataset.synthetic.size=big"], "key 'dataset.synthetic.size'"),
    "root a number": (body(), ["dataset.root=3"], "key 'dataset.root': expected a folder path"),
    "duplicate label": (
        body(extra="models: [fixed_scores, fixed_scores]").replace("models: [{name: fixed_scores}]\n", ""),
        [],
        "share the label 'fixed_scores'",
    ),
    "draws 0": (body(kind="partial_anomaly"), ["analysis.draws=0"], "key 'analysis.draws'"),
    "fractions above 1": (body(kind="partial_anomaly"), ["analysis.fractions=[0.5, 2]"], "key 'analysis.fractions.1'"),
    "missing_type mode": (body(kind="missing_type"), ["analysis.modes=[types]"], "key 'analysis.modes.0'"),
    "per_type group_by": (body(kind="per_type"), ["analysis.group_by=kind"], "key 'analysis.group_by'"),
    "multiclass flag text": (body(kind="multiclass_unified"), ["analysis.unified=yes please"], "analysis.unified"),
    "benchmark calibration": (
        body(kind="benchmark"),
        ["analysis.calibration=conformal"],
        "key 'analysis.calibration': 'conformal' is not among the protocol's calibrations",
    ),
    "benchmark metric": (body(kind="benchmark"), ["analysis.metrics=[auroc, mcc]"], "key 'analysis.metrics.1'"),
    "benchmark rank_by": (body(kind="benchmark"), ["analysis.rank_by=best"], "key 'analysis.rank_by'"),
    "unknown analysis option": (body(extra="analysis: {bootstrapp: 10}"), [], "Did you mean 'bootstrap'"),
    "duplicate key": (body(extra="seeds: [1]"), [], "duplicate key 'seeds' (first at line 10)"),
    "alias bomb": (BOMB, [], "aliases expand to more than"),
    "missing protocol": ("models: [fixed_scores]\n", [], "missing key 'protocol'"),
    "folder split_seed text": (
        body(),
        ["dataset.layout=folder", "dataset.root=/tmp", "dataset.options={normal_dir: good, split_seed: abc}"],
        "key 'dataset.options.split_seed'",
    ),
    "folder mask placeholder": (
        body(),
        ["dataset.layout=folder", "dataset.root=/tmp", "dataset.options={normal_dir: good, mask_pattern: '{stm}.png'}"],
        "placeholders {stem} and {name}",
    ),
    "set value not yaml": (body(), ["dataset.options.mask_pattern={stem}.png"], "quote it"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_validate_rejects_bad_value_with_one_line(cli, tmp_path, case):
    text, overrides, expected = CASES[case]
    path = tmp_path / "p.yaml"
    path.write_text(text)
    code, stdout, stderr = cli("validate", str(path), *[a for o in overrides for a in ("--set", o)])
    lines = stderr.strip().splitlines()
    assert code == 2, stderr
    assert len(lines) == 1 and lines[0].startswith("Error: ") and expected in lines[0], stderr
    assert "Traceback" not in stdout + stderr
    assert "valid" not in stdout


def test_errors_name_the_file_line(cli, tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(body(size="true"))
    _, _, stderr = cli("validate", str(path))
    assert f"{path}:5, key 'dataset.image_size'" in stderr


def test_errors_name_the_set_that_gave_the_value(cli, tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(body())
    _, _, stderr = cli("validate", str(path), "--set", "executor.workers=abc")
    assert "Error: --set executor.workers=abc, key 'executor.workers'" in stderr


def test_non_utf8_file_is_one_line(cli, tmp_path):
    path = tmp_path / "p.yaml"
    path.write_bytes(body().encode() + b"title: caf\xe9\n")
    code, _, stderr = cli("validate", str(path))
    assert code == 2 and "not UTF-8" in stderr and len(stderr.strip().splitlines()) == 1


def test_alias_bomb_is_small_and_refused_before_it_grows(tmp_path):
    from harness.errors import ProtocolError
    from harness.protocol import load_protocol

    assert len(BOMB) < 700  # the 673-byte file expands to a billion strings
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMB)
    with pytest.raises(ProtocolError, match="aliases expand"):
        load_protocol(path)


def test_no_held_out_normals_is_fine_when_no_calibration_needs_them(cli, tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(body().replace("  - {name: kde, options: {percentile: 97.5, bandwidth: scott}}\n", ""))
    code, _, stderr = cli("validate", str(path), "--set", "holdout_fraction=0")
    assert code == 0, stderr


def test_no_held_out_normals_is_fine_for_a_threshold_free_kind(cli, tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(body(kind="per_type"))  # AUROC and AP per defect type: AnalysisSpec.calibrates is False
    code, _, stderr = cli("validate", str(path), "--set", "holdout_fraction=0")
    assert code == 0, stderr
