"""Tests of planner.locate: brute force on small instances, OR-Library optima, errors."""

from __future__ import annotations

import csv
import itertools
from contextlib import nullcontext

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import linprog

from planner._errors import LocateError, PlannerWarning
from planner.locate import LSCP, MCLP, PMedian, read_orlib


# --------------------------------------------------------------------------- generators
def instance(seed: int, n: int = 12, m: int = 10, *, integer: bool = True):
    rng = np.random.default_rng(seed)
    d = rng.uniform(0, 100, (n, 2))
    c = rng.uniform(0, 100, (m, 2))
    cost = np.hypot(*(d[:, None, :] - c[None, :, :]).transpose(2, 0, 1))
    if integer:
        cost = np.round(cost / 5.0) * 5.0  # many ties on purpose
    w = rng.integers(1, 20, n).astype(float)
    return cost, w


def brute_pmedian(cost, w, p, fixed=()):
    fixed = list(fixed)
    free = [j for j in range(cost.shape[1]) if j not in fixed]
    best = np.inf
    for s in itertools.combinations(free, p):
        cols = list(s) + fixed
        best = min(best, float(np.dot(w, cost[:, cols].min(axis=1))))
    return best


def _share_rows(w, k):
    """LP rows over shares x[i, j] (row-major, n x k): per demand row the sum of its shares,
    per site the weight it serves."""
    n = len(w)
    a_row = np.kron(np.eye(n), np.ones(k))
    a_cap = np.zeros((k, n * k))
    for jj in range(k):
        a_cap[jj, jj::k] = w
    return a_row, a_cap


def brute_capacitated(cost, w, p, cap, fixed=()):
    """Splittable capacitated p-median by enumeration + SciPy's LP (an independent solver)."""
    n, m = cost.shape
    fixed = list(fixed)
    free = [j for j in range(m) if j not in fixed]
    best = np.inf
    for s in itertools.combinations(free, p):
        cols = list(s) + fixed
        c = (w[:, None] * cost[:, cols]).ravel()
        a_eq, a_ub = _share_rows(w, len(cols))
        res = linprog(c, A_ub=a_ub, b_ub=cap[cols], A_eq=a_eq, b_eq=np.ones(n),
                      bounds=(0, 1), method="highs")
        if res.status == 0:
            best = min(best, res.fun)
    return best


# --------------------------------------------------------------------------- p-median
@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("p", [1, 2, 3, 4])
def test_pmedian_matches_brute_force(seed, p):
    cost, w = instance(seed)
    expect = brute_pmedian(cost, w, p)
    exact = PMedian.from_cost_matrix(cost, p=p, weights=w).solve(method="exact")
    assert exact.status == "optimal" and exact.gap == 0.0
    assert exact.objective == pytest.approx(expect)
    assert exact.bound == pytest.approx(expect)
    # the objective is recomputed from the returned sites
    assert exact.objective == pytest.approx(np.dot(w, cost[:, exact.sites].min(axis=1)))
    heur = PMedian.from_cost_matrix(cost, p=p, weights=w).solve(method="heuristic")
    assert heur.objective == pytest.approx(expect)
    assert heur.sites.size == p


@pytest.mark.parametrize("seed", range(4))
def test_pmedian_with_fixed_sites(seed):
    cost, w = instance(100 + seed)
    fixed = [0, 5]
    for p in (1, 2, 3):
        expect = brute_pmedian(cost, w, p, fixed)
        for method in ("exact", "heuristic"):
            r = PMedian.from_cost_matrix(cost, p=p, weights=w, fixed=fixed).solve(method=method)
            assert r.objective == pytest.approx(expect)
            assert not set(r.sites) & set(fixed)
            assert r.sites.size == p
            assert r.fixed.tolist() == fixed
            cols = np.r_[r.sites, fixed]
            assert r.objective == pytest.approx(np.dot(w, cost[:, cols].min(axis=1)))
            # assignment is the nearest open site
            assert np.allclose(cost[np.arange(len(w)), r.assignment], cost[:, cols].min(axis=1))


def test_fixed_as_boolean_mask_equals_indices():
    cost, w = instance(7)
    mask = np.zeros(cost.shape[1], bool)
    mask[[2, 3]] = True
    a = PMedian.from_cost_matrix(cost, p=2, weights=w, fixed=mask).solve()
    b = PMedian.from_cost_matrix(cost, p=2, weights=w, fixed=[2, 3]).solve()
    assert a.objective == b.objective == pytest.approx(brute_pmedian(cost, w, 2, [2, 3]))


@pytest.mark.parametrize("seed", range(3))
def test_capacitated_matches_brute_force(seed):
    cost, w = instance(200 + seed, n=8, m=7, integer=False)
    cap = np.full(7, w.sum() / 2.5)
    for p, fixed in ((3, ()), (2, (1,))):
        expect = brute_capacitated(cost, w, p, cap, fixed)
        r = PMedian.from_cost_matrix(cost, p=p, weights=w, fixed=list(fixed) or None,
                                     capacity=cap).solve(method="exact")
        assert r.status == "optimal"
        assert r.objective == pytest.approx(expect, rel=1e-6)
        load = (r.shares.toarray() * w[:, None]).sum(axis=0)
        assert (load <= cap + 1e-6).all()
        assert np.allclose(r.shares.toarray().sum(axis=1), 1.0)
        # the capacity binds: the uncapacitated optimum is strictly cheaper here
        assert brute_pmedian(cost, w, p, list(fixed)) <= expect + 1e-9
        h = PMedian.from_cost_matrix(cost, p=p, weights=w, fixed=list(fixed) or None,
                                     capacity=cap).solve(method="heuristic")
        assert h.objective >= expect - 1e-6
        assert ((h.shares.toarray() * w[:, None]).sum(axis=0) <= cap + 1e-6).all()


