"""The ``planner`` command: a thin layer over the library.

It parses arguments, calls the same functions a notebook calls, and turns
errors into one clear message and an exit code: 0 success, 1 a failed run
(an unexpected error inside a step), 2 bad input or usage (the project's
own errors: a malformed scenario, a missing file, a bad layer, an output
folder that may not be written), 130 interrupted (Ctrl-C).  ``--debug`` shows the traceback instead.
Heavy imports happen inside the commands so ``planner --help`` is instant.

While a scenario runs, each step prints a line when it ends (``done`` and
its time, in the scenario's language) and long steps show progress bars
on stderr.  ``planner check --fail-exit`` exits 3 when a norm check fails.
Commands: ``run``, ``demo``, ``validate``, ``check``, ``batch`` (and ``--version``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

import click

from planner import __version__
from planner._errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK

__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_NORMS_FAILED", "EXIT_OK", "cli",
           "main"]

EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C
#: ``planner check --fail-exit``: the run worked and at least one norm check failed.
EXIT_NORMS_FAILED = 3

_SAY = {
    "zh": {"no_out": "未指定输出文件夹（-o/--out 或方案中的 `output:`）：照常计算，但不写出任何文件。",
           "rules": "规范核查汇总（按规则）", "failures": "未达标项",
           "all_pass": "全部达标。"},
    "en": {"no_out": "No output folder (-o/--out or `output:` in the scenario): the run "
                     "computes everything but writes nothing.",
           "rules": "Norm checks by rule", "failures": "Failing checks",
           "all_pass": "All checks pass."},
}



def _fail(exc: BaseException, debug: bool) -> NoReturn:
    """Print ``exc`` as a short message and exit with its code (or re-raise with --debug)."""
    from planner._errors import error_text

    if debug:
        raise exc
    text, code = error_text(exc)
    click.echo(f"Error: {text}", err=True)
    sys.exit(code)


def _run_quietly(scenario, *, debug: bool, **kwargs):
    """Run with warnings collected on the result instead of printed mid-progress.

    An error becomes one message and an exit code (`_fail`).
    """
    import warnings

    from planner.pipeline import run

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return run(scenario, **kwargs)
    except KeyboardInterrupt:
        if debug:
            raise
        click.echo("Interrupted. The output folder's run.json (if the run had one) records "
                   "status \"interrupted\"; run again with --overwrite to replace its partial "
                   "outputs.", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:  # noqa: BLE001 - turned into one message + exit code
        _fail(exc, debug)


def _print_warnings(result, *, limit: int = 10) -> None:
    if not result.warnings:
        return
    where = " (all of them in run.json)" if result.out_dir is not None else ""
    click.echo(f"{len(result.warnings)} warning(s){where}:", err=True)
    for w in result.warnings[:limit]:
        click.echo(f"  - {w.splitlines()[0]}", err=True)
    if len(result.warnings) > limit:
        click.echo(f"  … and {len(result.warnings) - limit} more", err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="planner")
@click.option("--debug", is_flag=True, help="Show full tracebacks on error.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Plan elderly-care facilities: 15-minute circles, new sites, norm checks.

    \b
    Examples:
      planner demo -o demo-out                 run the built-in demo district
      planner validate scenarios/my.yaml       check a scenario's layers
      planner run scenarios/my.yaml -o out     run it and write the outputs
      planner batch prov.yaml --by districts   every district as a Dask task
    """
    ctx.obj = {"debug": debug}


def _load(scenario_path: Path, debug: bool):
    """The validated scenario, or one error message and exit code 2."""
    from planner.pipeline import load_scenario

    try:
        return load_scenario(scenario_path)
    except Exception as exc:  # noqa: BLE001 - turned into one message + exit code
        _fail(exc, debug)


def _run_and_report(scenario_path: Path, out: Path | None, overwrite: bool, debug: bool) -> None:
    click.echo(f"planner {__version__}: running {scenario_path}", err=True)
    scenario = _load(scenario_path, debug)
    if out is None and scenario.output is None:  # said before the work, not after it
        click.echo(_SAY[scenario.lang]["no_out"], err=True)
    result = _run_quietly(scenario_path, debug=debug, out_dir=out, overwrite=overwrite,
                          progress=True)
    _print_warnings(result)
    if result.out_dir is not None:
        click.echo(f"Outputs written to {result.out_dir}")
        for name in ("report.docx", "report.html", "map.html", "planner.xlsx"):
            if (result.out_dir / name).is_file():
                click.echo(f"  {result.out_dir / name}")
    else:
        click.echo("No output folder given (-o/--out or `output:`): nothing written.")


