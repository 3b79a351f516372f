"""The study area: which facilities and candidates it holds, and which layers miss it.

The study area is the union of the boundary layers given (townships,
districts); without them, the walk network's extent (the convex hull of its
nodes) plus a buffer.  `flag_study_area` marks each facility or candidate
``in_study_area``; a row outside that residents inside cannot reach within
the cut-off also gets ``excluded = "outside_study_area"``.  The pipeline then
leaves excluded rows out of walking access, service areas, the location
models and the maps, and counts only rows inside the area (and not
excluded) in the headline counts and the norm checks: `in_use` and
`counted` are those two selections.  A facility just outside the border
that residents can walk to keeps serving them in walking access.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyproj
import shapely

from planner.checks._common import (
    DEFAULT_LANG,
    both,
    flag_excluded,
    join,
    label,
    pick,
    warn,
)
from planner.defaults import CUTOFF_MIN, MAX_SNAP_M, STUDY_AREA_BUFFER_M

if TYPE_CHECKING:
    import geopandas as gpd

    from planner.access import Snapped
    from planner.network import WalkNetwork

__all__ = ["EXCLUDED", "IN_STUDY_AREA", "OUTSIDE", "StudyArea", "check_overlap", "counted",
           "flag_study_area", "in_use", "network_extent", "rows_counted", "rows_in_use",
           "study_area"]

#: Column: True where a row lies inside the study area.
IN_STUDY_AREA = "in_study_area"
#: Column: why a row is left out of the analysis (``""`` = used; reasons joined by ``;``).
EXCLUDED = "excluded"
#: The ``excluded`` reason of rows outside the study area and beyond reach.
OUTSIDE = "outside_study_area"

_LAYER_ZH = {"townships": "乡镇街道", "districts": "区县", "population": "人口", "facilities": "设施",
             "candidates": "候选点", "gates": "小区出入口", "residential": "居住用地",
             "water": "水系", "parks": "公园"}


@dataclass(frozen=True)
class StudyArea:
    """The area a study counts: a polygon, its CRS, and what it was made from.

    ``source`` names the boundary layers unioned (``("townships",
    "districts")``) or is ``("network",)`` for the network's extent grown by
    ``buffer_m`` metres.
    """

    geometry: shapely.Geometry
    crs: pyproj.CRS
    source: tuple[str, ...]
    buffer_m: float = 0.0

    @property
    def from_network(self) -> bool:
        """Whether the area is the network's extent (no boundary layer was given)."""
        return self.source == ("network",)

    def describe(self, lang: str = DEFAULT_LANG) -> str:
        """What the area is, in words (for messages)."""
        if self.from_network:
            return pick(lang, {"zh": "路网范围外扩 {b:g} 米", "en": "the walk network's extent "
                               "plus {b:g} m"}, b=self.buffer_m)
        if lang == "en":
            if len(self.source) == 1:
                return f"the {self.source[0]} layer"
            return "the union of the " + " and ".join(self.source) + " layers"
        return "、".join(_LAYER_ZH.get(s, s) for s in self.source) + "边界的合并范围"

    def geometry_in(self, crs: Any) -> shapely.Geometry:
        """The area's polygon in ``crs`` (as it is when ``crs`` is None or the same)."""
        if crs is None or self.crs is None or pyproj.CRS.from_user_input(crs).equals(self.crs):
            return self.geometry
        import geopandas as gpd

        return gpd.GeoSeries([self.geometry], crs=self.crs).to_crs(crs).iloc[0]

    def holds(self, gdf: gpd.GeoDataFrame) -> np.ndarray:
        """True for each row of ``gdf`` (any CRS) that intersects the area."""
        geom = self.geometry_in(gdf.crs)
        shapely.prepare(geom)
        return shapely.intersects(geom, np.asarray(gdf.geometry.values, dtype=object))

    def to_frame(self) -> gpd.GeoDataFrame:
        """The area as a one-row GeoDataFrame (``source``, ``buffer_m``, geometry)."""
        import geopandas as gpd

        return gpd.GeoDataFrame({"source": [",".join(self.source)], "buffer_m": [self.buffer_m]},
                                geometry=[self.geometry], crs=self.crs)


def network_extent(net: WalkNetwork) -> shapely.Geometry:
    """The convex hull of the network's nodes (network CRS), cached on the network."""
    return net.cached("convex_hull", lambda: shapely.convex_hull(
        shapely.multipoints(np.column_stack([net.node_x, net.node_y]))))


