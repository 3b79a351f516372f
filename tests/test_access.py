"""Walking times, cost matrices, coverage, blind spots, service areas and 2SFCA."""

from __future__ import annotations

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import shapely
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import Delaunay

from planner import access
from planner._errors import LayerError, PlannerWarning
from planner.access import routing, snap_points
from planner.network import WalkNetwork
from planner.pipeline import steps

CRS = "EPSG:32649"


# ----------------------------------------------------------------------------- helpers
def line_net(speed_mps: float = 1.0) -> WalkNetwork:
    """0 --100-- 1 --100-- 2 --100-- 3 along y = 0."""
    x = [0.0, 100.0, 200.0, 300.0]
    return WalkNetwork.from_edges(x, [0.0] * 4, [0, 1, 2], [1, 2, 3], crs=CRS,
                                  speed_mps=speed_mps)


def random_net(seed: int, n: int = 300, keep: float = 0.55) -> WalkNetwork:
    """An irregular planar graph (thinned Delaunay; may have several components)."""
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(0, 3000, n), rng.uniform(0, 3000, n)
    edges = set()
    for a, b, c in Delaunay(np.c_[x, y]).simplices:
        for u, v in ((a, b), (b, c), (a, c)):
            edges.add((min(u, v), max(u, v)))
    e = np.array(sorted(edges))
    e = e[rng.random(len(e)) < keep]
    # edges a little longer than straight (curvy streets), at 0.9 m/s
    length = np.hypot(x[e[:, 0]] - x[e[:, 1]], y[e[:, 0]] - y[e[:, 1]]) * rng.uniform(
        1, 1.3, len(e))
    return WalkNetwork.from_edges(x, y, e[:, 0], e[:, 1], crs=CRS, speed_mps=0.9,
                                  edge_length_m=length)


def reference_graph(net, sources, targets):
    """A NetworkX graph with the snapped points as nodes ('s', i) and ('t', j)."""
    g = nx.Graph()
    for a, b, w in zip(net.edge_u, net.edge_v, net.edge_time_s, strict=True):
        if not g.has_edge(a, b) or g[a][b]["weight"] > w:
            g.add_edge(int(a), int(b), weight=float(w))
    sp_ = net.speed_mps

    def attach(s, tag):
        for k in range(len(s)):
            e = s.edge[k]
            te = net.edge_time_s[e]
            g.add_edge((tag, k), int(net.edge_u[e]), weight=s.fraction[k] * te + s.dist_m[k] / sp_)
            g.add_edge((tag, k), int(net.edge_v[e]),
                       weight=(1 - s.fraction[k]) * te + s.dist_m[k] / sp_)

    attach(sources, "s")
    attach(targets, "t")
    for j in range(len(targets)):
        for i in np.flatnonzero(sources.edge == targets.edge[j]):
            te = net.edge_time_s[targets.edge[j]]
            w = abs(sources.fraction[i] - targets.fraction[j]) * te + (
                sources.dist_m[i] + targets.dist_m[j]) / sp_
            g.add_edge(("s", int(i)), ("t", j), weight=w)
    return g


def pts(xy):
    return np.asarray(xy, dtype=float)


# ----------------------------------------------------------------------------- hand cases
def test_time_into_an_edge_interior_is_half_the_edge_plus_the_snap():
    net = line_net(speed_mps=0.5)
    fac = snap_points(net, pts([[0, 0]]))
    unit = snap_points(net, pts([[150, 20]]))  # beside the middle of edge 1-2
    t, i = access.nearest_times(net, fac, unit)
    assert t[0] == pytest.approx((100 + 50 + 20) / 0.5)
    assert i.tolist() == [0]


def test_one_way_streets_do_not_bind_walkers():
    # edges listed in one direction only (u -> v), with a oneway attribute
    net = line_net()
    net.edges["oneway"] = "F"
    a = snap_points(net, pts([[10, 5], [290, 5]]))
    ab = access.cost_matrix(net, a.take([0]), a.take([1]), cutoff_s=1e6).toarray()
    ba = access.cost_matrix(net, a.take([1]), a.take([0]), cutoff_s=1e6).toarray()
    assert ab[0, 0] == pytest.approx(280 + 10)
    assert ba[0, 0] == pytest.approx(ab[0, 0])


def test_source_and_target_on_the_same_edge_walk_directly():
    net = line_net()
    fac = snap_points(net, pts([[120, 3]]))
    unit = snap_points(net, pts([[170, 4]]))
    t, _ = access.nearest_times(net, fac, unit)
    assert t[0] == pytest.approx(50 + 3 + 4)
    m = access.cost_matrix(net, unit, fac, cutoff_s=600)
    assert m[0, 0] == pytest.approx(57)


def test_same_edge_detour_is_used_when_it_is_shorter():
    # a winding 1000 m edge 0-1 and a 100 m shortcut 0-2-1
    x, y = [0.0, 100.0, 50.0], [0.0, 0.0, 10.0]
    net = WalkNetwork.from_edges(x, y, [0, 0, 2], [1, 2, 1], crs=CRS,
                                 edge_length_m=[1000.0, 51.0, 51.0])
    fac = snap_points(net, pts([[10, 0]]))
    unit = snap_points(net, pts([[90, 0]]))
    assert fac.edge[0] == unit.edge[0] == 0
    t, _ = access.nearest_times(net, fac, unit)
    # along the winding edge: 0.8 * 1000 = 800 s; via the nodes: 100 + 102 + 100
    assert t[0] == pytest.approx(302)


