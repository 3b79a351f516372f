"""Lagrangian relaxation of the p-median for instances too large for the LP.

At city scale (100,000 demand units x 10,000 sites, millions of reachable
pairs) a single LP of the cut model (``_exact.py``) takes minutes in HiGHS's
simplex.  The classic alternative (Cornuéjols, Fisher & Nemhauser 1977;
Beasley 1993; Avella, Sassano & Vasil'ev 2007 for large instances) relaxes
the assignment constraints ``sum_j x_ij + z_i = 1`` with multipliers ``u``:

    L(u) = sum_i u_i + sum_i min(0, w_i cap_i - u_i) + (sum of the p smallest rho_j),
    rho_j = sum_i min(0, w_i d_ij - u_i),

where ``cap_i`` is row ``i``'s cost when no new site serves it (its nearest
fixed site, or the big-M penalty).  Each evaluation is one pass over the
non-zeros (``np.bincount``), and ``max_u L(u)`` equals the LP bound of the
model (the subproblem has the integrality property).  ``u`` follows the
subgradient method with Polyak steps towards the incumbent's value, halving
the step factor when the bound stalls (Held, Wolfe & Crowder 1974).

Every ``L(u)`` is a valid lower bound.  It also fixes columns (Lagrangian
reduced-cost fixing): opening a column ``j`` outside the ``p`` chosen
raises the bound to at least ``L - rho_(p) + rho_j`` (it replaces the worst
chosen), closing a chosen one to ``L - rho_j + rho_(p+1)``; when that reaches
the incumbent's value (less the integrality tolerance), no better solution
opens (closes) ``j``.  Fixed columns leave the subproblem, which tightens the
next bounds (they then bound the solutions better than the incumbent only,
which is all the caller needs).

Budgets are counts (iterations), never time, so the phase does the same work
under any time limit it finishes within; the deadline only stops it.
Nothing here is written by hand that a library offers: no maintained Python
package implements the Lagrangian bound of the p-median over a sparse matrix.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from planner.locate._data import CostData

__all__ = ["LagrangeOutcome", "pmedian_lagrangian"]

#: Iteration budget of the subgradient method.
MAX_ITER = 3000
#: Non-improving iterations before the step factor shrinks.
PATIENCE = 80
#: Iterations between two rounds of fixing.
FIX_EVERY = 100
#: Iterations between two runs of the Lagrangian heuristic (a local search each).
POLISH_EVERY = 500


@dataclass
class LagrangeOutcome:
    """The Lagrangian phase's result (objective values on the penalized scale)."""

    #: Best bound over the solutions better than ``ub`` (``>= ub - tol``: ``ub`` is optimal).
    lb: float
    #: Columns no solution better than ``ub`` opens.
    fix0: np.ndarray
    #: Columns every solution better than ``ub`` opens.
    fix1: np.ndarray
    #: Best multipliers: ``u_i / w_i`` is row ``i``'s level (its cost in the relaxation).
    level: np.ndarray
    iterations: int
    proven: bool
    #: The incumbent at the end (the Lagrangian heuristic may have improved it).
    ub: float = np.inf
    ub_mask: np.ndarray | None = None


def pmedian_lagrangian(cd: CostData, p: int, cols: np.ndarray, ub: float, ub_mask: np.ndarray,
                       *, cutoff: Callable[[float], float], deadline: float,
                       max_iter: int | None = None,
                       enough: Callable[[np.ndarray, np.ndarray, np.ndarray], bool] | None = None,
                       polish: Callable[[np.ndarray], tuple[float, np.ndarray]] | None = None
                       ) -> LagrangeOutcome:
    """Lagrangian bound and column fixing for the p-median on ``cd``.

    ``cols``: columns that may open (not fixed); ``ub``/``ub_mask``: the
    incumbent (penalized value and open mask); ``cutoff(ub)``: a bound at or
    above it proves ``ub`` optimal (``ub`` less the integrality tolerance).
    ``polish(mask)``, when given, is the Lagrangian heuristic: a local search
    from the relaxation's chosen columns (plus the fixed ones), returning its
    value and mask; it runs at every fixing round and may lower ``ub``.
    ``enough(fix0, fix1, ub_mask)``, asked after each fixing round that fixed
    something: true stops the phase (the problem left is small enough for the
    caller's LP, which takes over; a count rule, so the same under any limit).
    """
    max_iter = MAX_ITER if max_iter is None else max_iter
    lg = _Lagrange(cd, p, cols, ub, ub_mask, cutoff, polish)
    u = lg.start_u()
    best, best_u = -np.inf, u.copy()
    lam, since, it = 2.0, 0, 0
    for it in range(1, max_iter + 1):
        if time.perf_counter() > deadline:
            break
        L, _, chosen = lg.evaluate(u)
        lg.yavg = 0.9 * lg.yavg + 0.1 * chosen  # primal recovery: averaged relaxed sites
        if L > best + 1e-12 * max(1.0, abs(best)) or not np.isfinite(best):
            best, best_u, since = L, u.copy(), 0
        else:
            since += 1
            if since >= PATIENCE:
                lam, since = lam * 0.7, 0
        if best >= cutoff(lg.ub) or lam < 1e-3:
            break
        polish_now = it % POLISH_EVERY == 0 or it == FIX_EVERY
        if it % FIX_EVERY == 0 and lg.fix(best_u, polish=polish_now):
            if enough is not None and enough(lg.fix0, lg.fix1, lg.ub_mask):
                break  # small enough for the caller's LP, which bounds better
            best = -np.inf  # the restricted bound is re-evaluated from best_u next
            u = best_u.copy()
            continue
        g = lg.subgradient(u, chosen)
        nn = float(g @ g)
        if nn == 0.0:
            break
        u = np.clip(u + lam * (lg.ub - L) / nn * g, 0.0, lg.wc)
    lg.fix(best_u, polish=time.perf_counter() < deadline)  # no local search past the deadline
    best = max(best, lg.evaluate(best_u)[0])
    w = cd.weights
    level = np.where(w > 0, best_u / np.where(w > 0, w, 1.0), 0.0)
    return LagrangeOutcome(lb=float(best), fix0=lg.fix0, fix1=lg.fix1, level=level,
                           iterations=it, proven=bool(best >= cutoff(lg.ub)), ub=lg.ub,
                           ub_mask=lg.ub_mask)


