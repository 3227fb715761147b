"""Seeding torch at its import: the same draws as seeding before it, and no import for jobs that never use it."""

from __future__ import annotations

import subprocess
import sys

from harness.seeding import seed_on_import


def _python(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def test_seeding_loads_no_torch_and_a_later_import_draws_as_if_seeded_before():
    code = (
        "import sys; from harness.scoring import seed_everything; seed_everything(7); "
        "print('torch' in sys.modules); import torch; a = torch.rand(4).tolist(); "
        "torch.manual_seed(7); print(a == torch.rand(4).tolist())"
    )
    assert _python(code).split() == ["False", "True"]


def test_a_pending_seed_runs_once_after_the_module_executes(tmp_path, monkeypatch):
    (tmp_path / "fake_seeded_lib.py").write_text("state = []\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    calls = []
    seed_on_import("fake_seeded_lib", lambda module: calls.append(list(module.state)) or module.state.append(1))
    seed_on_import("fake_seeded_lib", lambda module: calls.append("latest") or module.state.append(2))
    import fake_seeded_lib

    assert calls == ["latest"] and fake_seeded_lib.state == [2]
    sys.modules.pop("fake_seeded_lib")
    import fake_seeded_lib  # imported again: the seed ran once

    assert calls == ["latest"]
    sys.modules.pop("fake_seeded_lib")
