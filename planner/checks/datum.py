"""The datum check: does a layer fit the other data better in another datum?

A GCJ-02 register read as WGS-84 (the default) sits a few hundred metres
off; nothing fails, but coverage figures drop.  `check_datum` reads the
layer's coordinates back as they were in the file (its declared datum) and
reinterprets them as each other datum (WGS-84, GCJ-02, BD-09), then
compares two kinds of fit, each on the same rows for both readings:

**Fit to the walk network.**  The median distance to the nearest street of
the layer's points (point layers: the points; polygon layers: points every
`SAMPLE_SPACING_M` metres along their boundaries, which mostly follow
streets), counting only points inside the network's extent under both
readings.  Another datum fits clearly better when, on at least
`MIN_POINTS` points, its median is at least `MIN_RATIO` times smaller and
at least `MIN_GAIN_M` metres smaller.  Both conditions are needed: in a
dense street grid a point shifted by 500 m still lands near some street
(on the generated demo district the correct GCJ-02 reading of the register
has a median of 25 m and the wrong WGS-84 one 10 m), so a small or merely
relative gain proves nothing; boundaries and sparse networks give clear
gains (central Xi'an's DataV district boundaries: 19 m read as GCJ-02
against 59 m read as WGS-84).

**Fit to the other layers.**  Where rows name their township (``township``
column) or community (``community``), the share lying in the polygon they
name.  Another datum fits clearly better when, on at least `MIN_POINTS`
named rows, it puts at least `MIN_NAME_GAIN` more of them (and at least
`MIN_NAME_ROWS` more rows) in their polygon.  This is the check that
works without a network (``planner validate --no-network``) and in dense
grids.

A datum is suggested when one kind of fit says so and the other does not
clearly say the opposite.  The data are never changed: a `PlannerWarning`
gives both figures and the scenario line to add.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyproj
import shapely

from planner import coords
from planner._errors import LayerError
from planner.checks._common import DEFAULT_LANG, both, name_key, pick, polygon_lookup, warn

if TYPE_CHECKING:
    import geopandas as gpd

    from planner.network import WalkNetwork

__all__ = ["DATUMS", "MIN_GAIN_M", "MIN_NAME_GAIN", "MIN_NAME_ROWS", "MIN_POINTS", "MIN_RATIO",
           "SAMPLE_LIMIT", "SAMPLE_SPACING_M", "DatumFit", "check_datum"]

#: The datums compared.
DATUMS: tuple[str, ...] = ("wgs84", "gcj02", "bd09")
#: Fewest points (or named rows) a verdict rests on.
MIN_POINTS = 5
#: Another datum's median street distance must be at least this many times smaller ...
MIN_RATIO = 3.0
#: ... and at least this many metres smaller.
MIN_GAIN_M = 30.0
#: Another datum must put at least this share more named rows in their polygon ...
MIN_NAME_GAIN = 0.25
#: ... and at least this many more rows.
MIN_NAME_ROWS = 3
#: Spacing of the points sampled along polygon boundaries (m).
SAMPLE_SPACING_M = 50.0
#: Most points sampled from one layer.
SAMPLE_LIMIT = 4000
#: A row lies "in" the polygon it names within this distance (m).
_IN_POLYGON_M = 10.0

_NAME_COLUMNS = (("township", "townships"), ("community", "population"))


@dataclass
class DatumFit:
    """The figures of a datum check of one layer.

    ``median_m[d]`` / ``n_points[d]``: median distance to the nearest street
    of the points read as datum ``d`` and how many points were compared
    (the declared datum's median is over the same points as the other one
    it is compared with; here, over its own inside points).  ``named[(col,
    d)]``: ``(rows in the polygon their column ``col`` names, rows naming a
    known polygon)`` read as ``d``.  ``suggested`` is the datum to declare
    when another one fits clearly better (then ``message`` is the warning, in the
    language asked).
    """

    layer: str
    declared: str
    median_m: dict[str, float] = field(default_factory=dict)
    n_points: dict[str, int] = field(default_factory=dict)
    pair_median_m: dict[str, tuple[float, float]] = field(default_factory=dict)
    named: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    suggested: str | None = None
    message: str | None = None


# ------------------------------------------------------------------------ geometry
def _sample_xy(gdf: gpd.GeoDataFrame, spacing_m: float, limit: int) -> np.ndarray:
    """Points of the layer in its CRS: the points, or points along polygon boundaries."""
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    geoms = geoms[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))]
    kind = shapely.get_type_id(geoms)
    parts = [shapely.get_coordinates(geoms[np.isin(kind, (0, 4))])]
    other = geoms[~np.isin(kind, (0, 4))]
    if other.size:
        rims = shapely.boundary(other)
        rims = np.where(np.isin(shapely.get_type_id(other), (1, 5)), other, rims)
        parts.append(shapely.get_coordinates(shapely.segmentize(rims, spacing_m)))
    xy = np.concatenate(parts) if parts else np.zeros((0, 2))
    if len(xy) > limit:
        xy = xy[np.linspace(0, len(xy) - 1, limit).astype(np.int64)]
    return xy


def _reader(crs: Any) -> tuple[pyproj.Transformer, pyproj.Transformer]:
    return (pyproj.Transformer.from_crs(crs, 4326, always_xy=True),
            pyproj.Transformer.from_crs(4326, crs, always_xy=True))


def _reinterpret(xy: np.ndarray, crs: Any, declared: str, alt: str) -> np.ndarray:
    """``xy`` (layer CRS, loaded as ``declared``) as it would be had the file said ``alt``."""
    if alt == declared or not len(xy):
        return xy
    to_ll, from_ll = _reader(crs)
    lon, lat = to_ll.transform(xy[:, 0], xy[:, 1])
    raw = coords.convert(np.asarray(lon), np.asarray(lat), src="wgs84", dst=declared)
    wx, wy = coords.convert(*raw, src=alt, dst="wgs84")
    x, y = from_ll.transform(wx, wy)
    return np.column_stack([x, y])


def _street_m(net: WalkNetwork, xy: np.ndarray) -> np.ndarray:
    from planner.access import snap_points

    return snap_points(net, xy, warn=False).dist_m


def _rep_xy(gdf: gpd.GeoDataFrame) -> np.ndarray:
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    pts = np.where(shapely.get_type_id(geoms) == 0, geoms, shapely.point_on_surface(geoms))
    return np.column_stack([shapely.get_x(pts), shapely.get_y(pts)])


# ------------------------------------------------------------------------ the two fits
def _network_fit(fit: DatumFit, gdf: gpd.GeoDataFrame, net: WalkNetwork, others: list[str],
                 spacing_m: float, limit: int) -> None:
    from planner.checks.area import network_extent

    crs = net.crs
    local = gdf if gdf.crs is None or gdf.crs.equals(crs) else gdf.to_crs(crs)
    xy = _sample_xy(local, spacing_m, limit)
    if not len(xy):
        return
    hull = network_extent(net)
    shapely.prepare(hull)

    def inside(p: np.ndarray) -> np.ndarray:
        return shapely.contains_xy(hull, p[:, 0], p[:, 1])

    ok0 = inside(xy)
    d0 = np.full(len(xy), np.nan)
    if ok0.any():
        d0[ok0] = _street_m(net, xy[ok0])
        fit.median_m[fit.declared] = float(np.median(d0[ok0]))
    fit.n_points[fit.declared] = int(ok0.sum())
    for alt in others:
        axy = _reinterpret(xy, crs, fit.declared, alt)
        both = ok0 & inside(axy)
        fit.n_points[alt] = int(both.sum())
        if both.any():
            d1 = _street_m(net, axy[both])
            fit.median_m[alt] = float(np.median(d1))
            fit.pair_median_m[alt] = (float(np.median(d0[both])), float(np.median(d1)))


def _name_fit(fit: DatumFit, gdf: gpd.GeoDataFrame, references: dict[str, Any],
              others: list[str]) -> None:
    xy = _rep_xy(gdf)
    for col, ref_name in _NAME_COLUMNS:
        ref = references.get(ref_name)
        if ref is None or not len(ref) or col not in gdf.columns or ref_name == fit.layer:
            continue
        if gdf.crs is not None and ref.crs is not None and not ref.crs.equals(gdf.crs):
            ref = ref.to_crs(gdf.crs)
        lookup = polygon_lookup(ref, ("id", "name") if col == "community" else ("name",))
        keys = [name_key(v) for v in gdf[col]]
        named = np.array([lookup.get(k) if k is not None else None for k in keys], dtype=object)
        known = np.flatnonzero([g is not None for g in named])
        if not known.size:
            continue
        for d in [fit.declared, *others]:
            p = _reinterpret(xy[known], gdf.crs, fit.declared, d)
            dist = shapely.distance(shapely.points(p), named[known])
            fit.named[(col, d)] = (int((dist <= _IN_POLYGON_M).sum()), int(known.size))


def _named_total(fit: DatumFit, datum: str) -> tuple[int, int]:
    vals = [v for (_, d), v in fit.named.items() if d == datum]
    return sum(a for a, _ in vals), sum(r for _, r in vals)


def _network_says(fit: DatumFit, a: str, b: str) -> bool:
    """Whether the street distances say ``b`` fits clearly better than ``a``."""
    key = b if a == fit.declared else a
    if key not in fit.pair_median_m or fit.n_points.get(key, 0) < MIN_POINTS:
        return False
    m_decl, m_alt = fit.pair_median_m[key]
    ma, mb = (m_decl, m_alt) if a == fit.declared else (m_alt, m_decl)
    return mb * MIN_RATIO <= ma and ma - mb >= MIN_GAIN_M


def _names_say(fit: DatumFit, a: str, b: str) -> bool:
    """Whether the named polygons say ``b`` fits clearly better than ``a``."""
    (ga, rows), (gb, _) = _named_total(fit, a), _named_total(fit, b)
    if rows < MIN_POINTS:
        return False
    return (gb - ga) / rows >= MIN_NAME_GAIN and gb - ga >= MIN_NAME_ROWS


def _suggest(fit: DatumFit, others: list[str]) -> str | None:
    best, best_score = None, (0, 0.0)
    for alt in others:
        net_yes, name_yes = _network_says(fit, fit.declared, alt), _names_say(fit, fit.declared,
                                                                               alt)
        if not (net_yes or name_yes):
            continue
        # one fit for it, the other clearly against it: no verdict
        if (net_yes and _names_say(fit, alt, fit.declared)) or (
                name_yes and _network_says(fit, alt, fit.declared)):
            continue
        m0, m1 = fit.pair_median_m.get(alt, (np.nan, np.nan))
        score = (int(net_yes) + int(name_yes), float(m0 - m1) if np.isfinite(m0 - m1) else 0.0)
        if score > best_score:
            best, best_score = alt, score
    return best


# ------------------------------------------------------------------------ messages
_LABEL = {"wgs84": "WGS-84", "gcj02": "GCJ-02", "bd09": "BD-09"}
_SOURCE = {
    "wgs84": {"zh": "GPS、OpenStreetMap 或测绘成果（WGS-84）", "en": "GPS, OpenStreetMap or a survey "
              "(WGS-84)"},
    "gcj02": {"zh": "高德、腾讯地图或 DataV（GCJ-02）", "en": "AMap/Gaode, Tencent or DataV (GCJ-02)"},
    "bd09": {"zh": "百度地图（BD-09）", "en": "Baidu Maps (BD-09)"},
}
_MESSAGE = {
    "zh": "图层 `{layer}` 声明的坐标系为 {decl}（`coord_system: {d0}`），但按 {alt} 解读时与其他数据吻合得多："
          "{figures}。数据未作任何修改。若该文件来自{source}，请在情景文件的 layers.{layer} 下加一行 "
          "`coord_system: {d1}`；若该图层无误，则可能是其他数据（路网或边界）的坐标系有误。",
    "en": "Layer `{layer}` is declared as {decl} (`coord_system: {d0}`) but fits the other data "
          "much better read as {alt}: {figures}. The data were not changed. If the file comes "
          "from {source}, add `coord_system: {d1}` to layers.{layer} in the scenario; if this "
          "layer is right, another layer (the network or the boundaries) may be in another "
          "datum instead.",
}
_NET_FIG = {
    "zh": "到最近道路的距离中位数按 {d0} 为 {m0:.0f} 米，按 {d1} 为 {m1:.0f} 米（{n} 个点）",
    "en": "median distance to the nearest street {m0:.0f} m as {d0} vs {m1:.0f} m as {d1} "
          "({n} points)",
}
_NAME_FIG = {
    "zh": "位于“{col}”列所登记{ref}内的记录，按 {d0} 为 {a0}/{r} 条，按 {d1} 为 {a1}/{r} 条",
    "en": "{a0} of {r} rows lie in the {ref} their `{col}` column names as {d0} vs {a1} as {d1}",
}
_UNDECIDED = {
    "zh": "（未据以判断：{figures}）",
    "en": " (not decisive here: {figures})",
}
_REF = {"township": {"zh": "街道", "en": "township"}, "community": {"zh": "社区", "en": "community"}}


def _message(fit: DatumFit, alt: str, lang: str) -> str:
    """The warning: the deciding figures first, then any figure measured that did not decide."""
    d0, d1 = fit.declared, alt
    decide, other = [], []
    if alt in fit.pair_median_m and fit.n_points.get(alt, 0) >= MIN_POINTS:
        m0, m1 = fit.pair_median_m[alt]
        text = pick(lang, _NET_FIG, d0=d0, d1=d1, m0=m0, m1=m1, n=fit.n_points[alt])
        (decide if _network_says(fit, d0, d1) else other).append(text)
    names_decide = _names_say(fit, d0, d1)
    for col, _ in _NAME_COLUMNS:
        if (col, d0) in fit.named and (col, d1) in fit.named:
            (a0, r), (a1, _) = fit.named[(col, d0)], fit.named[(col, d1)]
            text = pick(lang, _NAME_FIG, col=col, ref=pick(lang, _REF[col]), d0=d0, d1=d1,
                        a0=a0, a1=a1, r=r)
            (decide if names_decide else other).append(text)
    sep = "；" if lang != "en" else "; "
    figures = sep.join(decide)
    if other:
        figures += pick(lang, _UNDECIDED, figures=sep.join(other))
    return pick(lang, _MESSAGE, layer=fit.layer, decl=_LABEL[d0], alt=_LABEL[d1], d0=d0, d1=d1,
                figures=figures, source=pick(lang, _SOURCE[d1]))


# ------------------------------------------------------------------------ the check
def check_datum(
    gdf: gpd.GeoDataFrame,
    *,
    layer: str,
    declared: str | None = None,
    network: WalkNetwork | None = None,
    townships: gpd.GeoDataFrame | None = None,
    population: gpd.GeoDataFrame | None = None,
    spacing_m: float = SAMPLE_SPACING_M,
    limit: int = SAMPLE_LIMIT,
    lang: str = DEFAULT_LANG,
) -> DatumFit:
    """Compare a layer's fit under its declared datum and under the other two.

    Parameters
    ----------
    gdf
        A layer as `planner.layers.read_layer` returns it (converted to
        WGS-84 from ``declared``, in a metric CRS).
    layer
        Its name in the scenario (``facilities``), for the message.
    declared
        The datum it was read as (default: ``gdf.attrs["coord_system"]``,
        else ``wgs84``).
    network
        The walk network: fit to the streets (skipped without one).
    townships, population
        Polygon layers that rows name in their ``township`` / ``community``
        columns: fit to the other layers (skipped without them).  Pass only
        layers whose own datum is right.
    spacing_m, limit
        Spacing (m) and most number of points sampled along polygon
        boundaries.
    lang
        ``"zh"`` (default) or ``"en"`` for ``DatumFit.message`` (the warning
        carries both).

    Returns
    -------
    DatumFit
        The figures; ``suggested`` is set (and a `PlannerWarning` issued with
        both figures and the line to add) when another datum fits clearly
        better.  The layer is never changed.
    """
    declared = str(declared or gdf.attrs.get("coord_system") or "wgs84").lower()
    if declared not in DATUMS:
        raise LayerError(f"Layer {layer}: unknown declared datum {declared!r}; use one of "
                         f"{', '.join(DATUMS)}.")
    fit = DatumFit(layer=layer, declared=declared)
    if gdf is None or not len(gdf) or gdf.crs is None:
        return fit
    others = [d for d in DATUMS if d != declared]
    if network is not None and network.n_edges:
        _network_fit(fit, gdf, network, others, spacing_m, limit)
    _name_fit(fit, gdf, {"townships": townships, "population": population}, others)
    alt = _suggest(fit, others)
    if alt is not None:
        fit.suggested = alt
        fit.message = _message(fit, alt, lang)
        warn(*both(lambda lg: _message(fit, alt, lg)))
    return fit