def study_area(boundaries: Mapping[str, gpd.GeoDataFrame | None] | None = None, *,
               network: WalkNetwork | None = None,
               buffer_m: float = STUDY_AREA_BUFFER_M) -> StudyArea | None:
    """The study area: the union of the boundary layers, else the network's extent + buffer.

    Parameters
    ----------
    boundaries
        Boundary layers by name (``{"townships": ..., "districts": ...}``);
        ``None`` values and empty layers are skipped.  All are unioned in
        the first layer's CRS.
    network
        The walk network, used when no boundary layer is given.
    buffer_m
        How far beyond the network's extent (convex hull of its nodes) the
        area reaches, metres.

    Returns
    -------
    StudyArea or None
        ``None`` when there is neither a boundary layer nor a network.
    """
    given = {k: g for k, g in (boundaries or {}).items() if g is not None and len(g)}
    if given:
        crs = next(iter(given.values())).crs
        geoms = [np.asarray((g if g.crs is None or g.crs.equals(crs) else g.to_crs(crs))
                            .geometry.values, dtype=object) for g in given.values()]
        union = shapely.make_valid(shapely.union_all(np.concatenate(geoms)))
        return StudyArea(union, crs, tuple(given))
    if network is None or network.n_nodes == 0:
        return None
    hull = network_extent(network)
    return StudyArea(shapely.buffer(hull, float(buffer_m)), network.crs, ("network",),
                     float(buffer_m))


# ------------------------------------------------------------------------ selections
def in_use(gdf: pd.DataFrame | None) -> np.ndarray:
    """Rows used in walking access, service areas, location models and maps.

    All rows, except those whose ``excluded`` column gives a reason.
    """
    if gdf is None:
        return np.zeros(0, bool)
    if EXCLUDED not in gdf.columns:
        return np.ones(len(gdf), bool)
    ex = gdf[EXCLUDED]
    return np.array(ex.isna() | (ex.astype(str).str.strip() == ""), dtype=bool)


def counted(gdf: pd.DataFrame | None) -> np.ndarray:
    """Rows counted in headline counts and norm checks: `in_use` and inside the study area."""
    ok = in_use(gdf)
    if gdf is not None and IN_STUDY_AREA in gdf.columns:
        ok = ok & gdf[IN_STUDY_AREA].fillna(True).astype(bool).to_numpy()
    return ok


def _rows(gdf: gpd.GeoDataFrame | None, keep: np.ndarray) -> gpd.GeoDataFrame | None:
    return gdf if gdf is None or keep.all() else gdf[keep].reset_index(drop=True)


def rows_in_use(gdf: gpd.GeoDataFrame | None) -> gpd.GeoDataFrame | None:
    """The `in_use` rows of a layer (the layer itself when all are; ``None`` stays ``None``)."""
    return _rows(gdf, in_use(gdf))


def rows_counted(gdf: gpd.GeoDataFrame | None) -> gpd.GeoDataFrame | None:
    """The `counted` rows of a layer (the layer itself when all are; ``None`` stays ``None``)."""
    return _rows(gdf, counted(gdf))


# ------------------------------------------------------------------------ flags
_OUTSIDE = {
    "zh": "{what}：{n} 条记录位于研究范围（{area}）之外，且范围内居民在 {cut:g} 分钟内步行不可达："
          "{rows}。这些记录保留在图层中（in_study_area = false，excluded = outside_study_area），"
          "但不计入设施数量、规范核查、步行可达性、服务范围和地图范围。若它们本应在范围内，请检查坐标；"
          "若登记表覆盖全市，这是预期结果。",
    "en": "{what}: {n} row(s) lie outside the study area ({area}) and beyond what its "
          "residents reach within the {cut:g}-minute cut-off: {rows}. They stay in the layer "
          "(in_study_area = false, excluded = outside_study_area) and are left out of counts, "
          "norm checks, walking access, service areas and map extents. Check their coordinates "
          "if they belong inside; for a city-wide register this is expected.",
}
_NEAR = {
    "zh": "{what}：{n} 条记录位于研究范围（{area}）之外，但范围内居民可在 {cut:g} 分钟内步行到达：{rows}。"
          "它们计入步行可达性和服务范围（居民可就近使用），但不计入设施数量和规范核查。",
    "en": "{what}: {n} row(s) lie just outside the study area ({area}) but residents inside "
          "reach them within {cut:g} minutes: {rows}. They count in walking access and "
          "service areas (residents can use them) but not in counts or norm checks.",
}
_UNKNOWN = {
    "zh": "{what}：{n} 条记录位于研究范围（{area}）之外：{rows}。它们不计入设施数量和规范核查；"
          "居民能否步行到达，要在构建路网后判断。",
    "en": "{what}: {n} row(s) lie outside the study area ({area}): {rows}. They are not "
          "counted in counts or norm checks; whether residents can walk to them is decided "
          "once the walk network is built.",
}


