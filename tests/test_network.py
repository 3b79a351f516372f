"""Tests of planner.network: noding, walkability, profiles, components, sources, I/O."""

from __future__ import annotations

import dataclasses
import math
import typing
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import pyproj
import pytest
import shapely
from scipy.sparse.csgraph import dijkstra
from shapely import LineString

from planner import network as N
from planner._errors import NetworkError, PlannerWarning
from planner.defaults import MIN_COMPONENT_SHARE
from planner.network.osm import _OsmTags
from planner.pipeline import steps

CRS = "EPSG:32649"


def roads(*lines, crs=CRS, **columns):
    """A road GeoDataFrame from coordinate lists; columns default to residential at grade."""
    n = len(lines)
    data = {"fclass": ["residential"] * n}
    data.update(columns)
    return gpd.GeoDataFrame(data, geometry=[LineString(c) for c in lines], crs=crs)


def node_at(net, x, y):
    d = np.hypot(net.node_x - x, net.node_y - y)
    i = int(np.argmin(d))
    assert d[i] < 1e-6, f"no node at {(x, y)}"
    return i


def dist(net, a, b, *, weight="length"):
    return dijkstra(net.csr(weight=weight), indices=a)[b]


# --------------------------------------------------------------------------- noding
def test_crossing_at_grade_gets_a_junction():
    net = N.from_lines(roads([(0, 50), (100, 50)], [(50, 0), (50, 100)]))
    assert (net.n_nodes, net.n_edges) == (5, 4)
    np.testing.assert_allclose(np.sort(net.edge_length_m), [50, 50, 50, 50])
    c = node_at(net, 50, 50)
    assert (np.sum(net.edge_u == c) + np.sum(net.edge_v == c)) == 4
    assert net.report["crossings_at_grade"] == 1
    assert net.report["crossings_grade_separated"] == 0
    assert dist(net, node_at(net, 0, 50), node_at(net, 50, 0)) == pytest.approx(100.0)


@pytest.mark.parametrize(
    "columns",
    [
        {"bridge": ["F", "T"]},
        {"tunnel": ["no", "yes"]},
        {"layer": [0, 1]},
        {"bridge": [False, True], "layer": [0, 1]},
    ],
)
def test_grade_separated_crossing_has_no_junction(columns):
    g = roads([(0, 50), (100, 50)], [(50, 0), (50, 100)], **columns)
    net = N.from_lines(g, min_component_share=0)
    assert (net.n_nodes, net.n_edges) == (4, 2)
    assert net.report["crossings_grade_separated"] == 1
    assert net.report["crossings_at_grade"] == 0
    assert net.report["n_components"] == 2
    assert np.isinf(dist(net, node_at(net, 0, 50), node_at(net, 50, 0)))


def test_bridge_ends_join_the_roads_they_touch():
    # a bridge over a road, whose ends are vertices of the approach road: connected there only
    g = roads(
        [(0, 0), (40, 0)], [(40, 0), (60, 0)], [(60, 0), (100, 0)], [(50, -30), (50, 30)],
        bridge=["F", "T", "F", "F"], layer=[0, 1, 0, 0],
    )
    net = N.from_lines(g, min_component_share=0)
    assert net.report["crossings_grade_separated"] == 1
    assert dist(net, node_at(net, 0, 0), node_at(net, 100, 0)) == pytest.approx(100.0)
    assert np.isinf(dist(net, node_at(net, 0, 0), node_at(net, 50, 30)))


def test_shared_vertex_is_a_junction_on_the_same_level_only():
    a = [(0, 0), (50, 0), (100, 0)]
    b = [(50, -50), (50, 0), (50, 50)]
    same = N.from_lines(roads(a, b))
    assert (same.n_nodes, same.n_edges) == (5, 4)
    assert same.report["shared_vertex_junctions"] == 1
    other = N.from_lines(roads(a, b, layer=[0, 1]), min_component_share=0)
    assert (other.n_nodes, other.n_edges) == (4, 2)
    assert other.report["shared_vertices_other_level"] == 1


def test_many_crossings_on_one_segment_are_split_in_order():
    g = roads([(0, 0), (100, 0)], [(10, -5), (10, 5)], [(70, -5), (70, 5)], [(35, -5), (35, 5)])
    net = N.from_lines(g)
    main = net.edges[net.edges.geometry.apply(lambda ge: abs(ge.coords[0][1]) < 1e-9
                                              and abs(ge.coords[-1][1]) < 1e-9)]
    np.testing.assert_allclose(np.sort(main.length_m.to_numpy()), [10, 25, 30, 35])
    assert net.n_edges == 4 + 6


def test_at_grade_noding_matches_geos_node():
    """Random lines at grade: the same edges as shapely.node (GEOS), an independent noder."""
    rng = np.random.default_rng(7)
    lines = [rng.uniform(0, 1000, size=(int(rng.integers(2, 5)), 2)) for _ in range(40)]
    g = roads(*lines)
    net = N.from_lines(g, join_tolerance_m=0.0, min_component_share=0)
    noded = shapely.get_parts(shapely.node(shapely.MultiLineString(lines)))
    assert net.n_edges == len(noded)
    np.testing.assert_allclose(np.sort(net.edge_length_m), np.sort(shapely.length(noded)),
                               rtol=0, atol=1e-6)
    ends = np.unique(np.round(np.r_[shapely.get_coordinates(shapely.get_point(noded, 0)),
                                    shapely.get_coordinates(shapely.get_point(noded, -1))], 6),
                     axis=0)
    assert net.n_nodes == len(ends)


@pytest.mark.parametrize("gap, tol, joined", [(0.5, 1.0, True), (0.0, 0.0, True),
                                              (2.0, 1.0, False), (0.5, 0.4, False)])
