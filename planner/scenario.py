"""Deprecated alias of `planner.pipeline` (scenario loading and `run`).

``planner.scenario.run``, ``load_scenario``, ``RunResult`` ... now live in
`planner.pipeline`; this module forwards to them with a `DeprecationWarning`.
"""

from __future__ import annotations

import warnings

__all__: list[str] = []


def __getattr__(name: str):
    import planner.pipeline as P

    if name.startswith("__") or not hasattr(P, name):
        raise AttributeError(f"module 'planner.scenario' has no attribute {name!r}")
    warnings.warn(f"planner.scenario.{name} moved to planner.pipeline.{name}",
                  DeprecationWarning, stacklevel=2)
    return getattr(P, name)
