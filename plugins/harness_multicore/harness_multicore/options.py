"""The options each model of this plugin accepts, checked by ``harness validate`` before anything is fitted.

They only validate: the factories still receive the options as the protocol gives them, and the
defaults here are the detectors' own (paper 002's). No torch import, so listing and validating stay light.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Discriminator, Field, Tag

from harness.analysis import Bool, Float, NonNegativeInt, OptionsModel, PositiveInt, Str

Distance = Literal["euclidean", "cosine", "minkowski3", "manhattan"]
"""``harness_multicore.patchcore_plus.DISTANCES``."""
CandidateName = Annotated[Str, Field(pattern=r"^p[1-9][0-9]*-s[1-9][0-9]*-(euclidean|cosine|minkowski3|manhattan)$")]
"""A candidate as ``p<patch_size>-s<stride>-<distance>``, e.g. ``p3-s1-euclidean``."""
Probability = Annotated[Float, Field(ge=0, le=1)]
Positive = Annotated[Float, Field(gt=0)]


class Candidate(OptionsModel):
    """One predictor of the candidate grid (a point of paper 002's grid)."""

    patch_size: PositiveInt = Field(3, description="side of the neighbourhood averaged into a patch feature")
    stride: PositiveInt = Field(1, description="stride of that patch pooling")
    distance: Distance = Field("euclidean", description="nearest-neighbour and coreset distance")


CandidateItem = Annotated[
    Annotated[CandidateName, Tag("name")] | Annotated[Candidate, Tag("fields")],
    Discriminator(lambda value: "name" if isinstance(value, str) else "fields"),
]
"""A candidate by name or by fields: each form reports its own mistake."""


class SSAOptions(OptionsModel):
    """Stratified Synthetic Anomalies (paper 002 §4.1); the defaults give its 2,060 masks."""

    buckets: PositiveInt = Field(29, description="mask-size buckets (grid sizes)")
    per_bucket: NonNegativeInt = Field(60, description="K: single-anomaly masks per bucket")
    per_count: NonNegativeInt = Field(20, description="m: combined masks for each anomaly count 2..max_anomalies")
    regular: NonNegativeInt = Field(200, description="r: images with no anomaly")
    max_anomalies: PositiveInt = Field(7, description="the most anomalies combined in one mask")
    points: tuple[PositiveInt, PositiveInt] = Field((3, 7), description="[fewest, most] polygon points")
    stretch_probabilities: tuple[Probability, Probability, Probability] = Field(
        (0.5, 0.25, 0.25), description="probabilities of no stretch, a stretch along x, along y (sum 1)"
    )
    stretch_range: tuple[Positive, Positive] = Field((0.05, 1.0), description="[lo, hi]: a stretch divides by a draw")
    jitter: Float = Field(0.5, ge=0, description="centre jitter, as a share of the grid cell")
    noise_sigma: Float = Field(0.5, ge=0, description="std of the noise the anomalies are filled with")


class Backbone(OptionsModel):
    """The feature backbone and the coreset size, shared by PatchCore+ and MultiCore."""

    coreset_size: PositiveInt = Field(25_000, description="memory-bank patches kept by k-center greedy")
    backbone: Str = Field("wide_resnet50_2", description="a timm backbone name (layers 2 and 3 are used)")
    pre_trained: Bool = Field(True, description="timm's pretrained weights (false: random init)")
    weights: Str | None = Field(None, description="a local state-dict file for the backbone instead")


class PatchCorePlusOptions(Backbone):
    """Options of model ``patchcore_plus`` (one predictor)."""

    patch_size: PositiveInt = Field(3, description="side of the neighbourhood averaged into a patch feature")
    stride: PositiveInt = Field(1, description="stride of that patch pooling")
    distance: Distance = Field("euclidean", description="nearest-neighbour and coreset distance")


class FixedMultiCoreOptions(Backbone):
    """Options of ``mc2``, ``mc4`` and ``mc8``: MultiCore with its number of predictors fixed by the name."""

    candidates: list[CandidateItem] | None = Field(
        None, description="the grid: [{patch_size, stride, distance}] or ['p3-s1-euclidean', ...]; default paper's 48"
    )
    reference: Str | None = Field(
        None, description="where the predictors are chosen once: embedded:<category> or a folder of normals"
    )
    selection_size: PositiveInt = Field(8, description="the greedy selection's length (at least n_predictors)")
    selection_seed: NonNegativeInt = Field(0, description="seed of the selection's synthetic anomalies")
    ssa: SSAOptions | None = Field(None, description="SSA parameters (default paper 002's)")
    ssa_share: Float = Field(0.2, ge=0, lt=1, description="share of the training normals that become SSA bases")
    fusion_epochs: PositiveInt = Field(300, description="epochs of the fusion UNet")
    fusion_lr: Float = Field(1e-5, gt=0, description="RMSprop learning rate of the fusion UNet")
    fusion_momentum: Float = Field(0.999, ge=0, lt=1, description="RMSprop momentum")
    fusion_batch_size: PositiveInt = Field(16, description="fusion training batch size")
    seed: NonNegativeInt | None = Field(None, description="the fit's seed; default: the job's seed")


class MultiCoreOptions(FixedMultiCoreOptions):
    """Options of model ``multicore``: MC-k with k = ``n_predictors``."""

    n_predictors: PositiveInt = Field(2, description="k: how many of the selected predictors are fused")
