"""Exact p-median on HiGHS (``highspy`` directly): the radius formulation by rows.

Formulation.  For demand ``i`` with weight ``w_i`` and an open-site set ``y``,
its cost is ``w_i min_j d_ij``.  The radius (covering) formulation of Elloumi
(2010) and García, Labbé & Marín (2011) writes this cost with one variable per
distinct distance level; projecting those level variables out gives, for every
level ``D`` of row ``i``, the valid inequality (a Benders cut)

    theta_i >= w_i * (D - sum_{j: d_ij < D} (D - d_ij) * y_j)

and ``theta_i = max_D`` of the right-hand sides at every binary ``y``.  All cuts
together have the LP bound of the full radius formulation, but only a few per
row are ever tight, so they are generated lazily (García et al. observed that
a small subset suffices): the LP relaxation is solved in rounds, adding for
each row its most violated level (found in O(row length) from the prefix sums
of ``y`` along the row's sorted costs), until no cut is violated.  This is
the Benders decomposition of Duran-Mateluna, Ales & Elloumi (EJOR 2023): the
subproblem of each client is solved in closed form and the cut it yields at a
fractional point is the one above; their first phase (the LP relaxation by a
cutting-plane loop) is the root here, their second (the integer search) is
the tree below.  The first cuts are those tight at the heuristic's incumbent
and at the other local optima it visited.  The LP point is rounded (p largest
``y``) and polished by the interchange local search for a better incumbent;
reduced-cost fixing with the incumbent's value removes most columns
(re-separating after each fixing round).

Restriction: when fixing leaves at most ``_RESTRICT`` of the columns, the LP
is rebuilt on the free columns only (every solution better than the
incumbent uses only them), seeded with the cuts binding before, at the same
levels, and starts from the basis before (the cuts left out were slack and
the columns left out at 0, so it is optimal at once).  Its cuts hold only
the free columns' entries, so the LP the tree solves at every node is
several times smaller (pmed16: 65 of 400 columns), and fixing is tried again
from its reduced costs.  Each row keeps only the entries cheaper than its
``(|cols| - p + 1)``-th cheapest (no cut above that level can be violated),
which halves the rows at large ``p``.

A branch-and-cut of our own on ``y`` (``_bnb.py``) then separates at every
node (its cuts are the radius formulation's, which HiGHS's MIP, with no
lazy-constraint callback in highspy, cannot see), with pseudo-cost branching
and dives, each heap node starting from its parent's final basis.  If it reaches its node limit, HiGHS's
MIP takes over with every cut found so far, from the incumbent
(``setSolution``); an integer solution whose true cost exceeds its ``theta``
gets its cuts added and the MIP is solved again.  The lower bound is always
valid (a relaxation), so the reported gap is proven.

Time limit: only a deadline.  Every budget inside counts work (the heuristic's
rounds, the tree's node limit, the restriction rule), never a share of the
time left, so a solve that ends before the deadline does the same work (see
`Work`) under any larger limit.

Integer data (integer costs, weights and penalty): every objective value is
an integer, so a lower bound above ``ub - 1`` proves ``ub`` optimal; the
fixing, pruning and the MIP's absolute gap use that.

Reductions: fixed (existing) sites are constants: each row is cut at its
nearest fixed site, and entries at or beyond that cost never enter a cut.
Rows that no candidate reaches keep the big-M penalty as a constant.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import highspy
import numpy as np

from planner.locate._bnb import branch_and_cut
from planner.locate._data import CostData
from planner.locate._heuristic import _Swap, interchange
from planner.locate._highs import new_highs, set_deadline
from planner.locate._lagrange import pmedian_lagrangian

__all__ = ["ExactOutcome", "Reporter", "lagrangian_heuristic", "reporter", "solve_pmedian_exact"]


class Reporter:
    """Turns a solver's incumbent and bound into `planner.progress.SolveProgress` reports.

    ``transform(incumbent, bound)`` maps the solver's (minimisation) values
    to the model's (e.g. covered weight for MCLP).  Reports of one phase
    come at most every ``every_s`` seconds; a new phase, and `final`, always.
    """

    def __init__(self, fn: Callable[[Any], None], t0: float, *,
                 transform: Callable[[float, float], tuple[float, float]] | None = None,
                 every_s: float = 0.25):
        self.fn, self.t0, self.every_s = fn, t0, every_s
        self.transform = transform or (lambda inc, bnd: (inc, bnd))
        self.last_t, self.last_phase = -math.inf, None

    def __call__(self, phase: str, incumbent: float, bound: float, nodes: int = 0) -> None:
        from planner.progress import SolveProgress

        now = time.perf_counter()
        if phase == self.last_phase and now - self.last_t < self.every_s:
            return
        self.last_t, self.last_phase = now, phase
        inc, bnd = self.transform(float(incumbent), float(bound))
        gap = (abs(inc - bnd) / max(abs(inc), 1e-9)) if math.isfinite(bnd) else math.inf
        self.fn(SolveProgress(phase, inc, bnd, gap, now - self.t0, int(nodes)))

    def final(self, objective: float, bound: float, gap: float) -> None:
        """The ``done`` report with the result's own objective, bound and gap."""
        from planner.progress import SolveProgress

        self.fn(SolveProgress("done", float(objective), float(bound), float(gap),
                              time.perf_counter() - self.t0))

    def watch(self, h: highspy.Highs, *, offset: float = 0.0,
              incumbent: Callable[[], float] | None = None) -> None:
        """Report HiGHS's MIP progress (its primal and dual bounds) while it runs.

        ``incumbent()``, when given, is the caller's true incumbent value: it
        replaces HiGHS's primal bound (which, in a model of cuts added lazily,
        can underestimate a solution's cost), and caps the dual bound (a bound
        over a model reduced to the improving solutions).
        """
        def on_interrupt(event: Any) -> None:
            d = event.data_out
            inc = d.mip_primal_bound + offset if incumbent is None else incumbent()
            bnd = d.mip_dual_bound + offset
            if incumbent is not None:
                bnd = min(bnd, inc)
            self("mip", inc, bnd, int(d.mip_node_count))

        h.cbMipInterrupt.subscribe(on_interrupt)


