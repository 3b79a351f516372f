"""Service areas: the streets a facility reaches within each threshold, as polygons.

`service_areas` routes memory-bounded chunks of nearby facilities with one
limited csgraph Dijkstra each (on the part of the network within reach of
the chunk), collects every edge reached (partial edges cut at the reachable
fraction, the facility's own edge both ways from its spot, its snap walk)
and turns them into the exact set of points within ``buffer_m`` of those
streets: city blocks whose whole boundary is reached are taken whole
(`planner.access.faces`) and grown by ``buffer_m``, with their eroded
cores punched as holes, and only the streets on the rim are banded; the
grown blocks and the bands are unioned by Clipper in one sweep
(`_clip_groups`, one job of plain arrays per chunk).  Chunks are built in
threads (GEOS and csgraph release Python's lock); for many polygons the
Clipper jobs run in worker processes (Clipper does not release it).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import chain
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
import shapely
from scipy.sparse.csgraph import dijkstra

from planner._errors import PlannerWarning
from planner.access.faces import Faces, eroded, planar_faces
from planner.access.routing import _cell_index, _rows_in_memory, _snap_s, _virtual_graph
from planner.access.snap import Snapped, edge_geometries, edge_vertices, run_offsets
from planner.defaults import SERVICE_AREA_BUFFER_M, THRESHOLDS_MIN
from planner.progress import bar

if TYPE_CHECKING:
    import geopandas as gpd

    from planner.network import WalkNetwork

__all__ = ["service_areas"]

#: Service areas find the city blocks (`planner.access.faces`) when the polygons are
#: expected to reach at least this many edges per edge of the network.
_BLOCKS_MIN_SHARE = 0.1

#: (row in the chunk, edge, time at the edge's ``u``, time at its ``v``) of the edges reached.
_Reached = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
#: Rim pieces of a chunk: (group of each batch, batches of lines, taken block keys).
_Pieces = tuple[list[np.ndarray], list[np.ndarray], np.ndarray]


def _edge_vertices(net: WalkNetwork) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Edge vertices with their normalised position, for vectorised substrings (cached)."""

    def build() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        xy, off = edge_vertices(net)
        counts = np.diff(off)
        idx = np.repeat(np.arange(net.n_edges), counts)
        step = np.zeros(len(xy))
        step[1:] = np.hypot(np.diff(xy[:, 0]), np.diff(xy[:, 1]))
        step[off[:-1][counts > 0]] = 0.0
        cs = np.cumsum(step)
        cum = cs - cs[off[:-1]][idx]
        total = cum[off[1:] - 1][idx]
        rank = np.arange(len(xy)) - off[:-1][idx]
        with np.errstate(invalid="ignore", divide="ignore"):
            norm = np.where(total > 0, cum / total, rank / np.maximum(counts[idx] - 1, 1))
        return xy, off, 2.0 * idx + norm, norm

    return net.cached("edge_vertices", build)


