"""Tests of planner.maps: offline Folium maps built from small hand-made layers."""

from __future__ import annotations

import html
import json
import re

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import LineString, Point, box

from planner import coords, maps
from planner._errors import OutputError
from planner.pipeline import RunResult, presenting
from planner.pipeline import steps as ST
from planner.pipeline.settings import Scenario

CRS = "EPSG:32649"  # UTM 49N, Xi'an
X0, Y0 = 300_000.0, 3_800_000.0
EVIL = "<script>alert(1)</script>"


def make_result(*, lang: str = "zh", osm: bool = False, out_dir=None) -> RunResult:
    """A tiny run: two townships, three facilities, four demand points, one proposal."""
    sc = Scenario(name="t", lang=lang, layers={}, osm_data=osm,
                  outputs={"print_maps": True})
    r = RunResult(scenario=sc, crs=CRS, out_dir=out_dir)
    towns = gpd.GeoDataFrame(
        {"id": ["T1", "T2"], "name": ["新城街道", EVIL], "pop_60plus": [300, 200]},
        geometry=[box(X0, Y0, X0 + 1000, Y0 + 1000), box(X0 + 1000, Y0, X0 + 2000, Y0 + 1000)],
        crs=CRS)
    fac = gpd.GeoDataFrame(
        {"id": ["F1", "F2", "F3"], "name": ["城南养老院", "新城中心", EVIL],
         "tier": ["district_home", "township_centre", "community_station"],
         "beds": [120, 40, np.nan]},
        geometry=[Point(X0 + 200, Y0 + 200), Point(X0 + 500, Y0 + 500), Point(X0 + 1500, Y0 + 500)],
        crs=CRS)
    pa = gpd.GeoDataFrame(
        {"id": ["P1", "P2", "P3", "P4"], "name": ["甲小区", "乙小区", EVIL, "丁小区"],
         "pop_60plus": [100, 200, 150, 50], "township": ["新城街道", "新城街道", EVIL, EVIL],
         "time_min_any": [3.0, 8.0, 20.0, np.inf],
         "within_15min": [True, True, False, False]},
        geometry=[Point(X0 + 250, Y0 + 250), Point(X0 + 700, Y0 + 700),
                  Point(X0 + 1800, Y0 + 900), Point(X0 + 1900, Y0 + 100)],
        crs=CRS)
    sa = gpd.GeoDataFrame(
        {"facility_id": ["F1"] * 3 + ["F2"] * 3,
         "tier": ["district_home"] * 3 + ["township_centre"] * 3,
         "minutes": [5.0, 10.0, 15.0] * 2},
        geometry=[Point(X0 + 200, Y0 + 200).buffer(r) for r in (300, 600, 900)]
        + [Point(X0 + 500, Y0 + 500).buffer(r) for r in (300, 600, 900)], crs=CRS)
    blind = gpd.GeoDataFrame({"pop_60plus": [200], "n_units": [2]},
                             geometry=[box(X0 + 1700, Y0 + 50, X0 + 1950, Y0 + 950)], crs=CRS)
    prop = gpd.GeoDataFrame(
        {"id": ["C1"], "name": [EVIL], "tier": ["township_centre"],
         "pop_60plus_newly_covered": [150.0], "time_saved_min": [6.5]},
        geometry=[Point(X0 + 1750, Y0 + 600)], crs=CRS)
    edges = gpd.GeoDataFrame(
        {"fclass": ["residential", "footway"], "length_m": [2000.0, 1000.0]},
        geometry=[LineString([(X0, Y0 + 500), (X0 + 2000, Y0 + 500)]),
                  LineString([(X0 + 1000, Y0), (X0 + 1000, Y0 + 1000)])], crs=CRS)
    checks = pd.DataFrame({
        "rule_id": ["centre", "centre", "land", "land"],
        "title": ["街镇综合养老服务中心", "街镇综合养老服务中心", "养老用地", "养老用地"],
        "measure": ["township_centre_count"] * 2 + ["land_m2_per_resident"] * 2,
        "scope": ["township"] * 4, "unit_id": ["T1", "T2", "T1", "T2"],
        "unit_name": ["新城街道", EVIL, "新城街道", EVIL],
        "value": [1.0, 0.0, 0.25, np.nan], "threshold": [1.0, 1.0, 0.2, 0.2],
        "unit": ["个", "个", "m²/人", "m²/人"],
        "status": ["pass", "fail", "pass", "not_assessable"],
        "shortfall": [0.0, 1.0, 0.0, np.nan],
        "shortfall_text": ["", "缺 1 个中心", "", ""], "missing": ["", "", "", "land_area_m2"],
        "source": ["GB 50180-2018"] * 4, "clause": ["附录C", "附录C", "4.0.3", "4.0.3"],
    })
    r.layers.update(townships=towns, facilities=fac, population_access=pa, service_areas=sa,
                    blind_spots=blind, proposed_sites=prop, network_edges=edges,
                    township_norms=towns.copy())
    r.tables.update(
        norm_checks=checks,
        coverage=pd.DataFrame({  # long form, as planner.access.coverage_table makes it
            "tier": ["any"] * 3, "minutes": [15.0] * 3,
            "scope": ["overall", "township", "township"], "area": ["全部", "新城街道", EVIL],
            "district": [None] * 3, "n_units": [4, 2, 2], "n_units_within": [2, 2, 0],
            "pop_60plus": [500.0, 300.0, 200.0], "pop_60plus_within": [300.0, 300.0, 0.0],
            "pop_60plus_share": [0.6, 1.0, 0.0]}),
        proposed_sites=pd.DataFrame(prop.drop(columns="geometry")),
        coverage_before_after=pd.DataFrame({  # as the locate step makes it
            "threshold_min": [5.0, 10.0, 15.0], "pop_60plus_before": [100.0, 300.0, 300.0],
            "pop_60plus_after": [100.0, 300.0, 450.0], "pop_60plus_gain": [0.0, 0.0, 150.0],
            "share_before": [0.2, 0.6, 0.6], "share_after": [0.2, 0.6, 0.9]}),
    )
    return r