def test_sparse_costs_report_unreachable_demand():
    # demand 3 reaches no candidate; explicit zero at (0, 0) is a reachable pair
    rows = [0, 0, 1, 1, 2, 2]
    cols = [0, 1, 0, 1, 1, 2]
    vals = [0.0, 7.0, 3.0, 2.0, 5.0, 1.0]
    cost = sp.csr_array((vals, (rows, cols)), shape=(4, 3))
    w = np.array([1.0, 2.0, 3.0, 10.0])
    r = PMedian.from_cost_matrix(cost, p=2, weights=w).solve()
    # brute force over pairs with the unreachable row left out
    dense = cost.toarray()
    dense[cost.toarray() == 0] = np.inf
    dense[0, 0] = 0.0
    best = min(float(np.dot(w[:3], dense[:3][:, list(s)].min(axis=1)))
               for s in itertools.combinations(range(3), 2))
    assert r.objective == pytest.approx(best) == pytest.approx(0 + 2 * 3 + 3 * 1)  # sites 0, 2
    assert r.sites.tolist() == [0, 2]
    assert r.unreachable.tolist() == [3]
    assert r.assignment[3] == -1
    assert r.status == "optimal"
    # same answer from the dense form with np.inf
    r2 = PMedian.from_cost_matrix(dense, p=2, weights=w).solve()
    assert r2.objective == r.objective and r2.unreachable.tolist() == [3]


def test_too_few_sites_for_reachable_demand_warns():
    cost = np.array([[1.0, np.inf], [np.inf, 1.0]])
    with pytest.warns(PlannerWarning, match="reachable by some candidate"):
        r = PMedian.from_cost_matrix(cost, p=1, weights=[1, 5]).solve()
    assert r.sites.tolist() == [1]
    assert r.unreachable.tolist() == [0]
    assert r.objective == 5.0


def test_deterministic_for_seed():
    cost, w = instance(9, n=12, m=12)
    a = PMedian.from_cost_matrix(cost, p=4, weights=w).solve(method="heuristic", seed=3)
    b = PMedian.from_cost_matrix(cost, p=4, weights=w).solve(method="heuristic", seed=3)
    assert a.sites.tolist() == b.sites.tolist() and a.objective == b.objective


# --------------------------------------------------------------------------- coverage models
@pytest.mark.parametrize("seed", range(5))
def test_mclp_matches_brute_force(seed):
    cost, w = instance(300 + seed)
    T = 30.0
    for p, fixed in ((1, []), (2, []), (3, [4])):
        free = [j for j in range(cost.shape[1]) if j not in fixed]
        expect = max(float(w[(cost[:, list(s) + fixed] <= T).any(axis=1)].sum())
                     for s in itertools.combinations(free, p))
        for method in ("exact", "heuristic"):
            r = MCLP.from_cost_matrix(cost, p=p, coverage=T, weights=w,
                                      fixed=fixed or None).solve(method=method)
            assert r.objective == pytest.approx(expect)
            cols = np.r_[r.sites, fixed].astype(int)
            assert r.objective == pytest.approx(w[(cost[:, cols] <= T).any(axis=1)].sum())
            if method == "exact":
                assert r.status == "optimal"


def test_two_candidates_p1_that_add_nothing_to_the_existing_sites_match_brute_force():
    # columns: existing site E (fixed), candidates A and B.  Every row E covers is
    # the only one A or B covers too, and the rest nobody covers: no row can gain
    # from a candidate, so the exact solver has no cut to add (used to crash)
    T = 10.0
    cost = np.array([[5.0, 8.0, 9.0],
                     [4.0, np.inf, 6.0],
                     [np.inf, 30.0, 40.0],
                     [np.inf, np.inf, np.inf]])
    w = np.array([3.0, 2.0, 7.0, 1.0])
    r = MCLP.from_cost_matrix(cost, p=1, coverage=T, weights=w, fixed=[0]).solve(method="exact")
    assert r.status == "optimal" and r.objective == 5.0 and r.sites.size == 1
    assert r.covered.tolist() == [True, True, False, False]
    pm = PMedian.from_cost_matrix(cost[:2], p=1, weights=w[:2], fixed=[0]).solve(method="exact")
    assert pm.status == "optimal" and pm.objective == 3 * 5.0 + 2 * 4.0


@pytest.mark.parametrize("seed", range(3))
def test_two_candidates_p1_with_existing_sites_match_brute_force(seed):
    # small instances with sparse costs, some existing sites and two candidates
    rng = np.random.default_rng(900 + seed)
    for _ in range(40):
        n, n_fixed = int(rng.integers(1, 7)), int(rng.integers(0, 3))
        cost = rng.integers(0, 20, (n, n_fixed + 2)).astype(float)
        cost[rng.random(cost.shape) < 0.4] = np.inf
        w = rng.integers(0, 10, n).astype(float)
        fixed = list(range(n_fixed))
        expect = max(float(w[(cost[:, [j] + fixed] <= 10.0).any(axis=1)].sum())
                     for j in (n_fixed, n_fixed + 1))
        r = MCLP.from_cost_matrix(cost, p=1, coverage=10.0, weights=w,
                                  fixed=fixed or None).solve(method="exact")
        assert r.status == "optimal" and r.objective == pytest.approx(expect)
        cols = np.r_[r.sites, fixed].astype(int)
        assert r.objective == pytest.approx(w[(cost[:, cols] <= 10.0).any(axis=1)].sum())


