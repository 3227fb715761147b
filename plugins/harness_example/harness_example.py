"""A complete harness plugin in one module: copy it, rename it, publish it.

``mean_colour`` models each pixel's colour on defect-free images by its mean and standard
deviation; its anomaly map is the largest per-channel z-score, its image score the map's maximum.
"""

import numpy as np

import harness


class MeanColour:
    """Per-pixel colour statistics of normal images; ``epsilon`` keeps z-scores finite."""

    weights = "none (no backbone)"

    def __init__(self, epsilon: float = 1.0):
        self.epsilon = epsilon

    def fit(self, samples):
        images = np.stack([s.image for s in samples]).astype(np.float32)
        self.mean, self.std = images.mean(axis=0), images.std(axis=0) + self.epsilon
        return self

    def score(self, samples):
        images = np.stack([s.image for s in samples]).astype(np.float32)
        maps = (np.abs(images - self.mean) / self.std).max(axis=-1)
        return harness.Scores(image=maps.reshape(len(samples), -1).max(axis=1), maps=maps)


@harness.hookimpl
def harness_models():
    return {"mean_colour": MeanColour}