def test_disconnected_components_are_unreachable():
    x, y = [0.0, 100.0, 1000.0, 1100.0], [0.0] * 4
    net = WalkNetwork.from_edges(x, y, [0, 2], [1, 3], crs=CRS)
    fac = snap_points(net, pts([[0, 0]]))
    units = snap_points(net, pts([[50, 0], [1050, 0]]))
    t, i = access.nearest_times(net, fac, units)
    assert t[0] == pytest.approx(50) and np.isinf(t[1])
    assert i.tolist() == [0, -1]
    m = access.cost_matrix(net, units, fac, cutoff_s=1e6)
    assert m.nnz == 1 and m[0, 0] == pytest.approx(50)


def test_cutoff_makes_farther_targets_unreachable():
    net = line_net()
    fac = snap_points(net, pts([[0, 0]]))
    units = snap_points(net, pts([[100, 0], [250, 0]]))
    t, i = access.nearest_times(net, fac, units, cutoff_s=200)
    assert t[0] == pytest.approx(100) and np.isinf(t[1]) and i[1] == -1


def test_cost_matrix_keeps_explicit_zeros_and_omits_unreachable_pairs():
    net = line_net()
    fac = snap_points(net, pts([[100, 0], [300, 0]]))
    units = snap_points(net, pts([[100, 0], [130, 0], [0, 0]]))
    m = access.cost_matrix(net, units, fac, cutoff_s=150)
    assert isinstance(m, sp.csr_array)
    c = m.tocoo()
    dense = {(int(r), int(k)): v for r, k, v in zip(c.row, c.col, c.data, strict=True)}
    # explicit zero for the unit standing on a facility
    assert m.nnz == 3
    assert dense == pytest.approx({(0, 0): 0.0, (1, 0): 30.0, (2, 0): 100.0})


# ----------------------------------------------------------------------------- vs NetworkX
def _nearest_vs_networkx(net, fac, units, *, atol_s):
    """Assert `nearest_times` equals NetworkX multi-source Dijkstra; return (graph, lengths)."""
    g = reference_graph(net, fac, units)
    ref = nx.multi_source_dijkstra_path_length(g, [("s", i) for i in range(len(fac))])
    expect = np.array([ref.get(("t", j), np.inf) for j in range(len(units))])
    t, _ = access.nearest_times(net, fac, units)
    assert np.array_equal(np.isinf(t), np.isinf(expect))
    fin = np.isfinite(expect)
    np.testing.assert_allclose(t[fin], expect[fin], rtol=0, atol=atol_s)
    return g, ref


@pytest.mark.parametrize("seed", [1, 2])
def test_nearest_times_and_cost_matrix_agree_with_networkx(seed):
    net = random_net(seed)
    rng = np.random.default_rng(seed + 10)
    fac = snap_points(net, rng.uniform(0, 3000, (12, 2)), max_snap_m=1e9)
    units = snap_points(net, rng.uniform(0, 3000, (150, 2)), max_snap_m=1e9)
    g, _ = _nearest_vs_networkx(net, fac, units, atol_s=1e-6)
    # cost matrix: every pair under the cut-off, from both sides
    cutoff = 1500.0
    m = access.cost_matrix(net, units, fac, cutoff_s=cutoff)
    for i in range(len(fac)):
        d = nx.single_source_dijkstra_path_length(g, ("s", i), cutoff=cutoff + 1)
        col = m[:, [i]].toarray().ravel()
        coo = m.tocoo()
        stored = np.zeros(len(units), bool)
        stored[coo.row[coo.col == i]] = True
        for j in range(len(units)):
            # the reference may pass through another facility's point node: fine, it is a
            # street point; the along-edge geometry is identical
            want = d.get(("t", j), np.inf)
            if want <= cutoff:
                assert stored[j] and col[j] == pytest.approx(want, abs=1e-6)
            else:
                assert not stored[j]
    mt = access.cost_matrix(net, fac, units, cutoff_s=cutoff)
    assert abs(mt - m.T).max() < 1e-9 and mt.nnz == m.nnz


def test_node_times_match_bare_scipy_dijkstra_when_sources_sit_on_nodes():
    net = random_net(5, n=400, keep=0.8)
    nodes = np.array([3, 50, 120, 333])
    fac = snap_points(net, np.c_[net.node_x[nodes], net.node_y[nodes]])
    t, nearest = access.node_times(net, fac, cutoff_s=1200)
    bare, _, src = dijkstra(net.csr(), indices=nodes, min_only=True, limit=1200,
                            return_predecessors=True)
    np.testing.assert_allclose(t, bare, atol=1e-9)
    fin = np.isfinite(bare)
    assert np.array_equal(nodes[nearest[fin]], src[fin])


# ----------------------------------------------------------------------------- layers
def grid_net(n=6, step=100.0) -> WalkNetwork:
    ii, jj = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    x, y = (ii * step).ravel(), (jj * step).ravel()
    idx = (ii * n + jj)
    u = np.concatenate([idx[:-1, :].ravel(), idx[:, :-1].ravel()])
    v = np.concatenate([idx[1:, :].ravel(), idx[:, 1:].ravel()])
    return WalkNetwork.from_edges(x, y, u, v, crs=CRS)


