"""The embedded dataset: procedurally generated categories with defect types, families and masks.

It is written once per parameter set as an MVTec AD-layout tree under the harness home
(``$HARNESS_HOME``, default ``~/.cache/harness``) and read back through the MVTec layout, so
every other layout and tool (anomalib's own datamodules included) can use the same files.
Generation is deterministic: each image is drawn from its own seeded generator.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from harness.store import harness_home

GENERATOR_VERSION = 1
CATEGORIES = ("weave", "disc", "grain")
FAMILIES = {
    "scratch": "surface",
    "crack": "surface",
    "spot": "contamination",
    "stain": "contamination",
    "hole": "structure",
}
DEFECT_TYPES = tuple(FAMILIES)


def _weave(rng: np.random.Generator, size: int) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    period = rng.uniform(9, 12)
    phase = rng.uniform(0, 2 * np.pi, size=2)
    base = 128 + 45 * np.sin(2 * np.pi * x / period + phase[0]) * np.sin(2 * np.pi * y / period + phase[1])
    grey = base + rng.normal(0, 6, (size, size))
    return np.stack([grey * 1.05, grey * 0.9, grey * 0.7], axis=-1)


def _disc(rng: np.random.Generator, size: int) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    cy, cx = size / 2 + rng.normal(0, size * 0.015, size=2)
    radius = np.hypot(y - cy, x - cx) / size
    body = np.where(radius < 0.34, 190.0, 45.0)
    body = np.where(radius < 0.12, 70.0, body)  # centre bore
    body += 12 * np.cos(radius * 60)  # machining rings
    from scipy.ndimage import gaussian_filter  # on generation only: importing scipy costs ~0.15 s

    grey = gaussian_filter(body, 0.8) + rng.normal(0, 5, (size, size))
    return np.stack([grey, grey * 0.95, grey * 0.9], axis=-1)


def _grain(rng: np.random.Generator, size: int) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    noise = gaussian_filter(rng.normal(0, 1, (size, size)), 2.0)
    noise = (noise - noise.mean()) / (noise.std() + 1e-6)
    grey = 120 + 28 * noise + rng.normal(0, 4, (size, size))
    return np.stack([grey * 0.8, grey * 0.95, grey * 1.15], axis=-1)


BACKGROUNDS: dict[str, Callable[[np.random.Generator, int], np.ndarray]] = {
    "weave": _weave,
    "disc": _disc,
    "grain": _grain,
}


def _place(rng: np.random.Generator, size: int, category: str) -> tuple[float, float]:
    if category == "disc":  # defects on the part, not on the background
        angle, dist = rng.uniform(0, 2 * np.pi), rng.uniform(0.15, 0.3) * size
        return size / 2 + dist * np.sin(angle), size / 2 + dist * np.cos(angle)
    return tuple(rng.uniform(0.2, 0.8, size=2) * size)  # type: ignore[return-value]


def _defect(rng: np.random.Generator, image: np.ndarray, kind: str, category: str) -> tuple[np.ndarray, np.ndarray]:
    size = image.shape[0]
    mask_image = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(mask_image)
    cy, cx = _place(rng, size, category)
    strength = rng.uniform(0.35, 1.0)  # severity varies, so some defects are subtle
    if kind in ("scratch", "crack"):
        if kind == "scratch":
            angle, length = rng.uniform(0, np.pi), rng.uniform(0.15, 0.4) * size
            dy, dx = np.sin(angle) * length / 2, np.cos(angle) * length / 2
            points = [(cx - dx, cy - dy), (cx + dx, cy + dy)]
        else:
            steps = rng.normal(0, size * 0.04, size=(8, 2)).cumsum(axis=0)
            points = [(cx + sx, cy + sy) for sy, sx in steps]
        draw.line(points, fill=255, width=int(rng.integers(1, 3)))
        mask = np.asarray(mask_image) > 0
        shift = (90 if kind == "scratch" else -90) * strength
        image[mask] = image[mask] + shift
    else:  # spot, stain, hole (DEFECT_TYPES is closed)
        radius = rng.uniform(3, 7) if kind != "stain" else rng.uniform(7, 13)
        angles = np.sort(rng.uniform(0, 2 * np.pi, size=7))
        radii = radius * rng.uniform(0.7, 1.3, size=7) * size / 128
        draw.polygon([(cx + r * np.cos(a), cy + r * np.sin(a)) for a, r in zip(angles, radii, strict=True)], fill=255)
        mask = np.asarray(mask_image) > 0
        if kind == "spot":
            image[mask] = image[mask] * (1 - 0.7 * strength)
        elif kind == "stain":
            image[mask] = image[mask] * np.array([1 + 0.35 * strength, 1.0, 1 - 0.35 * strength])
        else:
            image[mask] = 15.0
    return image, mask


def _save(array: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(array, 0, 255).astype(np.uint8)).save(path)


def generate(
    root: Path,
    *,
    categories: tuple[str, ...] = CATEGORIES,
    n_train: int = 60,
    n_test_good: int = 20,
    n_per_defect: int = 6,
    size: int = 128,
    seed: int = 0,
) -> None:
    """Write the synthetic dataset as an MVTec AD tree under ``root`` (which must not exist)."""
    for c_index, category in enumerate(categories):
        base = root / category
        background = BACKGROUNDS[category]
        for stream, (split, count) in enumerate((("train", n_train), ("test", n_test_good))):
            for i in range(count):
                rng = np.random.default_rng([seed, c_index, stream, i])
                _save(background(rng, size), base / split / "good" / f"{i:03d}.png")
        for d_index, kind in enumerate(DEFECT_TYPES):
            for i in range(n_per_defect):
                rng = np.random.default_rng([seed, c_index, 2 + d_index, i])
                image, mask = _defect(rng, background(rng, size), kind, category)
                _save(image, base / "test" / kind / f"{i:03d}.png")
                _save(mask.astype(np.uint8) * 255, base / "ground_truth" / kind / f"{i:03d}_mask.png")
        (base / "families.json").write_text(json.dumps(FAMILIES, indent=1))


def ensure_generated(**params: object) -> Path:
    """Generate the dataset for ``params`` once (atomically) and return its root."""
    key = json.dumps({"generator": GENERATOR_VERSION, **params}, sort_keys=True)
    root = harness_home() / "synthetic" / hashlib.sha256(key.encode()).hexdigest()[:12]
    if (root / ".complete").exists():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root.parent))
    try:
        generate(staging, **params)  # type: ignore[arg-type]
        (staging / ".complete").write_text(key)
        try:
            staging.rename(root)
        except OSError:  # another process won the race; its copy is identical
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return root