def test_near_miss_joined_under_the_tolerance_only(gap, tol, joined):
    g = roads([(0, 0), (100, 0)], [(50, gap), (50, 100)])
    net = N.from_lines(g, join_tolerance_m=tol, min_component_share=0)
    d = dist(net, node_at(net, 0, 0), node_at(net, 50, 100))
    if joined:
        assert net.report["near_miss_joins"] == 1
        assert (net.n_nodes, net.n_edges) == (4, 3)
        assert d == pytest.approx(50 + 100)  # the gap is walked too
        assert net.report["near_miss_max_gap_m"] == pytest.approx(gap)
    else:
        assert net.report["near_miss_joins"] == 0
        assert np.isinf(d)


def test_two_dangling_ends_are_joined_once():
    g = roads([(0, 0), (100, 0)], [(100.5, 0), (200, 0)])
    net = N.from_lines(g)
    assert net.report["near_miss_joins"] == 1
    # the joint is a pass-through node (same class and name) and is merged away
    assert (net.n_nodes, net.n_edges) == (2, 1)
    assert net.report["pass_through_nodes_merged"] == 1
    assert net.edge_length_m.sum() == pytest.approx(200.0)


def test_pass_through_nodes_merged_only_where_nothing_changes():
    # a road drawn as three lines, the middle one with another name; a side street at (100, 0)
    g = roads([(0, 0), (100, 0)], [(100, 0), (200, 0)], [(200, 0), (300, 0), (300, 50)],
              [(100, 0), (100, 80)], [(300, 50), (400, 50)],
              name=["东路", "东路", "西路", "", ""],
              fclass=["residential", "residential", "residential", "footway", "footway"])
    net = N.from_lines(g)
    # nodes: (0,0) end, (100,0) junction, (200,0) name change, (300,50) class change,
    # (100,80) and (400,50) ends
    assert net.n_nodes == 6 and net.n_edges == 5
    assert net.report["pass_through_nodes_merged"] == 0
    g2 = g.assign(name=["东路"] * 3 + ["", ""])
    net2 = N.from_lines(g2)
    assert net2.n_nodes == 5 and net2.report["pass_through_nodes_merged"] == 1
    merged = net2.edges[net2.edges.length_m > 200].iloc[0]
    assert merged.length_m == pytest.approx(100 + 100 + 50)
    assert net2.edge_length_m.sum() == pytest.approx(net.edge_length_m.sum())
    a, b = node_at(net2, 100, 0), node_at(net2, 300, 50)
    assert {merged.u, merged.v} == {a, b}
    assert shapely.get_coordinates(merged.geometry)[0] == pytest.approx(
        [net2.node_x[merged.u], net2.node_y[merged.u]])


def test_closed_loop_is_split():
    g = roads([(0, 0), (100, 0), (100, 100), (0, 100), (0, 0)], [(-50, 0), (0, 0)])
    net = N.from_lines(g)
    assert not np.any(net.edge_u == net.edge_v)
    assert net.edge_length_m.sum() == pytest.approx(450.0)
    assert dist(net, node_at(net, -50, 0), node_at(net, 100, 100)) == pytest.approx(250.0)


def test_lengths_are_geometry_lengths_and_geometries_run_from_u_to_v():
    rng = np.random.default_rng(3)
    lines = [rng.uniform(0, 500, size=(4, 2)) for _ in range(25)]
    net = N.from_lines(roads(*lines), min_component_share=0, join_tolerance_m=0.0)
    geoms = net.edges.geometry.values
    np.testing.assert_allclose(net.edge_length_m, shapely.length(geoms), rtol=1e-12)
    np.testing.assert_allclose(net.edges["length_m"], net.edge_length_m)
    first = shapely.get_coordinates(shapely.get_point(geoms, 0))
    last = shapely.get_coordinates(shapely.get_point(geoms, -1))
    np.testing.assert_allclose(first, np.c_[net.node_x[net.edge_u], net.node_y[net.edge_u]])
    np.testing.assert_allclose(last, np.c_[net.node_x[net.edge_v], net.node_y[net.edge_v]])
    # nothing lost: the edges add up to the input lines
    assert net.edge_length_m.sum() == pytest.approx(sum(LineString(c).length for c in lines))


def test_one_way_streets_are_walked_both_ways():
    g = roads([(0, 0), (100, 0)], [(100, 0), (100, 100)], oneway=["T", "T"])
    net = N.from_lines(g)
    a, b = node_at(net, 0, 0), node_at(net, 100, 100)
    assert dist(net, a, b) == pytest.approx(200.0)
    assert dist(net, b, a) == pytest.approx(200.0)


def test_geographic_input_is_projected_to_utm():
    g = roads([(108.94, 34.26), (108.95, 34.26)], crs="EPSG:4326")
    net = N.from_lines(g)
    assert net.crs.to_epsg() == 32649
    geod = pyproj.Geod(ellps="WGS84")
    assert net.edge_length_m[0] == pytest.approx(geod.line_length([108.94, 108.95],
                                                                  [34.26, 34.26]), rel=2e-3)


# --------------------------------------------------------------------------- classes, profiles
def test_default_excludes_motorways_and_trunk_roads():
    g = roads(*[[(0, 10 * i), (100, 10 * i)] for i in range(6)], [(50, -10), (50, 60)],
              fclass=["motorway", "motorway_link", "trunk", "trunk_link", "footway", "primary",
                      "residential"])
    net = N.from_lines(g)
    assert sorted(set(net.edges.fclass)) == ["footway", "primary", "residential"]
    assert net.report["excluded_classes"] == {"motorway": 1, "motorway_link": 1, "trunk": 1,
                                              "trunk_link": 1}
    assert net.report["excluded_km"] == pytest.approx(0.4)
    # an explicit exclude list replaces the default: trunk roads come back
    net2 = N.from_lines(g, exclude_classes=["motorway", "motorway_link", "trunk_link"])
    assert "trunk" in set(net2.edges.fclass)
    net3 = N.from_lines(g, include_classes=["footway", "residential"])
    assert sorted(set(net3.edges.fclass)) == ["footway", "residential"]