def test_population_access_per_tier_and_thresholds():
    net = grid_net()
    fac = gpd.GeoDataFrame(
        {"id": ["F1", "F2"], "tier": ["community_station", "township_centre"]},
        geometry=shapely.points([[0, 0], [500, 500]]), crs=CRS)
    pop = gpd.GeoDataFrame(
        {"id": ["a", "b"], "population": [100, 200], "pop_60plus": [20, 50]},
        geometry=shapely.points([[0, 350], [450, 500]]), crs=CRS)
    pa = access.population_access(net, pop, fac, thresholds_min=(5, 10))
    np.testing.assert_allclose(pa["time_min_community_station"], [350 / 60, 950 / 60])
    np.testing.assert_allclose(pa["time_min_township_centre"], [650 / 60, 50 / 60])
    assert pa["time_min_district_home"].isna().all()
    np.testing.assert_allclose(pa["time_min_any"], [350 / 60, 50 / 60])
    assert pa["nearest_id"].tolist() == ["F1", "F2"]
    assert pa["within_5min"].tolist() == [False, True]
    assert pa["within_10min"].tolist() == [True, True]


def test_population_access_with_no_facility_leaves_every_unit_unreached():
    net = grid_net()
    pop = gpd.GeoDataFrame(
        {"id": ["a", "b"], "population": [100, 200], "pop_60plus": [20, 50]},
        geometry=shapely.points([[0, 350], [450, 500]]), crs=CRS)
    for fac in (gpd.GeoDataFrame({"id": [], "tier": []}, geometry=[], crs=CRS),
                gpd.GeoDataFrame(geometry=[], crs=CRS)):  # not even a tier column
        with pytest.warns(PlannerWarning, match="facilities layer is empty, so none of the 2 "
                                                "population units reaches a facility"):
            pa = access.population_access(net, pop, fac, thresholds_min=(5, 15))
        times = [c for c in pa.columns if c.startswith("time_min_")]
        assert "time_min_any" in times and pa[times].isna().all().all()
        assert pa["nearest_id"].tolist() == [None, None]
        assert not pa[["within_5min", "within_15min"]].any().any()
    cov = access.coverage_table(pa, thresholds_min=(5, 15))
    assert cov["pop_60plus_within"].eq(0).all() and cov["pop_60plus_share"].eq(0).all()
    assert access.blind_spots(pa)["pop_60plus"].sum() == 70


def test_gates_start_a_compound_at_its_nearest_gate():
    net = grid_net()
    fac = gpd.GeoDataFrame({"id": ["F"], "tier": ["community_station"]},
                           geometry=[shapely.Point(0, 0)], crs=CRS)
    # compound A spans the block (200..300, 200..300); its centre is 500 m from F,
    # its south-west gate at (200, 210) 410 m.  Compound B has no gate.
    pop = gpd.GeoDataFrame(
        {"id": ["A", "B"], "name": ["甲小区", "乙小区"], "population": [10, 10]},
        geometry=[shapely.box(205, 205, 295, 295), shapely.box(405, 5, 495, 95)], crs=CRS)
    gates = gpd.GeoDataFrame({"community": ["甲小区", "A"]},
                             geometry=shapely.points([[210, 200], [290, 300]]), crs=CRS)
    pa = access.population_access(net, pop, fac, gates=gates)
    assert pa["time_min_any"].iloc[0] * 60 == pytest.approx(410)
    # B: representative point; compare with a direct snap of it
    rep = pop.geometry.iloc[1].representative_point()
    t, _ = access.nearest_times(net, snap_points(net, [shapely.Point(0, 0)]),
                                snap_points(net, [rep]))
    assert pa["time_min_any"].iloc[1] * 60 == pytest.approx(t[0])
    with pytest.warns(PlannerWarning, match="not in the population layer.*丙小区"):
        access.snap_units(net, pop, gates=gates.assign(community=["丙小区", "A"]))
    # without a `community` column (OSM entrance nodes) gates join the polygon they touch
    # or the nearest within 50 m: both gates are 5 m outside A's wall; a third is far off
    bare = gpd.GeoDataFrame({"id": ["g1", "g2", "g3"]},
                            geometry=shapely.points([[210, 200], [290, 300], [1000, 1000]]),
                            crs=CRS)
    with pytest.warns(PlannerWarning, match=r"1 gate\(s\) lie more than 50 m .*: g3\."):
        pa2 = access.population_access(net, pop, fac, gates=bare)
    np.testing.assert_allclose(pa2["time_min_any"], pa["time_min_any"])
    units = access.snap_units(net, pop, gates=bare.iloc[:2])
    assert units.unit.tolist() == [0, 0, 1] and units.ids[:2].tolist() == [
        "A (gate g1)", "A (gate g2)"]
    points = pop.assign(geometry=pop.geometry.centroid)
    with pytest.raises(LayerError, match="no `community` column and the population units are "
                                         "points"):
        access.snap_units(net, points, gates=gates.drop(columns="community"))


def test_gated_cost_matrix_takes_the_best_gate():
    net = grid_net()
    pop = gpd.GeoDataFrame({"id": ["A"]}, geometry=[shapely.box(205, 205, 295, 295)], crs=CRS)
    gates = gpd.GeoDataFrame({"community": ["A", "A"]},
                             geometry=shapely.points([[210, 200], [290, 300]]), crs=CRS)
    units = access.snap_units(net, pop, gates=gates)
    fac = snap_points(net, pts([[0, 0], [500, 500]]))
    m = access.cost_matrix(net, units, fac, cutoff_s=1e6)
    assert m.shape == (1, 2)
    np.testing.assert_allclose(m.toarray(), [[410, 410]])


def _pa_hand():
    # four units with known times (minutes) in two townships of one district
    return gpd.GeoDataFrame(
        {
            "id": ["a", "b", "c", "d"],
            "population": [100.0, 200.0, 300.0, 400.0],
            "pop_60plus": [10.0, 20.0, 30.0, 40.0],
            "township": ["T1", "T1", "T2", "T2"],
            "district": ["D", "D", "D", "D"],
            "time_min_any": [3.0, 12.0, np.nan, 7.0],
            "time_min_community_station": [3.0, 16.0, np.nan, np.nan],
        },
        geometry=shapely.points([[0, 0], [100, 0], [5000, 0], [5100, 0]]), crs=CRS)


