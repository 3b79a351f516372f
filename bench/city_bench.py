"""City-scale benchmark: cost matrix, p-median, MCLP and LSCP on a generated megacity.

The city (`bench/city_gen.py`, seed 0): a grid-like 1,000,000-node walk
network (50 m blocks, missing streets, parks, a river with bridges every
1 km, diagonal avenues), 100,000 demand units with older residents,
10,000 candidate sites and 200 existing facilities (fixed open); walking
at 1.0 m/s.

Stages, each timed with its peak memory (`bench/_peak.py`: increase of the
process's RSS over the stage):

1. cost matrix: snap units and sites, walking seconds under a 30-minute
   cut-off as a sparse matrix (`planner.access.cost_matrix`); peer: bare
   ``scipy.sparse.csgraph.dijkstra`` on the whole network (one dense row per
   source, the usual route) on a sample of sources, checked equal and
   extrapolated;
2. p-median with p = 10, 100, 500 new sites, existing facilities fixed
   (`planner.locate.PMedian`, ``fixed=``): exact (proven optimal or the proven
   gap), and the heuristic alone (time, gap to the exact run's bound);
3. MCLP (p = 100, 15 minutes) and LSCP (15 minutes) over 1,000,000 demand
   points on the streets (addresses) x the 10,000 sites: the presolve's
   savings (rows merged, rows and sites dropped), exact and heuristic;
4. peers: spopt (PuLP + HiGHS, one thread) on a window of the city it can
   hold (dense matrices): p-median and MCLP, ours on the same matrices;
5. the access step on the 1,000,000-node grid with 2,000 facilities, timed
   as ``bench/access_bench.py --big-only`` does (its ``big_run``).

Usage::

    python bench/city_bench.py            # the city above (about 20-30 minutes)
    python bench/city_bench.py --quick    # 100,000 nodes, 10,000 units, 1,000 candidates,
                                          # 100,000 demand points, exact solves limited
                                          # to 40 s (p-median) and 20 s (MCLP, LSCP)
                                          # (< 5 minutes)

Last line: ``RESULT city matrix_s=<s> pmedian_p100_s=<s> pmedian_p100_gap_pct=<g> mclp_s=<s>
access_1m_s=<s> peak_gb=<g>`` (``peak_gb``: the process's peak RSS over the
whole run, GB).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _peak import PeakRSS  # noqa: E402
from city_gen import make_city, street_points  # noqa: E402

from planner._errors import PlannerWarning  # noqa: E402
from planner.access import cost_matrix, snap_points  # noqa: E402
from planner.locate import LSCP, MCLP, PMedian  # noqa: E402

CUTOFF_S = 1800.0  # 30 minutes
COVER_S = 900.0  # the 15-minute circle
MCLP_P = 100


def say(text: str = "") -> None:
    print(text, flush=True)


def stage(fn, *args, **kwargs):
    """(seconds, peak RSS increase MB, result of ``fn(*args, **kwargs)``)."""
    with PeakRSS() as m:
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        secs = time.perf_counter() - t0
    return secs, m.peak_mb, out


def process_peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


# ----------------------------------------------------------------------------- 1. matrix
def matrix_peer(net, su, sc, M, n_sample: int, rng) -> float:
    """Bare whole-network csgraph Dijkstra for a sample of sites: seconds per site; asserts
    the sample's columns equal ours."""
    from scipy.sparse.csgraph import dijkstra

    from planner.access.routing import _base_csr

    indptr, indices, data = _base_csr(net)
    g = sp.csr_matrix((data, indices, indptr), shape=(net.n_nodes, net.n_nodes))
    pick = rng.choice(len(sc), n_sample, replace=False)
    t0 = time.perf_counter()
    worst = 0.0
    for j in pick:
        e = int(sc.edge[j])
        u, v = int(net.edge_u[e]), int(net.edge_v[e])
        te = float(net.edge_time_s[e])
        s0 = float(sc.dist_m[j]) / net.speed_mps
        d = dijkstra(g, directed=False, indices=[u, v], limit=CUTOFF_S)
        du = d[0] + sc.fraction[j] * te + s0
        dv = d[1] + (1 - sc.fraction[j]) * te + s0
        node = np.minimum(du, dv)
        te_u = net.edge_time_s[su.edge]
        t = np.minimum(node[net.edge_u[su.edge]] + su.fraction * te_u,
                       node[net.edge_v[su.edge]] + (1 - su.fraction) * te_u)
        same = su.edge == e
        t[same] = np.minimum(t[same], np.abs(su.fraction[same] - sc.fraction[j]) * te_u[same]
                             + s0)
        t = t + su.dist_m / net.speed_mps
        t[t > CUTOFF_S] = np.inf
        col = M[:, [j]].toarray().ravel()
        stored = np.zeros(M.shape[0], bool)
        c = sp.csc_array(M[:, [j]])
        stored[c.indices] = True
        fin = np.isfinite(t)
        assert np.array_equal(fin, stored), "matrix peer disagrees on reachable pairs"
        worst = max(worst, float(np.abs(col[fin] - t[fin]).max(initial=0.0)))
    secs = (time.perf_counter() - t0) / n_sample
    say(f"  peer (whole-network csgraph Dijkstra, {n_sample} sites): {secs * 1e3:.1f} ms/site, "
        f"same pairs, max |diff| {worst:.2e} s")
    return secs