def _text(page: str) -> str:
    """The page with JSON \\uXXXX escapes decoded (folium's tojson writes Chinese that way)."""
    return re.sub(r"\\u([0-9a-fA-F]{4})", lambda g: chr(int(g.group(1), 16)), page)


def _geojsons(m: folium.Map) -> list[folium.GeoJson]:
    out, stack = [], [m]
    while stack:
        el = stack.pop()
        if isinstance(el, folium.GeoJson):
            out.append(el)
        stack.extend(el._children.values())
    return out


def _coords(geojson: dict) -> np.ndarray:
    vals = re.findall(r"-?\d+\.\d+", json.dumps([f["geometry"] for f in geojson["features"]]))
    return np.array([float(v) for v in vals])


def test_page_is_offline_and_inlines_leaflet():
    m = maps.web_map(presenting.study_of(make_result()))
    page = maps.to_html(m)
    # nothing is fetched: no external script, stylesheet, image or CSS url()
    assert not re.search(r"<(?:script|link|img)[^>]+(?:src|href)=", page)
    assert not re.search(r"url\(\s*['\"]?(?:https?:)?//", page)
    assert "jquery" not in page.lower() and "bootstrap" not in page.lower()
    assert 'L.version="1.9.3"' in page.replace(" ", "") or '"1.9.3"' in page
    # the layer-control icon is inlined, not fetched from images/
    assert "images/layers.png" not in page and "data:image/png;base64," in page


def test_user_text_is_escaped_everywhere():
    m = maps.web_map(presenting.study_of(make_result()))
    page = maps.to_html(m)
    assert EVIL not in page
    assert "alert(1)</script" not in page
    # the name reaches the tooltip data escaped (and JSON-escaped by folium's tojson)
    assert "\\u0026lt;script\\u0026gt;alert(1)" in page
    frag = maps.to_iframe(m)
    srcdoc = frag[frag.index('srcdoc="') + 8: frag.rindex('" style=')]
    assert "<" not in srcdoc and html.unescape(srcdoc) == page