def test_chinese_road_classes_are_mapped():
    g = roads([(0, 0), (100, 0)], [(0, 10), (100, 10)], [(50, -10), (50, 20)],
              道路等级=["快速路", "主干路", "支路"])
    g = g.drop(columns="fclass")
    net = N.from_lines(g)
    assert sorted(set(net.edges.fclass)) == ["primary", "tertiary"]
    assert net.report["excluded_classes"] == {"trunk": 1}


def test_unknown_class_is_dropped_with_a_warning():
    g = roads([(0, 0), (100, 0)], [(50, -10), (50, 10)], fclass=["residential", "skyway"])
    with pytest.warns(PlannerWarning, match="skyway"):
        net = N.from_lines(g)
    assert net.n_edges == 1


def test_missing_class_column_warns_and_keeps_everything():
    g = roads([(0, 0), (100, 0)]).drop(columns="fclass")
    with pytest.warns(PlannerWarning, match="no road-class column"):
        net = N.from_lines(g)
    assert net.n_edges == 1


def test_steps_dropped_by_wheelchair_profile():
    # a 30 m flight of steps is the short way; the ramp round is 200 m
    g = roads([(0, 0), (0, 30)], [(0, 0), (100, 0), (100, 30), (0, 30)],
              fclass=["steps", "footway"])
    older = N.from_lines(g)
    chair = N.from_lines(g, profile="wheelchair")
    a, b = node_at(older, 0, 0), node_at(older, 0, 30)
    assert dist(older, a, b) == pytest.approx(30.0)
    a, b = node_at(chair, 0, 0), node_at(chair, 0, 30)
    assert dist(chair, a, b) == pytest.approx(230.0)
    assert chair.report["steps_avoided"] == 1
    assert "steps" not in set(chair.edges.fclass)
    assert N.from_lines(g, profile="wheelchair", avoid_steps=False).n_edges == 2


@pytest.mark.parametrize("profile", list(N.PROFILES))
def test_times_are_length_over_profile_speed(profile):
    net = N.from_lines(roads([(0, 50), (100, 50)], [(50, 0), (50, 100)]), profile=profile)
    speed = N.PROFILES[profile]["speed_mps"]
    assert net.speed_mps == speed
    np.testing.assert_allclose(net.edge_time_s, net.edge_length_m / speed)


def test_profile_speeds_are_the_documented_ones():
    assert {k: v["speed_mps"] for k, v in N.PROFILES.items()} == {
        "older_adult": 1.0, "older_adult_design": 0.9, "frail": 0.65, "wheelchair": 0.8,
        "generic_adult": 1.33}
    assert N.PROFILES["frail"]["avoid_steps"] and N.PROFILES["wheelchair"]["avoid_steps"]


def test_speed_override_and_with_speed():
    g = roads([(0, 0), (90, 0)])
    net = N.from_lines(g, speed_mps=0.75)
    assert net.edge_time_s[0] == pytest.approx(120.0)
    assert net.with_speed(1.5).edge_time_s[0] == pytest.approx(60.0)


def test_bad_profile_and_speed_raise():
    g = roads([(0, 0), (90, 0)])
    with pytest.raises(NetworkError, match="Unknown walking profile 'runner'"):
        N.from_lines(g, profile="runner")
    with pytest.raises(NetworkError, match="not plausible"):
        N.from_lines(g, speed_mps=12)


def test_network_options_object_and_keywords_agree():
    hints = typing.get_type_hints(N.NetworkOptionFields)
    assert hints == typing.get_type_hints(N.NetworkOptions)
    assert list(hints) == [f.name for f in dataclasses.fields(N.NetworkOptions)]
    assert N.NetworkOptions().min_component_share == MIN_COMPONENT_SHARE
    g = roads(*grid_lines(), [(5000, 5000), (5080, 5000)], [(0, 0), (-50, -50)],
              fclass=["primary"] + ["residential"] * 11 + ["residential", "steps"])
    kw = dict(profile="wheelchair", min_component_share=0, crossing_delay_s=20.0)
    by_keywords = N.from_lines(g, **kw)
    opts = N.NetworkOptions(**kw)
    by_options = N.from_lines(g, options=opts)
    mixed = N.from_lines(g, options=N.NetworkOptions(profile="frail"), profile="wheelchair",
                         min_component_share=0, crossing_delay_s=20.0)
    for net in (by_options, mixed):
        assert net.report == by_keywords.report
        for name in ("node_x", "node_y", "edge_u", "edge_v", "edge_length_m", "edge_time_s",
                     "edge_delay_s"):
            np.testing.assert_array_equal(getattr(net, name), getattr(by_keywords, name))
    assert by_keywords.profile == "wheelchair" and by_keywords.report["steps_avoided"] == 1
    assert by_keywords.report["components_dropped"] == 0
    assert opts.replace(speed_mps=0.7) == N.NetworkOptions(**kw, speed_mps=0.7)
    with pytest.raises(TypeError, match=r"from_lines\(\) .*'speed'.*speed_mps, profile"):
        N.from_lines(g, speed=1.0)
    with pytest.raises(TypeError, match="'minimum_share'"):
        N.from_graphml("walk.graphml", options=opts, minimum_share=0)


def test_crossing_delay_paid_once_per_major_road_crossing():
    # a side street crosses a primary road at (50, 0)
    g = roads([(0, 0), (100, 0)], [(50, -50), (50, 50)], fclass=["primary", "residential"])
    net = N.from_lines(g, crossing_delay_s=30.0)
    s, n = node_at(net, 50, -50), node_at(net, 50, 50)
    w, e = node_at(net, 0, 0), node_at(net, 100, 0)
    assert dist(net, s, n, weight="time") == pytest.approx(100.0 + 30.0)
    assert dist(net, w, e, weight="time") == pytest.approx(100.0)
    assert net.report["major_crossing_nodes"] == 1
    slow = net.with_speed(0.5)  # the delay does not scale with speed
    assert dist(slow, s, n, weight="time") == pytest.approx(200.0 + 30.0)


