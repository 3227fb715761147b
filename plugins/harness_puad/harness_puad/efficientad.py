"""EfficientAD trained by anomalib's own Lightning module, with local assets for offline users.

anomalib's :class:`~anomalib.models.EfficientAd` downloads two things on its first training
step: the pretrained teacher (a distilled WideResNet-101 PDN) and ImageNette for the student's
penalty loss. :class:`EfficientAdTrainer` keeps anomalib's training (losses, Adam, StepLR, teacher
channel statistics, map quantiles) and only changes where those come from:

* ``teacher_weights``: a local ``pretrained_teacher_s.pth``; ``pretrained=False`` keeps a
  random-init teacher (tests, ablations); otherwise anomalib's download.
* ``imagenet_dir``: a local folder with class sub-folders (ImageNette); ``penalty=False``
  trains without the penalty term (EfficientAD's hard-feature and autoencoder losses only).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from anomalib.data import ImageBatch
from anomalib.models import EfficientAd
from anomalib.models.image.efficient_ad.torch_model import reduce_tensor_elems
from harness_anomalib.detector import SampleDataset, barebones_engine
from harness_anomalib.weights import read_state_dict
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader
from torchvision.transforms.v2.functional import resize

from harness import ModelError, Sample

INPUT_SIZE = 256
"""EfficientAD's input size (its autoencoder needs at least 256 px)."""


class _Normals(LightningDataModule):
    """The training normals, batch size 1 (what anomalib's EfficientAd insists on)."""

    name, category = "harness", ""  # read by anomalib's Engine for its workspace folder

    def __init__(self, samples: Sequence[Sample], seed: int) -> None:
        super().__init__()
        self.samples, self.seed, self.train_batch_size = samples, seed, 1

    def train_dataloader(self) -> DataLoader:
        return loader(self.samples, batch_size=1, shuffle=True, seed=self.seed)


def to_input_size(images: torch.Tensor) -> torch.Tensor:
    """A batch resized to EfficientAD's input size (its own pre-processor does the same resize)."""
    if images.shape[-2:] == (INPUT_SIZE, INPUT_SIZE):
        return images
    return resize(images, [INPUT_SIZE, INPUT_SIZE], antialias=True)


def _collate(items: list[Any]) -> ImageBatch:
    batch = ImageBatch.collate(items)
    return batch.update(image=to_input_size(batch.image), gt_label=torch.zeros(len(items), dtype=torch.long))


def loader(samples: Sequence[Sample], batch_size: int, shuffle: bool = False, seed: int = 0) -> DataLoader:
    """Samples as anomalib ``ImageBatch``es at the input size (``gt_label`` 0: training normals)."""
    return DataLoader(
        SampleDataset(samples),
        batch_size=batch_size,
        shuffle=shuffle,
        generator=torch.Generator().manual_seed(seed),
        collate_fn=_collate,
        num_workers=0,
    )


class EfficientAdTrainer(EfficientAd):
    """anomalib's EfficientAd with a local teacher file, an optional penalty set and a fixed input size."""

    def __init__(
        self,
        *,
        teacher_weights: str | Path | None = None,
        pretrained: bool = True,
        imagenet_dir: str | Path | None = None,
        penalty: bool = True,
        **options: Any,
    ) -> None:
        super().__init__(
            imagenet_dir=imagenet_dir or "./datasets/imagenette",
            pre_processor=False,  # the loaders resize to INPUT_SIZE
            post_processor=False,
            evaluator=False,
            visualizer=False,
            **options,
        )
        self.teacher_weights = Path(teacher_weights).expanduser() if teacher_weights else None
        self.pretrained = pretrained
        self.penalty = penalty
        if self.teacher_weights is not None and not self.teacher_weights.is_file():
            raise ModelError(
                f"options.teacher_weights: {self.teacher_weights} is not a file; give anomalib's "
                f"pretrained_teacher_{self.model_size.value}.pth (from efficientad_pretrained_weights.zip)"
            )
        if penalty and imagenet_dir is not None and not Path(imagenet_dir).expanduser().is_dir():
            raise ModelError(
                f"options.imagenet_dir: {imagenet_dir} is not a folder; give a folder with class sub-folders "
                "(e.g. imagenette2/train) or set options.penalty=false"
            )

    @property
    def weights(self) -> str:
        """How the teacher was initialised, for the result rows."""
        if self.teacher_weights is not None:
            return f"local file: {self.teacher_weights.name}"
        return "pretrained" if self.pretrained else "random-init"

    def prepare_pretrained_model(self) -> None:
        """The teacher from ``teacher_weights``, anomalib's download, or left at random init."""
        if self.teacher_weights is not None:
            self.model.teacher.load_state_dict(read_state_dict(self.teacher_weights))
        elif self.pretrained:
            try:
                super().prepare_pretrained_model()
            except Exception as exc:
                raise ModelError(
                    f"EfficientAD teacher weights could not be downloaded ({type(exc).__name__}); offline, give "
                    "options.teacher_weights=/path/to/pretrained_teacher_s.pth or options.pretrained=false"
                ) from None

    def prepare_imagenette_data(self, image_size: tuple[int, int] | torch.Size) -> None:
        """ImageNette for the penalty loss, unless ``penalty`` is off."""
        if not self.penalty:
            return
        try:
            super().prepare_imagenette_data(image_size)
        except Exception as exc:
            raise ModelError(
                f"EfficientAD penalty images (ImageNette) could not be obtained ({type(exc).__name__}); offline, "
                "give options.imagenet_dir=/path/to/imagenette2/train or set options.penalty=false"
            ) from None

    def training_step(self, batch: ImageBatch, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        """The step of anomalib's EfficientAd; without penalty images, its losses minus the ImageNet penalty term."""
        if self.penalty:
            return super().training_step(batch, *args, **kwargs)
        model = self.model
        _, distance_st = model.compute_student_teacher_distance(batch.image)
        distance_st = reduce_tensor_elems(distance_st)
        loss_hard = torch.mean(distance_st[distance_st >= torch.quantile(distance_st, 0.999)])
        augmented = model.choose_random_aug_image(batch.image)
        ae_output = model.ae(augmented, batch.image.shape[-2:])
        with torch.no_grad():
            teacher_output = model._normalize_teacher(model.teacher(augmented))
        student_ae = model.student(augmented)[:, model.teacher_out_channels :]
        loss = loss_hard + torch.mean((teacher_output - ae_output) ** 2) + torch.mean((ae_output - student_ae) ** 2)
        self.log("train_loss", loss.item(), prog_bar=True)
        return {"loss": loss}


def train(
    module: EfficientAdTrainer,
    samples: Sequence[Sample],
    validation: Sequence[Sample],
    max_steps: int,
    accelerator: str,
    seed: int,
) -> EfficientAdTrainer:
    """Fit with anomalib's Engine, then set EfficientAD's map quantiles on the validation normals."""
    if max_steps < 2:
        raise ModelError(f"options.max_steps must be at least 2 (EfficientAD's LR step is at 95 %), got {max_steps}")
    with barebones_engine(accelerator, max_steps=max_steps, max_epochs=-1) as engine:
        engine.fit(module, datamodule=_Normals(samples, seed))
    module.eval()
    with torch.no_grad():
        module.model.quantiles.update(module.map_norm_quantiles(loader(validation, batch_size=8)))
    return module
