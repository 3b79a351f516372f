"""Reading and validating layers: formats, encodings, column names, tiers and bad input."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely

from planner import coords
from planner._errors import LayerError, PlannerWarning
from planner._kml import read_kml
from planner.layers import normalize_tier, read_layer
from planner.pipeline import RunResult
from planner.pipeline.settings import DemandSettings, LayerSettings, LayersSettings, Scenario
from planner.pipeline.steps import layers as run_step

UTM49 = "EPSG:32649"
X0, Y0 = 108.95, 34.26  # central Xi'an


def square(cx: float, cy: float, half: float = 0.001) -> shapely.Polygon:
    return shapely.box(cx - half, cy - half, cx + half, cy + half)


def communities(n: int = 3, *, short: bool = False) -> gpd.GeoDataFrame:
    """Communities; ``short`` column names fit a Shapefile's 10-byte field names."""
    return gpd.GeoDataFrame(
        {
            "名称" if short else "社区名称": [f"社区{i}" for i in range(n)],
            "人口" if short else "常住人口": [1000 * (i + 1) for i in range(n)],
            "pop_60plus" if short else "60岁及以上人口": [200 * (i + 1) for i in range(n)],
            "户数": [300 + i for i in range(n)],
            "备注": ["x"] * n,
        },
        geometry=[square(X0 + 0.01 * i, Y0) for i in range(n)],
        crs="EPSG:4326",
    )


# ----------------------------------------------------------------------------- KML
KML = """<?xml version="1.0" encoding="UTF-8"?>
<kml xmlns="http://www.opengis.net/kml/2.2"><Document><Folder>
 <Placemark><name>西关社区站</name>
  <ExtendedData><Data name="床位数"><value>12</value></Data>
   <SchemaData schemaUrl="#s"><SimpleData name="类型">社区养老服务站</SimpleData></SchemaData>
  </ExtendedData>
  <Point><coordinates>108.93,34.26,0</coordinates></Point></Placemark>
 <Placemark><description><![CDATA[{"fclass":"primary","Name":"长乐路","layer":0.0}]]></description>
  <LineString><coordinates>108.90,34.20,0 108.91,34.21,0
   108.92,34.21,0</coordinates></LineString></Placemark>
 <Placemark><name>区</name><description>plain text</description>
  <Polygon><outerBoundaryIs><LinearRing><coordinates>
   108.0,34.0 109.0,34.0 109.0,35.0 108.0,35.0 108.0,34.0</coordinates></LinearRing>
   </outerBoundaryIs>
   <innerBoundaryIs><LinearRing><coordinates>
   108.4,34.4 108.6,34.4 108.6,34.6 108.4,34.4</coordinates></LinearRing></innerBoundaryIs>
  </Polygon></Placemark>
 <Placemark><MultiGeometry>
   <LineString><coordinates>108.0,34.0 108.1,34.0</coordinates></LineString>
   <LineString><coordinates>108.2,34.0 108.3,34.0</coordinates></LineString>
 </MultiGeometry></Placemark>
</Folder></Document></kml>
"""


def test_read_kml_geometries_and_attributes(tmp_path):
    path = tmp_path / "a.kml"
    path.write_text(KML, encoding="utf-8")
    gdf = read_kml(path)
    assert gdf.crs.to_epsg() == 4326
    assert list(gdf.geom_type) == ["Point", "LineString", "Polygon", "MultiLineString"]
    assert gdf.geometry.iloc[0].coords[0] == (108.93, 34.26)
    assert shapely.get_coordinates(gdf.geometry.iloc[1]).tolist() == [
        [108.90, 34.20], [108.91, 34.21], [108.92, 34.21]]
    poly = gdf.geometry.iloc[2]
    assert poly.area == pytest.approx(1.0 - 0.02)  # 1 deg² minus a 0.02 deg² triangle hole
    assert gdf.geometry.iloc[3].length == pytest.approx(0.2)
    assert gdf.loc[0, "name"] == "西关社区站" and gdf.loc[0, "类型"] == "社区养老服务站"
    assert gdf.loc[1, "fclass"] == "primary" and gdf.loc[1, "Name"] == "长乐路"
    assert gdf.loc[2, "description"] == "plain text"
    assert gdf["床位数"].iloc[0] == 12.0 and pd.isna(gdf["床位数"].iloc[1])
    assert gdf["layer"].iloc[1] == 0.0


