"""Walking access to elderly-care facilities: the 15-minute circle.

How long an older resident walks to the nearest facility of each tier, who
is inside the 15-minute circle (一刻钟养老服务圈), where the gaps are, what each
facility's service area looks like, and capacity-aware accessibility
(2SFCA / enhanced 2SFCA).

Routing
-------
All shortest paths run on the network's CSR arrays with SciPy's
``csgraph.dijkstra`` (C speed, with a ``limit`` cut-off).  Points are not
moved to nodes: every source gets a *virtual node* joined to both ends of
its edge by the along-edge time plus the snap time, so one multi-source
``dijkstra(..., min_only=True)`` call gives each node its nearest source;
targets then take the better of their edge's two ends plus the along-edge
part and their own snap time, and a source and a target on the same edge
also get the direct walk along the edge.  Walking is undirected (one-way
streets do not bind pedestrians).

Times are seconds in the array functions and minutes in the tables;
unreachable (beyond the cut-off or in another component) is ``inf`` in the
arrays, ``NaN`` in the tables.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
import shapely
from scipy.sparse.csgraph import dijkstra

from planner._errors import LayerError, PlannerWarning
from planner._snap import (
    Snapped,
    _cache,
    _cached,
    concat,
    edge_geometries,
    edge_vertices,
    point_geometries,
    run_offsets,
    snap_points,
)

__all__ = [
    "Snapped",
    "snap_points",
    "node_times",
    "nearest_times",
    "cost_matrix",
    "snap_units",
    "population_access",
    "coverage_table",
    "blind_spots",
    "service_areas",
    "fca_scores",
    "fca",
    "run_step",
    "MAIN_TIERS",
]

#: Tiers that always get a ``time_min_<tier>`` column (NaN when the layer has none).
MAIN_TIERS: tuple[str, ...] = ("district_home", "township_centre", "community_station")

#: Gates without a ``community`` column join the population polygon within this many metres.
GATE_MATCH_M = 50.0

_MEMORY_BYTES = 256 * 2**20  # working-memory budget of one chunk of dense Dijkstra rows

#: Service areas find the city blocks (`planner._faces`) when the polygons are
#: expected to reach at least this many edges per edge of the network.
_BLOCKS_MIN_SHARE = 0.1


# --------------------------------------------------------------------------- graph
def _base_csr(net: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    def build():
        return net.csr_arrays(weight="time")

    return _cache(net, "csr_time", build)


def _snap_s(net: Any, s: Snapped) -> np.ndarray:
    return s.dist_m / net.speed_mps


def _virtual_graph(net: Any, sources: Snapped) -> tuple[sp.csr_matrix, np.ndarray]:
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
    net: Any, sources: Snapped, *, cutoff_s: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Walking time from the nearest source to every node.

    One multi-source ``scipy.sparse.csgraph.dijkstra`` call (``min_only``)
    on the network plus one virtual node per source.

    Parameters
    ----------
    net
        The `WalkNetwork`.
    sources
        Snapped sources (`planner._snap.snap_points`); their snap distance and
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
    net: Any, sources: Snapped, targets: Snapped, *, cutoff_s: float | None = None
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
    return max(1, int(_MEMORY_BYTES // (8 * 3 * max(n_cols, 1))))


def _cost_rows(net: Any, src: Snapped, tgt: Snapped, cutoff_s: float) -> sp.csr_array:
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
    net: Any, origins: Snapped, destinations: Snapped, *, cutoff_s: float
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


# --------------------------------------------------------------------------- units and gates
def _gate_units(units: Any, gates: Any, *, max_gap_m: float = GATE_MATCH_M
                ) -> tuple[np.ndarray, np.ndarray, list]:
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


def _gate_units_by_location(units: Any, gates: Any, max_gap_m: float):
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


def snap_units(
    net: Any,
    units: Any,
    *,
    gates: Any = None,
    max_snap_m: float = 300.0,
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
        As in `planner._snap.snap_points`.

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
        if unmatched and "community" in gates.columns:
            warnings.warn(
                f"{len(unmatched)} gate(s) name a community that is not in the population "
                f"layer and are ignored: {', '.join(unmatched[:20])}. Check the gates' "
                "`community` values against the population layer's `id`/`name`.",
                PlannerWarning, stacklevel=2,
            )
        elif unmatched:
            warnings.warn(
                f"{len(unmatched)} gate(s) lie more than {GATE_MATCH_M:g} m from every "
                f"population polygon and are ignored: {', '.join(unmatched[:20])}. Check "
                "their coordinates, or add a `community` column naming each gate's unit.",
                PlannerWarning, stacklevel=2,
            )
        if ok.size:
            g = snap_points(net, gates.iloc[ok], max_snap_m=max_snap_m, warn=False,
                            what="gates")
            g.ids = np.array([f"{base.ids[p]} (gate {gid})" for p, gid in zip(pos[ok], g.ids)],
                             dtype=object)
            gated = np.zeros(n, bool)
            gated[pos[ok]] = True
            parts = [base.take(~gated), g]
            maps = [np.flatnonzero(~gated), pos[ok]]
    out = concat(parts, maps)
    if out.unit.size:
        order = np.argsort(out.unit, kind="stable")
        out = out.take(order)
    if warn:
        msg = out.far_message(what)
        if msg:
            warnings.warn(msg, PlannerWarning, stacklevel=2)
    return out


def _unit_min(seconds: np.ndarray, nearest: np.ndarray, snapped: Snapped):
    """Per unit: the smallest time over its points, that point's nearest source and snap."""
    unit = np.arange(len(snapped)) if snapped.unit is None else snapped.unit
    n = snapped.n_units
    order = np.lexsort((seconds, unit))
    first = np.ones(order.size, bool)
    first[1:] = unit[order][1:] != unit[order][:-1]
    pick = order[first]
    out_t = np.full(n, np.inf)
    out_i = np.full(n, -1, np.int64)
    out_t[unit[pick]] = seconds[pick]
    out_i[unit[pick]] = nearest[pick]
    return out_t, out_i