class _Lagrange:
    """The relaxation's data: entries cheaper than each row's cap over the free columns."""

    def __init__(self, cd: CostData, p: int, cols: np.ndarray, ub: float, ub_mask: np.ndarray,
                 cutoff: Callable[[float], float],
                 polish: Callable[[np.ndarray], tuple[float, np.ndarray]] | None):
        self.cd, self.p, self.cutoff, self.polish = cd, p, cutoff, polish
        self.ub, self.ub_mask = float(ub), ub_mask.copy()
        self.cap = cd.caps()
        rows = cd.rows
        keep = (cd.data < self.cap[rows]) & cols[cd.indices]
        w = cd.weights
        self.R, self.C = rows[keep], cd.indices[keep]
        self.wv = w[self.R] * cd.data[keep]
        self.wc = w * self.cap
        self.act = (np.bincount(self.R, minlength=cd.n) > 0) & (w > 0)
        self.const = float(self.wc[~self.act].sum())
        self.free = cols.copy()
        self.fix0 = np.zeros(cd.m, bool)
        self.fix1 = np.zeros(cd.m, bool)
        self.tried: set[bytes] = set()
        self.yavg = np.zeros(cd.m)

    def start_u(self) -> np.ndarray:
        """Each row at its cost under the incumbent (the bound is tight there)."""
        cd = self.cd
        d_ub, _ = cd.nearest_open(self.ub_mask)
        d_ub = np.where(np.isfinite(d_ub), d_ub, cd.penalty)
        return np.where(self.act, np.minimum(cd.weights * d_ub, self.wc), 0.0)

    def evaluate(self, u: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """``L(u)``, each column's ``rho`` and the columns the relaxation opens."""
        red = np.minimum(0.0, self.wv - u[self.R])
        rho = np.bincount(self.C, weights=red, minlength=self.cd.m)
        rho[~self.free] = np.inf
        k = self.p - int(self.fix1.sum())
        pick = self.free & ~self.fix1
        chosen = self.fix1.copy()  # forced open, plus the k smallest of the others
        if k >= int(pick.sum()):
            chosen |= pick
        elif k > 0:
            chosen[np.argpartition(np.where(pick, rho, np.inf), k)[:k]] = True
        L = self.const + float(np.minimum(u, self.wc)[self.act].sum()) + float(rho[chosen].sum())
        return L, rho, chosen

    def subgradient(self, u: np.ndarray, chosen: np.ndarray) -> np.ndarray:
        """``1 - (assignments) - (cap taken)`` per relaxed row."""
        x = (chosen[self.C] & (self.wv < u[self.R])).astype(np.float64)
        xs = np.bincount(self.R, weights=x, minlength=self.cd.n)
        return np.where(self.act, 1.0 - xs - (self.wc < u), 0.0)

    def heuristic(self, chosen: np.ndarray) -> None:
        """The Lagrangian heuristic: local search from the relaxation's sites, and from the
        ``p`` largest averaged ones (an approximate LP point, rounded)."""
        k = self.p - int(self.fix1.sum())
        pick = self.free & ~self.fix1
        top = self.fix1.copy()
        if 0 < k < int(pick.sum()):
            top[np.argpartition(-np.where(pick, self.yavg, -1.0), k)[:k]] = True
        for start in (chosen, top):
            key = np.packbits(start).tobytes()
            if key in self.tried or int(start.sum()) != self.p:
                continue
            self.tried.add(key)
            val, mask = self.polish(start | self.cd.fixed)
            if val < self.ub:
                self.ub, self.ub_mask = float(val), mask.copy()

    def fix(self, u: np.ndarray, *, polish: bool = True) -> bool:
        """The Lagrangian heuristic (with ``polish``), then fixing at ``u``: did any column
        get fixed?"""
        L, rho, chosen = self.evaluate(u)
        if polish and self.polish is not None:
            self.heuristic(chosen)
        cut = self.cutoff(self.ub)
        inside = chosen & ~self.fix1
        out = self.free & ~self.fix1 & ~chosen
        if not inside.any() or not out.any():
            return False
        # opening j instead of the worst chosen / closing j for the best outside
        new0 = out & (L - float(rho[inside].max()) + rho >= cut)
        new1 = inside & (L - rho + float(rho[out].min()) >= cut)
        self.fix0 |= new0
        self.fix1 |= new1
        self.free &= ~new0
        if new0.any():  # the closed columns' entries leave the subproblem
            k = self.free[self.C]
            self.R, self.C, self.wv = self.R[k], self.C[k], self.wv[k]
        return bool(new0.any() or new1.any())
