"""Snapping points onto the nearest point of the nearest edge."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

from planner._errors import LayerError, PlannerWarning
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


def test_many_points_match_brute_force_distances():
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
