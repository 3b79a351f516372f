"""p-median benchmark: this project's solvers against spopt on OR-Library pmed1-20.

Each (instance, solver) runs in its own child process, so that the reported
peak memory is the child's peak resident set size (RSS, from
``resource.getrusage``), HiGHS's C++ allocations included, and so that
spopt can be stopped at ``--spopt-timeout``.  ``peak_mb`` is the child's
peak RSS minus its RSS after imports (before reading the instance).
Times cover building the model from the cost matrix and solving it
(reading the file and the all-pairs shortest paths are excluded).
Every solver runs on one thread.

Usage::

    python bench/pmedian_bench.py            # pmed1-20 + the 5,000 x 5,000 scale run
    python bench/pmedian_bench.py --quick    # pmed1-10 only
    python bench/pmedian_bench.py --scale    # the scale run only
    python bench/pmedian_bench.py --xian     # the Xi'an planning-size run only
    python bench/pmedian_bench.py --no-spopt # pmed1-20 without spopt (no ratio)
    python bench/pmedian_bench.py --families # only the generated small-p families

Generated small-p families (``bench/pmedian_instances.py``, seed 0; exact
solver only, one thread, time limit 60 s): the OR-Library family (Beasley's
random graphs, n = 500-900, p = 5 and 10; target: each proven in under 5 s)
and floored-Euclidean instances of 1,000-2,000 points for p = 5 ... 500
(target: each proven in under 30 s).  ``--quick`` runs one instance of each.

Xi'an planning-size run (where ``../shared/data/xian`` exists): the real
road network (``xian_road.kml``), demand at the representative points of the
614 residential polygons weighted by a synthetic estimate of older residents
(1.5 residents per 100 m2 of residential land, 18 % aged 60+: an estimate
for the benchmark only), 2,000 candidate points sampled (seed 0) along the
network's edges, cost = walking seconds without a cut-off (a dense matrix;
pairs in different network components get 10x the largest time), p = 20.
Our exact solver and (unless ``--quick`` or ``--skip-spopt-xian``) spopt
solve the same dense matrix; building the matrix is not timed.

Last line: ``RESULT pmedian optimal=<k>/20 total_time_ratio_vs_spopt=<x>``, followed
(when the families ran) by ``pmed_total_s=<s> orlib_family_under5s=<k>/<n>
euclid_under30s=<k>/<n>``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PLANNER_SHARED", ROOT.parent / "shared"))
ORLIB = SHARED / "bench" / "orlib"
XIAN = SHARED / "data" / "xian"


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def child(args) -> None:
    """Run one solver on one instance and print a JSON line."""
    import numpy as np

    if args.solver == "spopt":
        import pulp
        from spopt.locate import PMedian as SpPMedian
    from planner.locate import PMedian, read_orlib

    base = _rss_mb()
    if args.instance.startswith(("or:", "eu:")):
        cost, p = family_instance(args.instance)
        w = np.ones(cost.shape[0])
        base = _rss_mb()
    elif args.instance == "scale":
        cost, w, p = scale_instance(args.n, seed=0)
    elif args.instance == "xian":
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cost, w, p = xian_instance()
        base = _rss_mb()
    else:
        cost, p = read_orlib(ORLIB / f"{args.instance}.txt")
        w = np.ones(cost.shape[0])
    t0 = time.perf_counter()
    if args.solver == "spopt":
        model = SpPMedian.from_cost_matrix(cost, w, p_facilities=p, name=args.instance)
        model.solve(pulp.HiGHS(msg=False, threads=1, timeLimit=args.time_limit))
        secs = time.perf_counter() - t0
        sites = [j for j, v in enumerate(model.fac_vars) if v.value() and v.value() > 0.5]
        obj = float(np.dot(w, cost[:, sites].min(axis=1)))
        out = dict(objective=obj, status=model.problem.status and pulp.LpStatus[
            model.problem.status], gap=None, seconds=secs)
    else:
        model = PMedian.from_cost_matrix(cost, p=p, weights=w)
        r = model.solve(method=args.solver, time_limit_s=args.time_limit, seed=0, threads=1)
        secs = time.perf_counter() - t0
        out = dict(objective=r.objective, status=r.status, gap=r.gap, seconds=secs,
                   bound=r.bound)
    out.update(peak_mb=_peak_mb() - base, n=int(cost.shape[0]), m=int(cost.shape[1]), p=int(p))
    print("JSON" + json.dumps(out), flush=True)


def family_instance(spec: str):
    """``or:<n>:<p>:<seed>`` or ``eu:<n>:<kind>:<p>:<seed>`` (see pmedian_instances.py)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from pmedian_instances import euclidean, orlib_like

    parts = spec.split(":")
    if parts[0] == "or":
        return orlib_like(int(parts[1]), int(parts[2]), int(parts[3]))
    return euclidean(int(parts[1]), parts[2], int(parts[4])), int(parts[3])