def test_coverage_table_hand_case():
    cov = access.coverage_table(_pa_hand(), thresholds_min=(5, 10, 15))
    row = cov.set_index(["tier", "minutes", "scope", "area"])
    r = row.loc[("any", 10.0, "overall", "全部")]
    assert (r.population, r.population_within, r.pop_60plus_within) == (1000, 500, 50)
    assert r.population_share == pytest.approx(0.5)
    assert r.n_units_within == 2
    assert row.loc[("any", 15.0, "township", "T1")].pop_60plus_share == pytest.approx(1.0)
    assert row.loc[("any", 15.0, "township", "T2")].pop_60plus_share == pytest.approx(40 / 70)
    assert row.loc[("any", 5.0, "district", "D")].population_within == 100
    assert row.loc[("community_station", 15.0, "overall", "全部")].population_within == 100
    # the township rows add up to the overall row
    sub = cov[(cov.scope == "township") & (cov.tier == "any")].groupby("minutes").sum(
        numeric_only=True)
    tot = cov[(cov.scope == "overall") & (cov.tier == "any")].set_index("minutes")
    np.testing.assert_allclose(sub["population_within"], tot["population_within"])
    assert set(cov.tier) == {"any", "community_station"}
    en = access.coverage_table(_pa_hand(), lang="en")
    assert "All" in set(en.area)


def test_blind_spots_group_nearby_uncovered_units():
    pa = _pa_hand()
    pa.loc[1, "time_min_any"] = 20.0
    pa = pd.concat([pa, pa.iloc[[2]].assign(id="e", geometry=[shapely.Point(5150, 0)],
                                              time_min_any=25.0)], ignore_index=True)
    pa = gpd.GeoDataFrame(pa, crs=CRS)
    gaps = access.blind_spots(pa, circle_min=15, eps_m=300)
    # b alone (20 elderly); c + e together (60 elderly), d (7 min) is covered
    assert gaps["n_units"].tolist() == [2, 1]
    assert gaps["pop_60plus"].tolist() == [60.0, 20.0]
    assert gaps["gap_id"].tolist() == [1, 2]
    assert gaps["n_unreachable"].tolist() == [1, 0]
    assert gaps["time_min_nearest"].iloc[0] == pytest.approx(25.0)
    assert set(gaps["unit_ids"].iloc[0].split(",")) == {"c", "e"}
    assert gaps.geometry.iloc[0].contains(shapely.Point(5100, 0))
    none = access.blind_spots(pa.assign(time_min_any=1.0))
    assert len(none) == 0 and "pop_60plus" in none.columns


# ----------------------------------------------------------------------------- service areas
def test_service_area_contains_the_reachable_partial_edge_but_not_beyond():
    net = line_net()
    fac = snap_points(net, pts([[0, 0]]))
    sa = access.service_areas(net, fac, minutes=(2.5,), buffer_m=25)  # 150 m at 1 m/s
    poly = sa.geometry.iloc[0]
    assert poly.covers(shapely.Point(149, 0))
    assert poly.covers(shapely.Point(150, 0))
    assert not poly.covers(shapely.Point(176, 0))
    assert poly.area == pytest.approx(150 * 50 + np.pi * 25**2, rel=0.03)
    assert sa["minutes"].tolist() == [2.5]


def test_service_area_covers_own_edge_both_ways_and_the_snap_walk():
    net = line_net()
    fac = snap_points(net, pts([[150, 40]]))  # 40 m off edge 1-2
    sa = access.service_areas(net, fac, minutes=(1.5,), buffer_m=5, quad_segs=8)  # 90 s
    poly = sa.geometry.iloc[0]
    assert poly.covers(shapely.Point(150, 20))   # on the snap walk
    assert poly.covers(shapely.Point(100, 0)) and poly.covers(shapely.Point(199, 0))
    assert not poly.covers(shapely.Point(210, 0)) and not poly.covers(shapely.Point(90, 0))


def test_service_areas_of_facilities_that_reach_no_street_are_empty_and_named():
    # one street (a single line), 300 m at 1 m/s; b is 400 m off it (6.7 min walk),
    # c 2 km off (33 min): neither reaches a street in 5 min, c not in 10 min either
    net = WalkNetwork.from_edges([0.0, 300.0], [0.0, 0.0], [0], [1], crs=CRS, speed_mps=1.0)
    # within a raised snap limit (beyond it a facility gets no rows at all, tested elsewhere)
    fac = snap_points(net, pts([[150, 400], [150, 2000]]), warn=False, max_snap_m=5000)
    fac.ids = np.array(["b", "c"], dtype=object)
    with pytest.warns(PlannerWarning) as rec:
        sa = access.service_areas(net, fac, minutes=(5, 10), buffer_m=10, quad_segs=16)
    msg = str(rec[0].message)
    assert "2 of 2 facilities" in msg and "no service-area polygon" in msg
    assert "c (2000 m; 5, 10 min)" in msg and "b (400 m; 5 min)" in msg
    assert sa["facility_id"].tolist() == ["b", "b", "c", "c"]
    assert sa.geometry.isna().tolist() == [True, False, True, True]
    # b in 10 min: its 400 s walk, then 200 s both ways along the 300 m street (all of it)
    truth = shapely.union_all([shapely.LineString([(0, 0), (300, 0)]),
                               shapely.LineString([(150, 400), (150, 0)])]).buffer(10, 16)
    assert sa.geometry.iloc[1].symmetric_difference(truth).area < 1e-6 * truth.area
    # a facility on the street beside them gets the polygon it gets alone
    both = snap_points(net, pts([[150, 0], [150, 2000]]), warn=False, max_snap_m=5000)
    with pytest.warns(PlannerWarning, match="1 of 2 facilities"):
        mixed = access.service_areas(net, both, minutes=(5,), buffer_m=10)
    alone = access.service_areas(net, both.take([0]), minutes=(5,), buffer_m=10)
    assert mixed.geometry.iloc[0].equals(alone.geometry.iloc[0])
    assert mixed.geometry.iloc[1] is None