def _substrings(net: WalkNetwork, e: np.ndarray, s: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Pieces of edges ``e`` between fractions ``s <= t``, as LineStrings, vectorised.

    Shapely has no vectorised substring (``shapely.ops.substring`` is one
    Python call per line), so the cut is done here on the coordinate arrays:
    the interior vertices of each piece come from a search on a global
    ``2 * edge + fraction`` key, and the two ends are interpolated.
    """
    xy, off, key, norm = _edge_vertices(net)
    lo = np.searchsorted(key, 2.0 * e + s, "right")
    hi = np.maximum(np.searchsorted(key, 2.0 * e + t, "left"), lo)
    first, last = off[e], off[e + 1] - 2

    def at(k: np.ndarray, f: np.ndarray) -> np.ndarray:
        k = np.clip(k, first, last)
        den = norm[k + 1] - norm[k]
        with np.errstate(invalid="ignore", divide="ignore"):
            w = np.clip(np.where(den > 0, (f - norm[k]) / den, 0.0), 0.0, 1.0)
        return xy[k] + w[:, None] * (xy[k + 1] - xy[k])

    p0, p1 = at(lo - 1, s), at(hi - 1, t)
    n_in = hi - lo
    size = n_in + 2
    start = np.cumsum(size) - size  # empty for no pieces
    out = np.empty((int(size.sum()), 2))
    out[start] = p0
    out[start + size - 1] = p1
    if n_in.sum():
        within = run_offsets(n_in)
        out[np.repeat(start + 1, n_in) + within] = xy[np.repeat(lo, n_in) + within]
    return shapely.linestrings(out, indices=np.repeat(np.arange(len(e)), size))


def _node_edges(net: WalkNetwork) -> tuple[np.ndarray, np.ndarray]:
    """Node -> incident edges as CSR (``indptr``, ``edge``); a loop is listed once (cached)."""

    def build() -> tuple[np.ndarray, np.ndarray]:
        eu, ev = net.edge_u, net.edge_v
        ids = np.arange(net.n_edges, dtype=np.int64)
        other = eu != ev
        nodes = np.concatenate([eu, ev[other]])
        edges = np.concatenate([ids, ids[other]])
        order = np.argsort(nodes, kind="stable")
        indptr = np.zeros(net.n_nodes + 1, np.int64)
        np.cumsum(np.bincount(nodes, minlength=net.n_nodes), out=indptr[1:])
        return indptr, edges[order]

    return net.cached("node_edges", build)


def _reached_edges(net: WalkNetwork, d: np.ndarray, limit: float,
                   nodes: np.ndarray | None = None) -> _Reached:
    """(row, edge, time at ``u``, time at ``v``) of every edge with an end node within
    ``limit`` in row ``d[row]``, once each.

    ``d`` has a column per node of ``nodes`` (sorted node ids; ``None`` = all
    nodes), then possibly virtual ones; a node not in ``nodes`` is unreached.
    """
    indptr, inc = _node_edges(net)
    m = net.n_nodes if nodes is None else nodes.size
    r, loc = np.nonzero(d[:, :m] <= limit)
    node = loc if nodes is None else nodes[loc]
    cnt = indptr[node + 1] - indptr[node]
    rr = np.repeat(r, cnt)
    nn = np.repeat(node, cnt)
    ee = inc[np.repeat(indptr[node], cnt) + run_offsets(cnt)]

    def at(g: np.ndarray) -> np.ndarray:
        if nodes is None:
            return d[rr, g]
        pos = np.minimum(np.searchsorted(nodes, g), m - 1)
        return np.where(nodes[pos] == g, d[rr, pos], np.inf)

    du, dv = at(net.edge_u[ee]), at(net.edge_v[ee])
    # an edge with both ends reached is listed at both: keep it at its u end only
    keep = (nn == net.edge_u[ee]) | ~(du <= limit)
    return rr[keep], ee[keep], du[keep], dv[keep]


def _reach_m_per_s(net: WalkNetwork) -> float:
    """An upper bound of the distance covered per network second (inf when none exists)."""

    def build() -> float:
        t, length = net.edge_time_s, net.edge_length_m
        if (length[t <= 0] > 0).any():
            return np.inf
        ok = t > 0
        return float(np.max(length[ok] / t[ok], initial=0.0)) * (1 + 1e-9)

    return net.cached("reach_m_per_s", build)


def _subgraph(a: sp.csr_matrix, keep: np.ndarray) -> sp.csr_matrix:
    """``a[keep][:, keep]`` for sorted ``keep``, without the O(n) work of scipy's indexing."""
    start, cnt = a.indptr[keep], np.diff(a.indptr)[keep]
    pos = np.repeat(start, cnt) + run_offsets(cnt)
    cols, w = a.indices[pos], a.data[pos]
    rows = np.repeat(np.arange(keep.size), cnt)
    loc = np.minimum(np.searchsorted(keep, cols), keep.size - 1)
    ok = keep[loc] == cols
    return sp.csr_matrix((w[ok], (rows[ok], loc[ok])), shape=(keep.size, keep.size))


def _spatial_order(x: np.ndarray, y: np.ndarray, cell: float) -> np.ndarray:
    """Order points along a Z-curve of ``cell``-sized cells (neighbours end up close)."""
    if not np.isfinite(cell) or cell <= 0 or x.size < 2:
        return np.arange(x.size)

    def spread(v: np.ndarray) -> np.ndarray:
        v = v.astype(np.uint64) & np.uint64(0xFFFF)
        for shift, mask in ((8, 0x00FF00FF), (4, 0x0F0F0F0F), (2, 0x33333333), (1, 0x55555555)):
            v = (v | (v << np.uint64(shift))) & np.uint64(mask)
        return v

    ix = np.floor((x - x.min()) / cell)
    iy = np.floor((y - y.min()) / cell)
    code = spread(np.minimum(ix, 65535)) | (spread(np.minimum(iy, 65535)) << np.uint64(1))
    return np.argsort(code, kind="stable")


def _build_areas(net: WalkNetwork, facilities: Snapped, limits: np.ndarray, buffer_m: float,
                 quad_segs: int, workers: int | None, polys: np.ndarray, shown: Any) -> None:
    """Fill ``polys`` (facility-major, one per threshold) chunk by chunk; see `service_areas`."""
    k, n_lim = len(facilities), len(limits)
    if not k:
        return
    lines = edge_geometries(net)
    _node_edges(net)
    _edge_vertices(net)
    a, virt = _virtual_graph(net, facilities)
    n_jobs = _workers(workers, k)
    step = _rows_in_memory(8 * a.shape[0] * n_jobs)
    # nothing farther than this from a facility's spot is reached in time: each
    # chunk of nearby facilities runs on the part of the network around them
    reach = float(limits[-1]) * _reach_m_per_s(net)
    order = _spatial_order(facilities.x, facilities.y, reach)
    whole = not np.isfinite(reach) or k <= step

    def route(ids: np.ndarray) -> _Reached:
        if whole:
            nodes = None
            sub, src = a, virt[ids]
        else:
            fx, fy = facilities.x[ids], facilities.y[ids]
            nodes = _cell_index(net).query(fx.min() - reach, fx.max() + reach,
                                           fy.min() - reach, fy.max() + reach)
            keep = np.concatenate([nodes, np.sort(virt[ids])])
            sub = _subgraph(a, keep)
            src = np.searchsorted(keep, virt[ids])
        d = dijkstra(sub, directed=True, indices=src, limit=limits[-1])
        return _reached_edges(net, d, limits[-1], nodes)

    def build(ids: np.ndarray, routed: _Reached) -> np.ndarray:
        rr, ee, du, dv = routed
        pieces = _chunk_pieces(net, facilities, ids, rr, ee, du, dv,
                               limits, lines, buffer_m, quad_segs, faces)
        return _assemble(net, faces, pieces, ids.size * n_lim, buffer_m, quad_segs, clip)

    def chunk(c0: int) -> tuple[np.ndarray, np.ndarray]:
        ids = order[c0:c0 + step]
        return ids, build(ids, route(ids))

    def put(ids: np.ndarray, local: np.ndarray) -> None:
        polys[(ids[:, None] * n_lim + np.arange(n_lim)).ravel()] = local
        shown.update(ids.size)

    # Clipper holds Python's lock: for many polygons it runs in worker processes,
    # started first so that they are up once the first chunk is routed
    with _clip_pool(n_jobs if k * n_lim >= _PROCESS_MIN_POLYGONS else 1) as clip:
        # the blocks pay off once the polygons cover a good part of the network
        # (finding them costs about as much as banding a tenth of its edges)
        ids0 = order[:step]
        routed0 = route(ids0)
        reached = routed0[0].size * k / ids0.size
        faces = (planar_faces(net) if net.peek_cached("planar_faces") is not None
                 or reached >= _BLOCKS_MIN_SHARE * net.n_edges else None)
        put(ids0, build(ids0, routed0))
        del routed0

        starts = list(range(step, k, step))
        if n_jobs == 1 or len(starts) <= 1:
            for c0 in starts:
                put(*chunk(c0))
        else:
            # GEOS and csgraph release the GIL: threads share the network and its
            # caches, and each hands its Clipper work to the worker processes
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(n_jobs) as pool:
                for f in [pool.submit(chunk, c0) for c0 in starts]:
                    put(*f.result())


def _clip_in_worker(job: dict[str, Any]) -> dict[str, np.ndarray]:
    """`_clip_groups` as a worker process runs it."""
    return _clip_groups(job)


def _keep_heap() -> None:
    """Let a Clipper worker keep the memory it frees (glibc only; elsewhere a no-op).

    Clipper allocates and frees its edge lists for every polygon; a fresh
    process hands freed memory back to the system and page-faults it in
    again for the next polygon, which made the workers take a third more
    CPU than the same work in this long-lived process.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        for param, value in ((-1, 1 << 30), (-2, 1 << 28), (-3, 1 << 25)):
            libc.mallopt(param, value)  # M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        pass


#: Service areas run Clipper in worker processes from this many polygons on (starting
#: them costs about a second of CPU each, what Clipper takes for ~500 polygons).
_PROCESS_MIN_POLYGONS = 2000


@contextmanager
def _clip_pool(n: int) -> Iterator[Any]:
    """A function that runs `_clip_groups` in one of ``n`` spawned worker processes
    (``None`` for ``n <= 1``: it then runs in the calling thread).

    Clipper holds Python's lock, so threads cannot share its work.  The
    workers are *spawned* (fresh interpreters that get only the plain arrays
    of a `_clip_job`), not forked: forked workers ran GEOS and Clipper half
    again as long, on pages shared copy-on-write with this large process.
    Where processes cannot be started (a sandbox, a frozen app) the work
    stays here.
    """
    if n <= 1:
        yield None
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    try:
        pool = ProcessPoolExecutor(n, mp_context=mp.get_context("spawn"),
                                   initializer=_keep_heap)
        for _ in range(n):  # start the workers now, while this process routes
            pool.submit(int)
    except (OSError, RuntimeError, BrokenProcessPool):  # pragma: no cover - no processes here
        yield None
        return
    broken = False

    def clip(job: dict[str, Any]) -> dict[str, np.ndarray]:
        nonlocal broken
        if not broken:
            try:
                return pool.submit(_clip_in_worker, job).result()
            except (OSError, BrokenProcessPool):  # pragma: no cover - a worker died
                broken = True
        return _clip_groups(job)

    try:
        yield clip
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def service_areas(
    net: WalkNetwork,
    facilities: Snapped,
    *,
    minutes: Sequence[float] = THRESHOLDS_MIN,
    speed_mps: float | None = None,
    buffer_m: float = SERVICE_AREA_BUFFER_M,
    tiers: Sequence[str] | None = None,
    quad_segs: int = 4,
    workers: int | None = None,
    lang: str = "zh",
    progress: bool | str = False,
) -> gpd.GeoDataFrame:
    """Service-area polygons: the streets reachable within each threshold, buffered.

    Built from every edge reached, *partial edges included* (cut at the
    reachable fraction), the facility's own edge both ways from its spot,
    and its snap walk; buffered by ``buffer_m``.  Not convex hulls, which
    swallow rivers and walls.  Every street point reachable within the
    threshold lies inside the polygon; unreachable points only within
    ``buffer_m`` of a reachable one.

    Parameters
    ----------
    net
        The `WalkNetwork`.
    facilities
        Snapped facilities (`planner.access.snap_points`).
    minutes
        Thresholds, minutes.
    speed_mps
        Walking speed; ``None`` = the network's.  Another speed scales every
        time of the network (penalties included).
    buffer_m
        Half-width of the street band, metres.
    tiers
        The tier of each facility, copied to the output.
    quad_segs
        Segments per quarter circle of the rounded parts (4: a rounded edge
        is at most 2 % of ``buffer_m`` inside the true circle).
    workers
        Threads that build chunks of facilities at once (GEOS runs without
        Python's lock, Clipper with it, so from 2,000 polygons on Clipper
        runs in as many spawned worker processes); ``None`` = one per CPU
        core, at most 4.  Use 1 inside a process pool that already fills
        the cores (a Dask batch): no threads, no processes.
    lang
        Language of the warning (``"zh"`` default, or ``"en"``).
    progress
        Show a progress bar over the facilities (`planner.progress.bar`; a
        string is its label).

    Returns
    -------
    GeoDataFrame
        One row per facility and threshold: ``facility_id``, ``tier``,
        ``minutes``, geometry (network CRS).  A facility farther than its
        snap limit from every street (``facilities.far``) gets no rows: its
        straight walk to the street is no service area.  A `PlannerWarning`
        lists those facilities.  A facility (within the snap limit) whose
        straight walk to its street takes longer than a threshold reaches no street in it:
        its geometry there is missing (``None``), and a `PlannerWarning`
        names it with its distance and those thresholds.

    Notes
    -----
    One limited csgraph Dijkstra for a memory-bounded chunk of facilities;
    only the edges at the nodes each facility reaches (through a cached
    node -> edge index) are looked at, never the whole network per
    facility.  The polygon is then the exact set of points within
    ``buffer_m`` of the reached streets, built in two parts
    (`planner.access.faces`): city blocks whose whole boundary is reached are
    taken whole, with their eroded cores (``erode(block, buffer_m)``) as
    holes; their union is grown by ``buffer_m`` (the bands of the streets
    around them), and only the streets on the rim (partial edges, full edges
    with no block taken on either side, the own edge and the snap walk) are
    banded one by one; Clipper offsets and unions all of them in one sweep
    (GEOS would union the bands one overlay at a time).  Up to the
    discretisation of the round parts (``quad_segs``), this equals the union
    of one buffered band per reached street piece.  The blocks are found
    only when the polygons are expected to cover a good share of the
    network (or are already known); chunks of nearby facilities route on
    the part of the network within reach of them, in ``workers`` threads.
    """
    import geopandas as gpd

    if facilities.far.any():
        _warn_far(facilities, lang)
        keep = ~facilities.far
        tiers = None if tiers is None else np.asarray(tiers, dtype=object)[keep]
        facilities = facilities.take(keep)
    minutes = sorted(float(m) for m in minutes)
    k, n_lim = len(facilities), len(minutes)
    factor = 1.0 if speed_mps is None else float(speed_mps) / net.speed_mps
    limits = np.array(minutes) * 60.0 * factor  # thresholds in network seconds
    polys = np.full(k * n_lim, None, dtype=object)
    with bar(k, progress=progress, label="service areas", unit="facility") as shown:
        _build_areas(net, facilities, limits, buffer_m, quad_segs, workers, polys, shown)
    if k:
        _warn_no_street(facilities, _snap_s(net, facilities)[None, :] > limits[:, None], minutes)
    fi = np.repeat(np.arange(k), n_lim)
    tier_arr = (np.asarray(tiers, dtype=object) if tiers is not None
                else np.full(k, None, dtype=object))
    return gpd.GeoDataFrame(
        {
            "facility_id": np.asarray(facilities.ids, dtype=object)[fi],
            "tier": tier_arr[fi] if k else np.zeros(0, object),
            "minutes": np.tile(np.array(minutes), k),
        },
        geometry=gpd.GeoSeries(polys, crs=net.crs).values,
        crs=net.crs,
    )


def _warn_no_street(facilities: Snapped, none: np.ndarray, minutes: Sequence[float],
                    *, limit: int = 20) -> None:
    """Warn about the facilities whose straight walk to the street is longer than a
    threshold (``none[j, f]``): they reach no street then and get no polygon."""
    far = np.flatnonzero(none.any(axis=0))
    if not far.size:
        return
    far = far[np.argsort(-facilities.dist_m[far], kind="stable")]

    def one(f: int) -> str:
        mins = ", ".join(f"{m:g}" for m, n in zip(minutes, none[:, f]) if n)
        return f"{facilities.ids[f]} ({facilities.dist_m[f]:.0f} m; {mins} min)"

    shown = "; ".join(one(f) for f in far[:limit])
    more = f"; and {far.size - limit} more" if far.size > limit else ""
    shown_zh = "；".join(one(f).replace(" min)", " 分钟)").replace(" m;", " 米；")
                        for f in far[:limit])
    more_zh = f"；另有 {far.size - limit} 个" if far.size > limit else ""
    warnings.warn(PlannerWarning(
        f"{far.size} of {len(facilities)} facilities are farther from the nearest walkable "
        f"street than a threshold's walk, so they reach no street and have no service-area "
        f"polygon for it (no geometry): {shown}{more}. Check their coordinates "
        "(GCJ-02/BD-09 offsets?) or add the missing streets.",
        f"{len(facilities)} 个设施中有 {far.size} 个距最近的可步行道路超过该时间阈值的步行距离，"
        f"到不了道路，该阈值下无服务范围（几何为空）：{shown_zh}{more_zh}。"
        "请检查其坐标（GCJ-02/BD-09 偏移？）或补充缺失的道路。"), stacklevel=3)
_FAR = {
    "zh": "{n} 个设施距最近的可步行道路超过 {m:g} 米，不生成服务范围（到道路的一条直线不是服务范围）：{rows}。"
          "请检查其坐标（坐标系偏移？）或补充缺失的道路。",
    "en": "{n} facilities lie more than {m:g} m from the nearest walkable street and get no "
          "service-area polygon (a straight line to the street is no service area): {rows}. "
          "Check their coordinates (a datum offset?) or add the missing streets.",
}


def _warn_far(facilities: Snapped, lang: str) -> None:
    import warnings

    from planner._errors import PlannerWarning

    far = np.flatnonzero(facilities.far)
    far = far[np.argsort(-facilities.dist_m[far], kind="stable")]
    unit = " m" if lang == "en" else " 米"
    rows = [f"{facilities.ids[i]} ({facilities.dist_m[i]:.0f}{unit})" for i in far[:20]]
    more = far.size - len(rows)
    text = (", " if lang == "en" else "、").join(rows)
    if more > 0:
        text += f" … and {more} more" if lang == "en" else f" 等，另有 {more} 个"
    texts = {k: _FAR[k].format(n=far.size, m=facilities.max_snap_m, rows=text)
             for k in ("en", "zh")}
    warnings.warn(PlannerWarning(texts["en"], texts["zh"]), stacklevel=3)


def _workers(workers: int | None, n_facilities: int) -> int:
    if workers is None:
        import os

        workers = min(4, os.cpu_count() or 1)
    if int(workers) < 1:
        raise ValueError(f"workers must be at least 1, got {workers!r}.")
    return max(1, min(int(workers), n_facilities))


def _core_faces(faces: Faces | None, g: np.ndarray, e: np.ndarray, not_taken: np.ndarray | None
                ) -> tuple[np.ndarray, np.ndarray]:
    """Blocks taken whole and the edges inside them, for full edges ``e`` of groups ``g``.

    Returns (sorted ``group * n_faces + face`` keys of the clean faces whose
    every edge is full for the group, mask of the ``(g, e)`` pairs with a
    taken face on both sides).  Keys in ``not_taken`` are never taken;
    without ``faces`` (blocks not looked for) nothing is.
    """
    if faces is None:
        return np.zeros(0, np.int64), np.zeros(e.shape, bool)
    n_f = faces.n_faces
    left = g * n_f + faces.edge_face[e, 0]
    right = g * n_f + faces.edge_face[e, 1]
    keys, count = np.unique(np.concatenate([left, right]), return_counts=True)
    f = keys % n_f
    core = keys[(count == faces.size[f]) & faces.clean[f]]
    core = core[~np.isin(core, not_taken)]
    if not core.size:
        return core, np.zeros(e.shape, bool)

    def taken(x: np.ndarray) -> np.ndarray:
        i = np.minimum(np.searchsorted(core, x), core.size - 1)
        return core[i] == x

    return core, taken(left) | taken(right)


def _chunk_pieces(net: WalkNetwork, facilities: Snapped, own_all: np.ndarray, rr: np.ndarray,
                  ee: np.ndarray, du: np.ndarray, dv: np.ndarray, limits: np.ndarray,
                  lines: np.ndarray, buffer_m: float, quad_segs: int, faces: Faces | None
                  ) -> _Pieces:
    """Rim street pieces (lines, not yet buffered) and taken blocks of a chunk of facilities.

    ``own_all``: the chunk's facilities; ``rr``/``ee``: (row in the chunk, edge)
    of the candidate edges, ``du``/``dv`` the times to the edge's ends.
    Group = row in the chunk * n_thresholds + threshold.
    Returns (piece groups, pieces, core keys ``group * n_faces + face``).
    """
    n_lim = len(limits)
    te = net.edge_time_s[ee]
    fac = rr
    rows = np.arange(own_all.size)
    reach_s = limits[:, None] - _snap_s(net, facilities)[own_all]  # own edge, per threshold
    te0 = net.edge_time_s[facilities.edge[own_all]]
    f0 = facilities.fraction[own_all]
    # the blocks on both sides of a facility's own edge hold its snap walk,
    # which is no street of theirs: never taken whole
    own_faces = None if faces is None else faces.edge_face[facilities.edge[own_all]]
    walk = facilities.dist_m[own_all] > 0
    groups, pieces, cores = [], [], []
    full_groups, full_edges = [], []
    for j, lim in enumerate(limits):
        with np.errstate(invalid="ignore", divide="ignore"):
            ru = np.where(te > 0, (lim - du) / te, np.where(du <= lim, 2.0, -1.0))
            rv = np.where(te > 0, (lim - dv) / te, np.where(dv <= lim, 2.0, -1.0))
        full = (ru >= 1) | (rv >= 1) | ((ru >= 0) & (rv >= 0) & (ru + rv >= 1))
        upart = (ru >= 0) & ~full
        vpart = (rv >= 0) & ~full
        gf, ef = fac[full] * n_lim + j, ee[full]
        not_taken = None
        if faces is not None:
            gown = (rows * n_lim + j)[:, None] * faces.n_faces
            not_taken = (gown + own_faces).ravel()
        core, inside = _core_faces(faces, gf, ef, not_taken)
        cores.append(core)
        # full edges with a block not taken on a side form the rim
        full_groups.append(gf[~inside])
        full_edges.append(ef[~inside])
        # own edge, both ways from the spot; then the snap walk
        okk = reach_s[j] >= 0
        with np.errstate(invalid="ignore", divide="ignore"):
            rr0 = np.where(te0[okk] > 0, reach_s[j, okk] / te0[okk], 2.0)
        pe = np.concatenate([ee[upart], ee[vpart], facilities.edge[own_all[okk]]])
        ps = np.concatenate([np.zeros(int(upart.sum())), 1.0 - rv[vpart],
                             np.clip(f0[okk] - rr0, 0, 1)])
        pt = np.concatenate([ru[upart], np.ones(int(vpart.sum())),
                             np.clip(f0[okk] + rr0, 0, 1)])
        groups.append(np.concatenate([fac[upart] * n_lim + j, fac[vpart] * n_lim + j,
                                      rows[okk] * n_lim + j]))
        pieces.append(_substrings(net, pe, np.clip(ps, 0, 1), np.clip(pt, 0, 1)))
        # the snap walk of a facility that reaches its street in time (one that
        # does not reaches no street: it gets no polygon, see `_warn_no_street`)
        walks = walk & okk
        if walks.any():
            w = own_all[walks]
            conn = shapely.linestrings(np.stack(
                [np.c_[facilities.point_x[w], facilities.point_y[w]],
                 np.c_[facilities.x[w], facilities.y[w]]], 1))
            groups.append(rows[walks] * n_lim + j)
            pieces.append(conn)
    fe = np.concatenate(full_edges)
    if fe.size:
        groups.append(np.concatenate(full_groups))
        pieces.append(lines[fe])
    return groups, pieces, np.sort(np.concatenate(cores))


def _assemble(net: WalkNetwork, faces: Faces | None, pieces: _Pieces, n_groups: int,
              buffer_m: float, quad_segs: int, clip: Any = None) -> np.ndarray:
    """Polygons of groups ``0 .. n_groups - 1``: the taken blocks (one coverage
    union) grown by ``buffer_m`` together with the rim pieces' bands, in one
    offset-and-union per group (`_clip_groups`, run by ``clip``: a worker
    process or, by default, here), then the blocks' eroded cores punched as
    holes."""
    groups, lines, core = pieces
    n_f = faces.n_faces if faces is not None else 1
    cg, cf = core // n_f, core % n_f  # sorted by group
    cbounds = np.searchsorted(cg, np.arange(n_groups + 1))
    holes = (eroded(net, faces, cf, buffer_m, quad_segs) if faces is not None
             else np.zeros(0, object))
    if groups:
        gg = np.concatenate(groups)
        line = np.concatenate(lines)
        xy, li = shapely.get_coordinates(line, return_index=True)
    else:
        gg, xy, li = np.zeros(0, np.int64), np.zeros((0, 2)), np.zeros(0, np.int64)
    # the coordinates of each group's lines, one run per line
    order = np.argsort(gg, kind="stable")
    rank = np.empty(order.size, np.int64)
    rank[order] = np.arange(order.size)
    vo = np.argsort(rank[li], kind="stable")
    xy, vl = xy[vo], rank[li][vo]  # vertices sorted by (group, line); vl: line rank
    lbounds = np.searchsorted(gg[order], np.arange(n_groups + 1))
    vbounds = np.searchsorted(vl, lbounds)
    n_blocks = np.diff(cbounds)
    bases = np.full(n_groups, None, dtype=object)
    for i in np.flatnonzero(n_blocks).tolist():
        bases[i] = _blocks_union(faces.polygon[cf[cbounds[i]:cbounds[i + 1]]])
    work = (n_blocks > 0) | (np.diff(vbounds) > 0)
    job = _clip_job(bases, xy, vl, vbounds, work, buffer_m, quad_segs)
    done = (clip or _clip_groups)(job)
    # the eroded cores of each group's blocks, as rings
    keep = holes != None  # noqa: E711  (object array: elementwise)
    hg = np.repeat(np.arange(n_groups), n_blocks)[keep]
    parts, pi = shapely.get_parts(holes[keep], return_index=True)
    return _polygons(job, done, shapely.get_exterior_ring(parts), hg[pi])


#: Clipper's integer grid: at most this many units per metre (10 µm), fewer where a
#: group spans more than 10 km, so that coordinates stay within its fast 64-bit range.
_CLIP_UNITS_PER_M = 1e5
_CLIP_MAX_UNITS = 1e9
#: The blocks' grown corners are drawn with chords this many times shorter than GEOS's.
_ARC_FINER = 2


def _group_extent(xy: np.ndarray, bounds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lower-left and upper-right corner of each run ``bounds[i]:bounds[i + 1]`` of
    points sorted by group (+-inf where a run is empty)."""
    n = bounds.size - 1
    lo, hi = np.full((n, 2), np.inf), np.full((n, 2), -np.inf)
    full = np.flatnonzero(np.diff(bounds) > 0)
    if full.size:
        lo[full] = np.minimum.reduceat(xy, bounds[full], axis=0)
        hi[full] = np.maximum.reduceat(xy, bounds[full], axis=0)
    return lo, hi


def _clip_job(bases: np.ndarray, xy: np.ndarray, line: np.ndarray, vbounds: np.ndarray,
              work: np.ndarray, buffer_m: float, quad_segs: int) -> dict[str, Any]:
    """Everything `_clip_groups` needs for groups ``0 .. n - 1``, as plain arrays (so
    that a worker process gets it cheaply): the rings of each group's ``bases``
    (taken blocks; ``None`` for none) and its rim lines (vertices ``xy`` with line
    number ``line``, sorted by group; group ``i`` holds ``vbounds[i]:vbounds[i + 1]``),
    on each group's integer grid (10 µm, from a whole-metre origin, so that a
    street lands on the same grid in every polygon)."""
    n = bases.size
    has = np.flatnonzero(bases != None)  # noqa: E711  (object array: elementwise)
    rxy, rid, rgroup = _oriented_rings(bases[has])
    rgroup = has[rgroup]
    # ring runs: [start of each ring], and the rings of each group
    rstart = np.flatnonzero(np.r_[True, rid[1:] != rid[:-1]]) if rid.size else rid
    rb = np.r_[rstart, rid.size]
    rgb = np.searchsorted(rgroup[rstart], np.arange(n + 1))
    # line runs the same way (a new line where the line number changes)
    lstart = np.flatnonzero(np.r_[True, line[1:] != line[:-1]]) if line.size else line
    lb = np.r_[lstart, line.size]
    lgb = np.searchsorted(lstart, vbounds)
    lo_r, hi_r = _group_extent(rxy, rb[rgb])
    lo_l, hi_l = _group_extent(xy, vbounds)
    lo, hi = np.minimum(lo_r, lo_l), np.maximum(hi_r, hi_l)
    empty = ~np.isfinite(lo[:, 0])
    lo[empty], hi[empty] = 0.0, 0.0
    span = np.max(hi - lo, axis=1) + 4.0 * buffer_m
    scale = np.minimum(_CLIP_UNITS_PER_M, _CLIP_MAX_UNITS / np.maximum(span, 1.0))
    # whole metres: every group rounds a street to the same integer grid
    origin = np.floor(lo - 2.0 * buffer_m)
    vg = np.repeat(np.arange(n), np.diff(vbounds))
    rg = np.repeat(np.arange(n), np.diff(rb[rgb]))
    # one chord of a round part spans this angle in GEOS's buffers
    step = np.pi / (2 * quad_segs)
    return {
        "ring_xy": np.rint((rxy - origin[rg]) * scale[rg, None]).astype(np.int64),
        "ring_bounds": rb, "group_rings": rgb,
        "line_xy": np.rint((xy - origin[vg]) * scale[vg, None]).astype(np.int64),
        "line_bounds": lb, "group_lines": lgb,
        "work": work & ~empty, "no_points": work & empty,
        "delta": buffer_m * scale,
        "arc_rings": buffer_m * (1.0 - np.cos(step / _ARC_FINER / 2)) * scale,
        "arc_lines": buffer_m * (1.0 - np.cos(step / 2)) * scale,
        "scale": scale, "origin": origin,
    }


def _clip_groups(job: dict[str, Any]) -> dict[str, np.ndarray]:
    """For each group of a `_clip_job`: ``buffer(base, buffer_m)`` unioned with the
    bands of its rim lines, by Clipper; the output rings as integer vertices, each
    with its part (parts numbered across groups, each part's shell first) and
    each part with its group.  Plain arrays in and out: this runs in a worker
    process when the job is large (Clipper holds Python's lock).

    GEOS unions bands one overlay at a time, tens of microseconds each even
    for two small bands, and a 15-minute area has a hundred or more rim
    bands; its buffer of all lines at once is slower still.  Clipper
    (pyclipper) offsets every path and unions the results in one sweep.
    Two offsets and a union:

    * the rim lines with round ends drawn at GEOS's angular step for
      ``quad_segs`` (the same vertices as GEOS's round caps), so the polygon
      is the GEOS band union up to slivers of its chord sagitta;
    * the base rings (the taken blocks) grown with corners drawn
      `_ARC_FINER` times finer: a street on the blocks' rim for a larger
      threshold covers its own band (round ends) drawn for a smaller one, up
      to far thinner slivers, so the polygons of growing thresholds nest.
    """
    import pyclipper

    rings = job["ring_xy"].tolist()
    lines = job["line_xy"].tolist()
    rb, rgb = job["ring_bounds"].tolist(), job["group_rings"].tolist()
    lb, lgb = job["line_bounds"].tolist(), job["group_lines"].tolist()
    delta = job["delta"].tolist()
    arc_r, arc_l = job["arc_rings"].tolist(), job["arc_lines"].tolist()
    fill = pyclipper.PFT_NONZERO
    out_rings: list[list[list[int]]] = []
    ring_part: list[int] = []
    part_group: list[int] = []

    def emit(group: int, part: list[list[list[int]]]) -> None:
        ring_part.extend([len(part_group)] * len(part))
        part_group.append(group)
        out_rings.extend(part)

    for i in np.flatnonzero(job["work"]).tolist():
        done = []  # (offset, its paths) of the grown blocks, then of the rim bands
        for flat, bounds, r0, r1, arc, end in (
                (rings, rb, rgb[i], rgb[i + 1], arc_r[i], pyclipper.ET_CLOSEDPOLYGON),
                (lines, lb, lgb[i], lgb[i + 1], arc_l[i], pyclipper.ET_OPENROUND)):
            if r1 == r0:
                continue
            off = pyclipper.PyclipperOffset(arc_tolerance=arc)
            off.AddPaths([flat[bounds[r]:bounds[r + 1]] for r in range(r0, r1)],
                         pyclipper.JT_ROUND, end)
            got = off.Execute(delta[i])
            if got:
                done.append((off, got))
        if not done:
            continue
        if len(done) == 1:
            out = done[0][1]
        else:
            union = pyclipper.Pyclipper()
            union.AddPaths(done[0][1], pyclipper.PT_SUBJECT, True)
            union.AddPaths(done[1][1], pyclipper.PT_CLIP, True)
            out = union.Execute(pyclipper.CT_UNION, fill, fill)
        if not out:
            continue
        shell = [pyclipper.Orientation(p) for p in out]
        if sum(shell) == 1:
            first = shell.index(True)
            emit(i, [out[first], *(p for p, s in zip(out, shell) if not s)])
            continue
        # several parts (rare: a service area is one walk network): let Clipper nest them
        tree = (done[0][0].Execute2(delta[i]) if len(done) == 1
                else union.Execute2(pyclipper.CT_UNION, fill, fill))

        def walk(node: Any, group: int = i) -> None:
            for part in node.Childs:
                emit(group, [part.Contour, *(h.Contour for h in part.Childs)])
                for h in part.Childs:
                    walk(h)

        walk(tree)
    size = [len(r) for r in out_rings]
    return {"xy": np.array(list(chain.from_iterable(out_rings)), np.int64).reshape(-1, 2),
            "ring_size": np.array(size, np.int64), "ring_part": np.array(ring_part, np.int64),
            "part_group": np.array(part_group, np.int64)}


def _polygons(job: dict[str, Any], done: dict[str, np.ndarray], holes: np.ndarray,
              hole_group: np.ndarray) -> np.ndarray:
    """The polygon of each group from `_clip_groups`'s rings (``None`` where a group
    had no work, empty where nothing came out), with the rings ``holes``
    (eroded block cores, each well inside its group's polygon) punched into
    group ``hole_group``; vectorised over the groups."""
    n = job["scale"].size
    polys = np.full(n, None, dtype=object)
    polys[job["work"] | job["no_points"]] = shapely.Polygon()
    pg, rp, size = done["part_group"], done["ring_part"], done["ring_size"]
    if not pg.size:
        return polys
    n_parts = np.bincount(pg, minlength=n)
    rg = np.repeat(pg[rp], size)
    xy = done["xy"] / job["scale"][rg, None] + job["origin"][rg]
    rings = shapely.linearrings(xy, indices=np.repeat(np.arange(size.size), size))
    # the cores go into a one-part polygon directly; into the right part otherwise
    first = np.searchsorted(pg, np.arange(n))  # each group's first part (parts sorted)
    one = n_parts[hole_group] == 1
    all_rings = np.concatenate([rings, holes[one]])
    all_part = np.concatenate([rp, first[hole_group[one]]])
    order = np.argsort(all_part, kind="stable")  # shell, Clipper's holes, then cores
    parts = shapely.polygons(all_rings[order], indices=all_part[order])
    single = np.flatnonzero(n_parts == 1)
    polys[single] = parts[first[single]]
    many = np.flatnonzero(n_parts > 1)
    if many.size:
        mp = np.flatnonzero(n_parts[pg] > 1)
        multi = shapely.multipolygons(parts[mp], indices=np.searchsorted(many, pg[mp]))
        for g, poly in zip(many.tolist(), multi, strict=True):
            h = holes[hole_group == g]
            polys[g] = _punch(poly, h) if h.size else poly
    return polys


def _offset_union(base: shapely.Geometry | None, xy: np.ndarray, line: np.ndarray,
                  buffer_m: float, quad_segs: int) -> shapely.Geometry:
    """``buffer(base, buffer_m)`` unioned with the bands of the lines (vertices ``xy``,
    line number ``line`` per vertex, grouped), by Clipper: one group of
    `_clip_groups`."""
    job = _clip_job(np.array([base], dtype=object), xy, line, np.array([0, line.size]),
                    np.ones(1, bool), buffer_m, quad_segs)
    return _polygons(job, _clip_groups(job), np.zeros(0, object), np.zeros(0, np.int64))[0]


def _oriented_rings(polys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vertices, ring number and polygon (index in ``polys``) of every ring of
    ``polys``: per polygon its shells counter-clockwise, then its holes
    clockwise (Clipper tells them apart by orientation)."""
    full = np.flatnonzero(~shapely.is_empty(polys))
    parts, owner = shapely.get_parts(polys[full], return_index=True)
    owner = full[owner]
    n_int = shapely.get_num_interior_rings(parts)
    shells = shapely.get_exterior_ring(parts)
    inner = shapely.get_interior_ring(np.repeat(parts, n_int), run_offsets(n_int))
    rings = np.concatenate([shells, inner])
    kind = np.r_[np.zeros(shells.size, np.int64), np.ones(inner.size, np.int64)]
    group = np.concatenate([owner, np.repeat(owner, n_int)])
    order = np.lexsort((np.arange(rings.size), kind, group))
    rings, group = rings[order], group[order]
    flip = shapely.is_ccw(rings) != (kind[order] == 0)
    rings[flip] = shapely.reverse(rings[flip])
    xy, rid = shapely.get_coordinates(rings, return_index=True)
    return xy, rid, group[rid]


def _blocks_union(blocks: np.ndarray) -> shapely.Geometry:
    """The union of blocks that share their edges exactly (a coverage: no overlay needed)."""
    try:
        return shapely.coverage_union_all(blocks)
    except shapely.errors.GEOSException:  # pragma: no cover - a safety net, never seen
        return shapely.union_all(blocks)


def _punch(poly: shapely.Geometry, rings: np.ndarray) -> shapely.Geometry:
    """``poly`` with the rings ``rings`` (each well inside it) as extra interior rings.

    The eroded block cores lie at least ``buffer_m`` inside the blocks, which
    lie inside ``poly`` with a ``buffer_m`` margin, so no overlay is needed:
    each ring goes to the part of ``poly`` that contains it.
    """
    parts = shapely.get_parts(poly)
    if parts.size == 1:
        owner = np.zeros(rings.size, np.int64)
    else:
        xy = shapely.get_coordinates(shapely.get_point(rings, 0))
        owner = np.full(rings.size, -1, np.int64)
        for p, part in enumerate(parts):
            free = owner < 0
            inside = shapely.contains_xy(part, xy[free, 0], xy[free, 1])
            owner[np.flatnonzero(free)[inside]] = p
    out = []
    for p, part in enumerate(parts):
        mine = rings[owner == p]
        if mine.size:
            part = shapely.polygons(shapely.get_exterior_ring(part),
                                    np.concatenate([shapely.get_interior_ring(
                                        part, np.arange(shapely.get_num_interior_rings(part))),
                                        mine]))
        out.append(part)
    return out[0] if len(out) == 1 else shapely.multipolygons(out)

