"""Dinomaly + reconstruction head: trains offline at small size, local weights, clear offline errors."""

import pandas as pd
import pytest
import timm
import torch
from harness_dinomaly_recon import dinomaly_plain, dinomaly_recon
from harness_dinomaly_recon.detector import DinomalyDetector
from harness_dinomaly_recon.model import normalise, top_mean

from harness import ModelError
from harness.cli import main
from harness.testing import Subject, parametrize_checks

SMALL = {"encoder": "vit_small_patch14_reg4_dinov2", "pretrained": False, "iterations": 3, "batch_size": 4}


def test_top_mean_is_the_mean_of_the_highest_percent():
    maps = torch.arange(200.0).reshape(1, 1, 10, 20)
    assert float(top_mean(maps, 0.01)) == pytest.approx((199 + 198) / 2)


def test_inputs_snap_to_the_patch_grid():
    assert normalise(torch.rand(2, 3, 50, 64), 14).shape[-2:] == (56, 70)


def test_the_reconstruction_head_learns(monkeypatch):
    torch.manual_seed(0)
    subject = Subject("dinomaly_recon", dinomaly_recon, SMALL, 42)
    detector = DinomalyDetector(**{**SMALL, "iterations": 1})
    detector.fit(subject.samples("train"))
    model = detector.model
    images = normalise(
        torch.stack([torch.from_numpy(s.image).permute(2, 0, 1) / 255 for s in subject.samples("train")]), 14
    ).to(next(model.parameters()).device)  # the detector's device: CPU or GPU alike
    model.eval()
    with torch.no_grad():  # only the head trains: its input, the decoder's output, is computed once
        decoded = model.dinomaly.get_encoder_decoder_outputs(images)[1]
        before = float(torch.nn.functional.mse_loss(model.head(decoded), images))
    optimiser = torch.optim.Adam(model.head.parameters(), lr=1e-3)
    for _ in range(30):
        loss = torch.nn.functional.mse_loss(model.head(decoded), images)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert float(loss) < 0.7 * before


def test_training_uses_every_training_normal_given(monkeypatch):
    import harness_dinomaly_recon.detector as module

    trained_on = []
    original = module.to_tensor

    def recording(samples):
        trained_on.append(len(samples))
        return original(samples)

    monkeypatch.setattr(module, "to_tensor", recording)
    subject = Subject("dinomaly_recon", dinomaly_recon, SMALL, 42)  # owns the handed-over image folder
    samples = subject.samples("train")
    detector = DinomalyDetector(**{**SMALL, "iterations": 1}).fit(samples)
    assert trained_on[0] == len(samples)  # the first tensor built is the training set: nothing carved out
    assert f"trained on all {len(samples)} training normals" in detector.fit_note
    assert "our design (paper 000 gives no architecture)" in detector.fit_note
    carved = DinomalyDetector(**{**SMALL, "iterations": 1, "validation_fraction": 0.25})
    train, held = carved.split(samples, 0)
    assert len(train) + len(held) == len(samples) and held  # an explicit option, and the note says so
    assert "held for the map scales (options.validation_fraction)" in carved._note(len(train), len(samples))


def test_plain_has_no_head_and_same_encoder():
    torch.manual_seed(0)
    subject = Subject("dinomaly_plain", dinomaly_plain, {**SMALL, "iterations": 1}, 42)
    plain = subject.fitted()
    assert plain.model.head is None and plain.name == "dinomaly_plain" and plain.weights == "random-init"
    assert "reconstruction head" not in plain.fit_note


def test_local_weights_file(tmp_path):
    encoder = timm.create_model("vit_small_patch14_reg4_dinov2", pretrained=False)
    path = tmp_path / "vit_small_patch14_reg4_dinov2.pth"
    torch.save(encoder.state_dict(), path)
    detector = dinomaly_recon(**{**SMALL, "pretrained": True, "weights": str(tmp_path)})
    subject = Subject("dinomaly_recon", dinomaly_recon, SMALL, 42)  # owns the handed-over image folder
    detector.fit(subject.samples("train"))
    assert detector.weights == "local file: vit_small_patch14_reg4_dinov2.pth"
    loaded = detector.model.dinomaly.encoder.feature_extractor.state_dict()
    assert torch.equal(loaded["pos_embed"].cpu(), encoder.state_dict()["pos_embed"])  # the model may be on a GPU


def test_offline_pretrained_names_the_fix(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # read at import time otherwise
    detector = dinomaly_recon(encoder="vit_small_patch14_reg4_dinov2", iterations=1)
    with pytest.raises(ModelError, match=r"options\.weights"):
        detector.fit(Subject("dinomaly_recon", dinomaly_recon, SMALL, 42).samples("train"))


def test_unknown_encoder_is_one_line():
    with pytest.raises(ModelError, match=r"options\.encoder"):
        dinomaly_recon(encoder="resnet18", pretrained=False).fit(
            Subject("dinomaly_recon", dinomaly_recon, SMALL, 42).samples("train")
        )


@parametrize_checks("dinomaly_recon", dinomaly_recon, SMALL, image_size=42)
def test_dinomaly_recon_conforms(check):
    check()


@pytest.mark.slow
def test_both_rows_under_kde_vs_test(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    protocol = tmp_path / "dinomaly.yaml"
    protocol.write_text(f"""
protocol: kde_vs_test
dataset: {{synthetic: {{n_train: 16, n_test_good: 6, n_per_defect: 2, size: 64, seed: 0}}, categories: [disc],
          image_size: 56}}
models: [{{name: dinomaly_recon, options: {SMALL}}}, {{name: dinomaly_plain, options: {SMALL}}}]
calibrations: [test_f1_oracle, kde]
""")
    code = main(["run", str(protocol), "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache")])
    assert code == 0, capsys.readouterr().err
    rows = pd.read_csv(tmp_path / "out" / "results.csv")
    assert set(rows["model"]) == {"dinomaly_recon", "dinomaly_plain"}
    assert set(rows["weights"]) == {"random-init"} and rows["aupro"].notna().all()
    report = (tmp_path / "out" / "report.html").read_text()
    assert "dinomaly_recon" in report and "reconstruction head: our design" in report
    notes = rows.set_index("model")["notes"]
    assert notes.loc["dinomaly_recon"].str.contains("our design").all()
    assert notes.loc["dinomaly_plain"].str.contains("trained on all").all()


def test_harness_list_says_what_the_defaults_need_offline(monkeypatch):
    import harness_anomalib.catalogue

    monkeypatch.setattr(harness_anomalib.catalogue, "hub_reachable", lambda: False)
    assert "options.weights" in dinomaly_recon.why_unavailable()
    monkeypatch.setattr(harness_anomalib.catalogue, "hub_reachable", lambda: True)
    assert dinomaly_plain.why_unavailable() is None
