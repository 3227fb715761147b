from harness_example import MeanColour

from harness.testing import parametrize_checks


@parametrize_checks("mean_colour", MeanColour)
def test_mean_colour_conforms(check):
    check()