def test_tobler_factor():
    assert N.tobler_factor(0.0) == pytest.approx(1.0)
    assert N.tobler_factor(0.1) == pytest.approx(0.5 * (math.exp(0.35) + 1.0))
    assert N.tobler_factor(-0.1) == pytest.approx(N.tobler_factor(0.1))
    assert N.tobler_factor(0.2) > N.tobler_factor(0.1) > 1.0


def test_with_elevation_applies_tobler_to_each_edge():
    net = N.from_lines(roads([(0, 0), (100, 0)], [(100, 0), (100, 100)],
                             fclass=["residential", "footway"]), speed_mps=0.9)
    z = np.zeros(net.n_nodes)
    z[node_at(net, 100, 100)] = 10.0  # the footway climbs 10 m over 100 m
    hilly = N.with_elevation(net, z)
    flat_edge = hilly.edges.index[hilly.edges.fclass == "residential"][0]
    steep_edge = hilly.edges.index[hilly.edges.fclass == "footway"][0]
    assert hilly.edge_time_s[flat_edge] == pytest.approx(100 / 0.9)
    assert hilly.edge_time_s[steep_edge] == pytest.approx(100 / 0.9 * N.tobler_factor(0.1))
    assert hilly.report["slope_penalty"] is True
    with pytest.raises(NetworkError, match="one finite elevation"):
        N.with_elevation(net, z[:-1])


def test_osmnx_node_elevation_gives_slope_penalty():
    G = nx.MultiDiGraph(crs=CRS)
    G.add_node(1, x=0.0, y=0.0, elevation=0.0)
    G.add_node(2, x=100.0, y=0.0, elevation=5.0)
    G.add_edge(1, 2, highway="footway", length=100.0)
    G.add_edge(2, 1, highway="footway", length=100.0)
    net = N.from_osmnx_graph(G)
    assert net.edge_time_s[0] == pytest.approx(100.0 * N.tobler_factor(0.05))
    np.testing.assert_array_equal(np.sort(net.node_z), [0.0, 5.0])


# --------------------------------------------------------------------------- components
def grid_lines(n=6, step=100.0, x0=0.0, y0=0.0):
    end = (n - 1) * step
    lines = [[(x0, y0 + i * step), (x0 + end, y0 + i * step)] for i in range(n)]
    lines += [[(x0 + i * step, y0), (x0 + i * step, y0 + end)] for i in range(n)]
    return lines


XIAN_X, XIAN_Y = 315000.0, 3794000.0  # a point in central Xi'an, EPSG:32649


def test_small_component_dropped_and_reported():
    far = [(5000, 5000), (5080, 5000)]
    g = roads(*grid_lines(), far)
    net = N.from_lines(g, min_component_share=0.1)
    assert net.n_nodes == 32  # 6 x 6 grid; its 4 corners are pass-through nodes
    assert net.report["n_components"] == 2
    assert net.report["component_sizes"] == [32, 2]
    assert net.report["components_dropped"] == 1
    assert net.report["nodes_dropped"] == 2
    assert net.report["km_dropped"] == pytest.approx(0.08)
    assert net.report["largest_component_share"] == pytest.approx(32 / 34)
    kept = N.from_lines(g, min_component_share=0)
    assert kept.n_nodes == 34 and kept.report["components_dropped"] == 0


def test_fragmented_network_warns():
    g = roads([(0, 0), (50, 0)], [(0, 100), (50, 100)], [(0, 200), (50, 200)])
    with pytest.warns(PlannerWarning, match="fragmented: .* 33% of the 6 nodes"):
        net = N.from_lines(g, min_component_share=0)
    assert net.report["n_components"] == 3


def test_empty_and_invalid_inputs_raise():
    g = roads([(0, 0), (90, 0)])
    with pytest.raises(NetworkError, match="has no CRS"):
        N.from_lines(g.set_crs(None, allow_override=True))
    pts = gpd.GeoDataFrame(geometry=[shapely.Point(0, 0)], crs=CRS)
    with pytest.raises(NetworkError, match="no line geometries"):
        N.from_lines(pts)
    with pytest.raises(NetworkError, match="No walkable edge"):
        N.from_lines(roads([(0, 0), (90, 0)], fclass=["motorway"]))


def test_report_table_languages():
    net = N.from_lines(roads([(0, 50), (100, 50)], [(50, 0), (50, 100)]))
    zh = N.report_table(net)
    en = N.report_table(net, lang="en")
    assert list(zh.columns) == ["key", "item", "value"]
    assert zh.set_index("key").loc["crossings_at_grade", "item"] == "平面交叉（已打断连接）"
    assert en.set_index("key").loc["n_nodes", "value"] == "5"


# --------------------------------------------------------------------------- OSM sources
OSM_XML = """<?xml version='1.0' encoding='UTF-8'?>
<osm version="0.6" generator="planner-test">
 <node id="1" version="1" lat="34.2600" lon="108.9400"/>
 <node id="2" version="1" lat="34.2600" lon="108.9410"/>
 <node id="3" version="1" lat="34.2600" lon="108.9420"/>
 <node id="4" version="1" lat="34.2610" lon="108.9410"/>
 <node id="5" version="1" lat="34.2590" lon="108.9410"/>
 <node id="6" version="1" lat="34.2610" lon="108.9420"/>
 <node id="7" version="1" lat="34.2620" lon="108.9420"/>
 <node id="8" version="1" lat="34.2620" lon="108.9400"/>
 <node id="9" version="1" lat="34.2630" lon="108.9400"/>
 <way id="10" version="1"><nd ref="1"/><nd ref="2"/><nd ref="3"/>
  <tag k="highway" v="residential"/><tag k="name" v="测试路"/></way>
 <way id="11" version="1"><nd ref="5"/><nd ref="2"/><nd ref="4"/>
  <tag k="highway" v="footway"/><tag k="oneway" v="yes"/></way>
 <way id="12" version="1"><nd ref="3"/><nd ref="6"/><tag k="highway" v="steps"/></way>
 <way id="13" version="1"><nd ref="6"/><nd ref="7"/><tag k="highway" v="service"/></way>
 <way id="14" version="1"><nd ref="4"/><nd ref="8"/><tag k="highway" v="motorway"/></way>
 <way id="15" version="1"><nd ref="8"/><nd ref="9"/>
  <tag k="highway" v="residential"/><tag k="foot" v="no"/></way>
 <way id="16" version="1"><nd ref="7"/><nd ref="8"/><nd ref="9"/><nd ref="7"/>
  <tag k="building" v="yes"/></way>
</osm>
"""
LONLAT = {1: (108.940, 34.260), 2: (108.941, 34.260), 3: (108.942, 34.260), 4: (108.941, 34.261),
          5: (108.941, 34.259), 6: (108.942, 34.261), 7: (108.942, 34.262)}
