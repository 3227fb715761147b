"""The ``harness`` command: run, validate, schema, list, plugins, report, track; plugins add more.

Plugins add subcommands through the ``harness_commands`` hook (``harness compare``, ``export``
and ``new-plugin`` come from plugins/harness_tools), looked up only when a command that is not
built in is asked for or the command list is shown.

Bad input ends with one ``Error:`` line and exit status 2 (see :class:`harness.errors.ExitCode`);
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from pathlib import Path
from typing import Any

import click

from harness import __version__
from harness.errors import ExitCode, HarnessError

DISTRIBUTION = "adharness"
"""The distribution (``pip install adharness``); the import package and the command are ``harness``."""
AUDIT_FIELDS = ("kind", "category", "path", "detail")
AUDIT_MAX_DISTANCE = 4
"""``harness validate --audit``: the fields of a finding, and the near-duplicate Hamming distance (of 64 bits)."""


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (so captured and redirected streams work)."""

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def _show_harness_warnings() -> None:
    """The harness's own warnings (a damaged cache entry refitted) as one ``Warning:`` line each on stderr."""
    logger = logging.getLogger("harness")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setLevel(logging.WARNING)
        handler.setFormatter(logging.Formatter("Warning: %(message)s"))
        logger.addHandler(handler)


def _quiet_libraries() -> None:
    """Keep third-party chatter (Lightning tips, hub retries) out of the user's terminal."""
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "anomalib", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _configure_plugins(ctx: click.Context) -> None:
    """Apply ``--no-plugin-autoload`` and ``--disable-plugin`` once per invocation, before plugins load."""
    if ctx.meta.get("harness.plugins_configured"):
        return
    ctx.meta["harness.plugins_configured"] = True
    params = ctx.find_root().params
    if params.get("no_plugin_autoload") or params.get("disabled"):
        from harness.plugins import configure

        disabled = set(params.get("disabled") or ()) or None
        configure(autoload=False if params.get("no_plugin_autoload") else None, disabled=disabled)


