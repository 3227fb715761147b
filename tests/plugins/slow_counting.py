"""A test plugin loaded by import path (HARNESS_PLUGINS=slow_counting): it counts its fits in a file.

``HARNESS_TEST_FIT_LOG`` names the file (one line per fit); ``HARNESS_TEST_FIT_SECONDS`` makes
each fit that slow, so a test can kill a run in the middle.
"""

import os
import time

import numpy as np

import harness


class SlowCounting:
    weights = "none"

    def fit(self, samples):
        time.sleep(float(os.environ.get("HARNESS_TEST_FIT_SECONDS", "0")))
        self.mean = np.mean([s.image.astype(float) for s in samples], axis=0)
        with open(os.environ["HARNESS_TEST_FIT_LOG"], "a") as log:
            log.write(f"fit of {len(samples)} images\n")  # paths are opaque: nothing to read from them

    def score(self, samples):
        maps = np.stack([np.abs(s.image - self.mean).mean(axis=-1) for s in samples])
        return harness.Scores(maps.reshape(len(samples), -1).max(axis=1), maps)


@harness.hookimpl
def harness_models():
    return {"slow_counting": SlowCounting}
