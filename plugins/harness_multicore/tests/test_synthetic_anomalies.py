"""SSA is deterministic, and its masks follow its parameters."""

import numpy as np
import pytest
from harness_multicore.synthetic_anomalies import SSAParameters, apply_noise, ssa_masks, synthetic_set

SMALL = SSAParameters(buckets=6, per_bucket=10, per_count=4, regular=5)


def test_ssa_is_deterministic_per_seed():
    first, second = ssa_masks(64, SMALL, seed=1), ssa_masks(64, SMALL, seed=1)
    assert all(np.array_equal(a.mask, b.mask) for a, b in zip(first, second, strict=True))
    other = ssa_masks(64, SMALL, seed=2)
    assert any(not np.array_equal(a.mask, b.mask) for a, b in zip(first, other, strict=True))


def test_counts_follow_the_parameters():
    masks = ssa_masks(64, SMALL)
    assert len(masks) == SMALL.mask_count == 6 * 10 + 6 * 4
    singles = [m for m in masks if m.bucket]
    assert [sum(m.bucket == n for m in singles) for n in range(1, 7)] == [10] * 6
    combined = [m for m in masks if not m.bucket]
    assert sorted({m.anomalies for m in combined}) == [2, 3, 4, 5, 6, 7]
    assert all(m.mask.any() for m in masks)


def test_shapes_shrink_with_the_bucket_and_stretch_as_asked():
    masks = ssa_masks(128, SSAParameters(buckets=29, per_bucket=60, per_count=1, regular=0))
    area = {n: np.mean([m.mask.sum() for m in masks if m.bucket == n]) for n in (1, 4, 16)}
    assert area[1] > area[4] > area[16]  # scale about d / n
    kinds = [m.stretch for m in masks if m.bucket]
    shares = {k: kinds.count(k) / len(kinds) for k in ("none", "x", "y")}
    assert shares["none"] == pytest.approx(0.5, abs=0.05) and shares["x"] == pytest.approx(0.25, abs=0.05)


def test_paper_defaults_give_2060_masks():
    assert SSAParameters().mask_count == 29 * 60 + 6 * 20 == 1860
    assert SSAParameters().mask_count + SSAParameters().regular == 2060


def test_noise_only_inside_the_mask():
    image = np.full((16, 16, 3), 128, np.uint8)
    mask = np.zeros((16, 16), bool)
    mask[4:8, 4:8] = True
    noisy = apply_noise(image, mask, 0.5, np.random.default_rng(0))
    assert (noisy[~mask] == 128).all() and (noisy[mask] != 128).any()


def test_synthetic_set_pairs_images_and_masks():
    normals = [np.full((32, 32, 3), v, np.uint8) for v in (50, 100, 150)]
    images, masks = synthetic_set(normals, SMALL, seed=0)
    assert len(images) == len(masks) == SMALL.mask_count + SMALL.regular
    assert not masks[-SMALL.regular :].any()