def test_tooltips_hold_escaped_names_and_times():
    m = maps.base_map()
    maps.add_population_access(m, make_result().layers["population_access"])
    props = [f["properties"] for g in _geojsons(m) for f in g.data["features"]]
    assert len(props) == 4
    # name, older residents and walking time per unit; the labels are written once per layer
    rows = sorted((p["f0"], p["f1"], p["f2"]) for p in props)
    assert rows == sorted([("甲小区", "100", "3.0 分钟"), ("乙小区", "200", "8.0 分钟"),
                           ("&lt;script&gt;alert(1)&lt;/script&gt;", "150", "20.0 分钟"),
                           ("丁小区", "50", "不可达")])
    page = _text(maps.to_html(m))
    assert page.count("最近设施步行时间") == 4  # one alias list per time band, not per unit
    assert EVIL not in page


def test_demand_units_split_into_time_bands():
    m = maps.base_map(lang="en")
    maps.add_population_access(m, make_result().layers["population_access"], circle_min=15)
    colors = sorted((g.style_function({})["fillColor"], len(g.data["features"]))
                    for g in _geojsons(m))
    expected = sorted((maps.BAND_COLORS[b], 1) for b in ("5", "10", "over", "unreachable"))
    assert colors == expected
    labels = [label for _, label in m.planner_opts["legend"]["demand"]]
    assert labels == ["≤ 5 min", "5–10 min", "> 15 min", "Unreachable"]


def test_absent_layers_are_not_drawn():
    r = make_result()
    for key in ("service_areas", "blind_spots", "proposed_sites", "population_access",
                "township_norms", "network_edges"):
        r.layers.pop(key)
    m = maps.web_map(presenting.study_of(r))
    page = _text(maps.to_html(m))
    assert "服务盲区" not in page and "规划新增设施" not in page
    assert "现有养老设施" in page and "街道/乡镇边界" in page


def test_labels_chinese_by_default_english_on_request():
    zh = _text(maps.to_html(maps.web_map(presenting.study_of(make_result()))))
    en = _text(maps.to_html(maps.web_map(presenting.study_of(make_result(lang="en")))))
    for text in ("图例", "服务盲区", "规划新增设施", "10 分钟步行范围", "街镇综合养老服务中心"):
        assert text in zh
    for text in ("Legend", "Blind spots", "Proposed sites", "10-minute walk",
                 "Township/subdistrict centre"):
        assert text in en
    assert "图例" not in en


def test_osm_credit_only_when_osm_data_is_used():
    assert "OpenStreetMap contributors (ODbL)" in maps.to_html(
        maps.web_map(presenting.study_of(make_result(osm=True))))
    assert "OpenStreetMap" not in maps.to_html(maps.web_map(presenting.study_of(make_result())))
    from planner.pipeline.settings import NetworkSettings

    r = make_result()
    r.scenario.network = NetworkSettings(source="osmnx_place", place="碑林区, 西安市")
    assert presenting.study_of(r).osm_data
    assert "OpenStreetMap contributors (ODbL)" in maps.to_html(maps.web_map(presenting.study_of(r)))


def test_gcj02_tiles_shift_our_data():
    fac = make_result().layers["facilities"]
    ll = fac.to_crs(4326)
    m = maps.base_map(tiles="https://tiles.example/{z}/{x}/{y}.png", tiles_coord_system="gcj02")
    maps.add_facilities(m, fac)
    got = sorted(tuple(f["geometry"]["coordinates"]) for g in _geojsons(m)
                 for f in g.data["features"])
    lon, lat = coords.wgs84_to_gcj02(ll.geometry.x.to_numpy(), ll.geometry.y.to_numpy())
    want = sorted(zip(np.round(lon, 5), np.round(lat, 5)))
    np.testing.assert_allclose(np.array(got), np.array(want), atol=1e-9)
    # the GCJ-02 offset in Xi'an is several hundred metres, so the shift is real
    assert np.abs(np.array(got)[:, 0] - np.sort(ll.geometry.x.to_numpy())).max() > 1e-3
    plain = maps.base_map()
    maps.add_facilities(plain, fac)
    got_plain = sorted(tuple(f["geometry"]["coordinates"]) for g in _geojsons(plain)
                       for f in g.data["features"])
    want_plain = sorted(zip(np.round(ll.geometry.x, 5), np.round(ll.geometry.y, 5)))
    np.testing.assert_allclose(np.array(got_plain), np.array(want_plain), atol=1e-9)


