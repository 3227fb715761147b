"""A complete harness plugin in one module: copy it, rename it, publish it.

``mean_colour`` models each pixel's colour on defect-free images by its mean and standard
deviation; its anomaly map is the largest per-channel z-score, its image score the map's maximum.
It can continue fitting (``continual = True``, ``fit_more``): the statistics are updated exactly,
so after several categories it equals a model fitted on their union.
"""

import numpy as np

import harness


class MeanColour:
    """Per-pixel colour statistics of normal images; ``epsilon`` keeps z-scores finite."""

    weights = "none (no backbone)"
    continual = True  # the continual protocol may teach it more images with fit_more

    def __init__(self, epsilon: float = 1.0):
        self.epsilon = epsilon

    def fit(self, samples):
        images = np.stack([s.image for s in samples]).astype(np.float64)
        self.count, self.running_mean = len(images), images.mean(axis=0)
        self.squares = ((images - self.running_mean) ** 2).sum(axis=0)
        return self._finish()

    def fit_more(self, samples):
        """Add ``samples`` to the statistics (Chan et al.'s pairwise update), keeping what was learned."""
        images = np.stack([s.image for s in samples]).astype(np.float64)
        mean, count = images.mean(axis=0), len(images)
        delta, both = mean - self.running_mean, self.count + count
        self.squares += ((images - mean) ** 2).sum(axis=0) + delta**2 * self.count * count / both
        self.running_mean, self.count = self.running_mean + delta * count / both, both
        return self._finish()

    def _finish(self):
        self.mean = self.running_mean.astype(np.float32)
        self.std = (np.sqrt(self.squares / self.count) + self.epsilon).astype(np.float32)
        return self

    def score(self, samples):
        images = np.stack([s.image for s in samples]).astype(np.float32)
        maps = (np.abs(images - self.mean) / self.std).max(axis=-1)
        return harness.Scores(image=maps.reshape(len(samples), -1).max(axis=1), maps=maps)


@harness.hookimpl
def harness_models():
    return {"mean_colour": MeanColour}