@pytest.mark.parametrize("seed", range(5))
def test_lscp_matches_brute_force(seed):
    cost, w = instance(400 + seed)
    T = 35.0
    A = cost <= T
    coverable = A.any(axis=1)
    expect = None
    for k in range(1, cost.shape[1] + 1):
        if any(A[:, list(s)].any(axis=1)[coverable].all()
               for s in itertools.combinations(range(cost.shape[1]), k)):
            expect = k
            break
    ctx = pytest.warns(PlannerWarning, match="cannot be covered") if not coverable.all() \
        else nullcontext()
    with ctx:
        r = LSCP.from_cost_matrix(cost, coverage=T, weights=w).solve()
    assert r.objective == expect == r.sites.size
    assert r.status == "optimal"
    assert A[:, r.sites].any(axis=1)[coverable].all()
    assert r.uncoverable.tolist() == np.flatnonzero(~coverable).tolist()


def test_lscp_target_share_and_fixed():
    # 4 demand points on a line, sites at the same spots; coverage 1 covers neighbours
    x = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    cost = np.abs(x[:, None] - x[None, :])
    w = np.array([10.0, 1.0, 1.0, 1.0, 10.0])
    r = LSCP.from_cost_matrix(cost, coverage=1.0, weights=w).solve()
    assert r.objective == 2  # e.g. sites 1 and 3 (or 0/4 + middle)
    assert (cost[:, r.sites] <= 1).any(axis=1).all()
    half = LSCP.from_cost_matrix(cost, coverage=1.0, weights=w, target_share=0.8).solve()
    assert half.objective == 2  # 80 % of 23 = 18.4 needs both heavy ends
    r2 = LSCP.from_cost_matrix(cost, coverage=1.0, weights=w, fixed=[0]).solve()
    assert r2.objective == 1 and r2.sites.tolist() == [3]  # fixed 0 covers 0-1, site 3 covers 2-4
    assert (cost[:, np.r_[r2.sites, 0]] <= 1).any(axis=1).all()
    with pytest.raises(LocateError, match="target_share = 0.9"):
        LSCP.from_cost_matrix(cost, coverage=1.0, weights=w, target_share=0.9,
                              allowed=[0]).solve()


# --------------------------------------------------------------------------- errors
def test_errors_say_what_is_wrong():
    cost = np.ones((3, 2))
    with pytest.raises(LocateError, match=r"p = 3 new sites asked for, but only 2"):
        PMedian.from_cost_matrix(cost, p=3)
    with pytest.raises(LocateError, match=r"only 1 candidate.*1 of them fixed"):
        PMedian.from_cost_matrix(cost, p=2, fixed=[0])
    with pytest.raises(LocateError, match=r"negative costs \(min -1 at row 1, column 0\)"):
        PMedian.from_cost_matrix(np.array([[1.0, 2], [-1, 3]]), p=1)
    with pytest.raises(LocateError, match=r"`weights` has 2 values but the cost matrix has 3"):
        PMedian.from_cost_matrix(cost, p=1, weights=[1, 2])
    with pytest.raises(LocateError, match="must be 2-D"):
        PMedian.from_cost_matrix(np.ones(3), p=1)
    with pytest.raises(LocateError, match=r"outside 0..1: \[5\]"):
        PMedian.from_cost_matrix(cost, p=1, fixed=[5])
    with pytest.raises(LocateError, match="NaN"):
        PMedian.from_cost_matrix(np.array([[np.nan, 1.0]]), p=1)
    with pytest.raises(LocateError, match="method='fast' is not known"):
        PMedian.from_cost_matrix(cost, p=1).solve(method="fast")
    with pytest.raises(LocateError, match="must be finite and >= 0"):
        PMedian.from_cost_matrix(cost, p=1, weights=[1, -2, 1])
    with pytest.raises(LocateError, match="capacity"):
        PMedian.from_cost_matrix(cost, p=1, capacity=[1.0])
    assert issubclass(LocateError, ValueError)


# --------------------------------------------------------------------------- OR-Library
def test_orlib_reader_last_duplicate_wins(orlib_dir, tmp_path):
    f = tmp_path / "tiny.txt"
    # edge 1-2 listed twice: 5 then 9 (reversed); the last (9) must win
    f.write_text("3 3 1\n1 2 5\n2 3 1\n2 1 9\n")
    cost, p = read_orlib(f)
    assert p == 1
    assert cost[0, 1] == 9 and cost[0, 2] == 10 and cost[1, 2] == 1


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
def test_orlib_optima_reproduced(orlib_dir, k):
    optima = {r["instance"]: r for r in csv.DictReader(open(orlib_dir / "optima.csv"))}
    cost, p = read_orlib(orlib_dir / f"pmed{k}.txt")
    assert cost.shape[0] == int(optima[f"pmed{k}"]["n"]) and p == int(optima[f"pmed{k}"]["p"])
    r = PMedian.from_cost_matrix(cost, p=p).solve(method="exact", time_limit_s=60)
    assert r.status == "optimal"
    assert r.objective == float(optima[f"pmed{k}"]["optimum"])
    assert r.objective == cost[:, r.sites].min(axis=1).sum()


