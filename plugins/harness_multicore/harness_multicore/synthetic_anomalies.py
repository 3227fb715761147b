"""Stratified Synthetic Anomalies (SSA, paper 002): synthetic defects on a real set of normal images.

Masks systematically cover scale, aspect ratio, position and count: 29 scale buckets n (shapes of
about d/n for image width d), K masks per bucket, each a random polygon of 3..7 points, stretched
in x or y (probabilities 0.25 each; factor 1/u, u ~ U(0.05, 1)) or not (0.5), centred on a point
of an n x n grid (sampled with replacement when K < n^2, else every point in turn) with a
jitter of +/- 0.5 d/n. Then m masks for each anomaly count a in 2..7, combining non-overlapping
single masks. The defect is zero-mean Gaussian noise (sigma 0.5 on [0, 1] pixels) inside the
mask, on a randomly chosen normal image; r untouched images with empty masks are added. All of
it is deterministic for a seed. It never looks at a test image.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw


@dataclass(frozen=True)
class SSAParameters:
    """The SSA schema; paper 002's values are the defaults (k=60, m=20, r=200 give 2,060 masks)."""

    buckets: int = 29
    per_bucket: int = 60  # K
    per_count: int = 20  # m, for each anomaly count 2..max_anomalies
    regular: int = 200  # r images with no anomaly
    max_anomalies: int = 7
    points: tuple[int, int] = (3, 7)
    stretch_probabilities: tuple[float, float, float] = (0.5, 0.25, 0.25)  # none, x, y
    stretch_range: tuple[float, float] = (0.05, 1.0)
    jitter: float = 0.5  # of the grid cell d/n
    noise_sigma: float = 0.5

    @property
    def mask_count(self) -> int:
        """T = buckets * K + (max_anomalies - 1) * m masks with anomalies."""
        return self.buckets * self.per_bucket + (self.max_anomalies - 1) * self.per_count


@dataclass(frozen=True)
class SyntheticMask:
    """One SSA mask with how it was made."""

    mask: np.ndarray  # H x W bool
    bucket: int  # 0 for combined masks
    anomalies: int
    stretch: str  # "none", "x", "y" or "combined"


def _polygon(
    rng: np.random.Generator,
    centre: tuple[float, float],
    scale: float,
    points: tuple[int, int],
    stretch: str,
    factor: float,
) -> list[tuple[float, float]]:
    count = int(rng.integers(points[0], points[1] + 1))
    angles = np.sort(rng.uniform(0, 2 * np.pi, count))
    radii = rng.uniform(0.3, 0.5, count) * scale
    x, y = radii * np.cos(angles), radii * np.sin(angles)
    if stretch == "x":
        x = x * factor
    elif stretch == "y":
        y = y * factor
    return [(centre[0] + a, centre[1] + b) for a, b in zip(x, y, strict=True)]


def single_masks(size: int, parameters: SSAParameters, rng: np.random.Generator) -> list[SyntheticMask]:
    """K masks for each scale bucket n = 1..buckets, one polygon each, stratified over an n x n grid."""
    masks = []
    for n in range(1, parameters.buckets + 1):
        cell = size / n
        grid = [((i + 0.5) * cell, (j + 0.5) * cell) for j in range(n) for i in range(n)]
        if parameters.per_bucket < len(grid):
            chosen = [grid[i] for i in rng.integers(0, len(grid), parameters.per_bucket)]
        else:
            chosen = [grid[i % len(grid)] for i in range(parameters.per_bucket)]
        for cx, cy in chosen:
            centre = (
                cx + rng.uniform(-parameters.jitter, parameters.jitter) * cell,
                cy + rng.uniform(-parameters.jitter, parameters.jitter) * cell,
            )
            stretch = str(rng.choice(["none", "x", "y"], p=list(parameters.stretch_probabilities)))
            factor = 1 / rng.uniform(*parameters.stretch_range) if stretch != "none" else 1.0
            image = Image.new("L", (size, size), 0)
            ImageDraw.Draw(image).polygon(_polygon(rng, centre, cell, parameters.points, stretch, factor), fill=255)
            mask = np.asarray(image) > 0
            if not mask.any():  # a shape entirely outside the image: keep its centre pixel
                mask = np.zeros((size, size), bool)
                mask[int(np.clip(centre[1], 0, size - 1)), int(np.clip(centre[0], 0, size - 1))] = True
            masks.append(SyntheticMask(mask, n, 1, stretch))
    return masks


def combined_masks(
    singles: Sequence[SyntheticMask], parameters: SSAParameters, rng: np.random.Generator
) -> list[SyntheticMask]:
    """M masks for each anomaly count 2..max_anomalies, from non-overlapping single masks."""
    combined = []
    for count in range(2, parameters.max_anomalies + 1):
        for _ in range(parameters.per_count):
            union = np.zeros_like(singles[0].mask)
            used = 0
            for index in rng.permutation(len(singles)):
                candidate = singles[index].mask
                if not (union & candidate).any():
                    union |= candidate
                    used += 1
                    if used == count:
                        break
            combined.append(SyntheticMask(union, 0, used, "combined"))
    return combined


def ssa_masks(size: int, parameters: SSAParameters = SSAParameters(), seed: int = 0) -> list[SyntheticMask]:
    """All SSA masks for square images of ``size`` pixels."""
    rng = np.random.default_rng([seed, 2])
    singles = single_masks(size, parameters, rng)
    return singles + combined_masks(singles, parameters, rng)


def apply_noise(image: np.ndarray, mask: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Zero-mean Gaussian noise of ``sigma`` (on [0, 1] pixels) inside ``mask``; uint8 out."""
    values = image.astype(np.float32) / 255
    noise = rng.normal(0, sigma, values.shape).astype(np.float32)
    values = np.where(mask[..., None], np.clip(values + noise, 0, 1), values)
    return (values * 255).round().astype(np.uint8)


def synthetic_set(
    normals: Sequence[np.ndarray],
    parameters: SSAParameters = SSAParameters(),
    seed: int = 0,
) -> tuple[list[np.ndarray], np.ndarray]:
    """(images, masks): every SSA mask applied to a random normal image, plus ``regular`` clean images."""
    if not normals:
        raise ValueError("synthetic anomalies need at least one normal image")
    size = normals[0].shape[0]
    masks = ssa_masks(size, parameters, seed)
    rng = np.random.default_rng([seed, 3])
    images = [apply_noise(normals[int(rng.integers(len(normals)))], m.mask, parameters.noise_sigma, rng) for m in masks]
    images += [normals[int(rng.integers(len(normals)))].copy() for _ in range(parameters.regular)]
    all_masks = np.stack([m.mask for m in masks] + [np.zeros((size, size), bool)] * parameters.regular)
    return images, all_masks
