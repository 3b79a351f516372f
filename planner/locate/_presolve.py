"""Presolve of covering models (MCLP, LSCP): merge and drop demand rows and sites.

A covering model only sees each demand row's *coverage set* (the sites
within the coverage), so a city of 1,000,000 demand points has far fewer
distinct rows: neighbouring points are covered by the same sites.  The
reductions (Lv et al., EJOR 2025, section 3; the classic set-covering
reductions of Toregas and ReVelle):

* rows with identical coverage sets merge into one row whose weight is the
  sum (exact for MCLP and LSCP, partial coverage included);
* rows covered by a fixed (existing) site are always covered: dropped, their
  weight is a constant;
* rows no usable site covers cannot be covered: dropped (a constant);
* MCLP and partial LSCP: rows of zero weight are dropped;
* full-cover LSCP: a row whose set is a strict superset of another row's
  set is implied (covering the smaller row covers it): dropped;
* a site whose rows are a subset of another usable site's rows (ties:
  the lower index is kept) is dominated: some optimum never opens it (swap
  it for the dominating site, or, where that is open already, for any
  other), so it is dropped.  For MCLP this needs ``sum y <= p`` in the
  reduced model (the caller fills up to ``p`` afterwards).

The reductions repeat until nothing changes (dropping sites can make rows
identical or dominated).  Everything is vectorised on SciPy sparse
matrices: identical rows by two 64-bit hashes of their sets, checked
exactly; dominance by chunked sparse products ``A A^T`` (the overlap
counts), which is what no library offers for this purpose.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

#: Entries of one chunk of an overlap product ``A[rows] @ A.T`` (memory bound).
_PRODUCT_ENTRIES = 20_000_000


@dataclass
class Reduced:
    """A presolved covering model.

    Attributes
    ----------
    cover
        (n_rows, n_cols) 0/1 CSR of the kept rows and columns, indices sorted.
    weights
        Weight of each kept row (sums of the merged rows).
    cols
        Original column of each kept column.
    group
        For every original row, its kept row (-1: dropped).
    fixed_weight
        Weight covered by fixed sites whatever is opened.
    lost_weight
        Weight no usable site can cover.
    stats
        What each reduction saved (counts), for reports.
    """

    cover: sp.csr_array
    weights: np.ndarray
    cols: np.ndarray
    group: np.ndarray
    fixed_weight: float
    lost_weight: float
    stats: dict = field(default_factory=dict)


def _as_binary(cover) -> sp.csr_array:
    a = sp.csr_array(cover, dtype=np.float64)
    a.eliminate_zeros()
    a = sp.csr_array((np.ones(a.nnz, np.int32), a.indices.astype(np.int32, copy=False),
                      a.indptr), shape=a.shape)
    a.sum_duplicates()
    a.sort_indices()
    return a


def unique_rows(a: sp.csr_array) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of a sorted-index CSR: (first row of each distinct set, set of every row).

    Rows are grouped by their length and two random 64-bit sum hashes of
    their columns, then checked exactly against their group's first row; a
    (very unlikely) collision is split off by exact comparison.
    """
    n, m = a.shape
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    rng = np.random.default_rng(12345)
    length = np.diff(a.indptr).astype(np.int64)
    keys = [length]
    for _ in range(2):
        r = rng.integers(1, np.iinfo(np.int64).max, m, dtype=np.uint64)
        cs = np.r_[np.uint64(0), np.cumsum(r[a.indices], dtype=np.uint64)]
        keys.append((cs[a.indptr[1:]] - cs[a.indptr[:-1]]).view(np.int64))
    order = np.lexsort(keys[::-1])
    ks = [k[order] for k in keys]
    new = np.ones(n, bool)
    new[1:] = np.any([k[1:] != k[:-1] for k in ks], axis=0)
    gid_sorted = np.cumsum(new) - 1
    first = order[new]
    gid = np.empty(n, np.int64)
    gid[order] = gid_sorted
    # exact check of every row against its group's first row
    rep = first[gid]
    cnt = length
    pos_r = np.repeat(a.indptr[:-1], cnt) + _offsets(cnt)
    pos_q = np.repeat(a.indptr[rep], cnt) + _offsets(cnt)
    bad_entry = a.indices[pos_r] != a.indices[pos_q]
    if bad_entry.any():  # hash collision: regroup the rows concerned exactly
        bad_rows = np.unique(np.repeat(np.arange(n), cnt)[bad_entry])
        seen: dict[bytes, int] = {}
        nxt = int(gid.max()) + 1
        firsts = list(first)
        for i in bad_rows:
            key = a.indices[a.indptr[i]:a.indptr[i + 1]].tobytes()
            if key not in seen:
                seen[key] = nxt
                firsts.append(i)
                nxt += 1
            gid[i] = seen[key]
        first = np.asarray(firsts, np.int64)
        used = np.unique(gid)
        remap = np.full(nxt, -1, np.int64)
        remap[used] = np.arange(used.size)
        gid = remap[gid]
        first = first[used]
    return first, gid


