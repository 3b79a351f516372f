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
    labels = [label for _, label, _ in m.planner_opts["legend"]["demand"]]
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
    with pytest.raises(OutputError, match="Baidu tiles"):
        maps.base_map(tiles="https://a/{z}/{x}/{y}", tiles_coord_system="bd09")
    with pytest.raises(OutputError, match="Baidu tiles"):  # known by its host
        maps.base_map(tiles="https://maponline0.bdimg.com/tile/?x={x}&y={y}&z={z}")
    with pytest.raises(OutputError, match="tiles_key"):
        maps.base_map(tiles="tianditu")
    with pytest.raises(OutputError, match="GCJ-02, but tiles_coord_system is 'wgs84'"):
        maps.base_map(tiles="amap", tiles_coord_system="wgs84")
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
    assert [label for _, label, _ in m.planner_opts["legend"]["facilities"]] == [
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
    labels = [label for _, label, _ in m.planner_opts["legend"]["population"]]
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


# --------------------------------------------------------------------------- start state
def _groups(m):
    return [el for el in m._children.values() if isinstance(el, folium.FeatureGroup)]


def test_web_map_starts_with_coverage_facilities_and_proposals_only():
    r = make_result()
    m = maps.web_map(presenting.study_of(r))
    shown = {html.unescape(g.layer_name) for g in _groups(m) if g.show}
    hidden = {html.unescape(g.layer_name) for g in _groups(m) if not g.show}
    assert shown == {"居住单元（按步行时间）", "现有养老设施: 区县养老院",
                     "现有养老设施: 街镇综合养老服务中心", "现有养老设施: 社区养老服务站",
                     "规划新增设施"}
    assert {"服务盲区", "步行道路", "街镇达标情况"} <= hidden
    assert any(n.startswith("步行服务范围") for n in hidden)
    control = next(el for el in m._children.values() if isinstance(el, folium.LayerControl))
    assert control.options["collapsed"] is True
    page = maps.to_html(m)
    assert "<title>t · 15分钟养老服务圈</title>" in page
    # township names as labels, always on (not in the layer control)
    labels = re.findall(r'"html": "<span>([^<]*)</span>",\s*"iconSize": \[0, 0\],\s*'
                        r'"className": "planner-label"', _text(page))
    assert sorted(labels) == sorted(["新城街道", html.escape(EVIL)])


def test_legend_entries_name_their_layers():
    m = maps.web_map(presenting.study_of(make_result()))
    legend = m.planner_opts["legend"]
    names = {g.get_name() for g in _groups(m)}
    for section, entries in legend.items():
        for _, _, name in entries:
            assert name in names, section
    blind = next(g for g in _groups(m) if html.unescape(g.layer_name) == "服务盲区")
    assert [n for _, _, n in legend["blind_spots"]] == [blind.get_name()]


# --------------------------------------------------------------------------- colours
_CVD = {  # Machado, Oliveira & Fernandes (2009), severity 1, on linear RGB
    "normal": np.eye(3),
    "protanopia": np.array([[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216],
                            [-0.003882, -0.048116, 1.051998]]),
    "deuteranopia": np.array([[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413],
                              [-0.011820, 0.042940, 0.968881]]),
    "tritanopia": np.array([[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602],
                            [0.004733, 0.691367, 0.303900]]),
}


def _lab(hex_color: str, vision: str) -> np.ndarray:
    c = np.array([int(hex_color[i:i + 2], 16) / 255 for i in (1, 3, 5)])
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    lin = np.clip(_CVD[vision] @ lin, 0, 1)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722],
                    [0.0193, 0.1192, 0.9505]]) @ lin / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def _min_difference(colors: list[str]) -> float:
    """The smallest CIE76 colour difference of any two colours, under any vision."""
    import itertools

    return min(float(np.linalg.norm(_lab(a, v) - _lab(b, v)))
               for v in _CVD for a, b in itertools.combinations(colors, 2))


def test_colours_stay_apart_for_colour_blind_readers():
    bands = [maps.BAND_COLORS[k] for k in ("5", "10", "15", "over", "unreachable")]
    reds = [maps.BAND_COLORS["over"], maps.BLIND_SPOT_COLOR, maps.STATUS_COLORS["fail"]]
    status = list(maps.STATUS_COLORS.values())
    assert _min_difference(bands) > 20
    assert _min_difference(reds) > 30  # > 15 min, blind spot, norm failure
    assert _min_difference(status) > 30
    assert min(_min_difference([maps.BLIND_SPOT_COLOR, b]) for b in bands) > 15
    # the check itself fails the old greens (5 and 10 min looked alike to deuteranopes)
    assert _min_difference(["#1a9850", "#91cf60", "#fee08b", "#fc8d59", "#b2182b"]) < 10
    # service areas use the walking-time colours of the same minutes
    assert maps.MINUTE_COLORS[:3] == bands[:3]