_out_option = click.option(
    "-o", "--out", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Output folder (default: the scenario's `output:`).",
)
_overwrite_option = click.option(
    "--overwrite", is_flag=True, help="Allow writing into a non-empty output folder.",
)


@cli.command("run")
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
@_out_option
@_overwrite_option
@click.pass_context
def run_cmd(ctx: click.Context, scenario: Path, out: Path | None, overwrite: bool) -> None:
    """Run SCENARIO (a YAML file) and write layers, tables, maps and a report."""
    _run_and_report(scenario, out, overwrite, ctx.obj["debug"])


_scheduler_option = click.option(
    "--scheduler", default=None, metavar="ADDRESS",
    help="A Dask scheduler's address (tcp://host:8786), or 'sync' to run the parts one "
         "after another in this process. Default: a LocalCluster sized to this machine.")
_workers_option = click.option("--workers", type=click.IntRange(min=1), default=None,
                               help="Workers of the LocalCluster (default: the cores).")


@cli.command("demo")
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Output folder (default: demo-out, or province-out).")
@_overwrite_option
@click.option("--province", is_flag=True,
              help="Generate a province of demo districts and run it district by district "
                   "(planner batch).")
@click.option("--size", default="3x2", show_default=True, metavar="COLSxROWS",
              help="With --province: districts west-east x south-north.")
@_scheduler_option
@_workers_option
@click.pass_context
def demo_cmd(ctx: click.Context, out: Path | None, overwrite: bool, province: bool, size: str,
             scheduler: str | None, workers: int | None) -> None:
    """Run the built-in demo district 示范区 (generated, fictional) end to end.

    With --province: write a generated province of copies of it (sharing one
    road network, register and census) into OUT/province-data and run it
    with `planner batch --by districts` into OUT/batch.
    """
    from planner.pipeline import demo_scenario_path

    if not province:
        _run_and_report(demo_scenario_path(), out or Path("demo-out"), overwrite,
                        ctx.obj["debug"])
        return
    from planner.demo_province import write_province

    try:
        cols, rows = (int(v) for v in size.lower().split("x"))
    except ValueError:
        click.echo(f"Error: --size {size!r}: write it as COLSxROWS, e.g. 3x2.", err=True)
        sys.exit(EXIT_BAD_INPUT)
    out = out or Path("province-out")
    data = out / "province-data"
    click.echo(f"Generating a province of {cols} x {rows} demo districts in {data}", err=True)
    files = write_province(data, cols, rows)
    _batch_and_report([files["province.yaml"]], by="districts", out=out / "batch",
                      scheduler=scheduler, workers=workers, sweep=(), parts=(),
                      overwrite=overwrite, memory_limit="auto", debug=ctx.obj["debug"])


def _batch_and_report(scenarios: list[Path], *, by: str | None, out: Path | None,
                      scheduler: str | None, workers: int | None, sweep, parts,
                      overwrite: bool, memory_limit: str, debug: bool) -> None:
    import warnings

    from planner.batch import run_batch

    click.echo(f"planner {__version__}: batch of {', '.join(map(str, scenarios))}"
               + (f" by {by}" if by else ""), err=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = run_batch(scenarios if len(scenarios) > 1 else scenarios[0], by=by,
                               out_dir=out, sweep=list(sweep), parts=list(parts) or None,
                               scheduler=scheduler, workers=workers,
                               memory_limit=memory_limit, overwrite=overwrite)
    except Exception as exc:  # noqa: BLE001 - turned into one message + exit code
        _fail(exc, debug)
    click.echo(f"Ran on {result.scheduler} in {result.seconds:.1f} s")
    for v in result.variants:
        head = f"{v.label}: " if len(result.variants) > 1 else ""
        for o in v.parts:
            extra = (f"{o.seconds:6.1f} s  {o.peak_rss_mb:7.0f} MB" if o.status != "reused"
                     else "  (reused: same inputs and settings)")
            click.echo(f"  {head}{o.part:<14} {o.name:<16} {o.status:<7} {extra}")
            if o.error:
                click.echo(f"      Error: {o.error}", err=True)
    click.echo(f"Outputs written to {result.out_dir}")
    for name in ("comparison.html", "report.html", "map.html", "summary.csv", "batch.json"):
        if (result.out_dir / name).is_file():
            click.echo(f"  {result.out_dir / name}")
    if result.failed:
        click.echo(f"{len(result.failed)} of {len(result.parts)} part(s) failed (see above and "
                   "batch.json); the others are merged.", err=True)
        sys.exit(EXIT_FAILED)


@cli.command("batch")
@click.argument("scenarios", nargs=-1, required=True,
                type=click.Path(dir_okay=False, path_type=Path))
@click.option("--by", type=click.Choice(["districts", "townships"]), default=None,
              help="Split the study area into one part per district or township.")
@_out_option
@_scheduler_option
@_workers_option
@click.option("--memory-limit", default="auto", show_default=True,
              help="Memory limit per LocalCluster worker (Dask's; e.g. 4GB).")
@click.option("--sweep", multiple=True, metavar="KEY=V1,V2",
              help="Run every value of a scenario key (repeat for combinations), e.g. "
                   "network.speed_mps=0.8,1.0")
@click.option("--part", "parts", multiple=True, metavar="ID",
              help="Run only this part (id or name; repeatable).")
@click.option("--overwrite", is_flag=True,
              help="Run every part again (default: reuse parts whose run.json records the "
                   "same inputs and settings) and allow a non-empty output folder.")
@click.pass_context
def batch_cmd(ctx: click.Context, scenarios: tuple[Path, ...], by: str | None, out: Path | None,
              scheduler: str | None, workers: int | None, memory_limit: str,
              sweep: tuple[str, ...], parts: tuple[str, ...], overwrite: bool) -> None:
    """Run SCENARIO(S) part by part on Dask, and merge the parts into the whole area.

    \b
    Examples:
      planner batch province.yaml --by districts -o out
      planner batch province.yaml --by districts --sweep norms.plan_year=2025,2030 -o out
      planner batch a.yaml b.yaml -o compare        compare two scenarios

    Each part gets the files `planner run` writes (OUT/parts/<id>/); OUT gets
    the merged layers and tables (with a `part` column), summary.csv, one map
    and report of the whole area, and batch.json.  Exit code 1 when a part
    failed (the others still run and are merged), 2 on bad input.
    """
    _batch_and_report(list(scenarios), by=by, out=out, scheduler=scheduler, workers=workers,
                      sweep=sweep, parts=parts, overwrite=overwrite, memory_limit=memory_limit,
                      debug=ctx.obj["debug"])


@cli.command("validate")
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--no-network", is_flag=True, help="Do not build the walk network.")
@click.pass_context
def validate_cmd(ctx: click.Context, scenario: Path, no_network: bool) -> None:
    """Load and check every layer of SCENARIO; print a table of layers and problems.

    The checks on the data (datum, study area, layers that miss the network,
    stacked geocodes, township names) run too; without the network only
    those that need none.  Nothing is written.  Exit code 0 when everything loads (repairs are
    listed as problems to look at), 2 when something cannot be used.
    """
    steps = ["layers", "demand"] + ([] if no_network else ["network"]) + ["checks"]
    result = _run_quietly(scenario, debug=ctx.obj["debug"], out_dir=None, steps=steps,
                          progress=True)
    click.echo(f"Scenario {scenario}: {result.scenario.name}")
    click.echo(f"  {'layer':<24} {'rows':>7}  {'geometry':<24} crs")
    cols = result.tables.get("demand_columns")
    estimated = set()
    if cols is not None and {"layer", "estimated"} <= set(cols.columns):
        estimated = set(cols.loc[cols["estimated"].astype(bool), "layer"])
    for name, gdf in result.layers.items():
        try:
            geom = ",".join(sorted(set(gdf.geom_type.dropna()))) if len(gdf) else "-"
            crs = gdf.crs.to_string() if gdf.crs is not None else "-"
        except AttributeError:
            geom, crs = "-", "-"
        note = "  (estimated counts: see table demand_columns)" if name in estimated else ""
        click.echo(f"  {name:<24} {len(gdf):>7}  {geom:<24} {crs}{note}")
    for name, table in result.tables.items():
        click.echo(f"  {'table ' + name:<24} {len(table):>7}")
    report = result.tables.get("network_report")
    if report is not None and {"key", "value"} <= set(report.columns):
        values = dict(zip(report["key"], report["value"]))
        keys = ("n_nodes", "n_edges", "total_km", "n_components", "components_dropped",
                "near_miss_joins", "crossings_grade_separated")
        shown = [f"{k}={values[k]}" for k in keys if k in values]
        if shown:
            click.echo("  network: " + ", ".join(shown))
    for s in result.steps:
        if s.status != "done" and s.reason != "not requested":
            click.echo(f"  step {s.name}: {s.status} ({s.reason})")
    if result.warnings:
        click.echo(f"Problems repaired or to look at ({len(result.warnings)}):")
        for w in result.warnings:
            click.echo(f"  - {w}")
    else:
        click.echo("No problems found.")


@cli.command("check")
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
@_out_option
@_overwrite_option
@click.option("--all", "show_all", is_flag=True, help="Show passing checks too.")
@click.option("--fail-exit", is_flag=True,
              help=f"Exit {EXIT_NORMS_FAILED} when any check fails (for scripts and CI).")
@click.pass_context
def check_cmd(ctx: click.Context, scenario: Path, out: Path | None, overwrite: bool,
              show_all: bool, fail_exit: bool) -> None:
    """Run only the planning-norm checks of SCENARIO; print a summary per rule and the failures.

    The layers, demand, network and access steps run first (the checks
    need them); no location model runs.  With -o the tables are written.
    Exit code 0 (also when checks fail, unless --fail-exit: then 3).
    """
    steps = ["layers", "demand", "network", "checks", "access", "norms"] + (
        ["outputs"] if out else [])
    result = _run_quietly(scenario, debug=ctx.obj["debug"], out_dir=out, overwrite=overwrite,
                          steps=steps, progress=True)
    table = result.tables.get("norm_checks")
    if table is None:
        rec = result.step("norms")
        reason = rec.reason if rec is not None and rec.reason else "the norms step did not run"
        click.echo(f"Error: no norm checks: {reason}. Add a `norms:` section to the scenario "
                   "(e.g. `norms: {rules: xian_2021}`).", err=True)
        sys.exit(EXIT_BAD_INPUT)
    if not len(table):
        rules = result.artifacts.get("rules")
        files = getattr(rules, "files", None) or [result.scenario.norms.rules]
        click.echo(f"Error: no norm check was made: the rule set {files[0]} has no rules. "
                   "Add rules to it, or set `norms.rules` to a shipped rule set (e.g. "
                   "xian_2021, national).", err=True)
        sys.exit(EXIT_BAD_INPUT)
    say = _SAY.get(result.lang, _SAY["en"])
    if "rule_id" in table and "status" in table:
        click.echo(f"{say['rules']}:")
        click.echo(_rule_summary(table, result.lang))
    if "status" in table:
        counts = table["status"].value_counts()
        click.echo(" ".join(f"{k}: {int(v)}" for k, v in counts.items()))
    shown = table if show_all or "status" not in table else table[table["status"] != "pass"]
    cols = [c for c in ("title", "unit_name", "value", "threshold", "unit", "status",
                        "shortfall_text", "clause") if c in shown.columns]
    if len(shown):
        click.echo(f"{say['failures']}:" if not show_all else "")
        click.echo(_aligned(shown[cols], result.lang))
    else:
        click.echo(say["all_pass"])
    if result.out_dir is not None:
        click.echo(f"Tables written to {result.out_dir}")
    if fail_exit and "status" in table and (table["status"] == "fail").any():
        sys.exit(EXIT_NORMS_FAILED)


def _display_width(text: str) -> int:
    """Columns a text takes in a terminal (East Asian wide and full-width characters: 2)."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def _aligned(df, lang: str, *, max_width: int = 40) -> str:
    """A table as text, its columns aligned by display width (CJK counts double);
    numbers right-aligned in the house format, long texts cut at ``max_width``."""
    from planner import report

    shown = report.translate_values(df, lang)
    fmts = report.number_formats(df)
    heads = [report.header(c, lang) for c in df.columns]
    numeric = [df[c].dtype.kind in "if" for c in df.columns]
    rows = []
    for vals, fr in zip(shown.itertuples(index=False), fmts.itertuples(index=False)):
        cells = []
        for v, f in zip(vals, fr):
            text = report.cell_text(v, f).replace("\n", " ")
            while _display_width(text) > max_width:
                text = text[:-2] + "…"
            cells.append(text)
        rows.append(cells)
    widths = [max([_display_width(h)] + [_display_width(r[j]) for r in rows])
              for j, h in enumerate(heads)]

    def line(cells: list[str]) -> str:
        out = []
        for j, text in enumerate(cells):
            pad = " " * (widths[j] - _display_width(text))
            out.append(pad + text if numeric[j] else text + pad)
        return "  " + "  ".join(out).rstrip()

    return "\n".join([line(heads)] + [line(r) for r in rows])


def _rule_summary(table, lang: str) -> str:
    """The norm checks per rule (`planner.report.norm_summary`), aligned."""
    from planner import report

    rules = report.norm_summary(table)
    cols = [c for c in ("title", "scope", "threshold", "unit", "n_checked", "units_fail",
                        "units_not_assessable", "total_shortfall") if c in rules.columns]
    return _aligned(rules[cols], lang)


def main() -> None:
    """Entry point of the ``planner`` console script."""
    cli(prog_name="planner")


if __name__ == "__main__":
    main()
