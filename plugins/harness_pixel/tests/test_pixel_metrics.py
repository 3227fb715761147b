"""The pixel metrics (moved from the core's tests/unit/test_metrics.py with them): each against its reference."""

import os
from pathlib import Path

import cv2
import numpy as np
import proportion_localised as pl_reference
import pytest
from harness_pixel.metrics import aupro, pixel_aupr, pixel_auroc, pro, proportion_localised
from scipy.ndimage import gaussian_filter
from scipy.ndimage import label as connected_regions
from sklearn.metrics import average_precision_score

SHARED_DATA = Path(os.environ.get("HARNESS_SHARED_DATA", Path(__file__).resolve().parents[4] / "shared" / "data"))
MAGNETIC_TILE = SHARED_DATA / "magnetic_tile"


def test_aupro_perfect_and_inverted_maps():
    masks = np.zeros((3, 16, 16), dtype=bool)
    masks[0, 2:6, 2:6] = True
    masks[1, 8:12, 1:3] = True
    assert aupro(masks.astype(float), masks) == pytest.approx(1.0)
    assert aupro(-masks.astype(float), masks) == pytest.approx(0.0, abs=1e-6)
    assert pixel_auroc(masks.astype(float), masks) == pytest.approx(1.0)


def test_aupro_counts_each_region_equally():
    # one big region found, one single-pixel region missed: PRO = 0.5 at FPR 0; the next (and
    # last) operating point is "everything anomalous" (FPR 1, PRO 1). Linear between them,
    # PRO(0.3) = 0.65, so the normalised area up to 0.3 is (0.5 + 0.65) / 2 = 0.575.
    masks = np.zeros((1, 20, 20), dtype=bool)
    masks[0, 0:10, 0:10] = True
    masks[0, 15, 15] = True
    maps = np.zeros((1, 20, 20))
    maps[0, 0:10, 0:10] = 1.0
    assert aupro(maps, masks, fpr_limit=0.3) == pytest.approx(0.575)


def test_aupro_matches_anomalibs_reference():
    torch = pytest.importorskip("torch")
    aupro_module = pytest.importorskip("anomalib.metrics.aupro")
    rng = np.random.default_rng(0)
    masks = np.zeros((6, 32, 32), dtype=bool)
    for i in range(4):
        y, x = rng.integers(0, 24, 2)
        masks[i, y : y + rng.integers(3, 8), x : x + rng.integers(3, 8)] = True
    maps = rng.random((6, 32, 32)) + masks * rng.uniform(0.2, 0.8)
    reference = aupro_module._AUPRO(fpr_limit=0.3)  # the torchmetrics metric behind anomalib.metrics.AUPRO
    reference.update(torch.from_numpy(maps).float(), torch.from_numpy(masks).int())
    assert aupro(maps, masks) == pytest.approx(float(reference.compute()), abs=0.01)


def reference_aupro(maps: np.ndarray, masks: np.ndarray, fpr_limit: float = 0.3) -> float:
    """MVTec AD's AUPRO written out independently: a threshold sweep over every distinct score.

    At each threshold t (flag ``map >= t``): PRO = mean over connected ground-truth regions
    (8-connected, all images) of the share of the region flagged; FPR = flagged share of the
    pixels outside every region. The PRO(FPR) curve, from (0, 0), is integrated up to
    ``fpr_limit`` (linear interpolation at the limit) and divided by ``fpr_limit``.
    """
    regions = []
    for index, mask in enumerate(masks):
        labelled, count = connected_regions(mask, structure=np.ones((3, 3)))
        regions += [(index, labelled == k) for k in range(1, count + 1)]
    normal = ~masks
    points = [(0.0, 0.0)]
    for t in np.unique(maps)[::-1]:
        flagged = maps >= t
        fpr = (flagged & normal).sum() / normal.sum()
        overlap = np.mean([flagged[i][region].mean() for i, region in regions])
        points.append((fpr, overlap))
    fprs, pros = np.array(points).T
    area, previous = 0.0, (0.0, 0.0)
    for fpr, overlap in zip(fprs[1:], pros[1:], strict=True):
        if fpr > fpr_limit:
            at_limit = previous[1] + (overlap - previous[1]) * (fpr_limit - previous[0]) / (fpr - previous[0])
            area += (fpr_limit - previous[0]) * (previous[1] + at_limit) / 2
            return area / fpr_limit
        area += (fpr - previous[0]) * (previous[1] + overlap) / 2
        previous = (fpr, overlap)
    return area / fpr_limit


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_aupro_matches_an_independent_mvtec_definition(seed):
    rng = np.random.default_rng(seed)
    masks = np.zeros((5, 16, 16), dtype=bool)
    masks[0, 2:6, 2:6] = True
    masks[0, 10:12, 10:15] = True  # two regions in one image
    masks[1, 7, 7] = True  # a one-pixel region weighs as much as a big one
    masks[2, 3:13, 4:9] = True
    maps = np.round(rng.random(masks.shape) + masks * rng.uniform(0.1, 0.7), 2)  # rounding makes ties
    assert aupro(maps, masks) == pytest.approx(reference_aupro(maps, masks), abs=1e-9)
    assert aupro(maps, masks, fpr_limit=0.05) == pytest.approx(reference_aupro(maps, masks, 0.05), abs=1e-9)