# --------------------------------------------------------------------------- base maps
def test_named_base_maps_and_their_datums():
    r = make_result()
    wgs = r.layers["facilities"].to_crs(4326)
    assert maps.tiles_datum("amap") == maps.tiles_datum("Gaode.Normal") == "gcj02"
    assert maps.tiles_datum("https://rt1.map.gtimg.com/tile?z={z}&x={x}&y={-y}") == "gcj02"
    assert maps.tiles_datum("tianditu") == maps.tiles_datum("OpenStreetMap.Mapnik") == "wgs84"
    assert maps.tiles_datum("local/amap_tiles/{z}/{x}/{y}.png") == "wgs84"  # as stated
    # AMap: the data is shifted into GCJ-02 by the published transform
    m = maps.base_map(tiles="amap")
    maps.add_facilities(m, r.layers["facilities"])
    page = maps.to_html(m)
    assert "webrd0{s}.is.autonavi.com" in page and '"subdomains": "1234"' in page
    got = np.array([f["geometry"]["coordinates"] for g in _geojsons(m)
                    for f in g.data["features"]])
    glon, glat = coords.wgs84_to_gcj02(wgs.geometry.x.to_numpy(), wgs.geometry.y.to_numpy())
    assert sorted(got[:, 0]) == pytest.approx(sorted(np.round(glon, 5)), abs=1e-9)
    # Tianditu: CGCS2000, no shift; its key goes into both layers (streets and names)
    m = maps.base_map(tiles="tianditu", tiles_key="KEY123")
    maps.add_facilities(m, r.layers["facilities"])
    page = maps.to_html(m)
    assert page.count("tk=KEY123") == 2 and "T=vec_w" in page and "T=cva_w" in page
    got = np.array([f["geometry"]["coordinates"] for g in _geojsons(m)
                    for f in g.data["features"]])
    assert sorted(got[:, 0]) == pytest.approx(sorted(np.round(wgs.geometry.x, 5)), abs=1e-9)


def _tile_png(color=(200, 220, 240)) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (256, 256), color).save(buf, format="PNG")
    return buf.getvalue()


def _mbtiles(path, tiles: dict, fmt: str = "png"):
    import sqlite3

    con = sqlite3.connect(path)
    con.execute("CREATE TABLE metadata (name text, value text)")
    con.execute("CREATE TABLE tiles (zoom_level integer, tile_column integer, tile_row integer,"
                " tile_data blob)")
    con.executemany("INSERT INTO metadata VALUES (?, ?)", [("format", fmt), ("name", "t")])
    for (z, x, y), data in tiles.items():  # stored TMS: row = 2^z - 1 - y
        con.execute("INSERT INTO tiles VALUES (?, ?, ?, ?)", (z, x, 2 ** z - 1 - y, data))
    con.commit()
    con.close()


def _xyz(lon, lat, z):
    n = 2 ** z
    lat_r = np.radians(lat)
    return (int((lon + 180) / 360 * n),
            int((1 - np.log(np.tan(lat_r) + 1 / np.cos(lat_r)) / np.pi) / 2 * n))


def test_export_tiles_from_mbtiles_and_folder_keeps_only_the_study_area(tmp_path):
    bounds = (108.94, 34.25, 108.96, 34.27)  # about 2 km in Xi'an
    z = 14
    x0, y0 = _xyz(bounds[0], bounds[3], z)
    x1, y1 = _xyz(bounds[2], bounds[1], z)
    inside = {(z, x, y): _tile_png() for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)}
    far = {(z, x0 + 40, y0): _tile_png((255, 0, 0)), (z, x0, y0 + 40): _tile_png((255, 0, 0))}
    _mbtiles(tmp_path / "city.mbtiles", {**inside, **far})
    info = maps.export_tiles(tmp_path / "city.mbtiles", tmp_path / "out" / "tiles",
                             bounds=bounds, margin=0)
    files = sorted(p.relative_to(tmp_path / "out" / "tiles").as_posix()
                   for p in (tmp_path / "out" / "tiles").rglob("*.png"))
    # XYZ numbering (y down) on disk, from the TMS rows of the file; far tiles left out
    assert files == sorted(f"{z}/{x}/{y}.png" for (_, x, y) in inside)
    assert info == {"template": "tiles/{z}/{x}/{y}.png", "min_zoom": z, "max_zoom": z,
                    "n_tiles": len(inside)}
    # the same from a folder of tiles
    folder = tmp_path / "folder"
    for (zz, x, y), data in {**inside, **far}.items():
        (folder / str(zz) / str(x)).mkdir(parents=True, exist_ok=True)
        (folder / str(zz) / str(x) / f"{y}.png").write_bytes(data)
    info2 = maps.export_tiles(folder, tmp_path / "out2" / "tiles", bounds=bounds, margin=0)
    assert info2["n_tiles"] == len(inside)
    _mbtiles(tmp_path / "vector.mbtiles", inside, fmt="pbf")
    with pytest.raises(OutputError, match="vector tiles"):
        maps.export_tiles(tmp_path / "vector.mbtiles", tmp_path / "v", bounds=bounds)
    with pytest.raises(OutputError, match="no tile over the study area"):
        maps.export_tiles(tmp_path / "city.mbtiles", tmp_path / "w",
                          bounds=(116.3, 39.9, 116.4, 40.0))


def test_run_with_an_mbtiles_base_map_writes_tiles_beside_the_map(tmp_path):
    r = make_result(out_dir=tmp_path / "out")
    (tmp_path / "out").mkdir()
    b = maps.total_bounds(r.layers)
    z = 15
    x0, y0 = _xyz(b[0], b[3], z)
    x1, y1 = _xyz(b[2], b[1], z)
    _mbtiles(tmp_path / "base.mbtiles", {(z, x, y): _tile_png() for x in range(x0 - 2, x1 + 3)
                                         for y in range(y0 - 2, y1 + 3)})
    r.scenario.outputs.tiles = str(tmp_path / "base.mbtiles")
    assert ST.maps(r) is None
    page = (tmp_path / "out" / "map.html").read_text(encoding="utf-8")
    assert '"tiles/{z}/{x}/{y}.png"' in page and '"maxNativeZoom": 15' in page
    tiles = list((tmp_path / "out" / "tiles").rglob("*.png"))
    assert tiles and all(p in r.files for p in tiles)  # listed in run.json, so replaced later
