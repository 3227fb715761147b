"""An anomalib image model as a harness detector.

Training goes through anomalib's own ``Engine`` (Lightning), with anomalib's normalisation,
thresholding, evaluator and visualiser switched off and no validation split (anomalib's
defaults would take it from the test set). Scoring calls the model in eval mode on its own
pre-processor, which returns raw ``pred_score`` and ``anomaly_map``.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import logging
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from functools import cache
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from harness import ModelError, Sample, Scores
from harness_anomalib import catalogue
from harness_anomalib.weights import load_into_backbones, resolve_weights_file, timm_without_download


@cache
def model_class(name: str) -> type:
    """The anomalib ``AnomalibModule`` subclass for a snake-case model name."""
    with warnings.catch_warnings():  # anomalib's own deprecation notices are not the user's concern
        warnings.simplefilter("ignore")
        from anomalib.models.components import AnomalibModule

        module = importlib.import_module(f"anomalib.models.image.{name}")
    for attribute in getattr(module, "__all__", dir(module)):
        value = getattr(module, attribute, None)
        if isinstance(value, type) and issubclass(value, AnomalibModule) and value is not AnomalibModule:
            return value
    raise ModelError(f"anomalib.models.image.{name} has no model class")


def constructor_options(name: str) -> set[str]:
    """Keyword arguments the anomalib model class accepts (minus the ones the adapter sets)."""
    parameters = inspect.signature(model_class(name).__init__).parameters
    return {p for p in parameters if p not in ("self", "pre_processor", "post_processor", "evaluator", "visualizer")}


def quiet_lightning() -> None:
    """Lightning sets its own loggers to INFO on import; keep its tips out of the harness's output."""
    for name in list(logging.root.manager.loggerDict):
        if name.startswith(("lightning", "pytorch_lightning", "anomalib")):
            logging.getLogger(name).setLevel(logging.ERROR)


def torch_device(accelerator: str) -> torch.device:
    """The GPU when ``accelerator`` allows one (auto, gpu, cuda) and one is present, else the CPU."""
    if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


@contextlib.contextmanager
def barebones_engine(accelerator: str, **limits: Any) -> Iterator[Any]:
    """Anomalib's Engine without logger, checkpoints, validation or sanity steps, in a throwaway folder.

    ``limits``: Lightning trainer arguments such as ``max_epochs`` or ``max_steps``.
    """
    from anomalib.engine import Engine

    with tempfile.TemporaryDirectory(prefix="harness-anomalib-") as root, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quiet_lightning()
        yield Engine(
            barebones=True,
            accelerator=accelerator,
            devices=1,
            limit_val_batches=0,
            num_sanity_val_steps=0,
            default_root_dir=root,
            logger=False,
            **limits,
        )


class SampleDataset(Dataset):
    """Samples as anomalib ``ImageItem``s (image in [0, 1], C x H x W; no label: none exists here)."""

    def __init__(self, samples: Sequence[Sample]) -> None:
        self.samples = samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> Any:
        from anomalib.data import ImageItem

        sample = self.samples[index]
        return ImageItem(image=to_tensor([sample])[0], image_path=str(sample.path))


def to_tensor(samples: Sequence[Sample]) -> torch.Tensor:
    """Samples' images as one float batch in [0, 1], N x 3 x H x W."""
    array = np.stack([s.image for s in samples]).astype(np.float32) / 255.0
    return torch.from_numpy(array).permute(0, 3, 1, 2).contiguous()


