"""Walking profiles and walkable road classes.

`PROFILES` (speed, steps), the road-class sets (`WALKABLE_CLASSES`,
`DEFAULT_EXCLUDE`, `MAJOR_CLASSES`, `CLASS_SYNONYMS`), the resolution of a
profile and its overrides (`resolve_profile`) and the class filter every
source applies (`walkable_set`, `normalise_classes`, `class_filter`).
"""

from __future__ import annotations

import warnings
from collections.abc import Collection, Iterable
from typing import Any

import numpy as np

from planner._errors import NetworkError, PlannerWarning

__all__ = [
    "CLASS_SYNONYMS",
    "DEFAULT_EXCLUDE",
    "MAJOR_CLASSES",
    "PROFILES",
    "WALKABLE_CLASSES",
    "class_filter",
    "normalise_classes",
    "resolve_profile",
    "walkable_set",
]

# --------------------------------------------------------------------------- profiles
#: Walking profiles: speed (m/s) and whether steps are avoided.  Sources (see the README,
#: "Walking speed and coverage"): Knoblauch et al. 1996; Fitzpatrick et al. 2006;
#: Webb et al. 2017; Chinese 15-minute-circle practice of 60 m/min.
PROFILES: dict[str, dict[str, Any]] = {
    "older_adult": {
        "speed_mps": 1.0,
        "avoid_steps": False,
        "description": "healthy older adult; 60 m/min as in Chinese 15-minute-circle "
        "analyses (15 min ≈ 900 m); measured means 0.97-1.16 m/s (Knoblauch 1996, "
        "Fitzpatrick 2006)",
    },
    "older_adult_design": {
        "speed_mps": 0.9,
        "avoid_steps": False,
        "description": "design value where older pedestrians matter (15th percentile "
        "0.92 m/s; Knoblauch 1996, Fitzpatrick 2006)",
    },
    "frail": {
        "speed_mps": 0.65,
        "avoid_steps": True,
        "description": "frail older adult (clinical 'slow' gait below about 0.62-0.7 m/s; "
        "Webb 2017); avoids steps",
    },
    "wheelchair": {
        "speed_mps": 0.8,
        "avoid_steps": True,
        "description": "wheelchair user; cannot use steps",
    },
    "generic_adult": {
        "speed_mps": 1.33,
        "avoid_steps": False,
        "description": "generic adult (4.8 km/h, the default of common routing tools)",
    },
}

# --------------------------------------------------------------------------- road classes
#: Classes excluded by default (no sidewalks: motorways and Chinese urban expressways).
DEFAULT_EXCLUDE: tuple[str, ...] = ("motorway", "motorway_link", "trunk", "trunk_link")

#: Classes walkable by default (OSM ``highway`` / Geofabrik ``fclass`` values).
WALKABLE_CLASSES: tuple[str, ...] = (
    "footway", "path", "pedestrian", "living_street", "residential", "service",
    "unclassified", "tertiary", "tertiary_link", "secondary", "secondary_link",
    "primary", "primary_link", "steps", "track", "track_grade1", "track_grade2",
    "cycleway", "road", "unknown",
)

#: Classes that are never walkable unless listed in ``include_classes``.
_NOT_ROADS: tuple[str, ...] = (
    "construction", "proposed", "abandoned", "raceway", "bus_guideway", "busway",
    "escape", "platform", "bridleway", "corridor", "elevator", "via_ferrata", "planned",
    "disused", "rest_area", "services", "not_a_road",
)

#: Classes whose junctions count as crossings of a major road (``crossing_delay_s``).
MAJOR_CLASSES: tuple[str, ...] = (
    "primary", "primary_link", "secondary", "secondary_link", "trunk", "trunk_link",
)

#: Chinese road classes (城市道路等级) mapped to OSM classes.
CLASS_SYNONYMS: dict[str, str] = {
    "高速公路": "motorway", "高速": "motorway", "匝道": "motorway_link",
    "快速路": "trunk", "城市快速路": "trunk", "快速干道": "trunk",
    "主干路": "primary", "主干道": "primary", "主要道路": "primary",
    "次干路": "secondary", "次干道": "secondary", "次要道路": "secondary",
    "支路": "tertiary", "城市支路": "tertiary", "街坊路": "residential",
    "小区道路": "service", "小区路": "service", "内部道路": "service",
    "人行道": "footway", "步行道": "footway", "步道": "footway", "步行街": "pedestrian",
    "台阶": "steps", "梯道": "steps", "自行车道": "cycleway", "非机动车道": "cycleway",
    "乡村道路": "track", "机耕路": "track",
}


