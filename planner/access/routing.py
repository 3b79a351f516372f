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


def _seconds_per_metre(net: WalkNetwork) -> float:
    """The smallest edge time per metre of straight distance between its end nodes (cached).

    Every walk between two nodes then takes at least this many seconds per metre
    of their straight distance, whatever the edge geometries, lengths, slopes or
    crossing delays; 0 when some edge joins two distinct places in no time.
    """

    def build() -> float:
        chord = np.hypot(net.node_x[net.edge_u] - net.node_x[net.edge_v],
                         net.node_y[net.edge_u] - net.node_y[net.edge_v])
        pos = chord > 0
        if not pos.any():
            return 0.0
        return float(np.min(net.edge_time_s[pos] / chord[pos]))

    return net.cached("seconds_per_metre", build)


class _CellIndex:
    """Nodes bucketed into square cells, for the nodes inside a box (a superset of cells).

    Nodes are sorted by (cell column, cell row), so the nodes of one cell column
    between two rows are one slice; a box query joins one slice per column.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, cell: float):
        self.x0, self.y0, self.cell = float(x.min()), float(y.min()), float(cell)
        cx = ((x - self.x0) // cell).astype(np.int64)
        cy = ((y - self.y0) // cell).astype(np.int64)
        self.ncx, self.ncy = int(cx.max()) + 1, int(cy.max()) + 1
        key = cx * self.ncy + cy
        self.order = np.argsort(key, kind="stable")
        self.start = np.searchsorted(key[self.order], np.arange(self.ncx * self.ncy + 1))
        self.x, self.y = x, y

    def query(self, xmin: float, xmax: float, ymin: float, ymax: float) -> np.ndarray:
        """Sorted positions of the nodes with xmin <= x <= xmax and ymin <= y <= ymax."""
        c0 = max(int((xmin - self.x0) // self.cell), 0)
        c1 = min(int((xmax - self.x0) // self.cell), self.ncx - 1)
        r0 = max(int((ymin - self.y0) // self.cell), 0)
        r1 = min(int((ymax - self.y0) // self.cell), self.ncy - 1)
        if c0 > c1 or r0 > r1:
            return np.zeros(0, np.int64)
        base = np.arange(c0, c1 + 1) * self.ncy
        lo, hi = self.start[base + r0], self.start[base + r1 + 1]
        cand = self.order[np.repeat(lo, hi - lo) + run_offsets(hi - lo)]
        x, y = self.x[cand], self.y[cand]
        return np.sort(cand[(x >= xmin) & (x <= xmax) & (y >= ymin) & (y <= ymax)])


def _cell_index(net: WalkNetwork) -> _CellIndex:
    """The network's nodes in about 1024 x 1024 cells (cached)."""

    def build() -> _CellIndex:
        x, y = net.node_x, net.node_y
        span = max(float(np.ptp(x)), float(np.ptp(y)), 1.0)
        return _CellIndex(x, y, span / 1024.0)

    return net.cached("cell_index", build)