def scale_instance(n: int, *, seed: int = 0):
    """n demand points and n candidates in a 12 km square; walking seconds under 30 min.

    Times are straight-line metres x 1.3 (a typical network detour factor) at
    1.0 m/s; pairs over 1,800 s are not stored (the sparse cut-off form).
    """
    import numpy as np
    import scipy.sparse as sp
    from scipy.spatial import cKDTree

    rng = np.random.default_rng(seed)
    side = 12_000.0
    d = rng.uniform(0, side, (n, 2))
    c = rng.uniform(0, side, (n, 2))
    w = rng.integers(20, 400, n).astype(float)
    cutoff_m = 1800.0 / 1.3
    coo = cKDTree(d).sparse_distance_matrix(cKDTree(c), cutoff_m, output_type="coo_matrix")
    cost = sp.csr_array((np.round(coo.data * 1.3, 1), (coo.row, coo.col)), shape=(n, n))
    return cost, w, 100


def xian_instance(n_candidates: int = 2000, p: int = 20, *, seed: int = 0):
    """614 residential areas x 2,000 network points of central Xi'an; walking seconds."""
    import geopandas as gpd
    import numpy as np
    import shapely

    from planner import access, network
    from planner.access import snap_points
    from planner.access.snap import edge_geometries
    from planner.layers import read_layer

    roads = read_layer(XIAN / "xian_road.kml", kind="lines")
    net = network.from_lines(roads)
    res = gpd.read_file(XIAN / "xian_landuse_residential.gpkg").to_crs(net.crs)
    area = res.geometry.area.to_numpy()
    w = area * 0.015 * 0.18  # synthetic older-resident estimate (benchmark only)
    demand = snap_points(net, res.geometry.representative_point().to_numpy(), warn=False)
    rng = np.random.default_rng(seed)
    geoms = edge_geometries(net)
    lens = net.edge_length_m.astype(float)
    e = rng.choice(lens.size, n_candidates, replace=True, p=lens / lens.sum())
    pts = shapely.line_interpolate_point(geoms[e], rng.uniform(0, 1, n_candidates),
                                         normalized=True)
    cand = snap_points(net, np.c_[shapely.get_x(pts), shapely.get_y(pts)], warn=False)
    stored = access.cost_matrix(net, demand, cand, cutoff_s=np.inf)
    dense = np.full(stored.shape, np.inf)
    r = np.repeat(np.arange(stored.shape[0]), np.diff(stored.indptr))
    dense[r, stored.indices] = stored.data
    finite = np.isfinite(dense)
    dense[~finite] = 10.0 * dense[finite].max()
    return dense, w, p


def _no_result(status: str, seconds: float = float("nan")) -> dict:
    """A row for a run that gave no answer (timed out, failed or skipped)."""
    return {"status": status, "seconds": seconds, "objective": float("nan"),
            "peak_mb": float("nan")}


