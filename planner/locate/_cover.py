"""Set covering (LSCP) and capacitated p-median on HiGHS, built as arrays with ``highspy``."""

from __future__ import annotations

import time

import highspy
import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from planner.locate._data import CostData
from planner.locate._highs import new_highs, set_deadline
from planner.locate._presolve import unique_rows


def _int_cols(h: highspy.Highs, lo: int, k: int) -> None:
    h.changeColsIntegrality(k, np.arange(lo, lo + k, dtype=np.int32),
                            np.full(k, highspy.HighsVarType.kInteger))


def greedy_cover(cover: sp.csr_array, w: np.ndarray, need: float, allowed: np.ndarray) -> np.ndarray:
    """Greedy set cover: open the site covering most uncovered weight until ``need`` is met,
    then drop sites whose removal keeps the target (redundancy elimination)."""
    n, m = cover.shape
    csc = cover.tocsc()
    covered = np.zeros(n, bool)
    open_mask = np.zeros(m, bool)
    got = 0.0
    while got < need - 1e-9:
        gain = csc.T @ (w * ~covered)
        gain = np.where(allowed & ~open_mask, gain, -1.0)
        j = int(np.argmax(gain))
        if gain[j] <= 0:
            break
        open_mask[j] = True
        rows = csc.indices[csc.indptr[j]:csc.indptr[j + 1]]
        covered[rows] = True
        got = float(w[covered].sum())
    for j in np.flatnonzero(open_mask)[::-1]:
        open_mask[j] = False
        cnt = cover @ open_mask.astype(np.float64)
        if float(w[cnt > 0].sum()) < need - 1e-9:
            open_mask[j] = True
    return open_mask


def solve_lscp(cover: sp.csr_array, w: np.ndarray, need: float, allowed: np.ndarray, *,
               start: np.ndarray, time_limit: float, seed: int, threads: int, report=None):
    """Fewest sites so that covered weight >= need (every row when need = total weight).

    Returns (open mask, lower bound on the number of sites, proven optimal).
    ``report`` (a `planner.locate._exact.Reporter`) hears of HiGHS's bounds.
    """
    n, m = cover.shape
    full = need >= float(w.sum()) - 1e-9
    if full:
        rows = sp.csr_array(cover)
        rows.sort_indices()
        rows = sp.csr_array(rows[unique_rows(rows)[0]])
        parts = _parts(rows, allowed)
        if len(parts) > 1:
            return _lscp_by_parts(rows, parts, allowed, start=start, time_limit=time_limit,
                                  seed=seed, threads=threads, report=report)
    inf = highspy.kHighsInf
    h = new_highs(time_limit=time_limit, seed=seed, threads=threads)
    h.setOptionValue("mip_rel_gap", 0.0)
    h.setOptionValue("mip_abs_gap", 0.5)  # objective is an integer count
    h.addVars(m, np.zeros(m), np.where(allowed, 1.0, 0.0))
    h.changeColsCost(m, np.arange(m, dtype=np.int32), np.ones(m))
    _int_cols(h, 0, m)
    if full:
        # one row per demand point (identical rows merged)
        sub = rows
        h.addRows(sub.shape[0], np.ones(sub.shape[0]), np.full(sub.shape[0], inf), sub.nnz,
                  sub.indptr[:-1].astype(np.int32), sub.indices.astype(np.int32),
                  np.ones(sub.nnz))
        u0 = np.zeros(0)
    else:
        # u_i <= sum_j a_ij y_j, sum w_i u_i >= need, u continuous in [0, 1]
        h.addVars(n, np.zeros(n), np.ones(n))
        A = sp.csr_array(cover)
        cnt = np.diff(A.indptr) + 1
        starts = np.cumsum(cnt) - cnt  # empty for no rows
        idx = np.empty(int(cnt.sum()), dtype=np.int32)
        val = np.empty(idx.size)
        idx[starts] = m + np.arange(n)
        val[starts] = 1.0
        mask = np.ones(idx.size, bool)
        mask[starts] = False
        idx[mask] = A.indices
        val[mask] = -1.0
        h.addRows(n, np.full(n, -inf), np.zeros(n), idx.size, starts.astype(np.int32), idx, val)
        h.addRow(float(need), inf, n, (m + np.arange(n)).astype(np.int32), w.astype(np.float64))
        u0 = ((cover @ start.astype(np.float64)) > 0).astype(np.float64)
    sol = highspy.HighsSolution()
    sol.col_value = np.r_[start.astype(np.float64), u0].tolist()
    sol.value_valid = True
    h.setSolution(sol)
    if report is not None:
        report("greedy", float(start.sum()), -np.inf)
        report.watch(h)
    h.run()
    info = h.getInfo()
    st = h.getModelStatus()
    best = start
    if info.primal_solution_status == 2:
        x = np.asarray(h.getSolution().col_value)[:m] > 0.5
        if x.sum() <= start.sum():
            best = x
    lb = float(np.ceil(info.mip_dual_bound - 1e-6)) if np.isfinite(info.mip_dual_bound) else 0.0
    return best, lb, st == highspy.HighsModelStatus.kOptimal


