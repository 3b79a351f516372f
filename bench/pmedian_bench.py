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

Last line: ``RESULT pmedian optimal=<k>/20 total_time_ratio_vs_spopt=<x>``.
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
ORLIB = Path(os.environ.get("PLANNER_SHARED", ROOT.parent / "shared")) / "bench" / "orlib"


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
    if args.instance == "scale":
        cost, w, p = scale_instance(args.n, seed=0)
    else:
        cost, p = read_orlib(ORLIB / f"{args.instance}.txt")
        w = np.ones(cost.shape[0])
    t0 = time.perf_counter()
    if args.solver == "spopt":
        model = SpPMedian.from_cost_matrix(cost, w, p_facilities=p, name=args.instance)
        model.solve(pulp.HiGHS(msg=False, threads=1, timeLimit=args.time_limit))
        secs = time.perf_counter() - t0
        sites = [j for j, v in enumerate(model.fac_vars) if v.value() and v.value() > 0.5]
        obj = float(cost[:, sites].min(axis=1).sum())
        out = dict(objective=obj, status=model.problem.status and pulp.LpStatus[
            model.problem.status], gap=None, seconds=secs)
    else:
        model = PMedian.from_cost_matrix(cost, p=p, weights=w)
        r = model.solve(method=args.solver, time_limit=args.time_limit, seed=0, threads=1)
        secs = time.perf_counter() - t0
        out = dict(objective=r.objective, status=r.status, gap=r.gap, seconds=secs,
                   bound=r.bound)
    out.update(peak_mb=_peak_mb() - base, n=int(cost.shape[0]), m=int(cost.shape[1]), p=int(p))
    print("JSON" + json.dumps(out), flush=True)


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


def run_child(instance: str, solver: str, *, timeout: float, time_limit: float, n: int = 0):
    cmd = [sys.executable, __file__, "--child", "--instance", instance, "--solver", solver,
           "--time-limit", str(time_limit), "--n", str(n)]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"status": "timeout", "seconds": timeout, "objective": float("nan"),
                "peak_mb": float("nan")}
    for line in res.stdout.splitlines():
        if line.startswith("JSON"):
            return json.loads(line[4:])
    return {"status": "error: " + res.stderr.strip().splitlines()[-1] if res.stderr.strip()
            else "error", "seconds": float("nan"), "objective": float("nan"),
            "peak_mb": float("nan")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="pmed1-10 only")
    ap.add_argument("--scale", action="store_true", help="only the 5,000 x 5,000 scale run")
    ap.add_argument("--no-spopt", action="store_true", help="skip spopt")
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
    if not args.scale:
        orlib(args)
    if args.scale or not args.quick:
        scale(args)
    if not args.scale:
        print(RESULT_LINE[0], flush=True)


RESULT_LINE = [""]


def orlib(args) -> None:
    optima = {r["instance"]: r for r in csv.DictReader(open(ORLIB / "optima.csv"))}
    ks = range(1, 11) if args.quick else range(1, 21)
    print("memory: peak RSS of the solving child process minus its RSS after imports (MB)")
    hdr = (f"{'inst':7}{'n':>5}{'p':>5}{'optimum':>9} | {'exact':>8}{'status':>9}{'gap':>8}"
           f"{'s':>7}{'MB':>7} | {'heur':>8}{'dev%':>7}{'s':>7}{'MB':>7} | {'spopt':>8}"
           f"{'s':>8}{'MB':>8}{'ratio':>8}")
    print(hdr)
    n_opt = 0
    t_ours = t_sp = 0.0
    for k in ks:
        name = f"pmed{k}"
        opt = float(optima[name]["optimum"])
        ex = run_child(name, "exact", timeout=120, time_limit=60)
        he = run_child(name, "heuristic", timeout=60, time_limit=30)
        sp_ = ({"status": "skipped", "seconds": float("nan"), "objective": float("nan"),
                "peak_mb": float("nan")} if args.no_spopt else
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
          + (f" (timeouts counted as {args.spopt_timeout:.0f} s)" if not args.no_spopt else ""))
    RESULT_LINE[0] = (f"RESULT pmedian optimal={n_opt}/{total} "
                      f"total_time_ratio_vs_spopt={ratio:.1f}")


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