# --------------------------------------------------------------------------- the run step
def walk_costs(r, cands, cutoff_min):
    """Dense walking seconds (inf = beyond the cut-off) from the demo's population to cands."""
    from planner.access import cost_matrix, snap_points

    net = r.artifacts["network"]
    stored = cost_matrix(net, snap_points(net, r.layers["population"], warn=False),
                         snap_points(net, cands, warn=False), cutoff_s=cutoff_min * 60)
    dense = np.full(stored.shape, np.inf)
    rows = np.repeat(np.arange(stored.shape[0]), np.diff(stored.indptr))
    dense[rows, stored.indices] = stored.data
    return dense


@pytest.fixture(scope="module")
def demo_run():
    import warnings

    from planner import pipeline as scenario

    # the demo has units no candidate reaches in 15 min: recorded on result.warnings,
    # checked below
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PlannerWarning)
        return scenario.run(scenario.demo_scenario_path(),
                            steps=["layers", "demand", "network", "access", "norms", "locate"])


def test_run_with_one_community_proposes_no_centre_where_nobody_lives(tmp_path):
    import geopandas as gpd

    from planner import pipeline
    from planner.pipeline.settings import LayerSettings

    # the demo with its first community only (东城街道): the other townships still
    # lack a centre by the norms, but no population unit lies in them
    demo = pipeline.demo_scenario_path()
    pop = gpd.read_file(demo.parent / "demo.gpkg", layer="communities")
    pop.iloc[[0]].to_file(tmp_path / "one.gpkg", layer="communities")
    sc = pipeline.load_scenario(demo)
    sc.layers.population = LayerSettings(path=tmp_path / "one.gpkg", layer="communities")
    with pytest.warns(PlannerWarning) as rec:
        r = pipeline.run(sc, steps=["layers", "demand", "network", "access", "norms",
                                    "locate"])
    assert {s.name: s.status for s in r.steps}["locate"] == "done"
    checks = r.tables["norm_checks"]
    lacking = set(checks.loc[(checks["measure"] == "township_centre_count")
                             & (checks["status"] == "fail"), "unit_name"])
    home = pop["township"].iloc[0]
    assert lacking - {home}  # the case: a township that needs a centre and has nobody
    for tw in lacking - {home}:
        assert any(f"township {tw} needs a centre but no population unit lies in it" in
                   str(w.message) for w in rec), tw
    plan = r.artifacts["site_plan"]
    assert not set(plan.table["township"]) & (lacking - {home})
    assert r.tables["coverage"].query("scope == 'overall'")["n_units"].eq(1).all()


def test_run_step_skips_without_locate_section():
    from planner import pipeline as scenario
    from planner.pipeline.steps import locate as run_step

    sc = scenario.load_scenario(scenario.demo_scenario_path())
    res = scenario.RunResult(scenario=sc.model_copy(update={"locate": None}))
    assert run_step(res) == "no `locate:` section in the scenario"
    res = scenario.RunResult(scenario=sc)
    assert "no walk network" in run_step(res)


def test_run_step_proposes_centres_where_norms_fail(demo_run):
    r = demo_run
    checks = r.tables["norm_checks"]
    failing = set(checks[(checks.measure == "township_centre_count")
                         & (checks.status == "fail")].unit_name)
    sites = r.layers["proposed_sites"]
    centres = sites[sites.tier == "township_centre"]
    assert set(centres.township) == failing
    assert len(centres) == len(failing)
    # the centre lies inside its township polygon and was a permitted candidate
    tw = r.layers["townships"].set_index("name")
    cands = r.layers["candidates"].set_index("id")
    for _, row in centres.iterrows():
        assert tw.loc[row.township].geometry.contains(row.geometry)
        assert cands.loc[row.candidate_id, "tier"] in ("township_centre", "", None) or \
            str(cands.loc[row.candidate_id, "tier"]) == "nan"


def test_run_step_coverage_agrees_with_access(demo_run):
    """Before/after coverage re-derived with planner.access on existing + proposed sites."""
    import pandas as pd

    from planner.access import population_access

    r = demo_run
    pop = r.layers["population"]
    cba = r.tables["coverage_before_after"].set_index("threshold_min")
    pa = r.layers["population_access"]
    for t in (5.0, 10.0, 15.0):
        before = pop.pop_60plus[pa.time_min_any <= t].sum()
        assert cba.loc[t, "pop_60plus_before"] == pytest.approx(before)
    new = r.layers["proposed_sites"][["candidate_id", "tier", "geometry"]].rename(
        columns={"candidate_id": "id"})
    fac = pd.concat([r.layers["facilities"][["id", "tier", "geometry"]], new],
                    ignore_index=True)
    after = population_access(r.artifacts["network"], pop, fac,
                              gates=r.layers.get("gates"), cutoff_min=60)
    for t in (5.0, 10.0, 15.0):
        assert cba.loc[t, "pop_60plus_after"] == pytest.approx(
            pop.pop_60plus[after.time_min_any <= t].sum())
    # LSCP closes the 15-minute circle for every unit that some site can reach in 15 min
    res = r.artifacts["locate_results"]["community_station:lscp"]
    assert res.status == "optimal"
    assert res.covered.sum() == len(pop) - res.uncoverable.size
    assert any(f"{res.uncoverable.size} 个人口单元" in w and "15 分钟内" in w
               for w in r.warnings)
    assert len(r.tables["uncoverable_units"]) == res.uncoverable.size
    tab = r.tables["proposed_sites"]
    assert (tab.pop_60plus_newly_covered <= tab.pop_60plus_served + 1e-9).all()
    assert tab.pop_60plus_newly_covered.sum() == pytest.approx(
        cba.loc[15.0, "pop_60plus_after"] - cba.loc[15.0, "pop_60plus_before"])


