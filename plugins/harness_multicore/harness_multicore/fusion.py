"""The Heatmap Fusion Module (paper 002): a UNet over the ensemble's normalised maps, trained on SSA.

Loss: SSIM loss + clDice (the soft-skeleton, perimeter-aware Dice of Shit et al., 2021).
Optimiser: RMSprop, lr 1e-5, weight decay 1e-5, momentum 0.999, gradient clipping 1 (the
paper's values; all options).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class UNet(nn.Module):
    """A small UNet (two down, two up) from k input maps to one anomaly logit map."""

    def __init__(self, in_channels: int, width: int = 16) -> None:
        super().__init__()

        def block(a: int, b: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(a, b, 3, padding=1),
                nn.BatchNorm2d(b),
                nn.ReLU(inplace=True),
                nn.Conv2d(b, b, 3, padding=1),
                nn.BatchNorm2d(b),
                nn.ReLU(inplace=True),
            )

        self.down1, self.down2 = block(in_channels, width), block(width, 2 * width)
        self.bottom = block(2 * width, 4 * width)
        self.up2, self.dec2 = nn.ConvTranspose2d(4 * width, 2 * width, 2, stride=2), block(4 * width, 2 * width)
        self.up1, self.dec1 = nn.ConvTranspose2d(2 * width, width, 2, stride=2), block(2 * width, width)
        self.head = nn.Conv2d(width, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, k, H, W) -> (B, 1, H, W) logits; H and W divisible by 4."""
        d1 = self.down1(x)
        d2 = self.down2(F.max_pool2d(d1, 2))
        bottom = self.bottom(F.max_pool2d(d2, 2))
        u2 = self.dec2(torch.cat([self.up2(bottom), d2], dim=1))
        u1 = self.dec1(torch.cat([self.up1(u2), d1], dim=1))
        return self.head(u1)


def ssim(x: torch.Tensor, y: torch.Tensor, window: int = 7, c1: float = 0.01**2, c2: float = 0.03**2) -> torch.Tensor:
    """Mean structural similarity of maps in [0, 1] (uniform window)."""
    pad = window // 2
    mu_x, mu_y = F.avg_pool2d(x, window, 1, pad), F.avg_pool2d(y, window, 1, pad)
    var_x = F.avg_pool2d(x * x, window, 1, pad) - mu_x**2
    var_y = F.avg_pool2d(y * y, window, 1, pad) - mu_y**2
    cov = F.avg_pool2d(x * y, window, 1, pad) - mu_x * mu_y
    value = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return value.mean()


def soft_skeleton(x: torch.Tensor, iterations: int = 5) -> torch.Tensor:
    """Differentiable skeleton by iterated soft erosion and opening (clDice)."""

    def erode(t: torch.Tensor) -> torch.Tensor:
        return torch.minimum(-F.max_pool2d(-t, (3, 1), 1, (1, 0)), -F.max_pool2d(-t, (1, 3), 1, (0, 1)))

    def dilate(t: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(t, 3, 1, 1)

    skeleton = F.relu(x - dilate(erode(x)))
    for _ in range(iterations):
        x = erode(x)
        delta = F.relu(x - dilate(erode(x)))
        skeleton = skeleton + F.relu(delta - skeleton * delta)
    return skeleton


def cl_dice_loss(prediction: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """1 - clDice: topology-aware overlap of soft skeletons."""
    skel_pred, skel_true = soft_skeleton(prediction), soft_skeleton(target)
    precision = ((skel_pred * target).sum() + smooth) / (skel_pred.sum() + smooth)
    sensitivity = ((skel_true * prediction).sum() + smooth) / (skel_true.sum() + smooth)
    return 1 - 2 * precision * sensitivity / (precision + sensitivity)


def fusion_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """SSIM loss plus clDice loss on the sigmoid map."""
    prediction = torch.sigmoid(logits)
    return (1 - ssim(prediction, target)) + cl_dice_loss(prediction, target)


def train_fusion(
    inputs: torch.Tensor,
    targets: torch.Tensor,
    epochs: int,
    lr: float = 1e-5,
    weight_decay: float = 1e-5,
    momentum: float = 0.999,
    clip: float = 1.0,
    batch_size: int = 16,
    seed: int = 0,
) -> UNet:
    """Fit the UNet on (N, k, H, W) normalised maps against (N, 1, H, W) SSA masks."""
    torch.manual_seed(seed)
    model = UNet(inputs.shape[1])
    optimiser = torch.optim.RMSprop(model.parameters(), lr=lr, weight_decay=weight_decay, momentum=momentum)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(inputs.shape[0], generator=generator)
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            optimiser.zero_grad()
            loss = fusion_loss(model(inputs[index]), targets[index])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            optimiser.step()
    return model.eval()
