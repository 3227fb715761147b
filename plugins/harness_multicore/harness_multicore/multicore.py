"""MultiCore (paper 002): an ensemble of PatchCore+ predictors chosen on synthetic anomalies, fused by a UNet.

fit():
1. A seeded share of the training normals (``ssa_share``) becomes the bases of the Stratified
   Synthetic Anomalies; the rest fills the memory banks, so no synthetic image is a copy of a
   memory-bank image. No test image is used.
2. Every candidate predictor is fitted once and predicts the synthetic set once; predictions are
   normalised by the mean and std of that predictor's maps on training images and kept
   (stage one), so selection and fusion never rescore (stage two).
3. Greedy selection by coverage: start from the first candidate (PatchCore's own setting), add
   the candidate whose addition gives the highest pixel AUROC of the mean normalised map on the
   synthetic set, stop at ``n_predictors`` or when coverage stops rising.
4. The Heatmap Fusion Module (UNet) learns masks from the selected normalised maps.
score(): normalised maps of the selected predictors -> UNet -> sigmoid map; image score = its max.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score

from harness import Sample, Scores
from harness.synthetic_anomalies import SSAParameters, synthetic_set
from harness_multicore.fusion import UNet, train_fusion
from harness_multicore.patchcore_plus import DISTANCES, FeatureBackbone, Hyperparameters, PatchCorePlus

PAPER_GRID = [Hyperparameters(p, s, d) for p, s, d in itertools.product([3, 1, 5, 7], [1, 3, 5], DISTANCES)]
"""Paper 002's candidates: patch size x stride x distance (48); the first is PatchCore's own."""


def parse_candidates(candidates: Sequence[Any] | None) -> list[Hyperparameters]:
    """Candidates from ``[{patch_size, stride, distance}, ...]`` or ``["p3-s1-euclidean", ...]``."""
    if not candidates:
        return list(PAPER_GRID)
    parsed = []
    for item in candidates:
        if isinstance(item, str):
            p, s, d = item.split("-", 2)
            parsed.append(Hyperparameters(int(p.lstrip("p")), int(s.lstrip("s")), d))
        else:
            parsed.append(Hyperparameters(**item))
    return parsed


def _stack(samples: Sequence[Sample]) -> np.ndarray:
    return np.stack([s.image for s in samples])


def _features(backbone: FeatureBackbone, images: np.ndarray, batch: int = 32) -> torch.Tensor:
    return torch.cat([backbone(images[i : i + batch]) for i in range(0, len(images), batch)])


class PatchCorePlusDetector:
    """A single PatchCore+ predictor as a harness detector (image score = max of the map)."""

    def __init__(
        self,
        patch_size: int = 3,
        stride: int = 1,
        distance: str = "euclidean",
        coreset_size: int = 1000,
        backbone: str = "resnet18",
        pre_trained: bool = False,
        weights: str | None = None,
    ) -> None:
        self.h = Hyperparameters(patch_size, stride, distance)
        self.coreset_size = coreset_size
        self.backbone_options = {"backbone": backbone, "pre_trained": pre_trained, "weights": weights}
        self.weights = f"local file: {weights}" if weights else ("pretrained" if pre_trained else "random-init")

    def fit(self, samples: Sequence[Sample]) -> PatchCorePlusDetector:
        """Memory bank from the training patches."""
        self.backbone = FeatureBackbone(**self.backbone_options)
        self.predictor = PatchCorePlus(self.h, self.coreset_size).fit(_features(self.backbone, _stack(samples)))
        return self

    def score(self, samples: Sequence[Sample]) -> Scores:
        """Nearest-neighbour maps and their maxima."""
        images = _stack(samples)
        maps = self.predictor.predict(_features(self.backbone, images), images.shape[1:3])
        return Scores(maps.reshape(len(samples), -1).max(axis=1), maps)

    @property
    def torch_module(self) -> torch.nn.Module:
        """The feature extractor (the nearest-neighbour search is not a module)."""
        return self.backbone.extractor


class MultiCore:
    """MC-k: the greedy ensemble of PatchCore+ predictors with a fusion UNet."""

    def __init__(
        self,
        n_predictors: int = 2,
        candidates: Sequence[Any] | None = None,
        coreset_size: int = 1000,
        backbone: str = "resnet18",
        pre_trained: bool = False,
        weights: str | None = None,
        ssa: dict[str, Any] | None = None,
        ssa_share: float = 0.2,
        fusion_epochs: int = 300,
        fusion_lr: float = 1e-5,
        fusion_momentum: float = 0.999,
        fusion_batch_size: int = 16,
        seed: int = 0,
    ) -> None:
        self.n_predictors = int(n_predictors)
        self.candidates = parse_candidates(candidates)
        self.coreset_size, self.seed, self.ssa_share = int(coreset_size), int(seed), float(ssa_share)
        self.ssa_parameters = SSAParameters(**(ssa or {}))
        self.fusion = {
            "epochs": int(fusion_epochs),
            "lr": float(fusion_lr),
            "momentum": float(fusion_momentum),
            "batch_size": int(fusion_batch_size),
        }
        self.backbone_options = {"backbone": backbone, "pre_trained": pre_trained, "weights": weights}
        self.weights = f"local file: {weights}" if weights else ("pretrained" if pre_trained else "random-init")
        self.selected: list[Hyperparameters] = []
        self.coverage: list[float] = []

    # -- stage one: every candidate predicts the synthetic set once ------------------------------
    def _stage_one(self, bank_images: np.ndarray, synthetic: np.ndarray) -> dict[Hyperparameters, Any]:
        bank_features = _features(self.backbone, bank_images)
        synthetic_features = _features(self.backbone, synthetic)
        size = synthetic.shape[1:3]
        cached = {}
        for h in self.candidates:
            predictor = PatchCorePlus(h, self.coreset_size, self.seed).fit(bank_features)
            train_maps = predictor.predict(bank_features[: min(16, len(bank_features))], size)
            mean, std = float(train_maps.mean()), float(train_maps.std() + 1e-8)
            cached[h] = (predictor, mean, std, (predictor.predict(synthetic_features, size) - mean) / std)
        return cached

    # -- stage two: greedy selection by coverage, from cached predictions ------------------------
    @staticmethod
    def greedy_selection(
        predictions: dict[Hyperparameters, np.ndarray], masks: np.ndarray, first: Hyperparameters, limit: int
    ) -> tuple[list[Hyperparameters], list[float]]:
        """Add, one at a time, the predictor that most raises the pixel AUROC of the mean map."""
        truth = masks.reshape(-1)

        def coverage(group: list[Hyperparameters]) -> float:
            mean = np.mean([predictions[h] for h in group], axis=0)
            return float(roc_auc_score(truth, mean.reshape(-1)))

        selected, history = [first], [coverage([first])]
        while len(selected) < limit:
            scores = {h: coverage([*selected, h]) for h in predictions if h not in selected}
            if not scores:
                break
            best = max(scores, key=scores.get)
            if scores[best] <= history[-1]:
                break  # coverage stopped rising
            selected.append(best)
            history.append(scores[best])
        return selected, history

    def fit(self, samples: Sequence[Sample]) -> MultiCore:
        """Synthesise, predict once per candidate, select greedily, train the fusion UNet."""
        images = _stack(samples)
        rng = np.random.default_rng(self.seed)
        order = rng.permutation(len(images))
        n_bases = max(1, round(self.ssa_share * len(images)))
        bases, bank = images[order[:n_bases]], images[order[n_bases:]]
        synthetic, masks = synthetic_set(list(bases), self.ssa_parameters, self.seed)
        synthetic = np.stack(synthetic)
        self.backbone = FeatureBackbone(**self.backbone_options)
        cached = self._stage_one(bank, synthetic)
        predictions = {h: entry[3] for h, entry in cached.items()}
        self.selected, self.coverage = self.greedy_selection(predictions, masks, self.candidates[0], self.n_predictors)
        self.predictors = [cached[h][:3] for h in self.selected]
        inputs = torch.from_numpy(np.stack([predictions[h] for h in self.selected], axis=1)).float()
        targets = torch.from_numpy(masks[:, None].astype(np.float32))
        self.unet = train_fusion(self._fit_size(inputs), self._fit_size(targets), seed=self.seed, **self.fusion)
        return self

    @staticmethod
    def _fit_size(x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        target = (max(4, height // 4 * 4), max(4, width // 4 * 4))
        return x if (height, width) == target else F.interpolate(x, size=target, mode="bilinear", align_corners=False)

    @torch.no_grad()
    def score(self, samples: Sequence[Sample]) -> Scores:
        """Fused maps and their maxima."""
        images = _stack(samples)
        features = _features(self.backbone, images)
        size = images.shape[1:3]
        normalised = [(p.predict(features, size) - mean) / std for p, mean, std in self.predictors]
        inputs = self._fit_size(torch.from_numpy(np.stack(normalised, axis=1)).float())
        fused = torch.sigmoid(self.unet(inputs))
        maps = F.interpolate(fused, size=tuple(size), mode="bilinear", align_corners=False)[:, 0].numpy()
        return Scores(maps.reshape(len(samples), -1).max(axis=1), maps)

    @property
    def torch_module(self) -> torch.nn.Module:
        """The feature extractor (the fusion UNet runs on its maps; the nearest-neighbour search is no module)."""
        return self.backbone.extractor

    @property
    def parameters(self) -> int:
        """Backbone plus fusion UNet parameters (memory banks not counted)."""
        modules: list[torch.nn.Module] = [self.backbone.extractor, getattr(self, "unet", UNet(1))]
        return int(sum(p.numel() for m in modules for p in m.parameters()))
