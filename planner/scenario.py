"""Scenario files and the one `run()` that chains the steps.

A scenario is a YAML file (see ``scenarios/demo.yaml``) parsed into the
typed `planner._settings.Scenario`.  `run()` executes the steps in a fixed
order, each a plain function in its own module that reads and adds layers
and tables on a `RunResult`:

``layers → demand → network → access → norms → locate → outputs → maps → report``

A step whose section is absent from the scenario, or that is not built yet,
is recorded as *skipped* with the reason, never faked.

Loading (`load_scenario`) reports every unknown key (with a did-you-mean
suggestion), wrong type, duplicate key and missing file at once, each with
its line.  Paths are relative to the scenario file.  Outputs (this module's
own ``run_step``, the *outputs* step) go to an output folder that may not
hold any input, must be empty unless ``overwrite``, and receive every file
atomically; ``run.json`` records the SHA-256 of every input, the settings,
package versions, step timings and warnings, also when a step fails.
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

from planner._errors import OutputError, ScenarioError
from planner._settings import Scenario

#: (step name, module whose ``run_step(result)`` does it), in run order.
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
def _key_lines(text: str) -> tuple[dict[tuple, int], list[tuple[int | None, str]]]:
    """Compose a YAML document once; return its key lines and its duplicate keys.

    The first is a map of each key path to its 1-based line number; the
    second lists keys written twice in one mapping (YAML silently keeps the
    last one), each as ``(line, message)``.
    """
    index: dict[tuple, int] = {}
    duplicates: list[tuple[int | None, str]] = []
    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        return index, duplicates

    def walk(node: Any, path: tuple) -> None:
        if isinstance(node, yaml.MappingNode):
            first: dict[str, int] = {}
            for k, v in node.value:
                line = k.start_mark.line + 1
                index[path + (k.value,)] = line
                if k.value in first:
                    key = ".".join(map(str, path + (k.value,)))
                    duplicates.append((line, f"line {line}: `{key}`: written twice (first at "
                                             f"line {first[k.value]}); keep one"))
                else:
                    first[k.value] = line
                walk(v, path + (k.value,))
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                index[path + (i,)] = v.start_mark.line + 1
                walk(v, path + (i,))

    if root is not None:
        walk(root, ())
    return index, duplicates


def _line_of(index: dict[tuple, int], loc: tuple) -> int | None:
    loc = tuple(loc)
    while loc:
        if loc in index:
            return index[loc]
        loc = loc[:-1]
    return None


def _field_loc(loc: tuple) -> tuple:
    """Keep the part of a pydantic error location that names scenario keys.

    Pydantic appends union-member tags (``int``, ``literal['auto']``,
    ``function-after[...]``) to the location of a field; those are not keys
    the user wrote, so they are cut off here.
    """
    model: Any = Scenario
    out: list = []
    for part in loc:
        if isinstance(part, int):
            out.append(part)
            continue
        fields = getattr(model, "model_fields", None)
        if fields is None:
            # inside a dict (e.g. ``columns``): keep user keys, stop at pydantic tags
            if model is dict and not _is_tag(part):
                out.append(part)
                continue
            break
        if part not in fields:
            out.append(part)  # an unknown key: reported as such
            break
        out.append(part)
        ann = fields[part].annotation
        model = _model_of(ann) or (dict if _is_dict(ann) else None)
    return tuple(out)


def _is_tag(part: str) -> bool:
    return "[" in part or part in {"int", "float", "str", "bool", "list", "dict", "tuple"}


def _is_dict(annotation: Any) -> bool:
    if getattr(annotation, "__origin__", None) is dict:
        return True
    return any(_is_dict(a) for a in getattr(annotation, "__args__", ()) or ())


def _describe_input(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _format_validation_error(exc: ValidationError, index: dict, source: str,
                             extra: list[tuple[int | None, str]] | None = None) -> str:
    """One message listing every problem with its line, key and a hint, sorted by line."""
    problems: list[tuple[int | None, str]] = list(extra or [])
    by_key: dict[tuple, list[dict]] = {}
    for err in exc.errors():
        loc = _field_loc(tuple(err["loc"]))
        by_key.setdefault(loc, []).append(err)
    for loc, errs in by_key.items():
        key = ".".join(str(p) for p in loc) or "(top level)"
        line = _line_of(index, loc)
        where = f"line {line}: " if line else ""
        first = errs[0]
        if first["type"] == "extra_forbidden":
            parent = loc[:-1]
            allowed = _allowed_keys(parent)
            hint = f"; allowed keys here: {', '.join(allowed)}" if allowed else ""
            close = _close(str(loc[-1]), allowed)
            if close:
                hint = f"; did you mean `{close}`?" + hint
            problems.append((line, f"{where}`{key}`: unknown key{hint}"))
        elif first["type"] == "missing":
            problems.append((line, f"{where}`{key}`: required key is missing"))
        else:
            msgs = []
            for e in errs:
                m = e["msg"]
                m = m[len("Value error, "):] if m.startswith("Value error, ") else m
                if m not in msgs:
                    msgs.append(m)
            got = _describe_input(first.get("input"))
            problems.append((line, f"{where}`{key}`: {' or '.join(msgs)} (got {got})"))
    return _problems_text(source, problems)


def _problems_text(source: str, problems: list[tuple[int | None, str]]) -> str:
    """``Scenario <source> is not valid (n problem(s)):`` and the problems, sorted by line."""
    problems = sorted(problems, key=lambda p: (p[0] is None, p[0] or 0))
    body = "\n".join(f"  - {m}" for _, m in problems)
    return f"Scenario {source} is not valid ({len(problems)} problem(s)):\n{body}"


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
        The scenario file (UTF-8 YAML).  Paths inside it are relative to its
        folder.

    Returns
    -------
    Scenario
        The validated settings, with ``base_dir`` set to the file's folder.

    Raises
    ------
    ScenarioError
        Naming every unknown key (with a did-you-mean suggestion), wrong type
        and missing file at once, each with its line in the file.

    Examples
    --------
    >>> import planner
    >>> from planner.scenario import demo_scenario_path
    >>> planner.load_scenario(demo_scenario_path()).name
    '示范区 (Demo District)'
    """
    path = Path(path)
    if not path.is_file():
        hint = " (it is a folder)" if path.is_dir() else ""
        raise ScenarioError(
            f"Scenario file {path} does not exist{hint}. Give the path to a .yaml scenario "
            "(e.g. scenarios/demo.yaml), or run `planner demo` for the built-in example."
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ScenarioError(
            f"Scenario {path} is not UTF-8 text. Save it as UTF-8 (most editors: "
            "'Save with encoding' → UTF-8)."
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ScenarioError(
            f"Scenario {path} is not valid YAML{where}: {problem}. Check the indentation "
            "(spaces, not tabs) and that every `key: value` has a space after the colon."
        ) from None
    if data is None:
        raise ScenarioError(f"Scenario {path} is empty. See scenarios/demo.yaml for the format.")
    if not isinstance(data, dict):
        raise ScenarioError(
            f"Scenario {path} must be a YAML mapping of `key: value` lines "
            f"(got {type(data).__name__}). See scenarios/demo.yaml for the format."
        )
    index, duplicates = _key_lines(text)
    base_dir = path.resolve().parent
    extra: list[tuple[int | None, str]] = []
    if "base_dir" in data:
        line = index.get(("base_dir",))
        extra.append((line, f"{'line ' + str(line) + ': ' if line else ''}`base_dir`: unknown "
                      "key (paths are always relative to the scenario file's folder)"))
        data.pop("base_dir")
    extra += duplicates
    extra += _missing_files(_raw_paths(data), base_dir, index)
    data["base_dir"] = str(base_dir)
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(_format_validation_error(exc, index, str(path), extra)) from None
    if extra:
        raise ScenarioError(_problems_text(str(path), extra))
    return scenario


def check_files(scenario: Scenario, *, index: dict | None = None, source: str = "scenario") -> None:
    """Check that every file the scenario names exists; raise one ScenarioError listing all."""
    missing = _missing_files(_paths(scenario), scenario.base_dir, index or {})
    if missing:
        body = "\n".join(f"  - {m}" for _, m in missing)
        raise ScenarioError(f"Scenario {source} names missing files:\n{body}")


def _missing_files(pairs, base_dir: Path, index: dict) -> list[tuple[int | None, str]]:
    out = []
    for loc, p in pairs:
        if p is None or str(p).strip() == "":
            continue
        q = Path(str(p)).expanduser()
        resolved = q if q.is_absolute() else (Path(base_dir) / q).resolve()
        if resolved.exists():
            continue
        line = _line_of(index, loc)
        where = f"line {line}: " if line else ""
        near = ""
        if resolved.parent.is_dir():
            names = sorted(x.name for x in resolved.parent.iterdir())
            close = _close(resolved.name, names)
            if close:
                near = f"; did you mean `{close}`?"
        out.append((line, f"{where}`{'.'.join(map(str, loc))}`: file {resolved} does not exist"
                          f"{near} (paths are relative to the scenario file's folder, "
                          f"{base_dir})"))
    return out


def _raw_paths(data: dict):
    """(key path, value) of every file named in a raw (unvalidated) scenario mapping."""
    layers = data.get("layers")
    if isinstance(layers, dict):
        for name, lay in layers.items():
            if isinstance(lay, str):
                yield ("layers", name), lay
            elif isinstance(lay, dict) and isinstance(lay.get("path"), str):
                yield ("layers", name, "path"), lay["path"]
    net = data.get("network")
    if isinstance(net, dict) and isinstance(net.get("path"), str):
        yield ("network", "path"), net["path"]
    dem = data.get("demand")
    if isinstance(dem, dict):
        for key in ("census", "census_previous", "life_table"):
            if isinstance(dem.get(key), str):
                yield ("demand", key), dem[key]
    norms = data.get("norms")
    if isinstance(norms, dict) and isinstance(norms.get("rules"), str):
        if norms["rules"].endswith((".yaml", ".yml")):
            yield ("norms", "rules"), norms["rules"]


def _paths(scenario: Scenario):
    """(key path, path as written) of every input file of a validated scenario."""
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
    results).  ``steps`` records what ran and what was skipped and why;
    ``warnings`` every repair or assumption made on the way; ``inputs`` the
    SHA-256 of every input file; ``files`` what was written to ``out_dir``.
    In Jupyter the result shows itself as a summary table.
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
    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    _collecting: bool = field(default=False, repr=False)

    @property
    def lang(self) -> str:
        return self.scenario.lang

    def warn(self, message: str) -> None:
        """Record a warning for the run and issue it as a `PlannerWarning`."""
        import warnings

        from planner._errors import PlannerWarning

        if not self._collecting:  # inside run() the step's warnings are collected there
            self.warnings.append(message)
        warnings.warn(message, PlannerWarning, stacklevel=2)

    def step(self, name: str) -> StepRecord | None:
        """The record of step ``name`` (``None`` if it has not run)."""
        return next((s for s in self.steps if s.name == name), None)

    def summary(self):
        """A small DataFrame: steps with status, seconds and reason."""
        import pandas as pd

        return pd.DataFrame([s.__dict__ for s in self.steps],
                            columns=["name", "status", "seconds", "reason"])

    def write(self, name: str, writer: Callable[[Path], None]) -> Path | None:
        """Write an output file atomically into ``out_dir`` (no-op without one).

        ``writer`` receives a temporary path in the same folder; the file is
        renamed into place only when ``writer`` returns, so an interrupted or
        failing writer leaves neither a half-written file nor a stray
        temporary one.

        Parameters
        ----------
        name
            File name relative to ``out_dir`` (``tables/coverage.csv``).
        writer
            Writes the whole file to the path it is given.

        Returns
        -------
        Path or None
            The final path, or ``None`` when the run has no output folder.
        """
        if self.out_dir is None:
            return None
        target = (self.out_dir / name).resolve()
        if self.out_dir.resolve() not in target.parents:
            raise OutputError(f"Output name {name!r} points outside the output folder "
                              f"{self.out_dir}; use a relative name such as 'tables/x.csv'.")
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=target.suffix, dir=target.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        tmp_path.unlink()  # writers such as GDAL refuse to open an existing empty file
        try:
            writer(tmp_path)
            if not tmp_path.exists():
                raise OutputError(f"Writing {name} produced no file (writer wrote nothing).")
            os.replace(tmp_path, target)
        finally:
            for leftover in tmp_path.parent.glob(tmp_path.name + "*"):
                leftover.unlink()  # the temporary file and e.g. GDAL's -journal/-wal
        if target not in self.files:
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

        zh = self.lang == "zh"
        status_text = {"done": "完成", "skipped": "跳过", "failed": "失败"} if zh else {}
        colour = {"done": "#1a7f37", "skipped": "#9a6700", "failed": "#cf222e"}
        rows = "".join(
            f"<tr><td><code>{escape(s.name)}</code></td>"
            f"<td style='color:{colour.get(s.status, '#000')}'>"
            f"{escape(status_text.get(s.status, s.status))}</td>"
            f"<td style='text-align:right'>{s.seconds:.2f}</td><td>{escape(s.reason)}</td></tr>"
            for s in self.steps
        )
        lay_rows = ""
        for k, v in self.layers.items():
            try:
                geom = ", ".join(sorted(set(v.geom_type.dropna()))) if len(v) else "-"
                crs = v.crs.to_string() if getattr(v, "crs", None) is not None else "-"
            except AttributeError:
                geom, crs = "-", "-"
            lay_rows += (f"<tr><td><code>{escape(k)}</code></td><td style='text-align:right'>"
                         f"{len(v)}</td><td>{escape(geom)}</td><td>{escape(crs)}</td></tr>")
        tab_rows = "".join(
            f"<tr><td><code>{escape(k)}</code></td><td style='text-align:right'>{len(v)}</td>"
            f"<td>{escape(', '.join(map(str, list(getattr(v, 'columns', []))[:8])))}"
            f"{' …' if len(getattr(v, 'columns', [])) > 8 else ''}</td></tr>"
            for k, v in self.tables.items()
        )
        warns = "".join(f"<li>{escape(w)}</li>" for w in self.warnings[:20])
        more = (f"<li>… {len(self.warnings) - 20} more</li>" if len(self.warnings) > 20 else "")
        t = (("步骤", "状态", "秒", "说明", "图层", "行数", "几何", "坐标系", "表", "列", "提示",
              "输出文件夹") if zh else
             ("step", "status", "s", "note", "Layers", "rows", "geometry", "CRS", "Tables",
              "columns", "Warnings", "Output folder"))
        return (
            f"<div class='planner-run'><h4>planner: {escape(self.scenario.name)}</h4>"
            f"<table><tr><th>{t[0]}</th><th>{t[1]}</th><th>{t[2]}</th><th>{t[3]}</th></tr>"
            f"{rows}</table>"
            + (f"<p><b>{t[4]}</b> (<code>result.layers</code>)</p><table><tr><th></th>"
               f"<th>{t[5]}</th><th>{t[6]}</th><th>{t[7]}</th></tr>{lay_rows}</table>"
               if lay_rows else "")
            + (f"<p><b>{t[8]}</b> (<code>result.tables</code>)</p><table><tr><th></th>"
               f"<th>{t[5]}</th><th>{t[9]}</th></tr>{tab_rows}</table>" if tab_rows else "")
            + (f"<p><b>{t[10]}</b> ({len(self.warnings)})</p><ul>{warns}{more}</ul>"
               if warns else "")
            + (f"<p>{t[11]}: <code>{escape(str(self.out_dir))}</code></p>"
               if self.out_dir else "")
            + "</div>"
        )


# --------------------------------------------------------------------------- output folder
def _input_files(scenario: Scenario) -> list[Path]:
    files = [scenario.resolve(p) for _, p in _paths(scenario)]
    return [f for f in files if f is not None]


def prepare_out_dir(scenario: Scenario, out_dir: str | os.PathLike | None, *,
                    overwrite: bool = False) -> Path | None:
    """Check and create the output folder of a run.

    Rules: never write where an input file lies (the output folder may not
    contain any input file of the scenario, nor be a file); refuse a
    non-empty folder unless ``overwrite``; with ``overwrite``, files that a
    previous run listed in its ``run.json`` are removed first so that no
    stale output is mixed with the new ones.

    Parameters
    ----------
    scenario
        The validated scenario (its input files are protected).
    out_dir
        The folder; ``None`` uses the scenario's ``output:`` (relative to the
        scenario file), and ``None`` there too means no output folder.
    overwrite
        Allow a non-empty folder.

    Returns
    -------
    Path or None
        The absolute output folder, created, or ``None``.

    Raises
    ------
    OutputError
        When the folder holds inputs, is a file, or is not empty.
    """
    if out_dir is None:
        out_dir = scenario.resolve(scenario.output) if scenario.output else None
    if out_dir is None:
        return None
    out = Path(out_dir).expanduser().resolve()
    inside = list(dict.fromkeys(f for f in _input_files(scenario)
                                if out == f or out in f.parents))  # each file once
    if inside:
        shown = ", ".join(str(f) for f in inside[:3]) + (" ..." if len(inside) > 3 else "")
        raise OutputError(
            f"Output folder {out} holds input files of the scenario ({shown}); refusing to "
            "write there. Choose another folder with -o/--out (or `output:` in the scenario)."
        )
    if out.exists() and not out.is_dir():
        raise OutputError(f"Output path {out} exists and is not a folder. Choose a folder "
                          "with -o/--out.")
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise OutputError(
                f"Output folder {out} is not empty. Pass --overwrite (overwrite=True) to "
                "replace its files, or choose another folder with -o/--out."
            )
        _remove_previous_outputs(out)
    out.mkdir(parents=True, exist_ok=True)
    return out


def _remove_previous_outputs(out: Path) -> None:
    """Delete the files a previous run wrote (listed in its run.json), and nothing else."""
    info_path = out / "run.json"
    if not info_path.is_file():
        return
    try:
        files = json.loads(info_path.read_text(encoding="utf-8")).get("files", [])
    except (ValueError, OSError):
        return
    for rel in files:
        f = (out / str(rel)).resolve()
        if out in f.parents and f.is_file():
            f.unlink()
    info_path.unlink(missing_ok=True)


def sha256_of(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes (read in 1 MiB chunks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _hash_inputs(scenario: Scenario, scenario_file: Path | None) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    cache: dict[Path, str] = {}
    pairs = list(_paths(scenario))
    if scenario_file is not None:
        pairs.insert(0, (("scenario",), scenario_file))
    for loc, p in pairs:
        resolved = scenario.resolve(p) if loc != ("scenario",) else Path(p).resolve()
        if resolved is None:
            continue
        key = ".".join(map(str, loc))
        if resolved.is_file():
            if resolved not in cache:
                cache[resolved] = sha256_of(resolved)
            out[key] = {"path": str(resolved), "sha256": cache[resolved],
                        "bytes": resolved.stat().st_size}
        elif resolved.is_dir():  # e.g. a Shapefile folder: hash every file in it
            files = sorted(f for f in resolved.rglob("*") if f.is_file())
            out[key] = {"path": str(resolved),
                        "files": {str(f.relative_to(resolved)): sha256_of(f) for f in files}}
    return out


# --------------------------------------------------------------------------- the outputs step
def run_step(result: RunResult) -> str | None:
    """The outputs step: write every layer (GeoPackage) and table (CSV) of the run.

    ``layers.gpkg`` gets one layer per GeoDataFrame of ``result.layers``
    (in the study's metric CRS); ``tables/<name>.csv`` one UTF-8 CSV with a
    byte-order mark (so Excel shows Chinese text) per table.  Every file is
    written atomically.  Returns why it skipped when the run has no output
    folder.
    """
    if result.out_dir is None:
        return "no output folder (pass out_dir= or set `output:` in the scenario)"
    opts = result.scenario.outputs
    written = 0
    if opts.gpkg:
        layers = {k: v for k, v in result.layers.items()
                  if v is not None and len(v) and hasattr(v, "geometry")}
        if layers:
            def write_gpkg(tmp: Path) -> None:
                for name, gdf in layers.items():
                    _plain_columns(gdf).to_file(tmp, layer=name, driver="GPKG",
                                                engine="pyogrio")

            result.write("layers.gpkg", write_gpkg)
            written += 1
    if opts.csv:
        for name, df in result.tables.items():
            if df is None or not hasattr(df, "to_csv"):
                continue
            result.write(f"tables/{name}.csv",
                         lambda tmp, df=df: _plain_columns(df).to_csv(
                             tmp, index=False, encoding="utf-8-sig"))
            written += 1
    if not written:
        return "nothing to write (no layers or tables, or gpkg/csv switched off)"
    return None


def _plain_columns(df):
    """A copy where list/dict cells become JSON text (GeoPackage and CSV hold scalars)."""
    obj = [c for c in df.columns if df[c].dtype == object and c != getattr(df, "_geometry_column_name", None)]
    bad = [c for c in obj if df[c].map(lambda v: isinstance(v, (list, dict, tuple, set))).any()]
    if not bad:
        return df
    df = df.copy()
    for c in bad:
        df[c] = df[c].map(lambda v: json.dumps(sorted(v) if isinstance(v, set) else v,
                                               ensure_ascii=False, default=str)
                          if isinstance(v, (list, dict, tuple, set)) else v)
    return df


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version(), "platform": platform.platform()}
    for pkg in ("planner", "numpy", "scipy", "pandas", "geopandas", "shapely", "pyogrio",
                "pyproj", "osmnx", "networkx", "highspy", "folium", "openpyxl", "pydantic"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    try:
        import shapely

        out["geos"] = shapely.geos_version_string
    except (ImportError, AttributeError):
        pass
    return out


def _write_run_json(result: RunResult, *, started: str, seconds: float, status: str,
                    error: str | None = None) -> None:
    info = {
        "planner_run": 1,
        "scenario": result.scenario.name,
        "status": status,
        "error": error,
        "started": started,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seconds": round(seconds, 3),
        "inputs": result.inputs,
        "settings": json.loads(result.scenario.model_dump_json()),
        "versions": _versions(),
        "steps": [s.__dict__ for s in result.steps],
        "warnings": result.warnings,
        "files": sorted(str(p.relative_to(result.out_dir)) for p in result.files)
        + ["run.json"],
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

    Steps run in the order of `STEPS`; each is the ``run_step(result)`` of
    its module.  A step whose module is not built yet, or whose scenario
    section is absent, is recorded as skipped with the reason, never faked.
    Warnings a step issues are collected in ``result.warnings`` (and
    issued again as warnings after the step, so notebooks show them).

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
        Run only these steps (names from `STEPS`); the others are skipped.

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
    import warnings

    scenario_file: Path | None = None
    if not isinstance(scenario, Scenario):
        scenario_file = Path(scenario)
        scenario = load_scenario(scenario_file)
    known = [name for name, _ in STEPS]
    if steps is not None:
        unknown = [s for s in steps if s not in known]
        if unknown:
            raise ScenarioError(f"Unknown step(s) {unknown}; the steps are {', '.join(known)}.")
    result = RunResult(scenario=scenario)
    result.out_dir = prepare_out_dir(scenario, out_dir, overwrite=overwrite)
    started, t_run = time.strftime("%Y-%m-%dT%H:%M:%S%z"), time.perf_counter()
    result.inputs = _hash_inputs(scenario, scenario_file)
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
        before = len(result.warnings)
        result._collecting = True
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                warnings.filterwarnings("ignore", category=DeprecationWarning)
                warnings.filterwarnings("ignore", category=PendingDeprecationWarning)
                reason = fn(result)
        except BaseException as exc:
            result._collecting = False
            result.steps.append(StepRecord(name, "failed", time.perf_counter() - t0,
                                           f"{type(exc).__name__}: {exc}".splitlines()[0]))
            if result.out_dir is not None and not isinstance(exc, KeyboardInterrupt):
                _write_run_json(result, started=started, seconds=time.perf_counter() - t_run,
                                status="failed", error=f"{type(exc).__name__}: {exc}")
            raise
        finally:
            result._collecting = False
        seen = set(result.warnings[before:])
        for w in caught:
            msg = str(w.message)
            if msg not in seen:
                result.warnings.append(msg)
                seen.add(msg)
        status = "skipped" if reason else "done"
        result.steps.append(StepRecord(name, status, time.perf_counter() - t0, reason or ""))
        for w in caught:  # show them to the caller too (a notebook prints them)
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if result.out_dir is not None:
        _write_run_json(result, started=started, seconds=time.perf_counter() - t_run,
                        status="done")
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
    """Path of the built-in demo scenario shipped inside the package (``planner/data/demo.yaml``)."""
    return Path(__file__).parent / "data" / "demo.yaml"
