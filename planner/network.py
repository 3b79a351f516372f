"""Pedestrian networks for older residents.

Builds a walk graph from an OSM extract (.osm / .osm.pbf), an OSMnx
download, a road centre-line layer (Shapefile/GeoPackage/GeoJSON/KML) or a
saved GraphML, and stores it as compact arrays (`WalkNetwork`) that the
access step routes on with SciPy's csgraph.  Walking is undirected: one-way
streets are ignored.

Walkable road classes
---------------------
By default motorways, trunk roads and their links are excluded
(`DEFAULT_EXCLUDE`): Chinese urban trunk roads (城市快速路, mapped as
``trunk`` in OSM) are grade-separated expressways without sidewalks, so an
older resident cannot walk along or across them except at the crossings
the other roads provide.  Everything in `WALKABLE_CLASSES` is kept,
including ``cycleway`` (Chinese cycle lanes are mostly side lanes of main
roads, which pedestrians use and cross) and ``track``.  ``steps`` are kept
but dropped by the ``frail`` and ``wheelchair`` profiles (`PROFILES`).

Centre lines
------------
`from_lines` nodes a bureau's centre lines itself (vectorised Shapely 2 /
NumPy; `shapely.node` would wrongly join bridges to the roads below):
junctions where lines share a vertex on one level or cross at grade, none
where a bridge, tunnel or another ``layer`` passes over; dangling ends
within ``join_tolerance_m`` of a line are joined; pass-through points
(degree 2, same class and name) are merged away; connected components
under ``min_component_share`` of the nodes are dropped.  Every count is in
``net.report`` (and `report_table`).

Walking speed
-------------
The default profile ``older_adult`` walks 1.0 m/s: Chinese 15-minute
elderly-care circle analyses convert at 60 m/min (15 min ≈ 900 m), and
measured speeds of older pedestrians are 0.9-1.2 m/s (Knoblauch et al.
1996; Fitzpatrick et al. 2006; Webb et al. 2017; see the README, 'Walking speed and coverage').
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyproj
import scipy.sparse as sp

from planner._errors import NetworkError, PlannerWarning

__all__ = [
    "DEFAULT_EXCLUDE",
    "MAJOR_CLASSES",
    "PROFILES",
    "WALKABLE_CLASSES",
    "WalkNetwork",
    "download_osm",
    "from_graphml",
    "from_lines",
    "from_osm_file",
    "from_osmnx_graph",
    "report_table",
    "run_step",
    "to_graphml",
    "tobler_factor",
    "with_elevation",
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

_CLASS_COLUMNS = ("fclass", "highway", "road_class", "class", "type", "道路等级", "等级",
                  "道路类型", "道路类别", "类型", "tier")  # read_layer renames 等级/类型 to tier
_NAME_COLUMNS = ("name", "道路名称", "路名", "名称")
_FALSE = {"", "f", "false", "no", "n", "0", "0.0", "none", "nan", "否", "<na>"}


# --------------------------------------------------------------------------- the network
@dataclass
class WalkNetwork:
    """An undirected walk network in a metric CRS, as arrays.

    Attributes
    ----------
    crs
        The metric CRS of every coordinate (metres).
    node_x, node_y
        Node coordinates, shape ``(n_nodes,)``.
    edge_u, edge_v
        Edge end nodes, shape ``(n_edges,)``; each undirected edge once.
    edge_length_m
        Edge length along its geometry, metres.
    edge_time_s
        Walking time of each edge in seconds at ``speed_mps`` (including any
        slope or crossing penalties).
    speed_mps
        The walking speed the times were computed with.
    edges
        A GeoDataFrame with one row per edge (same order): the geometry from
        node ``u`` to node ``v`` and attributes such as ``fclass`` and ``name``.
    report
        What building the network did: components kept and dropped, joins,
        excluded road classes (a dict of plain values).
    edge_delay_s
        The part of ``edge_time_s`` that does not depend on speed (crossing
        delays), or None.
    node_z
        Node elevations in metres (used for the slope penalty), or None.
    node_id
        Original node ids (OSM ids for OSM sources), or None.
    profile
        The walking profile's name (`PROFILES`), or None.
    """

    crs: pyproj.CRS
    node_x: np.ndarray
    node_y: np.ndarray
    edge_u: np.ndarray
    edge_v: np.ndarray
    edge_length_m: np.ndarray
    edge_time_s: np.ndarray
    speed_mps: float
    edges: Any = None
    report: dict = field(default_factory=dict)
    edge_delay_s: np.ndarray | None = None
    node_z: np.ndarray | None = None
    node_id: np.ndarray | None = None
    profile: str | None = None

    @property
    def n_nodes(self) -> int:
        return int(self.node_x.shape[0])

    @property
    def n_edges(self) -> int:
        return int(self.edge_u.shape[0])

    def __repr__(self) -> str:
        km = float(self.edge_length_m.sum()) / 1000.0
        return (
            f"<WalkNetwork {self.n_nodes} nodes, {self.n_edges} edges, {km:.1f} km, "
            f"{self.speed_mps} m/s, crs={self.crs.to_string()}>"
        )

    def csr_arrays(self, *, weight: str = "time") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(indptr, indices, data)`` of the symmetric adjacency (see `csr`).

        Built from one int64 key sort and a min-reduce (parallel edges keep the
        smallest weight, never summed): about 10x faster than a three-key lexsort
        on million-node networks.  Indices are int32 where they fit, which spares
        csgraph a copy per call.
        """
        w = self.edge_time_s if weight == "time" else self.edge_length_m
        n = self.n_nodes
        u = np.concatenate([self.edge_u, self.edge_v]).astype(np.int64)
        v = np.concatenate([self.edge_v, self.edge_u]).astype(np.int64)
        ww = np.concatenate([w, w]).astype(float)
        key = u * n + v
        order = np.argsort(key, kind="stable")
        key, ww = key[order], ww[order]
        if key.size:
            start = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
            data = np.minimum.reduceat(ww, start)
            rows, cols = np.divmod(key[start], n)
        else:
            data, rows, cols = ww, key, key
        it = np.int32 if data.size + 4 * n < 2**31 - 1 else np.int64
        indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n))])
        return indptr.astype(it), cols.astype(it), data

    def csr(self, *, weight: str = "time") -> sp.csr_matrix:
        """Symmetric CSR adjacency with edge times (s) or lengths (m) as weights.

        Parallel edges keep the smallest weight (never summed).
        """
        indptr, indices, data = self.csr_arrays(weight=weight)
        return sp.csr_matrix((data, indices, indptr), shape=(self.n_nodes, self.n_nodes))

    @classmethod
    def from_edges(
        cls,
        node_x,
        node_y,
        edge_u,
        edge_v,
        *,
        crs,
        speed_mps: float = 1.0,
        edge_length_m=None,
        edges=None,
    ) -> WalkNetwork:
        """Build a network from node coordinates and edge end nodes.

        Lengths default to the straight distance between the end nodes; the
        edge geometries default to straight lines.
        """
        node_x = np.asarray(node_x, dtype=float)
        node_y = np.asarray(node_y, dtype=float)
        edge_u = np.asarray(edge_u, dtype=np.int64)
        edge_v = np.asarray(edge_v, dtype=np.int64)
        if edge_length_m is None:
            edge_length_m = np.hypot(node_x[edge_u] - node_x[edge_v], node_y[edge_u] - node_y[edge_v])
        edge_length_m = np.asarray(edge_length_m, dtype=float)
        if edges is None:
            import geopandas as gpd
            import shapely

            coords = np.stack(
                [np.c_[node_x[edge_u], node_y[edge_u]], np.c_[node_x[edge_v], node_y[edge_v]]], axis=1
            )
            edges = gpd.GeoDataFrame(
                {"u": edge_u, "v": edge_v, "length_m": edge_length_m},
                geometry=shapely.linestrings(coords),
                crs=crs,
            )
        return cls(
            crs=pyproj.CRS.from_user_input(crs),
            node_x=node_x,
            node_y=node_y,
            edge_u=edge_u,
            edge_v=edge_v,
            edge_length_m=edge_length_m,
            edge_time_s=edge_length_m / speed_mps,
            speed_mps=float(speed_mps),
            edges=edges,
        )

    def with_speed(self, speed_mps: float) -> WalkNetwork:
        """The same network with times recomputed for another walking speed.

        Crossing delays (``edge_delay_s``) do not depend on speed and are kept.
        """
        factor = self.speed_mps / float(speed_mps)
        if self.edge_delay_s is None:
            times = self.edge_time_s * factor
        else:
            times = (self.edge_time_s - self.edge_delay_s) * factor + self.edge_delay_s
        return replace(self, edge_time_s=times, speed_mps=float(speed_mps))

    def to_networkx(self, *, weight: str = "time"):
        """An undirected `networkx.Graph` (for checks; never in the hot path)."""
        import networkx as nx

        g = nx.Graph()
        g.add_nodes_from(range(self.n_nodes))
        w = self.edge_time_s if weight == "time" else self.edge_length_m
        for a, b, c in zip(self.edge_u.tolist(), self.edge_v.tolist(), w.tolist()):
            if g.has_edge(a, b):
                c = min(c, g[a][b]["weight"])
            g.add_edge(a, b, weight=c)
        return g


