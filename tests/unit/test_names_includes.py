from pathlib import Path

import pytest

from harness.errors import HarnessError, ProtocolError
from harness.includes import deep_merge, expand_includes
from harness.names import normalise, resolve_name, suggestion
from harness.protocol import load_protocol
from harness.protocol_files import resolve_protocol_path, shipped_protocols

REGISTRY = ["padim", "patchcore", "efficient_ad", "reverse_distillation", "fastflow"]


@pytest.mark.parametrize(
    ("written", "meant"),
    [
        ("Padim", "padim"),
        ("PatchCore", "patchcore"),
        ("EfficientAd", "efficient_ad"),
        ("ReverseDistillation", "reverse_distillation"),
        ("reverse-distillation", "reverse_distillation"),
        ("FAST_FLOW", "fastflow"),
    ],
)
def test_anomalib_spellings_resolve(written, meant):
    assert resolve_name(written, REGISTRY) == meant


def test_near_misses_get_a_suggestion_and_ambiguity_resolves_to_nothing():
    assert resolve_name("PatchKore", REGISTRY) is None
    assert suggestion("PatchKore", REGISTRY) == "patchcore" and suggestion("EfficentAD", REGISTRY) == "efficient_ad"
    assert suggestion("yolo", REGISTRY) is None
    assert resolve_name("ab", ["a_b", "A-B"]) is None and normalise("Efficient_Ad") == "efficientad"


def test_plugins_resolve_anomalib_class_names_and_suggest_near_misses():
    from harness.plugins import get_plugins

    plugins = get_plugins()
    if "patchcore" not in plugins.registry("models"):
        pytest.skip("the anomalib plugin is not installed")
    assert plugins.get("models", "PatchCore") is plugins.get("models", "patchcore")
    assert plugins.owner("models", "EfficientAd").name == plugins.owner("models", "efficient_ad").name
    with pytest.raises(HarnessError, match="Did you mean 'patchcore'"):
        plugins.get("models", "PatchKore")


def test_validate_accepts_the_anomalib_spellings_the_readme_promises(tmp_path):
    """``harness validate`` resolves model names as the planner does (it rejected ``PatchCore`` before)."""
    from harness.config.check import check_protocol
    from harness.plugins import get_plugins

    if "patchcore" not in get_plugins().registry("models"):
        pytest.skip("the anomalib plugin is not installed")
    path = tmp_path / "p.yaml"
    path.write_text("protocol: kde_vs_test\nmodels: [{name: PatchCore}, {name: EfficientAd}, {name: Padim}]\n")
    check_protocol(load_protocol(path))
    path.write_text("protocol: kde_vs_test\nmodels: [{name: PatchKore}]\n")
    with pytest.raises(ProtocolError, match=r"p\.yaml:2, key 'models\.0\.name'.*Did you mean 'patchcore'"):
        check_protocol(load_protocol(path))


@pytest.mark.parametrize(
    ("line", "key", "exact"),
    [
        ("protocol: KDE_vs_test", "protocol", "kde_vs_test"),
        ("dataset: {layout: Synthetic}", "dataset.layout", "synthetic"),
        ("calibrations: [KDE]", "calibrations.0.name", "kde"),
    ],
)
def test_other_names_than_models_must_be_exact(tmp_path, line, key, exact):
    """A layout written ``Synthetic`` would run with its ``synthetic:`` options ignored: an error instead."""
    from harness.config.check import check_protocol

    path = tmp_path / "p.yaml"
    text = {"protocol": "protocol: kde_vs_test", "dataset": "", "calibrations": "", "models": "models: [padim]"}
    text[line.split(":")[0]] = line
    path.write_text("\n".join(t for t in text.values() if t) + "\n")
    with pytest.raises(ProtocolError, match=rf"key '{key}': unknown .* write '{exact}'"):
        check_protocol(load_protocol(path))


