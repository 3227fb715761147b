"""The options of the PUAD models, checked when the protocol is loaded (no torch or anomalib import)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from harness.analysis import Bool, Float, Fraction, OptionsModel, PositiveInt, Str


class PUADOptions(OptionsModel):
    """Options of ``puad``, ``puad_efficientad`` and ``puad_mahalanobis`` (the model name sets the mode)."""

    max_steps: PositiveInt = Field(70_000, description="EfficientAD training steps (the paper's 70,000)")
    validation_fraction: Fraction = Field(
        0.1, description="share of the fit images held out for the z-statistics (at least 2 images)"
    )
    features: Literal["student", "teacher"] = Field(
        "student", description="whose pooled features the Gaussian models (student: the paper's best)"
    )
    batch_size: PositiveInt = Field(8, description="scoring batch size")
    accelerator: Str = Field(
        "auto", description="Lightning accelerator: auto, cpu or gpu (auto, gpu: a GPU when present)"
    )
    fit_cache: Bool = Field(True, description="keep the fit under $HARNESS_HOME/fits/puad for the sibling rows")
    teacher_weights: Str | None = Field(None, description="a local pretrained_teacher_<size>.pth; default: download")
    pretrained: Bool = Field(True, description="false: a random-init teacher (when no teacher_weights)")
    imagenet_dir: Str | None = Field(None, description="a folder of ImageNette class folders for the penalty loss")
    penalty: Bool = Field(True, description="false: train without the ImageNet penalty term")
    model_size: Literal["small", "medium"] = Field("small", description="EfficientAD's network size")
    lr: Float = Field(1e-4, ge=0, description="Adam learning rate (anomalib's EfficientAd default)")
    weight_decay: Float = Field(1e-5, ge=0, description="Adam weight decay (anomalib's EfficientAd default)")