def test_read_kmz(tmp_path):
    import zipfile

    path = tmp_path / "a.kmz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("doc.kml", KML)
    assert len(read_kml(path)) == 4
    with zipfile.ZipFile(tmp_path / "b.kmz", "w") as zf:
        zf.writestr("readme.txt", "no kml")
    with pytest.raises(LayerError, match="holds no .kml file"):
        read_kml(tmp_path / "b.kmz")


def test_read_kml_numbers_are_converted(tmp_path):
    rows = "".join(
        f'<Placemark><description><![CDATA[{{"code":{c},"layer":{ly},"ref":"{r}"}}]]></description>'
        f"<Point><coordinates>108.9,34.{i}</coordinates></Point></Placemark>"
        for i, (c, ly, r) in enumerate([(5113.0, 0.0, "G1"), (5121.0, 1.0, "")])
    )
    path = tmp_path / "b.kml"
    path.write_text(f'<kml xmlns="http://www.opengis.net/kml/2.2"><Document>{rows}</Document></kml>',
                    encoding="utf-8")
    gdf = read_kml(path)
    assert gdf["code"].dtype == np.int64 and gdf["code"].tolist() == [5113, 5121]
    assert gdf["layer"].tolist() == [0, 1]
    assert gdf["ref"].tolist() == ["G1", ""]


def test_read_kml_bad_xml(tmp_path):
    path = tmp_path / "bad.kml"
    path.write_text("<kml><Document><Placemark></Document>", encoding="utf-8")
    with pytest.raises(LayerError, match="not well-formed XML"):
        read_kml(path)
    empty = tmp_path / "empty.kml"
    empty.write_text("<kml><Document/></kml>", encoding="utf-8")
    with pytest.raises(LayerError, match="no <Placemark>"):
        read_kml(empty)


def test_read_layer_kml_lines(tmp_path):
    path = tmp_path / "a.kml"
    path.write_text(KML, encoding="utf-8")
    with pytest.warns(PlannerWarning, match=r"'Name' \(also means `name`\) kept"):
        with pytest.raises(LayerError, match=r"wrong geometry type Point, Polygon in row 1 \(西关"):
            read_layer(path, kind="lines")


# ----------------------------------------------------------------------------- formats, columns
@pytest.mark.parametrize("suffix", [".gpkg", ".geojson", ".parquet", ".shp"])
def test_formats_canonical_columns_and_metric_crs(tmp_path, suffix):
    src = communities(short=suffix == ".shp")
    path = tmp_path / f"pop{suffix}"
    if suffix == ".parquet":
        src.to_parquet(path)
    else:
        src.to_file(path, engine="pyogrio")
    gdf = read_layer(path, kind="population")
    assert gdf.crs.to_epsg() == 32649
    assert list(gdf.columns[:2]) == ["id", "name"]
    assert gdf["id"].tolist() == [1, 2, 3]  # added, row numbers
    assert gdf["name"].tolist() == ["社区0", "社区1", "社区2"]
    assert gdf["population"].tolist() == [1000, 2000, 3000]
    assert gdf["pop_60plus"].tolist() == [200, 400, 600]
    assert gdf["households"].tolist() == [300, 301, 302]
    assert "备注" in gdf.columns  # unmapped columns kept
    expected = src.to_crs(UTM49).geometry.area.to_numpy()
    np.testing.assert_allclose(gdf.geometry.area.to_numpy(), expected, rtol=1e-9)
    assert gdf.attrs["kind"] == "population"