def test_deep_merge_merges_mappings_and_replaces_lists():
    base = {"dataset": {"layout": "mvtec", "root": None}, "models": [{"name": "padim"}], "seeds": [0]}
    merged = deep_merge(base, {"dataset": {"root": "/data"}, "models": [{"name": "patchcore"}]})
    assert merged == {"dataset": {"layout": "mvtec", "root": "/data"}, "models": [{"name": "patchcore"}], "seeds": [0]}
    assert base["dataset"]["root"] is None  # inputs untouched


def test_include_a_shipped_protocol_by_name_and_override_a_few_keys(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("include: kde_vs_test\nmodels: [{name: PatchCore}]\ndataset: {categories: [weave]}\nseeds: [3]\n")
    protocol = load_protocol(path)
    shipped = load_protocol(shipped_protocols()["kde_vs_test"])
    assert (protocol.protocol == "kde_vs_test" and protocol.seeds == (3,)) or list(protocol.seeds) == [3]
    assert [m.name for m in protocol.models] == ["PatchCore"]
    assert protocol.calibrations == shipped.calibrations
    assert protocol.dataset.image_size == shipped.dataset.image_size


def test_includes_are_relative_nested_listed_and_cycles_are_errors(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "base.yaml").write_text("protocol: kde_vs_test\nseeds: [0]\ndataset: {image_size: 64}\n")
    (tmp_path / "sub" / "mid.yaml").write_text("include: base.yaml\nseeds: [1]\n")
    (tmp_path / "extra.yaml").write_text("dataset: {layout: folder}\n")
    top = {"include": ["sub/mid.yaml", "extra.yaml"], "title": "t"}
    merged = expand_includes(top, tmp_path / "top.yaml")
    assert merged == {
        "protocol": "kde_vs_test",
        "seeds": [1],
        "dataset": {"image_size": 64, "layout": "folder"},
        "title": "t",
    }
    (tmp_path / "a.yaml").write_text("include: b.yaml\n")
    (tmp_path / "b.yaml").write_text("include: a.yaml\n")
    with pytest.raises(ProtocolError, match="include cycle"):
        expand_includes({"include": "b.yaml"}, tmp_path / "a.yaml")
    with pytest.raises(ProtocolError, match="not found"):
        expand_includes({"include": "nope.yaml"}, tmp_path / "a.yaml")


def test_included_files_are_read_as_safely_as_the_including_one(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("include: base.yaml\nmodels: [padim]\n")
    for text, expected in (
        ("protocol: kde_vs_test\nseeds: [0]\nseeds: [1]\n", "base.yaml:3: duplicate key 'seeds'"),
        ("protocol: [kde_vs_test\n", "base.yaml:2: malformed YAML"),
        (
            "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
            + "".join(f"{n}: &{n} [{', '.join([f'*{p}'] * 10)}]\n" for p, n in zip("abcd", "bcde", strict=True)),
            "aliases expand",
        ),
    ):
        (tmp_path / "base.yaml").write_text(text)
        with pytest.raises(ProtocolError, match=expected) as caught:
            load_protocol(path)
        assert "\n" not in str(caught.value)


def test_protocols_by_name_paths_win_and_unknown_names_suggest(tmp_path, monkeypatch):
    assert resolve_protocol_path("kde_vs_test") == shipped_protocols()["kde_vs_test"]
    assert resolve_protocol_path("kde_vs_test.yaml").name == "kde_vs_test.yaml"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "kde_vs_test").write_text("protocol: kde_vs_test\n")
    assert resolve_protocol_path("kde_vs_test") == tmp_path.joinpath("kde_vs_test").relative_to(tmp_path)
    with pytest.raises(ProtocolError, match="Did you mean 'kde_vs_test'"):
        resolve_protocol_path("kde_vs_tst")
    import harness  # the shipped files are package data, beside the code

    assert shipped_protocols()["kde_vs_test"].parent == Path(harness.__file__).parent / "protocols"
