"""The click commands this plugin adds to ``harness``; their work is imported when they run."""

from __future__ import annotations

from pathlib import Path

import click


@click.command(epilog="Example: harness export results/kde_vs_test --to precomputed/")
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--to", "target", type=click.Path(path_type=Path), required=True, help="Folder to write into.")
def export(out: Path, target: Path) -> None:
    """Write OUT's scores (CSV) and maps (float TIFF) in the layout the precomputed model reads."""
    from harness_tools.export import export_run

    for folder in export_run(out, target):
        click.echo(f"wrote {folder}")


@click.command(
    epilog="Example: harness compare results/baseline results/kde_vs_test --out results/compared",
)
@click.argument("outs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--out",
    "target",
    type=click.Path(path_type=Path),
    default=Path("results") / "compare",
    show_default=True,
    help="Folder for compare.html, compare.tex, compare.csv.",
)
def compare(outs: tuple[Path, ...], target: Path) -> None:
    """One leaderboard over finished runs of the same protocol (no model runs); differences flagged."""
    from harness_tools.compare import compare_runs, write_comparison

    comparison = compare_runs(list(outs))
    for difference in comparison.differences:
        click.echo(f"warning: {difference}", err=True)
    for path in write_comparison(comparison, target):
        click.echo(f"wrote {path}")


@click.command(name="new-plugin", epilog="Example: harness new-plugin my_detector --dir ~/src")
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
    from harness_tools.scaffold import new_plugin as scaffold

    target = scaffold(name, parent)
    click.echo(f"wrote {target}\nnext: pip install -e {target} && harness plugins && (cd {target} && pytest)")


COMMANDS = (compare, export, new_plugin)