# ----------------------------------------------------------------------------- 2. p-median
def penalized(model, res) -> float:
    """The objective the bound refers to: rows reachable by some candidate but by no open
    site pay the model's big-M (as in `LocateResult.bound`)."""
    cd = model.cd
    mask = np.zeros(cd.m, bool)
    mask[res.sites] = True
    mask[res.fixed] = True
    nowhere = ~cd.reachable_any()
    return cd.penalized(mask) - float(cd.weights[nowhere].sum()) * cd.penalty


def pmedian_runs(M, w, fixed, ps, time_limit):
    out = {}
    for p in ps:
        model = PMedian.from_cost_matrix(M, p=p, weights=w, fixed=fixed)
        secs, mb, r = stage(model.solve, method="exact", time_limit_s=time_limit)
        hm = PMedian.from_cost_matrix(M, p=p, weights=w, fixed=fixed)
        hs, hmb, h = stage(hm.solve, method="heuristic", time_limit_s=60.0)
        pen_r, pen_h = penalized(model, r), penalized(hm, h)
        best_bound = max(r.bound, h.bound)
        hgap = (pen_h - best_bound) / max(pen_h, 1e-12)
        note = "" if pen_r == r.objective else (
            f"  (with big-M for {r.unreachable.size:,} units no chosen site reaches: "
            f"{pen_r:.6g})")
        say(f"  p={p:<4} exact: {secs:8.1f} s  {r.status:<10} gap {r.gap:.4%}  "
            f"objective {r.objective:.6g}  bound {r.bound:.6g}{note}  peak +{mb:.0f} MB  "
            f"({r.method}{', ' + r.info['stopped'] if r.info.get('stopped') else ''})")
        say(f"  p={p:<4} heuristic alone: {hs:8.1f} s  objective {pen_h:.6g}  "
            f"gap to the best bound {hgap:.4%}  peak +{hmb:.0f} MB")
        out[p] = dict(s=secs, gap=r.gap, status=r.status, hs=hs, hgap=hgap, mb=mb)
    return out


# ----------------------------------------------------------------------------- 3. covering
def covering(city, sc, fixed, n_points, time_limit, rng):
    net = city.net
    secs, mb, (dp, dw) = stage(lambda: street_points(city, n_points, rng))
    say(f"  {n_points:,} demand points on the streets: {secs:.1f} s "
        f"({dw.sum():,.0f} older residents)")
    secs, mb, C = stage(lambda: cost_matrix(net, dp, sc, cutoff_s=COVER_S))
    say(f"  15-minute matrix {C.shape[0]:,} x {C.shape[1]:,}: {secs:.1f} s, {C.nnz:,} pairs, "
        f"peak +{mb:.0f} MB")
    res = {}
    for name, build in (
            ("MCLP", lambda: MCLP.from_cost_matrix(C, p=MCLP_P, coverage=COVER_S, weights=dw,
                                                   fixed=fixed)),
            ("LSCP", lambda: LSCP.from_cost_matrix(C, coverage=COVER_S, weights=dw,
                                                   fixed=fixed))):
        model = build()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PlannerWarning)
            secs, mb, r = stage(model.solve, method="exact", time_limit_s=time_limit)
            hs, _, h = stage(build().solve, method="heuristic", time_limit_s=60.0)
        st = r.info["presolve"]
        say(f"  {name}: presolve {st['rows']:,} rows -> {st['rows_by_fixed']:,} covered by "
            f"existing sites, {st['rows_uncoverable']:,} uncoverable; the rest merged to "
            f"{st['rows_merged']:,} distinct coverage sets; kept {st['rows_kept']:,} rows x "
            f"{st['cols_kept']:,} sites ({st['nnz_kept']:,} of {st['nnz']:,} entries, "
            f"{st['rounds']} rounds)")
        unit = "covered weight" if name == "MCLP" else "new sites"
        say(f"  {name} exact: {secs:.1f} s  {r.status}  {unit} {r.objective:,.6g}  bound "
            f"{r.bound:,.6g}  gap {r.gap:.4%}  peak +{mb:.0f} MB  ({r.method})")
        hgap = abs(h.objective - r.bound) / max(abs(h.objective), 1e-12)
        say(f"  {name} heuristic alone: {hs:.1f} s  {unit} {h.objective:,.6g}  gap to the exact "
            f"bound {hgap:.4%}")
        res[name] = dict(s=secs, status=r.status, gap=r.gap)
    return res