def test_site_plan_times_after_are_what_the_print_maps_draw(demo_run):
    """The locate step's per-unit walks after the proposals reach the print maps unchanged,
    agree with an independent routing to existing + proposed sites, and add up to its table."""
    import pandas as pd

    from planner import plots
    from planner.access import population_access

    r = demo_run
    plan = r.artifacts["site_plan"]
    pa = r.layers["population_access"]
    pop = r.layers["population"]
    new = r.layers["proposed_sites"][["candidate_id", "tier", "geometry"]].rename(
        columns={"candidate_id": "id"})
    fac = pd.concat([r.layers["facilities"][["id", "tier", "geometry"]], new], ignore_index=True)
    after = population_access(r.artifacts["network"], pop, fac, gates=r.layers.get("gates"),
                              cutoff_min=60, thresholds_min=())
    mine = np.where(np.isfinite(plan.time_min_after), plan.time_min_after, np.nan)
    np.testing.assert_allclose(mine, after["time_min_any"].to_numpy(float), rtol=1e-9)
    drawn = plots.after_times(r.study())
    np.testing.assert_allclose(drawn["time_min_after"].to_numpy(float), mine, rtol=1e-12)
    cba = r.tables["coverage_before_after"].set_index("threshold_min")
    for t in (5.0, 10.0, 15.0):
        assert cba.loc[t, "pop_60plus_after"] == pytest.approx(
            pa.pop_60plus[drawn.time_min_after <= t].sum())


def test_generate_candidates_avoid_forbidden_zones(demo_run):
    import shapely

    from planner.locate import generate_candidates

    r = demo_run
    pop = r.layers["population"]
    parks = r.layers["parks"]
    a = generate_candidates(pop, r.artifacts["network"], 8, forbidden=[parks], seed=1)
    b = generate_candidates(pop, r.artifacts["network"], 8, forbidden=[parks], seed=1)
    assert 0 < len(a) <= 8
    assert a.geometry.equals(b.geometry)
    zone = shapely.union_all(parks.geometry.to_numpy())
    assert not shapely.contains(zone, a.geometry.to_numpy()).any()
    assert a.id.tolist() == [f"gen-{i + 1}" for i in range(len(a))]


def test_from_geodataframes_matches_matrix_route(demo_run):
    """The layer route builds walking seconds with planner.access and hands off to the matrix."""
    r = demo_run
    net = r.artifacts["network"]
    pop = r.layers["population"]
    cands = r.layers["candidates"].iloc[::9]
    m = PMedian.from_geodataframes(pop, cands, net, p=2, weight="pop_60plus", cutoff_min=180)
    res = m.solve()
    dense = walk_costs(r, cands, 180)
    w = pop.pop_60plus.to_numpy(float)
    assert np.isfinite(dense.min(axis=1)).all()
    assert res.objective == pytest.approx(brute_pmedian(dense, w, 2))
    assert res.status == "optimal"
    # walking at half the speed doubles every time: same sites, twice the objective
    slow = PMedian.from_geodataframes(pop, cands, net, p=2, weight="pop_60plus", cutoff_min=360,
                                      speed_mps=net.speed_mps / 2).solve()
    assert slow.sites.tolist() == res.sites.tolist()
    assert slow.objective == pytest.approx(2 * res.objective, rel=1e-6)
    with pytest.raises(LocateError, match="no `beds` column"):
        PMedian.from_geodataframes(pop, cands, net, p=2, weight="beds")


# --------------------------------------------------------------------------- review additions
def _served_lp(cost, w, T, cap, cols, *, full):
    """Max weight served within T by open `cols` with capacities (SciPy LP, splittable);
    with `full`, None unless every row is fully served."""
    n, k = cost.shape[0], len(cols)
    ok = (cost[:, cols] <= T).ravel()
    a_row, a_cap = _share_rows(w, k)
    bounds = [(0, 1 if o else 0) for o in ok]
    if full:
        res = linprog(-np.repeat(w, k), A_ub=a_cap, b_ub=cap[cols], A_eq=a_row,
                      b_eq=np.ones(n), bounds=bounds, method="highs")
        return None if res.status != 0 else -res.fun
    res = linprog(-np.repeat(w, k), A_ub=np.vstack([a_row, a_cap]),
                  b_ub=np.r_[np.ones(n), cap[cols]], bounds=bounds, method="highs")
    return -res.fun


