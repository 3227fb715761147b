"""A detector that costs nothing (its map is the image's grey level): the harness' own price per run.

Loaded by import path (``HARNESS_PLUGINS=zero_cost_plugin`` with ``benchmarks/`` on ``PYTHONPATH``)
by ``benchmarks/harness_speed.py``.
"""

import numpy as np

import harness


class GreyLevel:
    """Fits nothing; the anomaly map is the grey level in [0, 1], the image score its mean."""

    weights = "none (no model)"

    def fit(self, samples):
        return self

    def score(self, samples):
        maps = np.stack([s.image.mean(axis=-1) / 255.0 for s in samples]).astype(np.float32)
        return harness.Scores(image=maps.reshape(len(samples), -1).mean(axis=1), maps=maps)


@harness.hookimpl
def harness_models():
    return {"zero_cost": GreyLevel}