def test_target_crs_and_user_columns_override(tmp_path):
    src = communities()
    src["户籍人口"] = [2500, 3000, 3500]
    path = tmp_path / "pop.gpkg"
    src.to_file(path)
    with pytest.warns(PlannerWarning, match=r"'常住人口' \(also means `population`\)"):
        gdf = read_layer(path, kind="population", columns={"户籍人口": "population"},
                         target_crs="EPSG:3857")
    assert gdf.crs.to_epsg() == 3857
    assert gdf["population"].tolist() == [2500, 3000, 3500]
    assert gdf["常住人口"].tolist() == [1000, 2000, 3000]
    with pytest.raises(LayerError, match=r"'人口数' named in the scenario .* are not in the file"):
        read_layer(path, kind="population", columns={"人口数": "population"})
    with pytest.raises(LayerError, match="geographic"):
        read_layer(path, kind="population", target_crs="EPSG:4326")


def test_id_column(tmp_path):
    src = communities()
    src["社区代码"] = ["A", "B", "C"]
    path = tmp_path / "pop.gpkg"
    src.to_file(path)
    gdf = read_layer(path, kind="population", id_column="社区代码")
    assert gdf["id"].tolist() == ["A", "B", "C"]


def test_multilayer_gpkg_needs_layer(tmp_path):
    path = tmp_path / "two.gpkg"
    communities().to_file(path, layer="communities")
    communities(2).to_file(path, layer="other")
    with pytest.raises(LayerError, match=r"holds 2 layers \(communities, other\).*`layer:`"):
        read_layer(path, kind="population")
    assert len(read_layer(path, kind="population", layer="other")) == 2
    with pytest.raises(LayerError, match="'nope' is not in"):
        read_layer(path, kind="population", layer="nope")


# ----------------------------------------------------------------------------- encodings
def gbk_shapefile(tmp_path: Path) -> Path:
    path = tmp_path / "gbk" / "communities.shp"
    path.parent.mkdir()
    communities(short=True).to_file(path, engine="pyogrio", encoding="gbk")
    cpg = path.with_suffix(".cpg")
    assert cpg.read_text().strip().upper() == "GBK"
    cpg.unlink()  # a bureau shapefile: GBK text and no .cpg
    return path


def test_gbk_shapefile_without_cpg_is_detected(tmp_path):
    path = gbk_shapefile(tmp_path)
    raw = gpd.read_file(path)  # what a plain reader returns: mojibake
    assert "社区0" not in raw.iloc[:, 0].tolist()
    with pytest.warns(PlannerWarning, match=r"no \.cpg file .* read as GBK.*`encoding: gbk`"):
        gdf = read_layer(path, kind="population")
    assert gdf["name"].tolist() == ["社区0", "社区1", "社区2"]
    assert gdf["population"].tolist() == [1000, 2000, 3000]


def test_wrong_encoding_given_is_an_error(tmp_path):
    path = gbk_shapefile(tmp_path)
    with pytest.raises(LayerError, match=r"read with encoding 'latin-1' look garbled .*"
                                         r"`encoding: gbk`"):
        read_layer(path, kind="population", encoding="latin-1")


def test_gbk_shapefile_with_a_wrong_cpg(tmp_path):
    path = gbk_shapefile(tmp_path)
    path.with_suffix(".cpg").write_text("UTF-8")
    with pytest.warns(PlannerWarning, match=r"\.cpg file names the wrong encoding.*read as GBK"):
        gdf = read_layer(path, kind="population")
    assert gdf["name"].tolist() == ["社区0", "社区1", "社区2"]


def test_gbk_shapefile_with_encoding_given(tmp_path):
    path = gbk_shapefile(tmp_path)
    gdf = read_layer(path, kind="population", encoding="gbk")  # no warning
    assert gdf["name"].tolist() == ["社区0", "社区1", "社区2"]
    path.with_suffix(".cpg").write_text("GBK")
    assert read_layer(path, kind="population")["name"].iloc[1] == "社区1"