WALKED = [(1, 2), (2, 3), (5, 2), (2, 4), (3, 6), (6, 7)]  # node pairs of the walkable ways


def utm_length(pairs):
    tr = pyproj.Transformer.from_crs(4326, 32649, always_xy=True)
    total = 0.0
    for a, b in pairs:
        xa, ya = tr.transform(*LONLAT[a])
        xb, yb = tr.transform(*LONLAT[b])
        total += math.hypot(xa - xb, ya - yb)
    return total


@pytest.fixture
def osm_xml(tmp_path) -> Path:
    p = tmp_path / "mini.osm"
    p.write_text(OSM_XML, encoding="utf-8")
    return p


def osmnx_graph(osm_xml):
    """The raw OSMnx graph of an extract, keeping the `foot` tag as from_osm_file does."""
    import osmnx as ox

    with _OsmTags():
        return ox.graph_from_xml(osm_xml, bidirectional=True, simplify=False, retain_all=True)


def test_from_osm_xml(osm_xml):
    net = N.from_osm_file(osm_xml, min_component_share=0)
    assert net.crs.to_epsg() == 32649
    assert (net.n_nodes, net.n_edges) == (7, 6)
    assert sorted(net.node_id.tolist()) == [1, 2, 3, 4, 5, 6, 7]
    assert net.edge_length_m.sum() == pytest.approx(utm_length(WALKED), rel=1e-9)
    assert set(net.edges.fclass) == {"residential", "footway", "steps", "service"}
    assert net.report["excluded_ways"] == {"motorway": 1}
    assert net.report["excluded_segments"] == {"motorway": 1}
    assert net.report["excluded_no_foot_access"] == 1
    assert net.report["non_highway_ways"] == 1  # the building: one way of three segments
    assert net.report["n_ways_in"] == 6
    # one-way footway walked against its direction: 5 -> 2 -> 4 and back
    i5, i4 = [int(np.flatnonzero(net.node_id == k)[0]) for k in (5, 4)]
    assert dist(net, i4, i5) == pytest.approx(utm_length([(5, 2), (2, 4)]), rel=1e-9)


def test_from_osm_xml_wheelchair_drops_steps(osm_xml):
    net = N.from_osm_file(osm_xml, profile="wheelchair", min_component_share=0)
    assert "steps" not in set(net.edges.fclass)
    assert net.report["n_components"] == 2
    assert net.edge_length_m.sum() == pytest.approx(
        utm_length([p for p in WALKED if p != (3, 6)]), rel=1e-9)


def test_from_osm_pbf_equals_xml(osm_xml, tmp_path):
    import osmium

    pbf = tmp_path / "mini.osm.pbf"
    with osmium.SimpleWriter(str(pbf)) as writer:
        for obj in osmium.FileProcessor(str(osm_xml)):
            writer.add(obj)
    a = N.from_osm_file(osm_xml, min_component_share=0)
    b = N.from_osm_file(pbf, min_component_share=0)
    assert (b.n_nodes, b.n_edges) == (a.n_nodes, a.n_edges)
    assert sorted(b.edge_length_m) == pytest.approx(sorted(a.edge_length_m), abs=1e-6)
    assert b.report["excluded_ways"] == {"motorway": 1}


def test_from_osmnx_graph_projected_or_not(osm_xml):
    import osmnx as ox

    G = osmnx_graph(osm_xml)
    a = N.from_osmnx_graph(G, min_component_share=0)
    b = N.from_osmnx_graph(ox.project_graph(G, to_crs=CRS), min_component_share=0)
    assert a.crs == b.crs
    assert sorted(a.edge_length_m) == pytest.approx(sorted(b.edge_length_m), abs=1e-6)
    assert a.edge_length_m.sum() == pytest.approx(utm_length(WALKED), rel=1e-9)


def test_bad_osm_file_raises(tmp_path):
    with pytest.raises(NetworkError, match="does not exist"):
        N.from_osm_file(tmp_path / "missing.osm")
    bad = tmp_path / "roads.csv"
    bad.write_text("a,b\n")
    with pytest.raises(NetworkError, match="not an OSM extract"):
        N.from_osm_file(bad)


def test_download_offline_gives_a_clear_error(monkeypatch):
    import osmnx as ox

    def offline(*args, **kwargs):
        raise ConnectionError("Name or service not known")

    monkeypatch.setattr(ox, "graph_from_place", offline)
    monkeypatch.setattr(ox, "graph_from_bbox", offline)
    with pytest.raises(NetworkError, match="needs internet access.*source: osm"):
        N.download_osm(place="碑林区, 西安市")
    with pytest.raises(NetworkError, match="needs internet access"):
        N.download_osm(bbox=(108.93, 34.25, 108.95, 34.27))
    with pytest.raises(NetworkError, match="exactly one of"):
        N.download_osm()
    with pytest.raises(NetworkError, match=r"\(minx, miny, maxx, maxy\)"):
        N.download_osm(bbox=(108.95, 34.25, 108.93, 34.27))