def _minutes(seconds: np.ndarray) -> np.ndarray:
    m = seconds / 60.0
    m[~np.isfinite(m)] = np.nan
    return m


def _tname(t: float) -> str:
    return f"within_{t:g}min"


def _tier_values(facilities: Any) -> np.ndarray:
    if "tier" in facilities.columns:
        return facilities["tier"].fillna("other").astype(str).to_numpy()
    return np.full(len(facilities), "other", dtype=object)


def population_access(
    net: Any,
    population: Any,
    facilities: Any,
    *,
    gates: Any = None,
    thresholds_min: Sequence[float] = (5.0, 10.0, 15.0),
    cutoff_min: float = 60.0,
    max_snap_m: float = 300.0,
    snap_population: Snapped | None = None,
    snap_facilities: Snapped | None = None,
) -> Any:
    """Walking time from every population unit to the nearest facility of each tier.

    Parameters
    ----------
    net
        The `WalkNetwork` (metric CRS).
    population
        Population units (canonical columns; polygons or points).
    facilities
        Facilities with a ``tier`` column (`planner._schema.TIERS`).
    gates
        Optional compound gates (see `snap_units`).
    thresholds_min
        Minutes for the ``within_<T>min`` columns.
    cutoff_min
        Search cut-off in minutes; farther is NaN (unreachable).
    max_snap_m
        Snap warning threshold, metres.
    snap_population, snap_facilities
        Already snapped points (skip snapping).

    Returns
    -------
    GeoDataFrame
        ``population`` plus ``time_min_<tier>`` for the three main tiers
        (NaN where the layer has no facility of that tier) and any other tier
        present, ``time_min_any``, ``nearest_id`` (the nearest facility of
        any tier), ``snap_m`` and ``within_<T>min`` (``time_min_any <= T``).
        Minutes; NaN = not reachable within ``cutoff_min``.
    """
    if snap_population is None:
        snap_population = snap_units(net, population, gates=gates, max_snap_m=max_snap_m)
    if snap_facilities is None:
        snap_facilities = snap_points(net, facilities, max_snap_m=max_snap_m, what="facilities")
    cutoff_s = float(cutoff_min) * 60.0
    tiers = _tier_values(facilities)
    out = population.copy()
    names = list(MAIN_TIERS) + [t for t in dict.fromkeys(tiers) if t not in MAIN_TIERS]
    for tier in names:
        mask = tiers == tier
        if not mask.any():
            out[f"time_min_{tier}"] = np.nan
            continue
        t, _ = nearest_times(net, snap_facilities.take(mask), snap_population, cutoff_s=cutoff_s)
        t, _ = _unit_min(t, np.zeros(t.size, np.int64), snap_population)
        out[f"time_min_{tier}"] = _minutes(t)
    t, i = nearest_times(net, snap_facilities, snap_population, cutoff_s=cutoff_s)
    t, i = _unit_min(t, i, snap_population)
    out["time_min_any"] = _minutes(t)
    ids = np.asarray(snap_facilities.ids, dtype=object)
    out["nearest_id"] = np.where(i >= 0, ids[np.maximum(i, 0)], None)
    unit = np.arange(len(snap_population)) if snap_population.unit is None else snap_population.unit
    snap_m = np.full(snap_population.n_units, np.inf)
    np.minimum.at(snap_m, unit, snap_population.dist_m)
    out["snap_m"] = snap_m
    for thr in sorted(thresholds_min):
        out[_tname(thr)] = out["time_min_any"].to_numpy() <= thr
    return out


# --------------------------------------------------------------------------- coverage
_ALL = {"zh": "全部", "en": "All"}


