from pathlib import Path

import pytest

from harness.errors import ProtocolError
from harness.protocol import load_protocol

REPO = Path(__file__).resolve().parents[2]


def test_shipped_protocol_loads_with_overrides():
    protocol = load_protocol(
        REPO / "protocols" / "kde_vs_test.yaml",
        ["dataset.root=/data/mvtec", "dataset.categories=[bottle]", "seeds=[0,1]", "models.0.options.pre_trained=true"],
    )
    assert protocol.dataset.root == Path("/data/mvtec")
    assert protocol.dataset.effective_layout == "mvtec"
    assert protocol.dataset.categories == ("bottle",)
    assert protocol.seeds == (0, 1)
    assert protocol.models[0].options["pre_trained"] is True


def test_no_root_means_the_embedded_dataset():
    assert load_protocol(REPO / "protocols" / "kde_vs_test.yaml").dataset.effective_layout == "synthetic"


def test_malformed_yaml_names_file_and_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("protocol: kde_vs_test\nmodels: [padim\n")
    with pytest.raises(ProtocolError, match=r"bad.yaml:\d+: malformed YAML"):
        load_protocol(path)


def test_unknown_key_suggests_the_right_one(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("protocol: kde_vs_test\nmodels: [padim]\nseed: [0]\n")
    with pytest.raises(ProtocolError, match=r"p.yaml:3, key 'seed': unknown key 'seed'. Did you mean 'seeds'"):
        load_protocol(path)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("dataset.image_size=-3", "dataset.image_size"),
        ("holdout_fraction=1.5", "holdout_fraction"),
        ("seeds=[a]", "seeds"),
        ("models=[]", "models"),
        ("report.formats=[pdf]", "report.formats"),
        ("nonsense", "KEY=VALUE"),
    ],
)
def test_bad_values_name_their_key(override, message):
    with pytest.raises(ProtocolError, match=message):
        load_protocol(REPO / "protocols" / "kde_vs_test.yaml", [override])
