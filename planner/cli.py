"""The ``planner`` command: a thin layer over the library.

It parses arguments, calls the same functions a notebook calls, and turns
the project's own errors into one clear line and an exit code:
0 success, 1 a failed run, 2 bad input or usage.  ``--debug`` shows the
traceback.  Heavy imports happen inside the commands so ``--help`` is fast.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from planner import __version__

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


def _fail(exc: BaseException, debug: bool) -> None:
    from planner._errors import OutputError, PlannerError

    if debug:
        raise exc
    if isinstance(exc, (OutputError, PlannerError, FileNotFoundError)):
        click.echo(f"Error: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    click.echo(f"Error: the run failed: {type(exc).__name__}: {exc} (rerun with --debug for details)", err=True)
    sys.exit(EXIT_FAILED)


def _progress(name: str) -> None:
    click.echo(f"  · {name} …", err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="planner")
@click.option("--debug", is_flag=True, help="Show full tracebacks on error.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Plan elderly-care facilities: 15-minute circles, new sites, norm checks."""
    ctx.obj = {"debug": debug}


def _run_and_report(scenario_path: Path, out: Path | None, overwrite: bool, debug: bool) -> None:
    from planner.scenario import run

    try:
        result = run(scenario_path, out_dir=out, overwrite=overwrite, progress=_progress)
    except Exception as exc:  # noqa: BLE001 - turned into one line + exit code
        _fail(exc, debug)
        return
    for s in result.steps:
        note = f" ({s.reason})" if s.reason else ""
        click.echo(f"{s.name:<10} {s.status:<8} {s.seconds:6.2f}s{note}")
    if result.warnings:
        click.echo(f"{len(result.warnings)} warning(s); see run.json", err=True)
    if result.out_dir is not None:
        click.echo(f"Outputs written to {result.out_dir}")


@cli.command("run")
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder (default: the scenario's `output:`).")
@click.option("--overwrite", is_flag=True, help="Allow writing into a non-empty output folder.")
@click.pass_context
def run_cmd(ctx: click.Context, scenario: Path, out: Path | None, overwrite: bool) -> None:
    """Run SCENARIO (a YAML file) and write layers, tables, maps and a report."""
    _run_and_report(scenario, out, overwrite, ctx.obj["debug"])


@cli.command("demo")
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path), default=Path("demo-out"),
              show_default=True, help="Output folder.")
@click.option("--overwrite", is_flag=True, help="Allow writing into a non-empty output folder.")
@click.pass_context
def demo_cmd(ctx: click.Context, out: Path, overwrite: bool) -> None:
    """Run the built-in generated demo district end to end."""
    from planner.scenario import demo_scenario_path

    _run_and_report(demo_scenario_path(), out, overwrite, ctx.obj["debug"])


@cli.command("validate")
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def validate_cmd(ctx: click.Context, scenario: Path) -> None:
    """Load and check every layer of SCENARIO; print a table of layers and problems."""
    import warnings

    from planner.scenario import run

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            result = run(scenario, out_dir=None, steps=["layers"])
        except Exception as exc:  # noqa: BLE001
            _fail(exc, ctx.obj["debug"])
            return
    click.echo(f"{'layer':<12} {'rows':>6}  {'geometry':<14} crs")
    for name, gdf in result.layers.items():
        geom = ",".join(sorted(set(gdf.geom_type.dropna()))) if len(gdf) else "-"
        click.echo(f"{name:<12} {len(gdf):>6}  {geom:<14} {gdf.crs.to_string() if gdf.crs else '-'}")
    if result.warnings:
        click.echo("Problems repaired or to look at:")
        for w in result.warnings:
            click.echo(f"  - {w}")
    else:
        click.echo("No problems found.")


@cli.command("check")
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also write the table as CSV into this folder.")
@click.option("--overwrite", is_flag=True)
@click.pass_context
def check_cmd(ctx: click.Context, scenario: Path, out: Path | None, overwrite: bool) -> None:
    """Run only the planning-norm checks of SCENARIO and print the table."""
    import warnings

    from planner.scenario import run

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            result = run(scenario, out_dir=out, overwrite=overwrite,
                         steps=["layers", "demand", "network", "access", "norms", "outputs"])
        except Exception as exc:  # noqa: BLE001
            _fail(exc, ctx.obj["debug"])
            return
    table = result.tables.get("norm_checks")
    if table is None:
        rec = next(s for s in result.steps if s.name == "norms")
        click.echo(f"No norm checks: {rec.reason or rec.status}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    import pandas as pd

    with pd.option_context("display.max_rows", 500, "display.max_columns", 20, "display.width", 200):
        click.echo(table.to_string(index=False))


def main() -> None:
    """Entry point of the ``planner`` console script."""
    cli(prog_name="planner")


if __name__ == "__main__":
    main()
