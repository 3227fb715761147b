"""Harness fit+score overhead against calling anomalib's Engine directly on the same model and data.

Both sides: PaDiM (resnet18, random init, n_features 64) on one category of the embedded
dataset at 128 px, trained on every training image, scoring every test image; anomalib's
post-processing off on both. The harness side is one uncached job (image decoding, fit,
scoring, cache write); the direct side is ``MVTecAD`` + ``Engine.fit`` + ``Engine.predict``.

    python benchmarks/overhead_vs_engine.py [--repeats 5] [--model padim] [--category weave]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
warnings.simplefilter("ignore")

import torch  # noqa: E402

from harness.data.layouts import MVTecLayout  # noqa: E402
from harness.data.synthetic import ensure_generated  # noqa: E402
from harness.plugins import get_plugins  # noqa: E402
from harness.protocol import ModelConfig  # noqa: E402
from harness.scoring import Job, TrainingSubset, run_job, seed_everything  # noqa: E402
from harness.store import ScoreCache  # noqa: E402

OPTIONS = {
    "padim": {"backbone": "resnet18", "pre_trained": False, "n_features": 64},
    "fastflow": {"backbone": "resnet18", "pre_trained": False, "flow_steps": 4},
}


def direct(root: Path, category: str, model_name: str) -> float:
    from anomalib.data import MVTecAD
    from anomalib.engine import Engine
    from harness_anomalib.detector import model_class

    seed_everything(0)
    started = time.perf_counter()
    cls = model_class(model_name)
    model = cls(
        **OPTIONS[model_name],
        pre_processor=cls.configure_pre_processor(image_size=(128, 128)),
        post_processor=False,
        evaluator=False,
        visualizer=False,
    )
    datamodule = MVTecAD(
        root=root, category=category, train_batch_size=8, eval_batch_size=8, num_workers=0, val_split_mode="none"
    )
    with tempfile.TemporaryDirectory() as work:
        engine = Engine(
            barebones=True,
            max_epochs=1,
            accelerator="cpu",
            devices=1,
            limit_val_batches=0,
            num_sanity_val_steps=0,
            default_root_dir=work,
            logger=False,
        )
        engine.fit(model, datamodule=datamodule)
        predictions = engine.predict(model, dataloaders=datamodule.test_dataloader())
    scores = torch.cat([p.pred_score.reshape(-1) for p in predictions])
    assert scores.numel() == len(datamodule.test_data)
    return time.perf_counter() - started


def through_harness(root: Path, category: str, model_name: str) -> float:
    plugins = get_plugins()
    data = MVTecLayout(root).load(category)
    model = ModelConfig(model_name, {**OPTIONS[model_name], "max_epochs": 1, "accelerator": "cpu"})
    with tempfile.TemporaryDirectory() as cache_dir:
        job = Job(model, data, 0, TrainingSubset(0.0, 0), (128, 128), "anomalib", "bench", "")
        started = time.perf_counter()
        run_job(job, plugins.get("models", model_name), ScoreCache(Path(cache_dir)))
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--model", default="padim", choices=sorted(OPTIONS))
    parser.add_argument("--category", default="weave")
    args = parser.parse_args()
    root = ensure_generated(n_train=60, n_test_good=20, n_per_defect=6, size=128, seed=0)
    through_harness(root, args.category, args.model)  # warm-up: imports, first-call allocations
    direct(root, args.category, args.model)
    for name in list(logging.root.manager.loggerDict):
        if name.startswith(("lightning", "anomalib")):
            logging.getLogger(name).setLevel(logging.ERROR)
    harness_times, direct_times = [], []
    for _ in range(args.repeats):  # interleaved, so drift hits both sides alike
        direct_times.append(direct(root, args.category, args.model))
        harness_times.append(through_harness(root, args.category, args.model))
    h, d = statistics.median(harness_times), statistics.median(direct_times)
    print(
        f"model {args.model}, category {args.category}, 128 px, {args.repeats} repeats, torch threads "
        f"{torch.get_num_threads()}"
    )
    print(f"anomalib Engine direct : median {d:.3f} s  (all: {', '.join(f'{t:.3f}' for t in direct_times)})")
    print(f"harness job            : median {h:.3f} s  (all: {', '.join(f'{t:.3f}' for t in harness_times)})")
    print(f"overhead               : {100 * (h - d) / d:+.1f} %")


if __name__ == "__main__":
    main()
