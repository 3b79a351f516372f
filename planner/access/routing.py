"""Shortest walks on the network's CSR arrays: node times, nearest times, cost matrices.

All shortest paths run on the network's CSR arrays with SciPy's
``csgraph.dijkstra`` (C speed, with a ``limit`` cut-off).  Points are not
moved to nodes: every source gets a *virtual node* joined to both ends of
its edge by the along-edge time plus the snap time, so one multi-source
``dijkstra(..., min_only=True)`` call gives each node its nearest source;
targets then take the better of their edge's two ends plus the along-edge
part and their own snap time, and a source and a target on the same edge
also get the direct walk along the edge.  Walking is undirected (one-way
streets do not bind pedestrians).

Times are seconds here; unreachable (beyond the cut-off or in another
component) is ``inf`` in the arrays and an absent entry in cost matrices.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra

from planner.access.snap import Snapped, run_offsets

if TYPE_CHECKING:
    from planner.network import WalkNetwork

__all__ = ["cost_matrix", "nearest_times", "node_times"]

#: Working-memory budget (bytes) of one chunk of dense Dijkstra rows, here and in
#: `planner.access.areas`.
_MEMORY_BYTES = 256 * 2**20


def _rows_in_memory(row_bytes: int) -> int:
    """How many rows of ``row_bytes`` bytes fit in `_MEMORY_BYTES` (at least one)."""
    return max(1, int(_MEMORY_BYTES // row_bytes))


# --------------------------------------------------------------------------- graph
def _base_csr(net: WalkNetwork) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The network's symmetric CSR arrays with edge times (cached)."""

    def build() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return net.csr_arrays(weight="time")

    return net.cached("csr_time", build)


def _snap_s(net: WalkNetwork, s: Snapped) -> np.ndarray:
    """Seconds of each point's straight walk to its snapped spot."""
    return s.dist_m / net.speed_mps


def _virtual_graph(net: WalkNetwork, sources: Snapped) -> tuple[sp.csr_matrix, np.ndarray]:
    """The network's CSR plus one virtual node per source (out-edges only).

    Virtual node ``n + i`` reaches the two end nodes of source ``i``'s edge
    at the along-edge time plus the snap time.  Virtual nodes have no
    in-edges, so no path passes through them.  Zero-cost edges stay explicit
    entries (csgraph treats explicit zeros in sparse input as edges).
    """
    indptr, indices, data = _base_csr(net)
    n, k = net.n_nodes, len(sources)
    e = sources.edge
    te = net.edge_time_s[e]
    snap = _snap_s(net, sources)
    u, v = net.edge_u[e], net.edge_v[e]
    cu = sources.fraction * te + snap
    cv = (1.0 - sources.fraction) * te + snap
    loop = u == v
    cu = np.where(loop, np.minimum(cu, cv), cu)
    keep = np.stack([np.ones(k, bool), ~loop], 1).ravel()
    cols = np.stack([u, v], 1).ravel()[keep]
    vals = np.stack([cu, cv], 1).ravel()[keep]
    counts = np.where(loop, 1, 2)
    it = indptr.dtype
    new_indptr = np.concatenate([indptr, indptr[-1] + np.cumsum(counts).astype(it)])
    a = sp.csr_matrix(
        (np.concatenate([data, vals]), np.concatenate([indices, cols.astype(it)]), new_indptr),
        shape=(n + k, n + k),
    )
    return a, np.arange(n, n + k)