# --------------------------------------------------------------------------- resolution
def resolve_profile(profile: str | None, speed_mps: float | None, avoid_steps: bool | None
                    ) -> tuple[str | None, float, bool]:
    """Resolve a profile name and overrides to (profile, speed_mps, avoid_steps)."""
    if profile is None:
        base: dict[str, Any] = {"speed_mps": 1.0, "avoid_steps": False}
    elif profile in PROFILES:
        base = PROFILES[profile]
    else:
        raise NetworkError(
            f"Unknown walking profile {profile!r}. Choose one of {', '.join(PROFILES)} "
            "(`network.profile` in the scenario), or set `speed_mps` directly."
        )
    speed = float(base["speed_mps"] if speed_mps is None else speed_mps)
    if not np.isfinite(speed) or not 0.1 < speed < 3.0:
        raise NetworkError(
            f"Walking speed {speed_mps!r} m/s is not plausible. Give a speed between 0.1 and "
            "3.0 m/s (older adults walk about 0.65-1.2 m/s; default 1.0)."
        )
    avoid = bool(base["avoid_steps"] if avoid_steps is None else avoid_steps)
    return profile, speed, avoid


def walkable_set(include_classes: Collection[str] | None, exclude_classes: Collection[str] | None,
                 avoid_steps: bool) -> set[str]:
    """The road classes kept (see `NetworkOptions`: include, exclude, avoid_steps)."""
    if include_classes is not None:
        keep = {str(c).strip().lower() for c in include_classes}
    else:
        keep = set(WALKABLE_CLASSES)
        if exclude_classes is not None:  # a given exclude list replaces DEFAULT_EXCLUDE
            keep |= set(DEFAULT_EXCLUDE)
    excl = set(DEFAULT_EXCLUDE) if exclude_classes is None else {
        str(c).strip().lower() for c in exclude_classes}
    if include_classes is not None and exclude_classes is None:
        excl = set()
    keep -= excl
    if avoid_steps:
        keep.discard("steps")
    return keep


def normalise_classes(values: Iterable[Any]) -> np.ndarray:
    """Road class strings: lower case, Chinese classes mapped, missing -> 'unknown'."""
    import pandas as pd

    s = pd.Series(values, dtype=object)
    s = s.where(s.notna(), "unknown").astype(str).str.strip()
    s = s.map(lambda v: CLASS_SYNONYMS.get(v, v)).str.lower()
    s = s.where(s != "", "unknown")
    return s.to_numpy(dtype=object)


#: Report keys of `class_filter` per counting unit: (classes dropped, steps avoided).
_UNIT_KEYS: dict[str, tuple[str, str]] = {
    "lines": ("excluded_classes", "steps_avoided"),
    "ways": ("excluded_ways", "steps_avoided_ways"),
    "edges": ("excluded_edges", "steps_avoided_edges"),
}


def class_filter(classes: np.ndarray, lengths_m: np.ndarray, *,
                 include_classes: Collection[str] | None,
                 exclude_classes: Collection[str] | None, avoid_steps: bool,
                 report: dict[str, Any], count: np.ndarray | None = None,
                 measure: np.ndarray | None = None, unit: str = "lines") -> np.ndarray:
    """Mask of walkable rows; counts of what was dropped go into ``report``.

    ``count`` (bool mask, default all rows) says which rows are counted and
    ``unit`` what a counted row is, so that every count in the build report
    says what it counts: ``"lines"`` of a line layer (report keys
    ``excluded_classes``, ``steps_avoided``), OSM ``"ways"`` (the first
    segment of each way is counted; ``excluded_ways``, ``steps_avoided_ways``)
    or ``"edges"`` of a saved network (``excluded_edges``,
    ``steps_avoided_edges``).  ``measure`` (bool mask, default ``count``) says
    which rows' lengths make ``excluded_km`` (for OSM graphs: each segment
    once, whichever directions the graph holds).  The warning about unknown
    classes points at the caller of the builder that calls this.
    """
    import pandas as pd

    key, steps_key = _UNIT_KEYS[unit]
    walk = walkable_set(include_classes, exclude_classes, avoid_steps)
    keep = np.isin(classes.astype(str), sorted(walk))
    c = np.ones(len(keep), dtype=bool) if count is None else count
    dropped = pd.Series(c[~keep].astype(int)).groupby(classes[~keep].astype(str)).sum()
    report[key] = {str(k): int(v) for k, v in dropped.items() if v > 0}
    m = c if measure is None else measure
    report["excluded_km"] = float(lengths_m[~keep & m].sum() / 1000.0)
    report[steps_key] = int(avoid_steps and ((classes == "steps") & c).sum())
    if include_classes is None:
        known = set(WALKABLE_CLASSES) | set(DEFAULT_EXCLUDE) | set(_NOT_ROADS)
        unknown = sorted(set(report[key]) - known)
        if unknown:
            counts = ", ".join(f"{c} ({report[key][c]} {unit})" for c in unknown)
            warnings.warn(PlannerWarning(
                f"Road classes not recognised as walkable were dropped: {counts}. If people "
                "walk on them, list them in `network.include_classes` (with the walkable "
                f"ones: {', '.join(sorted(walk))}).",
                f"未识别为可步行的道路等级已删除：{counts}。如果人们在其上步行，请在 "
                f"`network.include_classes` 中列出（连同可步行的等级：{', '.join(sorted(walk))}）。"),
                stacklevel=3)
    return keep
