"""The paper 000 hybrid: anomalib's Dinomaly plus a reconstruction head.

Dinomaly (a frozen DINOv2 encoder, a bottleneck, a ViT decoder) comes from anomalib unchanged;
the head turns the decoder's features back into pixels. Paper 000 (Sec. 4) adds "a
reconstruction head" but gives no architecture or loss for it: the head below and its loss are
our design.

The head reads the decoder's fused feature maps (what Dinomaly compares with the encoder's)
and predicts the ImageNet-normalised input image, patch by patch (1x1 convolutions and a pixel
shuffle by the patch size). Training adds its pixel loss to Dinomaly's cosine hard-mining loss.
At inference the anomaly map is Dinomaly's cosine-distance map plus the head's reconstruction
error map, each divided by its 99.5th percentile on the training normals (so neither dominates by
scale); the image score is Dinomaly's: the mean of the top 1 % of the blurred map.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from anomalib.models.image.dinomaly.torch_model import DEFAULT_MAX_RATIO, DinomalyModel
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MAP_QUANTILE = 0.995
HEAD_NOTE = (
    "reconstruction head: our design (paper 000 gives no architecture): the mean of the decoder's fused feature "
    "maps -> 1x1 conv "
    "(D->D), GELU, 1x1 conv (D->3p^2), pixel shuffle by the patch size p; loss: Dinomaly's cosine hard-mining "
    "loss + reconstruction_weight x pixel MSE to the normalised input"
)
"""What the result rows say about the head (see README)."""


class ReconstructionHead(nn.Module):
    """Decoder feature maps (B x D x h x w) -> an image (B x 3 x h*p x w*p)."""

    def __init__(self, dim: int, patch_size: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(dim, dim, kernel_size=1),
            nn.GELU(),
            nn.Conv2d(dim, 3 * patch_size * patch_size, kernel_size=1),
            nn.PixelShuffle(patch_size),
        )

    def forward(self, decoder_maps: list[torch.Tensor]) -> torch.Tensor:
        """The image predicted from the mean of Dinomaly's fused decoder maps."""
        return self.layers(torch.stack(decoder_maps).mean(dim=0))


def grid_size(size: Sequence[int], patch_size: int) -> tuple[int, int]:
    """(H, W) snapped to the nearest multiple of the patch size (DINOv2's grid), at least one patch."""
    height, width = (max(patch_size, round(s / patch_size) * patch_size) for s in size)
    return height, width


def normalise(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """[0, 1] images -> ImageNet-normalised, resized to the patch grid."""
    height, width = grid_size(images.shape[-2:], patch_size)
    if (height, width) != tuple(images.shape[-2:]):
        images = F.interpolate(images, size=(height, width), mode="bilinear", antialias=True, align_corners=False)
    mean = images.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = images.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (images - mean) / std


def top_mean(maps: torch.Tensor, ratio: float = DEFAULT_MAX_RATIO) -> torch.Tensor:
    """Dinomaly's image score: the mean of the highest ``ratio`` of each map's pixels."""
    flat = maps.flatten(1)
    k = max(1, int(flat.shape[1] * ratio))
    return flat.topk(k, dim=1).values.mean(dim=1)


class DinomalyRecon(nn.Module):
    """Dinomaly with an optional reconstruction head (``head=None``: plain Dinomaly)."""

    def __init__(self, dinomaly: DinomalyModel, reconstruction: bool, reconstruction_weight: float = 1.0) -> None:
        super().__init__()
        self.dinomaly = dinomaly
        dim = dinomaly.bottleneck[0].fc2.out_features
        self.head = ReconstructionHead(dim, dinomaly.encoder.patch_size) if reconstruction else None
        self.reconstruction_weight = reconstruction_weight
        self.register_buffer("scales", torch.ones(2))  # map divisors from validation normals

    @property
    def patch_size(self) -> int:
        """DINOv2's patch size (14)."""
        return int(self.dinomaly.encoder.patch_size)

    def trainable(self) -> nn.ModuleList:
        """What the optimiser updates: Dinomaly's bottleneck and decoder, and the head."""
        return nn.ModuleList([self.dinomaly.bottleneck, self.dinomaly.decoder, *([self.head] if self.head else [])])

    def loss(self, images: torch.Tensor, step: int) -> torch.Tensor:
        """Dinomaly's cosine hard-mining loss, plus the head's pixel MSE when there is a head."""
        en, de = self.dinomaly.get_encoder_decoder_outputs(images)
        loss = self.dinomaly.loss_fn(encoder_features=en, decoder_features=de, global_step=step)
        if self.head is not None:
            loss = loss + self.reconstruction_weight * F.mse_loss(self.head(de), images)
        return loss

    def raw_maps(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Cosine-distance map and reconstruction-error map (B x 1 x H x W), before scaling."""
        en, de = self.dinomaly.get_encoder_decoder_outputs(images)
        cosine, _ = DinomalyModel.calculate_anomaly_maps(en, de, out_size=tuple(images.shape[-2:]))
        if self.head is None:
            return cosine, None
        error = (self.head(de) - images).pow(2).mean(dim=1, keepdim=True)
        return cosine, error

    def set_scales(self, images: torch.Tensor) -> None:
        """Each map's 99.5th percentile over the given defect-free images becomes its divisor."""
        for index, maps in enumerate(self.raw_maps(images)):
            if maps is not None:
                self.scales[index] = torch.quantile(maps.flatten()[: 2**24], MAP_QUANTILE).clamp_min(1e-12)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(image scores, anomaly maps at the input size) for normalised images."""
        cosine, error = self.raw_maps(images)
        anomaly_map = cosine if error is None else cosine / self.scales[0] + error / self.scales[1]
        blurred = self.dinomaly.gaussian_blur(anomaly_map)
        return top_mean(blurred), blurred[:, 0]