def test_pro_is_the_mean_overlap_per_region_at_the_normalised_half():
    masks = np.zeros((2, 16, 16), dtype=bool)
    masks[0, 0:4, 0:4] = True  # region A: half flagged
    masks[1, 8:10, 8:10] = True  # region B: fully flagged
    maps = np.zeros(masks.shape)
    maps[0, 0:2, 0:4] = 10.0
    maps[1, 8:10, 8:10] = 10.0
    assert pro(maps, masks) == pytest.approx(0.75)
    assert pro(maps * 3 + 5, masks) == pytest.approx(0.75)  # min-max normalised: any affine scale
    assert np.isnan(pro(maps, np.zeros_like(masks)))


def test_pixel_aupr_is_average_precision_over_pixels():
    rng = np.random.default_rng(0)
    masks = rng.random((3, 8, 8)) > 0.8
    maps = rng.random((3, 8, 8)) + masks * 0.3
    assert pixel_aupr(maps, masks) == pytest.approx(average_precision_score(masks.ravel(), maps.ravel()))
    assert pixel_aupr(masks.astype(float), masks) == pytest.approx(1.0)


def _map_of(masks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A plausible anomaly map: the mask blurred and shifted a little, plus noise."""
    shifted = np.roll(masks.astype(float), (2, -1), axis=(1, 2))
    return np.stack([gaussian_filter(m, 3) for m in shifted]) + 0.05 * rng.random(masks.shape)


def _shapes() -> dict[str, np.ndarray]:
    def canvas() -> np.ndarray:
        return np.zeros((256, 256), np.uint8)

    rotated = canvas()
    cv2.ellipse(rotated, (128, 128), (90, 12), 35, 0, 360, 1, -1)
    multi = canvas()
    for centre in ((40, 40), (200, 60), (120, 200)):
        cv2.circle(multi, centre, 14, 1, -1)
    touching = canvas()
    cv2.rectangle(touching, (60, 60), (100, 100), 1, -1)
    cv2.rectangle(touching, (101, 80), (150, 95), 1, -1)  # shares an edge: one region, two shapes
    cv2.circle(touching, (170, 170), 10, 1, -1)
    cv2.circle(touching, (185, 185), 10, 1, -1)  # two discs overlapping each other
    tiny = canvas()
    tiny[30, 30] = 1
    tiny[200:202, 100:102] = 1
    return {"rotated": rotated, "multi-blob": multi, "touching": touching, "tiny": tiny}


@pytest.mark.parametrize("shape", ["rotated", "multi-blob", "touching", "tiny", "all"])
def test_pl_is_the_authors_package(shape):
    shapes = _shapes()
    masks = np.stack(list(shapes.values()) if shape == "all" else [shapes[shape]]).astype(bool)
    maps = _map_of(masks, np.random.default_rng(len(shape)))
    expected = pl_reference.calculate(maps, masks, anomaly_likelihood_definitely_increasing=True)[0]
    with_a_normal = np.concatenate([masks, np.zeros((1, 256, 256), bool)])
    maps_with_a_normal = np.concatenate([maps, np.random.default_rng(9).random((1, 256, 256))])
    assert proportion_localised(maps_with_a_normal, with_a_normal) == pytest.approx(expected)


def test_pl_scores_a_rotated_defect_against_its_rotated_box():
    rotated = np.zeros((256, 256), np.uint8)
    box = cv2.boxPoints(((128, 128), (200, 32), 45)).astype(np.int32)
    cv2.fillPoly(rotated, [box], 1)
    masks = rotated[None].astype(bool)
    ys, xs = np.nonzero(rotated)
    upright = np.zeros((1, 256, 256))
    upright[0, ys.min() : ys.max() + 1, xs.min() : xs.max() + 1] = 1.0  # its axis-aligned box
    assert proportion_localised(masks.astype(float), masks) == pytest.approx(1.0)
    assert proportion_localised(upright, masks) == pytest.approx(0.0)  # IoU with the rotated box < 0.3


def test_pl_resizes_to_the_packages_256_side():
    masks = np.zeros((2, 64, 64), bool)
    masks[0, 10:20, 10:30] = True
    masks[1, 40:44, 5:9] = True
    maps = _map_of(masks, np.random.default_rng(3))
    big_maps = np.stack([cv2.resize(m.astype(np.float32), (256, 256), interpolation=cv2.INTER_LINEAR) for m in maps])
    big_masks = np.stack([cv2.resize(m.astype(np.uint8), (256, 256), interpolation=cv2.INTER_NEAREST) for m in masks])
    expected = pl_reference.calculate(big_maps, big_masks, anomaly_likelihood_definitely_increasing=True)[0]
    assert proportion_localised(maps, masks) == pytest.approx(expected)
    assert np.isnan(proportion_localised(maps, np.zeros_like(masks)))


@pytest.mark.skipif(not MAGNETIC_TILE.is_dir(), reason="shared/data/magnetic_tile not present")
def test_pl_on_magnetic_tile_masks_matches_the_package():
    """Real defect shapes: "Saliency of magnetic tile surface defects" (Huang, Qiu, Yuan, The Visual Computer 2020)."""
    masks = []
    for folder in ("MT_Blowhole", "MT_Break", "MT_Crack", "MT_Fray", "MT_Uneven"):
        for path in sorted((MAGNETIC_TILE / folder / "Imgs").glob("*.png"))[:3]:
            mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            masks.append(cv2.resize(mask, (256, 256), interpolation=cv2.INTER_NEAREST) > 127)
    masks = np.stack([m for m in masks if m.any()])
    maps = _map_of(masks, np.random.default_rng(0))
    expected = pl_reference.calculate(maps, masks, anomaly_likelihood_definitely_increasing=True)[0]
    assert proportion_localised(maps, masks) == pytest.approx(expected)
    assert 0.0 < expected <= 1.0


def _half_maps_with_ties(seed: int, shape: tuple[int, int, int] = (12, 24, 24)) -> tuple[np.ndarray, np.ndarray]:
    """float16 maps (as the score cache keeps them) with many ties, -0.0 beside +0.0, negatives; masks with regions."""
    rng = np.random.default_rng(seed)
    masks = np.zeros(shape, dtype=bool)
    for index in range(shape[0] - 3):
        y, x = rng.integers(0, shape[1] - 6, 2)
        masks[index, y : y + rng.integers(1, 6), x : x + rng.integers(1, 6)] = True
    maps = (np.round(rng.normal(0, 1, shape) * 4) / 4 + masks * rng.uniform(0, 1.5)).astype(np.float16)
    maps[0, 0, :3] = [-0.0, 0.0, -0.0]
    return maps, masks


@pytest.fixture
def small_batches(monkeypatch):
    """Batches of a few images, so the counting crosses batch boundaries."""
    from harness_pixel import pixel_counts

    monkeypatch.setattr(pixel_counts, "BATCH_PIXELS", 3 * 24 * 24 + 5)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_pixel_auroc_and_aupr_counted_per_float16_value_equal_scikit_learn(seed, small_batches):
    from sklearn.metrics import roc_auc_score

    maps, masks = _half_maps_with_ties(seed)
    truth, scores = masks.ravel(), maps.astype(np.float32).ravel()
    assert pixel_auroc(maps, masks) == pytest.approx(roc_auc_score(truth, scores), abs=1e-12)
    assert pixel_aupr(maps, masks) == pytest.approx(average_precision_score(truth, scores), abs=1e-12)
    # the same values handed over as float32 or float64 (still float16 values): the same counting
    assert pixel_auroc(maps.astype(np.float64), masks) == pytest.approx(roc_auc_score(truth, scores), abs=1e-12)


def test_pixel_auroc_and_aupr_of_maps_that_are_not_float16_values_use_scikit_learn():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(5)
    masks = rng.random((3, 8, 8)) > 0.8
    maps = (rng.random((3, 8, 8)) + masks * 0.3).astype(np.float32)
    truth = masks.ravel()
    assert pixel_auroc(maps, masks) == roc_auc_score(truth, maps.ravel())
    assert pixel_aupr(maps, masks) == average_precision_score(truth, maps.ravel())


def test_pixel_ranking_metrics_with_one_class_are_nan_and_nan_maps_fail_as_scikit_learn_does():
    maps, masks = _half_maps_with_ties(0)
    for truth in (np.zeros_like(masks), np.ones_like(masks)):
        assert np.isnan(pixel_auroc(maps, truth))
        assert np.isnan(pixel_aupr(maps, truth))
        assert np.isnan(aupro(maps, truth))
    broken = maps.copy()
    broken[1, 2, 3] = np.nan
    with pytest.raises(ValueError):
        pixel_auroc(broken, masks)
    with pytest.raises(ValueError):
        pixel_aupr(broken, masks)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_aupro_counted_per_float16_value_equals_the_sorted_path(seed, small_batches):
    from harness_pixel.metrics import _aupro_sorted

    maps, masks = _half_maps_with_ties(seed)
    for limit in (0.3, 0.05, 1.0):
        assert aupro(maps, masks, limit) == pytest.approx(_aupro_sorted(maps, masks, limit), abs=1e-12)
        assert aupro(maps, masks, limit) == pytest.approx(reference_aupro(maps.astype(float), masks, limit), abs=1e-9)


def _anomalib_pro(maps: np.ndarray, masks: np.ndarray) -> float:
    """anomalib's ``pro_score`` on the min-max normalised maps (what :func:`pro` computed through anomalib before)."""
    torch = pytest.importorskip("torch")
    pro_module = pytest.importorskip("anomalib.metrics.pro")
    from anomalib.utils.cv import connected_components_cpu

    values = np.asarray(maps, dtype=np.float64)
    normalised = (values - values.min()) / (values.max() - values.min())
    components = connected_components_cpu(torch.from_numpy(masks[:, None].astype(np.float32)))
    predictions = torch.from_numpy(normalised[:, None].astype(np.float32))
    return float(pro_module.pro_score(predictions, components, threshold=0.5))


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pro_matches_anomalibs_pro_score(seed, small_batches):
    maps, masks = _half_maps_with_ties(seed)
    masks[4, 10:12, 10:12] = True  # touching diagonally: one 8-connected region
    masks[4, 12:14, 12:14] = True
    assert pro(maps, masks) == pytest.approx(_anomalib_pro(maps, masks), abs=1e-6)


@pytest.mark.slow
@pytest.mark.skipif(not MAGNETIC_TILE.is_dir(), reason="shared/data/magnetic_tile not present")
def test_pro_on_magnetic_tile_masks_matches_anomalib():
    """Real defect shapes ("Saliency of magnetic tile surface defects", Huang, Qiu, Yuan, 2020)."""
    masks = []
    for folder in ("MT_Blowhole", "MT_Break", "MT_Crack", "MT_Fray", "MT_Uneven"):
        for path in sorted((MAGNETIC_TILE / folder / "Imgs").glob("*.png"))[:4]:
            mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            masks.append(cv2.resize(mask, (256, 256), interpolation=cv2.INTER_NEAREST) > 127)
    masks = np.stack(masks)
    maps = _map_of(masks, np.random.default_rng(0)).astype(np.float16)
    assert pro(maps, masks) == pytest.approx(_anomalib_pro(maps, masks), abs=1e-6)
    assert aupro(maps, masks) == pytest.approx(reference_aupro(maps.astype(float), masks), abs=1e-9)


def test_pl_does_not_import_torch():
    import subprocess
    import sys

    code = (
        "import sys, numpy as np\n"
        "from harness_pixel.metrics import proportion_localised\n"
        "masks = np.zeros((1, 32, 32), bool); masks[0, 4:9, 4:9] = True\n"
        "value = proportion_localised(masks.astype(float), masks)\n"
        "assert value == 1.0, value\n"
        "assert 'torch' not in sys.modules\n"
        "import torch  # the real one still imports afterwards\n"
        "assert hasattr(torch, 'zeros')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_pro_and_aupro_from_the_shared_keys_and_regions_equal_the_per_pixel_paths(seed, small_batches):
    """PRO and AUPRO from a job's held keys and region labels: the same floats as flagging or weighting each pixel."""
    from harness_pixel import pixel_counts
    from harness_pixel.metrics import _area_up_to, _pro_per_pixel
    from scipy.ndimage import label

    maps, masks = _half_maps_with_ties(seed)
    masks[1] = True if seed == 3 else masks[1]  # an image that is all defect
    for threshold in (0.5, 0.2, 0.9):
        assert pro(maps, masks, threshold) == _pro_per_pixel(maps.astype(np.float32), masks, threshold)
    structure = np.zeros((3, 3, 3), dtype=int)
    structure[1] = 1
    regions = [0]

    def weights(batch):  # the weights AUPRO gave value_counts before it shared the labels
        labelled, count = label(np.asarray(batch, dtype=bool), structure=structure)
        regions[0] += count
        return 1.0 / np.bincount(labelled.ravel())[labelled[labelled > 0]]

    counts = pixel_counts.value_counts(maps.astype(np.float32), masks, np.float64, weights)
    _, fp, overlap = pixel_counts.descending(*counts)
    assert aupro(maps, masks) == _area_up_to(fp / fp[-1], overlap / regions[0], 0.3)