def reporter(progress: Any, t0: float, **kw: Any) -> Reporter | None:
    """A `Reporter` for a solve's ``progress=`` option (``True``: print lines; a callable:
    called with each `planner.progress.SolveProgress`; false: ``None``)."""
    if not progress:
        return None
    if progress is True or isinstance(progress, str):
        from planner.progress import solver_printer

        progress = solver_printer(label=progress if isinstance(progress, str) else "")
    return Reporter(progress, t0, **kw)


@dataclass
class ExactOutcome:
    open_mask: np.ndarray
    lower_bound: float  # on the penalized objective
    upper_bound: float
    proven: bool
    timed_out: bool
    #: Work done (`Work`): equal under any time limit the solve finishes within.
    work: Any = None
    #: Why it stopped short of a proof other than the deadline ("" when not).
    note: str = ""

    def info(self) -> dict[str, Any]:
        """What a result's ``info`` records of this solve: why it stopped short of a
        proof, and the Lagrangian iterations (each only when there is one)."""
        out: dict[str, Any] = {}
        if self.note:
            out["stopped"] = self.note
        if self.work is not None and self.work.lagrange_iters:
            out["lagrangian_iterations"] = self.work.lagrange_iters
        return out


def _debug(msg: str) -> None:
    import os

    if os.environ.get("PLANNER_LOCATE_DEBUG"):
        print("[locate.exact]", msg, flush=True)


_NODE_LIMIT = 500


def _integral_objective(cd: CostData) -> bool:
    """True when every objective value is an integer (integer costs, weights, penalty)."""
    def is_int(a) -> bool:
        a = np.asarray(a, dtype=np.float64)
        return bool(np.all(a == np.round(a)))

    big = float(cd.weights.sum()) * max(cd.penalty, float(cd.data.max()) if cd.data.size else 0.0)
    return is_int(cd.data) and is_int(cd.weights) and is_int(cd.penalty) and big < 2.0 ** 50


