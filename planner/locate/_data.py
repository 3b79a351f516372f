"""Cost data shared by every location model and solver.

Every model keeps its costs as one CSR matrix (n_demand x n_candidate) whose
stored entries are the *reachable* pairs (explicit zeros included) and whose
rows are sorted by cost.  Dense input turns ``inf`` into "not stored".
Solvers treat a missing pair as a big-M penalty internally; results never
report that penalty as a cost.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from planner._errors import LocateError


@dataclass
class CostData:
    """Row-sorted sparse costs, weights and fixed sites of one model.

    Attributes
    ----------
    indptr, indices, data
        CSR arrays, each row sorted by cost (ascending).
    n, m
        Number of demand points and candidate sites.
    weights
        Demand weights (length n), non-negative.
    fixed
        Boolean mask (length m) of candidate columns that are open already.
    penalty
        Internal cost of an unreachable demand point (big-M): ten times the
        largest stored cost plus one.
    """

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    n: int
    m: int
    weights: np.ndarray
    fixed: np.ndarray
    penalty: float

    @property
    def rows(self) -> np.ndarray:
        """Row index of every stored entry."""
        return np.repeat(np.arange(self.n), np.diff(self.indptr))

    def csr(self) -> sp.csr_array:
        return sp.csr_array((self.data, self.indices, self.indptr), shape=(self.n, self.m))

    def csc(self) -> sp.csc_array:
        return self.csr().tocsc()

    def reachable_any(self) -> np.ndarray:
        """Boolean mask of demand points that at least one candidate reaches."""
        return np.diff(self.indptr) > 0

    def nearest_open(self, open_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cost and column of the nearest open site for every row (inf, -1 if none)."""
        pos = np.flatnonzero(open_mask[self.indices])
        best = np.full(self.n, np.inf)
        col = np.full(self.n, -1, dtype=np.int64)
        if pos.size:
            # rows are sorted by cost, so the first open entry of each row is its minimum
            k = np.searchsorted(pos, self.indptr[:-1])
            first = pos[np.minimum(k, pos.size - 1)]
            has = (k < pos.size) & (first < self.indptr[1:])
            best[has] = self.data[first[has]]
            col[has] = self.indices[first[has]]
        return best, col

    def caps(self) -> np.ndarray:
        """Each row's cost when no new site serves it: its nearest fixed site, else big-M."""
        cap_fixed, _ = self.nearest_open(self.fixed)
        return np.where(np.isfinite(cap_fixed), cap_fixed, self.penalty)

    def true_objective(self, open_mask: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """Objective over reachable demand, nearest column per row, unreachable rows."""
        best, col = self.nearest_open(open_mask)
        reach = np.isfinite(best)
        obj = float(np.dot(self.weights[reach], best[reach]))
        return obj, col, np.flatnonzero(~reach)

    def penalized(self, open_mask: np.ndarray) -> float:
        best, _ = self.nearest_open(open_mask)
        best = np.where(np.isfinite(best), best, self.penalty)
        return float(np.dot(self.weights, best))


def _as_index_mask(fixed, m: int, name: str = "fixed") -> np.ndarray:
    mask = np.zeros(m, dtype=bool)
    if fixed is None:
        return mask
    arr = np.asarray(fixed)
    if arr.dtype == bool:
        if arr.shape != (m,):
            raise LocateError(
                f"`{name}` as a boolean mask must have one entry per candidate column ({m}), "
                f"got shape {arr.shape}. Pass a mask of length {m} or a list of column indices."
            )
        return arr.copy()
    try:
        num = arr.astype(np.float64).ravel()
    except (TypeError, ValueError):
        num = np.array([np.nan])
    if not np.isfinite(num).all() or (num != np.round(num)).any():
        raise LocateError(
            f"`{name}` must be whole column indices of the cost matrix (or a boolean mask of "
            f"length {m}); got {arr.ravel()[:5].tolist()}. Convert ids to column positions first."
        )
    arr = num.astype(np.int64)
    bad = arr[(arr < 0) | (arr >= m)]
    if bad.size:
        raise LocateError(
            f"`{name}` holds column indices outside 0..{m - 1}: {bad[:5].tolist()}. "
            f"Give indices of candidate columns of the cost matrix (it has {m} columns)."
        )
    mask[arr] = True
    return mask


def build_cost_data(cost, *, weights=None, fixed=None) -> CostData:
    """Validate costs/weights/fixed sites and return row-sorted `CostData`.

    Parameters
    ----------
    cost
        (n_demand, n_candidate) array (``np.inf`` = unreachable) or a SciPy
        sparse matrix whose stored entries (explicit zeros included) are the
        reachable pairs.
    weights
        Demand weights (default 1 each).
    fixed
        Indices or boolean mask of candidate columns already open.
    """
    if sp.issparse(cost):
        if cost.ndim != 2:
            raise LocateError(f"Cost matrix must be 2-D (n_demand, n_candidate); got {cost.ndim}-D.")
        csr = sp.csr_array(cost)
        csr.sum_duplicates()  # duplicates in COO input are a construction bug upstream; add up
        n, m = csr.shape
        data = np.asarray(csr.data, dtype=np.float64)
        indices = np.asarray(csr.indices, dtype=np.int64)
        indptr = np.asarray(csr.indptr, dtype=np.int64)
        if np.isnan(data).any():
            raise LocateError("Cost matrix holds NaN values. Use np.inf (dense) or leave the pair "
                              "unstored (sparse) for unreachable pairs.")
        keep = np.isfinite(data)
        if not keep.all():
            rows = np.repeat(np.arange(n), np.diff(indptr))[keep]
            data, indices = data[keep], indices[keep]
            indptr = np.r_[0, np.cumsum(np.bincount(rows, minlength=n))].astype(np.int64)
    else:
        try:
            arr = np.asarray(cost, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise LocateError(
                f"Cost matrix cannot be read as numbers ({exc}). Give a rectangular "
                "(n_demand, n_candidate) array of times or distances, np.inf for unreachable."
            ) from None
        if arr.ndim != 2:
            raise LocateError(
                f"Cost matrix must be 2-D (n_demand, n_candidate); got shape {arr.shape}."
            )
        if np.isnan(arr).any():
            r, c = np.argwhere(np.isnan(arr))[0]
            raise LocateError(f"Cost matrix holds NaN (first at row {r}, column {c}). "
                              "Use np.inf for unreachable pairs.")
        n, m = arr.shape
        keep = np.isfinite(arr)
        rows, indices = np.nonzero(keep)
        data = arr[rows, indices]
        indices = indices.astype(np.int64)
        indptr = np.r_[0, np.cumsum(keep.sum(axis=1))].astype(np.int64)
    if n == 0 or m == 0:
        raise LocateError(f"Cost matrix is empty (shape {(n, m)}); it needs at least one demand "
                          "row and one candidate column.")
    if data.size and data.min() < 0:
        pos = int(np.argmin(data))
        row = int(np.searchsorted(indptr, pos, side="right") - 1)
        raise LocateError(
            f"Cost matrix holds negative costs (min {data.min():g} at row {row}, column "
            f"{int(indices[pos])}). Costs are times or distances and must be >= 0."
        )
    # sort each row by cost
    rows = np.repeat(np.arange(n), np.diff(indptr))
    order = np.lexsort((indices, data, rows))
    data, indices = data[order], indices[order]
    if weights is None:
        w = np.ones(n)
    else:
        try:
            w = np.asarray(weights, dtype=np.float64).ravel()
        except (TypeError, ValueError) as exc:
            raise LocateError(f"`weights` cannot be read as numbers ({exc}); give one number "
                              "per demand row, 0 for missing counts.") from None
        if w.shape != (n,):
            raise LocateError(
                f"`weights` has {w.size} values but the cost matrix has {n} demand rows. "
                "Give one weight per row of the cost matrix."
            )
        if not np.isfinite(w).all() or (w < 0).any():
            bad = np.flatnonzero(~np.isfinite(w) | (w < 0))
            raise LocateError(
                f"`weights` must be finite and >= 0; rows {bad[:5].tolist()} hold "
                f"{w[bad[:5]].tolist()}. Fill missing counts with 0."
            )
    fixed_mask = _as_index_mask(fixed, m)
    penalty = 10.0 * float(data.max()) + 1.0 if data.size else 1.0
    return CostData(indptr, indices, data, n, m, w, fixed_mask, penalty)
