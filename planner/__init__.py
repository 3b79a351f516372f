"""planner: plan elderly-care facilities for Chinese cities.

Load population units, facilities, boundaries and candidate sites
(`planner.layers`), build a walk network for older residents
(`planner.network`), measure the 15-minute elderly-care circle
(`planner.access`), estimate demand (`planner.demand`), propose new sites
(`planner.locate`), check planning norms (`planner.norms`) and write maps
and reports (`planner.maps`, `planner.report`).  `planner.run()` chains the
steps for a scenario file.
"""

from __future__ import annotations

__version__ = "0.1.0"

from planner._errors import (  # noqa: E402
    DemandError,
    LayerError,
    LocateError,
    NetworkError,
    NormsError,
    OutputError,
    PlannerError,
    PlannerWarning,
    ScenarioError,
)

#: Subpackages and modules loaded on first use (``planner.network`` after ``import planner``).
_SUBMODULES = ("access", "batch", "checks", "cli", "coords", "defaults", "demand", "demo",
               "demo_province", "gis", "layers", "locate", "maps", "network", "norms",
               "pipeline", "plots", "postgis", "progress", "report", "study")
#: Deprecated modules: reachable the same way, not listed in ``__all__``.
_DEPRECATED_SUBMODULES = ("scenario",)


def run(scenario, *, out_dir=None, overwrite: bool = False, progress=None, steps=None,
        preloaded=None):
    """Run a scenario (a path to a YAML file or a `Scenario`); see `planner.pipeline.run`."""
    from planner.pipeline import run as _run

    return _run(scenario, out_dir=out_dir, overwrite=overwrite, progress=progress, steps=steps,
                preloaded=preloaded)


def load_scenario(path):
    """Load and validate a scenario YAML file; see `planner.pipeline.load_scenario`."""
    from planner.pipeline import load_scenario as _load

    return _load(path)


def __getattr__(name: str):
    if name in _SUBMODULES or name in _DEPRECATED_SUBMODULES:
        import importlib

        return importlib.import_module(f"planner.{name}")
    if name == "read_layer":
        from planner.layers import read_layer

        return read_layer
    raise AttributeError(f"module 'planner' has no attribute {name!r}")


__all__ = [
    "__version__",
    "run",
    "load_scenario",
    "read_layer",
    *_SUBMODULES,
    "PlannerError",
    "LayerError",
    "ScenarioError",
    "NetworkError",
    "DemandError",
    "LocateError",
    "NormsError",
    "OutputError",
    "PlannerWarning",
]
