"""PUAD (paper 003) as a harness detector: EfficientAD-S plus a Mahalanobis score, z-normalised and summed.

``fit`` splits the training normals it is given into a training part and a validation part
(``validation_fraction``, seeded): EfficientAD trains on the first, the Gaussian of pooled
student features is fitted on the first, and both scores' z-statistics (and EfficientAD's map
quantiles) come from the second. The test set is never seen before ``score``.

One fitted model serves three rows: ``puad`` (the sum), ``puad_efficientad`` (EfficientAD's
picturable score alone) and ``puad_mahalanobis`` (the unpicturable score alone). The fit is
kept on disk under ``$HARNESS_HOME/fits/puad``, keyed by the training pixels, options and seed,
so the three rows of a protocol train once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from harness_anomalib.detector import to_tensor, torch_device
from safetensors import safe_open
from safetensors.torch import save as save_tensors

from harness import ModelError, Sample, Scores, by_content, harness_home, validation_split, write_atomic
from harness_puad.efficientad import INPUT_SIZE, EfficientAdTrainer, to_input_size, train
from harness_puad.mahalanobis import GaussianFeatures, ZScore, pooled

logger = logging.getLogger("harness_puad")
MODES = ("puad", "efficientad", "mahalanobis")
TRAINER_OPTIONS = ("teacher_weights", "pretrained", "imagenet_dir", "penalty", "model_size", "lr", "weight_decay")


@dataclass
class FittedPUAD:
    """What scoring needs: the trained EfficientAD model, the Gaussian and the two z-statistics."""

    model: Any  # anomalib's EfficientAdModel
    gaussian: GaussianFeatures
    picturable: ZScore
    unpicturable: ZScore
    weights: str
    train_seconds: float = 0.0


class PUAD:
    """EfficientAD-S + Mahalanobis distance on pooled student features (paper 003).

    Options: ``mode`` (puad | efficientad | mahalanobis), ``max_steps`` (EfficientAD's 70,000),
    ``validation_fraction`` (0.1 of the fit images, at least 2), ``features`` (student: the
    student's first half, the paper's best; teacher), ``teacher_weights`` / ``pretrained``,
    ``imagenet_dir`` / ``penalty``, ``model_size`` (small | medium), ``lr``, ``weight_decay``,
    ``batch_size`` (scoring), ``accelerator``, ``fit_cache`` (true).
    """

    def __init__(
        self,
        mode: str = "puad",
        max_steps: int = 70_000,
        validation_fraction: float = 0.1,
        features: str = "student",
        batch_size: int = 8,
        accelerator: str = "auto",
        fit_cache: bool = True,
        **trainer_options: Any,
    ) -> None:
        if mode not in MODES:
            raise ModelError(f"options.mode must be one of {', '.join(MODES)}, got '{mode}'")
        if features not in ("student", "teacher"):
            raise ModelError(f"options.features must be 'student' or 'teacher', got '{features}'")
        if not 0 < validation_fraction < 1:
            raise ModelError(f"options.validation_fraction must be in (0, 1), got {validation_fraction}")
        unknown = set(trainer_options) - set(TRAINER_OPTIONS)
        if unknown:
            raise ModelError(f"unknown PUAD option(s) {sorted(unknown)}; known: {sorted(TRAINER_OPTIONS)}")
        self.name = "puad" if mode == "puad" else f"puad_{mode}"
        self.mode, self.max_steps, self.validation_fraction = mode, int(max_steps), validation_fraction
        self.features, self.batch_size, self.accelerator = features, int(batch_size), accelerator
        self.fit_cache, self.trainer_options = fit_cache, trainer_options
        self.fitted: FittedPUAD | None = None
        self.shared_fit_seconds: float | None = None
        """Training time of a fit loaded from the fit cache (the harness reports it as the fit time)."""

    # -- fitting ---------------------------------------------------------------------------------
    def split(self, samples: Sequence[Sample], seed: int) -> tuple[list[Sample], list[Sample]]:
        """(train, validation): a seeded split of the training normals given to ``fit``."""
        return validation_split(samples, self.validation_fraction, seed, minimum=2, owner="PUAD")

    def fit(self, samples: Sequence[Sample]) -> PUAD:
        """Train EfficientAD, fit the Gaussian, take z-statistics on validation normals (or load the fit)."""
        seed = int(torch.initial_seed()) % 2**31
        self.shared_fit_seconds = None
        cache = self._cache_path(samples, seed) if self.fit_cache else None
        self.fitted = _load(cache, self.trainer_options) if cache is not None and cache.is_file() else None
        if self.fitted is not None:
            self.fitted.model.to(self.device)
            self.shared_fit_seconds = self.fitted.train_seconds
            return self
        started = time.perf_counter()
        train_part, validation = self.split(samples, seed)
        module = EfficientAdTrainer(**self.trainer_options)
        module = train(module, train_part, validation, self.max_steps, self.accelerator, seed)
        model = module.model.to(self.device).eval()
        gaussian = GaussianFeatures().fit(self._pooled(model, train_part))
        picturable, features = self._raw(model, validation)
        self.fitted = FittedPUAD(
            model,
            gaussian,
            ZScore.of(picturable),
            ZScore.of(gaussian.distance(features)),
            module.weights,
            time.perf_counter() - started,
        )
        if cache is not None:
            with contextlib.suppress(OSError):  # an unwritable cache only costs the sibling rows a refit
                write_atomic(cache, _dump(self.fitted))
            model.to(self.device)
        return self

    def _cache_path(self, samples: Sequence[Sample], seed: int) -> Path:
        digest = hashlib.blake2b(digest_size=16)
        settings = {
            "max_steps": self.max_steps,
            "validation_fraction": self.validation_fraction,
            "features": self.features,
            "seed": seed,
            "versions": [version(name) for name in ("harness-puad", "anomalib", "torch")],
            **{k: str(v) for k, v in self.trainer_options.items()},
        }
        settings["files"] = by_content(self.trainer_options)  # a replaced file or folder is a new fit
        digest.update(json.dumps(settings, sort_keys=True).encode())
        for sample in samples:
            digest.update(np.ascontiguousarray(sample.image).tobytes())
        return harness_home() / "fits" / "puad" / f"{digest.hexdigest()}.safetensors"

    # -- scoring ---------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        """The GPU when the accelerator allows one and one is present, else the CPU."""
        return torch_device(self.accelerator)

    @torch.no_grad()
    def _features(self, model: Any, batch: torch.Tensor, student_output: torch.Tensor | None = None) -> np.ndarray:
        """Pooled features for the Mahalanobis score: the student's first half (or the teacher's output)."""
        if self.features == "teacher":
            return pooled(model._normalize_teacher(model.teacher(batch)))
        if student_output is None:
            student_output = model.student(batch)
        return pooled(student_output[:, : model.teacher_out_channels])

    @torch.no_grad()
    def _forward(self, model: Any, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
        """EfficientAD's normalised map and max score, and the pooled features, from one pass."""
        batch = to_input_size(images.to(self.device))
        student_output, distance_st = model.compute_student_teacher_distance(batch)
        map_st, map_stae = model.compute_maps(batch, student_output, distance_st, normalize=True)
        anomaly_map = 0.5 * map_st + 0.5 * map_stae  # EfficientAD's merge (anomalib's forward)
        score = torch.amax(anomaly_map, dim=(-2, -1)).flatten()
        return anomaly_map, score, self._features(model, batch, student_output)

    def _pooled(self, model: Any, samples: Sequence[Sample]) -> np.ndarray:
        """Pooled feature vectors of ``samples`` (one network pass, no maps)."""
        batches = (to_tensor(samples[i : i + self.batch_size]) for i in range(0, len(samples), self.batch_size))
        return np.concatenate([self._features(model, to_input_size(b.to(self.device))) for b in batches])

    def _raw(self, model: Any, samples: Sequence[Sample]) -> tuple[np.ndarray, np.ndarray]:
        """EfficientAD scores and pooled feature vectors of ``samples``."""
        scores, features = [], []
        for start in range(0, len(samples), self.batch_size):
            _, score, pooled_features = self._forward(model, to_tensor(samples[start : start + self.batch_size]))
            scores.append(score.cpu().numpy())
            features.append(pooled_features)
        return np.concatenate(scores).astype(float), np.concatenate(features)

    def score(self, samples: Sequence[Sample]) -> Scores:
        """Image scores of the chosen mode; maps are EfficientAD's (the Mahalanobis score has none)."""
        if self.fitted is None:
            raise RuntimeError(f"{self.name}: score() called before fit()")
        fitted = self.fitted
        images = to_tensor(samples)
        if self.mode == "mahalanobis":  # the student alone: no teacher, autoencoder or map
            features = self._features(fitted.model, to_input_size(images.to(self.device)))
            return Scores(fitted.gaussian.distance(features), None)
        anomaly_map, picturable, features = self._forward(fitted.model, images)
        picturable = picturable.cpu().numpy().astype(float)
        if self.mode == "efficientad":
            image_scores = picturable
        else:
            image_scores = fitted.picturable(picturable) + fitted.unpicturable(fitted.gaussian.distance(features))
        maps = F.interpolate(anomaly_map, size=images.shape[-2:], mode="bilinear")[:, 0]
        return Scores(image_scores, maps.float().cpu().numpy())

    # -- optional attributes the harness reads -------------------------------------------------------
    @property
    def weights(self) -> str:
        """How EfficientAD's teacher was initialised."""
        return self.fitted.weights if self.fitted else "unknown"

    input_size = (INPUT_SIZE, INPUT_SIZE)
    """What the networks take (samples are resized to it)."""

    @property
    def torch_module(self) -> torch.nn.Module | None:
        """The network this row runs: EfficientAD's three (teacher, student, autoencoder), or the student alone."""
        if self.fitted is None:
            return None
        return self.fitted.model.student if self.mode == "mahalanobis" else self.fitted.model

    @property
    def parameters(self) -> int | None:
        """Parameters of the networks plus the Gaussian's mean and covariance."""
        if self.fitted is None:
            return None
        gaussian = self.fitted.gaussian.mean.size + self.fitted.gaussian.covariance.size
        network = sum(p.numel() for p in self.torch_module.parameters())
        return network + (0 if self.mode == "efficientad" else gaussian)


