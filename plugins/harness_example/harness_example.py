"""A complete harness plugin in one module: copy it, rename it, publish it.

``mean_colour`` models each pixel's colour on defect-free images by its mean and standard
deviation; its anomaly map is the largest per-channel z-score, its image score the map's maximum.
It can continue fitting (``continual = True``, ``fit_more``, for the continual protocol): the
statistics are pooled exactly, so after several categories it equals a fit on their union.

Its options are declared by :class:`MeanColourOptions`, a pydantic model registered with the
factory in a :class:`harness.ModelSpec`: ``harness validate`` then refuses an unknown option or a
wrong-typed value (one ``Error:`` line naming ``models.N.options.<key>``) before anything is fitted.
The model only checks; the factory still receives the options as the protocol gives them.
"""

import numpy as np
from pydantic import Field

import harness
from harness.analysis import Float, OptionsModel


class MeanColourOptions(OptionsModel):
    """The options of ``mean_colour``: one field per constructor argument, same default, one-line description."""

    epsilon: Float = Field(1.0, gt=0, description="added to each pixel's std so that z-scores stay finite")


class MeanColour:
    """Per-pixel colour statistics of normal images; ``epsilon`` keeps z-scores finite."""

    weights = "none (no backbone)"
    continual = True  # the continual protocol may teach it more images with fit_more

    def __init__(self, epsilon: float = 1.0):
        self.epsilon = epsilon

    def fit(self, samples):
        images = np.stack([s.image for s in samples]).astype(np.float32)
        self.mean, self.std = images.mean(axis=0), images.std(axis=0) + self.epsilon
        self.count = len(images)
        return self

    def fit_more(self, samples):
        """Keep what was learned and add ``samples``: the pooled mean and std of every image seen."""
        images = np.stack([s.image for s in samples]).astype(np.float64)
        n, m = self.count, len(images)
        mean, var = self.mean.astype(np.float64), (self.std.astype(np.float64) - self.epsilon) ** 2
        new_mean, new_var = images.mean(axis=0), images.var(axis=0)
        pooled = (n * mean + m * new_mean) / (n + m)
        var = (n * (var + (mean - pooled) ** 2) + m * (new_var + (new_mean - pooled) ** 2)) / (n + m)
        self.mean, self.std = pooled.astype(np.float32), (np.sqrt(var) + self.epsilon).astype(np.float32)
        self.count = n + m
        return self

    def score(self, samples):
        images = np.stack([s.image for s in samples]).astype(np.float32)
        maps = (np.abs(images - self.mean) / self.std).max(axis=-1)
        return harness.Scores(image=maps.reshape(len(samples), -1).max(axis=1), maps=maps)


@harness.hookimpl
def harness_models():
    """Register the detector under its protocol name, with its options model."""
    return {
        "mean_colour": harness.ModelSpec(
            MeanColour,
            options=MeanColourOptions,
            continual=True,
            description="Per-pixel colour statistics of normal images; ``epsilon`` keeps z-scores finite.",
        )
    }