@pytest.mark.parametrize("seed", range(3))
def test_capacitated_mclp_matches_brute_force(seed):
    cost, w = instance(500 + seed, n=9, m=7)
    T = 35.0
    cap = np.full(7, w.sum() / 4)
    for p, fixed in ((2, []), (2, [3])):
        free = [j for j in range(7) if j not in fixed]
        expect = max(_served_lp(cost, w, T, cap, list(s) + fixed, full=False)
                     for s in itertools.combinations(free, p))
        uncap = max(float(w[(cost[:, list(s) + fixed] <= T).any(axis=1)].sum())
                    for s in itertools.combinations(free, p))
        assert expect < uncap - 1e-6  # the capacity binds
        r = MCLP.from_cost_matrix(cost, p=p, coverage=T, weights=w, fixed=fixed or None,
                                  capacity=cap).solve(method="exact")
        assert r.status == "optimal" and r.sites.size == p and not set(r.sites) & set(fixed)
        assert r.objective == pytest.approx(expect, rel=1e-6)
        sh = r.shares.toarray()
        assert ((sh * w[:, None]).sum(axis=0) <= cap + 1e-6).all()
        assert (sh[cost > T] == 0).all()
        assert set(np.flatnonzero(sh.sum(axis=0) > 0)) <= set(r.sites) | set(fixed)
        h = MCLP.from_cost_matrix(cost, p=p, coverage=T, weights=w, fixed=fixed or None,
                                  capacity=cap).solve(method="heuristic")
        assert h.objective <= expect + 1e-6 and h.sites.size == p


@pytest.mark.parametrize("seed", range(3))
def test_capacitated_lscp_matches_brute_force(seed):
    cost, w = instance(600 + seed, n=9, m=7)
    T = 40.0
    cap = np.full(7, w.sum() / 3)
    coverable = (cost <= T).any(axis=1)
    if not coverable.all():
        cost = cost[coverable]
        w = w[coverable]
    expect = next(k for k in range(1, 8) if any(
        _served_lp(cost, w, T, cap, list(s), full=True) is not None
        for s in itertools.combinations(range(7), k)))
    uncap = next(k for k in range(1, 8) if any(
        (cost[:, list(s)] <= T).any(axis=1).all() for s in itertools.combinations(range(7), k)))
    r = LSCP.from_cost_matrix(cost, coverage=T, weights=w, capacity=cap).solve()
    assert r.status == "optimal" and r.objective == expect == r.sites.size >= uncap
    assert expect > uncap or seed == 0  # seeds 1, 2: the capacity binds (4 sites, not 2)
    assert r.covered.all()
    sh = r.shares.toarray()
    assert np.allclose(sh.sum(axis=1), 1.0) and ((sh * w[:, None]).sum(axis=0) <= cap + 1e-6).all()
    with pytest.raises(LocateError, match=r"`capacity` is too small.*hold only"):
        LSCP.from_cost_matrix(cost, coverage=T, weights=w, capacity=cap / 10).solve()


def test_capacity_too_small_and_bad_inputs_raise_locate_errors():
    cost = np.array([[1.0, 2, 3], [2, 1, 3], [3, 2, 1]])
    with pytest.raises(LocateError, match=r"too small for the demand: 15 .* at most 4"):
        PMedian.from_cost_matrix(cost, p=1, weights=[5, 5, 5], capacity=[4, 1, 1]).solve()
    with pytest.raises(LocateError, match=r"bad at columns \[1\]: \[nan\]"):
        PMedian.from_cost_matrix(cost, p=1, capacity=[1, np.nan, 1])
    with pytest.raises(LocateError, match="cannot be read as numbers"):
        PMedian.from_cost_matrix([[1.0, 2.0], [3.0]], p=1)
    with pytest.raises(LocateError, match=r"whole column indices.*\[0.5\]"):
        PMedian.from_cost_matrix(cost, p=1, fixed=[0.5])
    with pytest.raises(LocateError, match=r"whole column indices.*\['a'\]"):
        PMedian.from_cost_matrix(cost, p=1, fixed=["a"])
    m = PMedian.from_cost_matrix(cost, p=1)
    for kw, msg in (({"time_limit": 0}, "time_limit must be"), ({"seed": -1}, "seed must be"),
                    ({"threads": 0}, "threads must be")):
        with pytest.raises(LocateError, match=msg):
            m.solve(**kw)
    with pytest.raises(LocateError, match="coverage must be a finite cost"):
        MCLP.from_cost_matrix(cost, p=1, coverage="near")
    # nothing to serve: all weights zero or nothing reachable -> any sites, objective 0, proven
    for model in (PMedian.from_cost_matrix(cost, p=1, weights=[0, 0, 0]),
                  PMedian.from_cost_matrix(np.full((2, 2), np.inf), p=1),
                  MCLP.from_cost_matrix(cost, p=1, coverage=0.5)):
        r = model.solve()
        assert r.objective == 0.0 and r.status == "optimal" and r.sites.size == 1


def test_exact_deterministic_for_seed_and_threads():
    cost, w = instance(11, n=12, m=12, integer=False)
    runs = [PMedian.from_cost_matrix(cost, p=3, weights=w, fixed=[0]).solve(seed=5, threads=1)
            for _ in range(2)]
    assert runs[0].sites.tolist() == runs[1].sites.tolist()
    assert runs[0].objective == runs[1].objective == pytest.approx(brute_pmedian(cost, w, 3, [0]))