def test_tile_errors_say_how_to_fix():
    with pytest.raises(OutputError, match="bd09"):
        maps.base_map(tiles="https://a/{z}/{x}/{y}", tiles_coord_system="bd09")
    with pytest.raises(OutputError, match="XYZ URL template"):
        maps.base_map(tiles="NoSuchProvider.Anything")
    m = maps.base_map(tiles="OpenStreetMap.Mapnik")
    assert "tile.openstreetmap.org" in maps.to_html(m)


def test_geometry_is_simplified_and_rounded():
    circle = Point(X0, Y0).buffer(500, resolution=256)  # 1025 vertices
    gdf = gpd.GeoDataFrame({"name": ["a"]}, geometry=[circle], crs=CRS)
    m = maps.base_map()
    maps.add_boundaries(m, gdf, tolerance_m=5.0)
    (layer,) = _geojsons(m)
    ring = layer.data["features"][0]["geometry"]["coordinates"][0]
    assert 10 < len(ring) < 200
    text = json.dumps(layer.data["features"][0]["geometry"])
    assert max(len(d) for d in re.findall(r"\.(\d+)", text)) <= maps.COORD_DECIMALS


def test_whole_city_map_stays_small():
    rng = np.random.default_rng(0)
    n = 3000
    xy = rng.uniform([X0, Y0], [X0 + 20_000, Y0 + 20_000], size=(n, 2))
    units = gpd.GeoDataFrame(
        {"name": [f"小区{i}" for i in range(n)], "pop_60plus": rng.integers(10, 500, n),
         "time_min_any": rng.uniform(0, 30, n)},
        geometry=[Point(x, y).buffer(60, resolution=16) for x, y in xy], crs=CRS)
    m = maps.base_map()
    maps.add_population_access(m, units)
    size = len(maps.to_html(m).encode())
    # Leaflet itself is ~150 KB; each unit ~0.4 KB (simplified, 5 decimals, labels written
    # once per layer), so a city of 20 000 units stays well under 20 MB
    assert size < 1_500_000


def test_township_status_from_norm_checks():
    r = make_result()
    status, failing = maps.township_status(r.layers["township_norms"], r.tables["norm_checks"])
    assert status == ["pass", "fail"]
    assert [c["rule_id"] for c in failing[1]] == ["centre", "land"]
    assert failing[0] == []
    m = maps.base_map()
    maps.add_township_norms(m, r.layers["township_norms"], norm_checks=r.tables["norm_checks"])
    tips = {g.style_function({})["color"]: g.data["features"][0]["properties"]["tip"]
            for g in _geojsons(m)}
    assert "附录C" in tips[maps.STATUS_COLORS["fail"]] and "缺 1 个中心" in tips[
        maps.STATUS_COLORS["fail"]]
    assert "全部指标达标" in tips[maps.STATUS_COLORS["pass"]]


def test_proposed_site_popup():
    r = make_result(lang="en")
    m = maps.base_map(lang="en")
    maps.add_proposed_sites(m, r.layers["proposed_sites"], total_pop_60plus=500)
    (layer,) = _geojsons(m)
    popup = layer.data["features"][0]["properties"]["popup"]
    assert "150 persons" in popup and "30.0 percentage points" in popup
    assert "6.5 min" in popup and "Township/subdistrict centre" in popup
    assert "&lt;script&gt;" in popup


def test_facility_tiers_get_distinct_symbols():
    m = maps.base_map()
    maps.add_facilities(m, make_result().layers["facilities"])
    icons = [g.marker.icon.options["html"] for g in _geojsons(m)]
    assert len(icons) == 3 and len(set(icons)) == 3
    assert [label for _, label in m.planner_opts["legend"]["facilities"]] == [
        "区县养老院", "街镇综合养老服务中心", "社区养老服务站"]


def test_layer_without_crs_is_refused():
    gdf = gpd.GeoDataFrame({"name": ["a"]}, geometry=[Point(0, 0)])
    with pytest.raises(OutputError, match="no CRS"):
        maps.add_facilities(maps.base_map(), gdf)


def test_jupyter_repr_is_offline_iframe():
    m = maps.web_map(presenting.study_of(make_result()))
    out = m._repr_html_()
    assert "srcdoc=" in out and "cdn.jsdelivr" not in out


