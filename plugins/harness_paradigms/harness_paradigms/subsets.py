"""Training subsets beyond the standard split: few shots, contaminated training sets, unions and sequences.

A :class:`~harness.scoring.TrainingSubset` says which defect-free training images a model is
fitted on and which are held out for calibration; its ``describe()`` enters the job's cache key.
The variants here change only the *fitted* images, never the held-out ones, so a protocol that
varies them (few_shot, noisy_training, continual) calibrates every variant on the same normals,
and each (model, category, seed, subset) is fitted once and read from the cache afterwards.

The kinds import this module where they plan jobs, not at import (it loads harness.scoring).

Paper 004 (the IADBE thesis, sections 3.6, 3.8, 3.9 and Table 4.3) names the paradigms.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.analysis import Category, Record, TrainingSubset


@dataclass(frozen=True)
class FewShotSubset(TrainingSubset):
    """``shots`` training normals drawn (seeded by split seed, shots and ``draw``) from the standard fit split.

    The held-out normals are those of the standard split, the same for every ``shots`` and ``draw``.
    """

    shots: int = 1
    draw: int = 0

    def split(self, category: Category) -> tuple[list[Record], list[Record]]:
        """(k fit images, the standard held-out images); all fit images when fewer than ``shots`` exist."""
        fit, held = super().split(category)
        if self.shots >= len(fit):
            return fit, held
        chosen = np.random.default_rng([self.split_seed, self.shots, self.draw]).choice(
            len(fit), size=self.shots, replace=False
        )
        return [fit[i] for i in sorted(chosen.tolist())], held

    def describe(self) -> dict[str, Any]:
        """The standard split plus the shot count and draw."""
        return {**super().describe(), "shots": self.shots, "draw": self.draw}


@dataclass(frozen=True)
class ContaminatedSubset(TrainingSubset):
    """The standard fit split plus ``contaminants`` (defective images handed over as if normal).

    ``rate`` is the share of the resulting training set that is defective; the held-out normals
    stay clean and identical for every rate.
    """

    rate: float = 0.0
    contamination_seed: int = 0
    contaminants: tuple[Record, ...] = ()

    def split(self, category: Category) -> tuple[list[Record], list[Record]]:
        """(fit normals + contaminants, the standard held-out images)."""
        fit, held = super().split(category)
        return fit + list(self.contaminants), held

    def describe(self) -> dict[str, Any]:
        """The standard split plus the rate, the seed and which images were slipped in."""
        return {
            **super().describe(),
            "contamination": self.rate,
            "contamination_seed": self.contamination_seed,
            "contaminants": [f"{r.defect_type}/{r.path.name}" for r in self.contaminants],
        }


def contaminant_count(rate: float, n_normal: int) -> int:
    """How many defective images make ``rate`` of a training set holding ``n_normal`` normals."""
    if rate <= 0:
        return 0
    return round(rate * n_normal / (1 - rate))


@dataclass(frozen=True)
class UnionSubset(TrainingSubset):
    """The standard split of each category of ``categories`` (a merged category), fitted together.

    With ``incremental=True`` the detector is taught them one after the other, in the order
    given: ``fit`` on the first category's images, then ``fit_more`` on each next one (see
    :func:`teach`); otherwise it is fitted once on their union.
    """

    categories: tuple[str, ...] = ()
    incremental: bool = False

    def stages(self, category: Category) -> list[list[Record]] | None:
        """The fit images per step, in sequence order, for an incremental subset; None otherwise."""
        if not self.incremental:
            return None
        members = {member.name: member for member in category.members}
        return [TrainingSubset.split(self, members[name])[0] for name in self.categories]

    def describe(self) -> dict[str, Any]:
        """The standard split plus the categories (in order) and how they are taught."""
        design = "incremental" if self.incremental else "union"
        return {**super().describe(), "union": list(self.categories), "design": design}


def supports_continual(model: Any) -> bool:
    """Whether a registered model declares that its detectors can continue fitting.

    ``model`` is what the plugin manager returns for the name: a model registration (whose
    ``continual`` flag is read) or a plain factory (its ``continual`` attribute). A registration
    wrapping a plain factory also counts the factory's own attribute.
    """
    factory = getattr(model, "factory", None)
    return bool(getattr(model, "continual", False) or getattr(factory, "continual", False))