def _km(d: float, lang: str) -> str:
    if d >= 1000:
        return f"{d / 1000:.1f} km" if lang == "en" else f"{d / 1000:.1f} 公里"
    return f"{d:.0f} m" if lang == "en" else f"{d:.0f} 米"


def _reach(gdf: gpd.GeoDataFrame, rows: np.ndarray, net: WalkNetwork, residents: Snapped,
           cutoff_min: float, max_snap_m: float) -> np.ndarray:
    """True for the ``rows`` residents reach within ``cutoff_min`` (snap walks included)."""
    from planner.access import nearest_times, snap_points

    snapped = snap_points(net, gdf.iloc[rows], max_snap_m=max_snap_m, warn=False)
    seconds, _ = nearest_times(net, residents, snapped, cutoff_s=cutoff_min * 60.0)
    return np.isfinite(seconds)


def flag_study_area(
    gdf: gpd.GeoDataFrame,
    area: StudyArea,
    *,
    network: WalkNetwork | None = None,
    residents: Snapped | None = None,
    cutoff_min: float = CUTOFF_MIN,
    max_snap_m: float = MAX_SNAP_M,
    what: str = "facilities",
) -> gpd.GeoDataFrame:
    """Mark the rows of ``gdf`` inside the study area; exclude those outside and out of reach.

    Parameters
    ----------
    gdf
        Facilities or candidate sites.
    area
        The `StudyArea`.
    network, residents
        The walk network and the snapped population units
        (`planner.access.snap_units`).  A row outside the area is excluded
        (``excluded = "outside_study_area"``) when no resident reaches it
        within ``cutoff_min``; without them, whether it can be reached is
        left open (not excluded) and the warning says so.
    cutoff_min, max_snap_m
        The access step's cut-off (min) and snap limit (m).
    what
        The layer's name in messages.

    Returns
    -------
    GeoDataFrame
        A copy with ``in_study_area`` (bool) and ``excluded`` (str) columns.
        A `PlannerWarning` lists the rows outside, by name, with their
        distance from the area.
    """
    out = gdf.copy()
    inside = area.holds(out)
    out[IN_STUDY_AREA] = inside
    if EXCLUDED not in out.columns:
        out[EXCLUDED] = ""
    outside = np.flatnonzero(~inside)
    if not outside.size:
        return out
    dist = shapely.distance(area.geometry_in(out.crs),
                            np.asarray(out.geometry.values, dtype=object)[outside])
    order = np.argsort(-dist, kind="stable")
    rows = list(zip(outside[order], dist[order], strict=True))

    def text(texts: dict[str, str], chosen: list[tuple[int, float]], lang: str) -> str:
        named = [(f"{label(out, p)} ({_km(d, lang)})" if lang == "en" else
                  f"{label(out, p)}（{_km(d, lang)}）") for p, d in chosen]
        return pick(lang, texts, n=len(chosen), rows=join(named, lang), what=what,
                    area=area.describe(lang), cut=cutoff_min)

    if network is None or residents is None or len(residents) == 0:
        warn(*both(lambda lang: text(_UNKNOWN, rows, lang)))
        return out
    near = _reach(out, outside, network, residents, cutoff_min, max_snap_m)
    far_rows = outside[~near]
    mask = np.zeros(len(out), bool)
    mask[far_rows] = True
    flag_excluded(out, mask, OUTSIDE)
    near_sorted = near[order]
    far_named = [r for r, ok in zip(rows, near_sorted, strict=True) if not ok]
    near_named = [r for r, ok in zip(rows, near_sorted, strict=True) if ok]
    if far_named:
        warn(*both(lambda lang: text(_OUTSIDE, far_named, lang)))
    if near_named:
        warn(*both(lambda lang: text(_NEAR, near_named, lang)))
    return out


