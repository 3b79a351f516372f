"""The exact p-median's paths (restricted LP, branch-and-cut, MIP fallback) against brute force,
the generated benchmark families against enumeration, and the time limit as a deadline only."""

from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path

import numpy as np
import pytest

import planner.locate._exact as ex
from planner.locate import PMedian, read_orlib
from planner.locate._data import build_cost_data

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _instances_module():
    spec = importlib.util.spec_from_file_location("pmedian_instances",
                                                  BENCH / "pmedian_instances.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def brute(cost, w, p, fixed=()):
    """Optimum by enumerating every p-subset of the free columns (inf = unreachable)."""
    fixed = list(fixed)
    free = [j for j in range(cost.shape[1]) if j not in fixed]
    best = np.inf
    for s in itertools.combinations(free, p):
        d = cost[:, list(s) + fixed].min(axis=1)
        best = min(best, float(np.dot(w, d)))
    return best


def small(seed, *, n=26, m=14, integer=True, sparse=False):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 100, (n, 2))
    cxy = rng.uniform(0, 100, (m, 2))
    cost = np.hypot(*(xy[:, None, :] - cxy[None, :, :]).transpose(2, 0, 1))
    if integer:
        cost = np.floor(cost)
        w = rng.integers(1, 9, n).astype(float)
    else:
        w = rng.uniform(0.5, 3.0, n)
    if sparse:
        cost[cost > 60] = np.inf
    return cost, w


def solve_direct(cost, w, p, fixed=(), *, time_limit=60.0, incumbent=None):
    """solve_pmedian_exact from a poor start (the first p free columns), so that the
    reduced-cost fixing, the restricted LP and the tree all have work to do."""
    cd = build_cost_data(cost, weights=w, fixed=list(fixed) or None)
    if incumbent is None:
        free = np.flatnonzero(~cd.fixed)[:p]
        incumbent = cd.fixed.copy()
        incumbent[free] = True
    out = ex.solve_pmedian_exact(cd, p, incumbent=incumbent, time_limit=time_limit)
    return cd, out


def true_cost(cd, out, cost, w):
    d = cost[:, out.open_mask].min(axis=1)
    return float(np.dot(w, d))


@pytest.mark.parametrize("integer", [True, False])
@pytest.mark.parametrize("node_limit", [1, 5000])
def test_restricted_lp_and_tree_match_brute_force(monkeypatch, integer, node_limit):
    # restrict the LP as soon as fixing removes any column; with node limit 1 the tree
    # gives up at once and HiGHS's MIP (with the restricted LP's cuts) finishes
    monkeypatch.setattr(ex, "_RESTRICT", 1.0)
    monkeypatch.setattr(ex, "_NODE_LIMIT", node_limit)
    # no LP rounding: the poor start stays the incumbent until the tree finds better
    monkeypatch.setattr(ex._Exact, "round_lp", lambda self, y: None)
    rebuilds = nodes = 0
    for seed in range(8):
        for p, fixed, sparse in ((2, (), False), (3, (), False), (4, (), True), (3, (5,), False),
                                 (2, (1, 7), True)):
            cost, w = small(seed, integer=integer, sparse=sparse)
            if sparse and not np.isfinite(cost).any(axis=1).all():
                cost[:, 0] = np.where(np.isfinite(cost[:, 0]), cost[:, 0], 99.0)
            expect = brute(cost, w, p, fixed)
            cd, out = solve_direct(cost, w, p, fixed)
            assert out.proven and not out.timed_out
            assert true_cost(cd, out, cost, w) == pytest.approx(expect, rel=1e-9)
            assert out.lower_bound == pytest.approx(expect, rel=1e-7)
            assert int((out.open_mask & ~cd.fixed).sum()) == p
            rebuilds += out.work.rebuilds
            nodes += out.work.nodes
    # the paths under test were taken
    assert rebuilds > 0 and nodes > 0


def test_generated_orlib_family_matches_enumeration():
    gen = _instances_module()
    cost, p = gen.orlib_like(60, 3, seed=4)
    assert cost.shape == (60, 60) and np.isfinite(cost).all()
    # the family's graph: a Hamiltonian cycle plus random edges, n**2/50 in all
    e = gen.orlib_edges(60, seed=4)
    assert e.shape == (72, 3) and e[:, 2].min() >= 1 and e[:, 2].max() <= 100
    assert (e[:60, 1] == np.r_[np.arange(2, 61), 1]).all()
    w = np.ones(60)
    r = PMedian.from_cost_matrix(cost, p=p).solve(method="exact", time_limit_s=60)
    assert r.status == "optimal" and r.objective == brute(cost, w, p)


def test_generated_orlib_text_reads_back_the_same_matrix(tmp_path):
    gen = _instances_module()
    f = tmp_path / "g.txt"
    f.write_text(gen.orlib_text(80, 5, seed=2))
    cost, p = read_orlib(f)
    assert p == 5 and np.array_equal(cost, gen.orlib_like(80, 5, seed=2)[0])


def test_generated_euclidean_family_matches_enumeration():
    gen = _instances_module()
    for kind in ("uniform", "clustered"):
        cost = gen.euclidean(40, kind, seed=1)
        assert (cost == np.floor(cost)).all() and (np.diag(cost) == 0).all()
        r = PMedian.from_cost_matrix(cost, p=3).solve(method="exact", time_limit_s=60)
        assert r.status == "optimal" and r.objective == brute(cost, np.ones(40), 3)