def _offsets(counts: np.ndarray) -> np.ndarray:
    """0..c-1 for every count c, concatenated."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    starts = np.cumsum(counts) - counts
    return np.arange(total, dtype=np.int64) - np.repeat(starts, counts)


def _chunks(work: np.ndarray, budget: int):
    """Consecutive (start, stop) ranges whose summed ``work`` stays near ``budget``."""
    n = work.size
    if n == 0:
        return
    cum = np.cumsum(work)
    start = 0
    while start < n:
        base = cum[start - 1] if start else 0
        stop = int(np.searchsorted(cum, base + budget, "right"))
        stop = max(stop, start + 1)
        yield start, min(stop, n)
        start = stop


def superset_rows(a: sp.csr_array) -> np.ndarray:
    """Mask of rows whose set strictly contains another row's set (rows are distinct).

    Overlap counts ``|N_i & N_k|`` come from ``A[chunk] @ A.T``; row ``k`` contains
    row ``i`` when the count equals ``|N_i|``.
    """
    n = a.shape[0]
    out = np.zeros(n, bool)
    if n < 2:
        return out
    at = sp.csr_array(a.T)
    colcnt = np.diff(at.indptr).astype(np.int64)
    work = np.asarray(a @ colcnt).ravel().astype(np.int64)
    length = np.diff(a.indptr)
    for r0, r1 in _chunks(work, _PRODUCT_ENTRIES):
        s = (a[r0:r1] @ at).tocoo()
        i = s.row + r0
        hit = (s.data == length[i]) & (s.col != i) & (length[i] > 0)
        out[s.col[hit]] = True
    return out


def dominated_cols(a: sp.csr_array) -> np.ndarray:
    """Mask of columns whose row set is contained in another column's set (ties: the lower
    index is kept; empty columns count as dominated when any column is non-empty)."""
    n, m = a.shape
    out = np.zeros(m, bool)
    if m < 2:
        return out
    at = sp.csr_array(a.T)
    length = np.diff(at.indptr)
    out[length == 0] = bool((length > 0).any())
    rowcnt = np.diff(a.indptr).astype(np.int64)
    work = np.asarray(at @ rowcnt).ravel().astype(np.int64)
    for c0, c1 in _chunks(work, _PRODUCT_ENTRIES):
        s = (at[c0:c1] @ a).tocoo()
        j, k = s.row + c0, s.col
        contained = (s.data == length[j]) & (k != j) & (length[j] > 0)
        strict = length[k] > length[j]
        hit = contained & (strict | (k < j))
        out[j[hit]] = True
    return out


def presolve_cover(cover, weights: np.ndarray, *, fixed: np.ndarray, usable: np.ndarray,
                   mode: str) -> Reduced:
    """Reduce a covering model.

    Parameters
    ----------
    cover
        (n, m) coverage matrix (stored non-zero entries: site covers row).
    weights
        Row weights.
    fixed
        Columns open whatever the solution (their rows are covered).
    usable
        Columns that may be opened (not fixed).
    mode
        ``"mclp"`` (maximise covered weight with at most p sites),
        ``"lscp"`` (cover every coverable row) or ``"partial"`` (cover a
        weight target).
    """
    a = _as_binary(cover)
    n, m = a.shape
    w = np.asarray(weights, np.float64)
    nnz0 = a.nnz
    by_fixed = (a @ fixed.astype(np.int32)) > 0 if fixed.any() else np.zeros(n, bool)
    ok = usable[a.indices]
    counts = np.bincount(np.repeat(np.arange(n), np.diff(a.indptr))[ok], minlength=n)
    a = sp.csr_array((a.data[ok], a.indices[ok], np.r_[0, np.cumsum(counts)]), shape=a.shape)
    reach = np.diff(a.indptr) > 0
    keep = ~by_fixed & reach
    if mode != "lscp":
        keep &= w > 0
    stats = dict(rows=n, cols=m, nnz=nnz0, rows_by_fixed=int(by_fixed.sum()),
                 rows_uncoverable=int((~by_fixed & ~reach).sum()))
    rows = np.flatnonzero(keep)
    sub = a[rows]
    cols = np.flatnonzero(usable)
    sub = sp.csr_array(sub[:, cols])
    sub.sort_indices()
    # group[i]: current row of original row i (-1: dropped)
    group = np.full(n, -1, np.int64)
    group[rows] = np.arange(rows.size)
    wr = w[rows]
    rounds = 0
    first_merge = None
    while True:
        rounds += 1
        changed = False
        first, gid = unique_rows(sub)
        if first.size < sub.shape[0]:
            changed = True
            wr = np.bincount(gid, weights=wr, minlength=first.size)
            group = np.where(group >= 0, gid[np.maximum(group, 0)], -1)
            sub = sp.csr_array(sub[first])
        if first_merge is None:
            first_merge = sub.shape[0]
        if mode == "lscp":
            sup = superset_rows(sub)
            if sup.any():
                changed = True
                kept = np.flatnonzero(~sup)
                remap = np.full(sup.size, -1, np.int64)
                remap[kept] = np.arange(kept.size)
                group = np.where(group >= 0, remap[np.maximum(group, 0)], -1)
                sub, wr = sp.csr_array(sub[kept]), wr[kept]
        dom = dominated_cols(sub)
        if dom.any():
            changed = True
            kc = np.flatnonzero(~dom)
            sub, cols = sp.csr_array(sub[:, kc]), cols[kc]
            sub.sort_indices()
        if not changed or rounds >= 20:
            break
    stats.update(rows_merged=int(first_merge), rows_kept=int(sub.shape[0]),
                 cols_kept=int(cols.size), nnz_kept=int(sub.nnz), rounds=rounds)
    fixed_w = float(w[by_fixed].sum())
    lost_w = float(w[~by_fixed & ~reach].sum())
    if mode == "lscp":
        # dropped supersets are implied: they stay "covered" through their subset row
        pass
    return Reduced(cover=sub, weights=wr, cols=cols, group=group, fixed_weight=fixed_w,
                   lost_weight=lost_w, stats=stats)
