"""The HTML report in a real headless Chromium at 900 and 1400 px: the finding first, key columns in view.

A small script injected into a copy of the report (never into the shipped one) records layout facts
after load; Chromium's ``--dump-dom`` hands them back. Skips when no Chromium is installed
(Debian: ``apt-get install chromium``).
"""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
PROBE = Path(__file__).parent / "browser" / "layout_probe.js"
KEY_COLUMNS = ["model", "calibration", "recall", "f1", "f1_gap", "false_negatives", "false_positives"]
METRIC_COLUMNS = [*KEY_COLUMNS, "precision", "accuracy", "auroc", "ap", "pixel_auroc", "aupro", "pl"]

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium (Debian: apt-get install -y chromium)")


def _chromium(*args: str) -> subprocess.CompletedProcess:
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    from conftest import SMALL_SYNTHETIC, FixedScoresPlugin

    from harness.cli import main
    from harness.plugins import get_plugins

    if "fixed_scores" not in get_plugins().registry("models"):
        get_plugins().register(FixedScoresPlugin(), "test-fixed-scores")

    folder = tmp_path_factory.mktemp("browser")
    protocol = folder / "small.yaml"
    protocol.write_text(f"""
protocol: kde_vs_test
dataset: {{synthetic: {SMALL_SYNTHETIC}, categories: [weave, disc], image_size: 32}}
models: [fixed_scores, {{name: fixed_scores, label: fixed_scores_ünï}}]
calibrations: [test_f1_oracle, test_youden_oracle, kde, quantile]
seeds: [0]
""")
    assert main(["-q", "run", str(protocol), "--out", str(folder / "out"), "--cache", str(folder / "cache")]) == 0
    return folder / "out" / "report.html"


def _facts(report: Path, width: int, tmp_path: Path) -> dict:
    probed = tmp_path / "probed.html"
    probed.write_text(report.read_text().replace("</body>", f"<script>{PROBE.read_text()}</script></body>"))
    done = _chromium(f"--window-size={width},1000", "--virtual-time-budget=5000", "--dump-dom", probed.as_uri())
    found = re.search(r'<pre id="layout-facts">([^<]*)</pre>', done.stdout)
    assert found, f"no layout facts from Chromium: {done.stderr[-500:]}"
    return json.loads(found.group(1))


@pytest.mark.parametrize("width", [900, 1400])
def test_report_keeps_the_finding_first_and_key_columns_in_view(report, tmp_path, width):
    facts = _facts(report, width, tmp_path)
    assert facts["width"] == width
    assert facts["pageScroll"] <= width  # the page itself never scrolls sideways
    assert facts["finding"] < 250  # the finding opens the report, above the fold
    columns = facts["columns"]
    for column in METRIC_COLUMNS:  # every metric of the leaderboard is on screen without scrolling
        left, right = columns[column]["start"]
        assert left >= 0 and right <= width, (column, columns[column])
    assert facts["tableScroll"] == 0
    for column in ("model", "calibration"):  # scrolling sideways never hides which row is which
        assert columns[column]["scrolled"] == columns[column]["start"]
    assert facts["minFont"] >= 10
    # figures are drawn with >= 10 pt text at 100 dpi (13.9 px): shown at >= 10 px
    assert facts["imageScale"] * 10 / 72 * 100 >= 10
    if width == 1400:
        assert max(facts["overflow"]) == 0  # no table scrolls sideways at 1400 px


@pytest.mark.parametrize("width", [900, 1400])
def test_report_screenshot_has_the_window_width(report, tmp_path, width):
    shot = tmp_path / f"report-{width}.png"
    _chromium(f"--window-size={width},1200", f"--screenshot={shot}", report.as_uri())
    with Image.open(shot) as image:
        assert image.size == (width, 1200)
        assert len(set(image.convert("L").getdata())) > 20  # something was drawn, not a blank page
