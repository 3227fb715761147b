"""The plugin registers through hooks only: the same pixel metrics, names and directions as the core had; cache keys."""

import hashlib
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import harness_pixel
import numpy as np
import pytest
from harness_pixel import metrics, segmentation_cache
from sklearn.metrics import roc_auc_score

PACKAGE = Path(harness_pixel.__file__).parent


def test_the_pixel_metrics_keep_their_names_order_directions_and_level():
    from harness.runs import get_plugins

    registered = {name: spec for name, spec in get_plugins().metrics().items() if spec.level == "pixel"}
    assert list(registered) == ["pixel_auroc", "pixel_aupr", "aupro", "pro", "pl"]
    for name, spec in registered.items():
        assert spec.higher_is_better and spec.function is metrics.PIXEL_METRICS[name]
        assert get_plugins().owner("metrics", name).name == "pixel"
        assert spec.description == spec.function.__doc__.strip().split("\n")[0]


def test_registered_values_are_the_functions_values():
    specs = harness_pixel.harness_metrics()
    rng = np.random.default_rng(0)
    masks = rng.random((3, 16, 16)) > 0.8
    maps = (rng.random((3, 16, 16)) + masks * 0.5).astype(np.float16)
    for name, spec in specs.items():
        assert spec(maps, masks) == pytest.approx(metrics.PIXEL_METRICS[name](maps, masks), nan_ok=True)


def test_the_metric_version_covers_the_code_and_the_libraries():
    code = hashlib.sha256((PACKAGE / "metrics.py").read_bytes() + (PACKAGE / "pixel_counts.py").read_bytes())
    version = harness_pixel.metrics_version()
    assert version.startswith(code.hexdigest() + ";")
    assert f"scikit-learn={metadata.version('scikit-learn')}" in version
    assert all(spec.version is harness_pixel.metrics_version for spec in harness_pixel.harness_metrics().values())


def test_the_segmentation_key_covers_its_code_and_the_core_threshold_module(monkeypatch, tmp_path):
    before = segmentation_cache._code_digest()
    core = Path(segmentation_cache.inspect.getsourcefile(segmentation_cache.holdout_pixel_threshold))
    changed = tmp_path / "metrics.py"
    changed.write_bytes(core.read_bytes().replace(b"SIGMAS = 3.0", b"SIGMAS = 1.0"))
    assert changed.read_bytes() != core.read_bytes()  # the constant lives in the core module
    segmentation_cache._code_digest.cache_clear()
    monkeypatch.setattr(segmentation_cache.inspect, "getsourcefile", lambda _: str(changed))
    try:
        assert segmentation_cache._code_digest() != before  # a constant, not only the function's source
    finally:
        segmentation_cache._code_digest.cache_clear()


def test_a_stored_segmentation_entry_naming_a_path_is_not_used():
    entry = {"per_job": {}, "figures": [{"file": "recall.png"}]}
    assert segmentation_cache._usable(entry)
    for name in ("../../x.sh", "/tmp/x.sh", "a/b.png", "..", "", None):
        assert not segmentation_cache._usable({**entry, "figures": [{"file": name}]})


def test_registering_imports_no_plotting_scientific_or_model_library():
    code = (
        "import sys, harness_pixel, harness_pixel.segmentation_cache\n"
        "harness_pixel.harness_metrics()\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    loaded = set(result.stdout.split())
    assert not loaded & {"matplotlib", "sklearn", "scipy", "torch", "anomalib", "cv2", "proportion_localised"}


def test_plain_counts_of_the_same_arrays_or_values_are_counted_once(monkeypatch):
    from harness_pixel import pixel_counts

    calls = []
    counted = pixel_counts._counted
    monkeypatch.setattr(pixel_counts, "_counted", lambda *a: calls.append(1) or counted(*a))
    rng = np.random.default_rng(0)
    maps = rng.random((3, 8, 8)).astype(np.float16)
    masks = rng.random((3, 8, 8)) > 0.7
    first = pixel_counts.value_counts(maps, masks)
    first[0][:] = 0  # a caller changing its copy changes nothing stored
    again = pixel_counts.value_counts(maps, masks)
    assert len(calls) == 1 and again[0].sum() == (~masks).sum()
    pixel_counts.value_counts(maps.copy(), masks.copy())  # the same values loaded again: not counted again
    assert len(calls) == 1
    other = maps.copy()
    other[0, 0, 0] += 1
    pixel_counts.value_counts(other, masks)  # other values: counted anew
    assert len(calls) == 2
    assert metrics.pixel_auroc(maps, masks) == pytest.approx(roc_auc_score(masks.ravel(), maps.ravel()))
