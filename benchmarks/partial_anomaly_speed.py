"""1,500 oracle calibrations from cached scores: 15 categories x 10 fractions x 10 draws.

Each calibration draws a subset of the test anomalies, fixes the Youden (AUROC-optimal)
threshold on all test normals plus the drawn anomalies, and counts the false negatives and
false positives on the whole test set: the inner loop of protocols/partial_anomaly.yaml.
Category sizes follow MVTec AD's test splits (normals, anomalies). Memory is traced over
five rounds to show it stays flat.

    python benchmarks/partial_anomaly_speed.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc

import numpy as np
from harness_paradigms.partial_anomaly import DEFAULT_FRACTIONS, draw_thresholds

from harness.calibration import best_f1_threshold, youden_threshold

MVTEC_TEST = [
    (20, 63),
    (39, 84),
    (28, 89),
    (32, 100),
    (40, 70),
    (21, 22),
    (40, 110),
    (58, 65),
    (22, 119),
    (60, 107),
    (33, 84),
    (41, 119),
    (32, 60),
    (23, 83),
    (32, 119),
]  # (good, defective) per category


def one_pass(categories, threshold_of) -> int:
    calibrations = 0
    for index, (normal, anomalous) in enumerate(categories):
        table = draw_thresholds(normal, anomalous, DEFAULT_FRACTIONS, 10, np.random.default_rng(index), threshold_of)
        calibrations += len(table)
    return calibrations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    categories = [(rng.normal(0, 1, n_good), rng.normal(2, 1, n_bad)) for n_good, n_bad in MVTEC_TEST]
    for name, threshold_of in (("youden", youden_threshold), ("f1", best_f1_threshold)):
        one_pass(categories, threshold_of)  # warm-up
        times = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            count = one_pass(categories, threshold_of)
            times.append(time.perf_counter() - started)
        print(
            f"{name:6s}: {count} calibrations in median {statistics.median(times) * 1000:.0f} ms "
            f"(min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f}) over {args.repeats} repeats"
        )
    tracemalloc.start()
    peaks = []
    for _ in range(5):
        one_pass(categories, youden_threshold)
        peaks.append(tracemalloc.get_traced_memory()[1] / 1e6)
        tracemalloc.reset_peak()
    print("peak traced memory per pass (MB): " + ", ".join(f"{p:.2f}" for p in peaks))


if __name__ == "__main__":
    main()
