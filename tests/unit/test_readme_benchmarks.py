"""The README's timings are the output of ``benchmarks/harness_speed.py``, never typed by hand (issue 19.5).

Not a test of the timings themselves: only that the table sits between its markers, was written by
the script, and that no other sentence of the README states a measured time.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys

import pytest

from conftest import REPO

TIME = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)?\s?(?:ms|s|sec|min|minutes|seconds|hours?)\b")
NOT_MEASURED = ("after 600 s", "under 10 minutes")  # a configuration example and the CI's aim


@pytest.fixture(scope="module")
def speed():
    spec = importlib.util.spec_from_file_location("harness_speed", REPO / "benchmarks" / "harness_speed.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def _block(text: str, markers: tuple[str, str]) -> str:
    start, end = markers
    assert text.count(start) == 1 and text.count(end) == 1, "README needs the harness-speed markers once each"
    assert text.index(start) < text.index(end)
    return text[text.index(start) + len(start) : text.index(end)].strip()


def test_the_timing_table_is_between_the_markers_and_written_by_the_script(speed):
    block = _block((REPO / "README.md").read_text(), speed.MARKERS)
    assert block.startswith(speed.GENERATED_BY), "run: python benchmarks/harness_speed.py --write-readme"
    header = speed.table([]).splitlines()[-2:]  # the script's own table header
    lines = block.splitlines()
    assert lines[lines.index(header[0]) + 1] == header[1]
    rows = lines[lines.index(header[1]) + 1 :]
    assert rows and all(row.startswith("| ") and row.count(" | ") == 3 and row.endswith(" |") for row in rows)


def test_write_readme_replaces_only_the_text_between_the_markers(speed, tmp_path):
    readme = shutil.copy(REPO / "README.md", tmp_path / "README.md")
    before = readme.read_text()
    table = speed.table([speed.Measure("a case", "1.00 s", "< 2 s", True)])
    speed.write_readme(table, readme)
    after = readme.read_text()
    assert _block(after, speed.MARKERS) == table
    start, end = speed.MARKERS
    assert after[: after.index(start)] == before[: before.index(start)]
    assert after[after.index(end) :] == before[before.index(end) :]


def test_no_measured_time_is_typed_outside_the_generated_table(speed):
    text = (REPO / "README.md").read_text()
    start, end = speed.MARKERS
    outside = text[: text.index(start)] + text[text.index(end) :]
    for phrase in NOT_MEASURED:
        outside = outside.replace(phrase, "")
    typed = [line.strip() for line in outside.splitlines() if TIME.search(line)]
    assert typed == [], "timings belong in benchmarks/harness_speed.py's table (issue 19.5): " + " / ".join(typed)
