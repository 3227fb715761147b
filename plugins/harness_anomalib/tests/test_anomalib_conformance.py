"""anomalib models through the adapter pass the harness conformance suite (small, random init)."""

import pytest
from harness_anomalib import AnomalibFactory

from harness.testing import parametrize_checks

pytestmark = pytest.mark.slow


@parametrize_checks("padim", AnomalibFactory("padim"), {"backbone": "resnet18", "pre_trained": False, "n_features": 16})
def test_padim_conforms(check):
    check()


@parametrize_checks(
    "fastflow",
    AnomalibFactory("fastflow"),
    {"backbone": "resnet18", "pre_trained": False, "flow_steps": 2, "max_epochs": 1},
)
def test_fastflow_conforms(check):
    check()
