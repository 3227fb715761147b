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

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium (Debian: apt-get install -y chromium)"),
    pytest.mark.xdist_group("report_browser"),  # the reports are rendered once, in one process
]


def _chromium(*args: str) -> subprocess.CompletedProcess:
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)


PROTOCOLS = {
    "kde_vs_test": "calibrations: [test_f1_oracle, test_youden_oracle, kde, quantile]",
    "benchmark": "calibrations: [kde]\nefficiency: {energy: false}\nanalysis: {bootstrap: 20}",
}


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, Path]:
    from conftest import SMALL_SYNTHETIC, FixedScores, FixedScoresPlugin
    from harness.cli import main
    from harness.plugins import get_plugins

    if "fixed_scores" not in get_plugins().registry("models"):
        get_plugins().register(FixedScoresPlugin(), "test-fixed-scores")
    FixedScores.calls = []  # starts the model's call log (conftest), as the per-test fixture does
    folder = tmp_path_factory.mktemp("browser")
    found = {}
    for kind, lines in PROTOCOLS.items():
        protocol = folder / f"{kind}.yaml"
        protocol.write_text(f"""
protocol: {kind}
dataset: {{synthetic: {SMALL_SYNTHETIC}, categories: [weave, disc], image_size: 32}}
models: [fixed_scores, {{name: fixed_scores, label: fixed_scores_ünï}}]
seeds: [0]
{lines}
""")
        out = folder / kind
        assert main(["-q", "run", str(protocol), "--out", str(out), "--cache", str(folder / "cache")]) == 0
        found[kind] = out / "report.html"
    return found


def _facts(report: Path, width: int, tmp_path: Path) -> dict:
    probed = tmp_path / "probed.html"
    probed.write_text(report.read_text().replace("</body>", f"<script>{PROBE.read_text()}</script></body>"))
    done = _chromium(f"--window-size={width},1000", "--virtual-time-budget=5000", "--dump-dom", probed.as_uri())
    found = re.search(r'<pre id="layout-facts">([^<]*)</pre>', done.stdout)
    assert found, f"no layout facts from Chromium: {done.stderr[-500:]}"
    return json.loads(found.group(1))


@pytest.mark.parametrize("width", [900, 1400])
@pytest.mark.parametrize("kind", list(PROTOCOLS))
def test_report_keeps_the_finding_first_and_key_columns_in_view(reports, tmp_path, width, kind):
    facts = _facts(reports[kind], width, tmp_path)
    assert facts["width"] == width
    assert facts["pageScroll"] <= width  # the page itself never scrolls sideways
    assert facts["finding"] < 250  # the finding opens the report, above the fold
    columns = facts["columns"]
    if kind == "kde_vs_test":
        assert set(METRIC_COLUMNS) <= set(columns)
    for column, where in columns.items():  # every leaderboard column is on screen without scrolling
        left, right = where["start"]
        assert left >= 0 and right <= width, (column, where)
    assert facts["tableScroll"] == 0
    assert columns["model"]["scrolled"] == columns["model"]["start"]  # scrolling never hides the row's name
    assert facts["minFont"] >= 10
    # figures are drawn with >= 10 pt text at 100 dpi (13.9 px): shown at >= 10 px
    assert facts["imageScale"] * 10 / 72 * 100 >= 10
    if width == 1400:
        assert max(facts["overflow"]) == 0  # no table scrolls sideways at 1400 px
    if kind == "benchmark":  # latency, CO2, ...: in view, or in a cost table of their own that fits
        assert {"fit_seconds", "latency_ms"} <= set(columns) or facts["costScroll"] == 0


@pytest.mark.parametrize("width", [900, 1400])
def test_report_screenshot_has_the_window_width(reports, tmp_path, width):
    shot = tmp_path / f"report-{width}.png"
    _chromium(f"--window-size={width},1200", f"--screenshot={shot}", reports["kde_vs_test"].as_uri())
    with Image.open(shot) as image:
        assert image.size == (width, 1200)
        assert len(set(image.convert("L").getdata())) > 20  # something was drawn, not a blank page
