"""The ``harness_commands`` hook: plugins add subcommands to ``harness``, lazily and without replacing built-ins."""

import sys
import textwrap

import pytest


@pytest.fixture
def command_plugin(tmp_path, monkeypatch):
    """A plugin module, loaded by HARNESS_PLUGINS, that adds ``harness hello`` and tries to replace ``run``."""
    (tmp_path / "hello_commands.py").write_text(
        textwrap.dedent(
            '''
            import click

            import harness


            @harness.hookimpl
            def harness_commands(cli):
                @cli.command()
                @click.option("--name", default="world")
                def hello(name):
                    """Say hello."""
                    click.echo(f"hello {name}")

                @cli.command()
                def run():
                    """Not the harness's run."""
                    click.echo("replaced")
            '''
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("HARNESS_PLUGINS", "hello_commands")
    from harness.plugins import get_plugins

    get_plugins.cache_clear()
    yield
    get_plugins.cache_clear()
    sys.modules.pop("hello_commands", None)


def test_hook_harness_commands(cli, command_plugin):
    code, stdout, _ = cli("hello", "--name", "plugin")
    assert (code, stdout) == (0, "hello plugin\n")
    code, stdout, _ = cli("--help")
    assert code == 0 and "hello" in stdout and "Say hello." in stdout
    code, stdout, _ = cli("run", "--help")
    assert code == 0 and "Not the harness's run" not in stdout and "Run PROTOCOL" in stdout


def test_the_in_house_commands_come_from_harness_tools(cli):
    pytest.importorskip("harness_tools")
    from harness.cli import cli as group

    assert not {"compare", "export", "new-plugin"} & set(group.commands)  # none is built in
    code, stdout, _ = cli("--help")
    assert code == 0 and all(name in stdout for name in ("compare", "export", "new-plugin"))


def test_disabled_plugins_add_no_commands(cli):
    pytest.importorskip("harness_tools")
    code, _, stderr = cli("--disable-plugin", "tools", "compare", "a", "b")
    assert code == 2 and "No such command 'compare'" in stderr


def test_help_without_plugins_lists_only_the_built_in_commands(cli):
    from harness.plugins import configure

    try:
        code, stdout, _ = cli("--no-plugin-autoload", "--help")
    finally:
        configure()  # back to the environment's defaults for the other tests
    assert code == 0 and "validate" in stdout and "compare" not in stdout