class _Rows:
    """Reduced rows: entries cheaper than the row's cap (nearest fixed site or big-M)."""

    def __init__(self, cd: CostData, cols: np.ndarray | None = None, p: int | None = None):
        """``cols``: the columns that may open (default every non-fixed one); ``p``: how many.

        With ``p``, each row is also cut at its ``k``-th cheapest entry, ``k = |cols| - p + 1``:
        any ``k`` of the columns include an open one (integer or LP: the others hold at most
        ``p - 1`` of ``sum y = p``), so no cut above that level is ever violated (the radius
        formulation's reduction, Elloumi 2010).  Large ``p`` halves the entries.
        """
        cap = cd.caps()
        rows = cd.rows
        keep = (cd.data < cap[rows]) & ~cd.fixed[cd.indices]
        if cols is not None:
            keep &= cols[cd.indices]
        n = cd.n
        if p is not None and p > 0:
            k = int(cols.sum() if cols is not None else (~cd.fixed).sum()) - int(p) + 1
            kept = np.flatnonzero(keep)
            counts = np.bincount(rows[kept], minlength=n)
            long = np.flatnonzero(counts >= k)
            if k >= 1 and long.size:
                starts = np.r_[0, np.cumsum(counts)[:-1]]
                cap = cap.copy()
                cap[long] = cd.data[kept[starts[long] + k - 1]]
                keep &= cd.data < cap[rows]
        self.row = rows[keep]
        self.col = cd.indices[keep]
        self.val = cd.data[keep]
        self.cap = cap
        self.w = cd.weights
        counts = np.bincount(self.row, minlength=n)
        self.indptr = np.r_[0, np.cumsum(counts)]
        # active rows: weight > 0 and at least one entry below the cap
        self.active = (counts > 0) & (self.w > 0)
        # group start of each entry (first entry of its row with the same value)
        newgrp = np.r_[True, (self.row[1:] != self.row[:-1]) | (self.val[1:] != self.val[:-1])]
        self.gstart = np.maximum.accumulate(np.where(newgrp, np.arange(self.val.size), 0))
        gend = np.r_[newgrp[1:], True]
        self.gend = gend
        # constant part: rows without entries pay their cap
        self.const = float(np.dot(self.w[~self.active], self.cap[~self.active]))
        self.theta_lb = self.w * np.where(counts > 0, self.val[self.indptr[:-1].clip(
            max=max(self.val.size - 1, 0))] if self.val.size else 0.0, self.cap)

    def separate(self, y: np.ndarray, theta: np.ndarray, *, tol: float):
        """Most violated cut per active row for the point (y, theta); returns cut arrays.

        Only the entries with ``y != 0`` change the sums, so the scan runs over those
        (few at small ``p``); a row's level is its first group of equal costs at which
        the sum of ``y`` reaches 1 (its cap if none).
        """
        if self.val.size == 0:
            return None
        ye_all = y[self.col]
        nz = np.flatnonzero(ye_all != 0)
        if nz.size == 0:  # no column open: every row at its cap
            nz = np.array([0])  # an entry with y = 0 changes no sum
        ye, row, val = ye_all[nz], self.row[nz], self.val[nz]
        cy = np.cumsum(ye)
        cdy = np.cumsum(ye * val)
        n = self.w.size
        ar = np.arange(n)
        rs = np.searchsorted(row, ar)  # each row's first and end entry among the nonzero
        re = np.searchsorted(row, ar, side="right")
        base_y = np.where(rs > 0, cy[rs - 1], 0.0)
        base_dy = np.where(rs > 0, cdy[rs - 1], 0.0)
        incl = cy - base_y[row]  # inclusive cumulative y within the row
        newgrp = np.r_[True, (row[1:] != row[:-1]) | (val[1:] != val[:-1])]
        gend = np.r_[newgrp[1:], True]
        gstart = np.maximum.accumulate(np.where(newgrp, np.arange(val.size), 0))
        hit = gend & (incl >= 1.0 - 1e-9)
        # first hitting group end per row
        first = np.full(n, -1, dtype=np.int64)
        hp = np.flatnonzero(hit)
        if hp.size:
            hr = row[hp]
            f = np.r_[True, hr[1:] != hr[:-1]]
            first[hr[f]] = hp[f]
        has = first >= 0
        fz = np.maximum(first, 0)
        D = self.cap.copy()
        D[has] = val[first[has]]
        # sums over entries strictly cheaper than D
        last_c = np.where(has, gstart[fz] - 1, re - 1)
        empty = last_c < rs
        le = np.maximum(last_c, 0)
        S0 = np.where(empty, 0.0, cy[le] - base_y)
        S1 = np.where(empty, 0.0, cdy[le] - base_dy)
        rhs = self.w * (D - (D * S0 - S1))
        viol = self.active & (rhs > theta + tol * np.maximum(1.0, np.abs(rhs)))
        rows = np.flatnonzero(viol)
        if rows.size == 0:
            return None
        # the cut's entries (every entry cheaper than D, whatever its y)
        last_excl = np.where(has, self.gstart[nz[fz]] - 1, self.indptr[1:] - 1)
        return self.cuts(rows, D[rows], last_excl[rows])

    def costs_at(self, cd: CostData, open_mask: np.ndarray) -> np.ndarray:
        """Each row's cost under ``open_mask`` (big-M where no open site reaches it), capped."""
        d, _ = cd.nearest_open(open_mask)
        return np.minimum(np.where(np.isfinite(d), d, cd.penalty), self.cap)

    def cuts_at(self, rows: np.ndarray, D: np.ndarray):
        """Cuts for given rows at given levels D (entries strictly cheaper than D)."""
        last_excl = np.empty(rows.size, dtype=np.int64)
        for k, (r, d) in enumerate(zip(rows, D, strict=True)):
            lo, hi = self.indptr[r], self.indptr[r + 1]
            last_excl[k] = lo + np.searchsorted(self.val[lo:hi], d, side="left") - 1
        return self.cuts(rows, D, last_excl)

    def cuts(self, rows: np.ndarray, D: np.ndarray, last_excl: np.ndarray):
        rs = self.indptr[rows]
        lens = np.maximum(last_excl - rs + 1, 0)
        total = int(lens.sum())
        offs = np.cumsum(lens) - lens
        pos = np.repeat(rs - offs, lens) + np.arange(total)
        rid = np.repeat(np.arange(rows.size), lens)
        coef = self.w[rows][rid] * (D[rid] - self.val[pos])
        return rows, self.w[rows] * D, lens, self.col[pos], coef


def solve_pmedian_exact(
    cd: CostData,
    p: int,
    *,
    incumbent: np.ndarray,
    time_limit: float,
    seed: int = 0,
    threads: int = 1,
    allowed: np.ndarray | None = None,
    pool: list | None = None,
    report: Reporter | None = None,
) -> ExactOutcome:
    """Prove optimality of (or improve) ``incumbent`` for the p-median on ``cd``.

    Objective values are on the penalized scale (missing pairs cost
    ``cd.penalty``); the caller recomputes the true objective.  ``report``
    hears of every new bound and incumbent.  ``time_limit`` is a deadline
    only: every budget inside (node limit, restriction rule) counts work, so
    a solve that ends before the deadline does the same work under any
    larger limit.
    """
    t0 = time.perf_counter()
    if allowed is None:
        allowed = ~cd.fixed
    work = Work()
    out = _solve(cd, p, incumbent=incumbent, time_limit=time_limit, seed=seed, threads=threads,
                 allowed=allowed, pool=pool, report=report, t0=t0, work=work)
    out.work = work
    return out