def test_garbled_text_cannot_be_fixed(tmp_path):
    src = communities(short=True)
    src["名称"] = ["锟斤拷社区", "b", "c"]
    path = tmp_path / "bad.shp"
    src.to_file(path, engine="pyogrio", encoding="utf-8")
    with pytest.raises(LayerError, match="already corrupted"):
        read_layer(path, kind="population")
    with pytest.raises(LayerError, match="unknown encoding 'nonsense'"):
        read_layer(path, kind="population", encoding="nonsense")


def test_gbk_csv_is_read_with_a_warning(tmp_path):
    path = tmp_path / "fac.csv"
    pd.DataFrame({"名称": ["甲养老院"], "类型": ["养老院"], "经度": [X0], "纬度": [Y0]}).to_csv(
        path, index=False, encoding="gbk")
    with pytest.warns(PlannerWarning, match="GB18030"):
        gdf = read_layer(path, kind="facilities")
    assert gdf["name"].tolist() == ["甲养老院"] and gdf["tier"].tolist() == ["district_home"]


# ----------------------------------------------------------------------------- tables
def test_excel_with_chinese_headers_in_gcj02(tmp_path):
    glon = np.array([108.9401, 108.9650, 108.9302])
    glat = np.array([34.2605, 34.2711, 34.2533])
    df = pd.DataFrame({
        "名称": ["西关街道综合养老服务中心", "北院门社区养老服务站", "莲湖区社会福利院"],
        "类型": ["综合养老服务中心", "社区养老服务站", "养老院"],
        "床位数": ["30", "1,234", 8],
        "经度": glon,
        "纬度": glat,
    })
    path = tmp_path / "facilities.xlsx"
    with pd.ExcelWriter(path) as xl:
        pd.DataFrame({"说明": ["封面"]}).to_excel(xl, sheet_name="封面", index=False)
        df.to_excel(xl, sheet_name="设施", index=False)
    gdf = read_layer(path, kind="facilities", coord_system="gcj02", sheet="设施")
    assert gdf["tier"].tolist() == ["township_centre", "community_station", "district_home"]
    assert gdf["beds"].tolist() == [30, 1234, 8]
    assert gdf["name"].iloc[0] == "西关街道综合养老服务中心"
    assert gdf.crs.to_epsg() == 32649
    wgs = gdf.to_crs(4326)
    elon, elat = coords.gcj02_to_wgs84(glon, glat)
    np.testing.assert_allclose(wgs.geometry.x, elon, atol=1e-7)
    np.testing.assert_allclose(wgs.geometry.y, elat, atol=1e-7)
    assert np.all(np.abs(wgs.geometry.x - glon) > 0.004)  # really moved (~430 m west)
    assert gdf["经度"].tolist() == glon.tolist()  # coordinate columns kept as in the file
    with pytest.raises(LayerError, match="no sheet named 'nope'; its sheets: '封面' .*'设施'"):
        read_layer(path, kind="facilities", sheet="nope")


def test_baidu_csv_with_semicolons(tmp_path):
    path = tmp_path / "baidu.csv"
    blon, blat = np.array([108.9565, 108.9712]), np.array([34.2664, 34.2702])
    pd.DataFrame({"机构名称": ["甲", "乙"], "机构类型": ["养老驿站", "敬老院"], "lng": blon,
                  "lat": blat}).to_csv(path, index=False, sep=";")
    gdf = read_layer(path, kind="facilities", coord_system="bd09", target_crs=UTM49)
    assert gdf["tier"].tolist() == ["community_station", "district_home"]
    wgs = gdf.to_crs(4326)
    elon, elat = coords.bd09_to_wgs84(blon, blat)
    np.testing.assert_allclose(wgs.geometry.x, elon, atol=1e-7)
    np.testing.assert_allclose(wgs.geometry.y, elat, atol=1e-7)


