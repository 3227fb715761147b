"""The options of ``dinomaly_recon`` and ``dinomaly_plain``, checked when the protocol is loaded (no torch import)."""

from __future__ import annotations

from pydantic import Field

from harness.analysis import Bool, Float, NonNegativeInt, OptionsModel, PositiveInt, Str


class DinomalyOptions(OptionsModel):
    """Options of both models (paper 000's defaults; the model name says whether the head is trained)."""

    encoder: Str = Field("vit_base_patch14_reg4_dinov2", description="a timm DINOv2 ViT name Dinomaly supports")
    iterations: PositiveInt = Field(5000, description="training iterations (paper 000: 5000)")
    batch_size: PositiveInt = Field(8, description="training batch size (paper 000: 8)")
    lr: Float = Field(2e-4, ge=0, description="StableAdamW learning rate (paper 000: 2e-4)")
    weight_decay: Float = Field(1e-5, ge=0, description="StableAdamW weight decay (paper 000: 1e-5)")
    warmup: NonNegativeInt = Field(100, description="warm-up iterations of the cosine schedule (at most a tenth)")
    gradient_clip: Float = Field(0.1, description="gradient-norm clip")
    reconstruction_weight: Float = Field(1.0, description="weight of the reconstruction head's pixel MSE in the loss")
    bottleneck_dropout: Float = Field(0.2, ge=0, le=1, description="dropout of the bottleneck MLP")
    decoder_depth: PositiveInt = Field(8, gt=1, description="ViT decoder layers (anomalib: more than 1)")
    validation_fraction: Float = Field(
        0.0, ge=0, lt=1, description="share of training normals held out for the map scales (0: none)"
    )
    pretrained: Bool = Field(True, description="false: a random-init encoder (when no weights)")
    weights: Str | None = Field(None, description="a timm DINOv2 state dict (or a folder holding <encoder>.*)")
    accelerator: Str = Field("auto", description="auto, cpu or gpu (auto and gpu take a GPU when present)")
