"""Values computed in forked children while the analysis goes on (harness.analyses.common.Background)."""

import os
import sys
import warnings

import pytest

from harness.analyses.common import Background

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="children are forked")


def test_values_come_back_from_children_in_any_order():
    background = Background(workers=2)
    parent = os.getpid()
    for key in "abc":
        background.submit(key, lambda key=key: (key * 2, os.getpid()))
    background.poll()
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
