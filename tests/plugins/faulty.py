"""A test plugin whose model fails on purpose, one way per ``fault`` option, and one whose options name a file.

``faulty``: ``fault`` is raise | exit0 | exit_msg | os_exit | sigkill | segfault | nan_maps | inf_maps |
nan_scores | hang. ``file_weights``: scores offset by the first byte of the file ``weights`` names,
so a test sees whether the harness refitted after the file changed.
"""

import ctypes
import os
import signal
import sys
import time

import numpy as np

import harness


class Faulty:
    weights = "none"

    def __init__(self, fault: str = "raise") -> None:
        self.fault = fault

    def fit(self, samples):
        self.mean = np.mean([s.image.astype(float) for s in samples], axis=0)

    def score(self, samples):
        maps = np.stack([np.abs(s.image - self.mean).mean(axis=-1) for s in samples])
        image = maps.reshape(len(samples), -1).max(axis=1)
        fault = self.fault
        if fault == "raise":
            raise RuntimeError("planted failure")
        if fault in ("exit0", "exit_msg"):
            sys.exit(0 if fault == "exit0" else "plugin gave up")
        if fault == "os_exit":
            os._exit(0)
        if fault == "sigkill":
            os.kill(os.getpid(), signal.SIGKILL)
        if fault == "segfault":
            ctypes.string_at(0)
        if fault == "hang":
            time.sleep(3600)
        if fault in ("nan_maps", "inf_maps"):
            maps[0, 0, 0] = np.nan if fault == "nan_maps" else np.inf
        if fault == "nan_scores":
            image[0] = np.nan
        return harness.Scores(image, maps)


class FileWeights(Faulty):
    def __init__(self, weights: str) -> None:
        super().__init__("none")
        with open(weights, "rb") as handle:
            self.offset = float(handle.read(1)[0])

    def score(self, samples):
        scores = super().score(samples)
        return harness.Scores(scores.image + self.offset, scores.maps)


@harness.hookimpl
def harness_models():
    return {"faulty": Faulty, "file_weights": FileWeights}
