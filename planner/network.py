"""Pedestrian networks for older residents.

Builds a walk graph from an OSM extract (.osm / .osm.pbf), an OSMnx
download, a road centre-line layer (Shapefile/GeoPackage/GeoJSON/KML) or a
saved GraphML, and stores it as compact arrays (`WalkNetwork`) that the
access step routes on with SciPy's csgraph.  Walking is undirected: one-way
streets are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyproj
import scipy.sparse as sp


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

    @property
    def n_nodes(self) -> int:
        return int(self.node_x.shape[0])

    @property
    def n_edges(self) -> int:
        return int(self.edge_u.shape[0])

    def csr(self, *, weight: str = "time") -> sp.csr_matrix:
        """Symmetric CSR adjacency with edge times (s) or lengths (m) as weights.

        Parallel edges keep the smallest weight (never summed).
        """
        w = self.edge_time_s if weight == "time" else self.edge_length_m
        n = self.n_nodes
        u = np.concatenate([self.edge_u, self.edge_v])
        v = np.concatenate([self.edge_v, self.edge_u])
        ww = np.concatenate([w, w])
        # keep the minimum weight of parallel edges: sort by weight descending so the
        # last (smallest) write wins in a COO->CSR built from unique keys
        order = np.lexsort((-ww, v, u))
        u, v, ww = u[order], v[order], ww[order]
        keep = np.ones(len(u), dtype=bool)
        keep[:-1] = (u[1:] != u[:-1]) | (v[1:] != v[:-1])
        m = sp.csr_matrix((ww[keep], (u[keep], v[keep])), shape=(n, n))
        return m

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
        """The same network with times recomputed for another walking speed."""
        from dataclasses import replace

        factor = self.speed_mps / float(speed_mps)
        return replace(self, edge_time_s=self.edge_time_s * factor, speed_mps=float(speed_mps))

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