def _parts(rows: sp.csr_array, allowed: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """The independent parts of a set covering: connected components of the graph
    joining each row to the allowed columns that cover it, as (rows, columns).

    A city's reduced LSCP falls apart into rows only one site covers (that site
    opens) and a few large blocks; a province's into its districts at least.
    One empty list when some row has no allowed column (the model is then
    infeasible as a whole and is left to HiGHS to say so).
    """
    n, m = rows.shape
    a = sp.csr_array((np.ones(rows.nnz), rows.indices, rows.indptr), shape=rows.shape)
    a = sp.csr_array(a[:, np.flatnonzero(allowed)])
    if n == 0 or (np.diff(a.indptr) == 0).any():
        return []
    cols = np.flatnonzero(allowed)
    g = sp.bmat([[None, a], [a.T, None]], format="csr")
    k, label = connected_components(g, directed=False)
    row_lab, col_lab = label[:n], label[n:]
    used = np.unique(row_lab)  # columns that cover no row form parts of their own: dropped
    r_order, c_order = np.argsort(row_lab, kind="stable"), np.argsort(col_lab, kind="stable")
    r_lo, r_cut = (np.searchsorted(row_lab[r_order], used, side=s) for s in ("left", "right"))
    c_lo, c_cut = (np.searchsorted(col_lab[c_order], used, side=s) for s in ("left", "right"))
    return [(r_order[r_lo[i]:r_cut[i]], cols[c_order[c_lo[i]:c_cut[i]]])
            for i in range(used.size)]


def _lscp_by_parts(rows: sp.csr_array, parts, allowed: np.ndarray, *, start: np.ndarray,
                   time_limit: float, seed: int, threads: int, report=None):
    """`solve_lscp` (every row covered) part by part (`_parts`).

    The optimum is the union of the parts' optima and the bound the sum of
    their bounds.  One MIP over all parts closes its gap only when every part's
    does at once; part by part, each is proven on its own.  A part with one
    column opens it.  Parts run smallest first; each may use its share (by
    entries) of the time left, and what it leaves passes on.
    """
    m = rows.shape[1]
    t_end = time.perf_counter() + time_limit
    best = np.zeros(m, bool)
    lb_total, all_proven = 0.0, True
    row_nnz = np.diff(rows.indptr)
    nnz = np.array([row_nnz[r].sum() for r, _ in parts], dtype=np.float64)
    order = np.argsort(nnz, kind="stable")
    left = float(nnz.sum())
    pending = float(start.sum())  # sites of the parts not solved yet: the start's
    if report is not None:
        report("greedy", pending, -np.inf)
    for i in order:
        r, c = parts[i]
        share = nnz[i] / left if left > 0 else 1.0
        left -= nnz[i]
        pending -= float(start[c].sum())
        if c.size == 1:
            best[c] = True
            lb_total += 1.0
        else:
            sub = sp.csr_array(rows[r][:, c])
            budget = max(0.05, (t_end - time.perf_counter()) * share)
            x, lb, proven = solve_lscp(sub, np.ones(r.size), float(r.size), np.ones(c.size, bool),
                                       start=start[c], time_limit=budget, seed=seed,
                                       threads=threads)
            best[c[x]] = True
            lb_total += lb
            all_proven &= proven
        if report is not None:
            report("parts", float(best.sum()) + pending, lb_total)
    return best, lb_total, all_proven


def solve_capacitated(cd: CostData, p: int, capacity: np.ndarray, allowed: np.ndarray, *,
                      open_fixed: np.ndarray | None, time_limit: float, seed: int, threads: int):
    """Capacitated p-median (demand may be split between sites) on the reachable pairs.

    Variables: ``x_e`` in [0, 1] for each stored pair (share of row i served by
    site j), ``u_i`` in [0, 1] unserved share (cost ``w_i`` x big-M), ``y_j``.
    ``sum_e x_e + u_i = 1``; ``sum_i w_i x_ij <= cap_j y_j``; ``x_ij <= y_j``;
    ``sum_new y = p``.  With ``open_fixed`` given, ``y`` is fixed to it (the
    transportation problem of a heuristic).

    Returns (open mask, shares as CSR (n x m), unserved share per row, lower bound
    on the penalized objective, proven optimal).
    """
    n, m = cd.n, cd.m
    # a capacity above the total weight never binds; HiGHS treats entries >= 1e15 as infinite
    capacity = np.minimum(capacity, float(cd.weights.sum()) + 1.0)
    t_end = time.perf_counter() + time_limit
    rows = cd.rows
    E = cd.data.size
    w = cd.weights
    inf = highspy.kHighsInf
    h = new_highs(time_limit=time_limit, seed=seed, threads=threads)
    h.setOptionValue("mip_rel_gap", 0.0)
    h.setOptionValue("mip_abs_gap", 1e-6)
    # columns: x (E), u (n), y (m)
    h.addVars(E, np.zeros(E), np.ones(E))
    h.addVars(n, np.zeros(n), np.ones(n))
    if open_fixed is not None:
        ylo = yhi = open_fixed.astype(np.float64)
    else:
        ylo = cd.fixed.astype(np.float64)
        yhi = np.where(allowed | cd.fixed, 1.0, 0.0)
    h.addVars(m, ylo, yhi)
    cost = np.r_[w[rows] * cd.data, w * cd.penalty, np.zeros(m)]
    h.changeColsCost(E + n + m, np.arange(E + n + m, dtype=np.int32), cost)
    # assignment rows: sum_e x_e + u_i = 1
    A = sp.csr_array((np.ones(E + n), (np.r_[rows, np.arange(n)], np.r_[np.arange(E),
                      E + np.arange(n)])), shape=(n, E + n + m))
    # capacity rows: sum_i w_i x_ij - cap_j y_j <= 0
    C = sp.csr_array((np.r_[w[rows], -capacity], (np.r_[cd.indices, np.arange(m)],
                      np.r_[np.arange(E), E + n + np.arange(m)])), shape=(m, E + n + m))
    # linking rows: x_e - y_j <= 0
    L = sp.csr_array((np.r_[np.ones(E), -np.ones(E)], (np.r_[np.arange(E), np.arange(E)],
                      np.r_[np.arange(E), E + n + cd.indices])), shape=(E, E + n + m))
    M = sp.vstack([A, C, L]).tocsr()
    M.sort_indices()
    lo = np.r_[np.ones(n), np.full(m, -inf), np.full(E, -inf)]
    hi = np.r_[np.ones(n), np.zeros(m), np.zeros(E)]
    h.addRows(M.shape[0], lo, hi, M.nnz, M.indptr[:-1].astype(np.int32),
              M.indices.astype(np.int32), M.data)
    newcols = np.flatnonzero(~cd.fixed)
    if open_fixed is None:
        h.addRow(float(p), float(p), newcols.size, (E + n + newcols).astype(np.int32),
                 np.ones(newcols.size))
        _int_cols(h, E + n, m)
    set_deadline(h, t_end)
    h.run()
    info = h.getInfo()
    st = h.getModelStatus()
    if info.primal_solution_status != 2:
        return None, None, None, -np.inf, False
    x = np.asarray(h.getSolution().col_value)
    shares = sp.csr_array((x[:E], cd.indices, cd.indptr), shape=(n, m))
    unserved = x[E:E + n]
    ymask = x[E + n:] > 0.5
    lb = info.mip_dual_bound if open_fixed is None else info.objective_function_value
    return ymask, shares, unserved, float(lb), st == highspy.HighsModelStatus.kOptimal


def solve_capacitated_cover(cover: sp.csr_array, w: np.ndarray, capacity: np.ndarray,
                            fixed: np.ndarray, allowed: np.ndarray, *, p: int | None = None,
                            need: float | None = None, open_mask: np.ndarray | None = None,
                            time_limit: float, seed: int, threads: int):
    """Capacitated MCLP (``p`` given) or LSCP (``need`` given) on the covering pairs.

    ``x_e`` in [0, 1] is the share of row i served by site j within the
    coverage (demand may be split), ``y_j`` opens site j.  Rows:
    ``sum_j x_ij <= 1`` (``= 1`` for every coverable row when LSCP asks for
    full coverage), ``sum_i w_i x_ij <= cap_j y_j``, ``x_ij <= y_j``.
    MCLP: ``sum_new y = p``, maximise ``sum w_i x_ij``.  LSCP: minimise
    ``sum_new y`` with ``sum w_i x_ij >= need``.  With ``open_mask`` the
    sites are fixed (the transportation LP of a heuristic's sites).

    Returns (open mask, shares CSR (n x m), bound, proven, infeasible).
    """
    n, m = cover.shape
    capacity = np.minimum(capacity, float(w.sum()) + 1.0)  # see solve_capacitated
    usable = allowed | fixed
    A = sp.csr_array(cover)
    A = sp.csr_array(A.multiply(usable[None, :].astype(np.float64)))
    A.eliminate_zeros()
    A.sort_indices()
    E = A.nnz
    rows = np.repeat(np.arange(n), np.diff(A.indptr))
    cols = A.indices.astype(np.int64)
    inf = highspy.kHighsInf
    h = new_highs(time_limit=time_limit, seed=seed, threads=threads)
    h.setOptionValue("mip_rel_gap", 0.0)
    h.setOptionValue("mip_abs_gap", 1e-6 if p is not None else 0.5)
    h.addVars(E, np.zeros(E), np.ones(E))
    if open_mask is not None:
        ylo = yhi = open_mask.astype(np.float64)
    else:
        ylo, yhi = fixed.astype(np.float64), usable.astype(np.float64)
    h.addVars(m, ylo, yhi)
    new = (~fixed).astype(np.float64)
    cost = np.r_[-w[rows], np.zeros(m)] if p is not None else np.r_[np.zeros(E), new]
    h.changeColsCost(E + m, np.arange(E + m, dtype=np.int32), cost.astype(np.float64))
    full = p is None and need is not None and need >= float(w[np.diff(A.indptr) > 0].sum()) - 1e-9
    R = sp.csr_array((np.ones(E), (rows, np.arange(E))), shape=(n, E + m))
    C = sp.csr_array((np.r_[w[rows], -capacity], (np.r_[cols, np.arange(m)],
                      np.r_[np.arange(E), E + np.arange(m)])), shape=(m, E + m))
    L = sp.csr_array((np.r_[np.ones(E), -np.ones(E)], (np.r_[np.arange(E), np.arange(E)],
                      np.r_[np.arange(E), E + cols])), shape=(E, E + m))
    M = sp.vstack([R, C, L]).tocsr()
    M.sort_indices()
    coverable = np.diff(A.indptr) > 0
    rlo = np.where(coverable, 1.0, 0.0) if full else np.full(n, -inf)
    lo = np.r_[rlo, np.full(m + E, -inf)]
    hi = np.r_[np.ones(n), np.zeros(m + E)]
    h.addRows(M.shape[0], lo, hi, M.nnz, M.indptr[:-1].astype(np.int32),
              M.indices.astype(np.int32), M.data)
    newcols = np.flatnonzero(~fixed).astype(np.int32)
    if open_mask is None and p is not None:
        h.addRow(float(p), float(p), newcols.size, E + newcols, np.ones(newcols.size))
    if p is None and not full:
        h.addRow(float(need), inf, E, np.arange(E, dtype=np.int32), w[rows].astype(np.float64))
    if open_mask is None:
        _int_cols(h, E, m)
    h.run()
    info = h.getInfo()
    st = h.getModelStatus()
    infeasible = st == highspy.HighsModelStatus.kInfeasible
    if info.primal_solution_status != 2:
        return None, None, np.nan, False, infeasible
    x = np.asarray(h.getSolution().col_value)
    shares = sp.csr_array((np.clip(x[:E], 0.0, 1.0), A.indices, A.indptr), shape=(n, m))
    y = x[E:] > 0.5
    if open_mask is not None:
        bound = -info.objective_function_value if p is not None else float(y[~fixed].sum())
    else:
        db = info.mip_dual_bound
        bound = (-db if p is not None else float(np.ceil(db - 1e-6))) if np.isfinite(db) \
            else (float(w.sum()) if p is not None else 0.0)
    return y, shares, float(bound), st == highspy.HighsModelStatus.kOptimal, infeasible


def mclp_lagrangian_bound(cover: sp.csr_array, w: np.ndarray, k: int, lower: float, *,
                          time_limit: float, max_iter: int = 2000) -> float:
    """Upper bound on the weight ``k`` sites can cover, by Lagrangian relaxation.

    Relaxing ``z_i <= (A y)_i`` with multipliers ``0 <= u_i <= w_i`` leaves
    ``L(u) = sum_i (w_i - u_i) + (sum of the k largest (A^T u)_j)``, an upper
    bound for every such ``u`` (``z_i <= 1``, ``z_i <= (A y)_i``); its minimum
    is the LP bound (the bound the Benders cuts of Cordeau, Furini and Ljubic,
    EJOR 2019, converge to).  Minimised by projected subgradient steps (Polyak
    steps towards ``lower``, a covered weight some solution reaches) for at
    most ``time_limit`` seconds; any iterate's value is valid, the best is
    returned.  Hand-written: the rows never enter an LP, so a city's 10^5
    merged rows cost one sparse product per step.
    """
    A = sp.csr_array(cover, dtype=np.float64)
    At = sp.csr_array(A.T)
    m = A.shape[1]
    k = min(int(k), m)
    if A.shape[0] == 0:
        return 0.0
    t_end = time.perf_counter() + time_limit
    u = w.astype(np.float64).copy()
    best = np.inf
    lam, stall = 1.0, 0
    for _ in range(max_iter):
        c = At @ u
        top = np.argpartition(-c, k - 1)[:k] if 0 < k < m else np.arange(m if k else 0)
        val = float((w - u).sum() + c[top].sum())
        if val < best and (best == np.inf or best - val > 1e-9 * max(1.0, abs(best))):
            best, stall = val, 0
        else:
            stall += 1
            if stall >= 15:
                lam, stall = lam / 2, 0
        if best - lower <= 1e-9 * max(1.0, abs(lower)) or lam < 1e-4 \
                or time.perf_counter() > t_end:
            break
        y = np.zeros(m)
        y[top] = 1.0
        g = (A @ y) - 1.0
        g = np.where((u <= 0) & (g > 0), 0.0, g)  # steps that the box cuts off
        g = np.where((u >= w) & (g < 0), 0.0, g)
        nrm = float(g @ g)
        if nrm == 0:
            break
        u = np.clip(u - lam * (val - lower) / nrm * g, 0.0, w)
    return best
