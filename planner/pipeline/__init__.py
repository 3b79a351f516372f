"""The pipeline: the one place where a scenario's settings meet the library.

Layout:

- `settings` — the scenario schema (pydantic; defaults from `planner.defaults`);
- `scenario` — reading and validating a scenario YAML file (`load_scenario`);
- `result` — `RunResult`, everything a run produced, and `StepRecord`;
- `steps` — one small function per step (reads its settings, calls library
  functions with explicit arguments, stores what they return) and `STEPS`,
  the run order as function references;
- `presenting` — the maps and report steps' glue (what to draw and write);
- `outputs` — the output folder, input hashes, layers/tables and ``run.json``;
- `run` — `run()`, which executes `STEPS`.

The domain packages (`planner.layers`, `planner.network`, `planner.access`,
...) never import this package; a test enforces it.
"""

from __future__ import annotations

from planner.pipeline.result import Preloaded, RunResult, StepRecord
from planner.pipeline.run import run
from planner.pipeline.scenario import check_files, demo_scenario_path, load_scenario
from planner.pipeline.settings import Scenario

__all__ = ["Preloaded", "RunResult", "STEPS", "Scenario", "StepRecord", "check_files", "demo_scenario_path",
           "load_scenario", "run"]


def __getattr__(name: str):
    if name == "STEPS":  # imported lazily: the steps import every domain package
        from planner.pipeline.steps import STEPS

        return STEPS
    raise AttributeError(f"module 'planner.pipeline' has no attribute {name!r}")