class AnomalibDetector:
    """Fit and score one anomalib image model; options are the model class's keyword arguments."""

    def __init__(self, model: str, **options: Any) -> None:
        self.name = model
        options = dict(options)
        self.weights_path = options.pop("weights", None)
        if "pretrained" in options:
            options["pre_trained"] = options.pop("pretrained")
        self.max_epochs = options.pop("max_epochs", None)
        self.batch_size = int(options.pop("batch_size", 8))
        self.accelerator = options.pop("accelerator", "auto")
        self.model_options = options
        self.model: Any = None
        self.weights = "unknown"

    # -- building -----------------------------------------------------------------------------
    def _build(self, image_size: tuple[int, int]) -> Any:
        cls = model_class(self.name)
        accepts_pretrained = "pre_trained" in constructor_options(self.name)
        options = dict(self.model_options)
        components = {
            "pre_processor": cls.configure_pre_processor(image_size=image_size),
            "post_processor": False,
            "evaluator": False,
            "visualizer": False,
        }
        if self.weights_path is not None:
            path = resolve_weights_file(self.weights_path, options.get("backbone"))
            if accepts_pretrained:
                options["pre_trained"] = False
            with timm_without_download():
                model = cls(**options, **components)
            load_into_backbones(model, path)
            self.weights = f"local file: {path.name}"
            return model
        if accepts_pretrained:
            pretrained = bool(options.get("pre_trained", True))
        else:
            pretrained = self.name in catalogue.NEEDS_TEACHER
        try:
            model = cls(**options, **components)
        except Exception as exc:
            if pretrained or self.name in catalogue.NEEDS_HUB:
                raise ModelError(
                    f"model '{self.name}': pretrained weights could not be obtained ({type(exc).__name__}: "
                    f"{str(exc).splitlines()[0][:160]}); offline, give options.weights=/path/to/backbone.pth"
                    + (" or set options.pre_trained=false" if accepts_pretrained else "")
                ) from None
            raise
        self.weights = "pretrained" if pretrained else "random-init"
        return model

    # -- the detector contract -----------------------------------------------------------------
    def fit(self, samples: Sequence[Sample]) -> AnomalibDetector:
        """Train with anomalib's Engine on ``samples`` (defect-free images only; no labels exist here)."""
        from anomalib.data import ImageBatch

        image_size = samples[0].image.shape[:2]
        self.model = self._build((int(image_size[0]), int(image_size[1])))
        max_epochs = self.max_epochs or self.model.trainer_arguments.get("max_epochs", 1)
        generator = torch.Generator().manual_seed(int(torch.initial_seed()) % 2**63)
        loader = DataLoader(
            SampleDataset(samples),
            batch_size=self.batch_size,
            shuffle=True,
            generator=generator,
            collate_fn=ImageBatch.collate,
            num_workers=0,
        )
        with barebones_engine(self.accelerator, max_epochs=max_epochs) as engine:
            engine.fit(self.model, train_dataloaders=loader)
        self.model.eval()
        self.model.to(self.device)  # Lightning hands the model back on the CPU after fit
        return self

    @property
    def device(self) -> torch.device:
        """Where scoring runs: the GPU when the accelerator allows one and one is present."""
        return torch_device(self.accelerator)

    @torch.inference_mode()
    def score(self, samples: Sequence[Sample]) -> Scores:
        """Raw image scores and anomaly maps at the input size (anomalib post-processing off)."""
        if self.model is None:
            raise RuntimeError(f"{self.name}: score() called before fit()")
        device = self.device
        scores, maps = [], []
        for start in range(0, len(samples), self.batch_size):
            batch = to_tensor(samples[start : start + self.batch_size]).to(device)
            output = self.model(batch)
            scores.append(output.pred_score.reshape(len(batch), -1)[:, 0].float().cpu())
            if output.anomaly_map is not None:
                amap = output.anomaly_map.reshape(len(batch), 1, *output.anomaly_map.shape[-2:]).float()
                if amap.shape[-2:] != batch.shape[-2:]:
                    amap = torch.nn.functional.interpolate(amap, size=batch.shape[-2:], mode="bilinear")
                maps.append(amap[:, 0].cpu())
        image_scores = torch.cat(scores).numpy()
        return Scores(image_scores, torch.cat(maps).numpy() if len(maps) == len(scores) and maps else None)

    # -- optional attributes the harness reads ---------------------------------------------------
    @property
    def torch_module(self) -> torch.nn.Module | None:
        """The underlying torch model (for size and GMAC)."""
        return None if self.model is None else self.model.model

    @property
    def parameters(self) -> int | None:
        """Number of parameters of the fitted model."""
        return None if self.model is None else sum(p.numel() for p in self.model.parameters())
