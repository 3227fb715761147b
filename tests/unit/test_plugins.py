import pytest

import harness
from harness.errors import HarnessError
from harness.plugins import Plugins


class Broken:
    @staticmethod
    @harness.hookimpl
    def harness_models():
        raise ImportError("needs libfoo")


class Clash:
    @staticmethod
    @harness.hookimpl
    def harness_calibrations():
        return {"kde": object}


def test_builtins_register_without_autoload():
    plugins = Plugins(autoload=False)
    assert {"mvtec", "folder", "synthetic"} <= set(plugins.registry("datasets"))
    assert {"kde", "test_f1_oracle", "test_youden_oracle", "quantile"} <= set(plugins.registry("calibrations"))
    assert plugins.registry("protocols") == {}  # no privileged kind: kde_vs_test is harness_paradigms's


def test_kde_vs_test_comes_from_harness_paradigms():
    pytest.importorskip("harness_paradigms")
    plugins = Plugins()
    assert plugins.owner("protocols", "kde_vs_test").name == "paradigms"


def test_a_kind_without_its_plugin_names_where_kinds_come_from():
    with pytest.raises(HarnessError, match=r"unknown protocol 'kde_vs_test'.*plugins/harness_paradigms"):
        Plugins(autoload=False).analysis("kde_vs_test")


def test_a_failing_plugin_is_reported_and_the_rest_work():
    plugins = Plugins(autoload=False)
    info = plugins.register(Broken(), "broken")
    assert "needs libfoo" in info.error
    assert "kde" in plugins.registry("calibrations")


def test_a_name_claimed_twice_names_both_plugins():
    plugins = Plugins(autoload=False)
    info = plugins.register(Clash(), "clash")
    assert "registered by both 'harness.calibration' and 'clash'" in info.error


def test_unknown_name_suggests_the_closest():
    plugins = Plugins(autoload=False)
    with pytest.raises(HarnessError, match="Did you mean 'kde'"):
        plugins.get("calibrations", "kdee")


def test_misspelt_hook_fails_at_start():
    class Misspelt:
        @staticmethod
        @harness.hookimpl
        def harness_modles():
            return {}

    plugins = Plugins(autoload=False)
    with pytest.raises(Exception, match="harness_modles"):
        plugins.register(Misspelt(), "misspelt")


def test_entry_point_plugins_are_found():
    plugins = Plugins()
    names = {info.name for info in plugins.infos}
    assert {"anomalib", "example"} <= names
    assert "padim" in plugins.registry("models")
    assert "mean_colour" in plugins.registry("models")


def test_seeding_reaches_a_torch_imported_later():
    """The first torch job of a process is seeded too (plugins import torch inside their factories)."""
    import subprocess
    import sys

    code = "from harness.scoring import seed_everything; seed_everything(7); import torch; print(torch.initial_seed())"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "7"