# ----------------------------------------------------------------------------- 4. peers
def window(xy, lo, hi):
    return np.flatnonzero((xy[:, 0] >= lo[0]) & (xy[:, 0] < hi[0]) & (xy[:, 1] >= lo[1])
                          & (xy[:, 1] < hi[1]))


def spopt_peers(city, M, w, fixed_mask, side_m, time_limit):
    import pulp
    from spopt.locate import MCLP as SpMCLP
    from spopt.locate import PMedian as SpPMedian

    cx, cy = city.centres[0, :2]
    lo, hi = (cx - side_m / 2, cy - side_m / 2), (cx + side_m / 2, cy + side_m / 2)
    rows = window(city.units_xy, lo, hi)
    sites_xy = np.r_[city.cand_xy, city.exist_xy]
    cols = window(sites_xy, lo, hi)
    sub = sp.csr_array(M[rows][:, cols])
    dense = sub.toarray()
    reach = np.zeros(dense.shape, bool)
    c = sub.tocoo()
    reach[c.row, c.col] = True
    big = 10.0 * float(sub.data.max()) + 1.0
    dense[~reach] = big
    ww = w[rows]
    fx = np.flatnonzero(fixed_mask[cols])
    say(f"  window {side_m / 1000:.0f} km x {side_m / 1000:.0f} km: {rows.size:,} units x "
        f"{cols.size:,} sites ({fx.size} existing), dense, unreachable = {big:.0f} s")
    for p in (5, 20):
        t0 = time.perf_counter()
        ours = PMedian.from_cost_matrix(dense, p=p, weights=ww, fixed=fx).solve(
            method="exact", time_limit_s=time_limit)
        t_ours = time.perf_counter() - t0
        t0 = time.perf_counter()
        m = SpPMedian.from_cost_matrix(dense, ww, p_facilities=p + fx.size,
                                       predefined_facilities_arr=fx)
        m.solve(pulp.HiGHS(msg=False, threads=1, timeLimit=time_limit))
        t_sp = time.perf_counter() - t0
        open_ = [j for j, v in enumerate(m.fac_vars) if v.value() and v.value() > 0.5]
        sp_obj = float(np.dot(ww, dense[:, open_].min(axis=1)))
        same = abs(sp_obj - ours.objective) <= 1e-6 * max(1.0, ours.objective)
        say(f"  p-median p={p}: ours {t_ours:.2f} s ({ours.status}, {ours.objective:.6g}); "
            f"spopt {t_sp:.2f} s ({pulp.LpStatus[m.problem.status]}, {sp_obj:.6g}); "
            f"spopt/ours = {t_sp / t_ours:.1f}x; {'same optimum' if same else 'DIFFERENT'}")
    cover_dense = np.where(reach, dense, big)
    t0 = time.perf_counter()
    ours = MCLP.from_cost_matrix(cover_dense, p=10, coverage=COVER_S, weights=ww,
                                 fixed=fx).solve(method="exact", time_limit_s=time_limit)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    m = SpMCLP.from_cost_matrix(cover_dense, ww, service_radius=COVER_S,
                                p_facilities=10 + fx.size, predefined_facilities_arr=fx)
    m.solve(pulp.HiGHS(msg=False, threads=1, timeLimit=time_limit))
    t_sp = time.perf_counter() - t0
    open_ = [j for j, v in enumerate(m.fac_vars) if v.value() and v.value() > 0.5]
    sp_cov = float(ww[(cover_dense[:, open_] <= COVER_S).any(axis=1)].sum())
    say(f"  MCLP p=10: ours {t_ours:.2f} s ({ours.status}, {ours.objective:.6g}); spopt "
        f"{t_sp:.2f} s ({pulp.LpStatus[m.problem.status]}, {sp_cov:.6g}); spopt/ours = "
        f"{t_sp / t_ours:.1f}x")


