"""Census totals shared out over weighted targets (buildings, grid cells, unit pieces).

The grid and building allocations (`planner.demand.raster`,
`planner.demand.buildings`) both end the same way: each census area's
totals are split over the targets inside it in proportion to a weight, as
floats and as integers that keep every area's total exactly.
`spread_counts` does that split; `prepare_areas` matches the census table
to the area boundaries first.

Integers: the older groups are nested (population ⊇ 60+ ⊇ 65+ ⊇ 80+), so
rounding each group on its own could give a target more residents aged 65+
than aged 60+.  `spread_counts` rounds the disjoint parts instead (under
60, 60-64, 65-79, 80+; by largest remainder per area, `largest_remainder`)
and adds them up, so every target's groups stay nested and every area's
totals stay exact; a target's integer then differs from its float by less
than the number of parts added (at most 4, for ``population``), as with
`planner.demand.allocate`, whose groups are sums of rounded age bands.
Households are rounded on their own.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from planner._errors import DemandError, PlannerWarning
from planner.demand.allocation import largest_remainder
from planner.demand.census import GROUPS, _clean_name, _match_names, older_groups

if TYPE_CHECKING:  # pragma: no cover
    import geopandas as gpd

__all__ = ["NESTED_COLUMNS", "SPREAD_COLUMNS", "area_points", "population_units", "prepare_areas",
           "spread_counts"]

#: Nested count columns, outermost first: each holds the next.
NESTED_COLUMNS: tuple[str, ...] = ("population", *GROUPS)
#: The columns `spread_counts` shares out by default (those the table has).
SPREAD_COLUMNS: tuple[str, ...] = (*NESTED_COLUMNS, "households")


def prepare_areas(
    areas: gpd.GeoDataFrame,
    totals: pd.DataFrame,
    *,
    area_key: str = "name",
    table_key: str = "name",
    columns: Sequence[str] | None = None,
) -> tuple[gpd.GeoDataFrame, pd.DataFrame, list[str]]:
    """Match a census table to area boundaries.

    Returns
    -------
    (areas, table, columns)
        The areas with a census row, dissolved by name (``_key`` and
        geometry, in ``areas.crs``); the table indexed by the cleaned name;
        the count columns to spread (default: those of `SPREAD_COLUMNS` the
        table has).

    Raises
    ------
    DemandError
        No CRS, a missing key column, areas listed twice, names without a
        boundary (with close matches), missing or non-nested count columns.
    """
    import geopandas as gpd

    if not isinstance(areas, gpd.GeoDataFrame) or areas.crs is None:
        raise DemandError("The area layer must be a GeoDataFrame with a CRS (districts or "
                          "townships whose names match the census table).")
    if area_key not in areas.columns:
        raise DemandError(
            f"Area layer has no column {area_key!r} (columns: {list(areas.columns)}). "
            "Set area_key= (scenario: demand.area_key).")
    if table_key not in totals.columns:
        raise DemandError(
            f"Census table has no column {table_key!r} (columns: {list(totals.columns)}). "
            "Set table_key= (scenario: demand.table_key).")
    table = totals.copy()
    if "pop_60plus" not in table.columns:
        try:
            table = older_groups(table)
        except DemandError:
            pass  # a table of totals only: spread what it has
    if columns is None:
        columns = [c for c in SPREAD_COLUMNS if c in table.columns]
    columns = list(columns)
    missing = [c for c in columns if c not in table.columns]
    if missing or not columns:
        raise DemandError(f"Census table has no columns {missing or list(SPREAD_COLUMNS)}; it "
                          f"has {list(table.columns)}.")
    table["_key"] = table[table_key].map(_clean_name)
    dup = table["_key"][table["_key"].duplicated()].tolist()
    if dup:
        raise DemandError(f"Census table lists areas twice: {dup} (one row per area).")
    names = areas[area_key].map(_clean_name)
    _match_names(table["_key"].tolist(), names.dropna().unique().tolist(), what=area_key)
    table = table.set_index("_key")
    _check_nested(table, columns)
    ar = gpd.GeoDataFrame({"_key": names}, geometry=areas.geometry.values, crs=areas.crs)
    ar = ar[ar["_key"].isin(set(table.index))].dissolve(by="_key").reset_index()
    return ar, table, columns


def _check_nested(table: pd.DataFrame, columns: Sequence[str]) -> None:
    nested = [c for c in NESTED_COLUMNS if c in columns]
    for outer, inner in zip(nested, nested[1:]):
        bad = table.index[table[inner].astype(float) > table[outer].astype(float) + 1e-9]
        if len(bad):
            raise DemandError(
                f"Census table: {inner} exceeds {outer} in {list(bad)[:10]}; the groups must "
                "be nested (population ≥ 60+ ≥ 65+ ≥ 80+). Correct the table.")


def spread_counts(
    keys: np.ndarray,
    weights: np.ndarray,
    table: pd.DataFrame,
    columns: Sequence[str],
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Share each area's totals over its targets in proportion to their weights.

    Parameters
    ----------
    keys
        The area (an index value of ``table``) of each target.
    weights
        Non-negative weight of each target; every area's weights must sum
        to more than 0 (give areas without weight a point of their own).
    table
        Census totals indexed by area.
    columns
        Count columns of ``table`` to spread.

    Returns
    -------
    (counts, share)
        ``counts`` maps ``c`` (floats: total x share) and ``c_int``
        (integers: per area they sum to the rounded total exactly; nested
        groups stay nested, see the module) for each column; ``share`` is
        each target's share of its area.
    """
    keys = np.asarray(keys)
    w = np.asarray(weights, dtype=float)
    codes, uniq = pd.factorize(keys, sort=False)
    wsum = np.bincount(codes, weights=w, minlength=len(uniq))
    if (wsum <= 0).any():
        raise DemandError(f"Areas {list(uniq[wsum <= 0])[:10]} have no weight to spread by.")
    share = w / wsum[codes]
    tab = table.reindex(uniq)
    out: dict[str, np.ndarray] = {}
    for c in columns:
        out[c] = tab[c].to_numpy(float)[codes] * share
    nested = [c for c in NESTED_COLUMNS if c in columns]
    inner_int = np.zeros(len(w), dtype=np.int64)
    for k in range(len(nested) - 1, -1, -1):  # innermost part first
        c = nested[k]
        part = out[c] - (out[nested[k + 1]] if k + 1 < len(nested) else 0.0)
        inner_int = inner_int + largest_remainder(np.clip(part, 0.0, None), codes)
        out[f"{c}_int"] = inner_int
    for c in columns:
        if c not in nested:
            out[f"{c}_int"] = largest_remainder(out[c], codes)
    return out, share


