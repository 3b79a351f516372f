"""Reader for J.E. Beasley's OR-Library p-median files (``pmedN.txt``).

The files list undirected edges; some vertex pairs appear more than once and
the LAST occurrence wins (only that reading reproduces the published optima,
e.g. pmed1 = 5819).  The cost matrix is the all-pairs shortest-path length.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import shortest_path

from planner._errors import LocateError


def read_orlib(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Read an OR-Library ``pmedN.txt`` file.

    Parameters
    ----------
    path
        The instance file.

    Returns
    -------
    cost, p
        The (n, n) all-pairs shortest-path matrix (every vertex is a demand
        point of weight 1 and a candidate) and the number of medians.
    """
    path = Path(path)
    try:
        tokens = np.array(path.read_text().split(), dtype=np.int64)
    except (OSError, ValueError) as exc:
        raise LocateError(f"Cannot read OR-Library file {path}: {exc}") from None
    n, m, p = (int(t) for t in tokens[:3])
    edges = tokens[3:3 + 3 * m].reshape(-1, 3)
    if edges.shape[0] != m:
        raise LocateError(f"{path} announces {m} edges but holds {edges.shape[0]}.")
    return matrix_from_edges(edges, n), p


def matrix_from_edges(edges: np.ndarray, n: int) -> np.ndarray:
    """All-pairs shortest paths of an OR-Library edge list (1-based ``i j cost`` rows).

    Edges are undirected and, as in Beasley's files, the last listing of a
    pair wins (not the cheapest).
    """
    i, j, c = edges[:, 0] - 1, edges[:, 1] - 1, edges[:, 2].astype(np.float64)
    # last occurrence wins: key each undirected pair, keep the last index per key
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    key = lo * n + hi
    _, last_rev = np.unique(key[::-1], return_index=True)
    last = len(key) - 1 - last_rev
    lo, hi, c = lo[last], hi[last], c[last]
    adj = sp.coo_array((np.r_[c, c], (np.r_[lo, hi], np.r_[hi, lo])), shape=(n, n)).tocsr()
    return shortest_path(adj, method="D", directed=False)