def _dump(fitted: FittedPUAD) -> bytes:
    """The fit as safetensors: the networks' and the Gaussian's tensors, the rest as JSON metadata (no pickle)."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous().clone() for k, v in fitted.model.state_dict().items()}
    estimator = fitted.gaussian.estimator
    for name in ("location_", "covariance_", "precision_"):
        tensors[f"gaussian.{name}"] = torch.from_numpy(np.ascontiguousarray(getattr(estimator, name)))
    rest = {
        "picturable": [fitted.picturable.mean, fitted.picturable.std],
        "unpicturable": [fitted.unpicturable.mean, fitted.unpicturable.std],
        "weights": fitted.weights,
        "train_seconds": fitted.train_seconds,
        "shrinkage": float(estimator.shrinkage_),
    }
    return save_tensors(tensors, metadata={"puad": json.dumps(rest)})


def _load(path: Path, trainer_options: dict[str, Any]) -> FittedPUAD | None:
    """A cached fit, or None (and the file moved aside) when it cannot be read: the caller refits.

    Only tensors and JSON are read (safetensors), so a file planted in the cache runs no code.
    """
    try:
        with safe_open(path, framework="pt") as handle:
            rest = json.loads((handle.metadata() or {})["puad"])
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118 - not a dict
        model = EfficientAdTrainer(**trainer_options).model
        model.load_state_dict({k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")})
        gaussian = GaussianFeatures()
        for name in ("location_", "covariance_", "precision_"):
            setattr(gaussian.estimator, name, tensors[f"gaussian.{name}"].numpy())
        gaussian.estimator.shrinkage_ = float(rest["shrinkage"])
        gaussian.estimator.n_features_in_ = int(gaussian.estimator.location_.shape[0])
        return FittedPUAD(
            model.eval(),
            gaussian,
            ZScore(*map(float, rest["picturable"])),
            ZScore(*map(float, rest["unpicturable"])),
            str(rest["weights"]),
            float(rest["train_seconds"]),
        )
    except Exception as exc:
        logger.warning("PUAD fit cache %s cannot be read (%s); refitting", path, type(exc).__name__)
        with contextlib.suppress(OSError):
            os.replace(path, path.with_suffix(".bad"))
        return None
