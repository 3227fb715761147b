"""Turning plugin autoloading, or one plugin, off: environment and command line."""

import json

import pytest

from harness.errors import HarnessError
from harness.plugins import Plugins, configure


@pytest.fixture
def restore_plugins():
    yield
    configure()  # back to the environment's defaults for the other tests


def test_environment_disables_autoload(monkeypatch):
    monkeypatch.setenv("HARNESS_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert {i.name for i in Plugins().infos} == {i.name for i in Plugins(autoload=False).infos}


def test_environment_disables_one_plugin(monkeypatch):
    monkeypatch.setenv("HARNESS_DISABLE_PLUGINS", "example")
    names = {i.name for i in Plugins().infos}
    assert "example" not in names and "anomalib" in names


def test_disabling_an_unknown_plugin_suggests_the_closest():
    with pytest.raises(HarnessError, match="Did you mean 'example'"):
        Plugins(disabled={"exmaple"})


def test_an_unknown_name_says_which_plugins_were_left_out_not_to_install_them():
    """kde_vs_test comes from plugins/harness_paradigms: left out, it is not missing."""
    left_out = {"autoload is off": Plugins(autoload=False), "paradigms": Plugins(disabled={"paradigms"})}
    for why, plugins in left_out.items():
        with pytest.raises(HarnessError, match=f"unknown protocol 'kde_vs_test'.*not loaded: .*{why}") as error:
            plugins.analysis("kde_vs_test")
        assert "pip install" not in str(error.value)


def test_command_line_options(cli, restore_plugins):
    code, stdout, _ = cli("--disable-plugin", "example", "plugins", "--json")
    assert code == 0 and "example" not in {p["name"] for p in json.loads(stdout)}
    code, stdout, _ = cli("--no-plugin-autoload", "plugins", "--json")
    assert code == 0 and {p["source"] for p in json.loads(stdout)} == {"built-in"}


def test_plugins_json_lists_name_version_and_registrations(cli):
    code, stdout, _ = cli("plugins", "--json")
    entries = {p["name"]: p for p in json.loads(stdout)}
    assert code == 0 and entries["example"]["registers"] == {"models": ["mean_colour"]}
    assert entries["anomalib"]["version"] == "0.1.0" and entries["anomalib"]["error"] is None
