"""`run()`: execute the steps of a scenario in order and collect what they return."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from planner._errors import ScenarioError
from planner.pipeline import outputs as O
from planner.pipeline.result import Preloaded, RunResult, StepRecord
from planner.pipeline.scenario import load_scenario
from planner.pipeline.settings import Scenario
from planner.pipeline.texts import step_line

__all__ = ["run"]


def _show_progress(progress: bool | Callable[[str], None] | None) -> bool:
    """Whether the run prints step lines and progress bars."""
    if progress is None:  # by default: in a Jupyter notebook, not in scripts
        from planner.progress import in_notebook

        return in_notebook()
    return progress is True


def _line(text: str) -> None:
    import sys

    from planner.progress import in_notebook, write

    write(text, file=sys.stdout if in_notebook() else sys.stderr)


def run(
    scenario: Scenario | str | os.PathLike,
    *,
    out_dir: str | os.PathLike | None = None,
    overwrite: bool = False,
    progress: bool | Callable[[str], None] | None = None,
    steps: list[str] | None = None,
    preloaded: Preloaded | None = None,
) -> RunResult:
    """Run a scenario end to end.

    Steps run in the order of `planner.pipeline.steps.STEPS`.  A step whose
    scenario section is absent, or whose input is missing, is recorded as
    skipped with the reason, never faked.  Warnings a step's library calls
    issue are collected in ``result.warnings`` (and issued again, so
    notebooks show them).

    Parameters
    ----------
    scenario
        A `Scenario` or the path to a scenario YAML file.
    out_dir
        Output folder; defaults to the scenario's ``output:``.  ``None`` and
        no ``output:`` runs in memory only (handy in notebooks).
    overwrite
        Allow writing into a non-empty output folder.
    progress
        ``True``: print a line as each step ends (``done`` and its time, in
        the scenario's language) and show progress bars for long work
        (service areas, the exact solver's incumbent/bound/gap, the report);
        ``None`` (default): the same in a Jupyter notebook, silent in
        scripts; ``False``: silent; a callable: called with the step name as
        each step starts (nothing printed).
    steps
        Run only these steps (names from ``STEPS``); the others are skipped.
    preloaded
        Inputs already in memory (layers, road lines, census tables, input
        hashes; see `Preloaded`), used instead of reading those files.

    Returns
    -------
    RunResult

    Raises
    ------
    ScenarioError, OutputError, LayerError, ...
        A `PlannerError` on bad input.  When a step fails and there is an
        output folder, ``run.json`` is still written with the failed step
        (status ``failed``; ``interrupted`` on Ctrl-C / SIGINT, and
        ``running`` while the run goes on, so a run that was killed says so).

    Examples
    --------
    >>> import planner
    >>> result = planner.run("scenarios/demo.yaml")  # doctest: +SKIP
    >>> result.summary()  # doctest: +SKIP
    """
    from planner.pipeline import steps as _steps

    scenario_file: Path | None = None
    if not isinstance(scenario, Scenario):
        scenario_file = Path(scenario)
        scenario = load_scenario(scenario_file)
    order = list(_steps.STEPS)
    known = [name for name, _ in order]
    if steps is not None:
        unknown = [s for s in steps if s not in known]
        if unknown:
            raise ScenarioError(f"Unknown step(s) {unknown}; the steps are {', '.join(known)}.")
    result = RunResult(scenario=scenario, progress=_show_progress(progress), preloaded=preloaded)
    result.out_dir = O.prepare_out_dir(scenario, out_dir, overwrite=overwrite)
    started, t_run = time.strftime("%Y-%m-%dT%H:%M:%S%z"), time.perf_counter()
    if preloaded is not None and preloaded.input_hashes is not None:
        result.inputs = dict(preloaded.input_hashes)
    else:
        result.inputs = O.hash_inputs(scenario, scenario_file)
    _record(result, started, t_run, "running")
    for name, fn in order:
        if steps is not None and name not in steps:
            result.steps.append(StepRecord(name, "skipped", reason="not requested"))
            continue
        if callable(progress):
            progress(name)
        t0 = time.perf_counter()
        if not getattr(fn, "collects_warnings", False):  # a plain function given as a step
            fn = _steps.step(fn)
        try:
            reason = fn(result)
        except KeyboardInterrupt:  # Ctrl-C / SIGINT: say so in run.json, then stop
            result.steps.append(StepRecord(name, "interrupted", time.perf_counter() - t0,
                                           "interrupted (KeyboardInterrupt, e.g. Ctrl-C)"))
            _record(result, started, t_run, "interrupted",
                    error=f"KeyboardInterrupt: interrupted during step {name!r}")
            raise
        except BaseException as exc:
            result.steps.append(StepRecord(name, "failed", time.perf_counter() - t0,
                                           f"{type(exc).__name__}: {exc}".splitlines()[0]))
            if result.progress:
                _line(step_line(result.steps[-1], result.lang))
            _record(result, started, t_run, "failed", error=f"{type(exc).__name__}: {exc}")
            raise
        status = "skipped" if reason else "done"
        result.steps.append(StepRecord(name, status, time.perf_counter() - t0, reason or ""))
        if result.progress:
            _line(step_line(result.steps[-1], result.lang))
        if status == "done":
            _record(result, started, t_run, "running")
    _record(result, started, t_run, "done")
    return result


def _record(result: RunResult, started: str, t_run: float, status: str,
            error: str | None = None) -> None:
    """Write ``run.json`` with ``status`` ("running" after each step: a run that is killed
    leaves it, with the files written so far for the next ``--overwrite`` to remove)."""
    if result.out_dir is not None:
        O.write_run_json(result, started=started, seconds=time.perf_counter() - t_run,
                         status=status, error=error)