# --------------------------------------------------------------------------- helpers
def _profile(profile: str | None, speed_mps: float | None, avoid_steps: bool | None
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


def _walkable_set(include_classes, exclude_classes, avoid_steps: bool) -> set[str]:
    """The road classes kept: see `from_lines` for the rules."""
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


def _norm_classes(values) -> np.ndarray:
    """Road class strings: lower case, Chinese classes mapped, missing -> 'unknown'."""
    import pandas as pd

    s = pd.Series(values, dtype=object)
    s = s.where(s.notna(), "unknown").astype(str).str.strip()
    s = s.map(lambda v: CLASS_SYNONYMS.get(v, v)).str.lower()
    s = s.where(s != "", "unknown")
    return s.to_numpy(dtype=object)


def _truthy(values) -> np.ndarray:
    """OSM-style flags ('T', 'yes', 'viaduct', 1, True) as booleans; 'F', 'no', 0, '' false."""
    import pandas as pd

    s = pd.Series(values, dtype=object)
    out = ~s.isna().to_numpy()
    txt = s.astype(str).str.strip().str.lower().to_numpy()
    return out & ~np.isin(txt, list(_FALSE))


def _find_column(columns, wanted: str | None, candidates: tuple[str, ...], what: str):
    if wanted is not None:
        if wanted not in columns:
            raise NetworkError(
                f"The road layer has no column {wanted!r} for the {what}. Its columns are: "
                f"{', '.join(map(str, columns))}."
            )
        return wanted
    lower = {str(c).lower(): c for c in columns}
    for c in candidates:
        if c in lower:
            return lower[c]
    return None


def _metric_crs_for(gdf) -> pyproj.CRS:
    from planner.coords import metric_crs

    if gdf.crs is not None and not gdf.crs.is_geographic:
        return gdf.crs
    b = gdf.to_crs(4326).total_bounds
    return metric_crs([b[0], b[2]], [b[1], b[3]])


def tobler_factor(grade) -> np.ndarray:
    """Walking-time factor of a slope, undirected, 1.0 on flat ground.

    Tobler's hiking function ``v = 6 exp(-3.5 |s + 0.05|)`` km/h, scaled so
    that flat ground gives the profile's speed.  An edge is walked both ways,
    so the factor is the mean of the time factors up and down:
    ``(1/f(s) + 1/f(-s)) / 2`` with ``f(s) = exp(-3.5 (|s + 0.05| - 0.05))``.

    Parameters
    ----------
    grade
        Rise over run (0.1 = 10 %), any shape.
    """
    s = np.asarray(grade, dtype=float)

    def f(x):
        return np.exp(-3.5 * (np.abs(x + 0.05) - 0.05))

    return 0.5 * (1.0 / f(s) + 1.0 / f(-s))


def _slope_factor(z: np.ndarray, u: np.ndarray, v: np.ndarray, length: np.ndarray) -> np.ndarray:
    """`tobler_factor` of each edge's grade (zero-length edges count as flat)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        grade = np.where(length > 0, (z[v] - z[u]) / length, 0.0)
    return tobler_factor(grade)


def with_elevation(net: WalkNetwork, node_elevation_m) -> WalkNetwork:
    """The same network with node elevations and Tobler slope-penalised times.

    Parameters
    ----------
    net
        A network without a slope penalty yet (``net.node_z`` is None).
    node_elevation_m
        Elevation of every node in metres, shape ``(net.n_nodes,)`` (e.g.
        sampled from a DEM at ``net.node_x, net.node_y``).

    Returns
    -------
    WalkNetwork
        Times ``length / speed * tobler_factor(grade) + delay``; lengths unchanged.
    """
    z = np.asarray(node_elevation_m, dtype=float)
    if z.shape != (net.n_nodes,) or not np.isfinite(z).all():
        raise NetworkError(
            f"node_elevation_m must hold one finite elevation (m) per node: expected shape "
            f"({net.n_nodes},), got {z.shape} with {int((~np.isfinite(z)).sum())} missing."
        )
    if net.node_z is not None:
        raise NetworkError("This network already has elevations (net.node_z); build it anew.")
    delay = net.edge_delay_s if net.edge_delay_s is not None else 0.0
    factor = _slope_factor(z, net.edge_u, net.edge_v, net.edge_length_m)
    times = (net.edge_time_s - delay) * factor + delay
    return replace(net, node_z=z, edge_time_s=times, report=dict(net.report, slope_penalty=True))


# --------------------------------------------------------------------------- noding
def _node_lines(geoms, layer: np.ndarray, bridge: np.ndarray, tunnel: np.ndarray, *,
                join_tolerance_m: float):
    """Split centre lines into edges between junctions (vectorised with Shapely 2 / NumPy).

    Written by hand because `shapely.node` / `unary_union` split every crossing,
    bridges included.  Rules:

    * a vertex shared by lines on the same level, or the end point of a line
      touching another line's vertex, is a junction;
    * lines crossing without a shared vertex get a junction only at grade
      (neither is a bridge or tunnel and their ``layer`` is equal);
    * a dangling end point within ``join_tolerance_m`` of another line on a
      compatible level is joined to the nearest point of that line (the line
      is extended by the gap, so lengths stay true to the geometry).

    Returns node coordinates, edge end nodes, edge geometries, the source line
    of each edge and a dict of counts.
    """
    import shapely

    n_lines = len(geoms)
    xy, li = shapely.get_coordinates(geoms, return_index=True)
    if len(xy):
        rep = np.r_[False, (li[1:] == li[:-1]) & (xy[1:] == xy[:-1]).all(axis=1)]
        xy, li = xy[~rep], li[~rep]
    count = np.bincount(li, minlength=n_lines)
    degenerate = int((count < 2).sum())
    if degenerate:
        keep = count[li] >= 2
        xy, li = xy[keep], li[keep]
    stats: dict[str, Any] = {"degenerate_lines": degenerate}
    if len(xy) == 0:
        raise NetworkError("The road layer has no line with two distinct points.")
    first = np.r_[True, li[1:] != li[:-1]]
    last = np.r_[li[1:] != li[:-1], True]
    seg_ok = ~last[:-1]
    seglen = np.hypot(*(xy[1:] - xy[:-1]).T)
    cs = np.r_[0.0, np.cumsum(np.where(seg_ok, seglen, 0.0))]
    line_start = np.zeros(n_lines, dtype=np.int64)
    line_start[li[first]] = np.flatnonzero(first)
    meas = cs - cs[line_start[li]]
    is_end = first | last
    # effective level of a line for shared vertices: bridges default to +1, tunnels to -1
    sep = bridge | tunnel
    elayer = layer.copy()
    elayer[(layer == 0) & bridge] = 1
    elayer[(layer == 0) & tunnel] = -1
    # --- shared vertices
    _, pid, n_occ = _unique_rows(xy)
    end_at = np.bincount(pid, weights=is_end.astype(float)) > 0
    lev = elayer[li]
    lev_code = np.unique(lev, return_inverse=True)[1].ravel()
    _, kinv, kcnt = np.unique(pid * (lev_code.max() + 1) + lev_code, return_inverse=True,
                              return_counts=True)
    node = is_end | end_at[pid] | (kcnt[kinv.ravel()] >= 2)
    shared = n_occ[pid] >= 2
    stats["shared_vertex_junctions"] = int(np.unique(pid[shared & node]).size)
    stats["shared_vertices_other_level"] = int(np.unique(pid[shared & ~node]).size)
    # --- crossings without a shared vertex
    sidx = np.flatnonzero(seg_ok)
    seg_line = li[sidx]
    segs = shapely.linestrings(np.stack([xy[sidx], xy[sidx + 1]], axis=1))
    tree = shapely.STRtree(segs)
    a, b = tree.query(segs)  # envelope pairs; the exact test below is vectorised
    m = a < b
    a, b = a[m], b[m]
    p0, d1 = xy[sidx[a]], xy[sidx[a] + 1] - xy[sidx[a]]
    q0, d2 = xy[sidx[b]], xy[sidx[b] + 1] - xy[sidx[b]]
    den = d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0]
    e = q0 - p0
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (e[:, 0] * d2[:, 1] - e[:, 1] * d2[:, 0]) / den
        u = (e[:, 0] * d1[:, 1] - e[:, 1] * d1[:, 0]) / den
    eps = 1e-9
    proper = (den != 0) & (t > eps) & (t < 1 - eps) & (u > eps) & (u < 1 - eps)
    a, b, t, u = a[proper], b[proper], t[proper], u[proper]
    la, lb = seg_line[a], seg_line[b]
    at_grade = ~sep[la] & ~sep[lb] & (layer[la] == layer[lb])
    stats["crossings"] = int(len(a))
    stats["crossings_grade_separated"] = int((~at_grade).sum())
    stats["crossings_at_grade"] = int(at_grade.sum())
    a, b, t, u = a[at_grade], b[at_grade], t[at_grade], u[at_grade]
    cp = xy[sidx[a]] + t[:, None] * (xy[sidx[a] + 1] - xy[sidx[a]])
    ins_line = [seg_line[a], seg_line[b]]
    ins_meas = [meas[sidx[a]] + t * seglen[sidx[a]], meas[sidx[b]] + u * seglen[sidx[b]]]
    ins_xy = [cp, cp]
    # --- near misses: dangling end points close to another line
    dangling = np.flatnonzero(is_end & (n_occ[pid] == 1))
    pts = shapely.points(xy[dangling])
    if join_tolerance_m > 0:
        ea, sb = tree.query(pts, predicate="dwithin", distance=join_tolerance_m)
    else:
        ea, sb = tree.query(pts, predicate="intersects")
    la, lb = li[dangling[ea]], seg_line[sb]
    ok = (la != lb) & ((elayer[la] == elayer[lb]) | (sep[la] & ~sep[lb] & (layer[lb] == 0)))
    ea, sb, la, lb = ea[ok], sb[ok], la[ok], lb[ok]
    s0 = sidx[sb]
    p0, d = xy[s0], xy[s0 + 1] - xy[s0]
    ev = dangling[ea]
    ept = xy[ev]
    tt = np.clip(((ept - p0) * d).sum(axis=1) / (d * d).sum(axis=1), 0.0, 1.0)
    proj = p0 + tt[:, None] * d
    gap = np.hypot(*(ept - proj).T)
    order = np.lexsort((gap, ea))
    firsts = order[np.r_[True, ea[order][1:] != ea[order][:-1]]] if len(order) else order
    ev, lb, s0, tt, proj, gap = ev[firsts], lb[firsts], s0[firsts], tt[firsts], proj[firsts], gap[firsts]
    # two dangling ends joined to each other: keep one join (the other end becomes its target)
    if len(ev):
        target_end = np.where(tt == 0.0, s0, np.where(tt == 1.0, s0 + 1, -1))
        joined = dict(zip(ev.tolist(), range(len(ev))))
        drop = np.zeros(len(ev), dtype=bool)
        for j, te in enumerate(target_end.tolist()):
            k = joined.get(te)
            if k is not None and lb[k] == li[ev[j]] and not drop[k]:
                drop[max(j, k)] = True
        keep = ~drop
        ev, lb, s0, tt, proj, gap = ev[keep], lb[keep], s0[keep], tt[keep], proj[keep], gap[keep]
    stats["near_miss_joins"] = int(len(ev))
    stats["near_miss_max_gap_m"] = float(gap.max()) if len(gap) else 0.0
    ins_line.append(lb)
    ins_meas.append(meas[s0] + tt * seglen[s0])
    ins_xy.append(proj)
    moved = gap <= 1e-9
    xy = xy.copy()
    xy[ev[moved]] = proj[moved]
    ext = ~moved
    node[ev[ext]] = False
    ext_meas = np.where(first[ev[ext]], -gap[ext], meas[ev[ext]] + gap[ext])
    ins_line.append(li[ev[ext]])
    ins_meas.append(ext_meas)
    ins_xy.append(proj[ext])
    # --- every vertex, sorted along its line
    V_line = np.concatenate([li, *ins_line])
    V_meas = np.concatenate([meas, *ins_meas])
    V_xy = np.concatenate([xy, *ins_xy])
    V_node = np.concatenate([node] + [np.ones(len(x), dtype=bool) for x in ins_line])
    order = np.lexsort((V_meas, V_line))
    V_line, V_xy, V_node = V_line[order], V_xy[order], V_node[order]
    same = (V_line[1:] == V_line[:-1]) & (V_xy[1:] == V_xy[:-1]).all(axis=1)
    grp_start = np.r_[True, ~same]
    V_node = np.maximum.reduceat(V_node, np.flatnonzero(grp_start))
    V_line, V_xy = V_line[grp_start], V_xy[grp_start]
    V_node |= np.r_[True, V_line[1:] != V_line[:-1]] | np.r_[V_line[1:] != V_line[:-1], True]
    for _ in range(3):  # split closed loops (an edge from a node to itself) in the middle
        nodes_xy, eu, ev_, edge_v0, edge_v1, sj, eid = _edges_from_vertices(V_line, V_xy, V_node)
        loops = np.flatnonzero((eu == ev_) & (edge_v1 - edge_v0 >= 2))
        if not len(loops):
            break
        V_node[(edge_v0[loops] + edge_v1[loops]) // 2] = True
    cv = np.r_[sj, edge_v1]
    ce = np.r_[eid, np.arange(len(eu))]
    o = np.lexsort((cv, ce))
    geoms_out = shapely.linestrings(V_xy[cv[o]], indices=ce[o])
    return nodes_xy, eu, ev_, geoms_out, V_line[edge_v0], stats


def _unique_rows(xy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unique coordinate pairs: (unique rows, inverse, counts); faster than np.unique(axis=0)."""
    order = np.lexsort((xy[:, 1], xy[:, 0]))
    s = xy[order]
    new = np.r_[True, (s[1:] != s[:-1]).any(axis=1)]
    gid = np.cumsum(new) - 1
    inv = np.empty(len(xy), dtype=np.int64)
    inv[order] = gid
    return s[new], inv, np.bincount(gid)


def _drawn_from_v(geoms, node_xy: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """True where a line's first vertex is nearer node ``v`` than node ``u`` (drawn v to u)."""
    import shapely

    start = shapely.get_coordinates(shapely.get_point(geoms, 0))
    return np.hypot(*(start - node_xy[u]).T) > np.hypot(*(start - node_xy[v]).T)


def _edges_from_vertices(V_line, V_xy, V_node):
    """Node ids and edges (first/last vertex) from vertices sorted along their lines."""
    node_idx = np.flatnonzero(V_node)
    nodes_xy, inv, _ = _unique_rows(V_xy[node_idx])
    nid = np.full(len(V_line), -1, dtype=np.int64)
    nid[node_idx] = inv
    sj = np.flatnonzero(V_line[1:] == V_line[:-1])
    start = V_node[sj]
    eid = np.cumsum(start) - 1
    edge_v0 = sj[start]
    last_seg = np.r_[np.flatnonzero(np.diff(eid)), len(sj) - 1]
    edge_v1 = sj[last_seg] + 1
    return nodes_xy, nid[edge_v0], nid[edge_v1], edge_v0, edge_v1, sj, eid


def _merge_degree2(node_xy, eu, ev, geoms, attrs):
    """Merge chains of edges through pass-through nodes (degree 2, same class and name).

    Where a road continues as another line of the same class and name, the
    shared end point is no junction: the two edges become one (as OSMnx's
    ``simplify_graph`` does for OSM).  Rings and loops that would start and
    end at one node are left as they are.  Returns the new arrays and the
    number of nodes merged away.
    """
    import shapely
    from scipy.sparse.csgraph import connected_components

    n, m = len(node_xy), len(eu)
    deg = np.bincount(eu, minlength=n) + np.bincount(ev, minlength=n)
    end_nodes = np.r_[eu, ev]  # each edge's two ends, and the edge they belong to
    end_edge = np.r_[np.arange(m), np.arange(m)]
    order = np.argsort(end_nodes, kind="stable")
    ends, eidx = end_nodes[order], end_edge[order]
    i = np.flatnonzero((ends[:-1] == ends[1:]) & (deg[ends[:-1]] == 2))
    e1, e2, via = eidx[i], eidx[i + 1], ends[i]
    ok = e1 != e2
    for v in attrs.values():
        v = np.asarray(v)
        ok &= v[e1] == v[e2]
    e1, e2, via = e1[ok], e2[ok], via[ok]
    if not len(via):
        return node_xy, eu, ev, geoms, attrs, 0
    adj = sp.coo_matrix((np.ones(len(e1)), (e1, e2)), shape=(m, m))
    _, grp = connected_components(adj, directed=False)
    removed = np.zeros(n, dtype=bool)
    removed[via] = True
    # a chain has exactly two kept end points, and they differ
    end_grp = grp[end_edge]
    kept = ~removed[end_nodes]
    n_ends = np.bincount(end_grp[kept], minlength=grp.max() + 1)
    lo = np.full(grp.max() + 1, np.iinfo(np.int64).max)
    hi = np.full(grp.max() + 1, -1)
    np.minimum.at(lo, end_grp[kept], end_nodes[kept])
    np.maximum.at(hi, end_grp[kept], end_nodes[kept])
    size = np.bincount(grp)
    good = (size > 1) & (n_ends == 2) & (lo != hi)
    bad_grp = (size > 1) & ~good
    removed[via[bad_grp[grp[e1]]]] = False
    merge = good[grp]  # edges that are merged into a chain
    single = np.flatnonzero(~merge)
    medges = np.flatnonzero(merge)
    medges = medges[np.argsort(grp[medges], kind="stable")]
    gids, first_pos = np.unique(grp[medges], return_index=True)
    merged = shapely.line_merge(shapely.multilinestrings(geoms[medges],
                                                         indices=np.searchsorted(gids, grp[medges])))
    a, b = lo[gids], hi[gids]
    a_first = ~_drawn_from_v(merged, node_xy, a, b)
    mu, mv = np.where(a_first, a, b), np.where(a_first, b, a)
    rep = medges[first_pos]  # attributes from the chain's first edge
    out_rank = np.argsort(np.r_[single, rep], kind="stable")
    new_u = np.r_[eu[single], mu][out_rank]
    new_v = np.r_[ev[single], mv][out_rank]
    new_geoms = np.r_[geoms[single], merged][out_rank]
    new_attrs = {k: np.r_[np.asarray(v)[single], np.asarray(v)[rep]][out_rank]
                 for k, v in attrs.items()}
    keep_node = ~removed
    new_id = np.cumsum(keep_node) - 1
    return (node_xy[keep_node], new_id[new_u], new_id[new_v], new_geoms, new_attrs,
            int(removed.sum()))


# --------------------------------------------------------------------------- assembling
def _assemble(
    node_xy: np.ndarray,
    edge_u: np.ndarray,
    edge_v: np.ndarray,
    geoms,
    attrs: dict[str, np.ndarray],
    *,
    crs,
    speed_mps: float,
    profile: str | None,
    min_component_share: float,
    crossing_delay_s: float,
    report: dict,
    node_z: np.ndarray | None = None,
    node_id: np.ndarray | None = None,
) -> WalkNetwork:
    """Components, times and the edges GeoDataFrame of a noded network."""
    import geopandas as gpd
    import shapely
    from scipy.sparse.csgraph import connected_components

    if not 0.0 <= min_component_share <= 1.0:
        raise NetworkError(
            f"min_component_share={min_component_share!r} must be a share between 0 and 1 "
            "(e.g. 0.01 keeps components with at least 1 % of the nodes)."
        )
    n = len(node_xy)
    if len(edge_u) == 0:
        raise NetworkError(
            "No walkable edge is left in the network. Check the road classes "
            "(`network.include_classes` / `exclude_classes`) and the input layer."
        )
    lengths = shapely.length(geoms)
    adj = sp.coo_matrix((np.ones(len(edge_u)), (edge_u, edge_v)), shape=(n, n)).tocsr()
    n_comp, label = connected_components(adj, directed=False)
    sizes = np.bincount(label, minlength=n_comp)
    biggest = int(np.argmax(sizes))
    keep_comp = sizes >= min_component_share * n
    keep_comp[biggest] = True
    keep_node = keep_comp[label]
    keep_edge = keep_node[edge_u]
    report.update(
        n_components=int(n_comp),
        component_sizes=sorted(sizes.tolist(), reverse=True),
        largest_component_share=float(sizes[biggest] / n),
        components_dropped=int((~keep_comp).sum()),
        nodes_dropped=int((~keep_node).sum()),
        edges_dropped=int((~keep_edge).sum()),
        km_dropped=float(lengths[~keep_edge].sum() / 1000.0),
    )
    if sizes[biggest] < 0.5 * n:
        warnings.warn(
            f"The walk network is fragmented: its largest connected part holds only "
            f"{sizes[biggest] / n:.0%} of the {n} nodes ({n_comp} parts). Roads may not be "
            "noded (check `join_tolerance_m`, the `bridge`/`tunnel`/`layer` columns) or the "
            "road classes excluded may cut it apart; parts under min_component_share are dropped.",
            PlannerWarning,
            stacklevel=3,
        )
    new_id = np.cumsum(keep_node) - 1
    node_xy = node_xy[keep_node]
    eu, ev = new_id[edge_u[keep_edge]], new_id[edge_v[keep_edge]]
    geoms = geoms[keep_edge]
    lengths = lengths[keep_edge]
    attrs = {k: np.asarray(v)[keep_edge] for k, v in attrs.items()}
    if node_z is not None:
        node_z = np.asarray(node_z, dtype=float)[keep_node]
    if node_id is not None:
        node_id = np.asarray(node_id)[keep_node]
    times = lengths / speed_mps
    if node_z is not None and np.isfinite(node_z).all():
        times = times * _slope_factor(node_z, eu, ev, lengths)
        report["slope_penalty"] = True
    delay = None
    if crossing_delay_s > 0:
        fclass = attrs.get("fclass")
        major = np.isin(fclass.astype(str), MAJOR_CLASSES) if fclass is not None else np.zeros(
            len(eu), dtype=bool)
        nn = len(node_xy)
        deg = np.bincount(eu, minlength=nn) + np.bincount(ev, minlength=nn)
        on_major = (np.bincount(eu[major], minlength=nn) + np.bincount(ev[major], minlength=nn)) > 0
        crossing = on_major & (deg >= 3)
        delay = np.where(major, 0.0, 0.5 * crossing_delay_s * (crossing[eu].astype(float)
                                                               + crossing[ev]))
        times = times + delay
        report["major_crossing_nodes"] = int(crossing.sum())
    cols = {"u": eu, "v": ev, "length_m": lengths}
    for k in ("fclass", "name"):
        if k in attrs:
            cols[k] = attrs[k]
    for k, v in attrs.items():
        cols.setdefault(k, v)
    edges = gpd.GeoDataFrame(cols, geometry=np.asarray(geoms), crs=crs)
    report.update(
        n_nodes=int(len(node_xy)),
        n_edges=int(len(eu)),
        total_km=float(lengths.sum() / 1000.0),
        profile=profile,
        speed_mps=float(speed_mps),
        crossing_delay_s=float(crossing_delay_s),
    )
    return WalkNetwork(
        crs=pyproj.CRS.from_user_input(crs),
        node_x=np.ascontiguousarray(node_xy[:, 0]),
        node_y=np.ascontiguousarray(node_xy[:, 1]),
        edge_u=eu.astype(np.int64),
        edge_v=ev.astype(np.int64),
        edge_length_m=lengths,
        edge_time_s=times,
        speed_mps=float(speed_mps),
        edges=edges,
        report=report,
        edge_delay_s=delay,
        node_z=node_z,
        node_id=node_id,
        profile=profile,
    )


def _class_filter(classes: np.ndarray, lengths_m: np.ndarray, *, include_classes,
                  exclude_classes, avoid_steps: bool, report: dict,
                  count: np.ndarray | None = None) -> np.ndarray:
    """Mask of walkable rows; counts of what was dropped go into ``report``.

    ``count`` (bool mask) says which rows are counted in the report (for OSM
    graphs: one row per way and direction-free segment).
    """
    import pandas as pd

    walk = _walkable_set(include_classes, exclude_classes, avoid_steps)
    keep = np.isin(classes.astype(str), sorted(walk))
    c = np.ones(len(keep), dtype=bool) if count is None else count
    dropped = pd.Series(lengths_m[~keep & c]).groupby(classes[~keep & c].astype(str)).agg(
        ["size", "sum"])
    report["excluded_classes"] = {str(k): int(v) for k, v in dropped["size"].items()}
    report["excluded_km"] = float(dropped["sum"].sum() / 1000.0)
    report["steps_avoided"] = int(avoid_steps and ((classes == "steps") & c).sum())
    if include_classes is None:
        known = set(WALKABLE_CLASSES) | set(DEFAULT_EXCLUDE) | set(_NOT_ROADS)
        unknown = sorted(set(dropped.index) - known)
        if unknown:
            counts = ", ".join(f"{c} ({report['excluded_classes'][c]})" for c in unknown)
            warnings.warn(
                f"Road classes not recognised as walkable were dropped: {counts}. If people "
                "walk on them, list them in `network.include_classes` (with the walkable "
                f"ones: {', '.join(sorted(walk))}).",
                PlannerWarning,
                stacklevel=3,
            )
    return keep


# --------------------------------------------------------------------------- sources
def from_lines(
    lines,
    *,
    speed_mps: float | None = None,
    profile: str | None = "older_adult",
    join_tolerance_m: float = 1.0,
    exclude_classes: list[str] | None = None,
    include_classes: list[str] | None = None,
    avoid_steps: bool | None = None,
    min_component_share: float = 0.01,
    crs=None,
    crossing_delay_s: float = 0.0,
    class_column: str | None = None,
    name_column: str | None = None,
    layer: str | None = None,
    coord_system: str = "wgs84",
) -> WalkNetwork:
    """Build a walk network from a road centre-line layer.

    Lines are split where they meet or cross at grade; a bridge, a tunnel or
    a different ``layer`` value passes over without a junction.  Dangling
    ends within ``join_tolerance_m`` of another line are joined (and
    counted in ``net.report["near_miss_joins"]``).  Only the connected
    components with at least ``min_component_share`` of the nodes are kept
    (always the largest); the rest is reported.

    Parameters
    ----------
    lines
        A GeoDataFrame of (Multi)LineStrings with a CRS, or the path of a
        Shapefile / GeoPackage / GeoJSON / KML file.  Optional columns:
        road class (``fclass`` or ``highway``; Chinese classes such as
        主干路 are mapped), ``name``, ``bridge``, ``tunnel``, ``layer``.
    speed_mps
        Walking speed in m/s; default the profile's.
    profile
        A key of `PROFILES` (default ``older_adult``, 1.0 m/s).
    join_tolerance_m
        Largest gap in metres between a line's dangling end and another
        line that is closed.
    exclude_classes
        Road classes not walked; replaces `DEFAULT_EXCLUDE` (motorway,
        motorway_link, trunk, trunk_link).
    include_classes
        If given, exactly these classes are walked (minus ``exclude_classes``).
    avoid_steps
        Drop ``steps``; default the profile's (True for frail and wheelchair).
    min_component_share
        Components with fewer nodes than this share are dropped (0 keeps all).
    crs
        The metric CRS of the result; default the layer's own if projected,
        else the local UTM zone.
    crossing_delay_s
        Seconds to cross a major road (primary/secondary/trunk and links):
        half of it is added at each end of a minor edge that meets a major
        road at a junction, so a walk across the major road pays it once.
    class_column, name_column
        Column names when they are not among the usual ones.
    layer, coord_system
        Layer name and datum (``wgs84``/``gcj02``/``bd09``) when ``lines`` is a path.

    Returns
    -------
    WalkNetwork
        With ``edges`` (u, v, length_m, fclass, name, geometry from u to v)
        and ``report`` (crossings, joins, components, dropped classes).

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> roads = gpd.GeoDataFrame({"fclass": ["residential", "residential"]},
    ...     geometry=[shapely.LineString([(0, 50), (100, 50)]),
    ...               shapely.LineString([(50, 0), (50, 100)])], crs="EPSG:32649")
    >>> net = from_lines(roads)
    >>> net.n_nodes, net.n_edges
    (5, 4)
    """
    import geopandas as gpd

    if isinstance(lines, (str, os.PathLike)):
        lines = _read_lines(Path(lines), layer=layer, coord_system=coord_system,
                            target_crs=crs)
    if not isinstance(lines, gpd.GeoDataFrame):
        raise NetworkError(
            f"from_lines needs a GeoDataFrame of road lines or a file path, got "
            f"{type(lines).__name__}."
        )
    if lines.crs is None:
        raise NetworkError(
            "The road layer has no CRS. Set one (e.g. `gdf.set_crs('EPSG:4326')`, or `crs:` "
            "for the layer in the scenario) so lengths can be measured in metres."
        )
    if join_tolerance_m < 0 or not np.isfinite(join_tolerance_m):
        raise NetworkError(f"join_tolerance_m={join_tolerance_m!r} must be 0 or more metres.")
    profile, speed, avoid = _profile(profile, speed_mps, avoid_steps)
    report: dict[str, Any] = {"source": "lines", "n_lines_in": int(len(lines))}
    gdf = lines[~(lines.geometry.isna() | lines.geometry.is_empty)]
    kinds = gdf.geom_type
    bad = ~kinds.isin(["LineString", "MultiLineString"])
    if bad.all():
        raise NetworkError(
            "The road layer has no line geometries (found "
            f"{', '.join(sorted(set(kinds)))}). Give a layer of road centre lines."
        )
    if bad.any() or len(gdf) < len(lines):
        n_bad = int(bad.sum()) + len(lines) - len(gdf)
        warnings.warn(
            f"{n_bad} rows of the road layer are empty or not lines "
            f"({', '.join(sorted(set(kinds[bad])) or ['empty'])}) and were ignored.",
            PlannerWarning,
            stacklevel=2,
        )
        gdf = gdf[~bad]
    metric = pyproj.CRS.from_user_input(crs) if crs is not None else _metric_crs_for(gdf)
    gdf = gdf.explode(index_parts=False).to_crs(metric)
    cols = list(gdf.columns)
    ccol = _find_column(cols, class_column, _CLASS_COLUMNS, "road class")
    ncol = _find_column(cols, name_column, _NAME_COLUMNS, "road name")
    if ccol is None:
        warnings.warn(
            "The road layer has no road-class column (fclass/highway/道路等级), so every line "
            "is treated as walkable, motorways included. Name the column with `class_column`.",
            PlannerWarning,
            stacklevel=2,
        )
        classes = np.full(len(gdf), "unknown", dtype=object)
    else:
        classes = _norm_classes(gdf[ccol].to_numpy())
    names = (gdf[ncol].fillna("").astype(str).to_numpy() if ncol is not None
             else np.full(len(gdf), "", dtype=object))
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    import shapely

    keep = _class_filter(classes, shapely.length(geoms), include_classes=include_classes,
                         exclude_classes=exclude_classes, avoid_steps=avoid, report=report)
    report["n_lines_used"] = int(keep.sum())
    if not keep.any():
        raise NetworkError(
            "No walkable edge is left in the network: every line's road class is excluded "
            f"({', '.join(sorted(report['excluded_classes']))}). Check `network.include_classes`"
            " / `exclude_classes`."
        )

    def col(name, conv):
        c = _find_column(cols, None, (name,), name)
        return conv(gdf[c].to_numpy()) if c is not None else None

    bridge = col("bridge", _truthy)
    tunnel = col("tunnel", _truthy)
    lay = col("layer", lambda v: np.nan_to_num(
        np.asarray(__import__("pandas").to_numeric(v, errors="coerce"), dtype=float)))
    n = len(gdf)
    bridge = np.zeros(n, dtype=bool) if bridge is None else bridge
    tunnel = np.zeros(n, dtype=bool) if tunnel is None else tunnel
    lay = np.zeros(n) if lay is None else lay
    nodes_xy, eu, ev, egeoms, eline, stats = _node_lines(
        geoms[keep], np.round(lay[keep]).astype(np.int64), bridge[keep], tunnel[keep],
        join_tolerance_m=float(join_tolerance_m))
    report.update(stats)
    report["join_tolerance_m"] = float(join_tolerance_m)
    attrs = {"fclass": classes[keep][eline], "name": names[keep][eline]}
    nodes_xy, eu, ev, egeoms, attrs, n_merged = _merge_degree2(nodes_xy, eu, ev, egeoms, attrs)
    report["pass_through_nodes_merged"] = n_merged
    return _assemble(nodes_xy, eu, ev, egeoms, attrs, crs=metric, speed_mps=speed,
                     profile=profile, min_component_share=min_component_share,
                     crossing_delay_s=crossing_delay_s, report=report)


def _read_lines(path: Path, *, layer: str | None, coord_system: str = "wgs84",
                target_crs=None):
    """Read a road layer with `planner.layers.read_layer` (KML, GBK Shapefiles, datums)."""
    from planner.layers import read_layer

    if not path.exists():
        raise NetworkError(f"Road layer {path} does not exist. Check `network.path`.")
    return read_layer(path, kind="lines", layer=layer, coord_system=coord_system,
                      target_crs=target_crs, name=f"network ({path.name})")


# --------------------------------------------------------------------------- OSM
_OSM_EXTRA_TAGS = ("foot", "sidewalk", "layer", "service", "access", "area", "bridge", "tunnel")


class _OsmTags:
    """Context manager that makes OSMnx keep the way tags the walk filter needs."""

    def __enter__(self):
        import osmnx as ox

        self._saved = list(ox.settings.useful_tags_way)
        ox.settings.useful_tags_way = list(dict.fromkeys(self._saved + list(_OSM_EXTRA_TAGS)))
        return self

    def __exit__(self, *exc):
        import osmnx as ox

        ox.settings.useful_tags_way = self._saved
        return False


def _first(value):
    return value[0] if isinstance(value, list) and value else value


def _filter_osm_graph(G, *, include_classes, exclude_classes, avoid_steps: bool, report: dict):
    """Remove edges people cannot walk on (road class, foot=no, private access, areas)."""
    edges = list(G.edges(keys=True, data=True))
    if not edges:
        raise NetworkError("The OSM data has no ways (no `highway` lines) to build a network from.")
    hw = [d.get("highway") for _, _, _, d in edges]
    classes = _norm_classes([_first(h) if h is not None else "not_a_road" for h in hw])
    lengths = np.array([float(d.get("length", 0.0)) for _, _, _, d in edges])
    mixed = [isinstance(h, list) for h in hw]
    # count each way's segment once, whichever directions the graph holds
    seen: set = set()
    count = np.zeros(len(edges), dtype=bool)
    for i, (u, v, _, d) in enumerate(edges):
        key = (str(d.get("osmid")), min(u, v), max(u, v))
        count[i] = key not in seen
        seen.add(key)
    not_road = classes == "not_a_road"
    report["non_highway_ways"] = int((not_road & count).sum())
    count &= ~not_road
    keep = _class_filter(classes, lengths, include_classes=include_classes,
                         exclude_classes=exclude_classes, avoid_steps=avoid_steps, report=report,
                         count=count)
    walk = _walkable_set(include_classes, exclude_classes, avoid_steps)
    no_access = 0
    for i, (_, _, _, d) in enumerate(edges):
        if not keep[i]:
            continue
        if mixed[i] and not set(_norm_classes(hw[i])) <= walk:
            keep[i] = False
            continue
        foot = str(_first(d.get("foot", ""))).lower()
        access = str(_first(d.get("access", ""))).lower()
        if (foot in ("no", "private") or str(_first(d.get("area", ""))).lower() == "yes"
                or (access in ("no", "private") and foot not in ("yes", "designated", "permissive"))
                or str(_first(d.get("service", ""))).lower() == "private"):
            keep[i] = False
            no_access += int(count[i])
    report["excluded_no_foot_access"] = no_access
    H = G.copy()
    H.remove_edges_from([(u, v, k) for (u, v, k, _), ok in zip(edges, keep) if not ok])
    H.remove_nodes_from([n for n, deg in dict(H.degree()).items() if deg == 0])
    if H.number_of_edges() == 0:
        raise NetworkError(
            "No walkable way is left in the OSM data after the road-class filter. Check "
            "`network.include_classes` / `exclude_classes`."
        )
    return H


def from_osmnx_graph(
    G,
    *,
    speed_mps: float | None = None,
    profile: str | None = "older_adult",
    exclude_classes: list[str] | None = None,
    include_classes: list[str] | None = None,
    avoid_steps: bool | None = None,
    min_component_share: float = 0.01,
    crs=None,
    crossing_delay_s: float = 0.0,
    _report: dict | None = None,
) -> WalkNetwork:
    """Build a walk network from an OSMnx graph (projected or not).

    The graph is filtered by road class (see `from_lines`) and foot access,
    projected to ``crs`` (default: the local UTM zone), made undirected
    (one-way streets are walked both ways) and stored as arrays.  Node
    ``elevation`` attributes, when present, give a Tobler slope penalty.

    Parameters
    ----------
    G
        A `networkx.MultiDiGraph` as OSMnx builds it (nodes with ``x``/``y``,
        edges with ``highway`` and optional ``geometry``).
    speed_mps, profile, exclude_classes, include_classes, avoid_steps,
    min_component_share, crossing_delay_s
        As in `from_lines`.
    crs
        The metric CRS of the result.

    Returns
    -------
    WalkNetwork
        With ``node_id`` holding the OSM node ids.
    """
    import osmnx as ox
    import shapely

    profile, speed, avoid = _profile(profile, speed_mps, avoid_steps)
    report: dict[str, Any] = dict(_report or {"source": "osmnx"})
    if G.number_of_nodes() == 0:
        raise NetworkError("The OSMnx graph is empty.")
    G = _filter_osm_graph(G, include_classes=include_classes, exclude_classes=exclude_classes,
                          avoid_steps=avoid, report=report)
    if not G.graph.get("simplified", False):
        # after filtering, so a simplified edge never mixes a walkable and an excluded way
        G = ox.simplify_graph(G, edge_attrs_differ=["highway"])
    graph_crs = pyproj.CRS.from_user_input(G.graph.get("crs", "EPSG:4326"))
    if crs is None:
        if graph_crs.is_geographic:
            from planner.coords import metric_crs

            xs = [d["x"] for _, d in G.nodes(data=True)]
            ys = [d["y"] for _, d in G.nodes(data=True)]
            crs = metric_crs([min(xs), max(xs)], [min(ys), max(ys)])
        else:
            crs = graph_crs
    crs = pyproj.CRS.from_user_input(crs)
    if crs != graph_crs:
        G = ox.project_graph(G, to_crs=crs)
    if G.is_directed():
        G = ox.convert.to_undirected(G)
    nodes, edges = ox.graph_to_gdfs(G, fill_edge_geometry=True)
    ids = nodes.index.to_numpy()
    pos = {k: i for i, k in enumerate(ids.tolist())}
    uu = np.array([pos[k] for k in edges.index.get_level_values(0).tolist()], dtype=np.int64)
    vv = np.array([pos[k] for k in edges.index.get_level_values(1).tolist()], dtype=np.int64)
    node_xy = np.c_[nodes["x"].to_numpy(float), nodes["y"].to_numpy(float)]
    geoms = np.asarray(edges.geometry.values, dtype=object)
    flip = _drawn_from_v(geoms, node_xy, uu, vv)
    geoms[flip] = shapely.reverse(geoms[flip])
    hw = edges["highway"] if "highway" in edges else [None] * len(edges)
    fclass = _norm_classes([_first(h) for h in hw])
    names = np.array(["" if (n is None or (isinstance(n, float) and np.isnan(n)))
                      else str(_first(n)) for n in (edges["name"] if "name" in edges
                                                     else [None] * len(edges))], dtype=object)
    node_z = nodes["elevation"].to_numpy(float) if "elevation" in nodes else None
    return _assemble(node_xy, uu, vv, geoms, {"fclass": fclass, "name": names}, crs=crs,
                     speed_mps=speed, profile=profile,
                     min_component_share=min_component_share,
                     crossing_delay_s=crossing_delay_s, report=report, node_z=node_z,
                     node_id=ids)


def _pbf_to_xml(pbf: Path, xml: Path) -> None:
    """Write the highway ways of a .osm.pbf, with their nodes, to an .osm XML file (pyosmium)."""
    import osmium

    with osmium.BackReferenceWriter(str(xml), ref_src=str(pbf), overwrite=True) as writer:
        for obj in osmium.FileProcessor(str(pbf), osmium.osm.WAY).with_filter(
                osmium.filter.KeyFilter("highway")):
            writer.add(obj)


def from_osm_file(
    path,
    *,
    speed_mps: float | None = None,
    profile: str | None = "older_adult",
    exclude_classes: list[str] | None = None,
    include_classes: list[str] | None = None,
    avoid_steps: bool | None = None,
    min_component_share: float = 0.01,
    crs=None,
    crossing_delay_s: float = 0.0,
) -> WalkNetwork:
    """Build a walk network from an OSM extract (.osm XML or .osm.pbf), offline.

    XML is read with OSMnx (``graph_from_xml``); a PBF is first reduced with
    pyosmium to its ``highway`` ways and their nodes.  Ways are filtered by
    class and foot access before OSMnx simplifies the graph (so a simplified
    edge never mixes a walkable and an excluded way).

    Parameters
    ----------
    path
        The ``.osm`` / ``.xml`` / ``.osm.pbf`` file (e.g. a Geofabrik extract).
    speed_mps, profile, exclude_classes, include_classes, avoid_steps,
    min_component_share, crs, crossing_delay_s
        As in `from_osmnx_graph`.
    """
    import tempfile

    import osmnx as ox

    path = Path(path)
    if not path.is_file():
        raise NetworkError(f"OSM file {path} does not exist. Check `network.path`.")
    name = path.name.lower()
    _profile(profile, speed_mps, avoid_steps)  # fail early on a bad profile or speed
    report: dict[str, Any] = {"source": "osm_file", "path": str(path)}
    with tempfile.TemporaryDirectory() as tmp:
        xml = path
        if name.endswith(".pbf"):
            xml = Path(tmp) / "highways.osm"
            try:
                _pbf_to_xml(path, xml)
            except RuntimeError as exc:
                raise NetworkError(f"Cannot read OSM PBF file {path}: {exc}") from None
        elif not name.endswith((".osm", ".xml", ".osm.xml")):
            raise NetworkError(
                f"{path.name} is not an OSM extract. Give a .osm (XML) or .osm.pbf file, or use "
                "`source: lines` for a road centre-line layer."
            )
        try:
            with _OsmTags(), warnings.catch_warnings():
                warnings.filterwarnings("ignore", category=UserWarning, module="osmnx")
                G = ox.graph_from_xml(xml, bidirectional=True, simplify=False, retain_all=True)
        except Exception as exc:  # OSMnx raises plain exceptions on bad XML / no data
            raise NetworkError(f"Cannot build a graph from OSM file {path}: {exc}") from None
    return from_osmnx_graph(G, speed_mps=speed_mps, profile=profile, crs=crs,
                            include_classes=include_classes, exclude_classes=exclude_classes,
                            min_component_share=min_component_share,
                            crossing_delay_s=crossing_delay_s, avoid_steps=avoid_steps,
                            _report=report)


def download_osm(
    *,
    place: str | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    speed_mps: float | None = None,
    profile: str | None = "older_adult",
    exclude_classes: list[str] | None = None,
    include_classes: list[str] | None = None,
    avoid_steps: bool | None = None,
    min_component_share: float = 0.01,
    crs=None,
    crossing_delay_s: float = 0.0,
) -> WalkNetwork:
    """Download the walk network of a place or bounding box through OSMnx (needs internet).

    Parameters
    ----------
    place
        A place name OSMnx can geocode (e.g. ``"碑林区, 西安市, 陕西省, 中国"``).
    bbox
        ``(minx, miny, maxx, maxy)`` in WGS-84 degrees (lon/lat).
    speed_mps, profile, exclude_classes, include_classes, avoid_steps,
    min_component_share, crs, crossing_delay_s
        As in `from_osmnx_graph`.

    Raises
    ------
    NetworkError
        Offline, or when the place cannot be found.  Without internet use an
        extract file (`from_osm_file`) instead.
    """
    import osmnx as ox

    if (place is None) == (bbox is None):
        raise NetworkError("Give exactly one of `place` or `bbox` to download OSM data.")
    if bbox is not None:
        bbox = tuple(float(v) for v in bbox)
        if len(bbox) != 4 or not (bbox[0] < bbox[2] and bbox[1] < bbox[3]):
            raise NetworkError(
                f"bbox {bbox!r} must be (minx, miny, maxx, maxy) = (west lon, south lat, east "
                "lon, north lat) with min < max."
            )
    _profile(profile, speed_mps, avoid_steps)  # fail early on a bad profile or speed
    report: dict[str, Any] = {"source": "osmnx_download", "place": place,
                              "bbox": list(bbox) if bbox else None}
    try:
        with _OsmTags():
            if place is not None:
                G = ox.graph_from_place(place, network_type="all", simplify=False,
                                        retain_all=True)
            else:
                G = ox.graph_from_bbox(bbox, network_type="all", simplify=False,
                                       retain_all=True)
    except Exception as exc:  # requests / OSMnx errors: say what to do instead
        raise NetworkError(
            f"Could not download OSM data for {place or bbox!r} ({type(exc).__name__}: {exc}). "
            "This needs internet access to Overpass/Nominatim. Offline, download an extract "
            "(.osm.pbf, e.g. from Geofabrik) elsewhere and use `source: osm` with its path."
        ) from None
    return from_osmnx_graph(G, speed_mps=speed_mps, profile=profile, crs=crs,
                            include_classes=include_classes, exclude_classes=exclude_classes,
                            min_component_share=min_component_share,
                            crossing_delay_s=crossing_delay_s, avoid_steps=avoid_steps,
                            _report=report)


# --------------------------------------------------------------------------- GraphML
def to_graphml(net: WalkNetwork, path) -> Path:
    """Save a network as GraphML (OSMnx-compatible attribute names).

    Nodes carry ``x``, ``y`` (and ``elevation``, ``osmid`` when known); edges
    carry ``length`` (m), ``time_s``, ``highway``, ``name`` and ``geometry``
    (WKT); the graph carries ``crs``, ``speed_mps``, ``profile`` and the build
    report, so `from_graphml` restores the network exactly.
    """
    import json

    import networkx as nx
    import shapely

    path = Path(path)
    g = nx.MultiGraph(
        crs=net.crs.to_wkt(), created_by="planner", speed_mps=float(net.speed_mps),
        profile=net.profile or "", report=json.dumps(net.report, default=str, ensure_ascii=False),
    )
    for i in range(net.n_nodes):
        attrs: dict[str, Any] = {"x": float(net.node_x[i]), "y": float(net.node_y[i])}
        if net.node_z is not None:
            attrs["elevation"] = float(net.node_z[i])
        if net.node_id is not None:
            attrs["osmid"] = str(net.node_id[i])
        g.add_node(i, **attrs)
    edges = net.edges
    wkt = shapely.to_wkt(np.asarray(edges.geometry.values), rounding_precision=-1) if (
        edges is not None) else [""] * net.n_edges
    fclass = edges["fclass"].astype(str).tolist() if edges is not None and "fclass" in edges \
        else [""] * net.n_edges
    name = edges["name"].fillna("").astype(str).tolist() if edges is not None and "name" in edges \
        else [""] * net.n_edges
    delay = net.edge_delay_s if net.edge_delay_s is not None else np.zeros(net.n_edges)
    for i in range(net.n_edges):
        g.add_edge(int(net.edge_u[i]), int(net.edge_v[i]), key=i, edge_index=i,
                   length=float(net.edge_length_m[i]), time_s=float(net.edge_time_s[i]),
                   delay_s=float(delay[i]), highway=fclass[i], name=name[i], geometry=wkt[i])
    nx.write_graphml(g, path)
    return path


def from_graphml(
    path,
    *,
    speed_mps: float | None = None,
    profile: str | None = None,
    crs=None,
    min_component_share: float = 0.0,
    exclude_classes: list[str] | None = None,
    include_classes: list[str] | None = None,
    avoid_steps: bool | None = None,
    crossing_delay_s: float | None = None,
) -> WalkNetwork:
    """Load a network saved with `to_graphml`, or an OSMnx GraphML (``ox.save_graphml``).

    A planner file is restored as saved (times included); ``speed_mps`` or
    ``profile`` re-time it.  A profile that avoids steps (``frail``,
    ``wheelchair``, or ``avoid_steps=True``) removes the saved ``steps``
    edges, and explicit ``include_classes`` / ``exclude_classes`` filter the
    saved edges as in `from_lines`; the network is then re-assembled
    (components, times) and the report says what was dropped.  An OSMnx
    file goes through `from_osmnx_graph` (default profile ``older_adult``).

    Parameters
    ----------
    path
        The ``.graphml`` file.
    speed_mps, profile
        Walking speed or profile to re-time the network with.
    crs
        Reproject to this metric CRS.
    min_component_share
        As in `from_lines` (for a planner file, used when edges are removed).
    exclude_classes, include_classes, avoid_steps
        As in `from_lines`.
    crossing_delay_s
        As in `from_lines`; ``None`` keeps a planner file's saved delays.
    """
    import json

    import geopandas as gpd
    import networkx as nx
    import shapely

    path = Path(path)
    if not path.is_file():
        raise NetworkError(f"GraphML file {path} does not exist. Check `network.path`.")
    try:
        g = nx.read_graphml(path)
    except Exception as exc:  # malformed XML / not GraphML
        raise NetworkError(f"{path} is not a readable GraphML file: {exc}") from None
    if g.graph.get("created_by") != "planner":
        import osmnx as ox

        G = ox.load_graphml(path)
        return from_osmnx_graph(G, speed_mps=speed_mps, profile=profile or "older_adult",
                                crs=crs, min_component_share=min_component_share,
                                exclude_classes=exclude_classes, include_classes=include_classes,
                                avoid_steps=avoid_steps, crossing_delay_s=crossing_delay_s or 0.0)
    n = g.number_of_nodes()
    node_x = np.empty(n)
    node_y = np.empty(n)
    z = np.empty(n) if n and "elevation" in next(iter(g.nodes.values())) else None
    osmid = [None] * n
    for k, d in g.nodes(data=True):
        i = int(k)
        node_x[i], node_y[i] = float(d["x"]), float(d["y"])
        if z is not None:
            z[i] = float(d["elevation"])
        osmid[i] = d.get("osmid")
    rows = sorted(((int(d["edge_index"]), int(a), int(b), d)
                   for a, b, d in g.edges(data=True)), key=lambda r: r[0])
    eu = np.array([r[1] for r in rows], dtype=np.int64)
    ev = np.array([r[2] for r in rows], dtype=np.int64)
    length = np.array([float(r[3]["length"]) for r in rows])
    time_s = np.array([float(r[3]["time_s"]) for r in rows])
    delay = np.array([float(r[3].get("delay_s", 0.0)) for r in rows])
    geoms = shapely.from_wkt([r[3].get("geometry") or None for r in rows])
    # an undirected reader may return (v, u): keep u as the geometry's start
    flip = _drawn_from_v(geoms, np.c_[node_x, node_y], eu, ev)
    eu[flip], ev[flip] = ev[flip], eu[flip].copy()
    graph_crs = pyproj.CRS.from_user_input(g.graph["crs"])
    edges = gpd.GeoDataFrame(
        {"u": eu, "v": ev, "length_m": length,
         "fclass": [r[3].get("highway", "") for r in rows],
         "name": [r[3].get("name", "") for r in rows]},
        geometry=geoms, crs=graph_crs)
    net = WalkNetwork(
        crs=graph_crs, node_x=node_x, node_y=node_y, edge_u=eu, edge_v=ev,
        edge_length_m=length, edge_time_s=time_s, speed_mps=float(g.graph["speed_mps"]),
        edges=edges, report=json.loads(g.graph.get("report", "{}")),
        edge_delay_s=delay if delay.any() else None, node_z=z,
        node_id=_ids(osmid),
        profile=g.graph.get("profile") or None,
    )
    if crs is not None and pyproj.CRS.from_user_input(crs) != graph_crs:
        net = _reproject(net, crs)
    prof, speed, avoid = _profile(profile or net.profile, speed_mps, avoid_steps)
    filtered = _refilter_saved(net, include_classes=include_classes,
                               exclude_classes=exclude_classes, avoid_steps=avoid,
                               speed_mps=speed, profile=prof,
                               min_component_share=min_component_share,
                               crossing_delay_s=crossing_delay_s)
    if filtered is not None:
        return filtered
    if profile is not None or speed_mps is not None:
        net = replace(net.with_speed(speed), profile=prof)
        net.report = dict(net.report, speed_mps=speed, profile=prof)
    return net


def _refilter_saved(net: WalkNetwork, *, include_classes, exclude_classes, avoid_steps: bool,
                    speed_mps: float, profile: str | None, min_component_share: float,
                    crossing_delay_s: float | None) -> WalkNetwork | None:
    """A saved network with edges removed by class / steps, re-assembled; None if unchanged."""
    saved_delay = float(net.report.get("crossing_delay_s", 0.0) or 0.0)
    new_delay = saved_delay if crossing_delay_s is None else float(crossing_delay_s)
    classes = (net.edges["fclass"].astype(str).to_numpy(dtype=object) if net.edges is not None
               and "fclass" in net.edges else np.full(net.n_edges, "unknown", dtype=object))
    report = dict(net.report)
    if include_classes is not None or exclude_classes is not None:
        keep = _class_filter(classes, net.edge_length_m, include_classes=include_classes,
                             exclude_classes=exclude_classes, avoid_steps=avoid_steps,
                             report=report)
    else:  # classes chosen when the file was built: only steps may be removed now
        keep = ~((classes == "steps") & avoid_steps)
        report["steps_avoided"] = int((~keep).sum())
    if keep.all() and new_delay == saved_delay:
        return None
    if not keep.any():
        raise NetworkError(
            "No walkable edge is left in the saved network after the road-class filter. Check "
            "`network.include_classes` / `exclude_classes` / `avoid_steps`."
        )
    eu, ev = net.edge_u[keep], net.edge_v[keep]
    used = np.zeros(net.n_nodes, dtype=bool)
    used[eu] = used[ev] = True
    new_id = np.cumsum(used) - 1
    attrs = {k: net.edges[k].to_numpy(dtype=object)[keep] for k in ("fclass", "name")
             if net.edges is not None and k in net.edges}
    return _assemble(
        np.c_[net.node_x, net.node_y][used], new_id[eu], new_id[ev],
        np.asarray(net.edges.geometry.values, dtype=object)[keep], attrs, crs=net.crs,
        speed_mps=speed_mps, profile=profile, min_component_share=min_component_share,
        crossing_delay_s=new_delay, report=report,
        node_z=None if net.node_z is None else net.node_z[used],
        node_id=None if net.node_id is None else net.node_id[used],
    )


def _ids(values: list) -> np.ndarray | None:
    """Saved node ids back as integers where they all are, else as strings."""
    if all(v is None for v in values):
        return None
    try:
        return np.array([int(v) for v in values], dtype=np.int64)
    except (TypeError, ValueError):
        return np.array(values, dtype=object)


def _reproject(net: WalkNetwork, crs) -> WalkNetwork:
    """The same network in another CRS (lengths and times are kept)."""
    crs = pyproj.CRS.from_user_input(crs)
    tr = pyproj.Transformer.from_crs(net.crs, crs, always_xy=True)
    x, y = tr.transform(net.node_x, net.node_y)
    edges = net.edges.to_crs(crs) if net.edges is not None else None
    return replace(net, crs=crs, node_x=np.asarray(x), node_y=np.asarray(y), edges=edges)


# --------------------------------------------------------------------------- report
_LABELS = {
    "source": ("数据来源", "source"),
    "n_lines_in": ("输入道路线数", "road lines read"),
    "n_lines_used": ("参与建网的道路线数", "road lines used"),
    "excluded_classes": ("排除的道路等级（条数）", "excluded road classes (lines)"),
    "excluded_km": ("排除道路长度（km）", "excluded road length (km)"),
    "steps_avoided": ("避开的台阶段数", "steps avoided"),
    "crossings": ("无共享节点的交叉处", "crossings without a shared vertex"),
    "crossings_grade_separated": ("立体交叉（不连通）", "grade-separated crossings (not joined)"),
    "crossings_at_grade": ("平面交叉（已打断连接）", "at-grade crossings (noded)"),
    "shared_vertex_junctions": ("共享节点路口", "junctions at shared vertices"),
    "shared_vertices_other_level": ("不同层共享节点（未连接）", "shared vertices on other levels"),
    "near_miss_joins": ("近距离断头连接数", "near-miss joins"),
    "near_miss_max_gap_m": ("最大连接间隙（m）", "largest joined gap (m)"),
    "join_tolerance_m": ("连接容差（m）", "join tolerance (m)"),
    "n_components": ("连通分量数", "connected components"),
    "largest_component_share": ("最大连通分量节点占比", "largest component share of nodes"),
    "components_dropped": ("删除的小连通分量", "components dropped"),
    "nodes_dropped": ("删除的节点", "nodes dropped"),
    "km_dropped": ("删除的道路长度（km）", "road length dropped (km)"),
    "n_nodes": ("节点数", "nodes"),
    "n_edges": ("路段数", "edges"),
    "degenerate_lines": ("退化线（少于两个不同点）", "degenerate lines (under two points)"),
    "pass_through_nodes_merged": ("合并的非路口节点", "pass-through nodes merged"),
    "edges_dropped": ("删除的路段", "edges dropped"),
    "excluded_no_foot_access": ("禁止步行的路段", "ways closed to pedestrians"),
    "non_highway_ways": ("非道路要素", "non-road ways"),
    "slope_penalty": ("坡度修正（Tobler）", "slope penalty (Tobler)"),
    "path": ("文件", "file"),
    "place": ("地名", "place"),
    "bbox": ("范围", "bounding box"),
    "total_km": ("步行网络总长（km）", "walk network length (km)"),
    "profile": ("步行人群", "walking profile"),
    "speed_mps": ("步行速度（m/s）", "walking speed (m/s)"),
    "crossing_delay_s": ("过街延误（s）", "crossing delay (s)"),
    "major_crossing_nodes": ("主次干路过街路口数", "major-road crossing junctions"),
}


def report_table(net: WalkNetwork, *, lang: str = "zh"):
    """The build report as a small table (``key``, ``item``, ``value``) for planners.

    Parameters
    ----------
    net
        A built network.
    lang
        ``"zh"`` (default) or ``"en"`` for the ``item`` labels.
    """
    import pandas as pd

    col = 0 if lang == "zh" else 1
    rows = []
    for key, value in net.report.items():
        if key == "component_sizes":
            value = ", ".join(map(str, value[:10])) + (" …" if len(value) > 10 else "")
        elif isinstance(value, dict):
            value = ", ".join(f"{k}: {v}" for k, v in value.items())
        elif isinstance(value, float):
            value = round(value, 4)
        label = _LABELS.get(key, (key, key))[col]
        if key == "component_sizes":
            label = "连通分量规模（前10）" if col == 0 else "component sizes (top 10)"
        rows.append({"key": key, "item": label, "value": "" if value is None else str(value)})
    return pd.DataFrame(rows, columns=["key", "item", "value"])


# --------------------------------------------------------------------------- the step
def run_step(result) -> str | None:
    """The network step of a run: build the walk network from the scenario's source.

    Stores ``result.artifacts["network"]`` (`WalkNetwork`),
    ``result.layers["network_edges"]`` and ``result.tables["network_report"]``.
    """
    s = result.scenario.network
    if s is None:
        return "no `network:` section in the scenario"
    path = result.scenario.resolve(s.path)
    if s.source in ("lines", "osm", "graphml") and path is None:
        raise NetworkError(
            f"`network.source` is {s.source!r} but `network.path` is not set. Give the path of "
            "the road file (relative to the scenario file)."
        )
    opts: dict[str, Any] = {
        "speed_mps": s.speed_mps, "profile": s.profile, "exclude_classes": s.exclude_classes,
        "include_classes": s.include_classes, "avoid_steps": s.avoid_steps,
        "min_component_share": s.min_component_share, "crs": result.crs,
        "crossing_delay_s": s.crossing_delay_s,
    }
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if s.source == "lines":
            net = from_lines(path, join_tolerance_m=s.join_tolerance_m, layer=s.layer,
                             coord_system=s.coord_system, class_column=s.class_column,
                             name_column=s.name_column, **opts)
        elif s.source == "osm":
            net = from_osm_file(path, **opts)
        elif s.source == "graphml":
            # None keeps a saved network's own crossing delays
            net = from_graphml(path, **dict(opts, crossing_delay_s=s.crossing_delay_s or None))
        elif s.source == "osmnx_place":
            if not s.place:
                raise NetworkError("`network.source: osmnx_place` needs `network.place`.")
            net = download_osm(place=s.place, **opts)
        else:
            if s.bbox is None:
                raise NetworkError("`network.source: osmnx_bbox` needs `network.bbox`.")
            net = download_osm(bbox=s.bbox, **opts)
    for w in caught:
        if issubclass(w.category, PlannerWarning):
            result.warn(str(w.message))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if result.crs is None:
        result.crs = net.crs
    result.artifacts["network"] = net
    result.layers["network_edges"] = net.edges
    result.tables["network_report"] = report_table(net, lang=result.lang)
    return None