# ------------------------------------------------------------------------ overlap
_NO_NETWORK = {
    "zh": "图层 `{layer}` 与步行路网没有重叠：其最近的要素距路网范围 {d}。是否是其他城市的数据，"
          "或坐标系/`crs:`、`coord_system:` 设置有误？请检查该文件。",
    "en": "Layer `{layer}` does not overlap the walk network: its nearest feature lies {d} "
          "from the network's extent. Is it data of another city, or in another CRS or datum? "
          "Check the file (and `crs:` / `coord_system:` for this layer).",
}
_NO_AREA = {
    "zh": "图层 `{layer}` 与研究范围（{area}）没有重叠：其最近的要素距研究范围 {d}。请检查该文件。",
    "en": "Layer `{layer}` does not overlap the study area ({area}): its nearest feature lies "
          "{d} from it. Check the file (and `crs:` / `coord_system:` for this layer).",
}
_NET_NO_LAYER = {
    "zh": "步行路网与所有图层（{layers}）都没有重叠：最近的图层距路网 {d}。是否是其他地区的路网？请检查 network.path。",
    "en": "The walk network overlaps none of the layers ({layers}): the nearest lies {d} from "
          "it (a network of another region?). Check `network.path`.",
}
_NET_NO_AREA = {
    "zh": "步行路网与研究范围（{area}）没有重叠：路网距其 {d}。是否是其他地区的路网？请检查 network.path。",
    "en": "The walk network does not overlap the study area ({area}): it lies {d} from it "
          "(a network of another region?). Check `network.path`.",
}


def _gap_m(region: shapely.Geometry, gdf: Any, crs: Any) -> float:
    """Distance from ``region`` (in ``crs``) to the nearest feature of ``gdf``; 0 = overlap."""
    if gdf.crs is not None and crs is not None and not gdf.crs.equals(crs):
        gdf = gdf.to_crs(crs)
    shapes = np.asarray(gdf.geometry.values, dtype=object)
    shapes = shapes[~(shapely.is_missing(shapes) | shapely.is_empty(shapes))]
    if not shapes.size:
        return 0.0
    shapely.prepare(region)
    if shapely.intersects(region, shapes).any():
        return 0.0
    return float(shapely.distance(region, shapes).min())


def check_overlap(layers: Mapping[str, gpd.GeoDataFrame | None], *,
                  network: WalkNetwork | None = None, area: StudyArea | None = None,
                  max_snap_m: float = MAX_SNAP_M, lang: str = DEFAULT_LANG) -> list[str]:
    """Say which layers do not overlap the walk network or the study area at all.

    A layer overlaps the network when one of its features lies within
    ``max_snap_m`` of the network's extent (convex hull of its nodes), and
    the study area when one intersects it.  When the network misses a
    study area made of boundaries, or misses every layer, the network is
    named (once) instead of every layer; boundary layers that make the
    area are only compared with the network.  Each finding is a
    `PlannerWarning`.

    Returns
    -------
    list of str
        The warning texts in ``lang`` (empty when every layer overlaps); the
        warnings carry English and Chinese.
    """
    found: list[Callable[[str], str]] = []  # each finding's text in a language
    given = {k: g for k, g in layers.items()
             if g is not None and len(g) and k not in ("network_edges", "study_area")}
    by_area = area is not None and not area.from_network
    hull = None
    if network is not None and network.n_nodes:
        extent = network_extent(network)
        hull = shapely.buffer(extent, float(max_snap_m))
        gaps = {k: _gap_m(hull, g, network.crs) for k, g in given.items()}
        if by_area and not shapely.intersects(area.geometry_in(network.crs), extent):
            d = shapely.distance(area.geometry_in(network.crs), extent)
            found.append(lambda lg: pick(lg, _NET_NO_AREA, area=area.describe(lg), d=_km(d, lg)))
            hull = None
        elif len(given) > 1 and all(g > 0 for g in gaps.values()):
            d = min(gaps.values()) + max_snap_m
            found.append(lambda lg: pick(lg, _NET_NO_LAYER, layers=", ".join(given),
                                         d=_km(d, lg)))
            hull = None
    for key, gdf in given.items():
        if hull is not None and gaps[key] > 0:
            found.append(lambda lg, key=key, d=gaps[key] + max_snap_m:
                         pick(lg, _NO_NETWORK, layer=key, d=_km(d, lg)))
            continue
        if by_area and key not in area.source:
            gap = _gap_m(area.geometry, gdf, area.crs)
            if gap > 0:
                found.append(lambda lg, key=key, gap=gap:
                             pick(lg, _NO_AREA, layer=key, area=area.describe(lg),
                                  d=_km(gap, lg)))
    for make in found:
        warn(*both(make))
    return [make(lang) for make in found]
