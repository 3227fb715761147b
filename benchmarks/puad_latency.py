"""Latency of PUAD over EfficientAD alone (paper 003, Table 3: 2.88 ms vs 3.00 ms, about +4 %).

Both score the same images with the same trained networks: EfficientAD's image score needs the
teacher, student and autoencoder; PUAD adds the pooled student features' Mahalanobis distance
and two z-normalisations. Random-init teacher, 3 training steps (latency does not depend on the
weights). Run: python benchmarks/puad_latency.py [--images 64] [--batch 1] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import torch

from harness.testing import Subject


def median_ms_per_image(detector, samples, batch: int, repeats: int) -> float:
    """Median over repeats of the wall time per image, scoring in batches of ``batch``."""
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        for index in range(0, len(samples), batch):
            detector.score(samples[index : index + batch])
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        timings.append((time.perf_counter() - start) / len(samples) * 1000)
    return float(np.median(timings))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("HARNESS_HOME", tempfile.mkdtemp(prefix="puad-latency-"))
    from harness_puad import _puad

    options = {"max_steps": 3, "pretrained": False, "penalty": False}
    torch.manual_seed(0)
    subject = Subject("puad", lambda **o: _puad("puad", **o), options, 256)
    train = subject.samples("train")
    samples = (subject.samples("test") * args.images)[: args.images]
    results = {}
    for mode in ("efficientad", "puad"):
        torch.manual_seed(0)
        detector = _puad(mode, **options).fit(train)  # the second loads the first's fit from the cache
        detector.score(samples[:2])  # warm-up
        results[mode] = median_ms_per_image(detector, samples, args.batch, args.repeats)
    device = "cuda" if torch.cuda.is_available() else f"cpu ({torch.get_num_threads()} threads)"
    overhead = results["puad"] / results["efficientad"] - 1
    print(f"device: {device}; {args.images} images at 256 px, batch {args.batch}, median of {args.repeats}")
    print(f"EfficientAD-S: {results['efficientad']:.2f} ms/image")
    print(f"PUAD:          {results['puad']:.2f} ms/image ({overhead:+.1%})")


if __name__ == "__main__":
    main()