def osm_text(nodes: dict[int, tuple[float, float]], ways: list[tuple[int, list[int], str]]):
    """An OSM XML document: nodes id -> (lon, lat); ways (id, node ids, highway)."""
    lines = ["<?xml version='1.0' encoding='UTF-8'?>", '<osm version="0.6" generator="t">']
    lines += [f'<node id="{k}" version="1" lat="{y:.7f}" lon="{x:.7f}"/>'
              for k, (x, y) in nodes.items()]
    for wid, refs, highway in ways:
        nds = "".join(f'<nd ref="{r}"/>' for r in refs)
        lines.append(f'<way id="{wid}" version="1">{nds}<tag k="highway" v="{highway}"/></way>')
    return "\n".join(lines + ["</osm>"])


def test_osm_report_counts_ways_as_ways_and_segments_as_segments(tmp_path):
    # three trunk ways of 5, 8 and 10 nodes: 3 ways, 4 + 7 + 9 = 20 segments
    nodes, ways, k = {}, [], 1
    for w, n in enumerate((5, 8, 10)):
        ids = []
        for i in range(n):
            nodes[k] = (108.940 + 0.0005 * i, 34.260 + 0.001 * w)
            ids.append(k)
            k += 1
        ways.append((100 + w, ids, "trunk"))
    ways.append((200, [1, 6, 14], "residential"))  # a street across their first nodes
    path = tmp_path / "trunk.osm"
    path.write_text(osm_text(nodes, ways), encoding="utf-8")
    net = N.from_osm_file(path, min_component_share=0)
    assert net.report["excluded_ways"] == {"trunk": 3}
    assert net.report["excluded_segments"] == {"trunk": 20}
    assert net.report["n_ways_in"] == 4
    zh = N.report_table(net).set_index("key")
    en = N.report_table(net, lang="en").set_index("key")
    assert zh.loc["excluded_ways", "item"] == "排除的道路等级（OSM道路条数）"
    assert zh.loc["excluded_ways", "value"] == "trunk: 3"
    assert en.loc["excluded_ways", "item"] == "excluded road classes (OSM ways)"
    assert en.loc["excluded_segments", "value"] == "trunk: 20"
    assert "excluded_classes" not in zh.index  # that key counts lines of a line layer
    lines = N.report_table(N.from_lines(roads([(0, 0), (100, 0)], [(0, 0), (0, 100)],
                                              fclass=["trunk", "residential"])), lang="en")
    assert lines.set_index("key").loc["excluded_classes", "item"] == \
        "excluded road classes (lines)"


def _grid_nodes():
    """A 5 x 5 grid of nodes 0.001 degrees apart in central Xi'an; id = 10 * (i + 1) + j."""
    return {10 * (i + 1) + j: (108.940 + 0.001 * i, 34.260 + 0.001 * j)
            for i in range(5) for j in range(5)}


def test_clipped_pbf_is_read_in_pieces(tmp_path):
    import osmium
    import osmnx as ox

    nodes = _grid_nodes()
    nodes.update({901: (108.9435, 34.2605), 902: (108.9445, 34.2610),
                  903: (108.9435, 34.2615), 911: (108.9445, 34.2635)})
    ways = [(100 + j, [10 * (i + 1) + j for i in range(5)], "residential") for j in range(5)]
    ways += [(200 + i, [10 * (i + 1) + j for j in range(5)], "footway") for i in range(5)]
    ways.append((300, [40, 901, 902, 903, 42], "service"))  # leaves the box and comes back
    ways.append((301, [43, 911], "path"))  # one node inside
    full = tmp_path / "full.osm"
    full.write_text(osm_text(nodes, ways), encoding="utf-8")
    # clip with osmium like `osmium extract --strategy simple --bbox`: the nodes inside the
    # box, and every way with a node inside, as it is (its refs outside now point nowhere)
    east = 108.944
    inside = {k for k, (x, _) in nodes.items() if x < east}
    clipped = tmp_path / "clipped.osm.pbf"
    with osmium.SimpleWriter(str(clipped)) as writer:
        for obj in osmium.FileProcessor(str(full)):
            if obj.is_node() and obj.location.lon < east:
                writer.add(obj)
            elif obj.is_way() and any(n.ref in inside for n in obj.nodes):
                writer.add(obj)
    as_xml = tmp_path / "clipped.osm"
    with osmium.SimpleWriter(str(as_xml)) as writer:
        for obj in osmium.FileProcessor(str(clipped)):
            writer.add(obj)
    with pytest.raises(ValueError, match="clipping"):  # what OSMnx does with it
        ox.graph_from_xml(as_xml, retain_all=True)
    for source in (clipped, as_xml):
        with pytest.warns(PlannerWarning, match=r"is clipped: 7 street way\(s\) reference 7 "
                                                r"node\(s\).*6 way\(s\) were cut into the 7"):
            net = N.from_osm_file(source, min_component_share=0)
        r = net.report
        assert (r["ways_clipped"], r["clip_pieces"], r["ways_clipped_dropped"]) == (6, 7, 1)
        assert r["n_components"] == 1
        # kept: rows i = 0..3 (3 segments each), columns i = 0..3 (4 each), the two pieces
        # of the service way; nothing drawn across the part outside the box
        pairs = [(10 * (i + 1) + j, 10 * (i + 2) + j) for j in range(5) for i in range(3)]
        pairs += [(10 * (i + 1) + j, 10 * (i + 1) + j + 1) for i in range(4) for j in range(4)]
        pairs += [(40, 901), (903, 42)]
        tr = pyproj.Transformer.from_crs(4326, net.crs, always_xy=True)
        want = sum(math.dist(tr.transform(*nodes[a]), tr.transform(*nodes[b]))
                   for a, b in pairs)
        assert net.edge_length_m.sum() == pytest.approx(want, rel=1e-9)
        assert net.report["excluded_ways"] == {}
        table = N.report_table(net).set_index("key")
        assert table.loc["ways_clipped", "value"] == "6"
        assert table.loc["ways_clipped", "item"] == "被数据范围裁切的道路（条，保留范围内片段）"
    # the way ids are counted once: the service way's second piece is the same way
    assert net.report["n_ways_in"] == 5 + 4 + 1


