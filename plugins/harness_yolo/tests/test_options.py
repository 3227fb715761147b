"""YOLO options are checked from the plugin's declared model, before anything is fitted or imported."""

import subprocess
import sys

import pytest
from harness_yolo import MODELS, YoloOptions, harness_models
from pydantic import ValidationError

from harness.cli import main


def test_options_are_declared_as_a_model():
    factory = harness_models()["yolov8n"]
    assert factory.options_model is YoloOptions and factory.supervised
    with pytest.raises(ValidationError):
        YoloOptions.model_validate({"epoch": 3})
    assert YoloOptions.model_validate({"epochs": 2, "imgsz": 64}).epochs == 2


def test_validate_rejects_a_misspelt_option_before_fitting(capsys):
    code = main(
        [
            "validate",
            "kde_vs_test",
            "--set",
            "models=[{name: yolov8n, options: {epoch: 3}}]",
            "--set",
            "supervision={anomaly_train_fraction: 0.5}",
        ]
    )
    assert code == 2 and "Did you mean 'epochs'" in capsys.readouterr().err


def test_registering_and_checking_imports_no_ultralytics():
    code = (
        "import sys\n"
        "from harness_yolo import harness_models\n"
        "[f.options_model.model_validate({'epochs': 1}) for f in harness_models().values()]\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'ultralytics', 'torch', 'cv2'}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert result.stdout.strip() == "[]"
    assert len(MODELS) == len(harness_models())