def _same_edge_pairs(src_edge: np.ndarray, tgt_edge: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All (source, target) position pairs that lie on the same edge."""
    order = np.argsort(src_edge, kind="stable")
    se = src_edge[order]
    lo = np.searchsorted(se, tgt_edge, "left")
    cnt = np.searchsorted(se, tgt_edge, "right") - lo
    total = int(cnt.sum())
    if total == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    pt = np.repeat(np.arange(len(tgt_edge)), cnt)
    ps = order[np.repeat(lo, cnt) + run_offsets(cnt)]
    return ps, pt


def _limit(cutoff_s: float | None) -> float:
    return np.inf if cutoff_s is None else float(cutoff_s)



def node_times(
    net: WalkNetwork, sources: Snapped, *, cutoff_s: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Walking time from the nearest source to every node.

    One multi-source ``scipy.sparse.csgraph.dijkstra`` call (``min_only``)
    on the network plus one virtual node per source.

    Parameters
    ----------
    net
        The `WalkNetwork`.
    sources
        Snapped sources (`planner.access.snap_points`); their snap distance and
        along-edge part are walked too.
    cutoff_s
        Stop searching beyond this many seconds (``None``: no cut-off).

    Returns
    -------
    seconds, nearest
        ``seconds[i]``: time to node ``i`` (``inf`` if beyond the cut-off or
        unreachable); ``nearest[i]``: position of the nearest source in
        ``sources`` (its ``unit`` when it has one), ``-1`` where unreachable.
    """
    n = net.n_nodes
    if len(sources) == 0:
        return np.full(n, np.inf), np.full(n, -1, np.int64)
    a, virt = _virtual_graph(net, sources)
    dist, _, src = dijkstra(
        a, directed=True, indices=virt, min_only=True, limit=_limit(cutoff_s),
        return_predecessors=True,
    )
    src = src[:n].astype(np.int64)
    nearest = np.where(src >= n, src - n, -1)
    if sources.unit is not None:
        nearest = np.where(nearest >= 0, sources.unit[np.maximum(nearest, 0)], -1)
    return dist[:n], nearest


def nearest_times(
    net: WalkNetwork, sources: Snapped, targets: Snapped, *, cutoff_s: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Walking time from every target to its nearest source.

    The time includes both snap walks and the along-edge parts at both ends;
    a source on the target's own edge is also reached directly along it.

    Parameters
    ----------
    net
        The `WalkNetwork`.
    sources, targets
        Snapped points (e.g. facilities and population units).
    cutoff_s
        Times above this many seconds count as unreachable.

    Returns
    -------
    seconds, nearest
        Per target: seconds (``inf`` where unreachable) and the position of
        the nearest source (``-1`` where unreachable; the source's ``unit``
        when it has one).  Targets are not reduced by ``targets.unit``.
    """
    nt = len(targets)
    if nt == 0 or len(sources) == 0:
        return np.full(nt, np.inf), np.full(nt, -1, np.int64)
    d, s = node_times(net, sources, cutoff_s=cutoff_s)
    e = targets.edge
    g = targets.fraction
    te = net.edge_time_s[e]
    via_u = d[net.edge_u[e]] + g * te
    via_v = d[net.edge_v[e]] + (1.0 - g) * te
    best = np.minimum(via_u, via_v)
    idx = np.where(via_u <= via_v, s[net.edge_u[e]], s[net.edge_v[e]])
    ps, pt = _same_edge_pairs(sources.edge, e)
    if ps.size:
        direct = np.abs(sources.fraction[ps] - g[pt]) * te[pt] + _snap_s(net, sources)[ps]
        order = np.lexsort((direct, pt))
        first = np.ones(order.size, bool)
        first[1:] = pt[order][1:] != pt[order][:-1]
        ps, pt, direct = ps[order][first], pt[order][first], direct[order][first]
        better = direct < best[pt]
        pt, ps = pt[better], ps[better]
        best[pt] = direct[better]
        idx[pt] = ps if sources.unit is None else sources.unit[ps]
    best = best + _snap_s(net, targets)
    out = best > _limit(cutoff_s)
    best[out] = np.inf
    idx = np.where(out, -1, idx).astype(np.int64)
    return best, idx


def _chunk_rows(n_cols: int) -> int:
    """Dijkstra rows per chunk of `cost_matrix` (three float arrays of ``n_cols`` per row)."""
    return _rows_in_memory(8 * 3 * max(n_cols, 1))


def _cost_rows(net: WalkNetwork, src: Snapped, tgt: Snapped, cutoff_s: float) -> sp.csr_array:
    """Sparse (len(src), len(tgt)) seconds within the cut-off, one Dijkstra per source."""
    k, nt = len(src), len(tgt)
    a, virt = _virtual_graph(net, src)
    e, g = tgt.edge, tgt.fraction
    te = net.edge_time_s[e]
    tu, tv = net.edge_u[e], net.edge_v[e]
    tsnap = _snap_s(net, tgt)
    ps, pt = _same_edge_pairs(src.edge, e)
    direct = np.abs(src.fraction[ps] - g[pt]) * te[pt] + _snap_s(net, src)[ps]
    step = _chunk_rows(a.shape[0] + nt)
    data, cols, counts = [], [], []
    for c0 in range(0, k, step):
        c1 = min(k, c0 + step)
        d = dijkstra(a, directed=True, indices=virt[c0:c1], limit=cutoff_s)
        t = np.minimum(d[:, tu] + g * te, d[:, tv] + (1.0 - g) * te)
        del d
        sel = (ps >= c0) & (ps < c1)
        if sel.any():
            r, c = ps[sel] - c0, pt[sel]
            t[r, c] = np.minimum(t[r, c], direct[sel])
        t += tsnap
        mask = t <= cutoff_s
        counts.append(mask.sum(axis=1))
        rr, cc = np.nonzero(mask)
        data.append(t[rr, cc])
        cols.append(cc)
    indptr = np.concatenate([[0], np.cumsum(np.concatenate(counts))]) if counts else np.zeros(1)
    return sp.csr_array(
        (np.concatenate(data) if data else np.zeros(0),
         np.concatenate(cols) if cols else np.zeros(0, np.int64), indptr.astype(np.int64)),
        shape=(k, nt),
    )


def _reduce_min(m: sp.csr_array, row_map: np.ndarray | None, n_rows: int,
                col_map: np.ndarray | None, n_cols: int) -> sp.csr_array:
    """Merge rows/columns that stand for one unit, keeping the smallest time."""
    coo = m.tocoo()
    r = coo.row if row_map is None else row_map[coo.row]
    c = coo.col if col_map is None else col_map[coo.col]
    order = np.lexsort((coo.data, c, r))
    r, c, x = r[order], c[order], coo.data[order]
    first = np.ones(r.size, bool)
    first[1:] = (r[1:] != r[:-1]) | (c[1:] != c[:-1])
    out = sp.coo_array((x[first], (r[first], c[first])), shape=(n_rows, n_cols)).tocsr()
    return out


def cost_matrix(
    net: WalkNetwork, origins: Snapped, destinations: Snapped, *, cutoff_s: float
) -> sp.csr_array:
    """Sparse walking-time matrix (seconds) under a cut-off.

    Parameters
    ----------
    net
        The `WalkNetwork`.
    origins, destinations
        Snapped points.  Where a set has ``unit`` (compound gates), its
        points are merged per unit by the smallest time.
    cutoff_s
        Pairs farther apart than this many seconds are not stored.

    Returns
    -------
    scipy.sparse.csr_array
        Shape ``(n_origins, n_destinations)`` (units where ``unit`` is set).
        The stored entries are exactly the pairs reachable within the
        cut-off, *including explicit zeros* (a facility on the demand
        point): an entry that is not stored means unreachable, never zero.
        Do not call ``eliminate_zeros()`` on it.

    Notes
    -----
    Walking is undirected, so the matrix is built from the smaller side
    (one limited Dijkstra per point, in memory-bounded chunks) and
    transposed when that is the destination side.
    """
    cutoff_s = float(cutoff_s)
    if len(origins) <= len(destinations):
        m = _cost_rows(net, origins, destinations, cutoff_s)
    else:
        m = _cost_rows(net, destinations, origins, cutoff_s).T.tocsr()
    if origins.unit is not None or destinations.unit is not None:
        m = _reduce_min(m, origins.unit, origins.n_units, destinations.unit,
                        destinations.n_units)
    m.sort_indices()
    return m