class HarnessGroup(click.Group):
    """The ``harness`` group: the built-in commands, then those the plugins add (``harness_commands``)."""

    def plugin_commands(self, ctx: click.Context) -> dict[str, click.Command]:
        """Commands the plugins add: ``pm.hook.harness_commands``, called once per invocation."""
        if "harness.commands" not in ctx.meta:
            from harness.plugins import command_hooks

            _configure_plugins(ctx)
            group = click.Group()
            command_hooks().hook.harness_commands(cli=group)
            ctx.meta["harness.commands"] = {n: c for n, c in group.commands.items() if n not in self.commands}
        return ctx.meta["harness.commands"]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """A built-in command, else one a plugin adds (plugins load only for a name that is not built in)."""
        return self.commands.get(cmd_name) or self.plugin_commands(ctx).get(cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command's name, built-in and added, sorted."""
        return sorted({*self.commands, *self.plugin_commands(ctx)})


@click.group(
    cls=HarnessGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Example: harness run kde_vs_test   (a shipped protocol; `harness list protocols` shows them)",
)
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.option(  # eager, as --help: `harness --no-plugin-autoload --help` lists no plugin's commands
    "--no-plugin-autoload",
    is_flag=True,
    is_eager=True,
    help="Load only the built-in plugins (also: HARNESS_DISABLE_PLUGIN_AUTOLOAD=1).",
)
@click.option(
    "--disable-plugin",
    "disabled",
    multiple=True,
    is_eager=True,
    metavar="NAME",
    help="Do not load this installed plugin; repeatable (also: HARNESS_DISABLE_PLUGINS=a,b).",
)
@click.option("-v", "--verbose", count=True, help="More output: debug log lines on the console.")
@click.option("-q", "--quiet", is_flag=True, help="Less output: warnings and errors only, no results table.")
@click.version_option(
    version=__version__, package_name=DISTRIBUTION, message=f"%(prog)s %(version)s (distribution {DISTRIBUTION})"
)
@click.pass_context
def cli(
    ctx: click.Context, debug: bool, no_plugin_autoload: bool, disabled: tuple[str, ...], verbose: int, quiet: bool
) -> None:
    """Evaluate visual anomaly detectors under declared protocols, with honest thresholds.

    Shell completion (bash; zsh and fish alike): eval "$(_HARNESS_COMPLETE=bash_source harness)"
    """
    ctx.obj = {"debug": debug, "verbosity": -1 if quiet else verbose}
    _quiet_libraries()
    _show_harness_warnings()
    _configure_plugins(ctx)


@cli.command(
    epilog="""\b
Examples:
  harness run kde_vs_test
  harness run protocols/kde_vs_test.yaml --set dataset.root=/data/mvtec_ad --set 'dataset.categories=[bottle]'
  harness -q run my_protocol.yaml --out results/baseline"""
)
@click.argument("protocol", type=click.Path(path_type=Path))
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="Output folder (default: results/<protocol file name>).",
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a protocol key, value as YAML, e.g. --set 'dataset.categories=[bottle]'.",
)
@click.option(
    "--cache",
    type=click.Path(path_type=Path),
    help="Score cache folder (default: $HARNESS_CACHE_DIR, else $HARNESS_HOME/scores).",
)
@click.option(
    "--executor",
    metavar="NAME",
    help="Where jobs run: local (default), ray, submitit; options via --set executor.KEY=VALUE.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Write into an output folder that holds files the harness did not write; they are kept, never removed.",
)
@click.option(
    "--tracker",
    "trackers",
    multiple=True,
    metavar="NAME[=DEST]",
    help="Also log results and figures to mlflow (default ./mlruns) or tensorboard (default OUT/tensorboard).",
)
@click.pass_context
def run(
    ctx: click.Context,
    protocol: Path,
    out: Path | None,
    overrides: tuple[str, ...],
    cache: Path | None,
    executor: str | None,
    force: bool,
    trackers: tuple[str, ...],
) -> None:
    """Run PROTOCOL (a file or a shipped protocol's name): fit and score (cached), calibrate, write outputs."""
    from harness.console import log, run_logging, summary_text
    from harness.protocol import load_protocol
    from harness.protocol_files import resolve_protocol_path
    from harness.runner import run_protocol
    from harness.trackers import log_run, parse_tracker

    chosen = [parse_tracker(t) for t in trackers]  # an unknown or missing tracker stops before any fit
    if executor:
        overrides = (f"executor.name={executor}", *overrides)
    path = resolve_protocol_path(protocol)
    config = load_protocol(path, overrides)
    out = out or Path("results") / path.stem
    verbosity = (ctx.obj or {}).get("verbosity", 0)
    with run_logging(out, verbosity):
        summary = run_protocol(config, out, cache_dir=cache, argv=sys.argv, force=force)
        log.info(
            f"jobs: {summary.count('fitted')} fitted, {summary.count('cached')} from cache, "
            f"{summary.count('failed')} failed"
        )
        if verbosity >= 0 and (out / "run.json").is_file():
            click.echo("\n" + summary_text(out) + "\n")
        for name in ("results.csv", "results.json", "report.html", "report.tex", "run.json", "run.log"):
            if (out / name).exists() or name == "run.log":
                log.info(f"wrote {out / name}")
        for line in log_run(out, chosen) if chosen else []:
            log.info(line)
    if summary.count("failed"):
        click.echo(
            f"Error: {summary.count('failed')} job(s) failed; see the 'error' column of {out / 'results.csv'}", err=True
        )
        sys.exit(ExitCode.JOBS_FAILED)


