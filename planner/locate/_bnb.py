"""A small branch-and-cut on the open variables ``y`` of the p-median cut model.

HiGHS (1.15) offers no lazy-constraint callback, so its MIP search sees only
the cuts generated before it starts and its node bounds are weaker than the
radius formulation's.  This search re-solves the LP relaxation at every node
with the cut loop (every cut is globally valid, so cuts found at one node are
kept for all), which gives each node the full radius-formulation bound:
with few sites and tight bounds the tree stays small.

Search: best bound first (a heap on the parent's bound); branch on the most
fractional ``y`` (``y_j = 1`` and ``y_j = 0``); at each node reduced-cost
fixing of the free columns (``y_j`` at 0 with reduced cost above the gap is
fixed to 0 in the subtree, at 1 with reduced cost below minus the gap to 1);
the LP point rounded to its ``p`` largest ``y`` gives incumbents.  Any LP value
is a valid lower bound (missing cuts only relax), so a node is pruned as soon
as its LP value reaches the cut-off.  The search gives up (returning the open
nodes' bound) at the deadline or the node limit; the caller then falls back
on HiGHS's MIP.
"""

from __future__ import annotations

import heapq
import time
from dataclasses import dataclass

import highspy
import numpy as np


@dataclass
class BnbOutcome:
    ub: float
    ub_mask: np.ndarray
    lb: float
    complete: bool  # tree exhausted: ub is optimal (up to the cut-off tolerance)
    nodes: int


def branch_and_cut(h, R, cd, *, p: int, free: np.ndarray, lb_root: float, ub: float,
                   ub_mask: np.ndarray, add_cuts, deadline: float, cutoff_tol,
                   node_limit: int) -> BnbOutcome:
    """Best-first branch-and-cut; ``cutoff_tol(ub)``: prune nodes with lb >= ub - it."""
    n = cd.n
    fcols = np.flatnonzero(free)
    nf = fcols.size
    hcols = (n + fcols).astype(np.int32)
    ok = highspy.HighsModelStatus.kOptimal
    infeasible = highspy.HighsModelStatus.kInfeasible
    # a node: (bound, seq, lo, hi) with lo/hi the bounds of the free columns
    heap = [(lb_root, 0, np.zeros(nf), np.ones(nf))]
    seq = 1
    nodes = 0
    while heap:
        if heap[0][0] >= ub - cutoff_tol(ub):
            heap.clear()
            break
        if nodes >= node_limit or time.perf_counter() > deadline:
            break
        node_lb, _, lo, hi = heapq.heappop(heap)
        nodes += 1
        if lo.sum() > p + 1e-9 or hi.sum() < p - 1e-9:
            continue  # infeasible
        h.changeColsBounds(nf, hcols, lo, hi)
        pruned = False
        y = theta = None
        obj = node_lb
        while True:
            if time.perf_counter() > deadline:
                heapq.heappush(heap, (node_lb, seq, lo, hi))
                return _out(ub, ub_mask, heap, False, nodes, h, hcols, nf)
            h.setOptionValue("time_limit", max(0.01, deadline - time.perf_counter()))
            h.run()
            st = h.getModelStatus()
            if st == infeasible:
                pruned = True
                break
            if st != ok:
                heapq.heappush(heap, (node_lb, seq, lo, hi))
                return _out(ub, ub_mask, heap, False, nodes, h, hcols, nf)
            obj = max(node_lb, h.getInfo().objective_function_value + R.const)
            if obj >= ub - cutoff_tol(ub):
                pruned = True
                break
            x = np.asarray(h.getSolution().col_value)
            theta, y = x[:n], x[n:]
            c = R.separate(y, theta, tol=1e-7)
            if c is None:
                break
            add_cuts(c)
        if pruned:
            continue
        yf = y[fcols]
        frac = np.abs(yf - np.round(yf))
        # rounding: the p largest y (fixed-to-1 columns first)
        order = np.argsort(-(yf + 2.0 * lo), kind="stable")[:p]
        mask = cd.fixed.copy()
        mask[fcols[order]] = True
        val = cd.penalized(mask)
        if val < ub:
            ub, ub_mask = val, mask
        if frac.max() <= 1e-7:
            continue  # integral and no violated cut: the LP value is its true cost
        if obj >= ub - cutoff_tol(ub):
            continue
        # reduced-cost fixing within the subtree
        rc = np.asarray(h.getSolution().col_dual)[n + fcols]
        room = ub - cutoff_tol(ub) - obj
        lo, hi = lo.copy(), hi.copy()
        at0 = (yf <= 1e-9) & (hi > 0.5) & (lo < 0.5) & (rc > room)
        at1 = (yf >= 1 - 1e-9) & (lo < 0.5) & (hi > 0.5) & (-rc > room)
        hi[at0] = 0.0
        lo[at1] = 1.0
        cand = np.flatnonzero((frac > 1e-7) & (lo < 0.5) & (hi > 0.5))
        if cand.size == 0:
            heapq.heappush(heap, (obj, seq, lo, hi))
            seq += 1
            continue
        k = cand[np.argmin(np.abs(yf[cand] - 0.5), axis=0)]
        lo1 = lo.copy()
        lo1[k] = 1.0
        hi0 = hi.copy()
        hi0[k] = 0.0
        heapq.heappush(heap, (obj, seq, lo1, hi))
        heapq.heappush(heap, (obj, seq + 1, lo, hi0))
        seq += 2
    return _out(ub, ub_mask, heap, not heap, nodes, h, hcols, nf)


def _out(ub, ub_mask, heap, complete, nodes, h, hcols, nf) -> BnbOutcome:
    # restore the root bounds for whoever solves next
    h.changeColsBounds(nf, hcols, np.zeros(nf), np.ones(nf))
    if complete:
        return BnbOutcome(ub, ub_mask, ub, True, nodes)
    lb = min(e[0] for e in heap)
    return BnbOutcome(ub, ub_mask, min(lb, ub), False, nodes)
