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
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely

from planner._errors import LayerError, NetworkError, PlannerWarning
from planner.defaults import MAX_SNAP_M

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
    "gate_units",
    "snap_points",
    "snap_units",
]

#: Gates without a ``community`` column join the population polygon within this many metres.
GATE_MATCH_M = 50.0

_FIELDS = ("edge", "fraction", "x", "y", "dist_m", "far", "point_x", "point_y", "ids")


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

    def far_message(self, what: str = "points", *, limit: int = 20) -> str | None:
        """A warning text listing the far snaps (ids and distances), or None."""
        far = np.flatnonzero(self.far)
        if far.size == 0:
            return None
        order = far[np.argsort(-self.dist_m[far])]
        shown = ", ".join(f"{self.ids[i]} ({self.dist_m[i]:.0f} m)" for i in order[:limit])
        more = f" and {far.size - limit} more" if far.size > limit else ""
        return (
            f"{far.size} {what} lie more than {self.max_snap_m:g} m from the nearest walkable "
            f"street: {shown}{more}. Their straight walk to the street is counted; check "
            "their coordinates (GCJ-02/BD-09 offsets?) or add the missing streets, or raise "
            "`network.max_snap_m` in the scenario."
        )

    def warn_far(self, what: str = "points") -> None:
        """Issue `far_message` as a `PlannerWarning` when some snaps are far.

        For callers that snapped with ``warn=False`` (to snap several layers
        first) and now report the far snaps, e.g. the scenario's access step.
        """
        msg = self.far_message(what)
        if msg:
            warnings.warn(msg, PlannerWarning, stacklevel=2)


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
                warnings.warn(
                    f"{what} have no CRS; assuming the network's CRS ({crs}). Set it with "
                    "`gdf.set_crs(...)` if that is wrong.",
                    PlannerWarning,
                    stacklevel=3,
                )
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
) -> Snapped:
    """Snap points to the nearest point on the nearest edge of ``net``.

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
        it, e.g. with `Snapped.warn_far`).
    what
        What the points are, for messages (e.g. ``"facilities"``).

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
    if n:
        edge = _nearest_edges(net, geoms, max_snap_m)
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
    )
    if warn:
        msg = snapped.far_message(what)
        if msg:
            warnings.warn(msg, PlannerWarning, stacklevel=2)
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
        i, e = tree.query_nearest(geoms[rest], max_distance=radius, all_matches=False)
        edge[rest[i]] = e
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
        warnings.warn(
            f"{len(unmatched)} gate(s) name a community that is not in the population "
            f"layer and are ignored: {', '.join(unmatched[:20])}. Check the gates' "
            "`community` values against the population layer's `id`/`name`.",
            PlannerWarning, stacklevel=3,
        )
    else:
        warnings.warn(
            f"{len(unmatched)} gate(s) lie more than {GATE_MATCH_M:g} m from every "
            f"population polygon and are ignored: {', '.join(unmatched[:20])}. Check "
            "their coordinates, or add a `community` column naming each gate's unit.",
            PlannerWarning, stacklevel=3,
        )


def snap_units(
    net: WalkNetwork,
    units: gpd.GeoDataFrame,
    *,
    gates: gpd.GeoDataFrame | None = None,
    max_snap_m: float = MAX_SNAP_M,
    warn: bool = True,
    what: str = "population units",
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
    max_snap_m, warn
        As in `snap_points`.

    Returns
    -------
    Snapped
        With ``unit`` set: the row of ``units`` each snapped point stands for.
    """
    base = snap_points(net, units, max_snap_m=max_snap_m, warn=False, what=what)
    n = len(base)
    parts, maps = [base], [np.arange(n)]
    if gates is not None and len(gates):
        pos, ok, unmatched = _gate_units(units, gates)
        if unmatched:
            _warn_unmatched_gates(unmatched, "community" in gates.columns)
        if ok.size:
            g = snap_points(net, gates.iloc[ok], max_snap_m=max_snap_m, warn=False,
                            what="gates")
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
        msg = out.far_message(what)
        if msg:
            warnings.warn(msg, PlannerWarning, stacklevel=2)
    return out
