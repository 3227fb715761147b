"""One test per hook: a plugin implementing it is used by a real run."""

import numpy as np
import pandas as pd

import harness
from harness.analyses.base import AnalysisResult
from harness.data.base import Category, Record
from harness.plugins import get_plugins

PROTOCOL = """protocol: {kind}
dataset: {{synthetic: {{n_train: 16, n_test_good: 6, n_per_defect: 2, size: 64, seed: 0}}, categories: [weave],
          image_size: 32}}
models: [{{name: {model}}}]
calibrations: [{calibration}]
"""


def _run(cli, tmp_path, kind="kde_vs_test", model="fixed_scores", calibration="kde", extra=()):
    path = tmp_path / "p.yaml"
    path.write_text(PROTOCOL.format(kind=kind, model=model, calibration=calibration))
    out = tmp_path / "out"
    code, _, stderr = cli("run", str(path), "--out", str(out), *extra)
    assert code == 0, stderr
    return pd.read_csv(out / "results.csv")


class Brightness:
    weights = "none"

    def fit(self, samples):
        self.mean = np.mean([s.image.mean() for s in samples])

    def score(self, samples):
        return harness.Scores(np.array([abs(s.image.mean() - self.mean) for s in samples]))


def test_hook_harness_models(cli, tmp_path, register):
    class Plugin:
        @harness.hookimpl
        def harness_models(self):
            return {"brightness": Brightness}

    register(Plugin(), "brightness-plugin")
    rows = _run(cli, tmp_path, model="brightness")
    assert set(rows["model"]) == {"brightness"} and rows["pixel_auroc"].isna().all()  # no maps given


def test_hook_harness_datasets(cli, tmp_path, register, synthetic_root):
    class TwoFolders:
        def __init__(self, root, **options):
            self.root = root

        def categories(self):
            return ["weave"]

        def load(self, category):
            base = synthetic_root / "weave"
            records = [Record(p, "train") for p in sorted((base / "train" / "good").glob("*.png"))]
            records += [Record(p, "test") for p in sorted((base / "test" / "good").glob("*.png"))]
            records += [Record(p, "test", "hole") for p in sorted((base / "test" / "hole").glob("*.png"))]
            return Category("weave", records)

    class Plugin:
        @harness.hookimpl
        def harness_datasets(self):
            return {"two_folders": TwoFolders}

    register(Plugin(), "layout-plugin")
    rows = _run(cli, tmp_path, extra=("--set", f"dataset.root={tmp_path}", "--set", "dataset.layout=two_folders"))
    assert (rows["n_anomalous"] == 2).all() and (rows["n_test"] == 8).all()


def test_hook_harness_calibrations(cli, tmp_path, register):
    class MaxOfNormals:
        oracle = False

        def threshold(self, data):
            assert data.test_labels is None
            return float(np.max(data.holdout_scores))

    class Plugin:
        @harness.hookimpl
        def harness_calibrations(self):
            return {"max_of_normals": MaxOfNormals}

    register(Plugin(), "calibration-plugin")
    rows = _run(cli, tmp_path, calibration="max_of_normals")
    assert list(rows["calibration"]) == ["max_of_normals"] and rows["false_positives"].notna().all()


def test_hook_harness_protocols(cli, tmp_path, register):
    class CountScores:
        title = "count"
        description = "counts scored images"
        options = ()

        def analyse(self, context):
            rows = [
                {"model": j.model, "category": j.category, "seed": j.seed, "n_scored": len(j.scores), "status": "ok"}
                for j in context.jobs
            ]
            return AnalysisResult(pd.DataFrame(rows), [])

        def summarise(self, rows):
            return rows.groupby("model", as_index=False)["n_scored"].sum()

    class Plugin:
        @harness.hookimpl
        def harness_protocols(self):
            return {"count_scores": CountScores()}

    register(Plugin(), "protocol-plugin")
    rows = _run(cli, tmp_path, kind="count_scores")
    assert list(rows["n_scored"]) == [4 + 6 + 10]  # held-out quarter of 16 train + 16 test images


def test_hook_harness_metrics(cli, tmp_path, register):
    def top_score_gap(scores, labels):
        return float(scores[labels == 1].min() - scores[labels == 0].max())

    class Plugin:
        @harness.hookimpl
        def harness_metrics(self):
            return {"top_gap": harness.MetricSpec("top_gap", True, "image", top_score_gap)}

    register(Plugin(), "metric-plugin")
    rows = _run(cli, tmp_path)
    assert rows["top_gap"].notna().all()
    assert "auroc" in rows and "pixel_auroc" in rows  # the built-ins come through the same hook
    assert get_plugins().owner("metrics", "auroc").name == "harness.builtin_metrics"


def test_hook_harness_report_sections(cli, tmp_path, register):
    class Plugin:
        @harness.hookimpl
        def harness_report_sections(self, results, run):
            table = results.groupby("model", as_index=False)["auroc"].mean()
            return [harness.ReportSection(f"Audit of {run['protocol']}", "Checked by <b>audit</b>.", table)]

    register(Plugin(), "section-plugin")
    _run(cli, tmp_path)
    report = (tmp_path / "out" / "report.html").read_text()
    assert "Audit of kde_vs_test" in report
    assert "Checked by &lt;b&gt;audit&lt;/b&gt;." in report  # escaped, never raw HTML
    code, _, stderr = cli("report", str(tmp_path / "out"), "--format", "html")  # re-rendered from stored results
    assert code == 0, stderr
    assert "Audit of kde_vs_test" in (tmp_path / "out" / "report.html").read_text()


def test_hook_harness_trackers(cli, tmp_path, register):
    logged = []

    def notebook(out, run, summary, finding, destination):
        logged.append((run["protocol"], list(summary["model"]), finding.headline, destination))
        return f"logged to the notebook {destination}"

    class Plugin:
        @harness.hookimpl
        def harness_trackers(self):
            return {"notebook": notebook}

    register(Plugin(), "tracker-plugin")
    _run(cli, tmp_path, extra=("--tracker", "notebook=page-3"))
    assert logged and logged[0][0] == "kde_vs_test" and logged[0][1] and logged[0][3] == "page-3"
    code, stdout, _ = cli("track", str(tmp_path / "out"), "--tracker", "notebook")
    assert code == 0 and "logged to the notebook None" in stdout and len(logged) == 2