def _source_tiles(sx: np.ndarray, sy: np.ndarray, tile: float) -> np.ndarray:
    """Group label of every source: the square tile of side ``tile`` it lies in (0..)."""
    if sx.size == 0 or not np.isfinite(tile) or tile <= 0:
        return np.zeros(sx.size, np.int64)
    cx = ((sx - sx.min()) // tile).astype(np.int64)
    cy = ((sy - sy.min()) // tile).astype(np.int64)
    return np.unique(cx * (int(cy.max()) + 1) + cy, return_inverse=True)[1].ravel()


def _group_graph(base: sp.csr_matrix, sub: np.ndarray, loc: np.ndarray, vu: np.ndarray,
                 vv: np.ndarray, cu: np.ndarray, cv: np.ndarray) -> sp.csr_matrix:
    """The subgraph of the nodes ``sub`` (``loc`` maps them to 0..) plus one virtual
    source node per entry of ``vu`` after them, with out-edges to its edge's ends
    ``vu``/``vv`` (local) costing ``cu``/``cv`` (one edge where ``vu == vv``)."""
    ns, kc = sub.size, vu.size
    a = base[sub]
    col = loc[a.indices]
    keep = col >= 0
    counts = np.bincount(np.repeat(np.arange(ns), np.diff(a.indptr))[keep], minlength=ns)
    two = vu != vv
    vkeep = np.stack([np.ones(kc, bool), two], 1).ravel()
    indptr = np.r_[0, np.cumsum(np.r_[counts, np.where(two, 2, 1)])]
    return sp.csr_matrix(
        (np.r_[a.data[keep], np.stack([cu, cv], 1).ravel()[vkeep]],
         np.r_[col[keep], np.stack([vu, vv], 1).ravel()[vkeep]], indptr),
        shape=(ns + kc, ns + kc))


def _cost_rows(net: WalkNetwork, src: Snapped, tgt: Snapped, cutoff_s: float) -> sp.csr_array:
    """Sparse (len(src), len(tgt)) seconds within the cut-off, one Dijkstra per source.

    Why not one ``dijkstra`` call on the whole network per chunk of sources:
    csgraph fills a dense row of every node for every source, so on a
    1,000,000-node city 10,000 sources cost 10^10 writes however small the
    cut-off.  Instead the sources are grouped by square tiles, and each
    group runs on the subgraph of the nodes in its tile's box grown by the
    *reach radius*: the cut-off over the least seconds per metre of any edge
    (`_seconds_per_metre`).  A node outside that box is farther than the
    cut-off from every source of the group in walking time, and so is every
    path through it, so the subgraph's times within the cut-off are exact.
    Memory: one memory-bounded chunk of a group's rows of its subgraph, plus
    the stored pairs.
    """
    k, nt, n = len(src), len(tgt), net.n_nodes
    indptr, indices, data = _base_csr(net)
    base = sp.csr_matrix((data, indices, indptr), shape=(n, n))
    e, g = tgt.edge, tgt.fraction
    te = net.edge_time_s[e]
    tu, tv = net.edge_u[e], net.edge_v[e]
    tsnap = _snap_s(net, tgt)
    by_node = sp.csr_matrix((np.ones(2 * nt, np.int8), (np.r_[tu, tv], np.tile(np.arange(nt), 2))),
                            shape=(n, nt))  # node -> the targets on an edge ending there
    su, sv = net.edge_u[src.edge], net.edge_v[src.edge]
    ste = net.edge_time_s[src.edge]
    cu = src.fraction * ste + _snap_s(net, src)
    cv = (1.0 - src.fraction) * ste + _snap_s(net, src)
    cu = np.where(su == sv, np.minimum(cu, cv), cu)
    spm = _seconds_per_metre(net)
    radius = cutoff_s / spm * (1.0 + 1e-9) + 1e-6 if spm > 0 else np.inf
    nx_, ny_ = net.node_x, net.node_y
    sx, sy = np.minimum(nx_[su], nx_[sv]), np.minimum(ny_[su], ny_[sv])
    gid = _source_tiles(sx, sy, radius)
    if np.isfinite(radius):
        cells = _cell_index(net)
    # the same-edge (direct) pairs, by the group of their source
    ps, pt = _same_edge_pairs(src.edge, e)
    direct = np.abs(src.fraction[ps] - g[pt]) * te[pt] + _snap_s(net, src)[ps]
    by_gid = np.argsort(gid[ps], kind="stable")
    pair_lo = np.searchsorted(gid[ps][by_gid], np.arange(int(gid.max(initial=-1)) + 2))
    groups = np.argsort(gid, kind="stable")
    gcut = np.searchsorted(gid[groups], np.arange(int(gid.max(initial=-1)) + 2))
    loc = np.full(n, -1, np.int64)
    rpos = np.full(k, -1, np.int64)
    rows_out, cols_out, vals_out = [], [], []
    for q in range(gcut.size - 1):
        grp = groups[gcut[q]:gcut[q + 1]]
        if not np.isfinite(radius):
            sub = np.arange(n)
        else:
            xs = np.r_[nx_[su[grp]], nx_[sv[grp]]]
            ys = np.r_[ny_[su[grp]], ny_[sv[grp]]]
            sub = cells.query(xs.min() - radius, xs.max() + radius,
                              ys.min() - radius, ys.max() + radius)
        ns = sub.size
        loc[sub] = np.arange(ns)
        tg = np.unique(by_node[sub].indices)  # sorted targets this group may reach
        lu, lv = loc[tu[tg]], loc[tv[tg]]
        lu, lv = np.where(lu >= 0, lu, ns), np.where(lv >= 0, lv, ns)  # ns: an inf column
        gu, gv = g[tg] * te[tg], (1.0 - g[tg]) * te[tg]
        pairs = by_gid[pair_lo[q]:pair_lo[q + 1]]
        step = _chunk_rows(ns + 1 + 2 * tg.size)
        for c0 in range(0, grp.size, step):
            rows = grp[c0:c0 + step]
            kc = rows.size
            graph = _group_graph(base, sub, loc, loc[su[rows]], loc[sv[rows]], cu[rows],
                                 cv[rows])
            d = dijkstra(graph, directed=True, indices=np.arange(ns, ns + kc), limit=cutoff_s)
            d[:, ns] = np.inf  # virtual nodes are no targets: column ns stands for "outside"
            t = np.minimum(d[:, lu] + gu, d[:, lv] + gv)
            del d
            rpos[rows] = np.arange(kc)
            mine = pairs[rpos[ps[pairs]] >= 0]
            if mine.size:
                r, c = rpos[ps[mine]], np.searchsorted(tg, pt[mine])
                t[r, c] = np.minimum(t[r, c], direct[mine])
            rpos[rows] = -1
            t += tsnap[tg]
            rr, cc = np.nonzero(t <= cutoff_s)
            rows_out.append(rows[rr])
            cols_out.append(tg[cc])
            vals_out.append(t[rr, cc])
        loc[sub] = -1
    if not rows_out:
        return sp.csr_array((k, nt))
    out = sp.coo_array((np.concatenate(vals_out), (np.concatenate(rows_out),
                                                   np.concatenate(cols_out))), shape=(k, nt))
    return out.tocsr()


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
    (one limited Dijkstra per point) and transposed when that is the
    destination side.  The points are grouped by square tiles, and each
    group's Dijkstra runs on the nodes within the reach radius of its tile
    (exact, see `_cost_rows`), in memory-bounded chunks: time and memory grow
    with the pairs within the cut-off, not with the network times the points.
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