def test_run_step_writes_map(tmp_path):
    r = make_result(out_dir=tmp_path)
    assert ST.maps(r) is None
    assert isinstance(r.artifacts["map"], folium.Map)
    page = (tmp_path / "map.html").read_text(encoding="utf-8")
    assert "leaflet" in page and EVIL not in page
    r.scenario.outputs.map = False
    assert "outputs.map" in ST.maps(r)


def test_tiles_settings_reach_the_map():
    r = make_result()
    r.scenario.outputs.tiles = "https://wprd0{s}.example.cn/tile/{z}/{x}/{y}.png"
    r.scenario.outputs.tiles_attribution = "© 高德 <AMap>"
    page = _text(maps.to_html(maps.web_map(presenting.study_of(r))))
    assert "wprd0{s}.example.cn" in page and "© 高德 &lt;AMap&gt;" in page


@pytest.mark.xian
def test_xian_whole_city_map_is_small_and_offline(xian_dir):
    from planner.layers import read_layer

    roads = read_layer(xian_dir / "xian_road.kml", kind="lines")
    res = read_layer(xian_dir / "xian_landuse_residential.gpkg", kind="residential",
                     target_crs=roads.crs)
    water = read_layer(xian_dir / "xian_water.gpkg", kind="context", target_crs=roads.crs)
    m = maps.base_map(bounds=tuple(roads.to_crs(4326).total_bounds))
    maps.add_water(m, water)
    maps.add_roads(m, roads)
    maps.add_boundaries(m, res)
    maps.finish(m, osm_credit=True)
    page = maps.to_html(m)
    assert len(page.encode()) < 20_000_000
    assert "OpenStreetMap contributors (ODbL)" in page
    layers = _geojsons(m)
    # 5,610 road lines travel as one MultiLineString; every residential polygon stays
    assert sorted(len(g.data["features"]) for g in layers) == sorted(
        [1, len(water), len(res)])
    roads_json = next(g for g in layers if g.data["features"][0]["geometry"]["type"]
                      == "MultiLineString")
    assert len(roads_json.data["features"][0]["geometry"]["coordinates"]) >= len(roads)


def test_population_choropleth_quantile_classes_and_estimate_flag():
    units = gpd.GeoDataFrame(
        {"name": list("abcde"), "pop_60plus": [10, 20, 30, 40, 50]},
        geometry=[box(X0 + 100 * i, Y0, X0 + 100 * i + 90, Y0 + 90) for i in range(5)], crs=CRS)
    m = maps.base_map()
    maps.add_population(m, units, estimated=True)
    layers = _geojsons(m)
    # quantile edges 18, 26, 34, 42: one unit per class, five colours
    assert [len(g.data["features"]) for g in layers] == [1] * 5
    assert len({g.style_function({})["fillColor"] for g in layers}) == 5
    assert "60岁及以上人口 (估算)" in layers[0].data["features"][0]["properties"]["tip"]
    labels = [label for _, label in m.planner_opts["legend"]["population"]]
    assert labels[0] == "60岁及以上人口 (估算)" and labels[1] == "10–18"


def test_map_from_result_draws_estimated_population_without_access():
    r = make_result()
    pa = r.layers.pop("population_access")
    r.layers["population"] = pa.drop(columns=["time_min_any", "within_15min"])
    r.tables["demand_columns"] = pd.DataFrame({"layer": ["population"], "column": ["pop_60plus"],
                                               "estimated": [True]})
    page = _text(maps.to_html(maps.web_map(presenting.study_of(r))))
    assert "60岁及以上人口 (估算)" in page and "居住单元（按步行时间）" not in page


def test_online_plugin_is_reported_and_user_maps_can_be_made_offline():
    from folium.plugins import Fullscreen

    from planner._errors import PlannerWarning

    m = maps.base_map()
    Fullscreen().add_to(m)
    with pytest.warns(PlannerWarning, match="will not work without internet"):
        maps.to_html(m)
    own = folium.Map(tiles=None)
    assert "cdn.jsdelivr.net" in own.get_root().render()
    page = maps.to_html(maps.make_offline(folium.Map(tiles=None)))
    assert not re.search(r"<(?:script|link)[^>]+(?:src|href)=", page)
