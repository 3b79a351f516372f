"""Location models as objects (spopt-like): p-median, maximal coverage, set covering.

Each model is built from a cost matrix (``from_cost_matrix``) or from
GeoDataFrames and a walk network (``from_geodataframes``, which builds the
sparse walking-time matrix and hands off to the matrix route), and
``solve()`` returns a `LocateResult`: data, never printed.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from planner import defaults as D
from planner._errors import LocateError, PlannerWarning
from planner.locate import _exact
from planner.locate._data import CostData, _as_index_mask, build_cost_data
from planner.locate._exact import lagrangian_heuristic, reporter, solve_pmedian_exact
from planner.locate._heuristic import interchange

Method = Literal["auto", "exact", "heuristic"]


class UncoverableWarning(PlannerWarning):
    """Some demand rows have no candidate nor fixed site within the coverage (LSCP)."""


@dataclass
class LocateResult:
    """The answer of a location model.

    Attributes
    ----------
    model
        ``"pmedian"``, ``"mclp"`` or ``"lscp"``.
    sites
        Sorted column indices of the NEW sites (fixed sites not included).
    fixed
        Column indices of the fixed (existing) sites.
    objective
        Recomputed from the cost data for the returned sites: p-median, total
        weighted cost over the demand that some open site reaches (unreachable
        demand is listed in ``unreachable`` and not priced); MCLP, the covered
        weight (fixed sites included); LSCP, the number of new sites.
    bound
        Best proven bound on the objective (lower for p-median and LSCP,
        upper for MCLP); for the heuristic alone a simple valid bound.
    gap
        ``|objective - bound| / max(|objective|, tiny)``; 0 when proven optimal.
    status
        ``"optimal"`` (gap proven zero), ``"time_limit"`` (exact solver
        stopped with a gap: out of time, or, p-median and MCLP at city scale, with the
        Lagrangian bound because the LP stays too large after fixing:
        ``info["stopped"] == "lagrangian_bound_lp_too_large"``) or
        ``"heuristic"`` (no proof asked for).
    assignment
        Per demand row, the column of the site serving it (nearest open site;
        for the capacitated p-median the one with the largest share); -1 when
        none reaches it (or, MCLP/LSCP, none covers it).
    unreachable
        Demand rows no open site reaches within the cost matrix's cut-off
        (MCLP/LSCP: rows left uncovered).
    seconds
        Wall time of ``solve``.
    method
        The solver(s) used.
    shares
        Capacitated models only: (n_demand x n_candidate) CSR of served shares
        (MCLP/LSCP: only pairs within the coverage).
    covered
        MCLP/LSCP: boolean mask of covered demand rows (with capacities: fully
        served within the coverage; ``info["covered_weight"]`` counts partly
        served rows by their share).
    uncoverable
        MCLP/LSCP: rows that no candidate nor fixed site can cover.
    """

    model: str
    sites: np.ndarray
    fixed: np.ndarray
    objective: float
    bound: float
    gap: float
    status: str
    assignment: np.ndarray
    unreachable: np.ndarray
    seconds: float
    method: str
    shares: Any = None
    covered: np.ndarray | None = None
    uncoverable: np.ndarray | None = None
    info: dict = field(default_factory=dict)

    @property
    def lower_bound(self) -> float:
        """Lower bound on the objective (for MCLP, a maximisation, its own value)."""
        return self.objective if self.model == "mclp" else self.bound

    @property
    def upper_bound(self) -> float:
        return self.bound if self.model == "mclp" else self.objective

    def __repr__(self) -> str:
        return (f"LocateResult(model={self.model!r}, status={self.status!r}, "
                f"objective={self.objective:.6g}, gap={self.gap:.3%}, "
                f"n_sites={self.sites.size}, seconds={self.seconds:.2f})")


def _gap(obj: float, bound: float) -> float:
    if not np.isfinite(bound):
        return float("inf")
    return float(abs(obj - bound) / max(abs(obj), 1e-12)) if abs(obj - bound) > 1e-9 * max(
        1.0, abs(obj)) else 0.0


def _status(proven: bool, method: str) -> str:
    """`LocateResult.status` of a solve."""
    return "optimal" if proven else ("heuristic" if method == "heuristic" else "time_limit")


def _largest_share(shares: sp.csr_array, n: int) -> np.ndarray:
    """Per demand row, the column serving its largest share (-1 where none is served)."""
    coo = shares.tocoo()
    order = np.lexsort((-coo.data, coo.row))
    r_, c_, v_ = coo.row[order], coo.col[order], coo.data[order]
    first = np.r_[True, r_[1:] != r_[:-1]] & (v_ > 1e-9) if r_.size else np.zeros(0, bool)
    assignment = np.full(n, -1, dtype=np.int64)
    assignment[r_[first]] = c_[first]
    return assignment


#: Perturbation rounds of the interchange heuristic that starts an exact p-median solve.
_EXACT_PERTURB = 3


def _time_limit(time_limit_s: float, time_limit: float | None) -> float:
    """``time_limit_s``, or the deprecated ``time_limit`` when given."""
    if time_limit is None:
        return time_limit_s
    warnings.warn("solve(time_limit=...) is deprecated; use time_limit_s=... (seconds).",
                  DeprecationWarning, stacklevel=3)
    return time_limit


def _check_method(method: str, time_limit=1.0, seed=0, threads=1) -> None:
    if method not in ("auto", "exact", "heuristic"):
        raise LocateError(f"method={method!r} is not known; use 'auto', 'exact' or 'heuristic'.")
    if isinstance(time_limit, bool) or not isinstance(time_limit, (int, float, np.number)) \
            or not np.isfinite(time_limit) or time_limit <= 0:
        raise LocateError(f"time_limit must be a number of seconds > 0; got {time_limit!r}.")
    for name, v, lo in (("seed", seed, 0), ("threads", threads, 1)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise LocateError(f"{name} must be a whole number >= {lo}; got {v!r}.")


def _check_coverage(coverage) -> float:
    try:
        c = float(coverage)
    except (TypeError, ValueError):
        c = float("nan")
    if not np.isfinite(c) or c < 0:
        raise LocateError(f"coverage must be a finite cost >= 0 (the cost matrix's unit, e.g. "
                          f"seconds); got {coverage!r}.")
    return c


def _allowed_mask(allowed, m: int) -> np.ndarray:
    if allowed is None:
        return np.ones(m, bool)
    return _as_index_mask(allowed, m, name="allowed")


class _Model:
    name = ""

    def __init__(self, cd: CostData, *, allowed: np.ndarray, capacity: np.ndarray | None,
                 labels: dict | None = None):
        self.cd = cd
        self.allowed = allowed & ~cd.fixed
        self.capacity = capacity
        self.labels = labels or {}

    @property
    def n_demand(self) -> int:
        return self.cd.n

    @property
    def n_candidates(self) -> int:
        return self.cd.m

    def _check_p(self, p: int) -> int:
        if isinstance(p, bool) or not isinstance(p, (int, np.integer)) or p < 0:
            raise LocateError(f"p must be a whole number >= 0 (new sites to open); got {p!r}.")
        free = int(self.allowed.sum())
        if p > free:
            raise LocateError(
                f"p = {p} new sites asked for, but only {free} candidate sites can be opened "
                f"({self.cd.m} candidates, {int(self.cd.fixed.sum())} of them fixed/existing). "
                "Lower p or add candidate sites."
            )
        return int(p)

    def solve(self, *, time_limit_s: float = D.SOLVE_TIME_LIMIT_S, method: Method = "auto",
              seed: int = 0, threads: int = 1, time_limit: float | None = None,
              progress: Any = False) -> LocateResult:
        """Solve the model.

        Progress is in the model's own objective: walking cost (p-median),
        covered weight (MCLP), number of sites (LSCP).

        Parameters
        ----------
        time_limit_s
            Seconds for the whole solve (heuristic + exact).  ``time_limit``
            is the old name, still accepted with a `DeprecationWarning`.
        method
            ``"heuristic"`` (fast interchange only), ``"exact"`` (HiGHS, warm
            started from the heuristic) or ``"auto"`` (= exact, falling back to
            the best solution found with its proven gap when time runs out).
        seed, threads
            Same seed and threads, same answer.
        progress
            ``True`` prints the incumbent, bound and gap as the solve goes (a
            string: with that label); a callable receives each
            `planner.progress.SolveProgress`; ``False`` (default): silent.
        """
        time_limit = _time_limit(time_limit_s, time_limit)
        _check_method(method, time_limit, seed, threads)
        t0 = time.perf_counter()
        rep = reporter(progress, t0, transform=self._progress_transform())
        res = self._solve(time_limit=time_limit, method=method, seed=seed, threads=threads,
                          t0=t0, rep=rep)
        if rep is not None:
            rep.final(res.objective, res.bound, res.gap)
        return res

    def _progress_transform(self):
        """Maps the solver's (minimisation) incumbent and bound to the model's; None: as is."""
        return None

    def _solve(self, *, time_limit, method, seed, threads, t0, rep) -> LocateResult:
        raise NotImplementedError


def _coerce(cost, weights, fixed, capacity, allowed):
    cd = build_cost_data(cost, weights=weights, fixed=fixed)
    cap = None
    if capacity is not None:
        cap = np.asarray(capacity, dtype=np.float64).ravel()
        if cap.shape != (cd.m,) or not np.isfinite(cap).all() or (cap < 0).any():
            bad = np.flatnonzero(~np.isfinite(cap) | (cap < 0))[:5] if cap.shape == (cd.m,) \
                else []
            raise LocateError(
                f"`capacity` needs one finite value >= 0 per candidate column ({cd.m}); got "
                f"shape {cap.shape}" + (f", bad at columns {bad.tolist()}: {cap[bad].tolist()}"
                                        if len(bad) else "") +
                ". Use a large number for unlimited sites."
            )
    return cd, cap, _allowed_mask(allowed, cd.m)


class PMedian(_Model):
    """p-median: open ``p`` new sites minimising the total weighted cost to the nearest site.

    Build with `PMedian.from_cost_matrix` or `PMedian.from_geodataframes`.

    Examples
    --------
    >>> import numpy as np
    >>> from planner.locate import PMedian
    >>> cost = np.array([[0, 5, 9], [5, 0, 4], [9, 4, 0.]])
    >>> PMedian.from_cost_matrix(cost, p=1).solve().sites
    array([1])
    """

    name = "pmedian"

    def __init__(self, cd: CostData, p: int, *, allowed: np.ndarray,
                 capacity: np.ndarray | None = None, labels: dict | None = None):
        super().__init__(cd, allowed=allowed, capacity=capacity, labels=labels)
        self.p = self._check_p(p)

    @classmethod
    def from_cost_matrix(
        cls,
        cost,
        *,
        p: int,
        weights=None,
        fixed=None,
        capacity=None,
        allowed=None,
    ) -> PMedian:
        """Build from a cost matrix.

        Parameters
        ----------
        cost
            (n_demand, n_candidate) ndarray (``np.inf`` = unreachable) or SciPy
            sparse matrix under a cut-off (stored entries, explicit zeros
            included, are the reachable pairs).  Any unit (seconds, metres).
        p
            Number of NEW sites to open (fixed sites do not count).
        weights
            Demand weights, e.g. older residents (default 1 each).
        fixed
            Column indices (or boolean mask) of existing sites: open, serving
            demand, not counted in ``p``.
        capacity
            Optional capacity per candidate column, in the weights' unit; the
            capacitated model assigns (splittable) demand so that no site is
            over capacity; demand that fits nowhere is reported unserved.
        allowed
            Column indices (or mask) of candidates that may be opened
            (default: all).
        """
        cd, cap, allow = _coerce(cost, weights, fixed, capacity, allowed)
        return cls(cd, p, allowed=allow, capacity=cap)

    @classmethod
    def from_geodataframes(cls, demand, candidates, network, *, p: int, **kwargs) -> PMedian:
        """Build from demand and candidate layers and a `WalkNetwork` (walking seconds).

        Keyword arguments as `planner.locate.cost_from_geodataframes`
        (``weight``, ``fixed``, ``cutoff_min``, ``speed_mps``, ``max_snap_m``,
        ``capacity``, ``allowed``).
        """
        cost, w, fixed, cap, allowed, labels = cost_from_geodataframes(
            demand, candidates, network, **kwargs)
        cd, cap, allow = _coerce(cost, w, fixed, cap, allowed)
        return cls(cd, p, allowed=allow, capacity=cap, labels=labels)

    def _solve(self, *, time_limit, method, seed, threads, t0, rep) -> LocateResult:
        cd, p = self.cd, self.p
        if self.capacity is not None:
            return self._solve_capacitated(time_limit=time_limit, method=method, seed=seed,
                                           threads=threads, t0=t0)
        # The exact solver's start: greedy + interchange with a few perturbation rounds
        # (its LP rounding polishes further).  Its work is fixed, so the time limit is
        # only a deadline here too: a solve that ends in time does the same work under
        # any larger limit.
        pool: list = []
        # at city scale (the LP too large) the heuristic is interchange with few rounds, then
        # the Lagrangian heuristic, which also gives a bound
        city = method == "heuristic" and _exact._too_big_for_lp(cd, self.allowed & ~cd.fixed)
        open_mask = interchange(cd, p, seed=seed, time_limit=time_limit, allowed=self.allowed,
                                pool=pool, n_perturb=None if method == "heuristic" and not city
                                else _EXACT_PERTURB)
        lb = _trivial_bound(cd)
        used = "heuristic"
        proven = False
        if not (cd.weights[cd.reachable_any()] > 0).any():
            # nothing to serve (zero weights or nothing reachable): every choice costs 0
            return self._result(open_mask, lb, True, used, method, t0)
        if rep is not None:
            rep("heuristic", cd.penalized(open_mask), lb)
        if city:
            open_mask, lag_lb, iters = lagrangian_heuristic(
                cd, p, open_mask, allowed=self.allowed, time_limit=time_limit, t0=t0)
            lb = max(lb, lag_lb)
            used = "heuristic+lagrangian"
            res = self._result(open_mask, lb, False, used, method, t0)
            res.info["lagrangian_iterations"] = iters
            return res
        if method != "heuristic":
            remaining = time_limit - (time.perf_counter() - t0)
            out = solve_pmedian_exact(cd, p, incumbent=open_mask, time_limit=max(0.05, remaining),
                                      seed=seed, threads=threads, allowed=self.allowed,
                                      pool=pool[-20:], report=rep)
            open_mask, lb, proven = out.open_mask, max(lb, out.lower_bound), out.proven
            used = "heuristic+exact"
            res = self._result(open_mask, lb, proven, used, method, t0)
            res.info.update(out.info())
            return res
        return self._result(open_mask, lb, proven, used, method, t0)

    def _result(self, open_mask, lb_pen, proven, used, method, t0, shares=None,
                unserved=None) -> LocateResult:
        cd = self.cd
        obj, col, unreach = cd.true_objective(open_mask)
        nowhere = ~cd.reachable_any()
        never = nowhere | (cd.weights == 0)
        # the penalized bound minus the penalty that every solution pays
        base = float(np.dot(cd.weights[nowhere], np.full(nowhere.sum(), cd.penalty)))
        lb = lb_pen - base
        extra_unreach = np.setdiff1d(unreach, np.flatnonzero(never))
        if extra_unreach.size and cd.weights[extra_unreach].sum() > 0:
            warnings.warn(PlannerWarning(
                f"{extra_unreach.size} demand rows are reachable by some candidate but by none "
                f"of the {self.p} chosen sites (raise p or the cut-off); they are listed in "
                "`unreachable`, and the bound/gap refer to the objective with them penalised.",
                f"{extra_unreach.size} 个需求单元可到达某些候选点，但到不了所选的 {self.p} 个"
                "设施中的任何一个（请增大 p 或截断时间）；它们列在 `unreachable` 中，界与差距按"
                "对其加罚后的目标值计算。"), stacklevel=4)
            obj_for_gap = cd.penalized(open_mask) - base
        else:
            obj_for_gap = obj
        gap = 0.0 if proven else _gap(obj_for_gap, lb)
        status = _status(proven, method)
        assignment = col
        if shares is not None:
            s = sp.csr_array(shares)
            obj = float(np.asarray(s.multiply(cd.csr()).sum(axis=1)).ravel() @ cd.weights)
            assignment = _largest_share(s, cd.n)
            unreach = np.flatnonzero(unserved > 1e-7) if unserved is not None else unreach
        sites = np.flatnonzero(open_mask & ~cd.fixed)
        return LocateResult(
            model=self.name, sites=sites, fixed=np.flatnonzero(cd.fixed), objective=obj,
            bound=lb, gap=gap, status=status, assignment=assignment, unreachable=unreach,
            seconds=time.perf_counter() - t0, method=used, shares=shares,
        )

    def _solve_capacitated(self, *, time_limit, method, seed, threads, t0) -> LocateResult:
        from planner.locate._cover import solve_capacitated

        cd, p = self.cd, self.p
        _check_capacity_total(cd, self.capacity, self.allowed, p)
        heur = interchange(cd, p, seed=seed, time_limit=min(1.0, 0.1 * time_limit),
                           allowed=self.allowed)
        y, shares, unserved, lb, _ = solve_capacitated(
            cd, p, self.capacity, self.allowed, open_fixed=heur,
            time_limit=time_limit, seed=seed, threads=threads)
        used, proven, lb_pen = "heuristic+transport-lp", False, _trivial_bound(cd)
        best = (heur, shares, unserved)
        if method != "heuristic":
            remaining = max(0.05, time_limit - (time.perf_counter() - t0))
            y2, sh2, un2, lb2, opt = solve_capacitated(
                cd, p, self.capacity, self.allowed, open_fixed=None, time_limit=remaining,
                seed=seed, threads=threads)
            used = "exact-capacitated"
            if y2 is not None:
                best = (y2 | cd.fixed, sh2, un2)
                proven = opt
            lb_pen = max(lb_pen, lb2)
        open_mask, shares, unserved = best
        if shares is None:
            raise LocateError("The capacitated p-median found no feasible assignment in the time "
                              "limit; raise time_limit or use method='heuristic'.")
        res = self._result(open_mask, lb_pen, proven, used, method, t0, shares=shares,
                           unserved=unserved)
        res.info["unserved_weight"] = float(np.dot(cd.weights, unserved))
        lost = np.flatnonzero((unserved > 1e-7) & cd.reachable_any() & (cd.weights > 0))
        if lost.size:
            unserved_w = float(np.dot(cd.weights, unserved))
            warnings.warn(PlannerWarning(
                f"{lost.size} demand rows (weight {unserved_w:g} "
                "unserved) reach a site only if it has room: the open sites within the cut-off "
                "are full. They are listed in `unreachable`; raise capacities, p or the cut-off.",
                f"{lost.size} 个需求单元（未服务权重 {unserved_w:g}）只在设施有余量时才能"
                "得到服务：截断时间内的已开设施均已满员。它们列在 `unreachable` 中；请提高容量、"
                "p 或截断时间。"), stacklevel=4)
        if proven:
            res.bound, res.gap = res.objective, 0.0
        return res


def _check_capacity_total(cd: CostData, cap: np.ndarray, allowed: np.ndarray, p: int) -> None:
    """Raise when even the largest sites cannot hold the demand some site reaches."""
    need = float(cd.weights[cd.reachable_any()].sum())
    top = np.sort(cap[allowed & ~cd.fixed])[::-1][:p]
    most = float(cap[cd.fixed].sum() + top.sum())
    if most < need * (1 - 1e-9) - 1e-9:
        raise LocateError(
            f"`capacity` is too small for the demand: {need:g} to serve (reachable rows), but the "
            f"{int(cd.fixed.sum())} fixed sites and the {p} largest candidates hold at most "
            f"{most:g}. Raise the capacities or p (capacity is in the weights' unit)."
        )


def _trivial_bound(cd: CostData) -> float:
    """Every row pays at least its cheapest candidate (or nearest fixed site)."""
    first = np.where(np.diff(cd.indptr) > 0, cd.data[np.minimum(cd.indptr[:-1],
                                                                max(cd.data.size - 1, 0))]
                     if cd.data.size else 0.0, cd.penalty)
    return float(np.dot(cd.weights, first))


# --------------------------------------------------------------------------- coverage models
def _coverage(cd: CostData, coverage: float) -> sp.csr_array:
    keep = cd.data <= coverage
    rows = cd.rows[keep]
    return sp.csr_array((np.ones(int(keep.sum())), (rows, cd.indices[keep])),
                        shape=(cd.n, cd.m))


class MCLP(_Model):
    """Maximal coverage: open ``p`` new sites maximising the weight within ``coverage``.

    ``coverage`` is in the cost's unit (seconds for walking-time matrices).
    Solved as a p-median over 0/1 "not covered" costs, by the same
    interchange heuristic and exact HiGHS solver.  With ``capacity`` (per
    candidate column, in the weights' unit) a site covers at most that much
    weight (demand may be split between sites); the objective is then the
    weight served within ``coverage`` and ``result.shares`` the served shares.
    """

    name = "mclp"

    def __init__(self, cd: CostData, p: int, coverage: float, *, allowed: np.ndarray,
                 capacity: np.ndarray | None = None, labels: dict | None = None):
        super().__init__(cd, allowed=allowed, capacity=capacity, labels=labels)
        self.p = self._check_p(p)
        coverage = _check_coverage(coverage)
        self.coverage = float(coverage)

    @classmethod
    def from_cost_matrix(cls, cost, *, p: int, coverage: float, weights=None, fixed=None,
                         allowed=None, capacity=None) -> MCLP:
        """As `PMedian.from_cost_matrix`; ``coverage`` is the service threshold (cost units)."""
        cd, cap, allow = _coerce(cost, weights, fixed, capacity, allowed)
        return cls(cd, p, coverage, allowed=allow, capacity=cap)

    @classmethod
    def from_geodataframes(cls, demand, candidates, network, *, p: int, coverage_min: float,
                           **kwargs) -> MCLP:
        cost, w, fixed, cap, allowed, labels = cost_from_geodataframes(
            demand, candidates, network, **kwargs)
        cd, cap, allow = _coerce(cost, w, fixed, cap, allowed)
        return cls(cd, p, coverage_min * 60.0, allowed=allow, capacity=cap, labels=labels)

    def _progress_transform(self):
        """Progress in covered weight: the solvers minimise the weight left uncovered (of the
        presolved rows; ``_uncovered_offset`` adds what no site can cover)."""
        W = float(self.cd.weights.sum())
        return lambda inc, bnd: (W - inc - self._uncovered_offset,
                                 W - bnd - self._uncovered_offset)

    _uncovered_offset = 0.0

    def _solve(self, *, time_limit, method, seed, threads, t0, rep) -> LocateResult:
        cd = self.cd
        cov = _coverage(cd, self.coverage)
        cov.sort_indices()
        heur_time = time_limit if method == "heuristic" else min(max(0.5, 0.1 * time_limit),
                                                                 time_limit)
        if self.capacity is not None:
            zero = build_cost_data(sp.csr_array((np.zeros(cov.nnz), cov.indices, cov.indptr),
                                                shape=cov.shape), weights=cd.weights,
                                   fixed=cd.fixed)
            zero.penalty = 1.0
            open_mask = interchange(zero, self.p, seed=seed, allowed=self.allowed,
                                    time_limit=heur_time)
            return self._solve_capacitated(cov, open_mask, time_limit=time_limit, method=method,
                                           seed=seed, threads=threads, t0=t0)
        from planner.locate._cover import mclp_lagrangian_bound
        from planner.locate._presolve import presolve_cover

        # merge rows with one coverage set, drop rows fixed sites cover and dominated sites
        red = presolve_cover(cov, cd.weights, fixed=cd.fixed, usable=self.allowed, mode="mclp")
        self._uncovered_offset = red.lost_weight
        W = float(cd.weights.sum())
        k = min(self.p, red.cols.size)
        chosen = np.zeros(red.cols.size, bool)
        ub_cov = W - red.lost_weight  # what every site together could cover
        solve_info: dict = {}
        proven = red.cover.shape[0] == 0 or k == 0 or k == red.cols.size
        used = "presolve" if proven else "heuristic"
        if proven:
            chosen[:k] = True
        else:
            zero = build_cost_data(sp.csr_array((np.zeros(red.cover.nnz), red.cover.indices,
                                                 red.cover.indptr), shape=red.cover.shape),
                                   weights=red.weights)
            zero.penalty = 1.0
            every = np.ones(red.cols.size, bool)
            chosen = interchange(zero, k, seed=seed, allowed=every, time_limit=heur_time)
            w_red = float(red.weights.sum())
            if rep is not None:
                rep("heuristic", zero.penalized(chosen), -np.inf)
            # the LP bound by Lagrangian relaxation (a few seconds on a city)
            lag = mclp_lagrangian_bound(red.cover, red.weights, k,
                                        w_red - zero.penalized(chosen),
                                        time_limit=min(10.0, max(0.5, 0.1 * time_limit)))
            ub_cov = min(ub_cov, red.fixed_weight + lag)
            if rep is not None:
                rep("lagrangian", zero.penalized(chosen), w_red - lag)
            proven = lag <= w_red - zero.penalized(chosen) + 1e-9 * max(1.0, w_red)
            if method != "heuristic" and not proven:
                out = solve_pmedian_exact(zero, k, incumbent=chosen,
                                          time_limit=max(0.05, time_limit - (
                                              time.perf_counter() - t0)),
                                          seed=seed, threads=threads, allowed=every, report=rep)
                chosen, proven, used = out.open_mask, out.proven, "presolve+heuristic+exact"
                ub_cov = min(ub_cov, W - red.lost_weight - out.lower_bound)
                solve_info = out.info()
        open_mask = np.zeros(cd.m, bool)
        open_mask[red.cols[chosen]] = True
        # sites beyond the useful ones (the presolve's sum y <= p): any allowed, lowest first
        spare = np.flatnonzero(self.allowed & ~open_mask)[:self.p - int(chosen.sum())]
        open_mask[spare] = True
        res = _coverage_result(self, cov, open_mask | cd.fixed, objective=None, bound=ub_cov,
                               proven=proven, used=used, method=method, t0=t0)
        res.info["presolve"] = red.stats
        res.info.update(solve_info)
        return res

    def _solve_capacitated(self, cov, heur_mask, *, time_limit, method, seed, threads, t0):
        from planner.locate._cover import solve_capacitated_cover

        cd = self.cd
        kw = dict(p=self.p, time_limit=max(0.05, time_limit - (time.perf_counter() - t0)),
                  seed=seed, threads=threads)
        y = None
        if method != "heuristic":
            y, shares, bound, proven, _ = solve_capacitated_cover(
                cov, cd.weights, self.capacity, cd.fixed, self.allowed, **kw)
            used = "exact-capacitated"
        if y is None:  # heuristic asked for, or no MIP solution in time: heuristic's sites
            kw["time_limit"] = max(0.05, time_limit - (time.perf_counter() - t0))
            y, shares, _, _, _ = solve_capacitated_cover(
                cov, cd.weights, self.capacity, cd.fixed, self.allowed,
                open_mask=heur_mask | cd.fixed, **kw)
            bound, proven, used = float(cd.weights.sum()), False, "heuristic+transport-lp"
        if y is None:
            raise LocateError("The capacitated MCLP found no assignment within the time limit; "
                              "raise time_limit.")
        return _capacitated_cover_result(self, cov, y | cd.fixed, shares, objective=None,
                                         bound=bound, proven=proven, used=used, method=method,
                                         t0=t0)


def _capacitated_cover_result(model, cov, open_mask, shares, *, objective, bound, proven, used,
                              method, t0):
    """`_coverage_result` with served shares: covered = fully served within the coverage."""
    cd = model.cd
    shares = sp.csr_array(shares.multiply(cov))  # only pairs within the coverage count
    served = np.minimum(np.asarray(shares.sum(axis=1)).ravel(), 1.0)
    got = float(np.dot(cd.weights, served))
    res = _coverage_result(model, cov, open_mask, objective=got if objective is None else objective,
                           bound=bound, proven=proven, used=used, method=method, t0=t0)
    covered = served >= 1.0 - 1e-7
    res.covered, res.assignment, res.shares = covered, _largest_share(shares, cd.n), shares
    res.unreachable = np.flatnonzero(~covered)
    res.info.update(covered_weight=got, served_share=served)
    return res


def _coverage_result(model, cov, open_mask, *, objective, bound, proven, used, method, t0):
    cd = model.cd
    hits = cov @ open_mask.astype(np.float64)
    covered = hits > 0
    uncoverable = np.flatnonzero(np.diff(cov.indptr) == 0)
    # assignment: nearest open site within coverage
    best, col = cd.nearest_open(open_mask)
    col = np.where(covered, col, -1)
    obj = float(cd.weights[covered].sum()) if objective is None else objective
    gap = 0.0 if proven else _gap(obj, bound)
    return LocateResult(
        model=model.name, sites=np.flatnonzero(open_mask & ~cd.fixed),
        fixed=np.flatnonzero(cd.fixed), objective=obj, bound=obj if proven else bound, gap=gap,
        status=_status(proven, method), assignment=col, unreachable=np.flatnonzero(~covered),
        seconds=time.perf_counter() - t0, method=used, covered=covered, uncoverable=uncoverable,
        info={"covered_weight": float(cd.weights[covered].sum()),
              "total_weight": float(cd.weights.sum())},
    )


class LSCP(_Model):
    """Set covering: the fewest new sites that put every demand row (or ``target_share``
    of the weight) within ``coverage`` of an open site.

    Rows that no candidate nor fixed site can cover are reported in
    ``result.uncoverable`` (with a `PlannerWarning`); with ``target_share`` = 1
    every coverable row is covered.
    """

    name = "lscp"

    def __init__(self, cd: CostData, coverage: float, *, target_share: float = 1.0,
                 allowed: np.ndarray, capacity: np.ndarray | None = None,
                 labels: dict | None = None):
        super().__init__(cd, allowed=allowed, capacity=capacity, labels=labels)
        coverage = _check_coverage(coverage)
        if not 0 < target_share <= 1:
            raise LocateError(f"target_share must be in (0, 1]; got {target_share!r}.")
        self.coverage = float(coverage)
        self.target_share = float(target_share)

    @classmethod
    def from_cost_matrix(cls, cost, *, coverage: float, target_share: float = 1.0, weights=None,
                         fixed=None, allowed=None, capacity=None) -> LSCP:
        """As `MCLP.from_cost_matrix`; with ``capacity`` no site covers more than its capacity
        (demand may be split between sites within the coverage)."""
        cd, cap, allow = _coerce(cost, weights, fixed, capacity, allowed)
        return cls(cd, coverage, target_share=target_share, allowed=allow, capacity=cap)

    @classmethod
    def from_geodataframes(cls, demand, candidates, network, *, coverage_min: float,
                           target_share: float = 1.0, **kwargs) -> LSCP:
        cost, w, fixed, cap, allowed, labels = cost_from_geodataframes(
            demand, candidates, network, **kwargs)
        cd, cap, allow = _coerce(cost, w, fixed, cap, allowed)
        return cls(cd, coverage_min * 60.0, target_share=target_share, allowed=allow,
                   capacity=cap, labels=labels)

    def _solve(self, *, time_limit, method, seed, threads, t0, rep) -> LocateResult:
        from planner.locate._cover import greedy_cover, solve_lscp

        cd = self.cd
        cov = _coverage(cd, self.coverage)
        w = cd.weights
        by_fixed = (cov @ cd.fixed.astype(np.float64)) > 0
        reach = (cov @ (self.allowed | cd.fixed).astype(np.float64)) > 0
        W = float(w.sum())
        fixed_w = float(w[by_fixed].sum())
        max_w = float(w[reach].sum())
        if self.target_share >= 1.0:
            need = max_w
            lost = np.flatnonzero(~reach & (w > 0))
            if lost.size:
                warnings.warn(UncoverableWarning(
                    f"{lost.size} demand rows (weight {w[lost].sum():g}) have no candidate nor "
                    f"existing site within the coverage ({self.coverage:g} in the cost's unit) "
                    "and cannot be covered; they are listed in the result's `uncoverable`. Add "
                    "candidate sites near them.",
                    f"{lost.size} 个需求单元（权重 {w[lost].sum():g}）在覆盖范围（成本单位 "
                    f"{self.coverage:g}）内既无候选点也无现有设施，无法覆盖；见结果的 "
                    "`uncoverable`。请在其附近增加候选点。"), stacklevel=3)
        else:
            need = self.target_share * W
            if need > max_w + 1e-9:
                raise LocateError(
                    f"target_share = {self.target_share:g} needs weight {need:g} covered, but "
                    f"all candidates and existing sites together cover only {max_w:g} "
                    f"({max_w / W:.1%}). Lower target_share, raise coverage or add candidates."
                )
        if self.capacity is not None:
            return self._solve_capacitated(cov, need, time_limit=time_limit, method=method,
                                           seed=seed, threads=threads, t0=t0)
        from planner.locate._presolve import presolve_cover

        # rows still to cover (not covered by fixed sites, coverable), identical rows merged,
        # implied rows (supersets, full cover) and dominated sites dropped
        full = self.target_share >= 1.0
        red = presolve_cover(cov, w, fixed=cd.fixed, usable=self.allowed,
                             mode="lscp" if full else "partial")
        sub, wt = red.cover, red.weights
        need_rest = float(wt.sum()) if full else max(0.0, need - fixed_w)
        every = np.ones(red.cols.size, bool)
        start = greedy_cover(sub, wt, need_rest, every) if sub.shape[0] else np.zeros(
            red.cols.size, bool)
        proven, used, lb = False, "greedy", 0.0
        if sub.shape[0] == 0 or need_rest <= 0:
            proven = True
        elif method != "heuristic":
            start, lb, proven = solve_lscp(
                sub, wt, need_rest, every, start=start,
                time_limit=max(0.05, time_limit - (time.perf_counter() - t0)), seed=seed,
                threads=threads, report=rep)
            used = "presolve+greedy+exact"
        open_mask = np.zeros(cd.m, bool)
        open_mask[red.cols[start]] = True
        open_mask |= cd.fixed
        k = float((open_mask & ~cd.fixed).sum())
        res = _coverage_result(self, cov, open_mask, objective=k,
                               bound=lb if not proven else k, proven=proven, used=used,
                               method=method, t0=t0)
        res.info["presolve"] = red.stats
        return res

    def _solve_capacitated(self, cov, need, *, time_limit, method, seed, threads, t0):
        """Capacitated LSCP: always the MIP (``method='heuristic'`` too)."""
        from planner.locate._cover import solve_capacitated_cover

        cd, cap = self.cd, self.capacity
        most = float(cap[self.allowed | cd.fixed].sum())
        if most < need * (1 - 1e-9) - 1e-9:
            raise LocateError(
                f"`capacity` is too small: {need:g} of weight must be covered, but every "
                f"candidate and existing site together hold only {most:g}. Raise the "
                "capacities, add candidates or lower target_share."
            )
        y, shares, lb, proven, infeasible = solve_capacitated_cover(
            cov, cd.weights, cap, cd.fixed, self.allowed, need=need,
            time_limit=max(0.05, time_limit - (time.perf_counter() - t0)), seed=seed,
            threads=threads)
        if y is None:
            if infeasible:
                raise LocateError(
                    f"`capacity`: even with every candidate open, the sites within the coverage "
                    f"({self.coverage:g} in the cost's unit) cannot hold {need:g} of weight "
                    "(some sites are full while their neighbours have no site in reach). Raise "
                    "the capacities or the coverage, add candidates or lower target_share.")
            raise LocateError("The capacitated LSCP found no feasible set of sites within the "
                              "time limit; raise time_limit.")
        k = float((y & ~cd.fixed).sum())
        return _capacitated_cover_result(self, cov, y | cd.fixed, shares, objective=k,
                                         bound=k if proven else lb, proven=proven,
                                         used="exact-capacitated", method=method, t0=t0)


# --------------------------------------------------------------------------- from layers
def cost_from_geodataframes(
    demand,
    candidates,
    network,
    *,
    weight: str | None = "pop_60plus",
    fixed=None,
    cutoff_min: float = D.CUTOFF_MIN,
    speed_mps: float | None = None,
    max_snap_m: float = D.MAX_SNAP_M,
    capacity: str | None = None,
    allowed=None,
):
    """Walking-time cost matrix (seconds, sparse under ``cutoff_min``) between two layers.

    Parameters
    ----------
    demand
        Demand points or polygons (e.g. population units) with a ``weight`` column.
    candidates
        Candidate sites (existing facilities included when they are to be fixed).
    network
        `planner.network.WalkNetwork` in the layers' metric CRS.
    weight
        Column of ``demand`` with the weights (None = 1 each).
    fixed
        Column positions or boolean mask of ``candidates`` that are existing sites,
        or the name of a boolean column.
    cutoff_min
        Pairs farther than this many minutes are unreachable.
    speed_mps
        Walking speed; default the network's.  The network's own time is used
        when it matches.
    max_snap_m
        Snap warning threshold, metres.
    capacity
        Column of ``candidates`` with capacities (weights' unit).
    allowed
        Column positions or mask of candidates that may be opened.

    Returns
    -------
    cost, weights, fixed, capacity, allowed, labels
    """
    from planner.access import cost_matrix, snap_points

    if weight is not None and weight not in demand.columns:
        raise LocateError(
            f"Demand layer has no `{weight}` column (columns: {list(demand.columns)}). "
            "Pass weight= the column holding the residents to serve, or weight=None."
        )
    if len(candidates) == 0:
        raise LocateError("The candidate layer is empty; add candidate sites (or generate them "
                          "with planner.locate.generate_candidates).")
    for col in (c for c in (fixed, capacity) if isinstance(c, str)):
        if col not in candidates.columns:
            raise LocateError(
                f"Candidate layer has no `{col}` column (columns: {list(candidates.columns)}). "
                "Pass the name of an existing column (or None)."
            )

    def numbers(layer, col, what):
        vals = pd.to_numeric(layer[col], errors="coerce")
        miss = np.flatnonzero(vals.isna().to_numpy())
        if miss.size:
            warnings.warn(PlannerWarning(
                f"{miss.size} {what} rows have no number in `{col}` (rows "
                f"{miss[:5].tolist()}); they count as 0. Fill the column to silence this.",
                f"{miss.size} 行{'需求' if what == 'demand' else '候选点'}数据的 `{col}` 没有"
                f"数值（行 {miss[:5].tolist()}），按 0 计。请补全该列。"), stacklevel=4)
        return vals.fillna(0).to_numpy(dtype=np.float64)

    w = None if weight is None else numbers(demand, weight, "demand")
    if isinstance(fixed, str):
        fixed = candidates[fixed].fillna(False).to_numpy(dtype=bool)
    cap = None if capacity is None else numbers(candidates, capacity, "candidate")
    if speed_mps is not None and abs(float(network.speed_mps) - speed_mps) > 1e-12:
        network = network.with_speed(speed_mps)
    sd = snap_points(network, demand, max_snap_m=max_snap_m, what="demand")
    sc = snap_points(network, candidates, max_snap_m=max_snap_m, what="candidates")
    cost = cost_matrix(network, sd, sc, cutoff_s=cutoff_min * 60.0)
    labels = {"demand_ids": sd.ids, "candidate_ids": sc.ids}
    return cost, w, fixed, cap, allowed, labels
