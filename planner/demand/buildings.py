"""Buildings as weights: residential floor area says where an area's residents live.

Where OpenStreetMap's residential land is incomplete (central Xi'an: 2.0
million residents on 1.4 km² of mapped residential land in one district),
building footprints with floors or height (national building data sets,
OSM ``building:levels``) are the better weight: residents live in floor
area, and a 30-storey slab holds ten times a 3-storey one of the same
footprint.

* `residential_buildings` keeps the residential buildings (a filter on a
  function column) and gives each its floor area: a floor-area column when
  the data has one, else footprint x floors, else footprint x round(height
  / storey height) (`planner.defaults.STOREY_HEIGHT_M`, 3.0 m), else
  footprint x ``default_floors``; each building says which.
* `allocate_to_buildings` spreads census totals per area over the
  buildings inside it by floor area.  A building straddling two areas is
  split by footprint share (its floor area too); buildings outside every
  area are counted and reported.  Written by hand rather than with
  ``geopandas.overlay`` (which `planner.demand.allocate` uses for
  residential polygons): overlay intersects every building with its area,
  while here one spatial-index query and a prepared ``contains_properly``
  settle the buildings wholly inside one area, and only the few on a
  border are intersected (a million buildings in seconds).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from planner import defaults as D
from planner._errors import DemandError, PlannerWarning
from planner.demand.census import _clean_name
from planner.demand.spread import area_points, prepare_areas, spread_counts

if TYPE_CHECKING:  # pragma: no cover
    import geopandas as gpd

__all__ = ["FLOORS_COLUMNS", "HEIGHT_COLUMNS", "RESIDENTIAL_VALUES", "allocate_to_buildings",
           "residential_buildings"]

#: Column names tried for the number of floors (first found is used).
FLOORS_COLUMNS = ("floors", "层数", "楼层数", "地上层数", "building:levels", "levels", "storeys")
#: Column names tried for the building height in metres.
HEIGHT_COLUMNS = ("height_m", "height", "高度", "建筑高度", "building:height")
#: Function values counted as residential (compared without case and whitespace).
RESIDENTIAL_VALUES = ("residential", "apartments", "house", "detached", "semidetached_house",
                      "terrace", "dormitory", "住宅", "居住", "住宅楼", "居民楼", "宿舍")


def _find_column(gdf: pd.DataFrame, given: str | None, candidates: Sequence[str],
                 what: str) -> str | None:
    if given is not None:
        if given not in gdf.columns:
            raise DemandError(f"Buildings layer has no {what} column {given!r} (columns: "
                              f"{list(gdf.columns)}).")
        return given
    lower = {str(c).lower(): c for c in gdf.columns}
    return next((lower[c.lower()] for c in candidates if c.lower() in lower), None)


def _positive(gdf: pd.DataFrame, col: str | None, problems: list[str]) -> np.ndarray:
    """Column as floats; empty, 0 -> NaN (missing); negatives and text -> problems."""
    if col is None:
        return np.full(len(gdf), np.nan)
    raw = gdf[col]
    v = np.array(pd.to_numeric(raw, errors="coerce"), dtype=float)
    text = np.flatnonzero(np.isnan(v) & raw.notna().to_numpy()
                          & (raw.astype(str).str.strip() != "").to_numpy())
    neg = np.flatnonzero(v < 0)
    for kind, rows in (("not a number", text), ("negative", neg)):
        if len(rows):
            shown = [f"row {gdf.index[i]}: {raw.iloc[i]!r}" for i in rows[:5]]
            problems.append(f"column {col!r}: {len(rows)} value(s) {kind} ({', '.join(shown)})")
    v[v <= 0] = np.nan
    return v


def residential_buildings(
    buildings: gpd.GeoDataFrame,
    *,
    floor_area_column: str | None = None,
    floors_column: str | None = None,
    height_column: str | None = None,
    storey_height_m: float = D.STOREY_HEIGHT_M,
    function_column: str | None = None,
    residential_values: Sequence[str] = RESIDENTIAL_VALUES,
    default_floors: float = D.DEFAULT_FLOORS,
) -> gpd.GeoDataFrame:
    """The residential buildings and their floor area (the weight for residents).

    Parameters
    ----------
    buildings
        Building footprints (polygons) with a CRS.
    floor_area_column
        Total floor area (m²) where the data has it (default: a
        ``floor_area_m2`` / 建筑面积 column when present).
    floors_column, height_column
        Floors and height (m); default: the first of `FLOORS_COLUMNS` /
        `HEIGHT_COLUMNS` present.  Floors win over height.
    storey_height_m
        Height of one storey: floors = round(height / storey_height_m), at
        least 1.  Default 3.0 m (GB 50096 recommends 2.8 m from floor to
        floor in housing; 3.0 m leaves room for roofs and parapets in
        measured heights).
    function_column, residential_values
        Keep only buildings whose function is one of ``residential_values``
        (case and whitespace ignored); buildings with an empty function are
        kept (counted, with a warning).  No column: every building is kept.
    default_floors
        Floors of a building with neither floors nor height (warned).

    Returns
    -------
    GeoDataFrame
        The kept buildings (same CRS and columns) with ``footprint_m2``,
        ``floors_used``, ``floor_area_m2`` (the weight) and ``floors_from``
        (``floor_area`` / ``floors`` / ``height`` / ``default``).
        ``attrs["buildings_report"]`` counts each case and the buildings
        dropped as not residential; ``attrs["method"]`` says how.

    Raises
    ------
    DemandError
        No CRS, non-polygon geometry, text or negative numbers in the
        floor, height or floor-area columns, a bad storey height.
    """
    import geopandas as gpd

    if not isinstance(buildings, gpd.GeoDataFrame) or buildings.crs is None:
        raise DemandError("The buildings layer must be a GeoDataFrame with a CRS.")
    kinds = set(buildings.geom_type.dropna().unique())
    if not kinds <= {"Polygon", "MultiPolygon"}:
        raise DemandError(f"The buildings layer must hold footprints (polygons); it has "
                          f"{sorted(kinds)}.")
    if not storey_height_m > 0 or not default_floors > 0:
        raise DemandError(f"storey_height_m and default_floors must be positive (got "
                          f"{storey_height_m}, {default_floors}).")
    report: dict[str, Any] = {"n_buildings": len(buildings)}
    b = _residential_only(buildings, function_column, residential_values, report)
    fa_col = _find_column(b, floor_area_column, ("floor_area_m2",), "floor-area")
    fl_col = _find_column(b, floors_column, FLOORS_COLUMNS, "floors")
    h_col = _find_column(b, height_column, HEIGHT_COLUMNS, "height")
    problems: list[str] = []
    fa, floors, height = (_positive(b, c, problems) for c in (fa_col, fl_col, h_col))
    if problems:
        raise DemandError("Buildings layer cannot be used:\n" + "\n".join(
            f"  - {p}" for p in problems) + "\nFix or empty those cells.")
    metric = b.crs if not b.crs.is_geographic else b.estimate_utm_crs()
    footprint = b.geometry.to_crs(metric).area.to_numpy() if b.crs.is_geographic else \
        b.geometry.area.to_numpy()
    from_height = np.maximum(1.0, np.floor(height / storey_height_m + 0.5))
    used = np.where(~np.isnan(floors), floors,
                    np.where(~np.isnan(from_height), from_height, default_floors))
    source = np.where(~np.isnan(fa), "floor_area", np.where(
        ~np.isnan(floors), "floors", np.where(~np.isnan(height), "height", "default")))
    out = b.copy()
    out["footprint_m2"] = footprint
    out["floors_used"] = np.where(~np.isnan(fa), np.nan, used)
    out["floor_area_m2"] = np.where(~np.isnan(fa), fa, footprint * used)
    out["floors_from"] = pd.Categorical(source)
    counts = pd.Series(source).value_counts()
    report.update({f"n_from_{k}": int(counts.get(k, 0))
                   for k in ("floor_area", "floors", "height", "default")})
    if report["n_from_default"]:
        warnings.warn(PlannerWarning(
            f"{report['n_from_default']} residential building(s) have neither floors nor height"
            f" ({fl_col or 'no floors column'}, {h_col or 'no height column'}): counted as "
            f"{default_floors:g} floor(s) each.",
            f"{report['n_from_default']} 栋住宅建筑既没有层数也没有高度"
            f"（{fl_col or '无层数列'}，{h_col or '无高度列'}）：每栋按 {default_floors:g} 层计。"),
            stacklevel=2)
    out.attrs["buildings_report"] = report
    out.attrs["method"] = (
        "residential floor area: " + ", else ".join(
            p for p, c in ((f"{fa_col}", fa_col),
                           (f"footprint x {fl_col}", fl_col),
                           (f"footprint x round({h_col} / {storey_height_m:g} m storey)", h_col),
                           (f"footprint x {default_floors:g} floor(s)", True)) if c))
    if function_column:
        out.attrs["method"] += f"; buildings whose {function_column} is residential"
    return out


def _residential_only(buildings: gpd.GeoDataFrame, function_column: str | None,
                      values: Sequence[str], report: dict[str, Any]) -> gpd.GeoDataFrame:
    report.update(n_not_residential=0, n_function_unknown=0)
    if function_column is None:
        return buildings
    if function_column not in buildings.columns:
        raise DemandError(f"Buildings layer has no function column {function_column!r} "
                          f"(columns: {list(buildings.columns)}).")
    fn = buildings[function_column].map(_clean_name)
    unknown = fn.isna() | (fn.astype(str) == "")
    wanted = {str(_clean_name(v)).lower() for v in values}
    res = fn.astype(str).str.lower().isin(wanted)
    report["n_not_residential"] = int((~res & ~unknown).sum())
    report["n_function_unknown"] = int(unknown.sum())
    if report["n_function_unknown"]:
        warnings.warn(PlannerWarning(
            f"{report['n_function_unknown']} building(s) have no {function_column!r}: kept "
            "as residential.",
            f"{report['n_function_unknown']} 栋建筑没有 {function_column!r}（用途）：按住宅保留。"),
            stacklevel=3)
    return buildings[(res | unknown).to_numpy()]


def _pieces(bgeoms: np.ndarray, ageoms: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                             np.ndarray, np.ndarray]:
    """(building, area, share of footprint, piece geometry) of every building-area overlap."""
    import shapely

    tree = shapely.STRtree(ageoms)
    bi, ai = tree.query(bgeoms, predicate="intersects")
    shapely.prepare(ageoms)
    whole = shapely.contains_properly(ageoms[ai], bgeoms[bi])
    frac = np.ones(len(bi))
    geom = bgeoms[bi].copy()
    cut = np.flatnonzero(~whole)
    if len(cut):
        inter = shapely.intersection(bgeoms[bi[cut]], ageoms[ai[cut]])
        area = shapely.area(bgeoms[bi[cut]])
        frac[cut] = np.divide(shapely.area(inter), area, out=np.zeros(len(cut)),
                              where=area > 0)
        geom[cut] = inter
    keep = frac > 0
    return bi[keep], ai[keep], frac[keep], geom[keep]


def allocate_to_buildings(
    areas: gpd.GeoDataFrame,
    totals: pd.DataFrame,
    buildings: gpd.GeoDataFrame,
    *,
    area_key: str = "name",
    table_key: str = "name",
    weight: str = "floor_area_m2",
    columns: Sequence[str] | None = None,
) -> gpd.GeoDataFrame:
    """Spread census totals per area over the buildings inside it, by floor area.

    Parameters
    ----------
    areas, totals
        Districts or townships and their census table (names matched as in
        `planner.demand.allocate`).
    buildings
        Residential buildings with a ``weight`` column (`residential_buildings`
        gives ``floor_area_m2``); ``id`` and ``name`` are kept when present.
    columns
        Count columns to spread (default: population, older groups and
        households, those the table has).

    Returns
    -------
    GeoDataFrame
        In ``areas.crs``, one row per building piece (a building straddling
        two areas is two pieces, split by footprint share): ``id`` (the
        building's, ``-<area>`` added when split), ``source_id``, ``name``,
        ``area``, ``placement="building"`` (``"area_point"`` for an area
        without buildings, warned), ``split``, ``footprint_m2``, ``weight``,
        ``share`` and per column ``c`` (floats) and ``c_int`` (integers:
        exact per area, nested groups kept nested).  ``attrs["demand_report"]``
        counts buildings outside every area (warned), partly outside and
        split; ``attrs["demand_columns"]`` says how each column was made.
    """
    import geopandas as gpd
    import shapely

    ar, table, columns = prepare_areas(areas, totals, area_key=area_key, table_key=table_key,
                                       columns=columns)
    if weight not in buildings.columns:
        raise DemandError(f"Buildings layer has no weight column {weight!r} (columns: "
                          f"{list(buildings.columns)}); residential_buildings() adds "
                          "floor_area_m2.")
    work = ar.crs if not ar.crs.is_geographic else ar.estimate_utm_crs()
    ar_w = ar.to_crs(work)
    bl = buildings.to_crs(work) if buildings.crs != work else buildings
    bgeoms = np.asarray(bl.geometry.values, dtype=object)
    w = pd.to_numeric(bl[weight], errors="coerce").to_numpy(dtype=float)
    if np.isnan(w).any() or (w < 0).any():
        bad = np.flatnonzero(np.isnan(w) | (w < 0))
        raise DemandError(f"Weight column {weight!r} needs non-negative numbers; rows "
                          f"{list(bl.index[bad[:10]])} are not.")
    bi, ai, frac, geom = _pieces(bgeoms, np.asarray(ar_w.geometry.values, dtype=object))
    report = _outside_report(bi, frac, w, len(bl), weight)
    ids = bl["id"] if "id" in bl.columns else pd.Series(bl.index)
    ids = ids.to_numpy(dtype=object) if pd.api.types.is_string_dtype(ids) else \
        ids.astype(str).to_numpy(dtype=object)
    names = bl["name"].to_numpy() if "name" in bl.columns else np.full(len(bl), None)
    n_parts = np.bincount(bi, minlength=len(bl))
    split = (n_parts[bi] > 1) | (frac < 1 - 1e-9)
    keys = ar_w["_key"].to_numpy()[ai]
    piece_ids = ids[bi]
    cut = np.flatnonzero(split)
    piece_ids[cut] = [f"{i}-{k}" for i, k in zip(ids[bi[cut]], keys[cut])]
    frame = gpd.GeoDataFrame({
        "id": piece_ids,
        "source_id": ids[bi], "name": names[bi], "area": keys, "placement": "building",
        "split": split, "footprint_m2": shapely.area(geom), "weight": w[bi] * frac,
    }, geometry=geom, crs=work)
    have = frame.groupby("area")["weight"].sum()
    empty = [a for a in table.index if have.get(a, 0.0) <= 0]
    if empty:
        ap = area_points(ar_w, empty, "residential building with floor area",
                         "有建筑面积的住宅建筑")
        frame = frame[~frame["area"].isin(empty)]
        frame = pd.concat([frame, gpd.GeoDataFrame({
            "id": ["area:" + str(a) for a in ap["_key"]], "source_id": None, "name": None,
            "area": ap["_key"].to_numpy(), "placement": "area_point", "split": False,
            "footprint_m2": 0.0, "weight": 1.0}, geometry=ap.geometry.values, crs=work)],
            ignore_index=True)
    report["areas_at_point"] = empty
    counts, share = spread_counts(frame["area"].to_numpy(), frame["weight"].to_numpy(),
                                  table, columns)
    frame["share"] = share
    for c in columns:
        frame[c] = counts[c]
        frame[f"{c}_int"] = counts[f"{c}_int"]
    frame = frame.to_crs(areas.crs) if areas.crs != work else frame
    method = (f"census totals per area spread over residential buildings by {weight} "
              f"({buildings.attrs.get('method', weight)}); a building on a border split by "
              "footprint share")
    source = f"{totals.attrs.get('source', 'census table')}; " \
             f"{buildings.attrs.get('source', 'buildings layer')}"
    frame.attrs["demand_columns"] = {
        **{c: {"estimated": True, "method": method + " (floats)", "source": source}
           for c in columns},
        **{f"{c}_int": {"estimated": True, "method": method + " (integers by largest "
                        "remainder per area, nested groups kept nested)", "source": source}
           for c in columns}}
    frame.attrs["demand_report"] = report
    return frame


def _outside_report(bi: np.ndarray, frac: np.ndarray, w: np.ndarray, n: int,
                    weight: str) -> dict[str, Any]:
    """Buildings outside every area (warned) and partly outside."""
    inside = np.bincount(bi, weights=frac, minlength=n)
    outside = inside <= 0
    partly = (inside > 0) & (inside < 1 - 1e-9)
    lost = float(w[outside].sum() + (w * np.clip(1 - inside, 0, 1))[partly].sum())
    report = {"n_buildings": n, "n_outside": int(outside.sum()),
              "n_partly_outside": int(partly.sum()),
              "n_split": int((np.bincount(bi, minlength=n) > 1).sum()),
              "outside_weight": lost}
    if report["n_outside"] or report["n_partly_outside"]:
        part = (f" and {report['n_partly_outside']} partly" if report["n_partly_outside"]
                else "")
        part_zh = (f"，另有 {report['n_partly_outside']} 栋部分位于其外" if
                   report["n_partly_outside"] else "")
        warnings.warn(PlannerWarning(
            f"{report['n_outside']} residential building(s) lie wholly{part} outside every "
            f"census area ({weight} {lost:,.0f} outside): nobody is placed there. Check that "
            "the boundaries cover the buildings' extent.",
            f"{report['n_outside']} 栋住宅建筑完全位于所有普查区域之外{part_zh}"
            f"（区域外的 {weight} 合计 {lost:,.0f}）：这些地方不分配人口。请检查边界是否覆盖"
            "建筑的范围。"), stacklevel=3)
    return report
