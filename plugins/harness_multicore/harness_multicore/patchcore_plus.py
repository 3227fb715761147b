"""PatchCore+ (paper 002): PatchCore with a preset coreset size, patch size, stride and distance.

Built on anomalib's pieces: its ``TimmFeatureExtractor`` for the backbone features and its
``KCenterGreedy`` coreset sampler, whose farthest-point distances follow the predictor's own
distance (paper 002 §4: "The original publication used Euclidean distance for the coreset
sub-sampling and inference. We create an option for other distance metrics to be used").
Scores are nearest-neighbour distances of patch features to the memory bank under the same
distance; the map is upsampled to the image size and smoothed (sigma 4, as PatchCore).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import gaussian_filter

DISTANCES = ("euclidean", "cosine", "minkowski3", "manhattan")


@dataclass(frozen=True)
class Hyperparameters:
    """One predictor's settings (a point of paper 002's grid)."""

    patch_size: int = 3
    stride: int = 1
    distance: str = "euclidean"

    @property
    def name(self) -> str:
        """A short label, e.g. ``p3-s1-euclidean``."""
        return f"p{self.patch_size}-s{self.stride}-{self.distance}"


def pairwise(queries: torch.Tensor, bank: torch.Tensor, metric: str) -> torch.Tensor:
    """(len(queries), len(bank)) distances under ``metric``."""
    if metric not in DISTANCES:
        raise ValueError(f"distance must be one of {DISTANCES}, got {metric!r}")
    if metric == "cosine":
        return 1 - F.normalize(queries, dim=1) @ F.normalize(bank, dim=1).T
    return torch.cdist(queries, bank, p={"euclidean": 2.0, "minkowski3": 3.0, "manhattan": 1.0}[metric])


def distances(queries: torch.Tensor, bank: torch.Tensor, metric: str, chunk: int = 4096) -> torch.Tensor:
    """Distance from each query to its nearest memory-bank entry under ``metric``."""
    return torch.cat(
        [pairwise(queries[i : i + chunk], bank, metric).min(dim=1).values for i in range(0, queries.shape[0], chunk)]
    )


def coreset(patches: torch.Tensor, size: int, metric: str) -> torch.Tensor:
    """``size`` patches chosen by anomalib's k-center greedy, farthest points measured with ``metric``.

    Euclidean is anomalib's sampler as it is (on its sparse random projection, as PatchCore);
    the other distances are measured on the features themselves, since a random projection keeps
    Euclidean distances only.
    """
    from anomalib.models.components import KCenterGreedy

    class MetricKCenterGreedy(KCenterGreedy):
        def update_distances(self, cluster_center: int | torch.Tensor | None) -> None:
            if metric == "euclidean" or cluster_center is None:
                super().update_distances(cluster_center)
                return
            found = pairwise(self.embedding, self.embedding[cluster_center].reshape(1, -1), metric)
            self.min_distances = found if self.min_distances is None else torch.minimum(self.min_distances, found)

    with contextlib.redirect_stderr(io.StringIO()):  # anomalib's sampler draws a progress bar per call
        return MetricKCenterGreedy(embedding=patches, sampling_ratio=(size + 0.5) / patches.shape[0]).sample_coreset()


class FeatureBackbone:
    """Layer-2 and layer-3 features of a (random-init or pretrained) timm backbone, concatenated."""

    def __init__(self, backbone: str = "resnet18", pre_trained: bool = False, weights: str | None = None) -> None:
        from anomalib.models.components import TimmFeatureExtractor

        self.extractor = TimmFeatureExtractor(
            backbone=backbone, layers=["layer2", "layer3"], pre_trained=pre_trained and weights is None
        ).eval()
        if weights is not None:
            state = torch.load(weights, map_location="cpu", weights_only=True)
            self.extractor.feature_extractor.load_state_dict(state, strict=False)
        self.mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        self.std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)

    @torch.no_grad()
    def __call__(self, images: np.ndarray) -> torch.Tensor:
        """(N, H, W, 3) uint8 -> (N, C, h, w) features at layer-2 resolution."""
        x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
        features = self.extractor((x - self.mean) / self.std)
        layer2, layer3 = features["layer2"], features["layer3"]
        layer3 = F.interpolate(layer3, size=layer2.shape[-2:], mode="bilinear", align_corners=False)
        return torch.cat([layer2, layer3], dim=1)


class PatchCorePlus:
    """One nearest-neighbour predictor over shared backbone features."""

    def __init__(self, hyperparameters: Hyperparameters, coreset_size: int = 1000, seed: int = 0) -> None:
        self.h = hyperparameters
        self.coreset_size = int(coreset_size)
        self.seed = seed
        self.bank: torch.Tensor | None = None

    def patches(self, features: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """Locally aggregated patch features (N * h' * w', C) and the patch grid (h', w')."""
        pooled = F.avg_pool2d(features, self.h.patch_size, stride=self.h.stride, padding=self.h.patch_size // 2)
        grid = pooled.shape[-2:]
        return pooled.permute(0, 2, 3, 1).reshape(-1, pooled.shape[1]), (int(grid[0]), int(grid[1]))

    def fit(self, features: torch.Tensor) -> PatchCorePlus:
        """Build the memory bank: a coreset of ``coreset_size`` training patches under the predictor's distance."""
        patches, _ = self.patches(features)
        if patches.shape[0] > self.coreset_size:
            torch.manual_seed(self.seed)
            patches = coreset(patches, self.coreset_size, self.h.distance)
        self.bank = patches
        return self

    def predict(self, features: torch.Tensor, image_size: Sequence[int]) -> np.ndarray:
        """Anomaly maps (N, H, W) at ``image_size``."""
        if self.bank is None:
            raise RuntimeError("predict() before fit()")
        patches, grid = self.patches(features)
        scores = distances(patches, self.bank, self.h.distance).reshape(features.shape[0], 1, *grid)
        maps = F.interpolate(scores, size=tuple(image_size), mode="bilinear", align_corners=False)[:, 0].numpy()
        return np.stack([gaussian_filter(m, sigma=4) for m in maps]).astype(np.float32)
