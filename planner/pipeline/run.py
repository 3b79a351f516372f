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

__all__ = ["run"]


def run(
    scenario: Scenario | str | os.PathLike,
    *,
    out_dir: str | os.PathLike | None = None,
    overwrite: bool = False,
    progress: Callable[[str], None] | None = None,
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
        Called with the step name as each step starts.
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
        output folder, ``run.json`` is still written with the failed step.

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
    result = RunResult(scenario=scenario, preloaded=preloaded)
    result.out_dir = O.prepare_out_dir(scenario, out_dir, overwrite=overwrite)
    started, t_run = time.strftime("%Y-%m-%dT%H:%M:%S%z"), time.perf_counter()
    if preloaded is not None and preloaded.input_hashes is not None:
        result.inputs = dict(preloaded.input_hashes)
    else:
        result.inputs = O.hash_inputs(scenario, scenario_file)
    for name, fn in order:
        if steps is not None and name not in steps:
            result.steps.append(StepRecord(name, "skipped", reason="not requested"))
            continue
        if progress:
            progress(name)
        t0 = time.perf_counter()
        if not getattr(fn, "collects_warnings", False):  # a plain function given as a step
            fn = _steps.step(fn)
        try:
            reason = fn(result)
        except BaseException as exc:
            result.steps.append(StepRecord(name, "failed", time.perf_counter() - t0,
                                           f"{type(exc).__name__}: {exc}".splitlines()[0]))
            if result.out_dir is not None and not isinstance(exc, KeyboardInterrupt):
                O.write_run_json(result, started=started, seconds=time.perf_counter() - t_run,
                                 status="failed", error=f"{type(exc).__name__}: {exc}")
            raise
        status = "skipped" if reason else "done"
        result.steps.append(StepRecord(name, status, time.perf_counter() - t0, reason or ""))
    if result.out_dir is not None:
        O.write_run_json(result, started=started, seconds=time.perf_counter() - t_run,
                         status="done")
    return result
