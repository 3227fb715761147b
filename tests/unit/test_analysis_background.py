"""Values computed in forked children while the analysis goes on (harness.analyses.common.Background)."""

import os
import sys
import time
import warnings

import pytest

from harness.analyses.common import Background

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="children are forked")


def test_values_come_back_from_children_in_any_order():
    background = Background(workers=2)
    parent = os.getpid()
    for key in "abc":
        background.submit(key, lambda key=key: (key * 2, os.getpid()))
    deadline = time.monotonic() + 60
    while (background.queued or background.running) and time.monotonic() < deadline:
        background.poll()  # a queued value starts once a child is done; one still queued would be computed here
        time.sleep(0.01)
    values = {key: background.result(key, lambda: pytest.fail("computed here")) for key in "cba"}
    assert {key: value[0] for key, value in values.items()} == {"a": "aa", "b": "bb", "c": "cc"}
    assert all(pid != parent for _, pid in values.values())
    background.close()


def test_a_failing_child_leaves_the_value_to_this_process():
    background = Background(workers=1)
    background.submit("x", lambda: 1 / 0)
    assert background.result("x", lambda: "inline") == "inline"
    background.submit("y", lambda: os._exit(3))  # a child that dies without a word
    assert background.result("y", lambda: "inline again") == "inline again"


def test_unsubmitted_or_zero_workers_compute_here():
    background = Background(workers=0)
    background.submit("x", lambda: os.getpid())
    assert background.result("x", os.getpid) == os.getpid()
    assert Background(workers=1).result("never", lambda: 5) == 5


def test_no_process_to_be_had_computes_here(monkeypatch):
    from multiprocessing.process import BaseProcess

    def refuse(self):
        raise OSError("Resource temporarily unavailable")

    monkeypatch.setattr(BaseProcess, "start", refuse)
    background = Background(workers=1)
    background.submit("x", lambda: "child")
    assert background.result("x", lambda: "here") == "here" and not background.running
    background.close()


def test_warnings_of_the_child_are_raised_here():
    def noisy():
        warnings.warn("metric 'pl' failed: boom", RuntimeWarning, stacklevel=1)
        return 0.5

    background = Background(workers=1)
    background.submit("w", noisy)
    with pytest.warns(RuntimeWarning, match="metric 'pl' failed"):
        assert background.result("w", lambda: pytest.fail("computed here")) == 0.5


def test_close_stops_children_never_asked_for():
    background = Background(workers=1)
    background.submit("slow", lambda: __import__("time").sleep(30))
    background.submit("queued", lambda: 1)
    background.close()
    assert not background.running and not background.queued


def _job(seed: int = 0):
    import numpy as np
    import pandas as pd

    from harness.analyses.base import JobData

    rng = np.random.default_rng(seed)
    labels = np.array([0] * 6 + [1] * 6)
    masks = np.zeros((12, 16, 16), bool)
    masks[6:, 4:9, 5:11] = True
    maps = (rng.random((12, 16, 16)) + masks * 0.6).astype(np.float32)
    scores = pd.DataFrame(
        {
            "split": ["test"] * 12,
            "score": maps.max(axis=(1, 2)),
            "label": labels,
            "path": [f"{i}.png" for i in range(12)],
        }
    )
    return JobData("m", "c", 0, "k", {}, scores, lambda: maps, lambda: masks)


def test_pixel_metrics_split_across_processes_equal_the_inline_ones():
    from harness.analyses.common import SLOW_PIXEL_METRICS, pixel_metric_values, pixel_metrics_beside

    inline = _job().pixel_metrics
    job = _job()
    background = Background(workers=1)
    background.submit("0", lambda: pixel_metric_values(job, SLOW_PIXEL_METRICS))
    split = pixel_metrics_beside(job, background, "0")
    assert list(split) == list(inline)
    assert split == pytest.approx(inline, nan_ok=True)
    assert all((a == b) or (a != a and b != b) for a, b in zip(split.values(), inline.values(), strict=True))
