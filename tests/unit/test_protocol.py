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


def test_kind_is_the_protocol_kind_and_protocol_stays_an_alias():
    config = load_protocol(REPO / "protocols" / "kde_vs_test.yaml")
    assert config.kind == config.protocol == "kde_vs_test"


def test_protocol_is_a_deprecated_name_of_protocol_config():
    import harness.protocol as module

    with pytest.warns(DeprecationWarning, match="ProtocolConfig"):
        assert module.Protocol is module.ProtocolConfig


def test_relative_root_in_the_file_is_relative_to_the_file(tmp_path, monkeypatch):
    (tmp_path / "protocols").mkdir()
    path = tmp_path / "protocols" / "p.yaml"
    path.write_text("protocol: kde_vs_test\nmodels: [padim]\ndataset: {root: ../data/mvtec}\n")
    monkeypatch.chdir(tmp_path / "protocols")
    assert load_protocol("p.yaml").dataset.root == (tmp_path / "protocols" / "../data/mvtec").absolute()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert load_protocol(path).dataset.root == tmp_path / "protocols" / "../data/mvtec"


def test_relative_root_given_with_set_is_relative_to_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_protocol(REPO / "protocols" / "kde_vs_test.yaml", ["dataset.root=data/mvtec"])
    assert config.dataset.root == tmp_path / "data" / "mvtec"
    assert config.raw["dataset"]["root"] == "data/mvtec"  # run.json keeps what the user wrote


def test_a_symlinked_root_is_kept_as_given(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    config = load_protocol(REPO / "protocols" / "kde_vs_test.yaml", [f"dataset.root={tmp_path / 'link'}"])
    assert config.dataset.root == tmp_path / "link"


def test_anchors_aliases_and_merge_keys_still_work(tmp_path):
    multicore = load_protocol(REPO / "protocols" / "multicore.yaml")
    assert multicore.models[1].options == multicore.models[3].options
    path = tmp_path / "p.yaml"
    path.write_text("protocol: kde_vs_test\nmodels:\n  - &b {name: padim, label: a}\n  - {<<: *b, label: b}\n")
    assert [m.label for m in load_protocol(path).models] == ["a", "b"]


def test_duplicate_keys_are_errors_at_their_line(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("protocol: kde_vs_test\nmodels: [padim]\ndataset:\n  image_size: 64\n  image_size: 32\n")
    with pytest.raises(ProtocolError, match=r"p.yaml:5: duplicate key 'image_size' \(first at line 4\)"):
        load_protocol(path)


def test_values_are_not_coerced(tmp_path):
    config = load_protocol(REPO / "protocols" / "kde_vs_test.yaml", ["dataset.image_size=[64, 48]", "seeds=3"])
    assert config.dataset.image_size == (64, 48) and config.seeds == (3,)
    for bad in ("dataset.image_size=true", "seeds=[true]", "holdout_fraction='0.2'", "version=1.5"):
        with pytest.raises(ProtocolError):
            load_protocol(REPO / "protocols" / "kde_vs_test.yaml", [bad])


def test_sections_the_runner_reads_keep_their_shapes():
    config = load_protocol(REPO / "protocols" / "benchmark.yaml")
    assert config.efficiency == {"energy": True, "grid_intensity": 0.475, "latency_repeats": 5}
    assert config.executor == {"name": "local"}
    assert config.supervision == {"anomaly_train_fraction": 0.5, "seed": 0}
    assert config.analysis["metrics"] == ["auroc", "recall", "f1", "ap"]
    assert config.models[0].options == {"backbone": "resnet18", "pre_trained": False, "n_features": 64}
    assert config.calibrations[0].label == "kde"
