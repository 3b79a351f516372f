"""`WalkNetwork`: an undirected walk network stored as arrays, and its CSR adjacency."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import numpy as np
import pyproj
import scipy.sparse as sp

if TYPE_CHECKING:
    import geopandas as gpd
    import networkx as nx
    from numpy.typing import ArrayLike

__all__ = ["WalkNetwork"]

T = TypeVar("T")


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

    Values derived from the network (snapping indexes, faces) are kept with
    `cached`, per instance, instead of being written into the instance.
    """

    crs: pyproj.CRS
    node_x: np.ndarray
    node_y: np.ndarray
    edge_u: np.ndarray
    edge_v: np.ndarray
    edge_length_m: np.ndarray
    edge_time_s: np.ndarray
    speed_mps: float
    edges: gpd.GeoDataFrame | None = None
    report: dict[str, Any] = field(default_factory=dict)
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

    def _cache_token(self) -> tuple:
        """What a cached value depends on: the identity of the edge and node arrays."""
        return (id(self.edge_u), id(self.edge_v), id(self.edges), id(self.node_x), self.n_edges)

    def cached(self, key: str, build: Callable[[], T]) -> T:
        """A value derived from this network, built once by ``build()`` and kept.

        Later calls with the same ``key`` return the stored value.  The store is
        per instance (`dataclasses.replace` and `with_speed` start empty) and an
        entry is rebuilt when the edge or node arrays are replaced.
        """
        store = self.__dict__.setdefault("_planner_cache", {})
        token = self._cache_token()
        hit = store.get(key)
        if hit is not None and hit[0] == token:
            return hit[1]
        value = build()
        store[key] = (token, value)
        return value

    def peek_cached(self, key: str) -> Any | None:
        """The value `cached` stored under ``key`` if it is current, else None (builds nothing)."""
        hit = self.__dict__.get("_planner_cache", {}).get(key)
        return hit[1] if hit is not None and hit[0] == self._cache_token() else None

    def components(self) -> np.ndarray:
        """Connected-component label of every node, ``0`` for the largest (cached).

        Labels are ordered by size, largest first (ties by lowest node);
        ``components()[edge_u]`` is the component of every edge.  Snapping uses
        them to keep units and facilities off small fragments (see
        `planner.access.snap_points`).
        """

        def build() -> np.ndarray:
            from scipy.sparse.csgraph import connected_components

            n_comp, label = connected_components(self.csr(weight="length"), directed=False)
            sizes = np.bincount(label, minlength=n_comp)
            first = np.full(n_comp, self.n_nodes, dtype=np.int64)
            np.minimum.at(first, label, np.arange(self.n_nodes))
            order = np.lexsort((first, -sizes))
            rank = np.empty(n_comp, dtype=np.int64)
            rank[order] = np.arange(n_comp)
            return rank[label]

        return self.cached("components", build)

    def csr_arrays(
        self, *, weight: Literal["time", "length"] = "time"
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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

    def csr(self, *, weight: Literal["time", "length"] = "time") -> sp.csr_matrix:
        """Symmetric CSR adjacency with edge times (s) or lengths (m) as weights.

        Parallel edges keep the smallest weight (never summed).
        """
        indptr, indices, data = self.csr_arrays(weight=weight)
        return sp.csr_matrix((data, indices, indptr), shape=(self.n_nodes, self.n_nodes))

    @classmethod
    def from_edges(
        cls,
        node_x: ArrayLike,
        node_y: ArrayLike,
        edge_u: ArrayLike,
        edge_v: ArrayLike,
        *,
        crs: Any,
        speed_mps: float = 1.0,
        edge_length_m: ArrayLike | None = None,
        edges: gpd.GeoDataFrame | None = None,
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
            edge_length_m = np.hypot(node_x[edge_u] - node_x[edge_v],
                                     node_y[edge_u] - node_y[edge_v])
        edge_length_m = np.asarray(edge_length_m, dtype=float)
        if edges is None:
            import geopandas as gpd
            import shapely

            coords = np.stack(
                [np.c_[node_x[edge_u], node_y[edge_u]], np.c_[node_x[edge_v], node_y[edge_v]]],
                axis=1,
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

    def to_networkx(self, *, weight: Literal["time", "length"] = "time") -> nx.Graph:
        """An undirected `networkx.Graph` (for checks; never in the hot path)."""
        import networkx as nx

        g = nx.Graph()
        g.add_nodes_from(range(self.n_nodes))
        w = self.edge_time_s if weight == "time" else self.edge_length_m
        for a, b, c in zip(self.edge_u.tolist(), self.edge_v.tolist(), w.tolist(), strict=False):
            if g.has_edge(a, b):
                c = min(c, g[a][b]["weight"])
            g.add_edge(a, b, weight=c)
        return g

