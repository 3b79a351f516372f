"""Fast interchange heuristic for the (uncapacitated) p-median problem.

Written by hand because no maintained Python library offers it: spopt and
PuLP only build MIPs, and scikit-learn-extra's k-medoids needs a dense
square matrix and has no fixed sites or sparse costs.

The method is Whitaker's fast interchange with the gain / loss / extra
bookkeeping of Resende & Werneck (2003, "A fast swap-based local search
procedure for location problems"), vectorised with NumPy over the stored
entries of a row-sorted CSR cost matrix:

* ``gain[j]``: saving of opening candidate ``j``;
* ``loss[s]``: cost of closing the site in slot ``s``;
* ``extra[s, j]``: correction for demand whose nearest site is in ``s`` and
  that ``j`` would serve better than its second nearest.

The best swap is ``argmax gain[j] - loss[s] + extra[s, j]``; after a swap
only the affected demand rows are updated.  Iterated local search
(random perturbations of the best solution, seeded) refines the
greedy + interchange start.  Missing pairs cost the model's big-M penalty.
"""

from __future__ import annotations

import time

import numpy as np

from planner.locate._data import CostData


def _gather(
    cd: CostData, rows: np.ndarray, lens: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Entry positions and their row ids for the given rows (row order kept).

    ``lens`` limits each row to its first ``lens`` entries (its cheapest ones).
    """
    starts = cd.indptr[rows]
    if lens is None:
        lens = cd.indptr[rows + 1] - starts
    total = int(lens.sum())
    if total == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    offs = np.cumsum(lens) - lens
    pos = np.repeat(starts - offs, lens) + np.arange(total)
    return pos, np.repeat(rows, lens)


class _Swap:
    """State of the interchange local search (see module docstring)."""

    def __init__(self, cd: CostData, open_mask: np.ndarray, allowed: np.ndarray):
        self.cd = cd
        self.allowed = allowed
        self.P = cd.penalty
        self.csc = cd.csc()
        self.set_solution(open_mask)

    # ---------------------------------------------------------------- state
    def set_solution(self, open_mask: np.ndarray) -> None:
        cd = self.cd
        self.open = open_mask.copy()
        cols = np.flatnonzero(self.open)
        self.slot_col = cols.copy()
        self.slot_of = np.full(cd.m, -1, dtype=np.int64)
        self.slot_of[cols] = np.arange(cols.size)
        self.movable = ~cd.fixed[cols]
        allr = np.arange(cd.n)
        self.d1 = np.full(cd.n, self.P)
        self.d2 = np.full(cd.n, self.P)
        self.c1 = np.full(cd.n, -1, dtype=np.int64)
        self.c2 = np.full(cd.n, -1, dtype=np.int64)
        self.k2 = np.diff(cd.indptr)
        self._two_nearest(allr)
        self.gain = np.zeros(cd.m)
        self.loss = np.zeros(cols.size)
        self.extra = np.zeros((cols.size, cd.m))
        self._contrib(allr, 1.0)

    def _two_nearest(self, rows: np.ndarray) -> None:
        cd = self.cd
        pos, r = _gather(cd, rows)
        keep = self.open[cd.indices[pos]]
        pos, r = pos[keep], r[keep]
        self.d1[rows] = self.P
        self.d2[rows] = self.P
        self.c1[rows] = -1
        self.c2[rows] = -1
        self.k2[rows] = cd.indptr[rows + 1] - cd.indptr[rows]
        if pos.size == 0:
            return
        first = np.empty(r.size, bool)
        first[0] = True
        np.not_equal(r[1:], r[:-1], out=first[1:])
        f = np.flatnonzero(first)
        self.d1[r[f]] = cd.data[pos[f]]
        self.c1[r[f]] = cd.indices[pos[f]]
        after_first = np.empty(r.size, bool)
        after_first[0] = False
        after_first[1:] = first[:-1]
        sec = np.flatnonzero(~first & after_first)  # entries right after a first
        self.d2[r[sec]] = cd.data[pos[sec]]
        self.c2[r[sec]] = cd.indices[pos[sec]]
        # entries cheaper than the second-nearest open site form a prefix of each row;
        # only they contribute to gain and extra
        self.k2[r[sec]] = pos[sec] - cd.indptr[r[sec]]

    def _contrib(self, rows: np.ndarray, sign: float) -> None:
        cd = self.cd
        if rows.size == 0:
            return
        pos, r = _gather(cd, rows, self.k2[rows])
        vals = cd.data[pos]
        cols = cd.indices[pos]
        w = cd.weights[r]
        d1 = self.d1[r]
        g = w * np.maximum(0.0, d1 - vals)
        self.gain += sign * np.bincount(cols, weights=g, minlength=cd.m)
        has = self.c1[rows] >= 0
        rr = rows[has]
        np.add.at(self.loss, self.slot_of[self.c1[rr]],
                  sign * cd.weights[rr] * (self.d2[rr] - self.d1[rr]))
        d2 = self.d2[r]
        sel = (vals < d2) & (self.c1[r] >= 0)
        if sel.any():
            s = self.slot_of[self.c1[r[sel]]]
            val = w[sel] * (d2[sel] - np.maximum(vals[sel], d1[sel]))
            np.add.at(self.extra, (s, cols[sel]), sign * val)

    def objective(self) -> float:
        return float(np.dot(self.cd.weights, self.d1))

    # ---------------------------------------------------------------- moves
    def best_swap(self) -> tuple[float, int, int]:
        closed = ~self.open & self.allowed
        if not closed.any() or not self.movable.any():
            return 0.0, -1, -1
        prof = self.extra + self.gain[None, :]
        prof -= self.loss[:, None]
        prof[:, ~closed] = -np.inf
        prof[~self.movable, :] = -np.inf
        k = int(np.argmax(prof))
        a, b = divmod(k, self.cd.m)
        return float(prof[a, b]), a, b

    def swap(self, slot: int, j: int) -> float:
        """Close the site in ``slot``, open ``j``; return the change of the objective."""
        r = self.slot_col[slot]
        col = self.csc
        lo, hi = col.indptr[j], col.indptr[j + 1]
        jr, jv = col.indices[lo:hi], col.data[lo:hi]
        aff = np.unique(np.concatenate([np.flatnonzero((self.c1 == r) | (self.c2 == r)),
                                        jr[jv < self.d2[jr]]]))
        before = self.d1[aff].copy()
        self._contrib(aff, -1.0)
        self.open[r] = False
        self.open[j] = True
        self.slot_of[j] = slot
        self.slot_of[r] = -1
        self.slot_col[slot] = j
        self.loss[slot] = 0.0
        self.extra[slot, :] = 0.0
        self._two_nearest(aff)
        self._contrib(aff, 1.0)
        return float(np.dot(self.cd.weights[aff], self.d1[aff] - before))

    def local_search(self, *, deadline: float, max_iter: int = 100_000) -> list[tuple[int, int]]:
        """Best-improvement swaps until none improves; returns the (slot, closed column) log."""
        tol = 1e-9 * (abs(self.objective()) + 1.0)
        log: list[tuple[int, int]] = []
        rebuilt = False
        for _ in range(max_iter):
            if time.perf_counter() > deadline:
                break
            prof, s, j = self.best_swap()
            if prof <= tol:
                break
            log.append((s, int(self.slot_col[s])))
            delta = self.swap(s, j)
            if delta < -tol:
                rebuilt = False
                continue
            # the bookkeeping drifted (the swap did not improve): rebuild it once
            if rebuilt:
                break
            self.set_solution(self.open)
            rebuilt = True
        return log

    def undo(self, log: list[tuple[int, int]]) -> None:
        for s, col in reversed(log):
            self.swap(s, col)


def greedy(cd: CostData, p: int, allowed: np.ndarray) -> np.ndarray:
    """Greedy start: open ``p`` sites one by one, each the largest saving."""
    open_mask = cd.fixed.copy()
    d1, _ = cd.nearest_open(open_mask)
    d1 = np.where(np.isfinite(d1), d1, cd.penalty)
    rows_all = cd.rows
    gain = np.bincount(cd.indices, weights=cd.weights[rows_all] * np.maximum(0.0, d1[rows_all]
                       - cd.data), minlength=cd.m)
    csc = cd.csc()
    for _ in range(p):
        g = np.where(allowed & ~open_mask, gain, -np.inf)
        j = int(np.argmax(g))
        open_mask[j] = True
        lo, hi = csc.indptr[j], csc.indptr[j + 1]
        jr, jv = csc.indices[lo:hi], csc.data[lo:hi]
        sel = jv < d1[jr]
        aff = jr[sel]
        if aff.size == 0:
            continue
        pos, r = _gather(cd, aff)
        w = cd.weights[r]
        gain -= np.bincount(cd.indices[pos], weights=w * np.maximum(0.0, d1[r] - cd.data[pos]),
                            minlength=cd.m)
        d1[aff] = jv[sel]
        gain += np.bincount(cd.indices[pos], weights=w * np.maximum(0.0, d1[r] - cd.data[pos]),
                            minlength=cd.m)
    return open_mask


def interchange(
    cd: CostData,
    p: int,
    *,
    seed: int = 0,
    time_limit: float = 10.0,
    n_perturb: int | None = None,
    allowed: np.ndarray | None = None,
    pool: list | None = None,
    start: np.ndarray | None = None,
) -> np.ndarray:
    """Greedy + fast interchange + iterated local search; returns the open mask.

    Parameters
    ----------
    cd
        The model's cost data (fixed sites open throughout).
    p
        Number of new sites.
    seed
        Seed of the perturbations (same seed, same answer).
    time_limit
        Seconds; the search stops early when reached.
    n_perturb
        Number of perturbation rounds (default ``min(40, 10 + p)``; fewer when
        time runs out).
    allowed
        Boolean mask of candidates that may be opened (default all non-fixed).
    pool
        If given, every local optimum visited is appended to it (open masks);
        the exact solver adds the cuts that are tight at them.
    start
        An open mask (fixed sites and ``p`` others) to start from instead of
        the greedy one.
    """
    t0 = time.perf_counter()
    deadline = t0 + time_limit
    if allowed is None:
        allowed = ~cd.fixed
    allowed = allowed & ~cd.fixed
    start = greedy(cd, p, allowed) if start is None else start | cd.fixed
    if p == 0 or allowed.sum() <= p:
        return start
    st = _Swap(cd, start, allowed)
    st.local_search(deadline=deadline)
    best_open = st.open.copy()
    best = st.objective()
    rng = np.random.default_rng(seed)
    rounds = n_perturb if n_perturb is not None else min(40, 10 + p)
    since_rebuild = 0
    for it in range(rounds):
        if time.perf_counter() > deadline:
            break
        closed = np.flatnonzero(allowed & ~st.open)
        slots = np.flatnonzero(st.movable)
        if closed.size == 0 or slots.size == 0:
            break
        k = int(rng.integers(1, max(2, min(p, 3 + p // 10)) + 1))
        k = min(k, slots.size, closed.size)
        out = rng.choice(slots, size=k, replace=False)
        # sites to open: drawn by their current saving (near where demand is served badly)
        # (every other round, uniformly at random, to diversify)
        if it % 2 == 0:
            g = np.maximum(st.gain[closed], 0.0) + 1e-12
            inn = rng.choice(closed, size=k, replace=False, p=g / g.sum())
        else:
            inn = rng.choice(closed, size=k, replace=False)
        log = []
        for s_, j_ in zip(out, inn):
            log.append((int(s_), int(st.slot_col[s_])))
            st.swap(int(s_), int(j_))
        log += st.local_search(deadline=deadline)
        since_rebuild += len(log)
        val = st.objective()
        if pool is not None:
            pool.append(st.open.copy())
        if val <= best + 1e-9 * (abs(best) + 1):  # equal cost accepted: moves on plateaus
            best, best_open = min(best, val), st.open.copy()
        else:
            st.undo(log)
            since_rebuild += len(log)
        if since_rebuild > 200:
            st.set_solution(best_open)
            since_rebuild = 0
    return best_open