@cli.command(epilog="Example: harness validate kde_vs_test --set dataset.root=/data/mvtec_ad")
@click.argument("protocol", type=click.Path(path_type=Path))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a protocol key.")
@click.option(
    "--audit",
    "audit_csv",
    is_flag=False,
    flag_value="-",
    metavar="[CSV]",
    help="Also audit the dataset (duplicates, label conflicts, masks, unreadable files); CSV: write findings.",
)
def validate(protocol: Path, overrides: tuple[str, ...], audit_csv: str | None) -> None:
    """Check PROTOCOL (keys, values, names, options, dataset) without running a model; print what it found."""
    from harness.config.summary import dataset_table
    from harness.planning import plan  # not harness.runner: validating needs no outputs, report or figures
    from harness.protocol import load_protocol
    from harness.protocol_files import resolve_protocol_path

    config = load_protocol(resolve_protocol_path(protocol), overrides)
    if audit_csv is not None:  # before the checks: an audit lists every problem, validation stops at the first
        _audit_protocol(config, None if audit_csv == "-" else Path(audit_csv))
    jobs, calibrations, _ = plan(config)  # checks every name and option (harness.config.check) and the dataset
    categories = {c.name: c for job in jobs for c in (job.category, *job.evaluated) if not c.members}
    click.echo(
        f"{protocol}: valid · protocol {config.kind} v{config.version} · {len(config.models)} model(s) · "
        f"{len(categories)} categor{'y' if len(categories) == 1 else 'ies'} ({', '.join(sorted(categories))}) · "
        f"{len(calibrations)} calibration(s) · {len(jobs)} job(s)"
    )
    click.echo(dataset_table(sorted(categories.values(), key=lambda c: c.name), config.holdout_fraction))


def _audit_protocol(protocol: Any, csv_path: Path | None) -> None:
    """``harness validate --audit``: the ``harness_dataset_audit`` findings over the layout's categories, printed."""
    import csv

    from harness.data.shaping import open_dataset
    from harness.plugins import get_plugins

    plugins = get_plugins()
    source = open_dataset(protocol.dataset, plugins)
    categories = [source.load(name) for name in list(protocol.dataset.categories or source.categories())]
    found = plugins.manager.hook.harness_dataset_audit(categories=categories, max_distance=AUDIT_MAX_DISTANCE)
    if found is None:
        raise HarnessError("no installed plugin audits datasets (harness_dataset_audit; plugins/harness_datasets)")
    findings = [{k: str(f.get(k, "")) for k in AUDIT_FIELDS} for f in found]
    click.echo(f"audit: {len(findings)} finding(s)" + (":" if findings else " (no duplicates, label or mask problems)"))
    for f in findings:
        click.echo(f"  {f['kind']:18s} {f['category']}: {f['path']}" + (f" ({f['detail']})" if f["detail"] else ""))
    if csv_path is not None:
        csv_path.parent.mkdir(parents=True, exist_ok=True)
        with csv_path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(AUDIT_FIELDS))
            writer.writeheader()
            writer.writerows(findings)
        click.echo(f"wrote {csv_path}")


@cli.command(epilog="Example: harness schema --markdown")
@click.option("--markdown", is_flag=True, help="The README's reference tables instead of the JSON schema.")
def schema(markdown: bool) -> None:
    """Print the protocol file's JSON schema (every key, its type, default and meaning)."""
    from harness.schema import protocol_schema, reference_markdown

    click.echo(reference_markdown() if markdown else json.dumps(protocol_schema(), indent=2), nl=not markdown)


@cli.command(name="list", epilog="Examples: harness list models · harness list protocols --json")
@click.argument("kind", type=click.Choice(["models", "datasets", "calibrations", "protocols", "metrics"]))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_(kind: str, as_json: bool) -> None:
    """List models, dataset layouts, calibrations, metrics, or the shipped protocols and protocol kinds."""
    from harness.listing import entry_rows, protocol_rows, table
    from harness.plugins import get_plugins

    plugins = get_plugins()
    rows = protocol_rows(plugins) if kind == "protocols" else entry_rows(plugins, kind)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if kind == "protocols":
        click.echo(table([r for r in rows if r["type"] == "file"], ["name", "kind", "about"]))
        click.echo("\nprotocol kinds (the `protocol:` key):")
        click.echo(table([r for r in rows if r["type"] == "kind"], ["name", "about"]))
        return
    columns = {
        "models": ["name", "plugin", "status", "download"],
        "calibrations": ["name", "plugin", "status", "oracle"],
    }
    click.echo(table(rows, columns.get(kind, ["name", "plugin", "status"])))
    for info in [i for i in plugins.infos if i.error]:
        click.echo(f"(plugin {info.name} failed to load: {info.error})", err=True)


