"""Stacked and failed geocodes, and rows lying in another township than they say.

A register geocoded through a web-map API puts every address the geocoder
cannot find on one fallback point (the city's centre square, a district
office): many unrelated rows then share one coordinate.  `check_stacked`
finds the groups of rows within ``tolerance_m`` of one another and says
which look like such fallbacks; those are excluded from the analysis
(``excluded = "stacked_geocode"``) unless the user accepts them.
`township_mismatch` lists rows whose ``township`` column names another
township than the polygon they lie in.

A group of stacked rows looks like a geocoder fallback when any of these
holds (a nursing home and its day-care centre in one building, two rows at
one address in one community, do not):

* it has `FALLBACK_ROWS` rows or more (three facilities on one point);
* its rows name different townships or communities (one point cannot be
  in two);
* the point lies more than ``mismatch_m`` outside the township a row's
  ``township`` column names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import shapely

from planner.checks._common import (
    both,
    flag_excluded,
    join,
    label,
    name_key,
    pick,
    polygon_lookup,
    warn,
)
from planner.defaults import STACK_TOLERANCE_M, TOWNSHIP_MISMATCH_M

if TYPE_CHECKING:
    import geopandas as gpd

__all__ = ["ACCEPT_COLUMN", "FALLBACK_ROWS", "STACKED", "check_stacked", "stack_groups",
           "township_mismatch"]

#: The ``excluded`` reason of rows in a stack that looks like a geocoder fallback.
STACKED = "stacked_geocode"
#: A per-row column: a true value (1, true, yes, 是) keeps the row even when it is stacked.
ACCEPT_COLUMN = "accept_stacked"
#: Stacks of this many rows or more look like a geocoder's fallback point.
FALLBACK_ROWS = 3

_TRUE = {"1", "1.0", "true", "t", "yes", "y", "是", "√", "x", "接受"}


def _metric(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    if gdf.crs is not None and gdf.crs.is_geographic:
        return gdf.to_crs(gdf.estimate_utm_crs())
    return gdf


def _points(gdf: gpd.GeoDataFrame) -> np.ndarray:
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    is_point = shapely.get_type_id(geoms) == 0
    if not is_point.all():
        geoms = geoms.copy()
        geoms[~is_point] = shapely.point_on_surface(geoms[~is_point])
    return geoms


def stack_groups(gdf: gpd.GeoDataFrame, *, tolerance_m: float = STACK_TOLERANCE_M) -> np.ndarray:
    """Group number of each row sharing a coordinate with another (0 = alone).

    Rows within ``tolerance_m`` metres of one another (chained) form a
    group; groups are numbered 1, 2, … from the largest.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(gdf)
    if n < 2:
        return np.zeros(n, np.int64)
    pts = _points(_metric(gdf))
    tree = shapely.STRtree(pts)
    i, j = tree.query(pts, predicate="dwithin", distance=float(tolerance_m))
    keep = i != j
    graph = coo_matrix((np.ones(keep.sum()), (i[keep], j[keep])), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    sizes = np.bincount(comp)
    stacked = sizes[comp] > 1
    groups = np.zeros(n, np.int64)
    if stacked.any():
        roots = np.unique(comp[stacked])
        first = np.array([np.flatnonzero(comp == r)[0] for r in roots])
        order = roots[np.lexsort((first, -sizes[roots]))]
        number = {int(r): k + 1 for k, r in enumerate(order)}
        groups[stacked] = [number[int(c)] for c in comp[stacked]]
    return groups


def _accepted(gdf: pd.DataFrame) -> np.ndarray:
    if ACCEPT_COLUMN not in gdf.columns:
        return np.zeros(len(gdf), bool)
    col = gdf[ACCEPT_COLUMN]
    if pd.api.types.is_bool_dtype(col):
        return col.fillna(False).to_numpy(dtype=bool)
    return col.map(lambda v: pd.notna(v) and str(v).strip().lower() in _TRUE).to_numpy(dtype=bool)


_REASONS = {
    "rows": {"zh": "同一点上有 {n} 条记录", "en": "{n} rows on one point"},
    "places": {"zh": "登记的街道/社区各不相同", "en": "different townships or communities stated"},
    "outside": {"zh": "位于登记街道之外", "en": "outside the township stated"},
    "accepted": {"zh": "已接受", "en": "accepted"},
}


def _distinct(values: pd.Series) -> int:
    return len({k for k in (name_key(v) for v in values) if k is not None})


def _group_reasons(gdf: pd.DataFrame, rows: np.ndarray, outside: np.ndarray) -> list[str]:
    """Why the stack of ``rows`` looks like a fallback (keys of `_REASONS`; empty = it does not)."""
    reasons = []
    if rows.size >= FALLBACK_ROWS:
        reasons.append("rows")
    sub = gdf.iloc[rows]
    if any(col in sub.columns and _distinct(sub[col]) > 1 for col in ("township", "community")):
        reasons.append("places")
    if outside[rows].any():
        reasons.append("outside")
    return reasons


def _outside_stated(gdf: gpd.GeoDataFrame, townships: gpd.GeoDataFrame | None,
                    tolerance_m: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: lies farther than ``tolerance_m`` outside its stated township; that distance; known.

    ``known`` is False where the row states no township or one the
    townships layer does not have.
    """
    n = len(gdf)
    far, dist, known = np.zeros(n, bool), np.full(n, np.nan), np.zeros(n, bool)
    if townships is None or not len(townships) or "township" not in gdf.columns:
        return far, dist, known
    if townships.crs is not None and gdf.crs is not None and not townships.crs.equals(gdf.crs):
        townships = townships.to_crs(gdf.crs)
    lookup = polygon_lookup(townships)
    keys = [name_key(v) for v in gdf["township"]]
    named = np.array([lookup.get(k) if k is not None else None for k in keys], dtype=object)
    known = np.array([g is not None for g in named], bool)
    if known.any():
        pts = _points(gdf)
        dist[known] = shapely.distance(pts[known], named[known])
        far[known] = dist[known] > tolerance_m
    return far, dist, known


_STACKED = {
    "zh": "{what}：{n} 条记录共用 {k} 个坐标点（彼此相距不到 {tol:g} 米），疑似地理编码失败（地理编码服务找不到"
          "地址时，会把它们放到同一个默认点上，如市中心广场）：{groups}。这些记录不计入步行可达性、服务范围、"
          "规范核查和地图（excluded = stacked_geocode）。请重新对其地址进行地理编码；若位置确实无误，请在情景文件"
          "的 layers.{what} 下设置 `accept_stacked: true`，或为这些记录填写 accept_stacked = 1。",
    "en": "{what}: {n} rows share {k} point(s) (within {tol:g} m of one another) and look like "
          "failed geocodes (a geocoder puts addresses it cannot find on one fallback point, such "
          "as the city's central square): {groups}. They are left out of walking access, service "
          "areas, norm checks and maps (excluded = stacked_geocode). Geocode their addresses "
          "again; if the locations are right, set `accept_stacked: true` for layers.{what} in "
          "the scenario, or give these rows accept_stacked = 1.",
}
_KEPT = {
    "zh": "{what}：{n} 条记录共用 {k} 个坐标点（彼此相距不到 {tol:g} 米），已保留在分析中：{groups}。"
          "同一地址有多个机构（如同一栋楼里的养老院和日间照料中心）属正常；若为地理编码失败，请修正其坐标。",
    "en": "{what}: {n} rows share {k} point(s) (within {tol:g} m of one another) and are kept "
          "in the analysis: {groups}. Several services at one address (a home and its day-care "
          "centre in one building) are normal; if these are failed geocodes, fix their "
          "coordinates.",
}


def _group_text(gdf: gpd.GeoDataFrame, rows: np.ndarray, reasons: list[str], lonlat: np.ndarray,
                lang: str) -> str:
    names = join([label(gdf, int(r)) for r in rows], lang)
    why = ("；" if lang != "en" else "; ").join(
        pick(lang, _REASONS[r], n=rows.size) for r in reasons)
    x, y = lonlat[rows[0]]
    where = f"{x:.5f}, {y:.5f}"
    if lang == "en":
        rows_en = "1 row" if rows.size == 1 else f"{rows.size} rows"
        return f"[{rows_en} at {where}: {names}" + (f"; {why}]" if why else "]")
    return f"【{where} 处 {rows.size} 条：{names}" + (f"；{why}】" if why else "】")


def _lonlat(gdf: gpd.GeoDataFrame) -> np.ndarray:
    pts = _points(gdf)
    if gdf.crs is not None and not gdf.crs.is_geographic:
        import geopandas as gpd

        pts = np.asarray(gpd.GeoSeries(pts, crs=gdf.crs).to_crs(4326).values, dtype=object)
    return np.column_stack([shapely.get_x(pts), shapely.get_y(pts)])


def check_stacked(
    gdf: gpd.GeoDataFrame,
    *,
    tolerance_m: float = STACK_TOLERANCE_M,
    townships: gpd.GeoDataFrame | None = None,
    mismatch_m: float = TOWNSHIP_MISMATCH_M,
    accept: bool = False,
    what: str = "facilities",
) -> gpd.GeoDataFrame:
    """Flag rows sharing a coordinate; exclude stacks that look like geocoder fallbacks.

    Parameters
    ----------
    gdf
        A point layer (facilities), in a metric CRS (reprojected otherwise).
    tolerance_m
        Rows closer than this (metres) share a point.
    townships
        Township boundaries: a stack lying more than ``mismatch_m`` outside
        the township a row names looks like a fallback.
    accept
        Keep every stack in the analysis (``accept_stacked: true`` in a
        scenario).  Rows with a true ``accept_stacked`` column are kept
        either way.
    what
        The layer's name in the warnings.

    Returns
    -------
    GeoDataFrame
        A copy with ``stack_group`` (0 = alone, else the group number),
        ``geocode_fallback`` (the stack looks like a fallback) and
        ``excluded`` (``stacked_geocode`` added for fallback rows not
        accepted).  `PlannerWarning`s list the excluded and the kept stacks
        by name.
    """
    out = gdf.copy()
    groups = stack_groups(out, tolerance_m=tolerance_m)
    out["stack_group"] = groups
    out["geocode_fallback"] = False
    if "excluded" not in out.columns:
        out["excluded"] = ""
    if not groups.any():
        return out
    outside, _, _ = _outside_stated(_metric(out), townships, mismatch_m)
    accepted = _accepted(out) | bool(accept)
    lonlat = _lonlat(out)
    fallback = np.zeros(len(out), bool)
    dropped, kept = [], []
    for g in range(1, int(groups.max()) + 1):
        rows = np.flatnonzero(groups == g)
        reasons = _group_reasons(out, rows, outside)
        if reasons:
            fallback[rows] = True
        gone = rows[~accepted[rows]] if reasons else rows[:0]
        if gone.size:
            dropped.append((gone, reasons))
        stay = np.setdiff1d(rows, gone)
        if stay.size:
            kept.append((stay, reasons + (["accepted"] if reasons else [])))
    out["geocode_fallback"] = fallback
    values = {"what": what, "tol": tolerance_m}
    for found, texts in ((dropped, _STACKED), (kept, _KEPT)):
        if not found:
            continue
        n = sum(r.size for r, _ in found)
        if texts is _STACKED:
            mask = np.zeros(len(out), bool)
            mask[np.concatenate([r for r, _ in found])] = True
            flag_excluded(out, mask, STACKED)
        warn(*both(lambda lang, found=found, texts=texts, n=n: pick(
            lang, texts, n=n, k=len(found), groups=join(
                [_group_text(out, r, why, lonlat, lang) for r, why in found], lang, limit=8),
            **values)))
    return out


# ------------------------------------------------------------------------ township names
_MISMATCH = {
    "zh": "{what}：{n} 条记录所在位置与其“街道/乡镇”列登记的不符（在登记街道之外超过 {tol:g} 米）：{rows}。"
          "请检查这些记录的坐标（坐标系偏移？地理编码失败？）或街道名称；规范核查在该列有值时按该列归属街道。",
    "en": "{what}: {n} row(s) lie in another township than their `township` column names "
          "(more than {tol:g} m outside it): {rows}. Check their coordinates (a datum offset? a "
          "failed geocode?) or the names; the norm checks place rows by the township column "
          "where it is filled.",
}
_ROW = {
    "zh": "{row}（登记为{said}，实际位于{lies}，距登记街道 {d:.0f} 米）",
    "en": "{row} (says {said}, lies in {lies}, {d:.0f} m outside it)",
}
_NOWHERE = {"zh": "任何街道之外", "en": "no township"}


def township_mismatch(
    gdf: gpd.GeoDataFrame,
    townships: gpd.GeoDataFrame,
    *,
    tolerance_m: float = TOWNSHIP_MISMATCH_M,
    what: str = "facilities",
) -> pd.DataFrame:
    """Rows whose ``township`` column names another township than the one they lie in.

    Points (polygons: a point on their surface) lying more than
    ``tolerance_m`` metres outside the township their ``township`` column
    names.  Rows naming no township, or one the layer does not have, are
    not judged here (the norm checks list unknown names).

    Returns
    -------
    DataFrame
        ``position, id, name, township, lies_in, outside_m`` (one row per
        mismatch; empty when none), also listed in a `PlannerWarning`.
    """
    cols = ["position", "id", "name", "township", "lies_in", "outside_m"]
    if townships is None or not len(townships) or "township" not in gdf.columns:
        return pd.DataFrame(columns=cols)
    metric = _metric(gdf)
    if townships.crs is not None and not townships.crs.equals(metric.crs):
        townships = townships.to_crs(metric.crs)
    far, dist, _ = _outside_stated(metric, townships, tolerance_m)
    rows = np.flatnonzero(far)
    if not rows.size:
        return pd.DataFrame(columns=cols)
    pts = _points(metric)[rows]
    polys = np.asarray(townships.geometry.values, dtype=object)
    names = (townships["name"].astype(str).to_numpy() if "name" in townships.columns
             else np.arange(len(townships)).astype(str))
    tree = shapely.STRtree(polys)
    pi, ti = tree.query(pts, predicate="within")
    lies = np.full(rows.size, None, dtype=object)
    lies[pi[::-1]] = names[ti[::-1]]  # the first polygon holding the point wins
    table = pd.DataFrame({
        "position": rows,
        "id": gdf["id"].to_numpy()[rows] if "id" in gdf.columns else rows + 1,
        "name": gdf["name"].to_numpy()[rows] if "name" in gdf.columns else None,
        "township": gdf["township"].to_numpy()[rows],
        "lies_in": lies,
        "outside_m": dist[rows],
    }, columns=cols)
    order = np.argsort(-dist[rows], kind="stable")

    def text(lang: str) -> str:
        texts = [pick(lang, _ROW, row=label(gdf, int(rows[k])), said=table["township"].iloc[k],
                      lies=lies[k] if lies[k] is not None else pick(lang, _NOWHERE),
                      d=dist[rows][k]) for k in order]
        return pick(lang, _MISMATCH, what=what, n=rows.size, tol=tolerance_m,
                    rows=join(texts, lang))

    warn(*both(text))
    return table
