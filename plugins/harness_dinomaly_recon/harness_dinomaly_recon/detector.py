"""Dinomaly and the paper 000 hybrid as harness detectors, trained as paper 000 says.

Defaults are the paper's: 5000 iterations, batch 8, StableAdamW (anomalib's) with learning rate
2e-4 and weight decay 1e-5, warm-up then cosine decay (anomalib's WarmCosineScheduler), gradient
clipping 0.1 (anomalib's Dinomaly trainer setting); the protocol's ``image_size`` sets the input
(the paper: 448). The encoder is a frozen DINOv2 (``encoder``: any of anomalib's DINOv2 names;
``vit_small_patch14_reg4_dinov2`` for small runs) from the hub, a local file (``weights``) or
random init (``pretrained: false``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from anomalib.models import Dinomaly
from anomalib.models.image.dinomaly.components import StableAdamW, WarmCosineScheduler
from anomalib.models.image.dinomaly.torch_model import DINO_ARCHITECTURES, DinomalyModel
from harness_anomalib.detector import to_tensor, torch_device
from harness_anomalib.weights import load_into_backbones, resolve_weights_file, timm_without_download
from tqdm.auto import tqdm

from harness import ModelError, Sample, Scores, validation_split
from harness_dinomaly_recon.model import DinomalyRecon, grid_size, normalise


class DinomalyDetector:
    """Fit and score Dinomaly, with (``reconstruction: true``) or without the reconstruction head."""

    def __init__(
        self,
        reconstruction: bool = True,
        encoder: str = "vit_base_patch14_reg4_dinov2",
        iterations: int = 5000,
        batch_size: int = 8,
        lr: float = 2e-4,
        weight_decay: float = 1e-5,
        warmup: int = 100,
        gradient_clip: float = 0.1,
        reconstruction_weight: float = 1.0,
        bottleneck_dropout: float = 0.2,
        decoder_depth: int = 8,
        validation_fraction: float = 0.1,
        pretrained: bool = True,
        weights: str | None = None,
        accelerator: str = "auto",
    ) -> None:
        if iterations < 1 or batch_size < 1:
            raise ModelError(f"options.iterations and options.batch_size must be >= 1, got {iterations}, {batch_size}")
        if not 0 < validation_fraction < 1:
            raise ModelError(f"options.validation_fraction must be in (0, 1), got {validation_fraction}")
        self.name = "dinomaly_recon" if reconstruction else "dinomaly_plain"
        self.reconstruction, self.encoder = reconstruction, encoder
        self.iterations, self.batch_size, self.lr, self.weight_decay = (
            int(iterations),
            int(batch_size),
            lr,
            weight_decay,
        )
        self.warmup, self.gradient_clip, self.reconstruction_weight = warmup, gradient_clip, reconstruction_weight
        self.bottleneck_dropout, self.decoder_depth = bottleneck_dropout, decoder_depth
        self.validation_fraction, self.pretrained, self.weights_path = validation_fraction, pretrained, weights
        self.accelerator = accelerator
        self.model: DinomalyRecon | None = None
        self.weights = "unknown"
        self.input_size: tuple[int, int] | None = None
        """The (H, W) the network takes: the image size snapped to DINOv2's patch grid (set by fit)."""

    @property
    def device(self) -> torch.device:
        """The GPU when the accelerator allows one and one is present, else the CPU."""
        return torch_device(self.accelerator)

    def _build(self) -> DinomalyModel:
        options = {
            "encoder_name": self.encoder,
            "bottleneck_dropout": self.bottleneck_dropout,
            "decoder_depth": self.decoder_depth,
        }
        if "dinov2" not in self.encoder or not any(size in self.encoder for size in DINO_ARCHITECTURES):
            raise ModelError(
                f"options.encoder '{self.encoder}' is not a DINOv2 ViT anomalib's Dinomaly supports; "
                "use e.g. vit_small_patch14_reg4_dinov2 or vit_base_patch14_reg4_dinov2"
            )
        if self.weights_path is not None:
            path = resolve_weights_file(self.weights_path, self.encoder)
            with timm_without_download():
                model = DinomalyModel(**options)
            load_into_backbones(model, path)
            self.weights = f"local file: {path.name}"
        elif not self.pretrained:
            with timm_without_download():
                model = DinomalyModel(**options)
            self.weights = "random-init"
        else:
            try:
                model = DinomalyModel(**options)
            except Exception as exc:
                raise ModelError(
                    f"DINOv2 weights for '{self.encoder}' could not be obtained ({type(exc).__name__}); offline, "
                    "give options.weights=/path/to/encoder.safetensors or set options.pretrained=false"
                ) from None
            self.weights = "pretrained"
        Dinomaly._initialize_trainable_modules(torch.nn.ModuleList([model.bottleneck, model.decoder]))
        return model

    def split(self, samples: Sequence[Sample], seed: int) -> tuple[list[Sample], list[Sample]]:
        """(train, validation): a seeded split of the training normals given to ``fit``."""
        return validation_split(samples, self.validation_fraction, seed, minimum=1, owner=self.name)

    def fit(self, samples: Sequence[Sample]) -> DinomalyDetector:
        """Train the bottleneck, decoder (and head) on defect-free images; set map scales on validation ones."""
        seed = int(torch.initial_seed()) % 2**31
        train, validation = self.split(samples, seed)
        device = self.device
        model = DinomalyRecon(self._build(), self.reconstruction, self.reconstruction_weight).to(device)
        images = to_tensor(train)  # N x 3 x H x W in [0, 1], kept in memory: one decode per image
        self.input_size = grid_size(images.shape[-2:], model.patch_size)
        parameters = list(model.trainable().parameters())
        optimizer = StableAdamW(
            parameters, lr=self.lr, betas=(0.9, 0.999), weight_decay=self.weight_decay, amsgrad=True, eps=1e-8
        )
        scheduler = WarmCosineScheduler(
            optimizer,
            base_value=self.lr,
            final_value=self.lr / 10,
            total_iters=self.iterations,
            warmup_iters=min(self.warmup, self.iterations // 10),
        )
        generator = torch.Generator().manual_seed(seed)
        model.train()
        model.dinomaly.encoder.eval()  # frozen: no dropout in the encoder
        for step in tqdm(
            range(self.iterations), desc=f"{self.name} training", leave=False, mininterval=2, disable=None
        ):
            index = torch.randint(len(images), (self.batch_size,), generator=generator)
            batch = normalise(images[index].to(device), model.patch_size)
            loss = model.loss(batch, step)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(parameters, self.gradient_clip)
            optimizer.step()
            scheduler.step()
        model.eval()
        with torch.no_grad():
            model.set_scales(normalise(to_tensor(validation).to(device), model.patch_size))
        self.model = model
        return self

    @torch.no_grad()
    def score(self, samples: Sequence[Sample]) -> Scores:
        """Image scores and anomaly maps at the input size."""
        if self.model is None:
            raise RuntimeError(f"{self.name}: score() called before fit()")
        images = to_tensor(samples)
        scores, maps = [], []
        for start in range(0, len(images), self.batch_size):
            batch = images[start : start + self.batch_size].to(self.device)
            score, anomaly_map = self.model(normalise(batch, self.model.patch_size))
            if anomaly_map.shape[-2:] != batch.shape[-2:]:
                anomaly_map = torch.nn.functional.interpolate(
                    anomaly_map[:, None], size=batch.shape[-2:], mode="bilinear", align_corners=False
                )[:, 0]
            scores.append(score.float().cpu())
            maps.append(anomaly_map.float().cpu())
        return Scores(torch.cat(scores).numpy(), torch.cat(maps).numpy())

    @property
    def torch_module(self) -> torch.nn.Module | None:
        """The whole network (encoder, bottleneck, decoder, head)."""
        return self.model

    @property
    def parameters(self) -> int | None:
        """Number of parameters, frozen encoder included."""
        return None if self.model is None else sum(p.numel() for p in self.model.parameters())