# ----------------------------------------------------------------------------- main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="100,000-node city, 10,000 units, 1,000 candidates (< 5 minutes)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--time-limit", type=float, default=None,
                    help="seconds per exact p-median solve (600; --quick: 40)")
    ap.add_argument("--cover-limit", type=float, default=None,
                    help="seconds per exact MCLP / LSCP solve (120; --quick: 20)")
    ap.add_argument("--no-access", action="store_true", help="skip the 1M-node access step")
    ap.add_argument("--no-spopt", action="store_true")
    ap.add_argument("--no-pmedian", action="store_true", help="skip the p-median runs")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore", PlannerWarning)
    q = args.quick
    if args.time_limit is None:
        args.time_limit = 40.0 if q else 600.0
    if args.cover_limit is None:
        args.cover_limit = 20.0 if q else 120.0
    n_nodes, n_units, n_cands, n_exist, n_points = (
        (100_000, 10_000, 1_000, 20, 100_000) if q else
        (1_000_000, 100_000, 10_000, 200, 1_000_000))
    rng = np.random.default_rng(args.seed)
    say(f"[city] {n_nodes:,} nodes, {n_units:,} units, {n_cands:,} candidates, {n_exist} "
        f"existing facilities, seed {args.seed}")
    secs, mb, city = stage(lambda: make_city(n_nodes, n_units, n_cands, n_exist,
                                             seed=args.seed))
    net = city.net
    say(f"  generated in {secs:.1f} s: {net}")

    say("\n[1] cost matrix (30-minute cut-off)")
    sites_xy = np.r_[city.cand_xy, city.exist_xy]
    fixed = np.zeros(len(sites_xy), bool)
    fixed[n_cands:] = True

    def snap_all():
        return snap_points(net, city.units_xy, warn=False), snap_points(net, sites_xy,
                                                                         warn=False)

    t_snap, mb_snap, (su, sc) = stage(snap_all)
    t_mat, mb_mat, M = stage(lambda: cost_matrix(net, su, sc, cutoff_s=CUTOFF_S))
    matrix_s = t_snap + t_mat
    csr_mb = (M.data.nbytes + M.indices.nbytes + M.indptr.nbytes) / 2**20
    say(f"  snap {len(su) + len(sc):,} points: {t_snap:.1f} s (peak +{mb_snap:.0f} MB)")
    say(f"  matrix {M.shape[0]:,} x {M.shape[1]:,}: {t_mat:.1f} s, {M.nnz:,} pairs "
        f"({M.nnz / M.shape[0]:.1f} per unit, CSR {csr_mb:.0f} MB), peak +{mb_mat:.0f} MB "
        f"(a dense float64 matrix: {M.shape[0] * M.shape[1] * 8 / 2**30:.1f} GiB)")
    say(f"  snap + matrix: {matrix_s:.1f} s (target < 30 s)")
    per_site = matrix_peer(net, su, sc, M, 20 if q else 50, rng)
    say(f"  peer extrapolated to {len(sc):,} sites: {per_site * len(sc):.1f} s; "
        f"peer/ours = {per_site * len(sc) / t_mat:.1f}x")

    say(f"\n[2] p-median, {n_exist} existing facilities fixed (limit {args.time_limit:.0f} s)")
    nan = dict(s=float("nan"), gap=float("nan"))
    pm = {100: nan} if args.no_pmedian else pmedian_runs(M, city.units_w, fixed, (10, 100, 500),
                                                         args.time_limit)

    say(f"\n[3] MCLP (p = {MCLP_P}) and LSCP, 15 minutes, {n_points:,} demand points")
    cov = covering(city, sc, fixed, n_points, args.cover_limit, np.random.default_rng(
        args.seed + 1))

    if not args.no_spopt:
        say("\n[4] peers: spopt on a window of the city (dense matrices)")
        spopt_peers(city, M, city.units_w, fixed, 4000.0 if q else 5000.0, 600.0)

    access_s = float("nan")
    if not args.no_access:
        say("\n[5] access step on the 1,000,000-node grid (bench/access_bench.py big_run)")
        import access_bench

        access_s = access_bench.big_run(np.random.default_rng(args.seed))["total"]

    peak = process_peak_gb()
    say(f"\nprocess peak RSS {peak:.2f} GB")
    p100 = pm[100]
    say(f"RESULT city matrix_s={matrix_s:.1f} pmedian_p100_s={p100['s']:.1f} "
        f"pmedian_p100_gap_pct={100 * p100['gap']:.3f} mclp_s={cov['MCLP']['s']:.1f} "
        f"access_1m_s={access_s:.1f} peak_gb={peak:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