def test_unlimited_capacity_of_existing_sites_is_not_misread():
    """The run step gives existing sites without a capacity 1e15 ("unlimited"); HiGHS reads
    entries >= 1e15 as infinite, which once returned objective 0 / no sites."""
    cost = np.array([[1.0, 2, 3], [2, 1, 3], [3, 2, 1], [9, 9, 1]])
    w = [5.0, 5, 5, 5]
    for big in (1e15, 1e300):
        # fixed 0 serves rows 0, 1 (5*1 + 5*2); site 2 serves rows 2, 3 (5 + 5), 10 <= cap 10
        r = PMedian.from_cost_matrix(cost, p=1, weights=w, fixed=[0],
                                     capacity=[big, 10, 10]).solve()
        assert (r.sites.tolist(), r.objective) == ([2], 25.0)
        # coverage 2: fixed 0 covers rows 0, 1; rows 2, 3 need site 2
        r = LSCP.from_cost_matrix(cost, coverage=2, weights=w, fixed=[0],
                                  capacity=[big, 10, 10]).solve()
        assert (r.sites.tolist(), r.objective) == ([2], 1.0)
        # coverage 1: fixed 0 covers row 0 (5); site 2 covers rows 2, 3 but holds only 4
        r = MCLP.from_cost_matrix(cost, p=1, coverage=1, weights=w, fixed=[0],
                                  capacity=[big, 4, 4]).solve()
        assert r.objective == pytest.approx(9.0) and r.covered.tolist() == [True] + [False] * 3
    # capacities that add up but sit out of reach: a clear error, not a traceback
    with pytest.raises(LocateError, match="even with every candidate open"):
        LSCP.from_cost_matrix(cost, coverage=1, weights=w, capacity=[100, 100, 6]).solve()


def test_generated_site_in_a_park_moves_to_nearest_residential_unit():
    import geopandas as gpd
    import shapely

    from planner.locate import generate_candidates
    from planner.network import WalkNetwork

    crs = "EPSG:32649"
    net = WalkNetwork.from_edges(np.arange(0.0, 1001, 100), np.zeros(11), np.arange(10),
                                 np.arange(1, 11), crs=crs)
    # three equal units at x = 100, 300, 900 (20 m north of the path): centre x = 433.3
    pop = gpd.GeoDataFrame({"pop_60plus": [10.0, 10.0, 10.0]},
                           geometry=[shapely.box(x - 5, 15, x + 5, 25) for x in (100, 300, 900)],
                           crs=crs)
    free = generate_candidates(pop, net, 1)
    assert free.geometry.iloc[0].x == pytest.approx(1300 / 3) and free.geometry.iloc[0].y == 0
    park = gpd.GeoDataFrame(geometry=[shapely.box(400, -50, 600, 50)], crs=crs)
    moved = generate_candidates(pop, net, 1, forbidden=[park])
    assert (moved.geometry.iloc[0].x, moved.geometry.iloc[0].y) == (300.0, 0.0)
    with pytest.raises(LocateError, match="`uncovered` has shape"):
        generate_candidates(pop, net, 1, uncovered=[True])


def test_new_centre_also_serves_as_station_in_the_run(demo_run):
    """Several tiers at once: the LSCP for stations keeps existing stations, existing centres
    and the centres just proposed fixed open, and never proposes a station on a new centre."""
    r = demo_run
    fac_t = r.layers["facilities"].tier
    sites = r.layers["proposed_sites"]
    new_centres = sites[sites.tier == "township_centre"]
    assert len(new_centres) >= 1
    res = r.artifacts["locate_results"]["community_station:lscp"]
    n_existing = int(fac_t.isin(["community_station", "township_centre"]).sum())
    assert res.fixed.size == n_existing + len(new_centres)
    stations = sites[sites.tier == "community_station"]
    assert not set(stations.candidate_id) & set(new_centres.candidate_id)
    assert len(stations) == res.sites.size == res.objective


def test_mclp_lscp_from_geodataframes_match_brute_force(demo_run):
    r = demo_run
    net, pop = r.artifacts["network"], r.layers["population"]
    cands = r.layers["candidates"].iloc[::9]
    A = walk_costs(r, cands, 30) <= 15 * 60
    w = pop.pop_60plus.to_numpy(float)
    expect = max(float(w[A[:, list(s)].any(axis=1)].sum())
                 for s in itertools.combinations(range(A.shape[1]), 2))
    mc = MCLP.from_geodataframes(pop, cands, net, p=2, coverage_min=15).solve()
    assert mc.status == "optimal" and mc.objective == pytest.approx(expect)
    # LSCP on the coverable units only: the fewest sites, by enumeration
    ok = A.any(axis=1)
    k = next(k for k in range(1, A.shape[1] + 1) if any(
        A[ok][:, list(s)].any(axis=1).all() for s in itertools.combinations(range(A.shape[1]), k)))
    ctx = pytest.warns(PlannerWarning, match="cannot be covered") if not ok.all() \
        else nullcontext()
    with ctx:
        ls = LSCP.from_geodataframes(pop, cands, net, coverage_min=15).solve()
    assert ls.objective == k and ls.uncoverable.tolist() == np.flatnonzero(~ok).tolist()