def _solve(cd, p, *, incumbent, time_limit, seed, threads, allowed, pool, report, t0, work
           ) -> ExactOutcome:
    cols = allowed & ~cd.fixed
    lag = None
    if p > 0 and _too_big_for_lp(cd, cols):
        lag, cd, p, cols, incumbent = _lagrangian_phase(
            cd, p, cols, incumbent, allowed=allowed, t0=t0, time_limit=time_limit, work=work,
            report=report)
        if lag.proven:
            return ExactOutcome(incumbent, cd.penalized(incumbent), cd.penalized(incumbent),
                                True, False)
        _debug(f"reduced entries after fixing: {_reduced_entries(cd, cols):,}")
        if _too_big_for_lp(cd, cols):
            # even reduced, one LP of the cut model would take minutes: the Lagrangian
            # bound is the answer (a count rule, so the same under any time limit), and
            # the work left goes to the incumbent: iterated local search from the
            # Lagrangian heuristic's solution, over the columns fixing left
            better = interchange(cd, p, seed=seed, time_limit=t0 + time_limit
                                 - time.perf_counter(), n_perturb=_LARGE_PERTURB,
                                 allowed=cols, start=incumbent)
            if cd.penalized(better) < cd.penalized(incumbent):
                incumbent = better
            ub = cd.penalized(incumbent)
            return ExactOutcome(incumbent, min(lag.lb, ub), ub, False,
                                time.perf_counter() >= t0 + time_limit,
                                note="lagrangian_bound_lp_too_large")
    s = _Exact.start(cd, p, incumbent=incumbent, cols=cols, t0=t0,
                     time_limit=time_limit, seed=seed, threads=threads, work=work)
    s.report = report
    if lag is not None:
        s.lb = lag.lb
        s.seed_cuts = _level_cuts(s.R, lag.level)
    while True:
        free, early = s.root(pool or [])
        if early is not None:
            return early
        # reduced-cost fixing left few columns: a fresh LP on them only (its cuts are
        # sparser and its bound can be higher), fixing again from its own reduced costs
        nf, nc = int(free.sum()), int(s.cols.sum())
        if not (p > 0 and p < nf < nc and nf <= _RESTRICT * nc):
            break
        s = s.restricted(free)
    # branch-and-cut on y, separating radius cuts at every node
    if p > 0 and free.sum() > p and s.branch_and_cut(free):
        return s.proven()
    return s.solve_mip()


#: Restrict the LP to the free columns when reduced-cost fixing keeps at most this share.
_RESTRICT = 0.8

#: Reduced entries (pairs cheaper than the row's cap, over columns that may open) above
#: which the LP of the cut model is left out and the Lagrangian relaxation bounds and
#: fixes first (`planner.locate._lagrange`): at 3 million entries one LP takes minutes.
_LP_MAX_ENTRIES = 1_000_000


#: Perturbation rounds of the iterated local search when the LP is left out.
_LARGE_PERTURB = 40


def _cutoff_tol(integral: bool, u: float, tol: float = 1e-9) -> float:
    """A bound at or above ``u - _cutoff_tol`` proves ``u`` optimal: with integer data every
    objective value is an integer, so a bound above ``u - 1`` does."""
    return 1.0 - 1e-6 if integral else max(1e-6, tol * abs(u))


def _reduced_entries(cd: CostData, cols: np.ndarray) -> int:
    return int(np.count_nonzero((cd.data < cd.caps()[cd.rows]) & cols[cd.indices]))


def _too_big_for_lp(cd: CostData, cols: np.ndarray) -> bool:
    """Over `_LP_MAX_ENTRIES` reduced entries.  This holds for a coverage model too
    (MCLP as a p-median of zeros and a penalty): its LP has one cut per row, but at
    city scale (10^5 merged rows, 10^6 entries) it still takes HiGHS over a minute,
    while the Lagrangian phase's heuristic finds far better incumbents."""
    return cd.data.size > _LP_MAX_ENTRIES and _reduced_entries(cd, cols) > _LP_MAX_ENTRIES


#: Subgradient iterations of the Lagrangian heuristic (``method="heuristic"`` at city
#: scale): local searches from the relaxation's sites at iterations 100 and 500, about
#: 20 s at 100,000 units x 10,000 sites and p = 100.
HEURISTIC_LAG_ITERS = 600