# --------------------------------------------------------------------------- GraphML
def test_graphml_round_trip(tmp_path):
    g = roads(*grid_lines(4), fclass=["primary"] + ["residential"] * 7,
              name=["长安路"] + [""] * 7)
    net = N.from_lines(g, profile="frail", crossing_delay_s=20.0)
    path = N.to_graphml(net, tmp_path / "net.graphml")
    back = N.from_graphml(path)
    for attr in ("node_x", "node_y", "edge_u", "edge_v", "edge_length_m", "edge_time_s",
                 "edge_delay_s"):
        np.testing.assert_array_equal(getattr(back, attr), getattr(net, attr), err_msg=attr)
    assert back.crs == net.crs and back.speed_mps == 0.65 and back.profile == "frail"
    assert back.edges.geometry.geom_equals_exact(net.edges.geometry, 0).all()
    assert back.edges.name.tolist() == net.edges.name.tolist()
    assert back.report["n_nodes"] == net.report["n_nodes"]
    faster = N.from_graphml(path, profile="older_adult")
    np.testing.assert_allclose(faster.edge_time_s - faster.edge_delay_s,
                               faster.edge_length_m / 1.0)


def test_graphml_frail_profile_avoids_saved_steps(tmp_path):
    # saved with steps (healthy older adult); loaded for a frail walker the steps go, as they
    # do when the frail network is built from the lines themselves
    g = roads([(0, 0), (0, 30)], [(0, 0), (100, 0), (100, 30), (0, 30)], [(0, 30), (0, 60)],
              fclass=["steps", "footway", "residential"])
    path = N.to_graphml(N.from_lines(g), tmp_path / "net.graphml")
    same = N.from_graphml(path)
    assert "steps" in set(same.edges.fclass)
    frail = N.from_graphml(path, profile="frail")
    direct = N.from_lines(g, profile="frail")
    assert "steps" not in set(frail.edges.fclass)
    assert frail.report["steps_avoided_edges"] == 1  # edges of the saved network
    a, b = node_at(frail, 0, 0), node_at(frail, 0, 60)
    assert dist(frail, a, b) == pytest.approx(260.0)  # round the ramp: 100 + 30 + 100 + 30
    assert dist(frail, a, b, weight="time") == pytest.approx(260.0 / 0.65)
    assert (frail.n_nodes, frail.n_edges) == (direct.n_nodes, direct.n_edges)
    assert sorted(frail.edge_time_s) == pytest.approx(sorted(direct.edge_time_s))
    # explicit class lists filter a saved network too; the report names what went
    nores = N.from_graphml(path, exclude_classes=["steps", "residential"])
    assert set(nores.edges.fclass) == {"footway"}
    assert nores.report["excluded_edges"] == {"residential": 1, "steps": 1}
    # a crossing delay given at load time re-times the saved network
    delayed = N.from_graphml(path, crossing_delay_s=10.0)
    assert delayed.report["crossing_delay_s"] == 10.0


def test_osmnx_graphml_is_read(osm_xml, tmp_path):
    import osmnx as ox

    G = osmnx_graph(osm_xml)
    p = tmp_path / "osmnx.graphml"
    ox.save_graphml(G, p)
    net = N.from_graphml(p, min_component_share=0)
    assert net.edge_length_m.sum() == pytest.approx(utm_length(WALKED), rel=1e-9)


# --------------------------------------------------------------------------- the pipeline's network step
def _result(tmp_path, network):
    from planner.pipeline import RunResult
    from planner.pipeline.settings import LayersSettings, NetworkSettings, Scenario

    sc = Scenario(name="t", layers=LayersSettings(), base_dir=tmp_path,
                  network=None if network is None else NetworkSettings(**network))
    return RunResult(scenario=sc)


def test_run_step_skips_without_network_section(tmp_path):
    assert "no `network:` section" in steps.network(_result(tmp_path, None))


def test_run_step_builds_from_a_line_file(tmp_path):
    g = roads(*grid_lines(4, x0=XIAN_X, y0=XIAN_Y), crs=CRS)
    g.to_crs(4326).to_file(tmp_path / "roads.geojson", driver="GeoJSON")
    result = _result(tmp_path, {"source": "lines", "path": "roads.geojson",
                                "profile": "older_adult_design"})
    result.crs = pyproj.CRS.from_user_input(CRS)
    assert steps.network(result) is None
    net = result.artifacts["network"]
    assert (net.n_nodes, net.n_edges) == (12, 20)  # 4 x 4 grid less its corners
    assert net.speed_mps == 0.9
    assert result.layers["network_edges"].crs == net.crs == result.crs
    assert result.layers["network_edges"].length_m.sum() == pytest.approx(2400, rel=1e-6)
    table = result.tables["network_report"].set_index("key")
    assert table.loc["n_edges", "value"] == "20"


def test_run_step_warnings_go_through_the_result(tmp_path):
    g = roads([(XIAN_X, XIAN_Y), (XIAN_X + 100, XIAN_Y)],
              [(XIAN_X + 50, XIAN_Y - 10), (XIAN_X + 50, XIAN_Y + 10)],
              fclass=["residential", "skyway"])
    g.to_file(tmp_path / "roads.gpkg", driver="GPKG")
    result = _result(tmp_path, {"source": "lines", "path": "roads.gpkg"})
    with pytest.warns(PlannerWarning, match="skyway"):
        steps.network(result)
    assert any("skyway" in w for w in result.warnings)