def test_service_areas_cover_every_reachable_street_point_on_a_random_net():
    net = random_net(7, n=250, keep=0.7)
    rng = np.random.default_rng(1)
    fac = snap_points(net, rng.uniform(500, 2500, (3, 2)), max_snap_m=1e9)
    sa = access.service_areas(net, fac, minutes=(5, 10), buffer_m=10,
                              tiers=["community_station"] * 3)
    assert len(sa) == 6 and set(sa.tier) == {"community_station"}
    lines = shapely.linestrings(np.stack(
        [np.c_[net.node_x[net.edge_u], net.node_y[net.edge_u]],
         np.c_[net.node_x[net.edge_v], net.node_y[net.edge_v]]], 1))
    frac = rng.uniform(0, 1, 3000)
    e = rng.integers(0, net.n_edges, 3000)
    probe = snap_points(net, np.c_[shapely.get_x(shapely.line_interpolate_point(
        lines[e], frac, normalized=True)), shapely.get_y(shapely.line_interpolate_point(
            lines[e], frac, normalized=True))])
    for i in range(3):
        t, _ = access.nearest_times(net, fac.take([i]), probe)
        mine = sa.facility_id == i
        for minutes, poly in zip(sa.minutes[mine], sa.geometry[mine], strict=True):
            inside = shapely.covers(poly, shapely.points(np.c_[probe.x, probe.y]))
            reach = t <= minutes * 60 - 1e-6
            assert reach.any() and inside[reach].all()
            assert not inside[t > minutes * 60 + 10 * 3 / net.speed_mps + 100].any()


# ----------------------------------------------------------------------------- 2SFCA
def test_2sfca_hand_case():
    # two demand units, two facilities; unit 0 reaches both, unit 1 only facility 1
    cost = sp.csr_array(np.array([[60.0, 300.0], [0.0, 120.0]]))
    cost = sp.csr_array((np.array([60.0, 300.0, 120.0]), np.array([0, 1, 1]),
                         np.array([0, 2, 3])), shape=(2, 2))
    demand = np.array([100.0, 300.0])
    supply = np.array([10.0, 20.0])
    acc, ratio = access.fca_scores(cost, demand, supply, catchment_s=600, decay="none")
    # R0 = 10/100, R1 = 20/400; A0 = R0 + R1, A1 = R1
    np.testing.assert_allclose(ratio, [0.1, 0.05])
    np.testing.assert_allclose(acc, [0.15, 0.05])
    # total supply is conserved: sum_i A_i D_i = sum_j S_j
    assert (acc * demand).sum() == pytest.approx(30.0)
    acc_g, ratio_g = access.fca_scores(cost, demand, supply, catchment_s=600, decay="gaussian")
    w = lambda d: (np.exp(-0.5 * (d / 600) ** 2) - np.exp(-0.5)) / (1 - np.exp(-0.5))  # noqa: E731
    r0 = 10 / (w(60) * 100)
    r1 = 20 / (w(300) * 100 + w(120) * 300)
    np.testing.assert_allclose(ratio_g, [r0, r1])
    np.testing.assert_allclose(acc_g, [w(60) * r0 + w(300) * r1, w(120) * r1])


def test_2sfca_explicit_zero_cost_counts_as_reachable():
    cost = sp.csr_array((np.array([0.0]), np.array([0]), np.array([0, 1, 1])), shape=(2, 1))
    acc, ratio = access.fca_scores(cost, np.array([50.0, 50.0]), np.array([5.0]),
                                   catchment_s=900, decay="gaussian")
    np.testing.assert_allclose(acc, [0.1, 0.0])


def test_fca_on_layers_and_missing_supply_column():
    net = grid_net()
    fac = gpd.GeoDataFrame({"id": ["F"], "beds": [30]}, geometry=[shapely.Point(0, 0)], crs=CRS)
    pop = gpd.GeoDataFrame({"id": ["a", "b"], "pop_60plus": [100.0, 200.0]},
                           geometry=shapely.points([[0, 100], [500, 500]]), crs=CRS)
    out = access.fca(net, pop, fac, supply="beds", catchment_min=15, decay="none")
    np.testing.assert_allclose(out["accessibility"], [0.3, 0.0])
    assert out["n_facilities"].tolist() == [1, 0]
    with pytest.raises(LayerError, match="no `floor_area_m2` column"):
        access.fca(net, pop, fac, supply="floor_area_m2")


# ----------------------------------------------------------------------------- the access step

def _result(access_settings=None):
    from planner.pipeline import RunResult
    from planner.pipeline.settings import LayersSettings, Scenario

    sc = Scenario(name="t", layers=LayersSettings(), access=access_settings)
    return RunResult(scenario=sc, crs=CRS)


def test_run_step_skips_without_network_or_facilities():
    res = _result()
    assert "no walk network" in steps.access(res)
    res.artifacts["network"] = grid_net()
    assert "no facilities" in steps.access(res)