def lagrangian_heuristic(cd: CostData, p: int, incumbent: np.ndarray, *, allowed: np.ndarray,
                         time_limit: float, t0: float) -> tuple[np.ndarray, float, int]:
    """The Lagrangian heuristic for a p-median too large for the LP (city scale).

    Runs `HEURISTIC_LAG_ITERS` subgradient iterations of the Lagrangian phase
    from ``incumbent`` (stopping at the deadline ``t0 + time_limit``) and
    returns (the best open mask found, a valid lower bound on the penalized
    optimum, iterations).  The caller applies the size rule (`_too_big_for_lp`);
    for ``p <= 0`` nothing runs: the input comes back with ``-inf`` and 0 iterations.
    """
    cols = allowed & ~cd.fixed
    if p <= 0:
        return incumbent, -np.inf, 0
    work = Work()
    lag, _, _, _, best = _lagrangian_phase(cd, p, cols, incumbent, allowed=allowed, t0=t0,
                                             time_limit=time_limit, work=work, report=None,
                                             max_iter=HEURISTIC_LAG_ITERS)
    ub = cd.penalized(best)
    # lag.lb bounds the solutions better than the incumbent; the incumbent bounds the rest
    return best, min(lag.lb, ub), work.lagrange_iters


def _lagrangian_phase(cd, p, cols, incumbent, *, allowed, t0, time_limit, work, report,
                      max_iter=None):
    """The Lagrangian bound and fixing (`planner.locate._lagrange`) before the LP.

    Returns the outcome and the reduced problem: columns fixed open that the
    incumbent opens become fixed sites (``p`` less them), columns fixed closed
    leave ``cols``.  Every solution better than the incumbent lies in it.
    """
    ub = cd.penalized(incumbent)
    integral = _integral_objective(cd)

    def cutoff(u: float) -> float:
        return u - _cutoff_tol(integral, u)

    def polish(mask: np.ndarray) -> tuple[float, np.ndarray]:
        """The Lagrangian heuristic: interchange local search from the relaxation's sites."""
        st = _Swap(cd, mask, allowed)
        st.local_search(deadline=t0 + time_limit)
        return cd.penalized(st.open), st.open

    lag = pmedian_lagrangian(cd, p, cols, ub, incumbent, cutoff=cutoff,
                             deadline=t0 + time_limit, polish=polish, max_iter=max_iter,
                             enough=lambda fix0, fix1, mask: not _too_big_for_lp(
                                 *_after_fixing(cd, p, cols, fix0, fix1, mask)[::2]))
    incumbent = lag.ub_mask
    work.lagrange_iters += lag.iterations
    _debug(f"Lagrangian: lb {lag.lb:.8g} ub {lag.ub:.8g} (start {ub:.8g}) after "
           f"{lag.iterations} iterations, "
           f"{int(lag.fix0.sum())} columns fixed closed, {int(lag.fix1.sum())} open, "
           f"{time.perf_counter() - t0:.2f} s")
    if report is not None:
        report("lagrange", lag.ub, lag.lb)
    cd, p, cols = _after_fixing(cd, p, cols, lag.fix0, lag.fix1, incumbent)
    return lag, cd, p, cols, incumbent


def _after_fixing(cd, p, cols, fix0, fix1, incumbent):
    """The problem left by Lagrangian fixing: the columns fixed open that the incumbent
    opens become fixed sites (``p`` less them), the columns fixed closed leave ``cols``."""
    open1 = fix1 & incumbent
    if open1.any():
        cd = replace(cd, fixed=cd.fixed | open1)
        p -= int(open1.sum())
    return cd, p, cols & ~fix0 & ~open1


def _level_cuts(R: _Rows, level: np.ndarray) -> np.ndarray:
    """(row, level) pairs at the Lagrangian levels: each active row's cut at the smallest of
    its costs at or above ``level`` (the cap when none), the LP's first cuts."""
    if R.val.size == 0:
        return np.empty((0, 2))
    at = np.flatnonzero(R.val >= level[R.row] - 1e-9)
    first = np.full(R.w.size, -1, dtype=np.int64)
    first[R.row[at][::-1]] = at[::-1]  # the first such entry of each row wins
    lv = np.where(first >= 0, R.val[np.maximum(first, 0)], R.cap)
    act = np.flatnonzero(R.active)
    lv = lv[act]
    return np.c_[act, lv]


@dataclass
class Work:
    """Deterministic work counters of one exact solve (LP runs, tree nodes, LP rebuilds)."""

    lp_runs: int = 0
    nodes: int = 0
    rebuilds: int = 0
    lagrange_iters: int = 0