def area_points(ar: gpd.GeoDataFrame, keys: Sequence[str], what: str, what_zh: str
                ) -> gpd.GeoDataFrame:
    """A representative point per area in ``keys``, with a warning that names them
    (``what`` / ``what_zh``: what those areas lack, in English / Chinese)."""
    import geopandas as gpd

    keys = list(keys)
    warnings.warn(PlannerWarning(
        f"{len(keys)} area(s) have no {what}: {keys[:10]}; their residents are placed at one "
        "representative point inside each area (an estimate).",
        f"{len(keys)} 个区域没有{what_zh}：{'、'.join(map(str, keys[:10]))}"
        f"{' 等' if len(keys) > 10 else ''}；其居民放在各区域内的一个代表点上（估算）。"),
        stacklevel=3)
    pts = ar[ar["_key"].isin(keys)]
    return gpd.GeoDataFrame({"_key": pts["_key"].to_numpy()},
                            geometry=pts.representative_point().values, crs=ar.crs)


#: Unit names per placement and language: (label, point label).
_UNIT_LABEL = {"building": {"zh": "住宅楼", "en": "building"},
               "grid": {"zh": "格网", "en": "grid"},
               "area_point": {"zh": "（区域代表点）", "en": " (area point)"}}


def population_units(
    est: gpd.GeoDataFrame,
    *,
    area_column: str = "district",
    areas: gpd.GeoDataFrame | None = None,
    area_key: str = "name",
    source: str = "",
    lang: str = "zh",
    keep: Sequence[str] = (),
) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """A run's population layer from `allocate_to_buildings` / `allocate_to_grid` output.

    Integer counts (``c_int``) become the count columns; each unit is named
    after its area and building or grid block; ``area_column`` holds its
    area (and ``district`` too when ``areas`` are townships carrying one).
    ``keep`` lists further columns to carry (``weight``, ``cells``).

    Returns
    -------
    (population layer, table of estimated columns: layer, column, estimated, method, source)
    """
    import geopandas as gpd

    out = pd.DataFrame({"id": est["id"].astype(str).to_numpy()})
    names = []
    for n, a, pl, sid in zip(est["name"], est["area"], est["placement"], est["source_id"],
                             strict=True):
        label = _UNIT_LABEL.get(pl, {}).get(lang, pl)
        if isinstance(n, str) and n.strip():
            names.append(n)
        elif pl == "area_point":
            names.append(f"{a}{label}")
        else:
            names.append(f"{a} {label} {sid}")
    out["name"] = names
    counted = [c for c in SPREAD_COLUMNS if f"{c}_int" in est.columns]
    for c in counted:
        out[c] = est[f"{c}_int"].to_numpy()
    out[area_column] = est["area"].to_numpy()
    if area_column == "township" and areas is not None and "district" in areas.columns:
        names_ = areas[area_key].map(_clean_name)
        out["district"] = out["township"].map(dict(zip(names_, areas["district"], strict=True)))
    out["placement"] = est["placement"].to_numpy()
    for c in keep:
        if c in est.columns:
            out[c] = est[c].to_numpy()
    info = est.attrs.get("demand_columns", {})
    rows = [{"layer": "population", "column": c, "estimated": True,
             "method": info.get(f"{c}_int", {}).get("method", ""),
             "source": source or info.get(f"{c}_int", {}).get("source", "")} for c in counted]
    return (gpd.GeoDataFrame(out, geometry=est.geometry.values, crs=est.crs),
            pd.DataFrame(rows, columns=["layer", "column", "estimated", "method", "source"]))