def test_population_points_and_candidate_polygons(tmp_path):
    pts = gpd.GeoDataFrame({"小区名称": ["甲小区"], "老年人口": ["1,200"]},
                           geometry=[shapely.Point(X0, Y0)], crs="EPSG:4326")
    pts.to_file(tmp_path / "p.geojson")
    pop = read_layer(tmp_path / "p.geojson", kind="population")
    assert pop["name"].tolist() == ["甲小区"] and pop["pop_60plus"].tolist() == [1200]
    cand = gpd.GeoDataFrame({"name": ["地块1", "地块2"], "tier": ["综合养老服务中心", None]},
                            geometry=[square(X0, Y0), shapely.Point(X0, Y0)], crs="EPSG:4326")
    cand.to_file(tmp_path / "c.gpkg")
    out = read_layer(tmp_path / "c.gpkg", kind="candidates")
    assert out.geom_type.tolist() == ["Polygon", "Point"]  # candidates keep their polygons
    assert out["tier"].iloc[0] == "township_centre" and out["tier"].iloc[1] is None


def test_swapped_lon_lat(tmp_path):
    path = tmp_path / "swapped.csv"
    pd.DataFrame({"名称": ["a", "b"], "类型": ["养老院"] * 2, "经度": [34.26, 34.27],
                  "纬度": [108.95, 108.96]}).to_csv(path, index=False)
    with pytest.raises(LayerError, match=r"longitude and latitude look swapped.*lon_column"):
        read_layer(path, kind="facilities")
    gdf = read_layer(path, kind="facilities", lon_column="纬度", lat_column="经度")
    assert gdf.to_crs(4326).geometry.x.tolist() == pytest.approx([108.95, 108.96])


def test_swapped_axes_in_a_geographic_layer(tmp_path):
    gdf = gpd.GeoDataFrame({"name": ["a"], "tier": ["养老院"]},
                           geometry=[shapely.Point(Y0, X0)], crs="EPSG:4326")
    path = tmp_path / "swapped.geojson"
    gdf.to_file(path)
    with pytest.raises(LayerError, match="look swapped"):
        read_layer(path, kind="facilities")


def test_table_coordinate_problems(tmp_path):
    path = tmp_path / "t.csv"
    pd.DataFrame({"名称": ["a", "b", "c"], "lng": [108.9, "abc", 108.8],
                  "lat": [34.2, 34.3, None]}).to_csv(path, index=False)
    with pytest.raises(LayerError, match=r"column `lng`: .*'abc' in row 2 \(b\)[^-]*"
                                         r"- column `lat`: .* row 3 \(c\)"):
        read_layer(path, kind="points")
    nocoords = tmp_path / "n.csv"
    pd.DataFrame({"名称": ["a"], "地址": ["西大街1号"]}).to_csv(nocoords, index=False)
    with pytest.raises(LayerError, match=r"no longitude/latitude columns.*名称, 地址"):
        read_layer(nocoords, kind="points")


def test_points_outside_china(tmp_path):
    path = tmp_path / "p.csv"
    pd.DataFrame({"name": ["西安", "Paris"], "tier": ["养老院"] * 2, "lon": [X0, 2.35],
                  "lat": [Y0, 48.85]}).to_csv(path, index=False)
    with pytest.raises(LayerError, match=r"1 point\(s\) outside China.*row 2 \(Paris\)"):
        read_layer(path, kind="facilities")


@pytest.mark.parametrize("suffix", [".csv", ".xlsx", ".gpkg", ".geojson", ".kml", ".shp"])
def test_empty_file_is_a_layer_error_naming_it(tmp_path, suffix):
    path = tmp_path / f"fac{suffix}"
    path.write_bytes(b"")
    with pytest.raises(LayerError, match=rf"Layer `fac` \({re.escape(str(path))}\): the file is "
                                         r"empty \(0 bytes\)"):
        read_layer(path, kind="facilities", name="fac")


# ----------------------------------------------------------------------------- CRS
def test_layer_without_crs(tmp_path):
    gdf = communities(short=True).to_crs(UTM49)
    path = tmp_path / "nocrs.shp"
    gdf.to_file(path, engine="pyogrio", encoding="utf-8")
    path.with_suffix(".prj").unlink()
    with pytest.raises(LayerError, match=r"has no CRS\. Set `crs:` .*EPSG:4326"):
        read_layer(path, kind="population")
    fixed = read_layer(path, kind="population", crs=UTM49)
    assert fixed.crs.to_epsg() == 32649
    np.testing.assert_allclose(fixed.total_bounds, gdf.total_bounds, atol=1e-6)


