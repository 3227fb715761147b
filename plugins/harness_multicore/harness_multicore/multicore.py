"""MultiCore (paper 002): an ensemble of PatchCore+ predictors chosen on synthetic anomalies, fused by a UNet.

Selection (paper 002 §4.2), once per reference: on the defect-free training images of the declared
``reference`` category, Stratified Synthetic Anomalies are made from a seeded share
(``ssa_share``) and the rest fills the memory banks; every candidate predicts the synthetic set
once (maps normalised by the mean and std of its maps on training images); greedy selection by
coverage starts from the first candidate (PatchCore's own setting), adds the candidate that most
raises the pixel AUROC of the mean normalised map, and stops at ``selection_size`` or when
coverage stops rising. MC-k uses the first k of that ordered list, for every category and seed;
the result is recorded in each row's notes. Without a ``reference`` the selection runs on the
category's own training images (a labelled fallback, not the paper's protocol).

fit(): the category's SSA (from its own training normals, never a test image), the k chosen
predictors fitted on the rest, and the Heatmap Fusion Module (UNet) trained on their maps.
score(): normalised maps of the chosen predictors -> UNet -> sigmoid map; image score = its max.

Defaults are the paper's: the 48-candidate grid, a 25,000-patch coreset, 2,060 SSA masks, 300
fusion epochs, and PatchCore's pretrained wide_resnet50_2 (paper 002 uses PatchCore's features
and names no other backbone).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from harness import Sample, Scores
from harness_multicore.fusion import UNet, train_fusion
from harness_multicore.patchcore_plus import DISTANCES, FeatureBackbone, Hyperparameters, PatchCorePlus
from harness_multicore.selection import Selection, greedy_selection, paper_grid, reference_images, selection_once
from harness_multicore.synthetic_anomalies import SSAParameters, synthetic_set

PAPER_GRID = paper_grid([3, 1, 5, 7], [1, 3, 5], DISTANCES)
"""Paper 002's candidates: patch size x stride x distance (48); the first is PatchCore's own."""
PAPER_CORESET = 25_000
PAPER_BACKBONE = {"backbone": "wide_resnet50_2", "pre_trained": True}


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


def _job_seed(seed: int | None) -> int:
    """``seed`` when given, else the job's (the harness seeds torch with it before ``fit``)."""
    return int(seed) if seed is not None else int(torch.initial_seed()) % 2**31