@cli.command(epilog="Example: harness plugins --json")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plugins(as_json: bool) -> None:
    """List plugins, their versions and what each registers; failures with their reason."""
    from harness.plugins import get_plugins

    infos = get_plugins().infos
    if as_json:
        click.echo(json.dumps([vars(i) for i in infos], indent=2))
        return
    for info in infos:
        head = f"{info.name} {info.version} ({info.source})"
        if info.error:
            click.echo(f"{head}\n    FAILED TO LOAD: {info.error}")
            continue
        click.echo(head)
        for kind, names in info.registers.items():
            click.echo(f"    {kind}: {', '.join(names)}")


@cli.command(epilog="Example: harness report results/kde_vs_test --format latex")
@click.argument("out", type=click.Path(path_type=Path))
@click.option(
    "--format",
    "formats",
    multiple=True,
    type=click.Choice(["html", "latex"]),
    help="Formats to render (default: those of the run).",
)
def report(out: Path, formats: tuple[str, ...]) -> None:
    """Re-render OUT's report.html and report.tex from its stored results (no model runs)."""
    from harness.ownership import check_not_foreign, record
    from harness.report import load_results, render_reports
    from harness.report.latex_tables import report_tables
    from harness.store import check_writable

    _, run_info, _ = load_results(out)
    check_writable(out)
    check_not_foreign(out, ["report.html", "report.tex", *report_tables(out)])
    written = render_reports(out, formats or tuple(run_info.get("report_formats", ["html", "latex"])))
    record(out, [path.relative_to(out).as_posix() for path in written])
    for path in written:
        click.echo(f"wrote {path}")


@cli.command(epilog="Example: harness track results/kde_vs_test --tracker mlflow --tracker tensorboard=tb")
@click.argument("out", type=click.Path(path_type=Path))
@click.option(
    "--tracker", "trackers", multiple=True, required=True, metavar="NAME[=DEST]", help="mlflow or tensorboard."
)
def track(out: Path, trackers: tuple[str, ...]) -> None:
    """Log the finished run in OUT (results, finding, figures) to MLflow and/or TensorBoard."""
    from harness.trackers import log_run, parse_tracker

    for line in log_run(out, [parse_tracker(t) for t in trackers]):
        click.echo(line)


def main(argv: list[str] | None = None) -> int:
    """Console entry point: map errors to one line and an exit status.

    Called without ``argv`` (the ``harness`` command, ``python -m harness.cli``), it is the process's
    own entry point: once the command is done it ends the process at once (:func:`exit_now`), after
    the exit handlers ran and the streams were flushed. Called with ``argv`` (tests, scripts), it
    returns the exit status.
    """
    code = _command(argv)
    if argv is None:
        exit_now(code)
    return code


def exit_now(code: int) -> None:
    """End the process with ``code`` now that everything is written: what ``sys.exit`` does, less the teardown.

    Threads that are not daemons are joined, the ``atexit`` handlers run (logging's shutdown,
    multiprocessing's children, temporary folders) and the standard streams are flushed; then
    ``os._exit`` skips tearing down every module and collecting a heap of gigabytes (torch,
    anomalib), which took 1-1.5 s after a model's run. A stream that cannot be flushed means status 120,
    as Python does.
    """
    import atexit
    import os
    import threading

    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            code = 120
    os._exit(int(code))


def _command(argv: list[str] | None) -> int:
    """Run the command in ``argv`` (else ``sys.argv``); its exit status."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        cli.main(args=argv, prog_name="harness", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Interrupted.", err=True)
        return ExitCode.INTERRUPTED
    except click.ClickException as exc:
        exc.show()
        return ExitCode.USAGE_ERROR
    except HarnessError as exc:
        if debug:
            traceback.print_exc()
        click.echo(f"Error: {exc}", err=True)
        return ExitCode.USAGE_ERROR
    except KeyboardInterrupt:
        click.echo("Interrupted: finished jobs are cached; run the same command again to resume.", err=True)
        return ExitCode.INTERRUPTED
    except SystemExit as exc:
        return int(exc.code or 0)
    except Exception as exc:
        if debug:
            traceback.print_exc()
        click.echo(f"Error: internal error {type(exc).__name__}: {exc}; rerun with --debug and report it", err=True)
        return ExitCode.JOBS_FAILED
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