def test_gcj02_needs_degrees(tmp_path):
    path = tmp_path / "m.gpkg"
    communities().to_crs(UTM49).to_file(path)
    with pytest.raises(LayerError, match="coord_system is gcj02 but .* is projected"):
        read_layer(path, kind="population", coord_system="gcj02")


# ----------------------------------------------------------------------------- geometry
def test_bow_tie_polygon_is_repaired_with_a_warning(tmp_path):
    x, y = 500_000.0, 3_790_000.0
    bow = shapely.Polygon([(x, y), (x + 100, y + 100), (x + 100, y), (x, y + 100), (x, y)])
    assert not bow.is_valid
    gdf = gpd.GeoDataFrame({"name": ["好", "蝴蝶"], "population": [10, 20]},
                           geometry=[shapely.box(x, y - 300, x + 50, y - 250), bow], crs=UTM49)
    path = tmp_path / "bow.gpkg"
    gdf.to_file(path)
    with pytest.warns(PlannerWarning,
                      match=r"repaired 1 invalid geometry .*row 2 \(蝴蝶\) \[Self-int"):
        out = read_layer(path, kind="population")
    fixed = out.geometry.iloc[1]
    assert fixed.is_valid and fixed.geom_type == "MultiPolygon"
    assert fixed.area == pytest.approx(5000.0)  # two triangles of 100 x 50 / 2
    assert out.geometry.iloc[0].area == pytest.approx(2500.0)


def test_degenerate_polygon_cannot_be_repaired(tmp_path):
    x, y = 500_000.0, 3_790_000.0
    flat = shapely.Polygon([(x, y), (x + 10, y), (x + 20, y), (x, y)])
    gdf = gpd.GeoDataFrame({"name": ["线"]}, geometry=[flat], crs=UTM49)
    path = tmp_path / "flat.gpkg"
    gdf.to_file(path)
    with pytest.raises(LayerError, match=r"cannot be repaired without changing its type in row 1"):
        read_layer(path, kind="boundaries")


def test_polygon_facilities_become_points_inside_them(tmp_path):
    poly = square(X0, Y0)
    gdf = gpd.GeoDataFrame({"name": ["院"], "tier": ["养老院"]}, geometry=[poly], crs="EPSG:4326")
    path = tmp_path / "f.geojson"
    gdf.to_file(path)
    with pytest.warns(PlannerWarning, match="representative point"):
        out = read_layer(path, kind="facilities")
    assert out.geom_type.tolist() == ["Point"]
    assert gpd.GeoSeries([poly], crs=4326).to_crs(out.crs).iloc[0].contains(out.geometry.iloc[0])


def test_wrong_geometry_and_empty_geometry(tmp_path):
    lines = gpd.GeoDataFrame({"name": ["路"], "tier": ["养老院"]},
                             geometry=[shapely.LineString([(X0, Y0), (X0 + 0.01, Y0)])],
                             crs="EPSG:4326")
    path = tmp_path / "l.gpkg"
    lines.to_file(path)
    with pytest.raises(LayerError, match=r"wrong geometry type LineString in row 1 \(路\)"):
        read_layer(path, kind="facilities")
    pop = communities()
    pop.loc[1, "geometry"] = None
    ppath = tmp_path / "p.gpkg"
    pop.to_file(ppath)
    with pytest.raises(LayerError, match=r"empty or missing geometry in row 2 \(社区1\)"):
        read_layer(ppath, kind="population")
    with pytest.warns(PlannerWarning, match=r"dropped 1 row\(s\) with empty geometry: row 2"):
        ctx = read_layer(ppath, kind="context")
    assert ctx["name"].tolist() == ["社区0", "社区2"]