def coverage_table(
    population_access: Any,
    *,
    thresholds_min: Sequence[float] = (5.0, 10.0, 15.0),
    tiers: Sequence[str] | None = None,
    lang: Literal["zh", "en"] = "zh",
) -> pd.DataFrame:
    """Population and older population within T minutes, overall and by area.

    Parameters
    ----------
    population_access
        Output of `population_access`.
    thresholds_min
        Minutes.
    tiers
        Tiers to report (``"any"`` = nearest facility of any tier).  Default:
        ``any`` and every tier with at least one reachable unit.
    lang
        Language of the overall row's area name (``全部`` / ``All``).

    Returns
    -------
    DataFrame
        Long form, one row per (tier, minutes, scope, area):
        ``tier, minutes, scope`` (``overall`` | ``district`` | ``township``),
        ``area``, ``district`` (for township rows, when known), ``n_units``,
        ``n_units_within``, ``population``, ``population_within``,
        ``population_share``, and the same three for ``pop_60plus`` when the
        layer has it.  Shares are 0..1 (NaN where the area has nobody).
    """
    pa = population_access
    if tiers is None:
        tiers = ["any"] + [
            c[len("time_min_"):] for c in pa.columns
            if c.startswith("time_min_") and c != "time_min_any" and pa[c].notna().any()
        ]
    counts = [c for c in ("population", "pop_60plus") if c in pa.columns]
    base = pd.DataFrame({c: pd.to_numeric(pa[c], errors="coerce").fillna(0.0).to_numpy()
                         for c in counts})
    base["n_units"] = 1
    scopes: list[tuple[str, list[str]]] = [("overall", [])]
    if "district" in pa.columns:
        base["district"] = pa["district"].to_numpy()
        scopes.append(("district", ["district"]))
    if "township" in pa.columns:
        base["township"] = pa["township"].to_numpy()
        scopes.append(("township", ["district", "township"] if "district" in pa.columns
                       else ["township"]))
    frames = []
    for tier in tiers:
        col = f"time_min_{tier}"
        if col not in pa.columns:
            raise LayerError(f"population_access has no column {col!r}; tiers available: "
                             f"{[c[9:] for c in pa.columns if c.startswith('time_min_')]}")
        time = pa[col].to_numpy(dtype=float)
        for thr in sorted(thresholds_min):
            within = time <= thr
            df = base.copy()
            for c in counts + ["n_units"]:
                df[f"{c}_within"] = np.where(within, df[c], 0)
            for scope, keys in scopes:
                cols = counts + ["n_units"] + [f"{c}_within" for c in counts + ["n_units"]]
                if keys:
                    g = df.groupby(keys, dropna=False, sort=True)[cols].sum().reset_index()
                    g["area"] = g[keys[-1]]
                else:
                    g = df[cols].sum().to_frame().T
                    g["area"] = _ALL[lang]
                if scope != "township":
                    g["district"] = g["area"] if scope == "district" else None
                g["tier"], g["minutes"], g["scope"] = tier, float(thr), scope
                frames.append(g)
    out = pd.concat(frames, ignore_index=True)
    for c in counts:
        with np.errstate(invalid="ignore", divide="ignore"):
            out[f"{c}_share"] = np.where(out[c] > 0, out[f"{c}_within"] / out[c], np.nan)
    order = ["tier", "minutes", "scope", "area", "district", "n_units", "n_units_within"]
    for c in counts:
        order += [c, f"{c}_within", f"{c}_share"]
    out["n_units"] = out["n_units"].astype(int)
    out["n_units_within"] = out["n_units_within"].astype(int)
    return out[order]