def test_time_limit_is_only_a_deadline(orlib_dir):
    # pmed6 needs a tree: the same work (LP runs, nodes, rebuilds) and the same answer
    # under a limit of 30 s and of 3,000 s
    cost, p = read_orlib(orlib_dir / "pmed6.txt")
    cd = build_cost_data(cost)
    start = np.zeros(cd.m, dtype=bool)
    start[:p] = True
    works = []
    for limit in (30.0, 3000.0):
        out = ex.solve_pmedian_exact(cd, p, incumbent=start, time_limit=limit)
        assert out.proven and out.upper_bound == 7824
        works.append(out.work)
    assert works[0] == works[1] and works[0].nodes > 0


def test_heuristic_start_of_an_exact_solve_does_not_depend_on_the_limit(orlib_dir, monkeypatch):
    import planner.locate._models as models

    seen = []
    real = models.solve_pmedian_exact

    def spy(cd, p, **kw):
        seen.append(kw["incumbent"].copy())
        out = real(cd, p, **kw)
        seen.append(out.work)
        return out

    monkeypatch.setattr(models, "solve_pmedian_exact", spy)
    cost, p = read_orlib(orlib_dir / "pmed7.txt")
    a = PMedian.from_cost_matrix(cost, p=p).solve(method="exact", time_limit_s=20)
    b = PMedian.from_cost_matrix(cost, p=p).solve(method="exact", time_limit_s=2000)
    assert a.objective == b.objective == 5631 and a.status == b.status == "optimal"
    assert np.array_equal(seen[0], seen[2]) and seen[1] == seen[3]


def _radius_value(R, y):
    """sum_i theta_i at ``y``: each row's most binding cut (rows without entries: const)."""
    c = R.separate(y, np.full(R.w.size, -1e18), tol=0.0)
    if c is None:
        return R.const
    rows, lower, lens, cols, coef = c
    rid = np.repeat(np.arange(rows.size), lens)
    rhs = lower - np.bincount(rid, weights=coef * y[cols], minlength=rows.size)
    return R.const + float(rhs.sum())


def test_rows_cut_at_the_kth_cheapest_entry_keep_the_radius_value():
    # with p, each row keeps only entries cheaper than its (|cols| - p + 1)-th: the value of
    # every point of the LP (sum y = p, 0 <= y <= 1) and of every integer point is unchanged
    rng = np.random.default_rng(3)
    cut = 0
    for seed in range(12):
        cost, w = small(seed, sparse=seed % 3 == 0)
        fixed = [2] if seed % 4 == 1 else None
        cd = build_cost_data(cost, weights=w, fixed=fixed)
        cols = ~cd.fixed & (rng.random(cd.m) < 0.9)
        for p in (1, 3, int(cols.sum()) - 1):
            full, red = ex._Rows(cd, cols), ex._Rows(cd, cols, p)
            cut += red.val.size < full.val.size
            for _ in range(20):
                y = np.zeros(cd.m)
                y[cols] = rng.dirichlet(np.ones(int(cols.sum()))) * p
                if y.max() > 1:
                    continue
                assert _radius_value(red, y) == pytest.approx(_radius_value(full, y), rel=1e-12)
            y = np.zeros(cd.m)
            y[rng.choice(np.flatnonzero(cols), p, replace=False)] = 1.0
            assert _radius_value(red, y) == pytest.approx(_radius_value(full, y), rel=1e-12)
            mask = (y > 0.5) | cd.fixed
            assert _radius_value(red, y) == pytest.approx(cd.penalized(mask), rel=1e-12)
    assert cut > 0


@pytest.mark.parametrize("integer", [True, False])
def test_cut_purging_in_the_tree_matches_brute_force(monkeypatch, integer):
    # purge every node, every cut slack at the last node: cuts leave the LP and are found
    # again by the separation; the stored bases lose the same rows (a wrong row mapping
    # or a binding cut deleted would give a wrong optimum or bound)
    import planner.locate._bnb as bnb

    monkeypatch.setattr(bnb, "_PURGE_EVERY", 1)
    monkeypatch.setattr(bnb, "_PURGE_AGE", 1)
    monkeypatch.setattr(bnb, "_PURGE_MIN", 1)
    monkeypatch.setattr(ex._Exact, "round_lp", lambda self, y: None)
    deleted = []
    real = ex._Exact.delete_cuts

    def spy(self, idx):
        rows_before = self.h.getNumRow()
        real(self, idx)
        # the cut bookkeeping (row, level) stays aligned with the LP's rows
        assert self.h.getNumRow() == rows_before - idx.size
        assert sum(r.size for r in self.cut_rows) == self.h.getNumRow() - 1
        deleted.append(idx.size)

    monkeypatch.setattr(ex._Exact, "delete_cuts", spy)
    nodes = 0
    for seed in range(6):
        # random costs (no geometry): fractional LP points and trees of 5-25 nodes
        rng = np.random.default_rng(seed)
        cost = rng.integers(1, 100, (40, 16)).astype(float)
        w = rng.integers(1, 5, 40).astype(float)
        if not integer:
            cost += rng.uniform(0, 1, cost.shape)
            w += rng.uniform(0, 1, w.shape)
        for p, fixed in ((3, ()), (4, ()), (3, (2,))):
            expect = brute(cost, w, p, fixed)
            cd, out = solve_direct(cost, w, p, fixed)
            assert out.proven and true_cost(cd, out, cost, w) == pytest.approx(expect, rel=1e-9)
            assert out.lower_bound == pytest.approx(expect, rel=1e-7)
            nodes += out.work.nodes
    assert nodes > 50 and sum(deleted) > 0
