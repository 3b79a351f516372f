"""Assembling a noded network: components, walking times, crossing delays, edges table.

Every source (centre lines, OSM, a saved GraphML) ends in `assemble`.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pyproj
import scipy.sparse as sp

from planner._errors import NetworkError, PlannerWarning
from planner.network.elevation import slope_factor
from planner.network.graph import WalkNetwork
from planner.network.profiles import MAJOR_CLASSES

__all__ = ["assemble"]


def assemble(
    node_xy: np.ndarray,
    edge_u: np.ndarray,
    edge_v: np.ndarray,
    geoms: np.ndarray,
    attrs: dict[str, np.ndarray],
    *,
    crs: Any,
    speed_mps: float,
    profile: str | None,
    min_component_share: float,
    crossing_delay_s: float,
    report: dict[str, Any],
    node_z: np.ndarray | None = None,
    node_id: np.ndarray | None = None,
) -> WalkNetwork:
    """Components, times and the edges GeoDataFrame of a noded network.

    The fragmentation warning points at the caller of the builder that calls this.
    """
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
        warnings.warn(PlannerWarning(
            f"The walk network is fragmented: its largest connected part holds only "
            f"{sizes[biggest] / n:.0%} of the {n} nodes ({n_comp} parts). Roads may not be "
            "noded (check `join_tolerance_m`, the `bridge`/`tunnel`/`layer` columns) or the "
            "road classes excluded may cut it apart; parts under min_component_share are dropped.",
            f"步行路网破碎：最大连通部分只含 {n} 个节点中的 {sizes[biggest] / n:.0%}（共 "
            f"{n_comp} 个部分）。道路可能未打断相交（请检查 `join_tolerance_m` 及 "
            "`bridge`/`tunnel`/`layer` 列），或排除的道路等级把路网切开；小于 "
            "min_component_share 的部分已删除。"), stacklevel=3)
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
        times = times * slope_factor(node_z, eu, ev, lengths)
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
