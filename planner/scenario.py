"""Scenario files and the one `run()` that chains the steps.

A scenario is a YAML file (see ``scenarios/demo.yaml``) parsed into the
typed `planner._settings.Scenario`.  `run()` executes the steps in a fixed
order, each a plain function in its own module that reads and adds layers
and tables on a `RunResult`:

``layers → demand → network → access → norms → locate → outputs → maps → report``

A step whose section is absent from the scenario, or that is not built yet,
is recorded as *skipped* with the reason, never faked.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from planner._errors import OutputError, PlannerError, ScenarioError
from planner._settings import Scenario

# (step name, module, what the step needs in the scenario to run)
STEPS: list[tuple[str, str]] = [
    ("layers", "planner.layers"),
    ("demand", "planner.demand"),
    ("network", "planner.network"),
    ("access", "planner.access"),
    ("norms", "planner.norms"),
    ("locate", "planner.locate"),
    ("outputs", "planner.scenario"),
    ("maps", "planner.maps"),
    ("report", "planner.report"),
]


# --------------------------------------------------------------------------- loading
def _line_index(text: str) -> dict[tuple, int]:
    """Map each key path in a YAML document to its 1-based line number."""
    index: dict[tuple, int] = {}
    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        return index

    def walk(node: Any, path: tuple) -> None:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                key = k.value
                index[path + (key,)] = k.start_mark.line + 1
                walk(v, path + (key,))
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                index[path + (i,)] = v.start_mark.line + 1
                walk(v, path + (i,))

    if root is not None:
        walk(root, ())
    return index


def _line_of(index: dict[tuple, int], loc: tuple) -> int | None:
    loc = tuple(loc)
    while loc:
        if loc in index:
            return index[loc]
        loc = loc[:-1]
    return None


def _format_validation_error(exc: ValidationError, index: dict, source: str) -> str:
    problems = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        key = ".".join(str(p) for p in loc) or "(top level)"
        line = _line_of(index, loc)
        where = f"line {line}, " if line else ""
        if err["type"] == "extra_forbidden":
            parent = loc[:-1]
            allowed = _allowed_keys(parent)
            hint = f"; allowed keys here: {', '.join(allowed)}" if allowed else ""
            close = _close(str(loc[-1]), allowed)
            if close:
                hint = f"; did you mean `{close}`?" + hint
            problems.append(f"{where}`{key}`: unknown key{hint}")
        elif err["type"] == "missing":
            problems.append(f"{where}`{key}`: required key is missing")
        else:
            problems.append(f"{where}`{key}`: {err['msg']} (got {err.get('input')!r})")
    return f"Scenario {source} is not valid:\n" + "\n".join(f"  - {p}" for p in problems)


def _allowed_keys(loc: tuple) -> list[str]:
    model: Any = Scenario
    for part in loc:
        if isinstance(part, int):
            continue
        fld = getattr(model, "model_fields", {}).get(part)
        if fld is None:
            return []
        model = _model_of(fld.annotation)
        if model is None:
            return []
    return [k for k in getattr(model, "model_fields", {}) if k != "base_dir"]


def _model_of(annotation: Any) -> Any:
    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        m = _model_of(arg)
        if m is not None:
            return m
    return None


def _close(word: str, options: list[str]) -> str | None:
    import difflib

    match = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return match[0] if match else None


def load_scenario(path: str | os.PathLike) -> Scenario:
    """Read and validate a scenario YAML file.

    Parameters
    ----------
    path
        The scenario file.  Paths inside it are relative to its folder.

    Returns
    -------
    Scenario
        The validated settings, with ``base_dir`` set to the file's folder.

    Raises
    ------
    ScenarioError
        Naming every unknown key, wrong type or missing file, with its line.
    """
    path = Path(path)
    if not path.is_file():
        raise ScenarioError(
            f"Scenario file {path} does not exist. Give the path to a .yaml scenario "
            "(e.g. scenarios/demo.yaml), or run `planner demo` for the built-in example."
        )
    text = path.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ScenarioError(f"Scenario {path} is not valid YAML{where}: {exc}") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"Scenario {path} must be a YAML mapping (key: value lines).")
    index = _line_index(text)
    data["base_dir"] = str(path.resolve().parent)
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(_format_validation_error(exc, index, str(path))) from None
    check_files(scenario, index=index, source=str(path))
    return scenario


def check_files(scenario: Scenario, *, index: dict | None = None, source: str = "scenario") -> None:
    """Check that every file the scenario names exists; raise one ScenarioError listing all."""
    index = index or {}
    missing = []
    for loc, p in _paths(scenario):
        resolved = scenario.resolve(p)
        if resolved is not None and not resolved.exists():
            line = _line_of(index, loc)
            where = f"line {line}, " if line else ""
            missing.append(
                f"{where}`{'.'.join(map(str, loc))}`: file {resolved} does not exist "
                "(paths are relative to the scenario file's folder)"
            )
    if missing:
        raise ScenarioError(f"Scenario {source} names missing files:\n" + "\n".join(f"  - {m}" for m in missing))


def _paths(scenario: Scenario):
    for name, lay in scenario.layers:
        if lay is not None:
            yield ("layers", name, "path"), lay.path
    if scenario.network is not None and scenario.network.path is not None:
        yield ("network", "path"), scenario.network.path
    if scenario.demand is not None:
        for key in ("census", "census_previous", "life_table"):
            p = getattr(scenario.demand, key)
            if p is not None:
                yield ("demand", key), p
    if scenario.norms is not None and scenario.norms.rules.endswith((".yaml", ".yml")):
        yield ("norms", "rules"), Path(scenario.norms.rules)


# --------------------------------------------------------------------------- result
@dataclass
class StepRecord:
    """What happened to one step of a run."""

    name: str
    status: str  # "done" | "skipped" | "failed"
    seconds: float = 0.0
    reason: str = ""


@dataclass
class RunResult:
    """Everything a run produced, as data.

    ``layers`` holds GeoDataFrames (inputs in the study's metric CRS, and
    results such as ``population_access`` or ``service_areas``); ``tables``
    holds DataFrames (``coverage``, ``norm_checks``, ``proposed_sites`` ...);
    ``artifacts`` holds other objects (the walk network, folium maps, model
    results).  ``steps`` records what ran and what was skipped and why.
    """

    scenario: Scenario
    layers: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, Any] = field(default_factory=dict)
    steps: list[StepRecord] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    crs: Any = None
    out_dir: Path | None = None
    files: list[Path] = field(default_factory=list)
    inputs: dict[str, str] = field(default_factory=dict)

    @property
    def lang(self) -> str:
        return self.scenario.lang

    def warn(self, message: str) -> None:
        """Record a warning for the run (also issued as a `PlannerWarning`)."""
        import warnings

        from planner._errors import PlannerWarning

        self.warnings.append(message)
        warnings.warn(message, PlannerWarning, stacklevel=2)

    def summary(self):
        """A small DataFrame: steps with status, seconds and reason."""
        import pandas as pd

        return pd.DataFrame([s.__dict__ for s in self.steps])

    def write(self, name: str, writer: Callable[[Path], None]) -> Path | None:
        """Write an output file atomically into ``out_dir`` (no-op without one).

        ``writer`` receives a temporary path in the same folder; the file is
        renamed into place only when ``writer`` returns, so an interrupted run
        leaves no half-written file.
        """
        if self.out_dir is None:
            return None
        target = self.out_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=target.suffix, dir=target.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        tmp_path.unlink()
        try:
            writer(tmp_path)
            os.replace(tmp_path, target)
        finally:
            if tmp_path.exists():
                tmp_path.unlink()
        self.files.append(target)
        return target

    def __repr__(self) -> str:
        steps = ", ".join(f"{s.name}:{s.status}" for s in self.steps)
        return (
            f"<RunResult {self.scenario.name!r}: {len(self.layers)} layers, "
            f"{len(self.tables)} tables; steps {steps}>"
        )

    def _repr_html_(self) -> str:
        from html import escape

        rows = "".join(
            f"<tr><td>{escape(s.name)}</td><td>{escape(s.status)}</td>"
            f"<td>{s.seconds:.2f}</td><td>{escape(s.reason)}</td></tr>"
            for s in self.steps
        )
        layers = "".join(
            f"<li><code>{escape(k)}</code>: {len(v)} rows</li>" for k, v in self.layers.items()
        )
        tables = "".join(
            f"<li><code>{escape(k)}</code>: {len(v)} rows</li>" for k, v in self.tables.items()
        )
        warns = "".join(f"<li>{escape(w)}</li>" for w in self.warnings[:20])
        return (
            f"<div><h4>planner run: {escape(self.scenario.name)}</h4>"
            f"<table><tr><th>step</th><th>status</th><th>s</th><th>note</th></tr>{rows}</table>"
            f"<p>Layers</p><ul>{layers}</ul><p>Tables</p><ul>{tables}</ul>"
            + (f"<p>Warnings</p><ul>{warns}</ul>" if warns else "")
            + (f"<p>Output: <code>{escape(str(self.out_dir))}</code></p>" if self.out_dir else "")
            + "</div>"
        )


# --------------------------------------------------------------------------- output folder
def prepare_out_dir(scenario: Scenario, out_dir: str | os.PathLike | None, *, overwrite: bool) -> Path | None:
    """Check and create the output folder; refuse input folders and non-empty ones."""
    if out_dir is None:
        out_dir = scenario.resolve(scenario.output) if scenario.output else None
    if out_dir is None:
        return None
    out = Path(out_dir).expanduser().resolve()
    input_dirs = {scenario.resolve(p).parent for _, p in _paths(scenario)}
    if out in input_dirs:
        raise OutputError(
            f"Output folder {out} holds input files; refusing to write there. "
            "Choose another folder with -o/--out (or `output:` in the scenario)."
        )
    if out.exists() and not out.is_dir():
        raise OutputError(f"Output path {out} exists and is not a folder.")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise OutputError(
            f"Output folder {out} is not empty. Pass --overwrite (overwrite=True) to replace "
            "its files, or choose another folder with -o/--out."
        )
    out.mkdir(parents=True, exist_ok=True)
    return out


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------- the outputs step
def run_step(result: RunResult) -> str | None:
    """Write every layer (GeoPackage) and table (CSV) of the run into the output folder."""
    if result.out_dir is None:
        return "no output folder (pass out_dir= or set `output:` in the scenario)"
    opts = result.scenario.outputs
    if opts.gpkg and result.layers:
        def write_gpkg(tmp: Path) -> None:
            for name, gdf in result.layers.items():
                if gdf is None or len(gdf) == 0:
                    continue
                gdf.to_file(tmp, layer=name, driver="GPKG", engine="pyogrio")

        result.write("layers.gpkg", write_gpkg)
    if opts.csv:
        for name, df in result.tables.items():
            result.write(f"tables/{name}.csv", lambda tmp, df=df: df.to_csv(tmp, index=False, encoding="utf-8-sig"))
    return None


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("planner", "numpy", "scipy", "pandas", "geopandas", "shapely", "pyogrio",
                "pyproj", "osmnx", "networkx", "highspy", "folium", "openpyxl"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def _write_run_json(result: RunResult) -> None:
    info = {
        "scenario": result.scenario.name,
        "settings": json.loads(result.scenario.model_dump_json()),
        "inputs": result.inputs,
        "versions": _versions(),
        "steps": [s.__dict__ for s in result.steps],
        "warnings": result.warnings,
        "files": sorted(str(p.relative_to(result.out_dir)) for p in result.files),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    text = json.dumps(info, ensure_ascii=False, indent=2, default=str)
    result.write("run.json", lambda tmp: tmp.write_text(text, encoding="utf-8"))


# --------------------------------------------------------------------------- run
def run(
    scenario: Scenario | str | os.PathLike,
    *,
    out_dir: str | os.PathLike | None = None,
    overwrite: bool = False,
    progress: Callable[[str], None] | None = None,
    steps: list[str] | None = None,
) -> RunResult:
    """Run a scenario end to end.

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
        Called with a short message as each step starts.
    steps
        Run only these steps (names from `STEPS`); the others are skipped.

    Returns
    -------
    RunResult
    """
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    result = RunResult(scenario=scenario)
    result.out_dir = prepare_out_dir(scenario, out_dir, overwrite=overwrite)
    for loc, p in _paths(scenario):
        resolved = scenario.resolve(p)
        if resolved is not None and resolved.is_file():
            result.inputs[".".join(map(str, loc))] = f"{resolved} sha256:{sha256_of(resolved)}"
    for name, module in STEPS:
        if steps is not None and name not in steps:
            result.steps.append(StepRecord(name, "skipped", reason="not requested"))
            continue
        if progress:
            progress(name)
        t0 = time.perf_counter()
        fn = _step_function(module)
        if fn is None:
            result.steps.append(StepRecord(name, "skipped", reason="not built yet"))
            continue
        try:
            reason = fn(result)
        except PlannerError:
            result.steps.append(StepRecord(name, "failed", time.perf_counter() - t0))
            raise
        status = "skipped" if reason else "done"
        result.steps.append(StepRecord(name, status, time.perf_counter() - t0, reason or ""))
    if result.out_dir is not None:
        _write_run_json(result)
    return result


def _step_function(module: str) -> Callable[[RunResult], str | None] | None:
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name == module:
            return None
        raise
    return getattr(mod, "run_step", None)


def demo_scenario_path() -> Path:
    """Path of the built-in demo scenario shipped inside the package."""
    return Path(__file__).parent / "data" / "demo.yaml"
