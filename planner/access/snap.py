"""Snapping points to the nearest point on a walk network's edges.

A demand unit or facility joins the network at the nearest point of the
nearest edge (not merely the nearest node): the walk from the point to that
spot is counted at the network's walking speed, and the walk along the edge
from the spot to either end node is counted as the matching share of the
edge's time.  Snaps longer than ``max_snap_m`` are kept (their straight walk
is counted) but flagged in ``Snapped.far`` and listed in a warning, because a
point far from every street usually means a wrong coordinate or a missing
street.

Everything is vectorised: one ``shapely.STRtree.query_nearest`` call finds
the nearest edge of every point, one ``line_locate_point`` call the spot.

Population units may be gated compounds: `snap_units` starts such a unit at
its gates (matched by a ``community`` column, or by location) instead of its
representative point.

The edge geometries, their flat vertex arrays and their STRtree are derived
once per network (`planner.network.WalkNetwork.cached`) and shared by the
routing, the service areas and the city blocks (`planner.access.faces`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely

from planner._errors import LayerError, NetworkError, PlannerWarning
from planner.defaults import FRAGMENT_SNAP_M, FRAGMENT_SNAP_RATIO, MAX_SNAP_M

if TYPE_CHECKING:
    from typing import TypeAlias

    import geopandas as gpd
    import pyproj

    from planner.network import WalkNetwork

    #: What `snap_points` and `point_geometries` accept.
    PointsLike: TypeAlias = (
        "gpd.GeoDataFrame | gpd.GeoSeries | np.ndarray | Sequence[shapely.Geometry]"
    )

__all__ = [
    "GATE_MATCH_M",
    "Snapped",
    "edge_geometries",
    "edge_tree",
    "edge_vertices",
    "point_geometries",
    "run_offsets",
    "served_components",
    "gate_units",
    "snap_points",
    "snap_units",
]

#: Gates without a ``community`` column join the population polygon within this many metres.
GATE_MATCH_M = 50.0

_FIELDS = ("edge", "fraction", "x", "y", "dist_m", "far", "point_x", "point_y", "ids", "moved",
           "fragment_m")


@dataclass
class Snapped:
    """Points snapped onto a `WalkNetwork`'s edges (all arrays of one length).

    Attributes
    ----------
    edge
        Index of the edge (row of ``net.edges``) each point joins, int64.
    fraction
        Position of the snapped spot along that edge, from node ``u`` (0.0)
        to node ``v`` (1.0), by length along the edge geometry.
    x, y
        Coordinates of the snapped spot (network CRS, metres).
    dist_m
        Straight distance from the point to the snapped spot, metres; it is
        walked at the network's speed.
    far
        True where ``dist_m > max_snap_m``.
    point_x, point_y
        Coordinates of the point that was snapped (for polygons: their
        representative point, or the gate).
    ids
        The id of each point's row (the layer's ``id`` column, else its index).
    unit
        For points that stand for a row of another layer (compound gates),
        the position of that row; ``None`` means point ``i`` is row ``i``.
    max_snap_m
        The threshold ``far`` was computed with.
    moved
        True where the nearest street was on a small fragment (a network
        component that is not among the main ones) and the point was snapped
        to the main network instead (see `snap_points`).
    fragment_m
        Distance to the nearest fragment street, where the nearest street is
        on a fragment (moved or not); NaN elsewhere.
    """

    edge: np.ndarray
    fraction: np.ndarray
    x: np.ndarray
    y: np.ndarray
    dist_m: np.ndarray
    far: np.ndarray
    point_x: np.ndarray
    point_y: np.ndarray
    ids: np.ndarray
    unit: np.ndarray | None = None
    max_snap_m: float = MAX_SNAP_M
    moved: np.ndarray | None = None
    fragment_m: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.edge)
        if self.moved is None:
            self.moved = np.zeros(n, dtype=bool)
        if self.fragment_m is None:
            self.fragment_m = np.full(n, np.nan)

    def __len__(self) -> int:
        return int(self.edge.shape[0])

    @property
    def n_units(self) -> int:
        """Number of units the points stand for (rows of the snapped layer)."""
        if self.unit is None:
            return len(self)
        return int(self.unit.max()) + 1 if len(self) else 0

    def take(self, index: npt.ArrayLike) -> Snapped:
        """A subset of the points (boolean mask or integer positions)."""
        idx = np.asarray(index)
        fields = {k: getattr(self, k)[idx] for k in _FIELDS}
        unit = None if self.unit is None else self.unit[idx]
        return replace(self, unit=unit, **fields)

    def far_message(self, what: str = "points", *, limit: int = 20,
                    lang: str = "en") -> str | None:
        """A warning text listing the far snaps (ids and distances), or None.

        ``lang="zh"`` gives the Chinese text (``what`` is translated where known).
        """
        far = np.flatnonzero(self.far)
        if far.size == 0:
            return None
        order = far[np.argsort(-self.dist_m[far])]
        if lang == "zh":
            shown = "、".join(f"{self.ids[i]}（{self.dist_m[i]:.0f} 米）" for i in order[:limit])
            more = f" 等另 {far.size - limit} 个" if far.size > limit else ""
            return (
                f"{far.size} 个{_what_zh(what)}距最近的可步行道路超过 {self.max_snap_m:g} 米："
                f"{shown}{more}。到道路的直线步行距离已计入；请检查其坐标（是否有 GCJ-02/BD-09 "
                "偏移？）或补充缺失的道路，或在情景文件中增大 `network.max_snap_m`。"
            )
        shown = ", ".join(f"{self.ids[i]} ({self.dist_m[i]:.0f} m)" for i in order[:limit])
        more = f" and {far.size - limit} more" if far.size > limit else ""
        return (
            f"{far.size} {what} lie more than {self.max_snap_m:g} m from the nearest walkable "
            f"street: {shown}{more}. Their straight walk to the street is counted; check "
            "their coordinates (GCJ-02/BD-09 offsets?) or add the missing streets, or raise "
            "`network.max_snap_m` in the scenario."
        )

    def far_warning(self, what: str = "points") -> PlannerWarning | None:
        """`far_message` in English and Chinese, as a `PlannerWarning` (None if none is far)."""
        msg = self.far_message(what)
        return PlannerWarning(msg, self.far_message(what, lang="zh")) if msg else None

    def fragment_message(self, what: str = "points", *, limit: int = 20,
                         lang: str = "en") -> str | None:
        """A warning text listing the snaps moved off small network fragments, or None.

        Each moved point is shown with its distance to the fragment and to
        the main network (`snap_points` explains the rule).  Points left on
        a fragment (clearly on it) are not listed here: when they reach no
        facility, `planner.access.population_access` lists them.  ``lang="zh"``
        gives the Chinese text.
        """
        moved = np.flatnonzero(self.moved)
        if not moved.size:
            return None
        if lang == "zh":
            shown = "、".join(f"{self.ids[i]}（距碎片 {self.fragment_m[i]:.0f} 米，距主路网 "
                             f"{self.dist_m[i]:.0f} 米）" for i in moved[:limit])
            more = f" 等另 {moved.size - limit} 个" if moved.size > limit else ""
            return (
                f"{moved.size} 个{_what_zh(what)}离一小段与其余路网不连通、且没有设施的路网碎片"
                f"最近；已改为吸附到主路网，到主路网的直线步行距离已计入：{shown}{more}。如果居民"
                "确实经由该段道路出行，请在道路数据中把它接上（缺失的路段、出入口或过街设施）；"
                "否则请检查这些点的坐标。"
            )
        shown = ", ".join(f"{self.ids[i]} (fragment {self.fragment_m[i]:.0f} m, main network "
                          f"{self.dist_m[i]:.0f} m)" for i in moved[:limit])
        more = f" and {moved.size - limit} more" if moved.size > limit else ""
        return (
            f"{moved.size} {what} lie nearest to a small piece of the walk network that is not "
            f"connected to the rest and holds no facility; they were snapped to the main "
            f"network instead, and their straight walk to it is counted: {shown}{more}. If "
            "people do walk out over that piece, connect it in the road data (a missing link, "
            "gate or crossing); check the points' coordinates otherwise."
        )

    def fragment_warning(self, what: str = "points") -> PlannerWarning | None:
        """`fragment_message` in English and Chinese, as a `PlannerWarning` (None if none moved)."""
        msg = self.fragment_message(what)
        return PlannerWarning(msg, self.fragment_message(what, lang="zh")) if msg else None

    def warn(self, what: str = "points", *, stacklevel: int = 2) -> None:
        """Issue the far snaps (`far_warning`) and the snaps moved off fragments
        (`fragment_warning`) as `PlannerWarning`s, when there are any.

        `snap_points` and `snap_units` call it unless ``warn=False``; callers that
        snapped several layers first (the scenario's access step) call it after.
        """
        if (w := self.far_warning(what)) is not None:
            warnings.warn(w, stacklevel=stacklevel + 1)
        if (w := self.fragment_warning(what)) is not None:
            warnings.warn(w, stacklevel=stacklevel + 1)


#: Chinese for the ``what`` of snap messages.
_WHAT_ZH = {"points": "点", "population units": "人口单元", "facilities": "设施",
            "candidates": "候选点", "demand": "需求点", "gates": "小区出入口"}


def _what_zh(what: str) -> str:
    return _WHAT_ZH.get(what, what)


def run_offsets(counts: npt.ArrayLike) -> np.ndarray:
    """Position of each element within its run, for runs of ``counts`` laid end to end.

    ``run_offsets([2, 3]) -> [0, 1, 0, 1, 2]``; with ``np.repeat(start, counts)``
    it expands ranges ``start[i] .. start[i] + counts[i] - 1`` without a loop.
    """
    counts = np.asarray(counts, dtype=np.int64)
    return np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)


def edge_vertices(net: WalkNetwork) -> tuple[np.ndarray, np.ndarray]:
    """Flat edge vertices ``xy`` with offsets ``off`` (edge ``e``: ``off[e]:off[e+1]``), cached."""

    def build() -> tuple[np.ndarray, np.ndarray]:
        xy, idx = shapely.get_coordinates(edge_geometries(net), return_index=True)
        off = np.zeros(net.n_edges + 1, np.int64)
        np.cumsum(np.bincount(idx, minlength=net.n_edges), out=off[1:])
        return xy, off

    return net.cached("edge_xy", build)


def edge_geometries(net: WalkNetwork) -> np.ndarray:
    """Edge lines oriented from node ``u`` to node ``v`` (array of shapely LineStrings).

    Uses ``net.edges.geometry`` where present; a missing geometry becomes the
    straight line between the end nodes, and a geometry drawn from ``v`` to
    ``u`` is reversed, so that ``fraction`` always runs from ``u``.  Cached.
    """
    return net.cached("edge_geoms", lambda: _oriented_edge_lines(net))


def _oriented_edge_lines(net: WalkNetwork) -> np.ndarray:
    u, v = net.edge_u, net.edge_v

    def straight(idx: np.ndarray) -> np.ndarray:
        return shapely.linestrings(np.stack(
            [np.c_[net.node_x[u[idx]], net.node_y[u[idx]]],
             np.c_[net.node_x[v[idx]], net.node_y[v[idx]]]], 1))

    if net.edges is None or "geometry" not in getattr(net.edges, "columns", ()):
        return straight(np.arange(net.n_edges))
    geoms = np.asarray(net.edges.geometry.values, dtype=object)
    if geoms.shape[0] != net.n_edges:
        raise NetworkError(
            f"WalkNetwork.edges has {geoms.shape[0]} rows but the network has "
            f"{net.n_edges} edges; rebuild the network so both agree."
        )
    bad = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    bad |= shapely.get_type_id(geoms) != 1
    if bad.any():
        geoms = geoms.copy()
        geoms[bad] = straight(np.flatnonzero(bad))
    # first vertex of each line, from one flat coordinate array (no Point objects)
    xy, idx = shapely.get_coordinates(geoms, return_index=True)
    start = xy[np.searchsorted(idx, np.arange(net.n_edges))]
    du = np.hypot(start[:, 0] - net.node_x[u], start[:, 1] - net.node_y[u])
    dv = np.hypot(start[:, 0] - net.node_x[v], start[:, 1] - net.node_y[v])
    flip = dv < du
    if flip.any():
        geoms = geoms.copy()
        geoms[flip] = shapely.reverse(geoms[flip])
    return geoms


def edge_tree(net: WalkNetwork) -> shapely.STRtree:
    """An STRtree of `edge_geometries` (tree index = edge index), cached."""
    return net.cached("edge_tree", lambda: shapely.STRtree(edge_geometries(net)))


def point_geometries(
    points: PointsLike, *, crs: pyproj.CRS | None = None, what: str = "points"
) -> tuple[np.ndarray, np.ndarray]:
    """The point each row stands for, and the row ids.

    ``points`` may be a GeoDataFrame/GeoSeries (reprojected to ``crs`` when it
    has another CRS), an array of shapely geometries, or an ``(n, 2)`` array
    of x/y coordinates in ``crs``.  Polygons and lines stand for their
    representative point (always inside the shape).
    """
    import geopandas as gpd

    ids: np.ndarray
    if isinstance(points, (gpd.GeoDataFrame, gpd.GeoSeries)):
        if crs is not None:
            if points.crs is None:
                warnings.warn(PlannerWarning(
                    f"{what} have no CRS; assuming the network's CRS ({crs}). Set it with "
                    "`gdf.set_crs(...)` if that is wrong.",
                    f"{_what_zh(what)}没有坐标系，假定与路网相同（{crs}）。如不对，请用 "
                    "`gdf.set_crs(...)` 设置。"), stacklevel=3)
            elif not points.crs.equals(crs):
                points = points.to_crs(crs)
        if isinstance(points, gpd.GeoDataFrame) and "id" in points.columns:
            ids = points["id"].to_numpy()
        else:
            ids = points.index.to_numpy()
        geoms = np.asarray(points.geometry.values if hasattr(points, "geometry")
                           else points.values, dtype=object)
    else:
        arr = np.asarray(points)
        if arr.dtype != object and arr.ndim == 2 and arr.shape[1] == 2:
            geoms = shapely.points(arr.astype(float))
        else:
            geoms = np.asarray(points, dtype=object).reshape(-1)
        ids = np.arange(len(geoms))
    bad = np.flatnonzero(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    if bad.size:
        raise LayerError(
            f"{bad.size} {what} have no geometry (rows {', '.join(map(str, ids[bad][:20]))}); "
            "give them coordinates or drop them before the access step."
        )
    is_point = shapely.get_type_id(geoms) == 0
    if not is_point.all():
        geoms = geoms.copy()
        geoms[~is_point] = shapely.point_on_surface(geoms[~is_point])
    return geoms, ids


def snap_points(
    net: WalkNetwork,
    points: PointsLike,
    *,
    max_snap_m: float = MAX_SNAP_M,
    warn: bool = True,
    what: str = "points",
    main_components: npt.ArrayLike | Literal["all"] | None = None,
    fragment_snap_m: float = FRAGMENT_SNAP_M,
    fragment_ratio: float = FRAGMENT_SNAP_RATIO,
) -> Snapped:
    """Snap points to the nearest point on the nearest edge of ``net``.

    A small fragment of the network (a connected component that is not
    among ``main_components``: a service-road stub, a path inside a park not
    joined to the streets) reaches nothing outside itself, so a point that
    snaps to it shows as unreachable.  A point whose nearest street is on
    such a fragment therefore snaps to the nearest street of a main
    component instead, unless it lies clearly on the fragment: within
    ``fragment_snap_m`` of it **and** at most ``fragment_ratio`` of its
    distance to the main network (defaults 30 m and 1/3), or the main
    network is farther than ``max_snap_m``.  Such moves are recorded in
    ``Snapped.moved`` and reported by `Snapped.fragment_message`.

    Parameters
    ----------
    net
        A `planner.network.WalkNetwork`.
    points
        A GeoDataFrame/GeoSeries (any CRS; reprojected to the network's), an
        array of shapely geometries or an ``(n, 2)`` x/y array in the
        network's CRS.  Polygons snap from their representative point.
    max_snap_m
        Snaps longer than this (metres) are flagged in ``far`` and, with
        ``warn=True``, listed in a `PlannerWarning`.
    warn
        Issue the far-snap warning here (``False`` when the caller reports
        it, e.g. with `Snapped.warn`).
    what
        What the points are, for messages (e.g. ``"facilities"``).
    main_components
        Component labels (`planner.network.WalkNetwork.components`) points
        snap to freely: default the largest (label 0); `served_components`
        adds the components holding facilities; ``"all"`` snaps every point
        to its nearest street, fragment or not.
    fragment_snap_m, fragment_ratio
        When a point stays on a fragment (see above).

    Returns
    -------
    Snapped

    Examples
    --------
    >>> s = snap_points(net, facilities, max_snap_m=300)   # doctest: +SKIP
    >>> s.dist_m.max() <= 300 or s.far.any()                # doctest: +SKIP
    True
    """
    if net.n_edges == 0:
        raise NetworkError(
            "The walk network has no edges; nothing to snap to. Check the road layer.")
    geoms, ids = point_geometries(points, crs=net.crs, what=what)
    n = len(geoms)
    lines = edge_geometries(net)
    moved = np.zeros(n, dtype=bool)
    fragment_m = np.full(n, np.nan)
    if n:
        edge = _nearest_edges(net, geoms, max_snap_m)
        if not (isinstance(main_components, str) and main_components == "all"):
            edge = _off_fragments(net, geoms, edge, moved, fragment_m,
                                  main=_main_labels(net, main_components),
                                  max_snap_m=max_snap_m, fragment_snap_m=fragment_snap_m,
                                  fragment_ratio=fragment_ratio)
        frac = shapely.line_locate_point(lines[edge], geoms, normalized=True)
        frac = np.nan_to_num(frac, nan=0.0)  # zero-length edges
        spot = shapely.line_interpolate_point(lines[edge], frac, normalized=True)
        sx, sy = shapely.get_x(spot), shapely.get_y(spot)
    else:
        edge = np.zeros(0, np.int64)
        frac = sx = sy = np.zeros(0)
    px, py = shapely.get_x(geoms).astype(float), shapely.get_y(geoms).astype(float)
    dist = np.hypot(px - sx, py - sy)
    snapped = Snapped(
        edge=edge,
        fraction=np.clip(np.asarray(frac, float), 0.0, 1.0),
        x=np.asarray(sx, float),
        y=np.asarray(sy, float),
        dist_m=dist,
        far=dist > max_snap_m,
        point_x=px,
        point_y=py,
        ids=np.asarray(ids),
        max_snap_m=float(max_snap_m),
        moved=moved,
        fragment_m=fragment_m,
    )
    if warn:
        snapped.warn(what, stacklevel=3)
    return snapped


def _nearest_edges(net: WalkNetwork, geoms: np.ndarray, max_snap_m: float) -> np.ndarray:
    """The nearest edge of every point.

    Bounded searches first (much faster on large networks: a nearest edge
    found within a radius is the nearest of all), then the rest unbounded;
    ``query_nearest`` returns (input index, tree index) pairs sorted by
    input index.
    """
    tree = edge_tree(net)
    edge = np.full(len(geoms), -1, dtype=np.int64)
    for radius in (min(50.0, max_snap_m), max_snap_m, None):
        rest = np.flatnonzero(edge < 0)
        if not rest.size:
            break
        i, e = _query_nearest(tree, geoms[rest], radius)
        edge[rest[i]] = e
    return edge


#: Point sets at least twice this long are searched in two threads.
_THREAD_MIN_POINTS = 20_000


def _query_nearest(tree: shapely.STRtree, geoms: np.ndarray, radius: float | None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """``tree.query_nearest(geoms, max_distance=radius, all_matches=False)``, in two
    threads for many points (GEOS searches without Python's lock)."""

    def one(part: np.ndarray) -> np.ndarray:
        return tree.query_nearest(part, max_distance=radius, all_matches=False)

    if len(geoms) < 2 * _THREAD_MIN_POINTS:
        return one(geoms)
    from concurrent.futures import ThreadPoolExecutor

    half = len(geoms) // 2
    with ThreadPoolExecutor(2) as pool:
        lo, hi = pool.map(one, [geoms[:half], geoms[half:]])
    return np.r_[lo[0], hi[0] + half], np.r_[lo[1], hi[1]]


def _main_labels(net: WalkNetwork, main: npt.ArrayLike | None) -> np.ndarray:
    """The sorted component labels points snap to freely (always the largest, 0)."""
    labels = np.zeros(1, np.int64) if main is None else np.asarray(main, np.int64).ravel()
    return np.union1d(labels, [0])


def served_components(net: WalkNetwork, snapped: Snapped) -> np.ndarray:
    """The largest component and every component that holds one of ``snapped``'s points.

    Pass it as ``main_components`` when snapping population units after the
    facilities: a component with a facility is one its residents can walk
    within, so units snap to it freely.
    """
    comp = net.components()[net.edge_u[snapped.edge]] if len(snapped) else np.zeros(0, int)
    return np.union1d(comp, [0]).astype(np.int64)


def _main_tree(net: WalkNetwork, main: np.ndarray) -> tuple[shapely.STRtree, np.ndarray]:
    """STRtree of the edges of the ``main`` components and their edge indices (cached)."""

    def build() -> tuple[shapely.STRtree, np.ndarray]:
        idx = np.flatnonzero(np.isin(net.components()[net.edge_u], main))
        return shapely.STRtree(edge_geometries(net)[idx]), idx

    return net.cached("edge_tree_main:" + ",".join(map(str, main.tolist())), build)


def _nearest_main(net: WalkNetwork, geoms: np.ndarray, main: np.ndarray, max_snap_m: float
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Distance to and index of the nearest edge of the ``main`` components of each
    point (``inf`` / -1 where none lies within ``max_snap_m``; the callers need no
    farther one).

    Most points find one near by: the edges within a short radius come from
    the whole network's tree and are filtered by component, so the tree of
    the main components alone (as costly to build as the whole one) is built
    only for points with none close and a snap limit beyond that radius.
    """
    lines = edge_geometries(net)
    is_main = np.isin(net.components()[net.edge_u], main)
    dist = np.full(len(geoms), np.inf)
    best = np.full(len(geoms), -1, dtype=np.int64)
    tree = edge_tree(net)
    for radius in (50.0, 200.0):
        rest = np.flatnonzero(best < 0)
        r = min(radius, max_snap_m)
        i, e = tree.query(geoms[rest], predicate="dwithin", distance=r)
        ok = is_main[e]
        i, e = i[ok], e[ok]
        d = shapely.distance(geoms[rest[i]], lines[e])
        first = np.lexsort((e, d, i))  # per point: the nearest, then the lowest edge
        first = first[np.r_[True, i[first][1:] != i[first][:-1]]] if first.size else first
        dist[rest[i[first]]], best[rest[i[first]]] = d[first], e[first]
        if r >= max_snap_m:
            return dist, best
    rest = np.flatnonzero(best < 0)
    if rest.size:
        main_tree, idx = _main_tree(net, main)
        i, e = _query_nearest(main_tree, geoms[rest], None)
        dist[rest[i]] = shapely.distance(geoms[rest[i]], lines[idx[e]])
        best[rest[i]] = idx[e]
    return dist, best


def _off_fragments(net: WalkNetwork, geoms: np.ndarray, edge: np.ndarray, moved: np.ndarray,
                   fragment_m: np.ndarray, *, main: np.ndarray, max_snap_m: float,
                   fragment_snap_m: float, fragment_ratio: float) -> np.ndarray:
    """Move snaps from small fragments to the main network (see `snap_points`).

    ``moved`` and ``fragment_m`` are filled in place; returns the new edges.
    """
    comp = net.components()
    on_fragment = ~np.isin(comp[net.edge_u[edge]], main)
    if not on_fragment.any():
        return edge
    pos = np.flatnonzero(on_fragment)
    d_frag = shapely.distance(geoms[pos], edge_geometries(net)[edge[pos]])
    fragment_m[pos] = d_frag
    d_main, main_edge = _nearest_main(net, geoms[pos], main, max_snap_m)
    stays = ((d_frag <= fragment_snap_m) & (d_frag <= fragment_ratio * d_main)) | (
        d_main > max_snap_m)
    move = ~stays
    edge = edge.copy()
    edge[pos[move]] = main_edge[move]
    moved[pos[move]] = True
    return edge


def _concat(parts: list[Snapped], units: list[np.ndarray]) -> Snapped:
    """Join snapped point sets into one, with ``unit`` giving each point's row."""
    fields = {k: np.concatenate([getattr(p, k) for p in parts]) for k in _FIELDS}
    return Snapped(**fields, unit=np.concatenate(units).astype(np.int64),
                   max_snap_m=parts[0].max_snap_m)


# --------------------------------------------------------------------------- units and gates
def _gate_units(units: gpd.GeoDataFrame, gates: gpd.GeoDataFrame, *,
                max_gap_m: float = GATE_MATCH_M) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Match gates to units by ``community`` = unit id (as text), else unit name.

    Gates without a ``community`` column (e.g. OSM ``entrance=*`` nodes) are
    matched by location: to the population polygon they lie in or on, or the
    nearest one within ``max_gap_m`` metres.
    """
    if "community" not in gates.columns:
        return _gate_units_by_location(units, gates, max_gap_m)
    key = gates["community"].astype(str).str.strip().to_numpy()
    pos = np.full(len(gates), -1, np.int64)
    lookup: dict[str, int] = {}
    if "name" in units.columns:
        lookup.update({str(v).strip(): i for i, v in enumerate(units["name"]) if pd.notna(v)})
    if "id" in units.columns:
        lookup.update({str(v).strip(): i for i, v in enumerate(units["id"]) if pd.notna(v)})
    for j, k in enumerate(key):
        pos[j] = lookup.get(k, -1)
    unmatched = sorted(set(key[pos < 0]))
    return pos, np.flatnonzero(pos >= 0), unmatched


def gate_units(units: gpd.GeoDataFrame, gates: gpd.GeoDataFrame, *,
               max_gap_m: float = GATE_MATCH_M) -> np.ndarray:
    """The row of ``units`` each gate belongs to (-1 where none), matched as `snap_units` does.

    By the gates' ``community`` column (a unit's ``id``, else its ``name``);
    without that column by location (the population polygon a gate lies in
    or on, or the nearest within ``max_gap_m`` metres).
    """
    pos, _, _ = _gate_units(units, gates, max_gap_m=max_gap_m)
    return pos


def _gate_units_by_location(units: gpd.GeoDataFrame, gates: gpd.GeoDataFrame, max_gap_m: float
                            ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    shapes = np.asarray(units.geometry.values, dtype=object)
    areal = np.isin(shapely.get_type_id(shapes), (3, 6))  # Polygon, MultiPolygon
    if not areal.any():
        raise LayerError(
            "The gates layer has no `community` column and the population units are points, "
            "so its gates cannot be matched to population units (columns: "
            f"{list(gates.columns)}). Add a `community` column holding each gate's population "
            "id or name (社区/小区), or give the population units as polygons."
        )
    if gates.crs is not None and units.crs is not None and not gates.crs.equals(units.crs):
        gates = gates.to_crs(units.crs)
    geoms, gate_ids = point_geometries(gates, what="gates")
    tree = shapely.STRtree(np.where(areal, shapes, None))
    gi, ui = tree.query_nearest(geoms, max_distance=max_gap_m, all_matches=False)
    pos = np.full(len(gates), -1, np.int64)
    pos[gi] = ui
    unmatched = [str(g) for g in gate_ids[pos < 0]]
    return pos, np.flatnonzero(pos >= 0), unmatched


def _warn_unmatched_gates(unmatched: list[str], by_community: bool) -> None:
    if by_community:
        warnings.warn(PlannerWarning(
            f"{len(unmatched)} gate(s) name a community that is not in the population "
            f"layer and are ignored: {', '.join(unmatched[:20])}. Check the gates' "
            "`community` values against the population layer's `id`/`name`.",
            f"{len(unmatched)} 个小区出入口所写的社区不在人口图层中，已忽略："
            f"{'、'.join(unmatched[:20])}。请对照人口图层的 `id`/`name` 检查出入口的 "
            "`community` 值。"), stacklevel=3)
    else:
        warnings.warn(PlannerWarning(
            f"{len(unmatched)} gate(s) lie more than {GATE_MATCH_M:g} m from every "
            f"population polygon and are ignored: {', '.join(unmatched[:20])}. Check "
            "their coordinates, or add a `community` column naming each gate's unit.",
            f"{len(unmatched)} 个小区出入口距所有人口单元面超过 {GATE_MATCH_M:g} 米，已忽略："
            f"{'、'.join(unmatched[:20])}。请检查其坐标，或增加 `community` 列写明所属单元。"),
            stacklevel=3)


def snap_units(
    net: WalkNetwork,
    units: gpd.GeoDataFrame,
    *,
    gates: gpd.GeoDataFrame | None = None,
    max_snap_m: float = MAX_SNAP_M,
    warn: bool = True,
    what: str = "population units",
    main_components: npt.ArrayLike | Literal["all"] | None = None,
    fragment_snap_m: float = FRAGMENT_SNAP_M,
    fragment_ratio: float = FRAGMENT_SNAP_RATIO,
) -> Snapped:
    """Snap population units, starting gated compounds at their gates.

    Parameters
    ----------
    net
        The `WalkNetwork`.
    units
        Population units (GeoDataFrame of polygons or points).
    gates
        Optional gate points with a ``community`` column holding the unit's
        ``id`` or ``name``; without that column (e.g. OSM ``entrance=*``
        nodes) each gate joins the population polygon it lies in or on, or
        the nearest within `GATE_MATCH_M` metres.  A unit with gates is
        represented by its gates only (its residents leave through them); a
        unit without gates by its representative point.  Gates matching no
        unit are ignored, with a `PlannerWarning`.
    max_snap_m, warn, main_components, fragment_snap_m, fragment_ratio
        As in `snap_points` (units and gates alike); pass
        ``main_components=served_components(net, snapped_facilities)`` so that
        units snap freely to every component holding a facility.

    Returns
    -------
    Snapped
        With ``unit`` set: the row of ``units`` each snapped point stands for.
    """
    rule = {"max_snap_m": max_snap_m, "main_components": main_components,
            "fragment_snap_m": fragment_snap_m, "fragment_ratio": fragment_ratio}
    base = snap_points(net, units, warn=False, what=what, **rule)
    n = len(base)
    parts, maps = [base], [np.arange(n)]
    if gates is not None and len(gates):
        pos, ok, unmatched = _gate_units(units, gates)
        if unmatched:
            _warn_unmatched_gates(unmatched, "community" in gates.columns)
        if ok.size:
            g = snap_points(net, gates.iloc[ok], warn=False, what="gates", **rule)
            g.ids = np.array([f"{base.ids[p]} (gate {gid})"
                              for p, gid in zip(pos[ok], g.ids, strict=True)], dtype=object)
            gated = np.zeros(n, bool)
            gated[pos[ok]] = True
            parts = [base.take(~gated), g]
            maps = [np.flatnonzero(~gated), pos[ok]]
    out = _concat(parts, maps)
    if out.unit.size:
        order = np.argsort(out.unit, kind="stable")
        out = out.take(order)
    if warn:
        out.warn(what, stacklevel=3)
    return out
