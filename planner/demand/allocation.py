"""Dasymetric allocation: census areas onto residential land, and the population layer.

`allocate` spreads each area's counts over the residential polygons inside
it, totals preserved exactly per area (`largest_remainder` for integers);
`estimate_population` turns that into a run's population layer, and
`fill_groups` completes a given population layer from its areas' census shares.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from planner._errors import DemandError, PlannerWarning
from planner.demand.census import (
    BAND_COLUMNS,
    COUNT_COLUMNS,
    GROUPS,
    _band_columns_from,
    _clean_name,
    _match_names,
    _show,
    older_groups,
)

if TYPE_CHECKING:  # pragma: no cover
    import geopandas as gpd
    from pyproj import CRS

__all__ = ["CAMPUS_NAMES", "CAMPUS_SHARE_WARN", "CAMPUS_TAGS", "HOUSING_NAMES",
           "MIN_RES_M2_PER_RESIDENT", "OVERLAP_WARN_SHARE", "allocate", "campus_like",
           "demand_columns", "estimate_population", "fill_groups", "largest_remainder",
           "parent_areas", "trim_overlaps"]

#: Overlap of residential polygons (share of the land they cover) above which it is warned.
OVERLAP_WARN_SHARE = 0.01

#: Name parts of polygons that are campuses, hospitals or sports grounds, not housing
#: (Chinese anywhere in the name, English as words) ...
CAMPUS_NAMES: tuple[str, ...] = (
    "大学", "学院", "学校", "中学", "小学", "幼儿园", "校区", "校园", "医院", "卫生院",
    "体育", "运动场", "球场", "体育场", "体育馆", "university", "college", "campus",
    "school", "hospital", "clinic", "stadium", "sports", "arena", "gymnasium",
)
#: ... unless the name also says it is housing (staff quarters of a university are homes).
HOUSING_NAMES: tuple[str, ...] = (
    "家属", "宿舍", "公寓", "住宅", "小区", "社区", "新村", "生活区", "教师村", "职工",
    "花园", "苑", "housing", "residence", "residential", "dormitor", "apartment",
    "quarters", "staff",
)
#: OSM tag values of such places, looked up in the amenity, leisure, landuse, building,
#: fclass and type columns.
CAMPUS_TAGS: frozenset[str] = frozenset({
    "university", "college", "school", "kindergarten", "hospital", "clinic", "stadium",
    "sports_centre", "pitch", "track", "education", "sports_hall",
})
_TAG_COLUMNS = ("amenity", "leisure", "landuse", "building", "fclass", "type")
_NAME_COLUMNS = ("name", "name:zh", "name:en", "名称")
#: Share of an area's residents on campus-like polygons above which allocation warns.
CAMPUS_SHARE_WARN = 0.10


# --------------------------------------------------------------------------- allocation
def allocate(
    areas: gpd.GeoDataFrame,
    totals: pd.DataFrame,
    residential: gpd.GeoDataFrame | None,
    *,
    area_key: str = "name",
    table_key: str = "name",
    columns: Sequence[str] | None = None,
    weight: str | None = None,
    remove_overlaps: bool = True,
    campus_share_warn: float = CAMPUS_SHARE_WARN,
) -> gpd.GeoDataFrame:
    """Spread area totals onto the residential polygons inside each area (dasymetric).

    Each area's totals are shared among the pieces of residential polygons
    inside it, in proportion to piece area (m²) or to a weight column
    (floor area, dwellings...; a polygon's weight is split between areas by
    area share where the polygon crosses a border).  Written by hand rather
    than with tobler's ``area_interpolate``: that spreads by *source* area
    (so residents would be put on roads, parks and water, or lost where the
    residential layer does not cover an area), takes no per-target weight
    column, keeps no areas without targets and gives no integer counts; the
    whole method here is one overlay and a group-by.

    Parameters
    ----------
    areas
        Districts or townships with a CRS and the ``area_key`` column.
    totals
        One row per area (`read_census` / `older_groups`), keyed by ``table_key``.
        Every area in it must match an area name (whitespace ignored).
    residential
        Residential polygons with a CRS (any CRS or datum that pyproj knows;
        reprojected to ``areas.crs``).  GCJ-02 / BD-09 are not CRSs pyproj
        knows: convert such layers first (`planner.coords.to_wgs84`, or
        ``coord_system:`` in the scenario).  ``id`` and ``name`` columns are kept
        when present.  None: every area is placed at a point.
    area_key, table_key
        Matching columns of ``areas`` and ``totals``.
    columns
        Count columns to spread.  Default: ``population``, ``households``,
        ``pop_60plus``, ``pop_65plus``, ``pop_80plus`` and every age band present.
    weight
        Column of ``residential`` to spread by (non-negative numbers);
        default None spreads by residential area.
    remove_overlaps
        Remove the overlaps of residential polygons first (`trim_overlaps`:
        the smaller polygon keeps the shared land; a trimmed polygon keeps
        the share of its weight its land keeps), so no one is counted twice;
        a `PlannerWarning` says how much when it is over 1 % of the land.
    campus_share_warn
        Warn when more than this share of an area's residents land on
        polygons that look like a campus, hospital or sports ground
        (`campus_like`).

    Returns
    -------
    GeoDataFrame
        In ``areas.crs``, one row per residential piece (``id``, ``source_id``,
        ``name``, ``area``, ``placement="residential"``, ``split``,
        ``res_area_m2``, ``share``), plus one row at a representative point
        (``placement="area_point"``) per area without residential land, and
        ``campus_like`` (see `campus_like`).
        Each spread column ``c`` holds floats (``c``; per area they sum to the
        table's total up to float rounding) and integers (``c_int``, largest
        remainder per area: they sum to the rounded total exactly).  For age
        bands and older groups, ``pop_60plus_int`` etc. are the sums of the
        integer bands.  ``attrs["demand_columns"]`` (column -> estimated,
        method, source) and ``attrs["demand_report"]`` (counts of polygons
        outside every area, split polygons, areas placed at points, the
        overlap removed, each area's share on campus-like polygons) describe it.

    Raises
    ------
    DemandError
        Missing CRS, unmatched area names (with close matches), a bad weight
        column.
    """
    import geopandas as gpd

    _check_gdf(areas, "areas")
    if area_key not in areas.columns:
        raise DemandError(
            f"Area layer has no column {area_key!r} (columns: {list(areas.columns)}). "
            "Set area_key= (scenario: demand.area_key)."
        )
    if table_key not in totals.columns:
        raise DemandError(
            f"Census table has no column {table_key!r} (columns: {list(totals.columns)}). "
            "Set table_key= (scenario: demand.table_key)."
        )
    table = totals.copy()
    if all(c in table.columns for c in BAND_COLUMNS) and "pop_60plus" not in table.columns:
        table = older_groups(table)
    if columns is None:
        columns = [c for c in (*COUNT_COLUMNS, *BAND_COLUMNS) if c in table.columns]
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise DemandError(f"Census table has no columns {missing}; it has {list(table.columns)}.")
    table["_key"] = table[table_key].map(_clean_name)
    if table["_key"].duplicated().any():
        raise DemandError(
            f"Census table lists areas twice: {table['_key'][table['_key'].duplicated()].tolist()}."
        )
    area_names = areas[area_key].map(_clean_name)
    listed = area_names.dropna().unique().tolist()
    src = totals.attrs.get("source", "the census table")
    layer = areas.attrs.get("source", "the area layer")
    _match_names(table["_key"].tolist(), listed, what=area_key, header=(
        f"Area(s) of the census table {src} match no {area_key!r} of the area layer {layer} "
        f"(it has: {listed[:20]}). Make the names agree in the census table or the area "
        "layer (scenario: demand.area_layer, demand.area_key):"))

    work_crs = areas.estimate_utm_crs() if areas.crs.is_geographic else areas.crs
    ar = gpd.GeoDataFrame({"_key": area_names}, geometry=areas.geometry.values, crs=areas.crs)
    ar = ar[ar["_key"].isin(set(table["_key"]))].to_crs(work_crs).dissolve(by="_key").reset_index()

    report: dict[str, Any] = {"n_residential": 0, "n_outside": 0, "outside_area_m2": 0.0,
                              "n_split": 0, "areas_at_point": []}
    pieces = _residential_pieces(residential, ar, work_crs, weight, report,
                                 trim=remove_overlaps)

    # shares per area
    table = table.set_index("_key")
    wsum = pieces.groupby("_key")["_w"].transform("sum")
    zero = wsum <= 0
    if zero.any():
        bad = sorted(pieces.loc[zero, "_key"].unique())
        warnings.warn(PlannerWarning(
            f"Weight column {weight!r} is 0 on every residential polygon of {bad}; "
            "spreading those areas by residential area instead.",
            f"权重列 {weight!r} 在 {'、'.join(map(str, bad))} 的所有居住用地面上均为 0；"
            "这些地区改按居住用地面积分配。"), stacklevel=2)
        pieces.loc[zero, "_w"] = pieces.loc[zero, "res_area_m2"]
        wsum = pieces.groupby("_key")["_w"].transform("sum")
    pieces["share"] = pieces["_w"] / wsum

    # areas without residential land: one point each, never dropped
    have = set(pieces["_key"])
    empty = [k for k in table.index if k not in have]
    if empty:
        report["areas_at_point"] = empty
        warnings.warn(PlannerWarning(
            f"{len(empty)} area(s) have no residential polygon: {empty[:10]}; their residents "
            "are placed at one representative point inside each area (an estimate; add "
            "residential polygons there for a better spread).",
            f"{len(empty)} 个地区没有居住用地面：{'、'.join(map(str, empty[:10]))}；其人口放在"
            "各自范围内的一个代表点上（估算；补充居住用地面可分配得更好）。"), stacklevel=2)
        pts = ar[ar["_key"].isin(empty)]
        pieces = pd.concat(
            [pieces, gpd.GeoDataFrame({
                "_key": pts["_key"].values, "source_id": None, "name": None,
                "placement": "area_point", "split": False, "res_area_m2": 0.0, "_w": 0.0,
                "share": 1.0, "_campus": False,
            }, geometry=pts.representative_point().values, crs=work_crs)],
            ignore_index=True,
        )
    pieces = pieces.sort_values(["_key", "_order"], na_position="last", kind="stable")
    pieces = pieces.reset_index(drop=True)
    pieces["_campus"] = pieces["_campus"].fillna(False).astype(bool)
    report["campus_share"] = _warn_campus_share(pieces, campus_share_warn)
    pieces["campus_like"] = pieces["_campus"]

    groups = pieces["_key"].to_numpy()
    share = pieces["share"].to_numpy()
    for col in columns:
        pieces[col] = table[col].astype(float).reindex(groups).to_numpy() * share
    # integers: bands by largest remainder; population and older groups as sums of the
    # integer bands (consistent, and still exact per area) where the table agrees with them
    all_bands = all(c in columns for c in BAND_COLUMNS)
    derived = {}
    for col in columns:
        if all_bands and (col == "population" or col in GROUPS):
            parts = list(BAND_COLUMNS) if col == "population" else _band_columns_from(GROUPS[col])
            if np.allclose(table[col].astype(float), table[parts].sum(axis=1), rtol=0, atol=1e-6):
                derived[col] = parts
                continue
        pieces[f"{col}_int"] = largest_remainder(pieces[col].to_numpy(), groups)
    for col, parts in derived.items():
        pieces[f"{col}_int"] = pieces[[f"{c}_int" for c in parts]].sum(axis=1)

    pieces["area"] = groups
    if "code" in table.columns:
        pieces["area_code"] = table["code"].reindex(groups).to_numpy()
    ids = pieces["source_id"].astype(object)
    pieces["id"] = np.where(
        pieces["placement"] == "area_point",
        ["area:" + str(a) for a in pieces["area"]],
        [f"{i}-{a}" if s else str(i)
         for i, a, s in zip(ids, pieces["area"], pieces["split"], strict=True)],
    )
    keep = ["id", "source_id", "name", "area"] + (["area_code"] if "area_code" in pieces else [])
    keep += ["placement", "split", "res_area_m2", "share", "campus_like"]
    keep += [c for col in columns for c in (col, f"{col}_int")]
    out = gpd.GeoDataFrame(pieces[keep], geometry=pieces.geometry, crs=work_crs).to_crs(areas.crs)
    by = "residential area" if weight is None else weight
    method = (f"dasymetric: area totals spread by {by}"
              " (overlay of residential polygons with area boundaries)")
    source = str(totals.attrs.get("source", "census table"))
    notes = {c: f"; the area's {c} = {m}"
             for c, m in totals.attrs.get("group_methods", {}).items()}
    out.attrs["demand_columns"] = {
        **{c: {"estimated": True, "method": method + " (floats)" + notes.get(c, ""),
               "source": source} for c in columns},
        **{f"{c}_int": {"estimated": True,
                        "method": method + " (integers by largest remainder per area)"
                        + notes.get(c, ""),
                        "source": source} for c in columns},
    }
    out.attrs["demand_report"] = report
    return out


def _check_gdf(gdf: object, what: str) -> None:
    import geopandas as gpd

    if not isinstance(gdf, gpd.GeoDataFrame):
        raise DemandError(f"{what} must be a GeoDataFrame, got {type(gdf).__name__}.")
    if gdf.crs is None:
        raise DemandError(
            f"The {what} layer has no CRS. Set it where it is read (scenario: `crs:` of the "
            f"layer, e.g. crs: EPSG:4326) or call gdf.set_crs(...)."
        )


def _residential_pieces(
    residential: gpd.GeoDataFrame | None,
    ar: gpd.GeoDataFrame,
    work_crs: CRS,
    weight: str | None,
    report: dict[str, Any],
    trim: bool = True,
) -> gpd.GeoDataFrame:
    """Residential polygons, overlaps trimmed, cut by the area boundaries, weighted per piece."""
    import geopandas as gpd
    import shapely

    empty = gpd.GeoDataFrame(
        {"_key": pd.Series(dtype=object), "source_id": pd.Series(dtype=object),
         "name": pd.Series(dtype=object), "placement": pd.Series(dtype=object),
         "split": pd.Series(dtype=bool), "res_area_m2": pd.Series(dtype=float),
         "_w": pd.Series(dtype=float), "_order": pd.Series(dtype=float),
         "_campus": pd.Series(dtype=bool)},
        geometry=gpd.GeoSeries([], crs=work_crs), crs=work_crs,
    )
    if residential is None or len(residential) == 0:
        return empty
    _check_gdf(residential, "residential")
    res = residential.to_crs(work_crs)
    kinds = set(res.geom_type.dropna())
    if not kinds <= {"Polygon", "MultiPolygon"}:
        raise DemandError(
            f"Residential layer must hold polygons; it has {sorted(kinds)}. "
            "Give residential-area polygons (e.g. OSM landuse=residential)."
        )
    geom = res.geometry
    invalid = ~geom.is_valid
    if invalid.any():
        warnings.warn(PlannerWarning(
            f"{int(invalid.sum())} residential polygon(s) are invalid (self-intersecting); "
            "repaired with shapely.make_valid.",
            f"{int(invalid.sum())} 个居住用地面无效（自相交），已用 shapely.make_valid 修复。"),
            stacklevel=3)
        geom = gpd.GeoSeries(shapely.make_valid(geom.values), index=res.index, crs=work_crs)
    poly_area = geom.area.to_numpy()
    if trim:
        geom_values, kept = trim_overlaps(geom.values)
        geom = gpd.GeoSeries(geom_values, index=res.index, crs=work_crs)
        _report_overlaps(report, poly_area, kept)
    else:
        kept = poly_area
    if weight is not None:
        if weight not in res.columns:
            raise DemandError(
                f"Weight column {weight!r} is not in the residential layer "
                f"(columns: {list(res.columns)}). Set demand.weight to one of them, or leave it "
                "empty to spread by residential area."
            )
        w = pd.to_numeric(res[weight], errors="coerce").to_numpy(dtype=float)
        bad = np.flatnonzero(~np.isfinite(w) | (w < 0))
        if len(bad):
            rows = [f"row {res.index[i]}: {_show(res[weight].iloc[i])}" for i in bad[:10]]
            raise DemandError(
                f"Weight column {weight!r} of the residential layer needs non-negative numbers; "
                f"{len(bad)} row(s) are not: {rows}. Fill them (0 for no residents) or drop them."
            )
        # a trimmed polygon keeps the share of its weight that its land keeps
        w = w * np.divide(kept, poly_area, out=np.zeros(len(w)), where=poly_area > 0)
    else:
        w = kept
    poly_area = kept
    ids = res["id"].to_numpy() if "id" in res.columns else res.index.to_numpy()
    names = res["name"].to_numpy() if "name" in res.columns else np.full(len(res), None)
    base = gpd.GeoDataFrame(
        {"_rid": np.arange(len(res)), "_wpoly": w, "_apoly": poly_area},
        geometry=geom.values, crs=work_crs,
    )
    with warnings.catch_warnings():
        # polygons that only touch a border give line pieces: dropped on purpose
        warnings.filterwarnings("ignore", message=".*keep_geom_type.*", category=UserWarning)
        cut = gpd.overlay(base, ar[["_key", "geometry"]], how="intersection",
                          keep_geom_type=True)
    cut["res_area_m2"] = cut.area
    cut = cut[cut["res_area_m2"] > 0]
    rid = cut["_rid"].to_numpy()
    counts = np.bincount(rid, minlength=len(res))
    inside = np.bincount(rid, weights=cut["res_area_m2"].to_numpy(), minlength=len(res))
    outside = (counts == 0) & (poly_area > 0)
    report.update(
        n_residential=len(res),
        n_outside=int(outside.sum()),
        outside_area_m2=float(poly_area[outside].sum()),
        n_split=int(((counts > 1) | ((counts == 1) & (inside < poly_area * (1 - 1e-9)))).sum()),
    )
    frac = np.divide(cut["res_area_m2"].to_numpy(), poly_area[rid],
                     out=np.zeros(len(cut)), where=poly_area[rid] > 0)
    return gpd.GeoDataFrame(
        {"_key": cut["_key"].to_numpy(), "source_id": ids[rid], "name": names[rid],
         "placement": "residential", "split": (counts[rid] > 1) | (frac < 1 - 1e-9),
         "res_area_m2": cut["res_area_m2"].to_numpy(), "_w": w[rid] * frac,
         "_order": rid.astype(float), "_campus": campus_like(res)[rid]},
        geometry=cut.geometry.values, crs=work_crs,
    )


def trim_overlaps(polygons: Any) -> tuple[np.ndarray, np.ndarray]:
    """Polygons with their overlaps removed: where polygons overlap, the smallest keeps the land.

    OpenStreetMap often maps a community's whole area and the compounds
    inside it, or one estate twice (a way and a relation); spread over both,
    the same residents would be counted twice.  Every point covered by
    several polygons is given to the smallest of them (the most specific
    outline; ties: the first in order) and cut out of the others, so the
    result covers exactly the union of the input and no point twice.  A
    polygon lying wholly under smaller ones becomes empty.

    Parameters
    ----------
    polygons
        Array, list or GeoSeries of (Multi)Polygons in a metric CRS.

    Returns
    -------
    (geometries, areas)
        The trimmed geometries (same order; empty where nothing is left) and
        their areas.
    """
    import shapely

    geoms = np.asarray(getattr(polygons, "values", polygons), dtype=object).copy()
    area = shapely.area(geoms)
    rank = np.empty(len(geoms), dtype=np.int64)
    rank[np.lexsort((np.arange(len(geoms)), area))] = np.arange(len(geoms))
    i, j = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    smaller = rank[j] < rank[i]
    i, j = i[smaller], j[smaller]
    shared = shapely.area(shapely.intersection(geoms[i], geoms[j])) > 0
    i, j = i[shared], j[shared]
    out = geoms.copy()
    if i.size:
        order = np.argsort(i, kind="stable")
        i, j = i[order], j[order]
        starts = np.flatnonzero(np.r_[True, i[1:] != i[:-1]])
        for s, e in zip(starts, np.r_[starts[1:], i.size], strict=True):
            cut = shapely.difference(geoms[i[s]], shapely.union_all(geoms[j[s:e]]))
            out[i[s]] = shapely.make_valid(cut) if not shapely.is_valid(cut) else cut
    return out, shapely.area(out)


def _report_overlaps(report: dict[str, Any], before: np.ndarray, after: np.ndarray) -> None:
    """Record (and warn about, above 1 % of the land) the overlap `trim_overlaps` removed."""
    removed = float(before.sum() - after.sum())
    union = float(after.sum())
    report.update(overlap_removed_m2=removed, residential_area_sum_m2=float(before.sum()),
                  residential_union_m2=union,
                  n_trimmed=int((after < before * (1 - 1e-9)).sum()),
                  n_covered=int(((after <= 0) & (before > 0)).sum()))
    if union > 0 and removed > OVERLAP_WARN_SHARE * union:
        warnings.warn(PlannerWarning(
            f"demand: residential polygons overlap: their areas sum to "
            f"{before.sum() / 1e6:.2f} km², {before.sum() / union:.2f} times the "
            f"{union / 1e6:.2f} km² they cover. The {removed / 1e6:.2f} km² counted twice "
            f"were removed before spreading residents, so no one is counted twice: where "
            f"polygons overlap, the smaller keeps the shared land ({report['n_trimmed']} "
            f"polygon(s) trimmed, {report['n_covered']} lying wholly under smaller ones got no "
            "residents of their own). Check the residential layer (a community outline over "
            "its compounds, or one estate mapped twice).",
            f"需求：居住用地面相互重叠：面积合计 {before.sum() / 1e6:.2f} km²，是其实际覆盖的 "
            f"{union / 1e6:.2f} km² 的 {before.sum() / union:.2f} 倍。重复计算的 "
            f"{removed / 1e6:.2f} km² 已在分配居民前去除，不会重复计人：两面重叠处，重叠部分归"
            f"较小的面（{report['n_trimmed']} 个面被裁剪，{report['n_covered']} 个完全被较小的面覆盖，"
            "不再单独分配居民）。请检查居住用地图层（是否把社区轮廓叠在其小区之上，或同一小区画了两次）。"),
            stacklevel=4)


def campus_like(polygons: pd.DataFrame) -> np.ndarray:
    """Which residential polygons look like a campus, hospital or sports ground.

    A polygon is flagged when one of its tag columns (``amenity``,
    ``leisure``, ``landuse``, ``building``, ``fclass``, ``type``) holds a value
    of `CAMPUS_TAGS`, or its name (``name``, ``name:zh``, ``name:en``)
    contains a part of `CAMPUS_NAMES` (大学, 医院, 体育, campus, hospital,
    stadium ...) and none of `HOUSING_NAMES` (家属院, 宿舍, 公寓, 小区 ...: a
    university's staff quarters are homes).
    """
    import re

    flag = np.zeros(len(polygons), dtype=bool)
    for col in _TAG_COLUMNS:
        if col in polygons.columns:
            values = polygons[col].astype("string").str.strip().str.lower()
            flag |= values.isin(CAMPUS_TAGS).fillna(False).to_numpy(dtype=bool)
    words = "|".join(re.escape(w) for w in CAMPUS_NAMES)
    homes = "|".join(re.escape(w) for w in HOUSING_NAMES)
    campus_rx = re.compile(rf"(?:{words})", re.IGNORECASE)
    home_rx = re.compile(rf"(?:{homes})", re.IGNORECASE)
    for col in _NAME_COLUMNS:
        if col not in polygons.columns:
            continue
        for k, name in enumerate(polygons[col]):
            if isinstance(name, str) and campus_rx.search(name) and not home_rx.search(name):
                flag[k] = True
    return flag


def _warn_campus_share(pieces: gpd.GeoDataFrame, threshold: float) -> dict[str, float]:
    """Per area, the share of its residents put on campus-like polygons; warn above threshold."""
    if "_campus" not in pieces.columns or not pieces["_campus"].any():
        return {}
    on = pieces["share"].where(pieces["_campus"].astype(bool), 0.0)
    share = on.groupby(pieces["_key"]).sum()
    high = share[share > threshold].sort_values(ascending=False)
    if len(high):
        parts, parts_zh = [], []
        for area, value in high.items():
            names = pieces.loc[(pieces["_key"] == area) & pieces["_campus"].astype(bool), "name"]
            unique = list(dict.fromkeys(str(n) for n in names.dropna()))
            shown = ", ".join(unique)[:200]
            parts.append(f"{area} {value:.0%}" + (f" ({shown})" if shown else ""))
            shown_zh = "、".join(unique)[:200]
            parts_zh.append(f"{area} {value:.0%}" + (f"（{shown_zh}）" if shown_zh else ""))
        warnings.warn(PlannerWarning(
            f"demand: more than {threshold:.0%} of an area's residents are put on polygons "
            "that look like a campus, hospital or sports ground (by name or tag), where few "
            f"people live: {'; '.join(parts)}. Leave them out of the residential layer (e.g. "
            "`where: \"name NOT LIKE '%大学%'\"`), or spread by a weight column "
            "(demand.weight: floor area or dwellings).",
            f"需求：有区域超过 {threshold:.0%} 的居民被分配到看似校园、医院或体育场（按名称或标签"
            f"判断）的面上，而这些地方居住的人很少：{'；'.join(parts_zh)}。请把它们排除在居住用地"
            "图层之外（如 `where: \"name NOT LIKE '%大学%'\"`），或按权重列分配"
            "（demand.weight：建筑面积或住宅套数）。"), stacklevel=3)
    return {str(k): float(v) for k, v in share.items()}


def largest_remainder(values: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
    """Round non-negative values to integers that keep each group's rounded sum exactly.

    Hamilton's largest-remainder method: floor every value, then give one
    more to the largest fractional parts (ties: first in order) until each
    group sums to ``round(sum of its values)``.

    Parameters
    ----------
    values
        Non-negative floats.
    groups
        Group label per value (e.g. the area); None = one group.

    Returns
    -------
    ndarray of int64
    """
    v = np.asarray(values, dtype=float)
    if groups is None:
        groups = np.zeros(len(v), dtype=int)
    codes, uniq = pd.factorize(np.asarray(groups), sort=False)
    fl = np.floor(v + 1e-9)
    rem = v - fl
    target = np.round(np.bincount(codes, weights=v, minlength=len(uniq)))
    deficit = (target - np.bincount(codes, weights=fl, minlength=len(uniq))).astype(np.int64)
    order = np.lexsort((np.arange(len(v)), -rem, codes))
    sorted_codes = codes[order]
    starts = np.searchsorted(sorted_codes, np.arange(len(uniq)))
    rank = np.arange(len(v)) - starts[sorted_codes]
    add = np.zeros(len(v), dtype=np.int64)
    add[order] = (rank < deficit[sorted_codes]).astype(np.int64)
    return fl.astype(np.int64) + add


def demand_columns(gdf: pd.DataFrame, *, layer: str = "population") -> pd.DataFrame:
    """The ``attrs["demand_columns"]`` of an estimate as a table.

    Columns: layer, column, estimated, method, source.
    """
    info = gdf.attrs.get("demand_columns", {})
    return pd.DataFrame(
        [{"layer": layer, "column": c, **v} for c, v in info.items()],
        columns=["layer", "column", "estimated", "method", "source"],
    )


def parent_areas(
    table: pd.DataFrame,
    areas: gpd.GeoDataFrame | None = None,
    *,
    by: str = "district",
    area_key: str = "name",
    parents: gpd.GeoDataFrame | None = None,
    parent_key: str = "name",
) -> dict[str, str]:
    """Each census area's higher-level area (its district), for `older_groups` ``parent=``.

    Taken from the first that names it: the census table's ``by`` column
    (`read_census` keeps a ``区县``/``district`` column as ``district``), the
    area layer's ``by`` column (matched on ``area_key``), or the ``parents``
    polygon (e.g. the districts layer, named by ``parent_key``) that holds
    the area's representative point.

    Returns
    -------
    dict
        Census area name -> higher-level area name (whitespace removed); areas
        found by none of these are left out (`older_groups` names them).
    """
    names = table["name"].map(_clean_name).tolist()
    out: dict[str, str] = {}
    if by in table.columns:
        out.update({n: _clean_name(p) for n, p in zip(names, table[by], strict=True)
                    if isinstance(p, str) and p.strip()})
    if areas is not None and area_key in areas.columns:
        keys = areas[area_key].map(_clean_name)
        if by in areas.columns:
            for n, p in zip(keys, areas[by], strict=True):
                if isinstance(p, str) and p.strip():
                    out.setdefault(n, _clean_name(p))
        if parents is not None and parent_key in parents.columns:
            import geopandas as gpd

            rest = ~keys.isin(list(out)) & keys.isin(names)
            if rest.any():
                pts = gpd.GeoDataFrame({"_k": keys[rest].to_numpy()},
                                       geometry=areas.geometry[rest].representative_point()
                                       .to_numpy(), crs=areas.crs)
                hit = gpd.sjoin(pts, parents[[parent_key, "geometry"]].to_crs(areas.crs),
                                how="inner", predicate="within")
                for k, p in zip(hit["_k"], hit[parent_key], strict=True):
                    out.setdefault(k, _clean_name(p))
    return {n: out[n] for n in names if n in out}


# --------------------------------------------------------------------------- population units
def estimate_population(
    areas: gpd.GeoDataFrame,
    table: pd.DataFrame,
    residential: gpd.GeoDataFrame | None,
    *,
    area_key: str = "name",
    area_column: Literal["district", "township"] = "district",
    weight: str | None = None,
    source: str = "",
    lang: Literal["zh", "en"] = "zh",
) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """A population layer estimated from a census table over residential land.

    `allocate` spreads each area's counts over its residential polygons;
    the result is a canonical population layer with integer counts, the
    area's name in ``area_column`` (and ``district`` when the township
    boundaries carry one).  Warns when residential polygons lie outside
    every census area, or when an area's residential land is implausibly
    small per resident (incomplete OpenStreetMap land use).

    Returns
    -------
    (population layer, table of estimated columns with method and ``source``)
    """
    est = allocate(areas, table, residential, area_key=area_key, weight=weight)
    population = _population_layer(est, area_column, lang=lang)
    if area_column == "township" and "district" in areas.columns:
        names = areas[area_key].map(_clean_name)
        population["district"] = population["township"].map(
            dict(zip(names, areas["district"], strict=True)))
    info = demand_columns(est)
    info = info[info["column"].str.endswith("_int")].assign(
        column=lambda d: d["column"].str.removesuffix("_int"), source=source)
    info = info[info["column"].isin(population.columns)]
    rep = est.attrs["demand_report"]
    if rep["n_outside"]:
        warnings.warn(PlannerWarning(
            f"demand: {rep['n_outside']} residential polygon(s) "
            f"({rep['outside_area_m2'] / 1e6:.2f} km²) lie outside every census area "
            "and got no residents.",
            f"需求：{rep['n_outside']} 个居住用地面（{rep['outside_area_m2'] / 1e6:.2f} km²）"
            "不在任何普查地区内，未分配人口。"), stacklevel=2)
    sparse = _thin_residential_land(est, table, weight)
    if sparse:
        warnings.warn(PlannerWarning(
            "demand: residential land looks incomplete in "
            + ", ".join(f"{a} ({m2:.1f} m² per resident)" for a, m2 in sparse)
            + f": below {MIN_RES_M2_PER_RESIDENT:g} m² per resident, far less than even "
            "dense high-rise housing has, so each polygon gets too many residents and "
            "areas are spread unevenly (OpenStreetMap's landuse=residential is often "
            "incomplete). Treat these estimates as rough; complete the residential layer "
            "or give a weight column (demand.weight: floor area or dwellings).",
            "需求：居住用地似乎不完整："
            + "、".join(f"{a}（人均 {m2:.1f} m²）" for a, m2 in sparse)
            + f"，低于人均 {MIN_RES_M2_PER_RESIDENT:g} m²，远少于即使是高密度高层住区的水平，"
            "因此每个用地面分到的人口过多、地区内分布不均（OpenStreetMap 的 "
            "landuse=residential 常不完整）。这些估算只能作粗略参考；请补全居住用地图层，或"
            "给出权重列（demand.weight：建筑面积或住宅套数）。"), stacklevel=2)
    return population, info


#: Chinese names of the census area columns, for messages.
_AREA_ZH = {"district": "区县", "township": "街镇"}

#: incomplete: dense high-rise compounds still have well over this.
MIN_RES_M2_PER_RESIDENT = 8.0


def _thin_residential_land(est: gpd.GeoDataFrame, table: pd.DataFrame,
                           weight: str | None) -> list[tuple[str, float]]:
    """Areas whose residential land per census resident is implausibly small."""
    if weight is not None or "population" not in table.columns:
        return []
    land = est.loc[est["placement"] == "residential"].groupby("area")["res_area_m2"].sum()
    people = table.set_index(table["name"].map(_clean_name))["population"].astype(float)
    per = (land / people.reindex(land.index)).dropna()
    return [(str(a), float(v)) for a, v in per.items() if v < MIN_RES_M2_PER_RESIDENT]


def _population_layer(est: gpd.GeoDataFrame, area_col: str, *,
                      lang: Literal["zh", "en"]) -> gpd.GeoDataFrame:
    """Canonical population layer from an `allocate` result (integer counts)."""
    import geopandas as gpd

    out = pd.DataFrame({"id": est["id"].astype(str)})
    label = "居住用地" if lang == "zh" else "residential"
    point = "（区域代表点）" if lang == "zh" else " (area point)"
    names = []
    for n, a, pl, i in zip(est["name"], est["area"], est["placement"], range(len(est)),
                           strict=True):
        if pl == "area_point":
            names.append(f"{a}{point}")
        elif isinstance(n, str) and n.strip():
            names.append(n)
        else:
            names.append(f"{a} {label} {i + 1}")
    out["name"] = names
    for c in ("population", "pop_60plus", "pop_65plus", "pop_80plus", "households"):
        if f"{c}_int" in est.columns:
            out[c] = est[f"{c}_int"].to_numpy()
    out[area_col] = est["area"].to_numpy()
    out["res_area_m2"] = est["res_area_m2"].to_numpy()
    out["placement"] = est["placement"].to_numpy()
    return gpd.GeoDataFrame(out, geometry=est.geometry.values, crs=est.crs)


def fill_groups(
    population: gpd.GeoDataFrame,
    table: pd.DataFrame,
    areas: gpd.GeoDataFrame | None,
    *,
    area_column: Literal["district", "township"] = "district",
    area_key: str = "name",
    area_layer: str = "districts",
    source: str = "",
) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """Give a population layer its area column and any missing older group (area shares).

    A unit without an ``area_column`` value gets the area (``areas``, named
    by ``area_key``) its representative point lies in.  Each older group
    (and households) the layer lacks is the unit's population times its
    area's census share, with a warning; ``source`` names the census table
    in messages and in the returned table of estimated columns.
    """
    area_col = area_column
    pop = population.copy()
    if area_col not in pop.columns or pop[area_col].isna().all():
        if areas is None:
            raise DemandError(
                f"The population layer has no {area_col!r} column and no "
                f"layers.{area_layer} was given to find each unit's area: add either."
            )
        import geopandas as gpd

        pts = gpd.GeoDataFrame(geometry=pop.geometry.representative_point(), crs=pop.crs)
        ar = areas[[area_key, "geometry"]].to_crs(pop.crs)
        hit = gpd.sjoin(pts, ar, how="left", predicate="within")
        hit = hit[~hit.index.duplicated()]
        pop[area_col] = hit[area_key].map(_clean_name).to_numpy()
        if pop[area_col].isna().any():
            raise DemandError(
                f"{int(pop[area_col].isna().sum())} population unit(s) lie in no "
                f"{area_layer} boundary; fill their {area_col!r} column."
            )
    pop[area_col] = pop[area_col].map(_clean_name)
    rows = []
    key = table.set_index(table["name"].map(_clean_name))
    for g in ("pop_60plus", "pop_65plus", "pop_80plus", "households"):
        if g in pop.columns and pop[g].notna().all():
            continue
        if "population" not in pop.columns or g not in key.columns:
            continue
        unknown = sorted(set(pop[area_col]) - set(key.index))
        if unknown:
            _match_names(unknown, key.index.tolist(), what=area_col, header=(
                f"Population layer: its {area_col!r} value(s) below match no area of the census "
                f"table {source} (it lists: {key.index.tolist()[:20]}). Set "
                "demand.area_layer to the level of the census table (districts or townships), "
                "or make the names agree:"))
        ratio = (key[g] / key["population"]).reindex(pop[area_col]).to_numpy()
        est = pop["population"].to_numpy(float) * ratio
        if g in pop.columns:
            est = np.where(pop[g].isna(), est, pop[g].to_numpy(float))
        pop[g] = est
        note = table.attrs.get("group_methods", {}).get(g)
        how = (f"unit population × its {area_col}'s census share of {g}" if note is None else
               f"unit population × its {area_col}'s share of {g} (the {area_col}'s {g} = "
               f"{note})")
        rows.append({"layer": "population", "column": g, "estimated": True,
                     "method": how, "source": str(source)})
    if rows:
        cols = ", ".join(r["column"] for r in rows)
        warnings.warn(PlannerWarning(
            f"Population layer: {cols} estimated from each "
            f"unit's population and its {area_col}'s census shares.",
            f"人口图层：{cols} 按各单元常住人口及其所在{_AREA_ZH.get(area_col, area_col)}的"
            "普查比例估算。"), stacklevel=3)
    return pop, pd.DataFrame(rows, columns=["layer", "column", "estimated", "method", "source"])