def test_run_step_fills_layers_tables_and_artifacts():
    from planner.pipeline.settings import AccessSettings, FCASettings

    net = grid_net()
    # an island component far away, with one unit on it
    island = WalkNetwork.from_edges(
        np.r_[net.node_x, 5000, 5100], np.r_[net.node_y, 0, 0],
        np.r_[net.edge_u, 36], np.r_[net.edge_v, 37], crs=CRS)
    res = _result(AccessSettings(thresholds_min=[5, 10], fca=FCASettings(supply="beds")))
    res.artifacts["network"] = island
    res.layers["facilities"] = gpd.GeoDataFrame(
        {"id": ["F1", "F2"], "tier": ["community_station", "township_centre"], "beds": [10, 40]},
        geometry=shapely.points([[0, 0], [500, 500]]), crs=CRS)
    res.layers["population"] = gpd.GeoDataFrame(
        {"id": ["a", "b", "c"], "population": [100, 200, 50], "pop_60plus": [20, 50, 10],
         "township": ["T1", "T2", "T2"]},
        geometry=shapely.points([[0, 350], [450, 500], [5050, 0]]), crs=CRS)
    with pytest.warns(PlannerWarning, match=r"1 population units reach no facility.*: c\."):
        assert steps.access(res) is None
    pa = res.layers["population_access"]
    np.testing.assert_allclose(pa["time_min_any"], [350 / 60, 50 / 60, np.nan])
    cov = res.tables["coverage"]
    r = cov[(cov.tier == "any") & (cov.scope == "overall") & (cov.minutes == 10)].iloc[0]
    assert r.pop_60plus_within == 70 and r.pop_60plus == 80
    assert res.layers["blind_spots"]["unit_ids"].tolist() == ["c"]
    sa = res.layers["service_areas"]
    assert len(sa) == 4 and sa["minutes"].tolist() == [5, 10, 5, 10]
    assert sa["tier"].tolist()[::2] == ["community_station", "township_centre"]
    assert len(res.artifacts["snap_population"]) == 3
    assert len(res.tables["fca"]) == 3
    assert res.tables["fca"]["accessibility"].iloc[2] == 0


def test_run_step_without_access_section_uses_defaults_and_records_far_snaps():
    res = _result(None)
    res.artifacts["network"] = grid_net()
    res.layers["facilities"] = gpd.GeoDataFrame(
        {"id": ["F1"], "tier": ["community_station"]}, geometry=[shapely.Point(0, 0)], crs=CRS)
    res.layers["population"] = gpd.GeoDataFrame(
        {"id": ["far"], "population": [10], "pop_60plus": [1]},
        geometry=[shapely.Point(0, 900)], crs=CRS)
    with pytest.warns(PlannerWarning, match=r"more than 300 m.*far \(400 m\)"):
        steps.access(res)
    # the run records it in the scenario's language (Chinese by default)
    assert any("far（400 米）" in w and "超过 300 米" in w for w in res.warnings)
    # 400 m snap to (0, 500), then 500 m along the street to F1
    assert res.layers["population_access"]["time_min_any"].iloc[0] * 60 == pytest.approx(900)
    assert set(res.layers["service_areas"]["minutes"]) == {5.0, 10.0, 15.0}
    assert "fca" not in res.tables


# ----------------------------------------------------------------------------- real networks
def _check_against_networkx(net, rng, n_fac=15, n_units=200):
    lo = np.array([net.node_x.min(), net.node_y.min()])
    hi = np.array([net.node_x.max(), net.node_y.max()])
    fac = snap_points(net, rng.uniform(lo, hi, (n_fac, 2)), max_snap_m=1e9)
    units = snap_points(net, rng.uniform(lo, hi, (n_units, 2)), max_snap_m=1e9)
    # to 1e-6 m of walk (seconds x the network's speed)
    m = net.speed_mps
    _, ref = _nearest_vs_networkx(net, fac, units, atol_s=1e-6 / m)
    # node times too
    d, _ = access.node_times(net, fac)
    nodes = np.array([ref.get(i, np.inf) for i in range(net.n_nodes)])
    fn = np.isfinite(nodes)
    np.testing.assert_allclose(d[fn] * m, nodes[fn] * m, rtol=0, atol=1e-6)
    assert np.array_equal(np.isinf(d), np.isinf(nodes))


def test_agrees_with_networkx_on_the_demo_network():
    from pathlib import Path

    from planner import network

    demo = Path(access.__file__).parents[1] / "data" / "demo.gpkg"
    if not demo.is_file():
        pytest.skip("demo.gpkg not generated yet")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PlannerWarning)
        net = network.from_lines(demo, layer="roads")
    _check_against_networkx(net, np.random.default_rng(11))


@pytest.mark.xian
def test_agrees_with_networkx_on_xian(xian_dir):
    import warnings

    from planner import network

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PlannerWarning)
        net = network.from_lines(xian_dir / "xian_road.kml")
    _check_against_networkx(net, np.random.default_rng(12), n_fac=40, n_units=500)


def test_blind_spots_merge_touching_compounds_whose_centres_are_far_apart():
    # two 600 m long compounds side by side (touching) and a third 1 km away
    geoms = [shapely.box(0, 0, 600, 100), shapely.box(600, 0, 1200, 100),
             shapely.box(2300, 0, 2400, 100)]
    pa = gpd.GeoDataFrame({"id": ["a", "b", "c"], "pop_60plus": [5.0, 7.0, 30.0],
                           "time_min_any": [20.0, np.nan, 16.0]}, geometry=geoms, crs=CRS)
    gaps = access.blind_spots(pa, circle_min=15, eps_m=300)
    assert gaps["n_units"].tolist() == [1, 2]
    assert gaps["pop_60plus"].tolist() == [30.0, 12.0]
    assert gaps.geometry.iloc[1].area == pytest.approx(1200 * 100)


