"""Reading a scenario file into the typed `planner.pipeline.settings.Scenario`.

Loading (`load_scenario`) reports every unknown key (with a did-you-mean
suggestion), wrong type, duplicate key and missing file at once, each with
its line.  Paths are relative to the scenario file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from planner._errors import ScenarioError
from planner._yaml import first_alias
from planner.pipeline.settings import Scenario

__all__ = ["check_files", "demo_scenario_path", "input_paths", "load_scenario"]


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
            value = first.get("input")
            got = "" if isinstance(value, dict) else f" (got {_describe_input(value)})"
            problems.append((line, f"{where}`{key}`: {' or '.join(msgs)}{got}"))
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
    >>> from planner.pipeline import demo_scenario_path
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
    if (alias := first_alias(text)) is not None:
        raise ScenarioError(
            f"Scenario {path} uses a YAML alias (`*{alias[1]}` at line {alias[0]}); aliases and "
            "anchors (`&name`) are not allowed in a scenario, since nested ones can expand to "
            "gigabytes. Write the values out in full."
        )
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
    if not any("`norms.rules`" in m for _, m in extra):  # a missing rule file is named already
        extra += _rule_problems(scenario, index)
    for loc, message in scenario.region_conflicts():
        line = _line_of(index, loc)
        extra.append((line, f"{'line ' + str(line) + ': ' if line else ''}{message}"))
    if extra:
        raise ScenarioError(_problems_text(str(path), extra))
    return scenario


def _rule_problems(scenario: Scenario, index: dict) -> list[tuple[int | None, str]]:
    """The scenario's rule set read once (cheap), so a bad one is reported with the scenario.

    A rule set with no rule in force in ``norms.plan_year`` is reported at
    ``plan_year``'s line; any other rule-file problem at ``norms.rules``.
    """
    s = scenario.norms
    if s is None:
        return []
    from planner import norms as NR
    from planner._errors import NormsError

    name = s.rules
    try:
        NR.load_rules(scenario.resolve(Path(name)) if NR.is_rule_file(name) else name,
                      plan_year=s.plan_year)
    except NormsError as exc:
        key = ("norms", "plan_year") if "applies in plan year" in str(exc) else ("norms", "rules")
        line = _line_of(index, key)
        where = f"line {line}: " if line else ""
        return [(line, f"{where}`{'.'.join(key)}`: {exc}")]
    return []


def check_files(scenario: Scenario, *, index: dict | None = None, source: str = "scenario") -> None:
    """Check that every file the scenario names exists; raise one ScenarioError listing all."""
    missing = _missing_files(_paths(scenario), scenario.base_dir, index or {})
    if missing:
        body = "\n".join(f"  - {m}" for _, m in missing)
        raise ScenarioError(f"Scenario {source} names missing files:\n{body}")


def _missing_files(pairs, base_dir: Path, index: dict) -> list[tuple[int | None, str]]:
    from planner.postgis import is_database_url

    out = []
    for loc, p in pairs:
        if p is None or str(p).strip() == "" or is_database_url(p):
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
        for key in ("census", "shares_from", "census_previous", "life_table"):
            if isinstance(dem.get(key), str):
                yield ("demand", key), dem[key]
        yield from _raw_demand_sources(dem)
    norms = data.get("norms")
    if isinstance(norms, dict) and isinstance(norms.get("rules"), str):
        if norms["rules"].endswith((".yaml", ".yml")):
            yield ("norms", "rules"), norms["rules"]


def _raw_demand_sources(dem: dict):
    """(key path, value) of the grid and buildings files of a raw ``demand:`` mapping."""
    for key in ("grid", "buildings"):
        sub = dem.get(key)
        if isinstance(sub, str):
            yield ("demand", key), sub
        elif isinstance(sub, dict) and isinstance(sub.get("path"), str):
            yield ("demand", key, "path"), sub["path"]
    files = dem.get("grid", {}).get("files") if isinstance(dem.get("grid"), dict) else None
    if isinstance(files, dict):
        for group, value in files.items():
            for i, p in enumerate(value if isinstance(value, list) else [value]):
                if isinstance(p, str):
                    loc = ("demand", "grid", "files", group) + ((i,) if isinstance(value, list)
                                                                else ())
                    yield loc, p


def _demand_sources(demand):
    """(key path, path) of the grid and buildings files of a validated ``demand``."""
    grid, bld = demand.grid, demand.buildings
    if grid is not None and grid.path is not None:
        yield ("demand", "grid", "path"), grid.path
    if grid is not None and grid.files:
        for group, value in grid.files.items():
            for i, p in enumerate(value if isinstance(value, list) else [value]):
                yield ("demand", "grid", "files", group) + ((i,) if isinstance(value, list)
                                                             else ()), p
    if bld is not None:
        yield ("demand", "buildings", "path"), bld.path


def _paths(scenario: Scenario):
    """(key path, path as written) of every input file of a validated scenario."""
    for name, lay in scenario.layers:
        if lay is not None:
            yield ("layers", name, "path"), lay.path
    if scenario.network is not None and scenario.network.path is not None:
        yield ("network", "path"), scenario.network.path
    if scenario.demand is not None:
        for key in ("census", "shares_from", "census_previous", "life_table"):
            p = getattr(scenario.demand, key)
            if p is not None:
                yield ("demand", key), p
        yield from _demand_sources(scenario.demand)
    if scenario.norms is not None and scenario.norms.rules.endswith((".yaml", ".yml")):
        yield ("norms", "rules"), Path(scenario.norms.rules)



#: Public name of the scenario's input-file iterator (used by the outputs and batch code).
input_paths = _paths


def demo_scenario_path() -> Path:
    """Path of the built-in demo scenario shipped inside the package (``planner/data/demo.yaml``)."""
    return Path(__file__).resolve().parent.parent / "data" / "demo.yaml"