# ----------------------------------------------------------------------------- attributes
def test_duplicate_ids(tmp_path):
    pop = communities(4)
    pop["编号"] = ["C1", "C2", "C1", "C2"]
    path = tmp_path / "d.gpkg"
    pop.to_file(path)
    with pytest.raises(LayerError, match=r"duplicate ids: id 'C1' in row 1 \(社区0\), row 3 "
                                         r"\(社区2\); id 'C2' in row 2 \(社区1\), row 4"):
        read_layer(path, kind="population")


def test_negative_and_non_numeric_counts_reported_together(tmp_path):
    pop = communities(3)
    pop["常住人口"] = ["1,234", "-5", "约300"]
    pop["60岁及以上人口"] = [10, -1, 3]
    path = tmp_path / "c.gpkg"
    pop.to_file(path)
    with pytest.raises(LayerError) as info:
        read_layer(path, kind="population")
    msg = str(info.value)
    assert "column `population`: non-numeric value(s) '约300' in row 3 (社区2)" in msg
    assert "column `population`: negative value(s) -5 in row 2 (社区1)" in msg
    assert "column `pop_60plus`: negative value(s) -1 in row 2 (社区1)" in msg
    assert msg.count("\n  - ") == 3
    pop["常住人口"] = ["1,234", " 500 ", ""]
    pop["60岁及以上人口"] = [10, 1, 3]
    pop.to_file(path)
    out = read_layer(path, kind="population")
    assert out["population"].iloc[:2].tolist() == [1234.0, 500.0] and np.isnan(out["population"][2])


def test_unknown_tier(tmp_path):
    path = tmp_path / "f.csv"
    pd.DataFrame({"名称": ["a", "b", "c"], "类型": ["养老院", "老年食堂", "老年食堂"],
                  "经度": [X0] * 3, "纬度": [Y0] * 3}).to_csv(path, index=False)
    with pytest.raises(LayerError, match=r"unknown tier value\(s\) '老年食堂' in row 2 \(b\), "
                                         r"row 3 \(c\)\. Allowed: district_home"):
        read_layer(path, kind="facilities")
    out = read_layer(path, kind="facilities", tiers={"老年食堂": "other"})
    assert out["tier"].tolist() == ["district_home", "other", "other"]


def test_facilities_need_a_tier_column(tmp_path):
    path = tmp_path / "f.csv"
    pd.DataFrame({"名称": ["a"], "经度": [X0], "纬度": [Y0]}).to_csv(path, index=False)
    with pytest.raises(LayerError, match="no tier column"):
        read_layer(path, kind="facilities")


@pytest.mark.parametrize(("value", "tier"), [
    ("社区养老服务站", "community_station"),
    ("西关街道综合养老服务中心", "township_centre"),
    ("莲湖区社区日间照料中心", "community_station"),
    ("西安市社会福利院", "district_home"),
    ("某村农村互助幸福院", "rural_point"),
    ("Community Station", "community_station"),
    (" district nursing home ", "district_home"),
    ("Xiguan township centre", "township_centre"),
    ("老年大学", None),
    ("", None),
    (None, None),
])
def test_normalize_tier(value, tier):
    assert normalize_tier(value) == tier


def test_public_column(tmp_path):
    path = tmp_path / "f.csv"
    pd.DataFrame({"名称": ["a", "b"], "类型": ["养老院"] * 2, "是否公办": ["是", "民办"],
                  "经度": [X0] * 2, "纬度": [Y0] * 2}).to_csv(path, index=False)
    assert read_layer(path, kind="facilities")["public"].tolist() == [True, False]
    pd.DataFrame({"名称": ["a"], "类型": ["养老院"], "是否公办": ["也许"], "经度": [X0],
                  "纬度": [Y0]}).to_csv(path, index=False)
    with pytest.raises(LayerError, match=r"column `public`: value\(s\) \['也许'\] in row 1 \(a\)"):
        read_layer(path, kind="facilities")


# ----------------------------------------------------------------------------- run_step
def scenario(tmp_path: Path, **layers) -> Scenario:
    return Scenario(name="t", layers=LayersSettings(**layers), base_dir=tmp_path)