def test_service_area_at_another_speed_reaches_proportionally_farther():
    net = line_net()
    fac = snap_points(net, pts([[0, 0]]))
    sa = access.service_areas(net, fac, minutes=(2.0,), speed_mps=2.0, buffer_m=5)
    poly = sa.geometry.iloc[0]
    assert poly.covers(shapely.Point(239, 0)) and not poly.covers(shapely.Point(250, 0))


def test_cost_matrix_in_many_chunks_equals_one_chunk(monkeypatch):
    net = random_net(3, n=200, keep=0.8)
    rng = np.random.default_rng(4)
    a = snap_points(net, rng.uniform(0, 3000, (40, 2)), max_snap_m=1e9)
    b = snap_points(net, rng.uniform(0, 3000, (60, 2)), max_snap_m=1e9)
    one = access.cost_matrix(net, a, b, cutoff_s=1200)
    monkeypatch.setattr(routing, "_MEMORY_BYTES", 8 * 3 * 400 * 7)  # ~7 rows per chunk
    many = access.cost_matrix(net, a, b, cutoff_s=1200)
    assert many.nnz == one.nnz > 0
    assert np.array_equal(many.indices, one.indices)
    np.testing.assert_allclose(many.data, one.data, atol=1e-9)


def test_far_gate_is_reported_under_its_compound():
    net = grid_net()
    pop = gpd.GeoDataFrame({"id": ["A"]}, geometry=[shapely.box(205, 205, 295, 295)], crs=CRS)
    gates = gpd.GeoDataFrame({"community": ["A"]}, geometry=[shapely.Point(250, 1000)], crs=CRS)
    with pytest.warns(PlannerWarning, match=r"A \(gate 0\) \(500 m\)"):
        units = access.snap_units(net, pop, gates=gates)
    assert units.unit.tolist() == [0] and units.far.tolist() == [True]


def test_routing_csr_equals_the_network_csr_with_parallel_edges_and_loops():
    x, y = [0.0, 100.0, 200.0], [0.0, 0.0, 0.0]
    net = WalkNetwork.from_edges(x, y, [0, 1, 0, 2, 1], [1, 0, 1, 1, 1], crs=CRS,
                                 edge_length_m=[100.0, 90.0, 120.0, 100.0, 5.0])
    indptr, indices, data = routing._base_csr(net)
    mine = sp.csr_matrix((data, indices, indptr), shape=(3, 3))
    assert (mine != net.csr()).nnz == 0
    assert mine[0, 1] == pytest.approx(90.0) and mine[1, 0] == pytest.approx(90.0)


def _reference_service_area(net, fac, i, lim_s, buffer_m, quad_segs):
    """Independent construction: NetworkX Dijkstra from the facility, every edge cut
    with ``shapely.ops.substring``, the buffers unioned."""
    from shapely.ops import substring

    from planner.access.snap import edge_geometries

    g = nx.Graph()
    for a, b, w in zip(net.edge_u.tolist(), net.edge_v.tolist(), net.edge_time_s.tolist(),
                       strict=True):
        if not g.has_edge(a, b) or g[a][b]["weight"] > w:
            g.add_edge(a, b, weight=w)
    e0, f0 = int(fac.edge[i]), float(fac.fraction[i])
    te0 = float(net.edge_time_s[e0])
    snap = float(fac.dist_m[i]) / net.speed_mps
    g.add_edge("f", int(net.edge_u[e0]), weight=f0 * te0 + snap)
    g.add_edge("f", int(net.edge_v[e0]), weight=(1 - f0) * te0 + snap)
    dist = nx.single_source_dijkstra_path_length(g, "f")
    lines = edge_geometries(net)
    pieces = []
    for e in range(net.n_edges):
        te = float(net.edge_time_s[e])
        ru = (lim_s - dist.get(int(net.edge_u[e]), np.inf)) / te
        rv = (lim_s - dist.get(int(net.edge_v[e]), np.inf)) / te
        if ru >= 1 or rv >= 1 or (ru >= 0 and rv >= 0 and ru + rv >= 1):
            pieces.append(lines[e])
            continue
        if ru >= 0:
            pieces.append(substring(lines[e], 0.0, ru, normalized=True))
        if rv >= 0:
            pieces.append(substring(lines[e], 1.0 - rv, 1.0, normalized=True))
    if lim_s >= snap:
        r = (lim_s - snap) / te0
        pieces.append(substring(lines[e0], max(f0 - r, 0.0), min(f0 + r, 1.0), normalized=True))
    if fac.dist_m[i] > 0:
        p = np.array([fac.point_x[i], fac.point_y[i]])
        q = np.array([fac.x[i], fac.y[i]])
        frac = min(lim_s * net.speed_mps / fac.dist_m[i], 1.0)
        pieces.append(shapely.LineString([p, p + frac * (q - p)]))
    return shapely.union_all(shapely.buffer(np.array(pieces, dtype=object), buffer_m,
                                            quad_segs=quad_segs))


def assert_same_area(got, ref, buffer_m: float, quad_segs: int) -> None:
    """``got`` equals ``ref`` up to slivers from drawing the round parts with other vertices.

    Both draw circular arcs as chords with ``quad_segs`` segments per quarter
    circle, but not always from the same vertices, so they may differ by
    slivers no wider than a chord's sagitta.  Anything wider (a missed band,
    a wrong hole) survives eroding the difference by that width.
    """
    sagitta = buffer_m * (1.0 - np.cos(np.pi / (4 * quad_segs)))
    diff = shapely.symmetric_difference(got, ref)
    assert diff.area < sagitta * ref.length  # slivers along the boundary at most
    assert shapely.buffer(diff, -1.01 * sagitta).is_empty