class PatchCorePlusDetector:
    """A single PatchCore+ predictor as a harness detector (image score = max of the map)."""

    def __init__(
        self,
        patch_size: int = 3,
        stride: int = 1,
        distance: str = "euclidean",
        coreset_size: int = PAPER_CORESET,
        backbone: str = PAPER_BACKBONE["backbone"],
        pre_trained: bool = PAPER_BACKBONE["pre_trained"],
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
    """MC-k: the first k predictors of the greedy selection on the reference category, with a fusion UNet."""

    def __init__(
        self,
        n_predictors: int = 2,
        candidates: Sequence[Any] | None = None,
        reference: str | None = None,
        selection_size: int = 8,
        selection_seed: int = 0,
        coreset_size: int = PAPER_CORESET,
        backbone: str = PAPER_BACKBONE["backbone"],
        pre_trained: bool = PAPER_BACKBONE["pre_trained"],
        weights: str | None = None,
        ssa: dict[str, Any] | None = None,
        ssa_share: float = 0.2,
        fusion_epochs: int = 300,
        fusion_lr: float = 1e-5,
        fusion_momentum: float = 0.999,
        fusion_batch_size: int = 16,
        seed: int | None = None,
    ) -> None:
        self.n_predictors = int(n_predictors)
        self.candidates = parse_candidates(candidates)
        self.reference = reference
        self.selection_size, self.selection_seed = max(int(selection_size), self.n_predictors), int(selection_seed)
        self.coreset_size, self.seed, self.ssa_share = int(coreset_size), seed, float(ssa_share)
        self.ssa_parameters = SSAParameters(**(ssa or {}))
        self.fusion = {
            "epochs": int(fusion_epochs),
            "lr": float(fusion_lr),
            "momentum": float(fusion_momentum),
            "batch_size": int(fusion_batch_size),
        }
        self.backbone_options = {"backbone": backbone, "pre_trained": pre_trained, "weights": weights}
        self.weights = f"local file: {weights}" if weights else ("pretrained" if pre_trained else "random-init")
        self.selection: Selection | None = None
        self.selected: list[Hyperparameters] = []
        self.fit_note = ""

    greedy_selection = staticmethod(greedy_selection)

    def _synthetic(self, images: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(memory-bank images, synthetic images, masks): SSA on a seeded share, the rest for the banks."""
        order = np.random.default_rng(seed).permutation(len(images))
        n_bases = max(1, round(self.ssa_share * len(images)))
        synthetic, masks = synthetic_set(list(images[order[:n_bases]]), self.ssa_parameters, seed)
        return images[order[n_bases:]], np.stack(synthetic), masks

    def _predict_synthetic(
        self, bank: np.ndarray, synthetic: np.ndarray, candidates: Sequence[Hyperparameters], seed: int
    ) -> dict[Hyperparameters, tuple[PatchCorePlus, float, float, np.ndarray]]:
        """Each candidate fitted once and its normalised maps of the synthetic set (stage one)."""
        bank_features = _features(self.backbone, bank)
        synthetic_features = _features(self.backbone, synthetic)
        size = synthetic.shape[1:3]
        cached = {}
        for h in candidates:
            predictor = PatchCorePlus(h, self.coreset_size, seed).fit(bank_features)
            train_maps = predictor.predict(bank_features[: min(16, len(bank_features))], size)
            mean, std = float(train_maps.mean()), float(train_maps.std() + 1e-8)
            cached[h] = (predictor, mean, std, (predictor.predict(synthetic_features, size) - mean) / std)
        return cached

    def _select(self, images: np.ndarray) -> Selection:
        """The greedy selection on the reference category (or, without one, on ``images``), once per setting."""
        source, label = images, "this category's own training images (no reference declared)"
        if self.reference is not None:
            source, label = reference_images(str(self.reference), images.shape[1:3])

        def run() -> Selection:
            bank, synthetic, masks = self._synthetic(source, self.selection_seed)
            cached = self._predict_synthetic(bank, synthetic, self.candidates, self.selection_seed)
            predictions = {h: entry[3] for h, entry in cached.items()}
            chosen, coverage = greedy_selection(predictions, masks, self.candidates[0], self.selection_size)
            return Selection(tuple(chosen), tuple(coverage), label)

        if self.reference is None:
            return run()
        key = (str(self.reference), images.shape[1:3], tuple(self.candidates), self.selection_size,
               self.selection_seed, self.coreset_size, self.ssa_parameters, self.ssa_share,
               tuple(sorted(self.backbone_options.items())))  # fmt: skip
        return selection_once(key, run)

    def fit(self, samples: Sequence[Sample]) -> MultiCore:
        """Select once on the reference, then fit the first k predictors and the fusion UNet on this category."""
        images = _stack(samples)
        seed = _job_seed(self.seed)
        self.backbone = FeatureBackbone(**self.backbone_options)
        self.selection = self._select(images)
        self.selected = list(self.selection.predictors[: self.n_predictors])
        self.fit_note = self.selection.describe(self.n_predictors)
        bank, synthetic, masks = self._synthetic(images, seed)
        cached = self._predict_synthetic(bank, synthetic, self.selected, seed)
        self.predictors = [cached[h][:3] for h in self.selected]
        inputs = torch.from_numpy(np.stack([cached[h][3] for h in self.selected], axis=1)).float()
        targets = torch.from_numpy(masks[:, None].astype(np.float32))
        self.unet = train_fusion(self._fit_size(inputs), self._fit_size(targets), seed=seed, **self.fusion)
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
