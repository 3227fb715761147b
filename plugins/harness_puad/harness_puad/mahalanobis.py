"""The unpicturable-anomaly score of PUAD (paper 003, Sec. 3.3-3.4).

Global-average-pooled network features (Eq. 1), a Gaussian fitted on training normals with a
Ledoit-Wolf shrunk covariance (scikit-learn), and the Mahalanobis distance to it (Eq. 2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.covariance import LedoitWolf


def pooled(features: torch.Tensor) -> np.ndarray:
    """Global average pooling of N x C x H x W features: N x C (paper 003, Eq. 1)."""
    return features.mean(dim=(2, 3)).double().cpu().numpy()


class GaussianFeatures:
    """Mean and Ledoit-Wolf covariance of training feature vectors; scores by Mahalanobis distance."""

    def __init__(self) -> None:
        self.estimator = LedoitWolf()

    def fit(self, features: np.ndarray) -> GaussianFeatures:
        """Fit on N x C feature vectors of defect-free training images."""
        self.estimator.fit(features)
        return self

    def distance(self, features: np.ndarray) -> np.ndarray:
        """sqrt((y - mu)^T Sigma^-1 (y - mu)) per row (scikit-learn returns the square)."""
        return np.sqrt(np.maximum(self.estimator.mahalanobis(features), 0.0))

    @property
    def mean(self) -> np.ndarray:
        """The fitted mean vector."""
        return self.estimator.location_

    @property
    def covariance(self) -> np.ndarray:
        """The fitted (shrunk) covariance matrix."""
        return self.estimator.covariance_


@dataclass(frozen=True)
class ZScore:
    """``(x - mean) / std`` with statistics from validation normals (paper 003, Sec. 3.4)."""

    mean: float
    std: float

    @classmethod
    def of(cls, values: np.ndarray) -> ZScore:
        """Statistics of ``values``; a zero spread becomes 1 so scores stay finite."""
        std = float(np.std(values))
        return cls(float(np.mean(values)), std if std > 0 else 1.0)

    def __call__(self, values: np.ndarray) -> np.ndarray:
        """The z-scores of ``values``."""
        return (values - self.mean) / self.std
