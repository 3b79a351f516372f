"""The covering presolve (`planner.locate._presolve`): each reduction against brute force, and
MCLP / LSCP optima with the presolve equal to the optima found by enumeration."""

from __future__ import annotations

import contextlib
import itertools

import numpy as np
import pytest
import scipy.sparse as sp

from planner.locate import LSCP, MCLP
from planner.locate._presolve import (
    dominated_cols,
    presolve_cover,
    superset_rows,
    unique_rows,
)


def random_cover(rng, n, m, density, dup=0.3):
    """A 0/1 cover with many repeated rows (as neighbouring demand points have)."""
    base = rng.random((max(2, n // 3), m)) < density
    rows = base[rng.integers(0, base.shape[0], n)]
    fresh = rng.random(n) > 1 - (1 - dup)
    rows[fresh] = rng.random((int(fresh.sum()), m)) < density
    return rows


def test_unique_rows_groups_exactly_the_equal_rows():
    rng = np.random.default_rng(0)
    d = random_cover(rng, 300, 12, 0.3)
    d[5] = False  # an empty row
    d[6] = False
    a = sp.csr_array(d.astype(np.int32))
    first, gid = unique_rows(a)
    for i in range(300):
        for j in range(i + 1, 300):
            assert (gid[i] == gid[j]) == bool((d[i] == d[j]).all())
    assert np.array_equal(d[first[gid]], d)  # each row equals its group's first row
    assert len(first) == len({r.tobytes() for r in d})


def test_unique_rows_survives_hash_collisions(monkeypatch):
    """Force every row into one hash group: the exact check must split them."""
    d = np.array([[1, 0, 1], [0, 1, 1], [1, 0, 1], [1, 1, 0], [0, 1, 1]], bool)
    a = sp.csr_array(d.astype(np.int32))

    class Zero:
        def integers(self, lo, hi, m, dtype):
            return np.zeros(m, dtype)

    monkeypatch.setattr(np.random, "default_rng", lambda seed: Zero())
    first, gid = unique_rows(a)
    assert gid.tolist() in ([0, 1, 0, 2, 1], [0, 2, 0, 1, 2], [1, 0, 1, 2, 0], [1, 2, 1, 0, 2],
                            [2, 0, 2, 1, 0], [2, 1, 2, 0, 1])
    assert np.array_equal(d[first[gid]], d)


def test_supersets_and_dominated_columns_equal_brute_force(monkeypatch):
    from planner.locate import _presolve

    monkeypatch.setattr(_presolve, "_PRODUCT_ENTRIES", 50)  # many chunks
    rng = np.random.default_rng(1)
    d = rng.random((80, 10)) < 0.35
    d = np.unique(d, axis=0)
    a = sp.csr_array(d.astype(np.int32))
    got = superset_rows(a)
    want = [any(((d[i] & d[k]) == d[i]).all() and (d[k] != d[i]).any() for i in range(len(d)))
            for k in range(len(d))]
    assert got.tolist() == want and any(want)
    cols = dominated_cols(a)
    c = d.T
    want_c = []
    for j in range(c.shape[0]):
        dom = False
        for k in range(c.shape[0]):
            if k == j or not ((c[j] & c[k]) == c[j]).all():
                continue
            if c[k].sum() > c[j].sum() or k < j:  # strict superset, or equal and lower index
                dom = True
        want_c.append(dom)
    assert cols.tolist() == want_c


def brute_mclp(d, w, p, fixed):
    m = d.shape[1]
    free = [j for j in range(m) if j not in fixed]
    best = -1.0
    for s in itertools.combinations(free, p):
        cov = d[:, list(s) + list(fixed)].any(axis=1)
        best = max(best, float(w[cov].sum()))
    return best


def brute_lscp(d, fixed, allowed):
    coverable = d[:, allowed + fixed].any(axis=1)
    base = d[:, fixed].any(axis=1) if fixed else np.zeros(d.shape[0], bool)
    for k in range(len(allowed) + 1):
        for s in itertools.combinations(allowed, k):
            cov = base | d[:, list(s)].any(axis=1)
            if (cov >= coverable).all():
                return k
    raise AssertionError


def cost_of(d, rng):
    """A cost matrix whose entries under 10 are exactly the True pairs (some farther pairs)."""
    cost = np.where(d, rng.uniform(0, 10, d.shape), rng.uniform(10.5, 30, d.shape))
    cost[rng.random(d.shape) < 0.3] = np.inf
    cost[d] = np.minimum(cost[d], 9.9)
    return cost


@pytest.mark.parametrize("seed", range(6))
def test_mclp_with_presolve_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    n, m = 40, 9
    d = random_cover(rng, n, m, 0.25)
    d[0] = False  # uncoverable
    w = rng.integers(0, 6, n).astype(float)
    fixed = [int(rng.integers(m))] if seed % 2 else []
    cost = cost_of(d, rng)
    for p in (1, 2, 3):
        want = brute_mclp(d, w, p, fixed)
        r = MCLP.from_cost_matrix(cost, p=p, coverage=10.0, weights=w,
                                  fixed=fixed or None).solve(method="exact")
        assert r.status == "optimal"
        assert r.objective == pytest.approx(want)
        assert r.sites.size == p and not set(r.sites) & set(fixed)
        got = d[:, list(r.sites) + fixed].any(axis=1)
        assert float(w[got].sum()) == pytest.approx(want)
        st = r.info["presolve"]
        assert st["rows"] == n and st["rows_kept"] <= st["rows_merged"] <= n


@pytest.mark.parametrize("seed", range(6))
def test_lscp_with_presolve_equals_brute_force(seed):
    rng = np.random.default_rng(100 + seed)
    n, m = 50, 10
    d = random_cover(rng, n, m, 0.22)
    w = rng.integers(1, 6, n).astype(float)
    fixed = [int(rng.integers(m))] if seed % 2 else []
    allowed = [j for j in range(m) if j not in fixed]
    cost = cost_of(d, rng)
    want = brute_lscp(d, fixed, allowed)
    with pytest.warns(Warning) if not d[:, allowed + fixed].any(axis=1).all() \
            else contextlib.nullcontext():
        r = LSCP.from_cost_matrix(cost, coverage=10.0, weights=w, fixed=fixed or None).solve()
    assert r.status == "optimal" and r.objective == want == r.sites.size
    coverable = d[:, allowed + fixed].any(axis=1)
    assert (d[:, list(r.sites) + fixed].any(axis=1) >= coverable).all()


@pytest.mark.parametrize("seed", range(4))
def test_partial_lscp_with_presolve_equals_brute_force(seed):
    rng = np.random.default_rng(200 + seed)
    n, m = 40, 9
    d = random_cover(rng, n, m, 0.25)
    w = rng.integers(0, 6, n).astype(float)
    cost = cost_of(d, rng)
    share = 0.7
    need = share * w.sum()
    want = None
    for k in range(m + 1):
        if any(w[d[:, list(s)].any(axis=1)].sum() >= need - 1e-9
               for s in itertools.combinations(range(m), k)):
            want = k
            break
    r = LSCP.from_cost_matrix(cost, coverage=10.0, weights=w, target_share=share).solve()
    assert r.status == "optimal" and r.objective == want
    assert w[d[:, r.sites].any(axis=1)].sum() >= need - 1e-9


def test_presolve_counts_on_a_hand_case():
    # rows: two copies of {0,1}, {0}, {0,1,2}, {3} covered by fixed site 3, {} uncoverable
    d = np.array([[1, 1, 0, 0], [1, 1, 0, 0], [1, 0, 0, 0], [1, 1, 1, 0], [0, 0, 0, 1],
                  [0, 0, 0, 0]], bool)
    w = np.array([2.0, 3.0, 1.0, 4.0, 5.0, 6.0])
    fixed = np.array([False, False, False, True])
    r = presolve_cover(sp.csr_array(d.astype(float)), w, fixed=fixed, usable=~fixed,
                       mode="mclp")
    assert r.fixed_weight == 5.0 and r.lost_weight == 6.0
    assert r.stats["rows_by_fixed"] == 1 and r.stats["rows_uncoverable"] == 1
    assert r.stats["rows_merged"] == 3  # {0,1} x2 merged, {0}, {0,1,2}
    # site 1 and 2 are dominated by site 0 (rows {0,1}, {0,1,2} both hold 0): one column left,
    # then all rows are {0}: one row of weight 2 + 3 + 1 + 4
    assert r.cols.tolist() == [0] and r.weights.tolist() == [10.0]
    assert r.group.tolist() == [0, 0, 0, 0, -1, -1]
    lscp = presolve_cover(sp.csr_array(d.astype(float)), w, fixed=fixed, usable=~fixed,
                          mode="lscp")
    assert lscp.cover.shape == (1, 1)


def highs_without_presolve(d, w, *, p=None, fixed=()):
    """The raw covering MIP on every demand row, HiGHS's own presolve off: the MCLP's most
    covered weight (``p`` given) or the LSCP's fewest new sites (every coverable row)."""
    import highspy

    n, m = d.shape
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("presolve", "off")
    h.setOptionValue("mip_rel_gap", 0.0)
    h.setOptionValue("threads", 1)
    inf = highspy.kHighsInf
    lo = np.zeros(m)
    lo[list(fixed)] = 1.0
    h.addVars(m, lo, np.ones(m))
    h.changeColsIntegrality(m, np.arange(m, dtype=np.int32),
                            np.full(m, highspy.HighsVarType.kInteger))
    free = np.array([j for j in range(m) if j not in fixed], dtype=np.int32)
    if p is not None:
        h.addVars(n, np.zeros(n), np.ones(n))  # z_i: row i covered
        h.changeColsCost(n, m + np.arange(n, dtype=np.int32), -w)
        for i in range(n):
            cols = np.flatnonzero(d[i]).astype(np.int32)
            h.addRow(-inf, 0.0, cols.size + 1, np.r_[m + i, cols].astype(np.int32),
                     np.r_[1.0, -np.ones(cols.size)])
        h.addRow(float(p), float(p), free.size, free, np.ones(free.size))
    else:
        h.changeColsCost(free.size, free, np.ones(free.size))
        for i in np.flatnonzero(d.any(axis=1)):
            cols = np.flatnonzero(d[i]).astype(np.int32)
            h.addRow(1.0, inf, cols.size, cols, np.ones(cols.size))
    h.run()
    assert h.getModelStatus() == highspy.HighsModelStatus.kOptimal
    obj = h.getInfo().objective_function_value
    return -obj if p is not None else round(obj)


@pytest.mark.parametrize("seed", range(3))
def test_presolved_covering_equals_raw_highs_on_medium_instances(seed):
    """600 demand points on a plane, 40 sites, coverage 250 m: the presolved MCLP and LSCP
    optima equal HiGHS's on the raw model (its presolve off)."""
    rng = np.random.default_rng(300 + seed)
    pts = rng.uniform(0, 1000, (600, 2))
    sites = rng.uniform(0, 1000, (40, 2))
    cost = np.hypot(*(pts[:, None, :] - sites[None, :, :]).transpose(2, 0, 1))
    cost[cost > 600] = np.inf  # sparse: farther pairs are not stored
    w = rng.integers(1, 30, 600).astype(float)
    d = cost <= 250.0
    fixed = [3, 17]
    for p in (2, 6):
        r = MCLP.from_cost_matrix(cost, p=p, coverage=250.0, weights=w,
                                  fixed=fixed).solve(method="exact")
        assert r.status == "optimal"
        assert r.objective == pytest.approx(highs_without_presolve(d, w, p=p, fixed=fixed))
        assert r.info["presolve"]["rows_merged"] < 600  # neighbours share coverage sets
    with warnings_ok(d):
        ls = LSCP.from_cost_matrix(cost, coverage=250.0, weights=w, fixed=fixed).solve()
    assert ls.status == "optimal"
    assert ls.objective == highs_without_presolve(d, w, fixed=fixed)


def warnings_ok(d):
    from planner._errors import PlannerWarning

    return pytest.warns(PlannerWarning) if not d.any(axis=1).all() else contextlib.nullcontext()


@pytest.mark.parametrize("seed", range(5))
def test_lagrangian_bound_is_valid_and_near_the_lp_bound(seed):
    """Never below the brute-force optimum; never below the LP relaxation (its minimum) and
    close to it after the subgradient steps."""
    import highspy

    from planner.locate._cover import mclp_lagrangian_bound

    rng = np.random.default_rng(400 + seed)
    n, m, k = 60, 10, 3
    d = random_cover(rng, n, m, 0.25)
    w = rng.integers(1, 9, n).astype(float)
    best = brute_mclp(d, w, k, [])
    ub = mclp_lagrangian_bound(sp.csr_array(d.astype(float)), w, k, best, time_limit=5.0)
    # the LP relaxation: max w.z, z_i <= sum_j d_ij y_j, sum y <= k, 0 <= y, z <= 1
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.addVars(m + n, np.zeros(m + n), np.ones(m + n))
    h.changeColsCost(n, m + np.arange(n, dtype=np.int32), -w)
    for i in range(n):
        cols = np.flatnonzero(d[i]).astype(np.int32)
        h.addRow(-highspy.kHighsInf, 0.0, cols.size + 1, np.r_[m + i, cols].astype(np.int32),
                 np.r_[1.0, -np.ones(cols.size)])
    h.addRow(-highspy.kHighsInf, k, m, np.arange(m, dtype=np.int32), np.ones(m))
    h.run()
    lp = -h.getInfo().objective_function_value
    assert ub >= lp - 1e-6 >= best - 1e-6
    assert ub <= lp * 1.02 + 1e-6


def test_mclp_heuristic_reports_the_lagrangian_bound():
    rng = np.random.default_rng(7)
    pts = rng.uniform(0, 1000, (400, 2))
    sites = rng.uniform(0, 1000, (30, 2))
    cost = np.hypot(*(pts[:, None, :] - sites[None, :, :]).transpose(2, 0, 1))
    w = rng.integers(1, 30, 400).astype(float)
    ex = MCLP.from_cost_matrix(cost, p=4, coverage=200.0, weights=w).solve(method="exact")
    h = MCLP.from_cost_matrix(cost, p=4, coverage=200.0, weights=w).solve(method="heuristic")
    assert ex.status == "optimal"
    assert h.bound >= ex.objective - 1e-9  # a valid upper bound on the covered weight
    assert h.bound <= 1.05 * ex.objective < w.sum()  # near the optimum, not the trivial bound


def block_cover(rng, blocks):
    """A block-diagonal cover: independent districts (rows x columns each)."""
    n = sum(b[0] for b in blocks)
    m = sum(b[1] for b in blocks)
    d = np.zeros((n, m), bool)
    r0 = c0 = 0
    for bn, bm, dens in blocks:
        blk = rng.random((bn, bm)) < dens
        blk[np.arange(bn), rng.integers(0, bm, bn)] = True  # every row coverable
        d[r0:r0 + bn, c0:c0 + bm] = blk
        r0, c0 = r0 + bn, c0 + bm
    return d


def test_parts_are_the_connected_components():
    from planner.locate._cover import _parts

    rng = np.random.default_rng(5)
    d = block_cover(rng, [(6, 4, 0.5), (1, 1, 1.0), (5, 3, 0.6)])
    a = sp.csr_array(d.astype(np.int8))
    allowed = np.ones(d.shape[1], bool)
    parts = _parts(a, allowed)
    # rows i, k in one part iff linked through shared columns (transitive closure)
    link = (d.astype(int) @ d.T.astype(int)) > 0
    reach = link.copy()
    for _ in range(d.shape[0]):
        reach = (reach.astype(int) @ link.astype(int)) > 0
    label = np.empty(d.shape[0], int)
    for k, (r, c) in enumerate(parts):
        label[r] = k
        assert set(np.flatnonzero(d[r].any(axis=0))) == set(c)  # its columns cover its rows
    assert ((label[:, None] == label[None, :]) == reach).all()
    assert sorted(np.concatenate([r for r, _ in parts]).tolist()) == list(range(d.shape[0]))
    # a row no allowed column covers: no parts (HiGHS says the model is infeasible)
    assert _parts(a, np.r_[np.zeros(4, bool), np.ones(d.shape[1] - 4, bool)]) == []


@pytest.mark.parametrize("seed", range(5))
def test_lscp_by_parts_equals_brute_force(seed):
    from planner.locate._cover import _parts, solve_lscp

    rng = np.random.default_rng(300 + seed)
    d = block_cover(rng, [(12, 6, 0.3), (1, 1, 1.0), (10, 5, 0.35), (1, 2, 1.0)])
    want = brute_lscp(d, [], list(range(d.shape[1])))
    a = sp.csr_array(d.astype(np.int8))
    every = np.ones(d.shape[1], bool)
    assert len(_parts(sp.csr_array(a[unique_rows(a)[0]]), every)) >= 3  # the decomposed route
    start = np.ones(d.shape[1], bool)
    x, lb, proven = solve_lscp(a, np.ones(d.shape[0]), float(d.shape[0]), every, start=start,
                               time_limit=30.0, seed=0, threads=1)
    assert proven and lb == want == int(x.sum())
    assert d[:, x].any(axis=1).all()
    # and through the model: the same count
    cost = cost_of(d, rng)
    r = LSCP.from_cost_matrix(cost, coverage=10.0).solve()
    assert r.status == "optimal" and r.objective == want
