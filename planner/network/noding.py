"""Noding road centre lines into a graph (vectorised Shapely 2 / NumPy).

`node_lines` splits lines into edges between junctions (at shared vertices
and at-grade crossings, never under bridges or over tunnels, joining near
misses); `merge_degree2` merges pass-through nodes away; `drawn_from_v`
tells which way an edge geometry runs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from planner._errors import NetworkError

__all__ = ["drawn_from_v", "merge_degree2", "node_lines"]


def node_lines(
    geoms: np.ndarray, layer: np.ndarray, bridge: np.ndarray, tunnel: np.ndarray, *,
    join_tolerance_m: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
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
    ev, lb, s0, tt = ev[firsts], lb[firsts], s0[firsts], tt[firsts]
    proj, gap = proj[firsts], gap[firsts]
    # two dangling ends joined to each other: keep one join (the other end becomes its target)
    if len(ev):
        target_end = np.where(tt == 0.0, s0, np.where(tt == 1.0, s0 + 1, -1))
        joined = dict(zip(ev.tolist(), range(len(ev)), strict=False))
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


def drawn_from_v(geoms: np.ndarray, node_xy: np.ndarray, u: np.ndarray, v: np.ndarray
                 ) -> np.ndarray:
    """True where a line's first vertex is nearer node ``v`` than node ``u`` (drawn v to u)."""
    import shapely

    start = shapely.get_coordinates(shapely.get_point(geoms, 0))
    return np.hypot(*(start - node_xy[u]).T) > np.hypot(*(start - node_xy[v]).T)


def _edges_from_vertices(V_line: np.ndarray, V_xy: np.ndarray, V_node: np.ndarray
                         ) -> tuple[np.ndarray, ...]:
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


def merge_degree2(
    node_xy: np.ndarray, eu: np.ndarray, ev: np.ndarray, geoms: np.ndarray,
    attrs: dict[str, np.ndarray],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray], int]:
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
    merged = shapely.line_merge(
        shapely.multilinestrings(geoms[medges], indices=np.searchsorted(gids, grp[medges])))
    a, b = lo[gids], hi[gids]
    a_first = ~drawn_from_v(merged, node_xy, a, b)
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
