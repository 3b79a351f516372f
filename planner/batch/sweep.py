"""Scenario variants of a batch: several scenario files and ``--sweep key=v1,v2`` products.

A sweep key is a dotted path into the scenario (``network.speed_mps``,
``norms.plan_year``, ``access.cutoff_min``); its values are YAML scalars or
lists separated by commas outside brackets (``access.thresholds_min=[5,10],[10,15]``).
Several ``--sweep`` options give every combination.  Each variant is
validated like a scenario file, so a bad key or value is reported with the
key named.
"""

from __future__ import annotations

import itertools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from planner._errors import ScenarioError

__all__ = ["Variant", "apply", "parse_sweep", "split_values", "variants"]


@dataclass
class Variant:
    """One scenario of a batch: its label (folder name), settings and swept values."""

    label: str
    scenario: Any
    scenario_file: Path | None = None
    values: dict[str, Any] = field(default_factory=dict)


def split_values(text: str) -> list[str]:
    """Split ``v1,v2`` at commas outside brackets and quotes."""
    out, depth, cur, quote = [], 0, "", ""
    for ch in text:
        if quote:
            cur += ch
            if ch == quote:
                quote = ""
            continue
        if ch in "'\"":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
            continue
        cur += ch
    out.append(cur.strip())
    return [v for v in out if v != ""]


def parse_sweep(sweep: Any) -> list[tuple[str, list[Any]]]:
    """``["network.speed_mps=0.8,1.0", ...]`` or ``{"network.speed_mps": [0.8, 1.0]}`` ->
    ``[(key, values), ...]``."""
    if not sweep:
        return []
    if isinstance(sweep, dict):
        items = [(str(k), list(v) if isinstance(v, (list, tuple)) else [v])
                 for k, v in sweep.items()]
    else:
        items = []
        for text in ([sweep] if isinstance(sweep, str) else sweep):
            if "=" not in text:
                raise ScenarioError(f"--sweep {text!r}: write it as key=value1,value2 (e.g. "
                                    "network.speed_mps=0.8,1.0).")
            key, _, rest = text.partition("=")
            try:
                values = [yaml.safe_load(v) for v in split_values(rest)]
            except yaml.YAMLError as exc:
                raise ScenarioError(f"--sweep {text!r}: a value is not valid YAML ({exc}).") \
                    from None
            items.append((key.strip(), values))
    for key, values in items:
        if not key or not values:
            raise ScenarioError(f"--sweep {key or '?'}: give a key and at least one value.")
    return items


def apply(scenario: Any, values: dict[str, Any]) -> Any:
    """A copy of ``scenario`` with dotted keys set (sections created where absent), validated."""
    from pydantic import ValidationError

    from planner.pipeline import Scenario

    data = scenario.model_dump(mode="json")
    for key, value in values.items():
        parts = key.split(".")
        node = data
        for p in parts[:-1]:
            if not isinstance(node.get(p), dict):
                if p in node and node[p] is not None:
                    raise ScenarioError(f"--sweep {key}: `{p}` is not a section.")
                node[p] = {}
            node = node[p]
        node[parts[-1]] = value
    data["base_dir"] = str(scenario.base_dir)
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        msgs = "; ".join(f"`{'.'.join(map(str, e['loc']))}`: {e['msg']}" for e in exc.errors())
        raise ScenarioError(f"--sweep {', '.join(f'{k}={v!r}' for k, v in values.items())} "
                            f"does not give a valid scenario: {msgs}") from None


def _label(values: dict[str, Any]) -> str:
    text = ",".join(f"{k.split('.')[-1]}={v}" for k, v in values.items())
    return re.sub(r"[^\w.=,\-]+", "_", text).strip("_") or "variant"


def variants(scenarios: list[Any], sweep: Any = None) -> list[Variant]:
    """Every scenario (a path or a `Scenario`) crossed with every combination of the sweep."""
    from planner.pipeline import Scenario, load_scenario

    base: list[Variant] = []
    for s in scenarios:
        if isinstance(s, Scenario):
            base.append(Variant(re.sub(r"[^\w.\-]+", "_", s.name).strip("_") or "scenario", s))
        else:
            path = Path(os.fspath(s))
            base.append(Variant(path.stem, load_scenario(path), path.resolve()))
    seen: dict[str, int] = {}
    for v in base:
        seen[v.label] = seen.get(v.label, 0) + 1
        if seen[v.label] > 1:
            v.label = f"{v.label}_{seen[v.label]}"
    items = parse_sweep(sweep)
    if not items:
        return base
    out = []
    keys = [k for k, _ in items]
    for v in base:
        for combo in itertools.product(*(vals for _, vals in items)):
            values = dict(zip(keys, combo, strict=True))
            label = _label(values) if len(base) == 1 else f"{v.label}_{_label(values)}"
            out.append(Variant(label, apply(v.scenario, values), v.scenario_file, values))
    return out