@pytest.mark.parametrize("memory", [None, 8 * 260 * 3])  # one chunk; chunks of ~3 facilities
def test_service_areas_equal_an_independent_reference_on_a_random_net(monkeypatch, memory):
    if memory is not None:
        monkeypatch.setattr(routing, "_MEMORY_BYTES", memory)
    net = random_net(11, n=250, keep=0.7)
    rng = np.random.default_rng(5)
    xy = rng.uniform(300, 2700, (7, 2))
    xy[0] = [net.node_x[3], net.node_y[3]]  # on a node, no snap walk
    fac = snap_points(net, xy, max_snap_m=1e9)
    minutes = (4.0, 9.0, 15.0)
    sa = access.service_areas(net, fac, minutes=minutes, buffer_m=20, quad_segs=16)
    assert len(sa) == 7 * 3
    assert sa["minutes"].tolist() == list(minutes) * 7
    assert sa["facility_id"].tolist() == np.repeat(fac.ids, 3).tolist()
    for i in range(7):
        prev = None
        for j, m in enumerate(minutes):
            got = sa.geometry.iloc[3 * i + j]
            ref = _reference_service_area(net, fac, i, m * 60.0, 20.0, 16)
            assert_same_area(got, ref, 20.0, 16)
            if prev is not None:  # nested thresholds, up to slivers where the round parts
                # of a block's eroded core and of a band are drawn with other vertices
                assert shapely.difference(prev, got).area < 1e-6 * prev.area
            prev = got


def _grid_net(side: int, spacing: float, seed: int) -> WalkNetwork:
    rng = np.random.default_rng(seed)
    ii, jj = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
    x = (ii * spacing + rng.uniform(-5, 5, ii.shape)).ravel()
    y = (jj * spacing + rng.uniform(-5, 5, ii.shape)).ravel()
    idx = ii * side + jj
    u = np.r_[idx[:-1, :].ravel(), idx[:, :-1].ravel()]
    v = np.r_[idx[1:, :].ravel(), idx[:, 1:].ravel()]
    keep = rng.random(u.size) > 0.15
    return WalkNetwork.from_edges(x, y, u[keep], v[keep], crs=CRS, speed_mps=1.2)


@pytest.mark.parametrize("edges", ["plain", "fast", "instant"])
def test_cost_matrix_by_tiles_equals_networkx_pair_by_pair(monkeypatch, edges):
    """Sources far apart on a grid much larger than the reach: each tile of sources runs on a
    box of the network; every pair must still equal NetworkX on the whole graph.  "fast":
    some edges walk faster than their straight length (a moving walkway, downhill), so the
    reach radius must grow; "instant": an edge of zero time between distinct nodes (no radius
    bounds the reach, the whole network is used)."""
    from dataclasses import replace

    net = _grid_net(40, 50.0, seed=7)
    rng = np.random.default_rng(8)
    if edges != "plain":
        t = net.edge_time_s.copy()
        pick = rng.choice(net.n_edges, 40, replace=False)
        t[pick] *= 0.0 if edges == "instant" else 0.3
        net = replace(net, edge_time_s=t)
    src = snap_points(net, rng.uniform(0, 1950, (60, 2)), max_snap_m=1e9)
    tgt = snap_points(net, rng.uniform(0, 1950, (90, 2)), max_snap_m=1e9)
    tgt = snap_points(net, np.r_[np.c_[tgt.point_x, tgt.point_y],
                                 np.c_[src.point_x[:5], src.point_y[:5]] + 3.0],
                      max_snap_m=1e9)  # some targets on a source's edge
    cutoff = 400.0
    monkeypatch.setattr(routing, "_MEMORY_BYTES", 8 * 3 * 2000 * 2)  # a few rows per chunk
    sizes = []

    def spy(graph, **kw):
        sizes.append(graph.shape[0] - len(kw["indices"]))  # nodes of the (sub)network
        return dijkstra(graph, **kw)

    monkeypatch.setattr(routing, "dijkstra", spy)
    m = access.cost_matrix(net, src, tgt, cutoff_s=cutoff)
    g = reference_graph(net, src, tgt)
    want = np.full((len(src), len(tgt)), np.inf)
    for i in range(len(src)):
        d = nx.single_source_dijkstra_path_length(g, ("s", i), cutoff=cutoff + 1)
        for j in range(len(tgt)):
            want[i, j] = d.get(("t", j), np.inf)
    want[want > cutoff] = np.inf
    got = np.full(want.shape, np.inf)
    c = m.tocoo()
    got[c.row, c.col] = c.data
    assert np.array_equal(np.isfinite(got), np.isfinite(want))
    assert 0.02 < np.isfinite(want).mean() < 0.5  # the cut-off binds, and pairs exist
    fin = np.isfinite(want)
    np.testing.assert_allclose(got[fin], want[fin], rtol=0, atol=1e-6)
    if edges == "instant":
        assert routing._seconds_per_metre(net) == 0.0 and set(sizes) == {net.n_nodes}
    elif edges == "fast":  # the reach radius grows 1 / 0.3 times
        assert routing._seconds_per_metre(net) == pytest.approx(0.3 / 1.2)
    else:  # many chunks, each on a part of the network
        assert routing._seconds_per_metre(net) == pytest.approx(1 / 1.2)
        assert len(sizes) > 5 and max(sizes) < net.n_nodes / 2