def test_run_step_gcj02_lines_land_where_wgs84_ones_do(tmp_path):
    from planner.coords import wgs84_to_gcj02

    g = roads(*grid_lines(3, x0=XIAN_X, y0=XIAN_Y), crs=CRS).to_crs(4326)
    g.to_file(tmp_path / "wgs.geojson", driver="GeoJSON")
    shifted = g.copy()
    shifted.geometry = shapely.transform(
        g.geometry.values, lambda c: np.column_stack(wgs84_to_gcj02(c[:, 0], c[:, 1])))
    shifted.to_file(tmp_path / "gcj.geojson", driver="GeoJSON")
    nets = {}
    for name, system in (("wgs", "wgs84"), ("gcj", "gcj02")):
        result = _result(tmp_path, {"source": "lines", "path": f"{name}.geojson",
                                    "coord_system": system})
        result.crs = pyproj.CRS.from_user_input(CRS)
        steps.network(result)
        nets[name] = result.artifacts["network"]
    a, b = nets["wgs"], nets["gcj"]
    assert a.n_nodes == b.n_nodes == 5  # 3 x 3 grid less its 4 corners
    np.testing.assert_allclose(np.sort(b.node_x), np.sort(a.node_x), atol=0.5)
    np.testing.assert_allclose(np.sort(b.node_y), np.sort(a.node_y), atol=0.5)
    # read as WGS-84 the GCJ-02 file would sit hundreds of metres off
    wrong = N.from_lines(gpd.read_file(tmp_path / "gcj.geojson"), crs=CRS)
    assert np.hypot(wrong.node_x.mean() - a.node_x.mean(),
                    wrong.node_y.mean() - a.node_y.mean()) > 300


def test_run_step_osm_and_graphml_sources(tmp_path, osm_xml):
    result = _result(tmp_path, {"source": "osm", "path": str(osm_xml),
                                "min_component_share": 0.0})
    assert steps.network(result) is None
    net = result.artifacts["network"]
    assert (net.n_nodes, net.n_edges) == (7, 6)
    assert result.crs == net.crs  # set from the network when no layer fixed it
    N.to_graphml(net, tmp_path / "saved.graphml")
    np.testing.assert_array_equal(N.from_graphml(tmp_path / "saved.graphml").node_id,
                                  net.node_id)
    again = _result(tmp_path, {"source": "graphml", "path": "saved.graphml", "speed_mps": 0.5})
    assert steps.network(again) is None
    back = again.artifacts["network"]
    np.testing.assert_allclose(back.edge_time_s, net.edge_length_m / 0.5)


def test_run_step_without_path_raises(tmp_path):
    with pytest.raises(NetworkError, match="`network.path` is not set"):
        steps.network(_result(tmp_path, {"source": "lines"}))


# --------------------------------------------------------------------------- Xi'an
@pytest.fixture(scope="module")
def xian_roads(xian_dir):
    from planner.layers import read_layer

    return read_layer(xian_dir / "xian_road.kml", kind="lines")


@pytest.fixture(scope="module")
def xian_net(xian_roads):
    return N.from_lines(xian_roads, exclude_classes=["motorway", "motorway_link", "trunk_link"])


@pytest.mark.xian
def test_xian_counts(xian_roads, xian_net):
    r = xian_net.report
    assert r["n_lines_in"] == len(xian_roads) == 5610
    assert sum(r["excluded_classes"].values()) == 280
    assert r["crossings"] == 584
    assert r["crossings_grade_separated"] == 557
    assert r["crossings_at_grade"] == 27
    assert r["n_components"] > 100
    assert 0.95 < r["largest_component_share"] < 0.99
    # lengths are conserved: kept + dropped edges = used lines (+ the joined gaps)
    used = xian_roads[~xian_roads.fclass.isin(["motorway", "motorway_link", "trunk_link"])]
    total = used.to_crs(xian_net.crs).length.sum() / 1000
    assert r["total_km"] + r["km_dropped"] == pytest.approx(total, abs=0.01)


@pytest.mark.xian
def test_xian_default_excludes_trunk_roads(xian_roads):
    net = N.from_lines(xian_roads)
    assert net.report["excluded_classes"]["trunk"] == 139
    assert not {"trunk", "motorway"} & set(net.edges.fclass)


@pytest.mark.xian
def test_xian_csr_shortest_paths_equal_networkx(xian_net):
    g = xian_net.to_networkx()
    csr = xian_net.csr()
    rng = np.random.default_rng(0)
    sources = rng.choice(xian_net.n_nodes, size=3, replace=False)
    ours = dijkstra(csr, indices=sources)
    for k, s in enumerate(sources):
        theirs = nx.single_source_dijkstra_path_length(g, int(s), weight="weight")
        idx = np.fromiter(theirs.keys(), dtype=np.int64)
        np.testing.assert_allclose(ours[k, idx], np.fromiter(theirs.values(), dtype=float),
                                   rtol=0, atol=1e-6)
        unreached = np.setdiff1d(np.arange(xian_net.n_nodes), idx)
        assert np.isinf(ours[k, unreached]).all()


@pytest.mark.xian
def test_xian_crossings_agree_with_geos_intersections(xian_roads, xian_net):
    # independent count: GEOS intersection points of every pair of lines that are a vertex of
    # neither line (the 280 motorway / motorway_link / trunk_link lines left out, as in issue 4)
    used = xian_roads[~xian_roads.fclass.isin(["motorway", "motorway_link", "trunk_link"])]
    used = used.explode(index_parts=False).reset_index(drop=True)
    geoms = used.geometry.to_numpy()
    a, b = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    a, b = a[a < b], b[a < b]
    verts = [set(map(tuple, shapely.get_coordinates(g))) for g in geoms]
    sep = (used.bridge.eq("T") | used.tunnel.eq("T")).to_numpy()
    lay = used.layer.astype(int).to_numpy()
    total = at_grade = 0
    for i, j, g in zip(a, b, shapely.intersection(geoms[a], geoms[b]), strict=True):
        for p in shapely.get_parts(g):
            if p.geom_type == "Point" and (p.x, p.y) not in verts[i] | verts[j]:
                total += 1
                at_grade += bool(not sep[i] and not sep[j] and lay[i] == lay[j])
    assert (total, total - at_grade, at_grade) == (584, 557, 27)
    r = xian_net.report
    assert (r["crossings"], r["crossings_grade_separated"], r["crossings_at_grade"]) == (
        total, total - at_grade, at_grade)