# --------------------------------------------------------------------------- blind spots
def blind_spots(
    population_access: Any,
    *,
    circle_min: float = 15.0,
    eps_m: float = 300.0,
    min_pop_60plus: float = 1.0,
    time_column: str = "time_min_any",
) -> Any:
    """Gap areas: older residents outside every circle, grouped with DBSCAN.

    Units whose ``time_column`` exceeds ``circle_min`` (or is NaN,
    unreachable) and that house older residents are clustered with
    scikit-learn's DBSCAN on the gaps between their shapes (``eps_m`` metres;
    touching compounds are 0 m apart; sample weights = ``pop_60plus``, so a
    core needs ``min_pop_60plus`` older residents, rounded up, within
    ``eps_m``).  Units DBSCAN leaves as noise become
    gap areas of their own: no uncovered resident is dropped.

    Returns
    -------
    GeoDataFrame
        One row per gap area, largest ``pop_60plus`` first: ``gap_id`` (1..),
        ``n_units``, ``population``, ``pop_60plus``, ``time_min_nearest``
        (best unit's time, NaN if none reachable), ``n_unreachable``,
        ``unit_ids`` and ``township`` (most common) when known.  Geometry:
        union of the unit polygons (points: their convex hull buffered by
        ``eps_m / 2``).
    """
    import geopandas as gpd
    from sklearn.cluster import DBSCAN

    pa = population_access
    weight_col = "pop_60plus" if "pop_60plus" in pa.columns else "population"
    cols = ["gap_id", "n_units", "population", "pop_60plus", "township", "time_min_nearest",
            "n_unreachable", "unit_ids"]
    time = pa[time_column].to_numpy(dtype=float)
    w = pd.to_numeric(pa[weight_col], errors="coerce").fillna(0).to_numpy(float) \
        if weight_col in pa.columns else np.ones(len(pa))
    gap = ~(time <= circle_min) & (w > 0)
    if not gap.any():
        return gpd.GeoDataFrame({c: [] for c in cols}, geometry=[], crs=pa.crs)
    sub = pa.loc[gap].copy()
    _, ids = point_geometries(sub, what="population units")
    shape = np.asarray(sub.geometry.values, dtype=object)
    # distance between units = the gap between their shapes (0 for touching compounds),
    # as a sparse radius graph from an STRtree, for DBSCAN's precomputed metric
    i, j = shapely.STRtree(shape).query(shape, predicate="dwithin", distance=eps_m)
    dist = shapely.distance(shape[i], shape[j]) + 1e-9  # keep touching pairs stored
    graph = sp.csr_matrix((dist, (i, j)), shape=(len(shape), len(shape)))
    labels = DBSCAN(eps=eps_m + 1e-6, min_samples=max(1, int(np.ceil(min_pop_60plus))),
                    metric="precomputed").fit(graph, sample_weight=w[gap]).labels_
    noise = labels < 0
    labels[noise] = labels.max() + 1 + np.arange(noise.sum())
    sub["_gap"] = labels
    sub["_w"] = w[gap]
    sub["_id"] = ids
    sub["_unreach"] = ~np.isfinite(time[gap])
    is_pt = shapely.get_type_id(shape) == 0
    agg = {"unit_ids": ("_id", lambda s: ",".join(map(str, s))),
           "n_units": ("_w", "size"),
           "_weight": ("_w", "sum"),
           "time_min_nearest": (time_column, "min"),
           "n_unreachable": ("_unreach", "sum")}
    for c in ("population", "pop_60plus"):
        if c in sub.columns:
            agg[c] = (c, lambda s: pd.to_numeric(s, errors="coerce").sum())
    if "township" in sub.columns:
        agg["township"] = ("township", lambda s: s.mode().iloc[0] if s.notna().any() else None)
    table = sub.groupby("_gap").agg(**agg)
    geom = []
    for lab in table.index:
        m = labels == lab
        g = shape[m]
        if is_pt[m].all():
            geom.append(shapely.buffer(shapely.convex_hull(shapely.multipoints(g)), eps_m / 2))
        else:
            geom.append(shapely.union_all(np.where(is_pt[m], shapely.buffer(g, eps_m / 2), g)))
    out = gpd.GeoDataFrame(table.reset_index(drop=True), geometry=geom, crs=pa.crs)
    out = out.sort_values("_weight", ascending=False, kind="stable").reset_index(drop=True)
    out = out.drop(columns="_weight")
    out.insert(0, "gap_id", np.arange(1, len(out) + 1))
    keep = ["gap_id", "n_units"] + [c for c in ("population", "pop_60plus", "township")
                                     if c in out.columns]
    out = out[keep + ["time_min_nearest", "n_unreachable", "unit_ids", "geometry"]]
    out["n_unreachable"] = out["n_unreachable"].astype(int)
    return out


# --------------------------------------------------------------------------- service areas
def _edge_vertices(net: Any):
    """Edge vertices with their normalised position, for vectorised substrings (cached)."""

    def build():
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

    return _cache(net, "edge_vertices", build)


def _substrings(net: Any, e: np.ndarray, s: np.ndarray, t: np.ndarray) -> np.ndarray:
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

    def at(k, f):
        k = np.clip(k, first, last)
        den = norm[k + 1] - norm[k]
        with np.errstate(invalid="ignore", divide="ignore"):
            w = np.clip(np.where(den > 0, (f - norm[k]) / den, 0.0), 0.0, 1.0)
        return xy[k] + w[:, None] * (xy[k + 1] - xy[k])

    p0, p1 = at(lo - 1, s), at(hi - 1, t)
    n_in = hi - lo
    size = n_in + 2
    start = np.concatenate([[0], np.cumsum(size)[:-1]])
    out = np.empty((int(size.sum()), 2))
    out[start] = p0
    out[start + size - 1] = p1
    if n_in.sum():
        within = run_offsets(n_in)
        out[np.repeat(start + 1, n_in) + within] = xy[np.repeat(lo, n_in) + within]
    return shapely.linestrings(out, indices=np.repeat(np.arange(len(e)), size))


