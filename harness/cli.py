"""The ``harness`` command: run, validate, list, plugins, report.

Bad input ends with one ``Error:`` line and exit status 2 (see :class:`harness.errors.ExitCode`);
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback
from pathlib import Path

import click

from harness.errors import ExitCode, HarnessError

PROTOCOL_DIRS = (Path.cwd() / "protocols", Path(__file__).resolve().parent.parent / "protocols")


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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.option(
    "--no-plugin-autoload",
    is_flag=True,
    help="Load only the built-in plugins (also: HARNESS_DISABLE_PLUGIN_AUTOLOAD=1).",
)
@click.option(
    "--disable-plugin",
    "disabled",
    multiple=True,
    metavar="NAME",
    help="Do not load this installed plugin; repeatable (also: HARNESS_DISABLE_PLUGINS=a,b).",
)
@click.version_option(package_name="harness")
@click.pass_context
def cli(ctx: click.Context, debug: bool, no_plugin_autoload: bool, disabled: tuple[str, ...]) -> None:
    """Evaluate visual anomaly detectors under declared protocols, with honest thresholds."""
    ctx.obj = {"debug": debug}
    _quiet_libraries()
    _show_harness_warnings()
    if no_plugin_autoload or disabled:
        from harness.plugins import configure

        configure(autoload=False if no_plugin_autoload else None, disabled=set(disabled) or None)


@cli.command()
@click.argument("protocol", type=click.Path(path_type=Path))
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
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
    default=None,
    help="Score cache folder (default: $HARNESS_CACHE_DIR, else $HARNESS_HOME/scores).",
)
@click.option(
    "--executor",
    "executor",
    default=None,
    metavar="NAME",
    help="Where jobs run: local (default), ray, submitit; options via --set executor.KEY=VALUE.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Write into an output folder that holds files the harness did not write; they are kept, never removed.",
)
def run(
    protocol: Path, out: Path | None, overrides: tuple[str, ...], cache: Path | None, executor: str | None, force: bool
) -> None:
    """Run PROTOCOL: fit and score (cached), calibrate, write results and reports."""
    from harness.protocol import load_protocol
    from harness.runner import run_protocol

    if executor:
        overrides = (f"executor.name={executor}", *overrides)
    config = load_protocol(protocol, overrides)
    out = out or Path("results") / protocol.stem
    summary = run_protocol(config, out, cache_dir=cache, argv=sys.argv, force=force)
    click.echo(
        f"jobs: {summary.count('fitted')} fitted, {summary.count('cached')} from cache, "
        f"{summary.count('failed')} failed"
    )
    for name in ("results.csv", "report.html", "report.tex", "run.json"):
        if (out / name).exists():
            click.echo(f"wrote {out / name}")
    if summary.count("failed"):
        click.echo(
            f"Error: {summary.count('failed')} job(s) failed; see the 'error' column of {out / 'results.csv'}", err=True
        )
        sys.exit(ExitCode.JOBS_FAILED)


@cli.command()
@click.argument("protocol", type=click.Path(path_type=Path))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a protocol key.")
@click.option(
    "--audit",
    "audit_csv",
    is_flag=False,
    flag_value="-",
    default=None,
    metavar="[CSV]",
    help="Also audit the dataset (duplicates, label conflicts, masks, unreadable files); CSV: write findings.",
)
def validate(protocol: Path, overrides: tuple[str, ...], audit_csv: str | None) -> None:
    """Check PROTOCOL (keys, values, names, options, dataset) without running a model; print what it found."""
    from harness.config.summary import dataset_table
    from harness.protocol import load_protocol
    from harness.runner import plan

    config = load_protocol(protocol, overrides)
    if audit_csv is not None:  # before the checks: an audit lists every problem, validation stops at the first
        from harness.audit import audit_dataset

        audit_dataset(config, None if audit_csv == "-" else Path(audit_csv), click.echo)
    jobs, calibrations, _ = plan(config)  # checks every name and option (harness.config.check) and the dataset
    categories = {c.name: c for job in jobs for c in (job.category, *job.evaluated) if not c.members}
    click.echo(
        f"{protocol}: valid · protocol {config.kind} v{config.version} · {len(config.models)} model(s) · "
        f"{len(categories)} categor{'y' if len(categories) == 1 else 'ies'} ({', '.join(sorted(categories))}) · "
        f"{len(calibrations)} calibration(s) · {len(jobs)} job(s)"
    )
    click.echo(dataset_table(sorted(categories.values(), key=lambda c: c.name), config.holdout_fraction))


@cli.command()
@click.option("--markdown", is_flag=True, help="The README's reference tables instead of the JSON schema.")
def schema(markdown: bool) -> None:
    """Print the protocol file's JSON schema (every key, its type, default and meaning)."""
    from harness.schema import protocol_schema, reference_markdown

    click.echo(reference_markdown() if markdown else json.dumps(protocol_schema(), indent=2), nl=not markdown)


