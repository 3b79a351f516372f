"""A small branch-and-cut on the open variables ``y`` of the p-median cut model.

HiGHS (1.15) offers no lazy-constraint callback, so its MIP search sees only
the cuts generated before it starts and its node bounds are weaker than the
radius formulation's.  This search solves the LP relaxation at every node
and separates its point (every cut is globally valid, so cuts found at one
node are kept for all).  A fractional point is branched on at once, its
violated cuts going to the children (one LP per node: the cuts accumulate
down the tree, and a second round at the node costs more than it prunes on
the OR-Library family); an integral point is separated until no cut is
violated, so its LP value is its true cost.

Search: best bound first (a heap on the parent's bound) with dives: after
branching, the child ``y_j = 0`` (whose bound moves least) is solved next,
straight from the parent's LP state (no basis to set), and the child
``y_j = 1`` goes on the heap.  Branching: pseudo-costs (the bound's gain per
unit of change, learnt from every child solved; unknown ones take the mean),
the largest product of the two children's estimated gains.  At each node
reduced-cost fixing of the free columns (``y_j`` at 0 with reduced cost above
the gap is fixed to 0 in the subtree, at 1 with reduced cost below minus the
gap to 1); the LP point rounded to its ``p`` largest ``y`` gives incumbents
(each rounding evaluated once).  Heap nodes start from the parent's final
basis (``setBasis``; cuts added since enter as basic slacks), which halves
the dual simplex iterations per node against starting from whichever node
was solved last.  Any LP value is a valid lower bound (missing cuts only
relax), so a node is pruned as soon as its LP value reaches the cut-off; the
dual simplex is told the cut-off (``objective_bound``) and stops there.  Every
`_PURGE_EVERY` nodes the cuts slack at the last `_PURGE_AGE` nodes solved (and
basic in every stored basis, so each basis stays a basis) leave the LP: a dual
simplex run costs in proportion to the LP's rows, and a cut dropped is found
again by the separation wherever it is violated (or:800:5 4.6 s instead of
5.6 s; the extra iterations cost less than the rows saved).  The
search gives up (returning the open nodes' bound) at the deadline or the node
limit; the caller then falls back on HiGHS's MIP.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import highspy
import numpy as np

from planner.locate._highs import set_deadline

__all__ = ["BnbOutcome", "branch_and_cut"]

#: Cut purging: every `_PURGE_EVERY` nodes, cuts slack at the last `_PURGE_AGE` nodes
#: solved (and basic in every stored basis) leave the LP.
_PURGE_EVERY = 10
_PURGE_AGE = 10
_PURGE_MIN = 50

_STATUS = list(highspy.HighsBasisStatus.__members__.values())
_BASIC = int(highspy.HighsBasisStatus.kBasic)


class _Basis:
    """A node's final basis: HiGHS's object and its row statuses as integers (for purging)."""

    def __init__(self, hb) -> None:
        self.hb = hb
        self.rows = np.fromiter(map(int, hb.row_status), dtype=np.int8)

    def delete(self, gone: np.ndarray) -> None:
        """Drop the rows ``gone`` (a mask over the LP's rows before the deletion)."""
        k = self.rows.size
        self.rows = self.rows[~gone[:k]]


@dataclass
class BnbOutcome:
    ub: float
    ub_mask: np.ndarray
    lb: float
    complete: bool  # tree exhausted: ub is optimal (up to the cut-off tolerance)
    nodes: int


def branch_and_cut(h, R, cd, *, p: int, free: np.ndarray, lb_root: float, ub: float,
                   ub_mask: np.ndarray, add_cuts, deadline: float, cutoff_tol,
                   node_limit: int, work=None, delete_cuts=None,
                   on_node: Callable[[int, float, float], None] | None = None) -> BnbOutcome:
    """Best-first branch-and-cut; ``cutoff_tol(ub)``: prune nodes with lb >= ub - it.

    ``on_node(nodes, bound, incumbent)`` is called as each node is taken.
    """
    s = _Search(h, R, cd, p=p, fcols=np.flatnonzero(free), add_cuts=add_cuts,
                deadline=deadline, cutoff_tol=cutoff_tol, ub=ub, ub_mask=ub_mask, work=work,
                delete_cuts=delete_cuts)
    # a node: (bound, seq, lo, hi) with lo/hi the bounds of the free columns
    s.heap.append((lb_root, 0, np.zeros(s.nf), np.ones(s.nf), None, None))
    dive = None
    while s.heap or dive is not None:
        if dive is None and s.heap[0][0] >= s.cutoff():
            s.heap.clear()
            break
        if s.nodes >= node_limit or time.perf_counter() > deadline:
            if dive is not None:
                s.push(*dive)
            break
        if s.nodes % _PURGE_EVERY == 0 and s.nodes:
            s.purge(dive)
        if dive is not None:
            (node_lb, lo, hi, basis, br), dive = dive, None
        else:
            node_lb, _, lo, hi, basis, br = heapq.heappop(s.heap)
        s.nodes += 1
        if work is not None:
            work.nodes += 1
        if on_node is not None:
            on_node(s.nodes, node_lb, s.ub)
        if lo.sum() > p + 1e-9 or hi.sum() < p - 1e-9:
            continue  # infeasible
        status, obj, y = s.solve_node(node_lb, lo, hi, basis, br)
        if status == "stopped":
            return s.outcome(complete=False)
        s.learn(br, status, obj)
        if status == "solved":
            dive = s.branch(obj, y, lo, hi)
    return s.outcome(complete=not s.heap)


def _fractional(y: np.ndarray) -> bool:
    return bool((np.abs(y - np.round(y)) > 1e-7).any())


@dataclass
class _Search:
    """State of one search: the LP ``h``, its free ``y`` columns, incumbent and open nodes."""

    h: Any
    R: Any
    cd: Any
    p: int
    #: Indices (into ``y``) of the free columns.
    fcols: np.ndarray
    add_cuts: Callable
    deadline: float
    cutoff_tol: Callable[[float], float]
    ub: float
    ub_mask: np.ndarray
    work: Any = None
    heap: list = field(default_factory=list)
    seq: int = 1
    nodes: int = 0
    #: Rounded LP points already evaluated (packed masks).
    rounded: set = field(default_factory=set)
    #: Pseudo-costs: [down, up][sum of gains per unit, count][free column].
    pc: np.ndarray = None
    #: The last node's reduced costs (free columns) and basis, at the point it branches on.
    node_rc: np.ndarray = None
    node_basis: Any = None
    #: ``delete_cuts(rows)``: removes LP rows (cuts) by index; None: no purging.
    delete_cuts: Callable | None = None
    #: Nodes since each LP row was last binding.
    age: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __post_init__(self) -> None:
        self.pc = np.zeros((2, 2, self.nf))

    @property
    def nf(self) -> int:
        return self.fcols.size

    @property
    def hcols(self) -> np.ndarray:
        """HiGHS columns of the free ``y``."""
        return (self.cd.n + self.fcols).astype(np.int32)

    def cutoff(self) -> float:
        """Nodes whose bound reaches this are pruned."""
        return self.ub - self.cutoff_tol(self.ub)

    def push(self, bound: float, lo: np.ndarray, hi: np.ndarray, basis=None, br=None) -> None:
        heapq.heappush(self.heap, (bound, self.seq, lo, hi, basis, br))
        self.seq += 1

    def learn(self, br, status: str, obj: float) -> None:
        """Pseudo-costs: the bound's gain per unit of change of the branched variable."""
        if br is None or status not in ("solved", "pruned"):
            return
        k, up, dist, parent = br
        gain = max(obj if status == "solved" else max(obj, self.cutoff()), parent) - parent
        self.pc[int(up), 0, k] += gain / max(dist, 1e-6)
        self.pc[int(up), 1, k] += 1

    def pick(self, yf: np.ndarray, cand: np.ndarray) -> int:
        """The branching column among ``cand``: the best product of pseudo-cost gains."""
        f = yf[cand]
        est = []
        for d in (0, 1):
            s_, c_ = self.pc[d, 0], self.pc[d, 1]
            known = c_ > 0
            avg = s_[known].sum() / c_[known].sum() if known.any() else 1.0
            per = np.where(known, s_ / np.maximum(c_, 1), avg)[cand]
            est.append(per * (f if d == 0 else 1.0 - f))
        score = np.maximum(est[0], 1e-6) * np.maximum(est[1], 1e-6)
        return cand[np.argmax(score)]

    def solve_node(self, node_lb: float, lo: np.ndarray, hi: np.ndarray, basis=None, br=None
                   ) -> tuple[str, float, np.ndarray | None]:
        """The cut loop at one node: (status, LP value, LP ``y``).

        Status ``"pruned"`` (infeasible or bound at the cut-off), ``"stopped"``
        (deadline or a failed LP; the node is back on the heap) or
        ``"solved"`` (a fractional LP point, or an integral one with no violated cut).
        """
        h, n = self.h, self.cd.n
        h.changeColsBounds(self.nf, self.hcols, lo, hi)
        if basis is not None:
            self.set_basis(basis)
        y = None
        obj = node_lb
        while True:
            if time.perf_counter() > self.deadline:
                self.push(node_lb, lo, hi, basis, br)
                return "stopped", obj, y
            set_deadline(h, self.deadline)
            # the dual simplex stops once its (valid) bound passes the cut-off: pruned
            h.setOptionValue("objective_bound", self.cutoff() - self.R.const)
            h.run()
            if self.work is not None:
                self.work.lp_runs += 1
            st = h.getModelStatus()
            if st == highspy.HighsModelStatus.kInfeasible:
                return "pruned", obj, y
            if st == highspy.HighsModelStatus.kObjectiveBound:
                return "pruned", max(obj, self.cutoff()), y
            if st != highspy.HighsModelStatus.kOptimal:
                self.push(node_lb, lo, hi, basis, br)
                return "stopped", obj, y
            obj = max(node_lb, h.getInfo().objective_function_value + self.R.const)
            if obj >= self.cutoff():
                return "pruned", obj, y
            x = np.asarray(h.getSolution().col_value)
            theta, y = x[:n], x[n:]
            c = self.R.separate(y, theta, tol=1e-7)
            if c is None or _fractional(y[self.fcols]):
                # one LP per node unless integral: a fractional point is branched on at
                # once (its reduced costs and basis); its violated cuts join the LP for
                # the children, and an integral one is separated until it is its true cost
                self.node_rc = np.asarray(h.getSolution().col_dual)[n + self.fcols]
                self.node_basis = _Basis(h.getBasis())
                self.age_rows(self.node_basis)
                if c is not None:
                    self.add_cuts(c)
                return "solved", obj, y
            self.add_cuts(c)

    def branch(self, obj: float, y: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None:
        """Round the node's LP point to an incumbent, fix by reduced cost and branch."""
        fcols = self.fcols
        yf = y[fcols]
        frac = np.abs(yf - np.round(yf))
        # rounding: the p largest y (fixed-to-1 columns first)
        order = np.argsort(-(yf + 2.0 * lo), kind="stable")[:self.p]
        mask = self.cd.fixed.copy()
        mask[fcols[order]] = True
        key = np.packbits(mask).tobytes()
        if key not in self.rounded:  # nodes near each other round alike: evaluate each once
            self.rounded.add(key)
            val = self.cd.penalized(mask)
            if val < self.ub:
                self.ub, self.ub_mask = val, mask
        if frac.max() <= 1e-7:
            return None  # integral and no violated cut: the LP value is its true cost
        if obj >= self.cutoff():
            return None
        lo, hi = self.fix_by_reduced_cost(obj, yf, lo, hi)
        cand = np.flatnonzero((frac > 1e-7) & (lo < 0.5) & (hi > 0.5))
        if cand.size == 0:
            self.push(obj, lo, hi, self.node_basis)
            return None
        k = self.pick(yf, cand)
        # both children start from this node's final basis (one bound away from optimal)
        basis = self.node_basis
        lo1 = lo.copy()
        lo1[k] = 1.0
        hi0 = hi.copy()
        hi0[k] = 0.0
        self.push(obj, lo1, hi, basis, (k, True, 1.0 - yf[k], obj))
        # dive into y_k = 0 (its bound moves least): the LP goes on from this node's
        # state (hot, no basis to set)
        return obj, lo, hi0, None, (k, False, yf[k], obj)

    def fix_by_reduced_cost(self, obj: float, yf: np.ndarray, lo: np.ndarray, hi: np.ndarray
                            ) -> tuple[np.ndarray, np.ndarray]:
        """New bounds of the free columns for the subtree, fixed by reduced cost."""
        rc = self.node_rc
        room = self.cutoff() - obj
        lo, hi = lo.copy(), hi.copy()
        at0 = (yf <= 1e-9) & (hi > 0.5) & (lo < 0.5) & (rc > room)
        at1 = (yf >= 1 - 1e-9) & (lo < 0.5) & (hi > 0.5) & (-rc > room)
        hi[at0] = 0.0
        lo[at1] = 1.0
        return lo, hi

    def set_basis(self, basis: _Basis) -> None:
        """Start from a node's parent basis; cuts added since are basic (slack)."""
        nr = self.h.getNumRow()
        extra = max(nr - basis.rows.size, 0)
        st = _STATUS
        basis.hb.row_status = [st[i] for i in basis.rows] + [st[_BASIC]] * extra
        self.h.setBasis(basis.hb)

    def age_rows(self, basis: _Basis) -> None:
        """Cuts nonbasic (binding) at this node are young again; the others age."""
        nr = basis.rows.size
        if self.age.size < nr:
            self.age = np.r_[self.age, np.zeros(nr - self.age.size, dtype=np.int64)]
        self.age[:nr] += 1
        self.age[:nr][basis.rows != _BASIC] = 0

    def purge(self, dive) -> None:
        """Delete the cuts slack for `_PURGE_AGE` nodes and basic in every stored basis.

        Each cut is valid everywhere, so a cut deleted here is found again by the
        separation where it is violated; the LP stays small (each dual simplex run
        costs in proportion to the rows it holds).
        """
        if self.delete_cuts is None:
            return
        nr = self.h.getNumRow()
        gone = np.zeros(nr, dtype=bool)
        k = min(self.age.size, nr)
        gone[:k] = self.age[:k] >= _PURGE_AGE
        gone[0] = False  # sum(y) = p
        bases = {id(e[4]): e[4] for e in self.heap if e[4] is not None}
        if dive is not None and dive[3] is not None:
            bases[id(dive[3])] = dive[3]
        if self.node_basis is not None:
            bases[id(self.node_basis)] = self.node_basis
        for b in [*bases.values(), _Basis(self.h.getBasis())]:  # and the LP's own
            gone[:b.rows.size] &= b.rows == _BASIC
        if gone.sum() < _PURGE_MIN:
            return
        self.delete_cuts(np.flatnonzero(gone))
        for b in bases.values():
            b.delete(gone)
        self.age = self.age[~gone[:self.age.size]]

    def outcome(self, *, complete: bool) -> BnbOutcome:
        # restore the root bounds (and no cut-off) for whoever solves next
        self.h.setOptionValue("objective_bound", highspy.kHighsInf)
        self.h.changeColsBounds(self.nf, self.hcols, np.zeros(self.nf), np.ones(self.nf))
        if complete:
            return BnbOutcome(self.ub, self.ub_mask, self.ub, True, self.nodes)
        lb = min(e[0] for e in self.heap)
        return BnbOutcome(self.ub, self.ub_mask, min(lb, self.ub), False, self.nodes)