def _node_edges(net: Any) -> tuple[np.ndarray, np.ndarray]:
    """Node -> incident edges as CSR (``indptr``, ``edge``); a loop is listed once (cached)."""

    def build():
        eu, ev = net.edge_u, net.edge_v
        ids = np.arange(net.n_edges, dtype=np.int64)
        other = eu != ev
        nodes = np.concatenate([eu, ev[other]])
        edges = np.concatenate([ids, ids[other]])
        order = np.argsort(nodes, kind="stable")
        indptr = np.zeros(net.n_nodes + 1, np.int64)
        np.cumsum(np.bincount(nodes, minlength=net.n_nodes), out=indptr[1:])
        return indptr, edges[order]

    return _cache(net, "node_edges", build)


def _reached_edges(net: Any, d: np.ndarray, limit: float, nodes: np.ndarray | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
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

    def at(g):
        if nodes is None:
            return d[rr, g]
        pos = np.minimum(np.searchsorted(nodes, g), m - 1)
        return np.where(nodes[pos] == g, d[rr, pos], np.inf)

    du, dv = at(net.edge_u[ee]), at(net.edge_v[ee])
    # an edge with both ends reached is listed at both: keep it at its u end only
    keep = (nn == net.edge_u[ee]) | ~(du <= limit)
    return rr[keep], ee[keep], du[keep], dv[keep]


def _reach_m_per_s(net: Any) -> float:
    """An upper bound of the distance covered per network second (inf when none exists)."""

    def build():
        t, length = net.edge_time_s, net.edge_length_m
        if (length[t <= 0] > 0).any():
            return np.inf
        ok = t > 0
        return float(np.max(length[ok] / t[ok], initial=0.0)) * (1 + 1e-9)

    return _cache(net, "reach_m_per_s", build)


def _nodes_near(net: Any, x0: float, x1: float, y0: float, y1: float) -> np.ndarray:
    """Sorted ids of the nodes in the box (through a cached x-order)."""
    order, xs = _cache(net, "nodes_by_x", lambda: (
        lambda o: (o, net.node_x[o]))(np.argsort(net.node_x, kind="stable")))
    cand = order[np.searchsorted(xs, x0, "left"):np.searchsorted(xs, x1, "right")]
    y = net.node_y[cand]
    return np.sort(cand[(y >= y0) & (y <= y1)])


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

    def spread(v):
        v = v.astype(np.uint64) & np.uint64(0xFFFF)
        for shift, mask in ((8, 0x00FF00FF), (4, 0x0F0F0F0F), (2, 0x33333333), (1, 0x55555555)):
            v = (v | (v << np.uint64(shift))) & np.uint64(mask)
        return v

    ix = np.floor((x - x.min()) / cell)
    iy = np.floor((y - y.min()) / cell)
    code = spread(np.minimum(ix, 65535)) | (spread(np.minimum(iy, 65535)) << np.uint64(1))
    return np.argsort(code, kind="stable")


def service_areas(
    net: Any,
    facilities: Snapped,
    *,
    minutes: Sequence[float] = (5.0, 10.0, 15.0),
    speed_mps: float | None = None,
    buffer_m: float = 25.0,
    tiers: Sequence[str] | None = None,
    quad_segs: int = 4,
    workers: int | None = None,
) -> Any:
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
        Snapped facilities (`planner._snap.snap_points`).
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
        Threads that build polygons at once (GEOS runs without Python's
        lock); ``None`` = one per CPU core, at most 4.  Use 1 inside a
        process pool that already fills the cores (a Dask batch).

    Returns
    -------
    GeoDataFrame
        One row per facility and threshold: ``facility_id``, ``tier``,
        ``minutes``, geometry (network CRS).

    Notes
    -----
    One limited csgraph Dijkstra for a memory-bounded chunk of facilities;
    only the edges at the nodes each facility reaches (through a cached
    node -> edge index) are looked at, never the whole network per
    facility.  The polygon is then the exact set of points within
    ``buffer_m`` of the reached streets, built in two parts
    (`planner._faces`): city blocks whose whole boundary is reached are
    taken whole, with their eroded cores (``erode(block, buffer_m)``) as
    holes, and only the streets on the rim (partial edges, edges next to a
    block not taken, the own edge and the snap walk) are buffered, those
    that run on from one another as one line, and unioned.  Up to the
    discretisation of the round parts (``quad_segs``), this equals the union
    of one buffered band per reached street piece.  The blocks are found
    only when the polygons are expected to cover a good share of the
    network (or are already known); chunks of nearby facilities route on
    the part of the network within reach of them, in ``workers`` threads.
    """
    import geopandas as gpd

    from planner._faces import planar_faces

    minutes = sorted(float(m) for m in minutes)
    k, n_lim = len(facilities), len(minutes)
    factor = 1.0 if speed_mps is None else float(speed_mps) / net.speed_mps
    limits = np.array(minutes) * 60.0 * factor  # thresholds in network seconds
    polys = np.full(k * n_lim, None, dtype=object)
    if k:
        lines = edge_geometries(net)
        _node_edges(net)
        _edge_vertices(net)
        a, virt = _virtual_graph(net, facilities)
        n_jobs = _workers(workers, k)
        step = max(1, int(_MEMORY_BYTES // (8 * a.shape[0] * n_jobs)))
        # nothing farther than this from a facility's spot is reached in time: each
        # chunk of nearby facilities runs on the part of the network around them
        reach = float(limits[-1]) * _reach_m_per_s(net)
        order = _spatial_order(facilities.x, facilities.y, reach)
        whole = not np.isfinite(reach) or k <= step

        def route(ids: np.ndarray):
            if whole:
                nodes = None
                sub, src = a, virt[ids]
            else:
                fx, fy = facilities.x[ids], facilities.y[ids]
                nodes = _nodes_near(net, fx.min() - reach, fx.max() + reach,
                                    fy.min() - reach, fy.max() + reach)
                keep = np.concatenate([nodes, np.sort(virt[ids])])
                sub = _subgraph(a, keep)
                src = np.searchsorted(keep, virt[ids])
            d = dijkstra(sub, directed=True, indices=src, limit=limits[-1])
            return _reached_edges(net, d, limits[-1], nodes)

        def build(ids: np.ndarray, routed) -> None:
            rr, ee, du, dv = routed
            pieces = _chunk_pieces(net, facilities, ids, rr, ee, du, dv,
                                   limits, lines, buffer_m, quad_segs, faces)
            local = _assemble(net, faces, pieces, ids.size * n_lim, buffer_m, quad_segs)
            polys[(ids[:, None] * n_lim + np.arange(n_lim)).ravel()] = local

        def chunk(c0: int) -> None:
            ids = order[c0:c0 + step]
            build(ids, route(ids))

        # the blocks pay off once the polygons cover a good part of the network
        # (finding them costs about as much as banding a tenth of its edges)
        ids0 = order[:step]
        routed0 = route(ids0)
        reached = routed0[0].size * k / ids0.size
        faces = (planar_faces(net) if _cached(net, "planar_faces") is not None
                 or reached >= _BLOCKS_MIN_SHARE * net.n_edges else None)
        build(ids0, routed0)
        del routed0

        starts = range(step, k, step)
        if n_jobs == 1 or len(starts) <= 1:
            for c0 in starts:
                chunk(c0)
        else:
            # GEOS and csgraph release the GIL: threads share the network and its caches
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(n_jobs) as pool:
                for f in [pool.submit(chunk, c0) for c0 in starts]:
                    f.result()
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


def _workers(workers: int | None, n_facilities: int) -> int:
    if workers is None:
        import os

        workers = min(4, os.cpu_count() or 1)
    if int(workers) < 1:
        raise ValueError(f"workers must be at least 1, got {workers!r}.")
    return max(1, min(int(workers), n_facilities))


def _core_faces(faces, g: np.ndarray, e: np.ndarray, not_taken: np.ndarray | None
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

    def taken(x):
        i = np.minimum(np.searchsorted(core, x), core.size - 1)
        return core[i] == x

    return core, taken(left) & taken(right)


def _chunk_pieces(net, facilities, own_all, rr, ee, du, dv, limits, lines, buffer_m,
                  quad_segs, faces):
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
    walkers = own_all[walk]
    px, py = facilities.point_x[walkers], facilities.point_y[walkers]
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
        if walkers.size:
            frac = np.clip(lim * net.speed_mps / facilities.dist_m[walkers], 0, 1)
            qx = px + frac * (facilities.x[walkers] - px)
            qy = py + frac * (facilities.y[walkers] - py)
            conn = shapely.linestrings(np.stack([np.c_[px, py], np.c_[qx, qy]], 1))
            groups.append(rows[walk] * n_lim + j)
            pieces.append(conn)
    fe = np.concatenate(full_edges)
    if fe.size:
        groups.append(np.concatenate(full_groups))
        pieces.append(lines[fe])
    return groups, pieces, np.sort(np.concatenate(cores))


def _assemble(net, faces, pieces, n_groups: int, buffer_m: float,
              quad_segs: int) -> np.ndarray:
    """Polygons of groups ``0 .. n_groups - 1``: taken blocks (one coverage
    union) and the buffered rim pieces unioned, then the blocks' eroded cores
    punched as holes."""
    from planner._faces import eroded

    groups, lines, core = pieces
    polys = np.full(n_groups, None, dtype=object)
    n_f = faces.n_faces if faces is not None else 1
    cg, cf = core // n_f, core % n_f  # sorted by group
    cbounds = np.searchsorted(cg, np.arange(n_groups + 1))
    holes = (eroded(net, faces, cf, buffer_m, quad_segs) if faces is not None
             else np.zeros(0, object))
    if groups:
        gg = np.concatenate(groups)
        line = np.concatenate(lines)
        order = np.argsort(gg, kind="stable")
        gg, line = gg[order], line[order]
    else:
        gg, line = np.zeros(0, np.int64), np.zeros(0, object)
    bounds = np.searchsorted(gg, np.arange(n_groups + 1))
    for i in range(n_groups):
        parts = line[bounds[i]:bounds[i + 1]]
        blocks = slice(cbounds[i], cbounds[i + 1])
        if parts.size:
            # streets that run on from one another are buffered as one line (fewer,
            # longer bands for the union; the round joins are the round caps' union)
            parts = shapely.buffer(shapely.get_parts(shapely.line_merge(
                shapely.multilinestrings(parts))), buffer_m, quad_segs=quad_segs)
        if blocks.stop > blocks.start:
            parts = np.append(parts, _blocks_union(faces.polygon[cf[blocks]]))
        if parts.size:
            poly = shapely.union_all(parts)
            h = holes[blocks]
            h = h[h != None]  # noqa: E711  (object array: elementwise)
            polys[i] = _punch(poly, h) if h.size else poly
    return polys


def _blocks_union(blocks: np.ndarray) -> Any:
    """The union of blocks that share their edges exactly (a coverage: no overlay needed)."""
    try:
        return shapely.coverage_union_all(blocks)
    except shapely.errors.GEOSException:  # pragma: no cover - a safety net, never seen
        return shapely.union_all(blocks)


def _punch(poly: Any, holes: np.ndarray) -> Any:
    """``poly`` with the polygons ``holes`` (each well inside it) as extra interior rings.

    The eroded block cores lie at least ``buffer_m`` inside the blocks, which
    lie inside ``poly`` with a ``buffer_m`` margin, so no overlay is needed:
    each ring goes to the part of ``poly`` that contains it.
    """
    rings = shapely.get_exterior_ring(shapely.get_parts(holes))
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


# --------------------------------------------------------------------------- 2SFCA
def _decay(seconds: np.ndarray, catchment_s: float, decay: str) -> np.ndarray:
    if decay == "none":
        return np.ones_like(seconds)
    # Dai (2010) Gaussian: 1 at distance 0, 0 at the catchment edge
    e = np.exp(-0.5)
    return (np.exp(-0.5 * (seconds / catchment_s) ** 2) - e) / (1.0 - e)


def fca_scores(
    cost: sp.csr_array,
    demand: np.ndarray,
    supply: np.ndarray,
    *,
    catchment_s: float,
    decay: Literal["none", "gaussian"] = "gaussian",
) -> tuple[np.ndarray, np.ndarray]:
    """Two-step floating catchment area (2SFCA / enhanced 2SFCA) scores.

    Step 1: each facility's supply-to-demand ratio
    ``R_j = S_j / sum_i W(d_ij) D_i`` over demand within the catchment;
    step 2: each demand unit's accessibility ``A_i = sum_j W(d_ij) R_j``.
    ``W`` is 1 (classic 2SFCA, ``decay="none"``) or Dai's (2010) Gaussian
    ``(exp(-d²/2d0²) - exp(-1/2)) / (1 - exp(-1/2))`` (E2SFCA).

    Parameters
    ----------
    cost
        Sparse seconds, shape ``(n_demand, n_supply)`` (`cost_matrix`; stored
        entries = reachable pairs, explicit zeros included).
    demand, supply
        Demand per unit (e.g. ``pop_60plus``) and supply per facility (beds,
        floor area m²).
    catchment_s
        Catchment, seconds; entries above it are ignored.

    Returns
    -------
    accessibility, ratio
        Supply per demand person for each unit, and ``R_j`` per facility
        (NaN for a facility with no demand in reach).
    """
    c = sp.coo_array(cost)
    inside = c.data <= catchment_s
    r, j, d = c.row[inside], c.col[inside], c.data[inside]
    w = _decay(d, catchment_s, decay)
    demand = np.asarray(demand, float)
    supply = np.asarray(supply, float)
    load = np.bincount(j, weights=w * demand[r], minlength=cost.shape[1])
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(load > 0, supply / load, np.nan)
    acc = np.bincount(r, weights=w * np.nan_to_num(ratio[j]), minlength=cost.shape[0])
    return acc, ratio


def fca(
    net: Any,
    population: Any,
    facilities: Any,
    *,
    supply: str = "beds",
    demand: str = "pop_60plus",
    catchment_min: float = 15.0,
    decay: Literal["none", "gaussian"] = "gaussian",
    snap_population: Snapped | None = None,
    snap_facilities: Snapped | None = None,
    max_snap_m: float = 300.0,
) -> pd.DataFrame:
    """Capacity-aware accessibility per population unit (2SFCA / E2SFCA).

    Parameters
    ----------
    net
        The `WalkNetwork`.
    population, facilities
        Layers with the ``demand`` and ``supply`` columns.
    supply
        Facility column: ``beds``, ``nursing_beds`` or ``floor_area_m2``.
    demand
        Population column, usually ``pop_60plus``.
    catchment_min
        Catchment walking time, minutes.
    decay
        ``"gaussian"`` (E2SFCA) or ``"none"`` (2SFCA).

    Returns
    -------
    DataFrame
        Per unit: ``id``, ``name``/``township``/``district`` when present,
        ``demand``, ``accessibility`` (supply per demand person),
        ``accessibility_per_1000`` and ``n_facilities`` within the catchment.
    """
    for layer, col, what in ((facilities, supply, "facilities"), (population, demand, "population")):
        if col not in layer.columns:
            raise LayerError(
                f"The {what} layer has no `{col}` column needed for 2SFCA (columns: "
                f"{list(layer.columns)}). Add it or set `access.fca."
                f"{'supply' if what == 'facilities' else 'demand'}` in the scenario."
            )
    s = pd.to_numeric(facilities[supply], errors="coerce")
    if s.isna().any():
        bad = facilities.loc[s.isna(), "id"] if "id" in facilities else s.index[s.isna()]
        warnings.warn(
            f"{int(s.isna().sum())} facilities have no `{supply}` value and count as 0 supply "
            f"in 2SFCA: {', '.join(map(str, list(bad)[:20]))}.",
            PlannerWarning, stacklevel=2,
        )
    if snap_population is None:
        snap_population = snap_units(net, population, max_snap_m=max_snap_m)
    if snap_facilities is None:
        snap_facilities = snap_points(net, facilities, max_snap_m=max_snap_m, what="facilities")
    catchment_s = float(catchment_min) * 60.0
    cost = cost_matrix(net, snap_population, snap_facilities, cutoff_s=catchment_s)
    dem = pd.to_numeric(population[demand], errors="coerce").fillna(0).to_numpy(float)
    acc, _ = fca_scores(cost, dem, s.fillna(0).to_numpy(float), catchment_s=catchment_s,
                        decay=decay)
    keep = [c for c in ("id", "name", "township", "district") if c in population.columns]
    out = pd.DataFrame(population[keep]).reset_index(drop=True)
    out["demand"] = dem
    out["accessibility"] = acc
    out["accessibility_per_1000"] = acc * 1000.0
    out["n_facilities"] = np.diff(cost.indptr)
    return out


# --------------------------------------------------------------------------- the step
def run_step(result: Any) -> str | None:
    """The access step of `planner.scenario.run`.

    Snaps population (from compound gates where a ``gates`` layer exists)
    and facilities, and stores ``population_access``, ``blind_spots`` and
    ``service_areas`` (layers), ``coverage`` and ``fca`` (tables), and the
    ``snap_population`` / ``snap_facilities`` artifacts.
    """
    from planner._settings import AccessSettings

    net = result.artifacts.get("network")
    if net is None:
        return "no walk network (the network step did not build one)"
    facilities = result.layers.get("facilities")
    if facilities is None or len(facilities) == 0:
        return "no facilities layer"
    population = result.layers.get("population")
    if population is None or len(population) == 0:
        return "no population layer"
    settings = result.scenario.access or AccessSettings()
    nets = result.scenario.network
    max_snap_m = nets.max_snap_m if nets is not None else 300.0
    en = result.lang == "en"
    snap_pop = snap_units(net, population, gates=result.layers.get("gates"),
                          max_snap_m=max_snap_m, warn=False)
    snap_fac = snap_points(net, facilities, max_snap_m=max_snap_m, warn=False,
                           what="facilities")
    for s, what in ((snap_pop, "population units"), (snap_fac, "facilities")):
        msg = s.far_message(what)
        if msg:
            result.warn(msg)
    result.artifacts["snap_population"] = snap_pop
    result.artifacts["snap_facilities"] = snap_fac
    pa = population_access(
        net, population, facilities, thresholds_min=settings.thresholds_min,
        cutoff_min=settings.cutoff_min, snap_population=snap_pop, snap_facilities=snap_fac,
    )
    lost = pa["time_min_any"].isna().to_numpy()
    if lost.any():
        ids = pa["id"] if "id" in pa.columns else pa.index
        result.warn(
            f"{int(lost.sum())} population units reach no facility within "
            f"{settings.cutoff_min:g} min (another network component or too far): "
            f"{', '.join(map(str, list(ids[lost])[:20]))}. They count as outside every circle."
        )
    result.layers["population_access"] = pa
    result.tables["coverage"] = coverage_table(
        pa, thresholds_min=settings.thresholds_min, lang="en" if en else "zh")
    result.layers["blind_spots"] = blind_spots(
        pa, circle_min=settings.circle_min, eps_m=settings.blind_spot_eps_m)
    if settings.service_areas:
        result.layers["service_areas"] = service_areas(
            net, snap_fac, minutes=settings.thresholds_min,
            buffer_m=settings.service_area_buffer_m, tiers=_tier_values(facilities))
    if settings.fca is not None:
        f = settings.fca
        result.tables["fca"] = fca(
            net, population, facilities, supply=f.supply, demand=f.demand,
            catchment_min=f.catchment_min, decay=f.decay, snap_population=snap_pop,
            snap_facilities=snap_fac)
    return None