@dataclass
class _Exact:
    """One exact solve: the LP/MIP ``h`` over theta (n) then y (m), bounds and incumbent."""

    cd: CostData
    R: _Rows
    h: highspy.Highs
    p: int
    #: Columns that may open in this LP (allowed, not fixed, not fixed to 0 by reduced cost).
    cols: np.ndarray
    t0: float
    deadline: float
    integral: bool
    ub: float
    ub_mask: np.ndarray
    work: Work
    allowed: np.ndarray
    seed: int = 0
    threads: int = 1
    lb: float = -np.inf
    tol: float = 1e-9
    report: Reporter | None = None
    seed_cuts: np.ndarray | None = None
    seed_basis: tuple | None = None
    cut_rows: list = field(default_factory=list)
    cut_levels: list = field(default_factory=list)

    def note(self, phase: str, nodes: int = 0) -> None:
        if self.report is not None:
            self.report(phase, self.ub, self.lb, nodes)

    @classmethod
    def start(cls, cd: CostData, p: int, *, incumbent: np.ndarray, cols: np.ndarray,
              t0: float, time_limit: float, seed: int, threads: int, work: Work) -> _Exact:
        """The state with the LP set up: theta and y columns and the row sum(y) = p."""
        ub_mask = incumbent.copy()
        s = cls(cd, None, None, p, cols, t0, t0 + time_limit, _integral_objective(cd),
                cd.penalized(ub_mask), ub_mask, work, cols.copy(), seed, threads)
        s.build()
        return s

    def build(self) -> None:
        """A fresh LP over the columns ``cols``: theta, y and sum(y) = p (no cuts yet)."""
        cd, n, m = self.cd, self.cd.n, self.cd.m
        self.R = R = _Rows(cd, self.cols, self.p)
        inf = highspy.kHighsInf
        h = new_highs(time_limit=max(0.01, self.deadline - time.perf_counter()),
                       seed=self.seed, threads=self.threads)
        lp_theta_lb = np.where(R.active, R.theta_lb, 0.0)
        h.addVars(n, lp_theta_lb, np.full(n, inf))
        h.changeColsCost(n, np.arange(n, dtype=np.int32), np.where(R.active, 1.0, 0.0))
        h.addVars(m, np.zeros(m), np.where(self.cols, 1.0, 0.0))
        h.addRow(float(self.p), float(self.p), m, np.arange(n, n + m, dtype=np.int32),
                 np.ones(m))
        self.h = h

    def restricted(self, free: np.ndarray) -> _Exact:
        """The same solve on a fresh LP over the columns ``free`` only.

        Its first cuts are those binding in this LP, at the same levels (over
        the free columns only): its cut loop starts near its optimum.
        """
        _debug(f"restrict to {int(free.sum())} of {int(self.cols.sum())} columns")
        self.work.rebuilds += 1
        s = _Exact(self.cd, None, None, self.p, free.copy(), self.t0, self.deadline,
                   self.integral, self.ub, self.ub_mask, self.work, self.allowed, self.seed,
                   self.threads,
                   lb=self.lb, tol=self.tol, report=self.report)
        s.build()
        s.seed_cuts = self.binding_cuts()
        s.seed_basis = self.basis_by_cut()
        return s

    def basis_by_cut(self) -> tuple[list, Any, dict]:
        """This LP's final basis: column statuses, the row sum(y) = p's, and each cut's by
        its (row, level).

        The LP restricted to the free columns with the binding cuts starts from it: the
        cuts left out are slack (basic) and the columns left out are at 0 (nonbasic), so
        the rest is a basis there, optimal at the same point (no simplex iteration).
        """
        b = self.h.getBasis()
        rows = np.concatenate(self.cut_rows) if self.cut_rows else np.empty(0, np.int64)
        lev = np.concatenate(self.cut_levels) if self.cut_levels else np.empty(0)
        st = list(b.row_status)
        by_cut = {(int(r), float(d)): st[1 + k] for k, (r, d) in enumerate(zip(rows, lev,
                                                                               strict=True))}
        return list(b.col_status), st[0], by_cut

    def root(self, pool: list) -> tuple[np.ndarray, ExactOutcome | None]:
        """The root: cuts tight at the incumbent (and ``pool``), the cut loop, rounding, fixing.

        Returns the columns left free by reduced-cost fixing, and the outcome
        when the solve ends here (proven, or out of time).
        """
        cd, R = self.cd, self.R
        # initial cuts: each row at the cost the incumbent gives it (tight at the incumbent),
        # at the costs of the good integer solutions the heuristic visited (the optimum is
        # usually among or near them), and the cuts binding in the LP before a restriction
        act = np.flatnonzero(R.active)
        pairs = [np.c_[act, R.costs_at(cd, sol)[act]] for sol in [self.ub_mask, *pool[-20:]]]
        if self.seed_cuts is not None:
            sc = self.seed_cuts
            pairs.append(sc[R.active[sc[:, 0].astype(np.int64)]])
        pairs = np.unique(np.vstack(pairs), axis=0)
        self.add_cuts(R.cuts_at(pairs[:, 0].astype(np.int64), pairs[:, 1]))
        if self.seed_basis is not None:
            self.set_seed_basis(pairs)
        lb_before = self.lb
        y = self.cut_loop(keep_best=True)
        if y is None:
            return self.cols, self.stopped()
        _debug(f"root LP {self.lb:.8g} (before {lb_before:.8g}), {self.h.getNumRow()} rows, "
               f"{time.perf_counter() - self.t0:.2f} s")
        # LP optimum reached: an incumbent from it
        self.round_lp(y)
        if self.done():
            return self.cols, self.proven()
        return self.fix_by_reduced_cost(y)

    def set_seed_basis(self, pairs: np.ndarray) -> None:
        """Start the LP from the basis before the restriction (`basis_by_cut`)."""
        cols, row0, by_cut = self.seed_basis
        basic = highspy.HighsBasisStatus.kBasic
        b = highspy.HighsBasis()
        b.col_status = cols
        b.row_status = [row0] + [by_cut.get((int(r), float(d)), basic) for r, d in pairs]
        b.valid = True
        if self.h.setBasis(b) != highspy.HighsStatus.kOk:
            _debug("seed basis rejected")

    def stopped(self) -> ExactOutcome:
        """The outcome when the deadline (or a failed LP) stops the solve."""
        lb = min(self.lb, self.ub) if np.isfinite(self.lb) else -np.inf
        return ExactOutcome(self.ub_mask, lb, self.ub, False, True)

    def cutoff_tol(self, u: float) -> float:
        """Prune / prove when lb >= ub - cutoff_tol(ub)."""
        # integer costs and weights: every objective value is an integer, so a
        # bound above ub - 1 proves ub optimal
        return _cutoff_tol(self.integral, u, self.tol)

    def done(self) -> bool:
        return self.lb >= self.ub - self.cutoff_tol(self.ub)

    def proven(self) -> ExactOutcome:
        return ExactOutcome(self.ub_mask, self.ub, self.ub, True, False)

    def improve(self, val: float, mask: np.ndarray) -> None:
        if val < self.ub:
            self.ub, self.ub_mask = val, mask

    def add_cuts(self, c) -> int:
        rows, lower, lens, cols, coef = c
        n, nr = self.cd.n, rows.size
        if nr == 0:  # e.g. no row can be served cheaper than its fixed site or big-M
            return 0
        starts = (np.cumsum(lens + 1) - (lens + 1)).astype(np.int32)
        # each cut: theta_i (coef 1) followed by its y entries
        idx = np.empty(int(lens.sum()) + nr, dtype=np.int32)
        val = np.empty_like(idx, dtype=np.float64)
        idx[starts] = rows
        val[starts] = 1.0
        mask = np.ones(idx.size, dtype=bool)
        mask[starts] = False
        idx[mask] = n + cols
        val[mask] = coef
        self.h.addRows(nr, lower, np.full(nr, highspy.kHighsInf), idx.size, starts, idx, val)
        self.cut_rows.append(rows)
        self.cut_levels.append(lower / self.R.w[rows])
        return nr

    def delete_cuts(self, idx: np.ndarray) -> None:
        """Delete the LP rows ``idx`` (cuts; row 0, sum(y) = p, stays)."""
        if idx.size == 0:
            return
        self.h.deleteRows(idx.size, idx.astype(np.int32))
        keep = np.ones(1 + sum(r.size for r in self.cut_rows), dtype=bool)
        keep[idx] = False
        keep = keep[1:]
        self.cut_rows = [np.concatenate(self.cut_rows)[keep]]
        self.cut_levels = [np.concatenate(self.cut_levels)[keep]]

    def binding_cuts(self) -> np.ndarray:
        """(row, level) pairs of the cuts binding at the LP's current solution."""
        if not self.cut_rows:
            return np.empty((0, 2))
        rows = np.concatenate(self.cut_rows)
        lev = np.concatenate(self.cut_levels)
        lower = lev * self.R.w[rows]
        act = np.asarray(self.h.getSolution().row_value)[1:]
        tight = act <= lower + 1e-7 * np.maximum(1.0, np.abs(lower))
        return np.c_[rows[tight], lev[tight]]

    def cut_loop(self, *, keep_best: bool) -> np.ndarray | None:
        """Solve the LP and add violated cuts until none is left: the LP's ``y``.

        Each round's LP value becomes ``lb`` (the larger of it and ``lb`` with
        ``keep_best``).  None when HiGHS stops before an optimum.
        """
        h, n = self.h, self.cd.n
        while True:
            set_deadline(h, self.deadline)
            h.run()
            self.work.lp_runs += 1
            if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
                return None
            x = np.asarray(h.getSolution().col_value)
            theta, y = x[:n], x[n:]
            value = h.getInfo().objective_function_value + self.R.const
            self.lb = max(self.lb, value) if keep_best else value
            self.note("lp")
            c = self.R.separate(y, theta, tol=1e-7)
            if c is None:
                return y
            self.add_cuts(c)

    def round_lp(self, y: np.ndarray) -> None:
        """The LP point as an incumbent: itself when integral, else rounded and polished."""
        cd, p = self.cd, self.p
        frac = np.abs(y - np.round(y)) > 1e-7
        if not frac.any():
            mask = np.round(y).astype(bool) | cd.fixed
            self.improve(cd.penalized(mask), mask)
        elif p > 0:
            # LP rounding: the p largest y, polished by the interchange local search
            order = np.argsort(-np.where(self.cols, y, -1.0), kind="stable")[:p]
            mask = cd.fixed.copy()
            mask[order] = True
            st = _Swap(cd, mask, self.allowed)
            st.local_search(deadline=self.deadline)
            val = cd.penalized(st.open)
            _debug(f"LP rounding: {val:.8g} (incumbent {self.ub:.8g})")
            if val < self.ub:
                self.ub, self.ub_mask = val, st.open.copy()
                self.note("rounding")

    def fix_by_reduced_cost(self, y: np.ndarray) -> tuple[np.ndarray, ExactOutcome | None]:
        """Reduced-cost fixing with the incumbent's value, then re-separate.

        With fewer columns the cuts get stronger and more columns can be
        fixed.  Returns the free columns, and the outcome when the solve ends
        here (proven, or out of time).
        """
        h, n = self.h, self.cd.n
        free = self.cols.copy()
        for _ in range(5):
            lb, ub = self.lb, self.ub
            rc = np.asarray(h.getSolution().col_dual)[n:]
            room = ub - self.cutoff_tol(ub) - lb + 1e-6 * max(1.0, abs(ub))
            fix0 = free & (y < 1e-9) & (rc > room)
            _debug(f"rc fixing: {int(fix0.sum())} of {int(free.sum())} free columns, lb {lb:.8g} "
                   f"ub {ub:.8g}")
            if not fix0.any():
                break
            free &= ~fix0
            cols = np.flatnonzero(fix0)
            h.changeColsBounds(cols.size, (n + cols).astype(np.int32), np.zeros(cols.size),
                               np.zeros(cols.size))
            y = self.cut_loop(keep_best=True)
            if y is None:
                return free, self.stopped()
            if self.done():
                return free, self.proven()
        return free, None

    def branch_and_cut(self, free: np.ndarray) -> bool:
        """Our branch-and-cut (`planner.locate._bnb`) for half the time left: proven?"""
        h, t0 = self.h, self.t0
        _debug(f"before branch-and-cut {time.perf_counter() - t0:.2f} s")
        # the tree's budget is a node count (work), never a share of the time left
        bb = branch_and_cut(h, self.R, self.cd, p=self.p, free=free, lb_root=self.lb,
                            ub=self.ub, ub_mask=self.ub_mask, add_cuts=self.add_cuts,
                            deadline=self.deadline, work=self.work,
                            cutoff_tol=self.cutoff_tol, node_limit=_NODE_LIMIT,
                            delete_cuts=self.delete_cuts,
                            on_node=None if self.report is None else
                            (lambda nodes, lb, ub: self.report("branch", ub, lb, nodes)))
        _debug(f"branch-and-cut: {bb.nodes} nodes, {h.getNumRow()} rows, "
               f"{time.perf_counter() - t0:.2f} s, "
               f"complete {bb.complete}, lb {bb.lb:.8g} "
               f"ub {bb.ub:.8g}")
        self.ub, self.ub_mask = bb.ub, bb.ub_mask
        if bb.complete:
            return True
        self.lb = max(self.lb, bb.lb)
        return self.done()

    def solve_mip(self) -> ExactOutcome:
        """HiGHS's MIP with every cut so far, from the incumbent, until no cut is violated."""
        h, cd, R, n, m = self.h, self.cd, self.R, self.cd.n, self.cd.m
        h.changeColsIntegrality(m, np.arange(n, n + m, dtype=np.int32),
                                np.full(m, highspy.HighsVarType.kInteger))
        h.setOptionValue("mip_rel_gap", 0.0)
        h.setOptionValue("mip_abs_gap", self.cutoff_tol(self.ub) if self.integral else 1e-6)
        if self.report is not None:
            self.report.watch(h, offset=R.const, incumbent=lambda: self.ub)
        timed_out = False
        while True:
            remaining = self.deadline - time.perf_counter()
            if remaining <= 0:
                timed_out = True
                break
            h.setSolution(self.mip_start())
            set_deadline(h, self.deadline)
            h.run()
            info = h.getInfo()
            st = h.getModelStatus()
            if np.isfinite(info.mip_dual_bound):
                self.lb = max(self.lb, info.mip_dual_bound + R.const)
            if info.primal_solution_status == 2:
                x = np.asarray(h.getSolution().col_value)
                theta, y = x[:n], x[n:]
                mask = (y > 0.5) | cd.fixed
                self.improve(cd.penalized(mask), mask)
                if st == highspy.HighsModelStatus.kOptimal:
                    c = R.separate((y > 0.5).astype(np.float64), theta, tol=1e-9)
                    if c is not None:
                        # the MIP optimum underestimated its own cost: cut it off, solve again
                        self.add_cuts(c)
                        continue
            if st != highspy.HighsModelStatus.kOptimal:
                timed_out = True
            break
        self.lb = min(self.lb, self.ub)
        proven = self.done()
        if proven:
            self.lb = self.ub
        return ExactOutcome(self.ub_mask, self.lb, self.ub, proven, timed_out and not proven)

    def mip_start(self) -> highspy.HighsSolution:
        """The incumbent as a start: theta at its true row costs satisfies every valid cut."""
        cd, R = self.cd, self.R
        d_ub = R.costs_at(cd, self.ub_mask)
        sol0 = highspy.HighsSolution()
        sol0.col_value = np.r_[np.where(R.active, cd.weights * d_ub, 0.0),
                               (self.ub_mask & ~cd.fixed).astype(np.float64)].tolist()
        sol0.value_valid = True
        return sol0
