"""Faces of the walk network's plane embedding, for fast service areas.

A service area is the set of points within ``buffer_m`` of the streets a
facility reaches.  Unioning one buffered band per street is exact but slow:
GEOS nodes every band against its neighbours, and a 15-minute area on a
dense grid has over a thousand of them.  Most of that area, though, is made
of *city blocks* whose whole boundary is reached, and for such a block ``F``
the answer is known in closed form::

    F  ∩  buffer(reached streets, b)  =  F  minus  erode(F, b)

(every point of the block within ``b`` of its boundary is covered, and a
point farther than ``b`` from the boundary is farther than ``b`` from any
street outside the block, because the shortest way out crosses the
boundary).  So `planner.access.service_areas` takes those blocks whole
(a cheap coverage union of exactly matching faces), punches their eroded
cores as holes, and unions bands only for the streets on the rim.

This module finds the blocks: the faces of the network drawn in the plane,
from the rotation system (the outgoing half-edges of every node sorted by
angle; a face is a cycle of "turn to the next street clockwise" moves),
vectorised in NumPy.  Shapely's ``polygonize`` gives polygons but not which
edge bounds which face, which is what the per-facility test needs.

A face is *clean*, and may be taken whole, only when the identity above
holds for it: a bounded face (positive signed area), a valid polygon, no
edge inside it (a dead end or a tree hanging into it shows up as an edge met
twice on its cycle, a lollipop as an invalid ring), and no edge of it
crossing another street without a shared node (bridges, tunnels, unnoded
data: such a street would run through the face).  Every other face is left
to the exact band union.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import shapely

from planner.access.snap import edge_geometries, edge_tree, edge_vertices, run_offsets

if TYPE_CHECKING:
    from planner.network import WalkNetwork

__all__ = ["Faces", "eroded", "planar_faces"]


@dataclass(frozen=True)
class Faces:
    """Faces of the network's plane embedding.

    Attributes
    ----------
    edge_face
        ``(n_edges, 2)``: the face on the left of ``u -> v`` and of ``v -> u``.
    size
        Number of half-edges on each face's cycle.
    clean
        Whether the face may be taken whole (see the module docstring).
    polygon
        The face polygon where clean, else ``None``.
    """

    edge_face: np.ndarray
    size: np.ndarray
    clean: np.ndarray
    polygon: np.ndarray

    @property
    def n_faces(self) -> int:
        return int(self.size.shape[0])


def _in_threads(fn, items, *, split: bool = True, parts: int = 2):
    """``fn`` over halves of ``items`` in two threads (GEOS releases Python's lock).

    With ``split`` (arrays): ``fn(items[half])`` for each half, the results
    joined like ``fn(items)`` would give them (index pairs of an STRtree
    query shifted to the whole).  Without: ``[fn(x) for x in items]``.
    """
    from concurrent.futures import ThreadPoolExecutor

    if split:
        n = len(items)
        if n < 2 * _THREAD_MIN:
            return fn(items)
        bounds = np.linspace(0, n, parts + 1).astype(np.int64)
        chunks = [items[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
    else:
        chunks = list(items)
    with ThreadPoolExecutor(len(chunks)) as pool:
        out = list(pool.map(fn, chunks))
    if not split:
        return out
    if isinstance(out[0], np.ndarray) and out[0].ndim == 2:  # (input, tree) index pairs
        shifted = [o + np.array([[b], [0]]) for o, b in zip(out, bounds[:-1])]
        return np.concatenate(shifted, axis=1)
    return np.concatenate(out)


#: Arrays shorter than twice this are not worth a thread each.
_THREAD_MIN = 50_000


def _cycles(nxt: np.ndarray, *, walk: int = 12) -> tuple[np.ndarray, np.ndarray, int]:
    """Cycle number and position in the cycle of every element of the permutation ``nxt``.

    Positions count from the cycle's smallest element, which also numbers
    the cycle.  Almost every face of a street network has a short cycle, so
    all elements first walk ``walk`` steps at once (finding their cycle's
    minimum and the steps to it); the few long cycles (the outside of each
    component, blocks with many streets) are then done by pointer doubling.
    """
    n = nxt.shape[0]
    ids = np.arange(n, dtype=np.int64)
    low = ids.copy()
    to_low = np.zeros(n, np.int64)
    length = np.zeros(n, np.int64)
    act, cur = ids, nxt.copy()  # the elements still walking, and where they are
    for step in range(1, walk + 1):
        closed = cur == act
        length[act[closed]] = step
        act, cur = act[~closed], cur[~closed]
        lower = cur < low[act]
        low[act[lower]] = cur[lower]
        to_low[act[lower]] = step
        if not act.size:
            break
        cur = nxt[cur]
    rank = np.where(length > 0, (length - to_low) % np.maximum(length, 1), 0)
    long_ = np.flatnonzero(length == 0)
    if long_.size:
        # the long cycles are closed under nxt: renumber them and double
        where = np.full(n, -1, np.int64)
        where[long_] = np.arange(long_.size)
        sub = where[nxt[long_]]
        m = long_.size
        sid = np.arange(m, dtype=np.int64)
        slow, jump = sid.copy(), sub.copy()
        while True:
            new = np.minimum(slow, slow[jump])
            if np.array_equal(new, slow):
                break
            slow, jump = new, jump[jump]
        # rank: cut each cycle before its smallest element, count the steps to the cut
        last = sub == slow
        jump = np.where(last, sid, sub)
        dist = (~last).astype(np.int64)
        while True:
            j2 = jump[jump]
            if np.array_equal(j2, jump):
                break
            dist = dist + dist[jump]
            jump = j2
        size = np.bincount(slow, minlength=m)
        low[long_] = long_[slow]
        rank[long_] = size[slow] - 1 - dist
    first = low == ids
    label = (np.cumsum(first) - 1)[low]
    return label, rank, int(first.sum())


def _crossing_edges(net: WalkNetwork, lines: np.ndarray, n_vertices: np.ndarray) -> np.ndarray:
    """Edges that meet another edge anywhere but at a shared end node."""
    tree = edge_tree(net)
    i, j = _in_threads(tree.query, lines)
    keep = i < j
    i, j = i[keep], j[keep]
    eu, ev = net.edge_u, net.edge_v
    shared = (eu[i] == eu[j]) | (eu[i] == ev[j]) | (ev[i] == eu[j]) | (ev[i] == ev[j])
    bad = np.zeros(net.n_edges, bool)
    # no common node: any contact is a crossing, a touch or an overlap
    a, b = i[~shared], j[~shared]
    hit = shapely.intersects(lines[a], lines[b])
    bad[a[hit]] = bad[b[hit]] = True
    # a common node: straight segments can only overlap along a line, which shows
    # up as a tie in the angles at that node; polylines may also cross farther on
    poly = shared & ((n_vertices[i] > 2) | (n_vertices[j] > 2))
    a, b = i[poly], j[poly]
    if a.size:
        inter = shapely.intersection(lines[a], lines[b])
        ends = shapely.multipoints(np.stack([
            np.c_[net.node_x[eu[a]], net.node_y[eu[a]]],
            np.c_[net.node_x[ev[a]], net.node_y[ev[a]]]], 1))
        hit = ~shapely.is_empty(shapely.difference(inter, ends))
        bad[a[hit]] = bad[b[hit]] = True
    return bad


def planar_faces(net: WalkNetwork) -> Faces:
    """The faces of ``net`` drawn in the plane, with the clean ones' polygons (cached)."""

    def build() -> Faces:
        n_e = net.n_edges
        lines = edge_geometries(net)
        xy, off = edge_vertices(net)
        nv = np.diff(off)
        # the crossing test (GEOS, without Python's lock) runs beside the NumPy work
        from concurrent.futures import ThreadPoolExecutor

        side = ThreadPoolExecutor(1)
        crossing = side.submit(_crossing_edges, net, lines, nv)
        flagged = nv < 2
        s0, s1 = np.clip(off[:-1], 0, len(xy) - 1), np.clip(off[1:] - 1, 0, len(xy) - 1)
        node_xy = np.c_[net.node_x, net.node_y]
        # ends must be the nodes' own coordinates for the face rings to close
        flagged |= (xy[s0] != node_xy[net.edge_u]).any(1) | (xy[s1] != node_xy[net.edge_v]).any(1)
        # direction of each half-edge where it leaves its node: the first vertex
        # that differs from the node (consecutive duplicates are skipped)
        d0 = _leaving(xy, off, forward=True)
        d1 = _leaving(xy, off, forward=False)
        flagged |= ~np.isfinite(d0).all(1) | ~np.isfinite(d1).all(1)
        ang = np.empty(2 * n_e)
        ang[0::2] = np.arctan2(d0[:, 1], d0[:, 0])
        ang[1::2] = np.arctan2(d1[:, 1], d1[:, 0])
        ang[~np.isfinite(ang)] = 0.0
        org = np.empty(2 * n_e, np.int64)
        org[0::2], org[1::2] = net.edge_u, net.edge_v
        # outgoing half-edges counter-clockwise per node (one sort on node + angle;
        # angles closer than ~1e-9 rad are taken as ties, and ties are flagged)
        order = np.argsort(org * 8.0 + (ang + np.pi), kind="stable")
        so, sa = org[order], ang[order]
        tie = (so[1:] == so[:-1]) & (np.abs(sa[1:] - sa[:-1]) < 1e-9)
        flagged[order[1:][tie] >> 1] = True
        flagged[order[:-1][tie] >> 1] = True
        pos = np.empty(2 * n_e, np.int64)
        pos[order] = np.arange(2 * n_e)
        start = np.zeros(net.n_nodes + 1, np.int64)
        np.cumsum(np.bincount(org, minlength=net.n_nodes), out=start[1:])
        # next half-edge of the face on the left: at the head of h, the outgoing
        # half-edge just clockwise of the way back
        twin = np.arange(2 * n_e, dtype=np.int64) ^ 1
        p, node = pos[twin], org[twin]
        nxt = order[np.where(p == start[node], start[node + 1] - 1, p - 1)]
        label, rank, n_f = _cycles(nxt)
        size = np.bincount(label, minlength=n_f)
        edge_face = label.reshape(-1, 2)

        # signed area of each face from per-edge shoelace sums (no rings needed)
        seg = np.ones(len(xy), bool)
        seg[off[1:] - 1] = False  # the last vertex of an edge starts no segment
        k = np.flatnonzero(seg)
        cross = xy[k, 0] * xy[k + 1, 1] - xy[k + 1, 0] * xy[k, 1]
        edge_idx = np.repeat(np.arange(n_e), nv)[k]
        c = np.bincount(edge_idx, cross, minlength=n_e)
        area2 = np.bincount(edge_face[:, 0], c, minlength=n_f)
        area2 -= np.bincount(edge_face[:, 1], c, minlength=n_f)

        clean = area2 > 0
        clean[edge_face[edge_face[:, 0] == edge_face[:, 1], 0]] = False
        flagged |= crossing.result()
        side.shutdown()
        clean[edge_face[flagged].ravel()] = False

        polygon = np.full(n_f, None, dtype=object)
        ok = np.flatnonzero(clean)
        if ok.size:
            polygon[ok] = _rings(xy, off, nxt, label, rank, size, ok, n_e)
            # a ring that still fails (a node met twice: a pinch) drops that face only;
            # streets crossing each other were flagged above
            bad = ok[~_in_threads(shapely.is_valid, polygon[ok])]
            clean[bad] = False
            polygon[bad] = None
        return Faces(edge_face=edge_face, size=size, clean=clean, polygon=polygon)

    return net.cached("planar_faces", build)


def _leaving(xy: np.ndarray, off: np.ndarray, *, forward: bool) -> np.ndarray:
    """Unit-free direction in which each edge leaves its first (or last) node; NaN if none."""
    n_e = off.shape[0] - 1
    out = np.full((n_e, 2), np.nan)
    nv = np.diff(off)
    base = off[:-1] if forward else off[1:] - 1
    step = 1 if forward else -1
    todo = np.flatnonzero(nv >= 2)
    d = xy[base[todo] + step] - xy[base[todo]]
    moved = (d != 0).any(1)
    out[todo[moved]] = d[moved]
    todo = todo[~moved]
    for k in range(2, int(nv.max(initial=0))):  # skip repeated vertices
        if not todo.size:
            break
        todo = todo[nv[todo] > k]
        d = xy[base[todo] + step * k] - xy[base[todo]]
        moved = (d != 0).any(1)
        out[todo[moved]] = d[moved]
        todo = todo[~moved]
    return out


def _rings(xy: np.ndarray, off: np.ndarray, nxt: np.ndarray, label: np.ndarray,
           rank: np.ndarray, size: np.ndarray, faces: np.ndarray, n_e: int) -> np.ndarray:
    """Polygons of ``faces``: their half-edges in cycle order, each without its last vertex."""
    want = np.zeros(size.shape[0], bool)
    want[faces] = True
    h = np.flatnonzero(want[label])
    fst = np.zeros(size.shape[0] + 1, np.int64)
    np.cumsum(np.where(want, size, 0), out=fst[1:])
    ordered = np.empty(h.size, np.int64)
    ordered[fst[label[h]] + rank[h]] = h
    e = ordered >> 1
    fwd = (ordered & 1) == 0
    n_v = off[e + 1] - off[e] - 1
    base = np.where(fwd, off[e], off[e + 1] - 1)
    sign = np.where(fwd, 1, -1)
    within = run_offsets(n_v)
    pts = xy[np.repeat(base, n_v) + np.repeat(sign, n_v) * within]
    fid = np.repeat(label[ordered], n_v)
    cnt = np.bincount(fid, minlength=size.shape[0])[faces]
    ring_id = np.repeat(np.arange(faces.size), cnt)
    # closes each ring; built in halves at once (GEOS runs without Python's lock)
    cut = int(np.searchsorted(ring_id, faces.size // 2))
    lo, hi = _in_threads(lambda part: shapely.polygons(shapely.linearrings(
        pts[part], indices=ring_id[part] - ring_id[part][:1])), [slice(0, cut), slice(cut, None)],
        split=False)
    return np.concatenate([lo, hi])


def eroded(net: WalkNetwork, faces: Faces, which: np.ndarray, buffer_m: float, quad_segs: int
           ) -> np.ndarray:
    """``erode(face, buffer_m)`` for the clean faces ``which`` (empty ones as ``None``), cached."""
    store = net.cached(f"eroded_{float(buffer_m)!r}_{int(quad_segs)}",
                   lambda: (np.zeros(faces.n_faces, bool), np.full(faces.n_faces, None, object)))
    done, holes = store
    todo = np.unique(which[~done[which]])
    if todo.size:
        polys = faces.polygon[todo]
        b = shapely.bounds(polys)
        # a block no wider than 2 * buffer_m has no core left
        wide = np.minimum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]) > 2.0 * buffer_m
        if wide.any():
            g = shapely.buffer(polys[wide], -float(buffer_m), quad_segs=quad_segs)
            g[shapely.is_empty(g)] = None
            holes[todo[wide]] = g
        done[todo] = True
    return holes[which]
