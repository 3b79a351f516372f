"""Generated p-median instances of the two small-p benchmark families.

OR-Library family (``orlib_like``): J.E. Beasley's pmed instances (EJOR 21,
1985) are random graphs on ``n`` vertices read from their files as: a
Hamiltonian cycle ``1-2-...-n-1`` first, then random vertex pairs, ``n**2/50``
edges in all, each with an integer cost drawn uniformly from 1..100; a pair
listed twice keeps its last cost (see ``../shared/bench/orlib/README.md``).
Every vertex is a client of weight 1 and a candidate; the cost matrix is the
all-pairs shortest-path length.  This generator follows the same recipe
(its own random numbers, so the instances are new ones of the same family:
pmed21-40 have n = 500-900 with p = 5 and 10 among their p values).

Euclidean family (``euclidean``): ``n`` points with integer coordinates in a
10,000 x 10,000 square, every point a client of weight 1 and a candidate,
cost = the Euclidean distance floored to an integer (as in the TSPLIB-based
p-median studies).  ``kind="uniform"`` draws the points uniformly;
``kind="clustered"`` draws most of them around a few centres (as in drilling
or city instances such as TSPLIB's rl1304), the rest uniformly.

Usage::

    python bench/pmedian_instances.py orlib 800 5 0 out.txt   # writes an OR-Library file
"""

from __future__ import annotations

import sys

import numpy as np

from planner.locate._orlib import matrix_from_edges

#: The OR-Library-family sizes of the benchmark (n, p): pmed21-40's n with p = 5 and 10.
ORLIB_FAMILY = [(n, p) for n in (500, 600, 700, 800, 900) for p in (5, 10)]
#: The Euclidean family (n, kind) and the p values each is solved for.
EUCLID_FAMILY = [(1000, "uniform"), (1304, "clustered"), (1500, "uniform"), (2000, "clustered")]
EUCLID_P = (5, 10, 20, 50, 100, 200, 500)


def orlib_edges(n: int, seed: int = 0) -> np.ndarray:
    """The (n**2/50, 3) edge list (1-based i, j, cost) of an OR-Library-style graph."""
    rng = np.random.default_rng(seed)
    n_edges = n * n // 50
    if n_edges < n:
        raise ValueError(f"n={n} is too small for the family (it needs n >= 50)")
    cyc_i = np.arange(1, n + 1)
    cyc_j = np.r_[np.arange(2, n + 1), 1]
    extra = n_edges - n
    ri = rng.integers(1, n + 1, extra)
    rj = (ri - 1 + rng.integers(1, n, extra)) % n + 1  # never a loop
    i = np.r_[cyc_i, ri]
    j = np.r_[cyc_j, rj]
    c = rng.integers(1, 101, n_edges)
    return np.c_[i, j, c]


def orlib_text(n: int, p: int, seed: int = 0) -> str:
    """The instance as an OR-Library ``pmedN.txt`` file's text."""
    e = orlib_edges(n, seed)
    return f" {n} {e.shape[0]} {p} \n" + "".join(f" {a} {b} {c} \n" for a, b, c in e)


def orlib_like(n: int, p: int, seed: int = 0) -> tuple[np.ndarray, int]:
    """(cost, p): the all-pairs shortest-path matrix of `orlib_edges` (last listing wins)."""
    return matrix_from_edges(orlib_edges(n, seed), n), p


def euclidean_points(n: int, kind: str = "uniform", seed: int = 0) -> np.ndarray:
    """(n, 2) integer coordinates in [0, 10000)."""
    rng = np.random.default_rng(seed)
    side = 10_000
    if kind == "uniform":
        return rng.integers(0, side, (n, 2)).astype(np.float64)
    if kind != "clustered":
        raise ValueError(f"kind={kind!r}: use 'uniform' or 'clustered'")
    k = max(4, n // 100)
    centres = rng.uniform(0.05 * side, 0.95 * side, (k, 2))
    spread = rng.uniform(0.01, 0.05, k) * side
    n_cl = int(0.8 * n)
    which = rng.integers(0, k, n_cl)
    pts = centres[which] + rng.normal(size=(n_cl, 2)) * spread[which, None]
    pts = np.r_[pts, rng.uniform(0, side, (n - n_cl, 2))]
    return np.clip(np.floor(pts), 0, side - 1)


def euclidean(n: int, kind: str = "uniform", seed: int = 0) -> np.ndarray:
    """The (n, n) floored Euclidean distance matrix of `euclidean_points`."""
    xy = euclidean_points(n, kind, seed)
    d = np.sqrt(((xy[:, None, :] - xy[None, :, :]) ** 2).sum(axis=2))
    return np.floor(d)


if __name__ == "__main__":
    fam, n_, p_, seed_, out = sys.argv[1:6]
    if fam != "orlib":
        raise SystemExit("only 'orlib' files are written; Euclidean instances are generated "
                         "in memory by euclidean()")
    with open(out, "w") as f:
        f.write(orlib_text(int(n_), int(p_), int(seed_)))