def run_child(instance: str, solver: str, *, timeout: float, time_limit: float, n: int = 0):
    cmd = [sys.executable, __file__, "--child", "--instance", instance, "--solver", solver,
           "--time-limit", str(time_limit), "--n", str(n)]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return _no_result("timeout", timeout)
    for line in res.stdout.splitlines():
        if line.startswith("JSON"):
            return json.loads(line[4:])
    return _no_result("error: " + res.stderr.strip().splitlines()[-1] if res.stderr.strip()
                      else "error")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="pmed1-10 only")
    ap.add_argument("--scale", action="store_true", help="only the 5,000 x 5,000 scale run")
    ap.add_argument("--xian", action="store_true", help="only the Xi'an planning-size run")
    ap.add_argument("--no-spopt", action="store_true", help="skip spopt (pmed and Xi'an)")
    ap.add_argument("--no-scale", action="store_true", help="skip the 5,000 x 5,000 scale run")
    ap.add_argument("--families", action="store_true",
                    help="only the generated small-p families (OR-Library-style, Euclidean)")
    ap.add_argument("--no-families", action="store_true", help="skip the generated families")
    ap.add_argument("--spopt-times-from", metavar="LOG",
                    help="with --no-spopt: take spopt's pmed times, objectives and memory from "
                         "the output of an earlier full run (LOG), for the ratio")
    ap.add_argument("--skip-spopt-xian", action="store_true", help="skip spopt on the Xi'an run")
    ap.add_argument("--spopt-timeout", type=float, default=600.0,
                    help="seconds before an spopt run is stopped (counted as that many)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--instance", help=argparse.SUPPRESS)
    ap.add_argument("--solver", help=argparse.SUPPRESS)
    ap.add_argument("--time-limit", type=float, default=300.0, help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, default=5000, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    only = args.scale or args.xian or args.families
    result_line = orlib(args) if not only else None
    fam = families(args) if (args.families or not (only or args.no_families)) else ""
    if args.xian or not (args.scale or args.quick or args.families):
        xian(args)
    if args.scale or not (args.quick or args.xian or args.no_scale or args.families):
        scale(args)
    if result_line is not None or fam:
        print(" ".join(x for x in (result_line or "RESULT pmedian", fam) if x), flush=True)


def orlib(args) -> str:
    """Run pmed1-20 (or 1-10), print a row each; returns the ``RESULT`` line."""
    optima = {r["instance"]: r for r in csv.DictReader(open(ORLIB / "optima.csv"))}
    ks = range(1, 11) if args.quick else range(1, 21)
    print("memory: peak RSS of the solving child process minus its RSS after imports (MB)")
    hdr = (f"{'inst':7}{'n':>5}{'p':>5}{'optimum':>9} | {'exact':>8}{'status':>9}{'gap':>8}"
           f"{'s':>7}{'MB':>7} | {'heur':>8}{'dev%':>7}{'s':>7}{'MB':>7} | {'spopt':>8}"
           f"{'s':>8}{'MB':>8}{'ratio':>8}")
    print(hdr)
    n_opt = 0
    t_ours = t_sp = 0.0
    earlier = _earlier_spopt(args.spopt_times_from) if args.spopt_times_from else {}
    for k in ks:
        name = f"pmed{k}"
        opt = float(optima[name]["optimum"])
        ex = run_child(name, "exact", timeout=120, time_limit=60)
        he = run_child(name, "heuristic", timeout=60, time_limit=30)
        sp_ = (earlier.get(name, _no_result("skipped")) if args.no_spopt else
               run_child(name, "spopt", timeout=args.spopt_timeout, time_limit=args.spopt_timeout))
        ok = ex["status"] == "optimal" and abs(ex["objective"] - opt) < 1e-6
        n_opt += ok
        t_ours += ex["seconds"]
        t_sp += sp_["seconds"]
        dev = 100 * (he["objective"] / opt - 1)
        ratio = sp_["seconds"] / ex["seconds"]
        print(f"{name:7}{int(optima[name]['n']):>5}{int(optima[name]['p']):>5}{opt:>9.0f} | "
              f"{ex['objective']:>8.0f}{ex['status']:>9}{(ex['gap'] or 0):>8.2%}"
              f"{ex['seconds']:>7.2f}{ex['peak_mb']:>7.0f} | {he['objective']:>8.0f}{dev:>7.3f}"
              f"{he['seconds']:>7.2f}{he['peak_mb']:>7.0f} | {sp_['objective']:>8.0f}"
              f"{sp_['seconds']:>8.2f}{sp_['peak_mb']:>8.0f}{ratio:>8.1f}"
              + ("" if sp_["status"] in ("Optimal", "skipped") else f"  spopt:{sp_['status']}"),
              flush=True)
    total = len(ks)
    ratio = t_sp / t_ours if t_ours > 0 else float("nan")
    print(f"total: exact {t_ours:.2f} s, spopt {t_sp:.2f} s"
          + (f" (timeouts counted as {args.spopt_timeout:.0f} s)" if not args.no_spopt else "")
          + (f" (spopt from an earlier run: {args.spopt_times_from})" if earlier else ""))
    return (f"RESULT pmedian optimal={n_opt}/{total} total_time_ratio_vs_spopt={ratio:.1f} "
            f"pmed_total_s={t_ours:.2f}")


def families(args) -> str:
    """The generated small-p families, exact solver only; returns the RESULT fields."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from pmedian_instances import EUCLID_FAMILY, EUCLID_P, ORLIB_FAMILY

    if args.quick:
        orl, euc = [(500, 10)], [(1000, "uniform", 50)]
    else:
        orl = ORLIB_FAMILY
        euc = [(n, kind, p) for n, kind in EUCLID_FAMILY for p in EUCLID_P]
    fields = []
    for title, specs, target in (
            ("OR-Library family (random graphs, shortest paths)",
             [f"or:{n}:{p}:0" for n, p in orl], 5.0),
            ("Euclidean family (floored distances)",
             [f"eu:{n}:{kind}:{p}:0" for n, kind, p in euc], 30.0)):
        print(f"{title}: exact solver, one thread, limit 60 s; target: proven in under "
              f"{target:.0f} s each")
        print(f"{'instance':26}{'status':>10}{'objective':>12}{'gap':>8}{'s':>8}{'MB':>7}")
        ok = 0
        tot = 0.0
        for spec in specs:
            r = run_child(spec, "exact", timeout=180, time_limit=60)
            good = r["status"] == "optimal" and r["seconds"] < target
            ok += good
            tot += r["seconds"]
            print(f"{spec:26}{r['status']:>10}{r['objective']:>12.0f}{(r.get('gap') or 0):>8.3%}"
                  f"{r['seconds']:>8.2f}{r['peak_mb']:>7.0f}" + ("" if good else "  (missed)"),
                  flush=True)
        print(f"  {ok}/{len(specs)} proven under {target:.0f} s; total {tot:.1f} s")
        fields.append(f"{'orlib_family_under5s' if target == 5.0 else 'euclid_under30s'}="
                      f"{ok}/{len(specs)}")
    return " ".join(fields)


def _earlier_spopt(path: str) -> dict:
    """spopt's columns (objective, seconds, MB) per pmed row of an earlier run's output."""
    out = {}
    for line in open(path):
        parts = line.split("|")
        if len(parts) == 4 and line.startswith("pmed"):
            f = parts[3].split()
            out[parts[0].split()[0]] = {"objective": float(f[0]), "seconds": float(f[1]),
                                        "peak_mb": float(f[2]), "status": "Optimal"}
    return out


def xian(args) -> None:
    if not (XIAN / "xian_road.kml").is_file():
        print(f"Xi'an run skipped: {XIAN} not found")
        return
    print("Xi'an run: 614 residential areas x 2,000 network candidates, walking seconds "
          "(dense, no cut-off), p=20, weights = synthetic older-resident estimate")
    ex = run_child("xian", "exact", timeout=900, time_limit=600)
    print(f"  exact: objective {ex['objective']:.1f}  status {ex['status']}  "
          f"gap {(ex.get('gap') or 0):.4%}  {ex['seconds']:.2f} s  peak {ex['peak_mb']:.0f} MB",
          flush=True)
    if args.quick or args.no_spopt or args.skip_spopt_xian:
        print("  spopt: skipped")
        return
    sp_ = run_child("xian", "spopt", timeout=args.spopt_timeout, time_limit=args.spopt_timeout)
    print(f"  spopt: objective {sp_['objective']:.1f}  status {sp_['status']}  "
          f"{sp_['seconds']:.2f} s  peak {sp_['peak_mb']:.0f} MB  "
          f"ratio {sp_['seconds'] / ex['seconds']:.1f}", flush=True)


def scale(args) -> None:
    n = args.n
    print(f"scale run: {n} demand x {n} candidates, 30-min cut-off (sparse), p=100")
    he = run_child("scale", "heuristic", timeout=900, time_limit=30, n=n)
    print(f"  heuristic: objective {he['objective']:.1f}  {he['seconds']:.1f} s  "
          f"peak {he['peak_mb']:.0f} MB", flush=True)
    ex = run_child("scale", "exact", timeout=900, time_limit=600, n=n)
    print(f"  exact: objective {ex['objective']:.1f}  status {ex['status']}  gap {ex['gap']:.4%}"
          f"  {ex['seconds']:.1f} s  peak {ex['peak_mb']:.0f} MB", flush=True)


if __name__ == "__main__":
    main()