def test_run_step_loads_layers_in_one_crs(tmp_path):
    communities().to_file(tmp_path / "pop.gpkg")
    pd.DataFrame({"名称": ["院"], "类型": ["养老院"], "经度": [X0], "纬度": [Y0]}).to_csv(
        tmp_path / "fac.csv", index=False)
    sc = scenario(tmp_path, population=LayerSettings(path=Path("pop.gpkg")),
                  facilities=LayerSettings(path=Path("fac.csv"), coord_system="gcj02"))
    result = RunResult(scenario=sc)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert run_step(result) is None
    assert set(result.layers) == {"population", "facilities"}
    assert result.crs == pyproj.CRS.from_epsg(32649)
    assert all(g.crs.equals(result.crs) for g in result.layers.values())
    assert result.layers["facilities"]["tier"].tolist() == ["district_home"]


def test_run_step_passes_tier_mapping(tmp_path):
    communities().to_file(tmp_path / "pop.gpkg")
    pd.DataFrame({"名称": ["食堂"], "类型": ["老年食堂"], "经度": [X0], "纬度": [Y0]}).to_csv(
        tmp_path / "fac.csv", index=False)
    sc = scenario(tmp_path, population=LayerSettings(path=Path("pop.gpkg")),
                  facilities=LayerSettings(path=Path("fac.csv"), tiers={"老年食堂": "other"}))
    result = RunResult(scenario=sc)
    run_step(result)
    assert result.layers["facilities"]["tier"].tolist() == ["other"]
    sc.layers.facilities = LayerSettings(path=Path("fac.csv"))
    with pytest.raises(LayerError, match=r"(?s)Layer `facilities` .* unknown tier value"):
        run_step(RunResult(scenario=sc))


def test_run_step_fixed_crs_and_warnings_recorded(tmp_path):
    gbk_shapefile(tmp_path)
    sc = scenario(tmp_path, population=LayerSettings(path=Path("gbk/communities.shp")))
    sc.crs = "EPSG:4547"  # CGCS2000 / 3-degree Gauss-Kruger CM 114E
    result = RunResult(scenario=sc)
    with pytest.warns(PlannerWarning, match="read as GBK"):
        run_step(result)
    assert result.crs.to_epsg() == 4547
    assert result.layers["population"].crs.to_epsg() == 4547
    assert len(result.warnings) == 1 and "GBK" in result.warnings[0]


def test_run_step_needs_population(tmp_path):
    communities().to_file(tmp_path / "res.gpkg")
    sc = scenario(tmp_path, residential=LayerSettings(path=Path("res.gpkg")))
    with pytest.raises(LayerError, match=r"no population: add `layers: population:`.*`demand:`"):
        run_step(RunResult(scenario=sc))
    sc.demand = DemandSettings()
    result = RunResult(scenario=sc)
    assert run_step(result) is None and list(result.layers) == ["residential"]
    sc.crs = "EPSG:4326"
    with pytest.raises(LayerError, match="geographic"):
        run_step(RunResult(scenario=sc))


def test_run_step_errors_name_the_scenario_layer(tmp_path):
    path = tmp_path / "two.gpkg"
    communities().to_file(path, layer="communities")
    communities(2).to_file(path, layer="other")
    sc = scenario(tmp_path, population=LayerSettings(path=Path("two.gpkg"), layer="comunities"))
    with pytest.raises(LayerError, match=r"^Layer `population`: layer 'comunities' is not in "
                                         r".*two\.gpkg; did you mean `layer: communities`\?; "
                                         r"it holds: communities, other\."):
        run_step(RunResult(scenario=sc))
    sc.layers.population = LayerSettings(path=Path("two.gpkg"))
    with pytest.raises(LayerError, match=r"^Layer `population`: the file .* holds 2 layers"):
        run_step(RunResult(scenario=sc))
    sc.layers.population = LayerSettings(path=Path("two.gpkg"), layer="other",
                                         columns={"人口数": "population"})
    with pytest.raises(LayerError, match=r"^Layer `population` \(.*two\.gpkg\): column\(s\) "
                                         r"'人口数' named in the scenario"):
        run_step(RunResult(scenario=sc))
