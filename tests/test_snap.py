"""Snapping points onto the nearest point of the nearest edge."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

from planner._errors import LayerError, PlannerWarning
from planner.access import snap as snap_mod
from planner.access import snap_points
from planner.network import WalkNetwork

CRS = "EPSG:32649"


def line_net(**kw) -> WalkNetwork:
    # 0 --100 m-- 1 --100 m-- 2, then a long edge 2 -- 3 (1000 m)
    x = [0.0, 100.0, 200.0, 1200.0]
    y = [0.0, 0.0, 0.0, 0.0]
    return WalkNetwork.from_edges(x, y, [0, 1, 2], [1, 2, 3], crs=CRS, **kw)


def test_point_beside_middle_of_edge_snaps_into_the_interior():
    net = line_net()
    s = snap_points(net, np.array([[150.0, 10.0]]))
    assert s.edge.tolist() == [1]
    assert s.fraction[0] == pytest.approx(0.5)
    assert (s.x[0], s.y[0]) == pytest.approx((150.0, 0.0))
    assert s.dist_m[0] == pytest.approx(10.0)
    assert not s.far[0]


def test_nearest_point_on_edge_not_nearest_node():
    net = line_net()
    # 600 m from node 2 and node 3 alike, 40 m from the long edge's interior
    s = snap_points(net, np.array([[700.0, -40.0]]))
    assert s.edge[0] == 2
    assert s.fraction[0] == pytest.approx(0.5)
    assert s.dist_m[0] == pytest.approx(40.0)


def test_fraction_runs_from_u_even_when_geometry_is_drawn_backwards():
    x, y = [0.0, 100.0, 100.0], [0.0, 0.0, 100.0]
    # edge 0: 0 -> 1 drawn from 1 to 0 through a bend at (50, -50)
    geom = [
        shapely.LineString([(100, 0), (50, -50), (0, 0)]),
        shapely.LineString([(100, 0), (100, 100)]),
    ]
    edges = gpd.GeoDataFrame({"u": [0, 1], "v": [1, 2]}, geometry=geom, crs=CRS)
    net = WalkNetwork.from_edges(x, y, [0, 1], [1, 2], crs=CRS, edges=edges,
                                 edge_length_m=[2 * np.hypot(50, 50), 100.0])
    s = snap_points(net, np.array([[25.0, -25.0 - 3.0]]))
    assert s.edge[0] == 0
    # a quarter of the bent line from node 0 (which is the geometry's end)
    assert s.fraction[0] == pytest.approx(0.25 + 3 / np.sqrt(2) / (4 * np.hypot(25, 25)), abs=1e-9)


def test_polygon_snaps_from_its_representative_point():
    net = line_net()
    poly = shapely.box(140, 20, 160, 60)
    s = snap_points(net, gpd.GeoSeries([poly], crs=CRS))
    assert s.edge[0] == 1
    assert poly.contains(shapely.Point(s.point_x[0], s.point_y[0]))
    assert s.dist_m[0] == pytest.approx(s.point_y[0])


def test_far_snaps_are_flagged_and_listed_with_ids_and_distances():
    net = line_net()
    pts = gpd.GeoDataFrame({"id": ["near", "faraway"]},
                           geometry=shapely.points([[50, 5], [50, 500]]), crs=CRS)
    with pytest.warns(PlannerWarning, match=r"1 points lie more than 300 m.*faraway \(500 m\)"):
        s = snap_points(net, pts, max_snap_m=300)
    assert s.far.tolist() == [False, True]
    assert s.ids.tolist() == ["near", "faraway"]


def test_other_crs_is_reprojected():
    net = line_net()
    pts = gpd.GeoSeries(shapely.points([[150.0, 10.0]]), crs=CRS).to_crs(4326)
    s = snap_points(net, pts)
    assert s.fraction[0] == pytest.approx(0.5, abs=1e-6)
    assert s.dist_m[0] == pytest.approx(10.0, abs=1e-3)


def test_missing_geometry_is_an_error_naming_the_rows():
    net = line_net()
    pts = gpd.GeoDataFrame({"id": ["a", "b"]}, geometry=[shapely.Point(1, 1), None], crs=CRS)
    with pytest.raises(LayerError, match=r"1 points have no geometry \(rows b\)"):
        snap_points(net, pts)


@pytest.mark.parametrize("threads", [False, True])
def test_many_points_match_brute_force_distances(monkeypatch, threads):
    if threads:  # the nearest-edge search split over two threads
        monkeypatch.setattr(snap_mod, "_THREAD_MIN_POINTS", 10)
    rng = np.random.default_rng(3)
    x, y = rng.uniform(0, 1000, 30), rng.uniform(0, 1000, 30)
    u = np.arange(29)
    net = WalkNetwork.from_edges(x, y, u, u + 1, crs=CRS)
    pts = rng.uniform(0, 1000, (200, 2))
    s = snap_points(net, pts, max_snap_m=1e6)
    lines = shapely.linestrings(np.stack([np.c_[x[u], y[u]], np.c_[x[u + 1], y[u + 1]]], 1))
    brute = shapely.distance(shapely.points(pts)[:, None], lines[None, :]).min(axis=1)
    np.testing.assert_allclose(s.dist_m, brute, atol=1e-9)
    # the snapped spot lies on the chosen edge at the stated fraction
    spot = shapely.line_interpolate_point(lines[s.edge], s.fraction, normalized=True)
    np.testing.assert_allclose(shapely.get_x(spot), s.x, atol=1e-9)


# --------------------------------------------------------------------------- fragments
def grid_with_fragment():
    """A 6 x 6 grid of streets 100 m apart (0..500 m) and a 4-node service-road fragment.

    The fragment runs north-south at x = 560 m, from y = 100 to 400 m (three 100 m edges),
    60 m east of the grid's east street and joined to nothing.
    """
    from planner import network as N

    lines = [[(0, i * 100.0), (500, i * 100.0)] for i in range(6)]
    lines += [[(i * 100.0, 0), (i * 100.0, 500)] for i in range(6)]
    lines += [[(560, y), (560, y + 100)] for y in (100, 200, 300)]
    g = gpd.GeoDataFrame({"fclass": ["residential"] * 12 + ["service"] * 3,
                          "name": [""] * 12 + ["a", "b", "c"]},  # names keep its 4 nodes
                         geometry=[shapely.LineString(c) for c in lines], crs=CRS)
    return N.from_lines(g, min_component_share=0.1)  # 4 of 36 nodes: kept by the default


#: name -> (x, y, moved?, distance of the snap, distance to the fragment or NaN)
FRAGMENT_UNITS = {
    "inside": (250, 250, False, 50.0, np.nan),  # nearest street is on the grid
    "on_piece": (580, 250, False, 20.0, 20.0),  # 20 m <= 30 m and <= 80 / 3: stays
    "near_piece": (548, 250, False, 12.0, 12.0),  # 12 <= 48 / 3: stays
    "between": (540, 250, True, 40.0, 20.0),  # 20 > 40 / 3: main network
    "east": (600, 250, True, 100.0, 40.0),  # 40 > 30 m: main network
    "far_east": (620, 150, True, 120.0, 60.0),
    "beyond": (1000, 250, False, 440.0, 440.0),  # the main network is beyond max_snap_m
}


def test_units_snap_to_the_main_network_unless_clearly_on_a_fragment():
    net = grid_with_fragment()
    assert np.bincount(net.components()).tolist() == [32, 4]  # the grid is component 0
    names = list(FRAGMENT_UNITS)
    units = gpd.GeoDataFrame({"id": names}, geometry=[
        shapely.Point(v[0], v[1]) for v in FRAGMENT_UNITS.values()], crs=CRS)
    with pytest.warns(PlannerWarning) as caught:
        s = snap_points(net, units, what="units")
    moved = [n for n in names if FRAGMENT_UNITS[n][2]]
    assert s.moved.tolist() == [v[2] for v in FRAGMENT_UNITS.values()]
    np.testing.assert_allclose(s.dist_m, [v[3] for v in FRAGMENT_UNITS.values()])
    np.testing.assert_allclose(s.fragment_m, [v[4] for v in FRAGMENT_UNITS.values()])
    comp = net.components()[net.edge_u[s.edge]]
    assert comp.tolist() == [0, 1, 1, 0, 0, 0, 1]
    texts = [str(w.message) for w in caught]
    msg = next(t for t in texts if "small piece of the walk network" in t)
    assert msg.startswith(f"{len(moved)} units lie nearest to a small piece")
    assert "east (fragment 40 m, main network 100 m)" in msg
    assert "between (fragment 20 m, main network 40 m)" in msg
    assert "on_piece" not in msg and "beyond (" not in msg.split("lie more")[0]
    # the old behaviour on request: every point to its nearest street
    plain = snap_points(net, units, main_components="all", warn=False)
    assert not plain.moved.any() and plain.dist_m[names.index("east")] == pytest.approx(40.0)
    # the rule's numbers are parameters
    loose = snap_points(net, units, warn=False, fragment_snap_m=50.0, fragment_ratio=0.5)
    assert loose.moved.tolist() == [False, False, False, False, False, True, False]


def test_moved_units_reach_the_facility_and_a_served_fragment_keeps_its_units():
    from planner import access

    net = grid_with_fragment()
    names = list(FRAGMENT_UNITS)
    units = gpd.GeoDataFrame({"id": names, "pop_60plus": 10}, geometry=[
        shapely.Point(v[0], v[1]) for v in FRAGMENT_UNITS.values()], crs=CRS)
    fac = gpd.GeoDataFrame({"id": ["f"], "tier": ["community_station"]},
                           geometry=[shapely.Point(0, 0)], crs=CRS)
    with pytest.warns(PlannerWarning) as caught:
        pa = access.population_access(net, units, fac, cutoff_min=60, warn=False)
    assert any(str(w.message).startswith("3 population units lie nearest to a small piece")
               for w in caught)
    t = dict(zip(names, pa["time_min_any"], strict=True))
    # east: 100 m straight to (500, 250), then 500 + 250 m along the grid to (0, 0)
    assert t["east"] == pytest.approx((100 + 750) / 60)
    assert t["between"] == pytest.approx((40 + 750) / 60)
    assert t["inside"] == pytest.approx((50 + 450) / 60)  # to (250, 200) or (200, 250)
    assert np.isnan(t["on_piece"]) and np.isnan(t["near_piece"])  # clearly on the piece
    # a facility on the fragment makes it a served component: units snap to it freely
    fac2 = gpd.GeoDataFrame({"id": ["f", "g"], "tier": ["community_station"] * 2},
                            geometry=[shapely.Point(0, 0), shapely.Point(565, 300)], crs=CRS)
    snapped_fac = snap_points(net, fac2, what="facilities")
    assert access.served_components(net, snapped_fac).tolist() == [0, 1]
    with pytest.warns(PlannerWarning, match="lie more than 300 m") as caught:  # 'beyond' only
        pa2 = access.population_access(net, units, fac2, cutoff_min=60, warn=False,
                                       snap_facilities=snapped_fac)
    assert not any("small piece" in str(w.message) for w in caught)
    t2 = dict(zip(names, pa2["time_min_any"], strict=True))
    # east: 40 m to (560, 250), 50 m along the piece, 5 m to the facility
    assert t2["east"] == pytest.approx((40 + 50 + 5) / 60)
    assert t2["on_piece"] == pytest.approx((20 + 50 + 5) / 60)


def test_access_step_reports_the_moved_units(tmp_path):
    from planner.pipeline import RunResult, steps
    from planner.pipeline.settings import LayersSettings, NetworkSettings, Scenario

    net = grid_with_fragment()
    sc = Scenario(name="t", lang="en", layers=LayersSettings(),
                  network=NetworkSettings(fragment_snap_m=50.0, fragment_ratio=0.5))
    res = RunResult(scenario=sc, crs=net.crs)
    res.artifacts["network"] = net
    res.layers["facilities"] = gpd.GeoDataFrame(
        {"id": ["f"], "tier": ["community_station"]}, geometry=[shapely.Point(0, 0)], crs=CRS)
    keep = ["inside", "on_piece", "east", "far_east"]
    res.layers["population"] = gpd.GeoDataFrame(
        {"id": keep, "population": 100, "pop_60plus": 20},
        geometry=[shapely.Point(*FRAGMENT_UNITS[k][:2]) for k in keep], crs=CRS)
    with pytest.warns(PlannerWarning):
        assert steps.access(res) is None
    # the scenario's looser rule keeps 'east' (40 m <= 50 m and <= 100 / 2) on the piece
    moved = [w for w in res.warnings if "small piece of the walk network" in w]
    assert len(moved) == 1
    assert moved[0].startswith("1 population units lie nearest")
    assert "far_east (fragment 60 m, main network 120 m)" in moved[0]
    assert res.artifacts["snap_population"].moved.tolist() == [False, False, False, True]
    pa = res.layers["population_access"]
    assert np.isnan(pa["time_min_any"].iloc[2])  # 'east' stays on the piece: unreachable


@pytest.mark.parametrize("max_snap_m", [30.0, 120.0, 1e9])
def test_nearest_main_network_edge_matches_brute_force(max_snap_m):
    """The nearest edge of the main components, found by short searches in the whole
    network's tree (filtered) and the main tree only beyond 200 m, against all edges."""
    rng = np.random.default_rng(4)
    x, y = rng.uniform(0, 3000, 40), rng.uniform(0, 3000, 40)
    # a main chain of 30 nodes and a fragment chain of 10: two components
    u = np.r_[np.arange(29), np.arange(30, 39)]
    net = WalkNetwork.from_edges(x, y, u, u + 1, crs=CRS)
    main = np.array([net.components()[0]])
    pts = shapely.points(rng.uniform(-500, 3500, (300, 2)))
    dist, edge = snap_mod._nearest_main(net, pts, main, max_snap_m)
    lines = snap_mod.edge_geometries(net)
    is_main = np.isin(net.components()[net.edge_u], main)
    d = shapely.distance(pts[:, None], lines[None, is_main])
    want = d.min(axis=1)
    found = want <= max_snap_m
    assert found.any() and (max_snap_m > 1e6 or not found.all())
    np.testing.assert_allclose(dist[found], want[found], atol=1e-9)
    assert np.isin(edge[found], np.flatnonzero(is_main)).all()
    np.testing.assert_allclose(shapely.distance(pts[found], lines[edge[found]]), want[found],
                               atol=1e-9)
    # none within the limit: no edge (the rule needs none farther)
    assert np.isinf(dist[~found]).all() and (edge[~found] == -1).all()