# --------------------------------------------------------------------------- branch-and-cut
@pytest.mark.parametrize("seed", range(4))
def test_branch_and_cut_matches_brute_force_fractional_costs(seed):
    # non-integer costs and weights: no integrality rounding of the bound
    rng = np.random.default_rng(100 + seed)
    cost, _ = instance(seed, n=30, m=16, integer=False)
    w = rng.uniform(0.5, 3.0, 30)
    for p, fixed in ((2, ()), (3, ()), (3, (4,))):
        expect = brute_pmedian(cost, w, p, fixed)
        r = PMedian.from_cost_matrix(cost, p=p, weights=w, fixed=list(fixed)).solve(
            method="exact")
        assert r.status == "optimal"
        assert r.objective == pytest.approx(expect, rel=1e-9)
        assert r.bound == pytest.approx(expect, rel=1e-7)


@pytest.mark.parametrize("node_limit", [1, 5000])
def test_branch_and_cut_and_mip_fallback_prove_pmed6(orlib_dir, monkeypatch, node_limit):
    # pmed6's LP bound is fractional, so the tree search runs; with a node limit of 1
    # it gives up and HiGHS's MIP (with every cut found so far) has to finish the proof
    import planner.locate._exact as ex

    calls = []
    real = ex.branch_and_cut

    def spy(*a, **k):
        out = real(*a, **k)
        calls.append(out)
        return out

    monkeypatch.setattr(ex, "branch_and_cut", spy)
    monkeypatch.setattr(ex, "_NODE_LIMIT", node_limit)
    cost, p = read_orlib(orlib_dir / "pmed6.txt")
    r = PMedian.from_cost_matrix(cost, p=p).solve(method="exact", time_limit_s=120)
    assert calls and calls[0].complete == (node_limit > 1)
    assert r.status == "optimal" and r.objective == 7824 and r.bound == 7824
    assert r.objective == cost[:, r.sites].min(axis=1).sum()


def test_from_geodataframes_bad_columns(demo_run):
    r = demo_run
    net, pop = r.artifacts["network"], r.layers["population"].copy()
    cands = r.layers["candidates"].iloc[::9]
    with pytest.raises(LocateError, match="no `beds` column"):
        PMedian.from_geodataframes(pop, cands, net, p=1, capacity="beds")
    with pytest.raises(LocateError, match="no `existing` column"):
        MCLP.from_geodataframes(pop, cands, net, p=1, coverage_min=15, fixed="existing")
    pop.loc[pop.index[[2, 4]], "pop_60plus"] = np.nan
    with pytest.warns(PlannerWarning, match=r"2 demand rows have no number in `pop_60plus` "
                                            r"\(rows \[2, 4\]\)"):
        m = PMedian.from_geodataframes(pop, cands, net, p=1)
    assert m.cd.weights[[2, 4]].tolist() == [0.0, 0.0]


@pytest.mark.parametrize("seed", [0, 2])
def test_capacitated_lscp_target_share_matches_brute_force(seed):
    cost, w = instance(700 + seed, n=9, m=7)
    cap, need = np.full(7, w.sum() / 4), 0.8 * w.sum()
    expect = next(k for k in range(1, 8) if any(
        _served_lp(cost, w, 35.0, cap, list(s), full=False) >= need - 1e-9
        for s in itertools.combinations(range(7), k)))
    r = LSCP.from_cost_matrix(cost, coverage=35.0, weights=w, capacity=cap,
                              target_share=0.8).solve()
    assert r.status == "optimal" and r.objective == expect == r.sites.size
    assert r.info["covered_weight"] >= need - 1e-6


def test_time_limit_old_name_still_works_with_a_deprecation_warning():
    cost = np.array([[0, 4, 8], [4, 0, 4], [8, 4, 0.0]])
    model = PMedian.from_cost_matrix(cost, p=1)
    with pytest.warns(DeprecationWarning, match="time_limit_s"):
        old = model.solve(time_limit=5)
    new = model.solve(time_limit_s=5)
    assert old.sites.tolist() == new.sites.tolist() == [1] and old.objective == new.objective == 8


_SOLVES = """
import numpy as np
from planner.locate import LSCP, MCLP, PMedian
rng = np.random.default_rng(5)
cost = rng.integers(1, 40, (12, 6)).astype(float)
w = rng.integers(1, 9, 12).astype(float)
for res in (PMedian.from_cost_matrix(cost, p=2, weights=w).solve(method="exact"),
            PMedian.from_cost_matrix(cost, p=2, weights=w, capacity=np.full(6, 40.0)
                                     ).solve(method="exact"),
            MCLP.from_cost_matrix(cost, p=2, coverage=15, weights=w).solve(method="exact"),
            LSCP.from_cost_matrix(cost, coverage=25, weights=w).solve(method="exact")):
    assert res.status == "optimal", res
print("solved", flush=True)
"""


def test_solves_print_no_highs_banner(capfd):
    # HiGHS prints its banner once per process, on the first solver object made with
    # output on: a fresh interpreter shows it where a test session may have seen it already
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(root), *filter(None, [os.environ.get("PYTHONPATH")])])}
    out = subprocess.run([sys.executable, "-c", _SOLVES], capture_output=True, text=True,
                         env=env, timeout=300, check=True)
    assert out.stdout == "solved\n" and "HiGHS" not in out.stderr, (out.stdout, out.stderr)
    # and in this process, nothing a solve prints reaches the console
    exec(_SOLVES.replace('print("solved", flush=True)', ""))
    got = capfd.readouterr()
    assert got.out == "" and got.err == ""
