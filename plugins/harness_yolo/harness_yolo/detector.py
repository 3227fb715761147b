"""A YOLO detector as a supervised anomaly detector.

Training: the defect-free images (no boxes) and the labelled anomalies the protocol set aside
(boxes from the connected components of their masks) are written as a YOLO dataset and
trained with ultralytics' own ``train`` from the model YAML (random init) or a weights file.
Scoring: the image score is the highest box confidence (0 with no box, ``conf`` 0.001 so weak
models still rank); the anomaly map is every box filled with its confidence (max where boxes
overlap).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from harness import LabelledSample, ModelError, Sample, Scores
from harness_yolo import offline


def boxes_from_mask(mask: np.ndarray) -> list[tuple[float, float, float, float]]:
    """YOLO boxes (centre x, centre y, width, height; relative) of the mask's connected components."""
    height, width = mask.shape
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    boxes = []
    for left, top, box_width, box_height, _ in stats[1:count]:
        boxes.append(
            ((left + box_width / 2) / width, (top + box_height / 2) / height, box_width / width, box_height / height)
        )
    return boxes


def write_dataset(root: Path, normals: Sequence[Sample], anomalies: Sequence[LabelledSample]) -> Path:
    """A YOLO dataset (images, labels, data.yaml) of the training images; returns data.yaml."""
    images, labels = root / "images" / "train", root / "labels" / "train"
    images.mkdir(parents=True)
    labels.mkdir(parents=True)
    for index, sample in enumerate([*normals, *anomalies]):
        Image.fromarray(sample.image).save(images / f"{index:05d}.png")
        lines = []
        if isinstance(sample, LabelledSample):
            lines = [f"0 {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}" for cx, cy, w, h in boxes_from_mask(sample.mask)]
        (labels / f"{index:05d}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))
    data = root / "data.yaml"
    # ultralytics wants a validation set; training images only, never a test image
    data.write_text(f"path: {root}\ntrain: images/train\nval: images/train\nnames: {{0: defect}}\n")
    return data


class YoloDetector:
    """One ultralytics YOLO model, trained on normals plus the labelled anomalies a protocol allows."""

    supervised = True

    def __init__(
        self,
        model: str,
        weights: str | None = None,
        epochs: int = 50,
        batch: int = 8,
        imgsz: int | None = None,
        device: str = "auto",
        conf: float = 0.001,
        seed: int = 0,
    ) -> None:
        self.source = model
        self.weights_path = weights
        self.epochs, self.batch, self.imgsz, self.device_name = int(epochs), int(batch), imgsz, device
        self.conf, self.seed = float(conf), int(seed)
        self.model: Any = None
        self.weights = "unknown"

    @property
    def device(self) -> str:
        """The ultralytics device: "cpu", or "0" for the first GPU when ``device: auto`` finds one."""
        if self.device_name != "auto":
            return self.device_name
        import torch

        return "0" if torch.cuda.is_available() else "cpu"

    def _build(self) -> Any:
        offline.prepare()
        from ultralytics import YOLO

        offline.quiet()
        if self.weights_path:
            path = Path(self.weights_path).expanduser()
            if not path.is_file():
                raise ModelError(f"options.weights: {path} does not exist; give a YOLO .pt file or drop the option")
            self.weights = f"local file: {path.name}"
            return YOLO(str(path))
        self.weights = "random-init"
        return YOLO(f"{self.source}.yaml")

    def fit(self, samples: Sequence[Sample], anomalies: Sequence[LabelledSample] = ()) -> YoloDetector:
        """Train on defect-free images and labelled anomalies (boxes from their masks)."""
        if not anomalies:
            raise ModelError(f"{self.source} is supervised and got no labelled anomalies; declare supervision:")
        self.model = self._build()
        size = self.imgsz or int(max(samples[0].image.shape[:2]))
        self.imgsz = int(np.ceil(size / 32) * 32)  # YOLO strides
        with tempfile.TemporaryDirectory(prefix="harness-yolo-data-") as folder:
            data = write_dataset(Path(folder), samples, anomalies)
            self.model.train(
                data=str(data),
                epochs=self.epochs,
                imgsz=self.imgsz,
                batch=self.batch,
                device=self.device,
                workers=0,
                plots=False,
                amp=False,
                val=False,
                seed=self.seed,
                deterministic=True,
                project=str(Path(folder) / "runs"),
                name="train",
                exist_ok=True,
                verbose=False,
            )
        return self

    def score(self, samples: Sequence[Sample]) -> Scores:
        """Highest box confidence per image; maps with each box filled with its confidence."""
        if self.model is None:
            raise RuntimeError(f"{self.source}: score() called before fit()")
        images = [np.ascontiguousarray(s.image[:, :, ::-1]) for s in samples]  # ultralytics reads BGR arrays
        results = self.model.predict(images, conf=self.conf, imgsz=self.imgsz, device=self.device, verbose=False)
        scores = np.zeros(len(samples))
        maps = np.zeros((len(samples), *samples[0].image.shape[:2]), dtype=np.float32)
        for index, result in enumerate(results):
            if len(result.boxes) == 0:
                continue
            confidences = result.boxes.conf.cpu().numpy()
            scores[index] = float(confidences.max())
            for (x1, y1, x2, y2), confidence in zip(result.boxes.xyxy.cpu().numpy(), confidences, strict=True):
                region = maps[index, int(y1) : int(np.ceil(y2)), int(x1) : int(np.ceil(x2))]
                np.maximum(region, confidence, out=region)
        return Scores(scores, maps)

    @property
    def torch_module(self) -> Any:
        """The ultralytics DetectionModel (for size and GMAC)."""
        return None if self.model is None else self.model.model