@cli.command(name="list")
@click.argument("kind", type=click.Choice(["models", "datasets", "calibrations", "protocols", "metrics"]))
def list_(kind: str) -> None:
    """List registered models, dataset layouts, calibrations, protocols or metrics."""
    from harness.plugins import get_plugins

    plugins = get_plugins()
    registry = plugins.registry(kind)
    if kind == "protocols":
        for name, analysis in sorted(registry.items()):
            click.echo(f"{name:28s} {plugins.owner(kind, name).name:24s} {analysis.title}")
        files = sorted({p.resolve() for d in PROTOCOL_DIRS if d.is_dir() for p in d.glob("*.yaml")})
        if files:
            click.echo("\nprotocol files:")
            for path in files:
                click.echo(f"  {os.path.relpath(path)}")
        return
    width = max((len(n) for n in registry), default=10) + 2
    for name, entry in sorted(registry.items()):
        owner = plugins.owner(kind, name).name
        reason = entry.reason_unavailable() if kind == "models" else None
        status = f"cannot run here: {reason}" if reason else "ok"
        if kind == "metrics":
            status = f"{entry.level} level, {'higher' if entry.higher_is_better else 'lower'} is better"
        oracle = "  (oracle: reads test labels)" if kind == "calibrations" and getattr(entry, "oracle", False) else ""
        click.echo(f"{name:{width}s} {owner:20s} {status}{oracle}")
    failed = [i for i in plugins.infos if i.error]
    for info in failed:
        click.echo(f"(plugin {info.name} failed to load: {info.error})", err=True)


@cli.command()
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


@cli.command()
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
    from harness.store import check_writable

    _, run_info, _ = load_results(out)
    check_writable(out)
    check_not_foreign(out, ["report.html", "report.tex"])
    written = render_reports(out, formats or tuple(run_info.get("report_formats", ["html", "latex"])))
    record(out, [path.name for path in written])
    for path in written:
        click.echo(f"wrote {path}")


@cli.command()
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--to", "target", type=click.Path(path_type=Path), required=True, help="Folder to write into.")
def export(out: Path, target: Path) -> None:
    """Write OUT's scores (CSV) and maps (float TIFF) in the layout the precomputed model reads."""
    from harness.export import export_run

    for folder in export_run(out, target):
        click.echo(f"wrote {folder}")


@cli.command(name="new-plugin")
@click.argument("name")
@click.option(
    "--dir",
    "parent",
    type=click.Path(path_type=Path),
    default=Path("."),
    show_default=True,
    help="Folder to create the package in.",
)
def new_plugin(name: str, parent: Path) -> None:
    """Write a ready plugin package harness-NAME: entry point, detector, conformance test, README."""
    from harness.scaffold import new_plugin as scaffold

    target = scaffold(name, parent)
    click.echo(f"wrote {target}\nnext: pip install -e {target} && harness plugins && (cd {target} && pytest)")


def main(argv: list[str] | None = None) -> int:
    """Console entry point: map errors to one line and an exit status."""
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
