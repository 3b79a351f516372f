"""Exchange with desktop GIS: QGIS styles in layers.gpkg, Shapefiles, output CRS, FileGDB and
CGCS2000 Gauss-Krüger inputs."""

from __future__ import annotations

import sqlite3
import xml.etree.ElementTree as ET

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
from shapely.geometry import Point, box
from test_maps import EVIL, make_result

from planner import gis, maps
from planner._errors import LayerError, OutputError
from planner.layers import read_layer
from planner.pipeline import steps as ST


def _styles(gpkg) -> dict[str, ET.Element]:
    con = sqlite3.connect(gpkg)
    rows = con.execute("SELECT f_table_name, f_geometry_column, styleQML, useAsDefault "
                       "FROM layer_styles").fetchall()
    kinds = dict(con.execute("SELECT table_name, data_type FROM gpkg_contents").fetchall())
    con.close()
    assert kinds["layer_styles"] == "attributes"  # registered: the GeoPackage stays valid
    assert all(default == 1 and geom == "geom" for _, geom, _, default in rows)
    return {name: ET.fromstring(qml.split("'SYSTEM'>", 1)[1]) for name, _, qml, _ in rows}


def _rgba(color: str, alpha: float) -> str:
    return ",".join(str(int(color[i:i + 2], 16)) for i in (1, 3, 5)) + f",{round(alpha * 255)}"


def test_layers_gpkg_carries_qgis_styles_with_the_web_map_symbols(tmp_path):
    r = make_result(out_dir=tmp_path)
    r.layers["township_norms"]["norm_status"] = ["pass", "fail"]  # as the norms step makes it
    assert ST.outputs(r) is None
    gpkg = tmp_path / "layers.gpkg"
    styles = _styles(gpkg)
    assert set(styles) == set(r.layers)  # one default style per layer
    # walking-time bands: the web map's colours, one rule per band, labels in Chinese
    qml = styles["population_access"]
    rules = qml.findall(".//rules/rule")
    assert [ru.get("label") for ru in rules] == ["≤ 5 分钟", "5–10 分钟", "10–15 分钟",
                                                 "> 15 分钟", "不可达"]
    assert rules[0].get("filter") == '"time_min_any" <= 5'
    colours = {s.get("name"): s.find(".//Option[@name='color']").get("value")
               for s in qml.findall(".//symbols/symbol")}
    for i, band in enumerate(("5", "10", "15", "over", "unreachable")):
        assert colours[str(i)] == _rgba(maps.BAND_COLORS[band], 0.8)
    # field aliases: the report's headers
    aliases = {a.get("field"): a.get("name") for a in qml.findall(".//aliases/alias")}
    assert aliases["pop_60plus"] == "60岁及以上人口"
    assert aliases["time_min_any"] == "至最近设施步行时间(分钟)"
    # facilities by tier with the tier colours; norm status by status
    fac = styles["facilities"].findall(".//rules/rule")
    assert [ru.get("filter") for ru in fac] == ['"tier" = \'district_home\'',
                                               '"tier" = \'township_centre\'',
                                               '"tier" = \'community_station\'']
    norms = [ru.get("label") for ru in styles["township_norms"].findall(".//rules/rule")]
    assert norms == ["达标", "未达标", "无法评估"]
    assert styles["blind_spots"].find(".//Option[@name='outline_style']").get("value") == "dash"
    # the layers themselves read back unchanged
    back = gpd.read_file(gpkg, layer="facilities")
    assert back["name"].tolist() == r.layers["facilities"]["name"].tolist()


def test_styles_follow_lang_and_can_be_switched_off(tmp_path):
    r = make_result(lang="en", out_dir=tmp_path)
    assert ST.outputs(r) is None
    qml = _styles(tmp_path / "layers.gpkg")["population_access"]
    assert qml.findall(".//rules/rule")[-1].get("label") == "Unreachable"
    out2 = tmp_path / "b"
    out2.mkdir()
    r2 = make_result(out_dir=out2)
    r2.scenario.outputs.gpkg_styles = False
    assert ST.outputs(r2) is None
    con = sqlite3.connect(out2 / "layers.gpkg")
    assert con.execute("SELECT count(*) FROM sqlite_master WHERE name='layer_styles'"
                       ).fetchone()[0] == 0


def test_add_layer_styles_names_missing_layers(tmp_path):
    r = make_result()
    path = tmp_path / "x.gpkg"
    r.layers["townships"].to_file(path, layer="townships", driver="GPKG")
    with pytest.raises(OutputError, match=r"no layer\(s\) \['nope'\]"):
        gis.add_layer_styles(path, {"nope": "<qgis/>"})
    assert gis.add_layer_styles(path, {"townships": "<qgis/>"}) == 1
    assert gis.add_layer_styles(path, {"townships": "<qgis/>"}) == 1  # replaced, not doubled
    con = sqlite3.connect(path)
    assert con.execute("SELECT count(*) FROM layer_styles").fetchone()[0] == 1


# --------------------------------------------------------------------------- Shapefiles
def test_shapefile_names_fit_ten_bytes_and_stay_unique():
    names = gis.shapefile_names(["pop_60plus_newly_covered", "pop_60plus_served", "time_min_any",
                                 "time_min_anything", "名称很长的中文字段", "a b"])
    assert all(len(v.encode("utf-8")) <= 10 for v in names.values())
    assert len({v.lower() for v in names.values()}) == len(names)
    assert names["time_min_any"] == "time_min_a" and names["time_min_anything"] == "time_min_1"
    assert names["名称很长的中文字段"] == "名称很" and names["a b"] == "a_b"


@pytest.mark.parametrize("encoding", ["utf-8", "gbk"])
def test_shapefile_export_for_arcgis(tmp_path, encoding):
    r = make_result(out_dir=tmp_path)
    r.scenario.outputs.shapefile = True
    r.scenario.outputs.shapefile_encoding = encoding
    assert ST.outputs(r) is None
    folder = tmp_path / "shapefile"
    assert (folder / "population_access.cpg").read_text() == (
        "UTF-8" if encoding == "utf-8" else "GBK")
    fields = pd.read_csv(folder / "population_access_fields.csv", encoding="utf-8-sig")
    assert (fields["field"].str.encode("utf-8").str.len() <= 10).all()
    short = dict(zip(fields["column"], fields["field"]))
    assert fields.set_index("column").loc["pop_60plus", "header"] == "60岁及以上人口"
    back = pyogrio.read_dataframe(folder / "population_access.shp")  # reads the .cpg
    src = r.layers["population_access"]
    assert back[short["name"]].tolist() == src["name"].tolist()  # Chinese (and EVIL) intact
    assert back[short["pop_60plus"]].tolist() == src["pop_60plus"].tolist()
    times = back[short["time_min_any"]].to_numpy(dtype=float)
    assert times[:3].tolist() == [3.0, 8.0, 20.0] and np.isnan(times[3])  # inf: no value
    assert back[short["within_15min"]].tolist() == [1, 1, 0, 0]
    raw = (folder / "population_access.dbf").read_bytes()
    assert "新城街道".encode(encoding) in raw  # the bytes are in the stated encoding
    assert back.crs.equals(src.crs)
    assert all(p in r.files for p in folder.iterdir())  # replaced by the next run


# --------------------------------------------------------------------------- output CRS
def test_output_crs_cgcs2000_and_its_gauss_kruger_zone(tmp_path):
    assert gis.cgcs2000_gk3(108.9) == 4545 and gis.cgcs2000_gk3(116.4) == 4548
    for value, epsg in (("cgcs2000", 4490), ("cgcs2000_gk3", 4545), ("EPSG:4547", 4547)):
        out = tmp_path / value.replace(":", "_")
        out.mkdir()
        r = make_result(out_dir=out)
        r.scenario.outputs.crs = value
        r.scenario.outputs.shapefile = True
        assert ST.outputs(r) is None
        back = gpd.read_file(out / "layers.gpkg", layer="facilities")
        assert back.crs.to_epsg() == epsg
        expect = r.layers["facilities"].to_crs(epsg)
        assert np.allclose(back.geometry.x, expect.geometry.x, atol=1e-7 if epsg == 4490 else 1e-3)
        shp = gpd.read_file(out / "shapefile" / "facilities.shp")
        assert shp.crs.to_epsg() == epsg
    with pytest.raises(OutputError, match="not known"):
        gis.output_crs("EPSG:999999")


# --------------------------------------------------------------------------- inputs
def _gdb(tmp_path):
    towns = gpd.GeoDataFrame({"名称": ["新城街道", "碑林街道"], "编号": ["T1", "T2"]},
                             geometry=[box(108.90, 34.25, 108.93, 34.28),
                                       box(108.93, 34.25, 108.96, 34.28)], crs=4490)
    fac = gpd.GeoDataFrame({"名称": ["城南养老院"], "类型": ["养老院"]},
                           geometry=[Point(108.92, 34.26)], crs=4490)
    path = tmp_path / "规划成果.gdb"
    towns.to_file(path, layer="jd_boundary", driver="OpenFileGDB", engine="pyogrio")
    fac.to_file(path, layer="yl_fac", driver="OpenFileGDB", engine="pyogrio")
    return path, towns


def test_file_geodatabase_layers_read_with_layer_and_checked(tmp_path):
    path, towns = _gdb(tmp_path)
    assert path.is_dir()  # a .gdb is a folder, read through GDAL's OpenFileGDB driver
    gdf = read_layer(path, kind="boundaries", layer="jd_boundary", target_crs="EPSG:32649")
    assert gdf["name"].tolist() == ["新城街道", "碑林街道"] and gdf.crs.to_epsg() == 32649
    assert np.allclose(gdf.to_crs(4490).total_bounds, towns.total_bounds)
    with pytest.raises(LayerError, match="holds 2 layers .*jd_boundary, yl_fac.*`layer:`"):
        read_layer(path, kind="boundaries")
    with pytest.raises(LayerError, match="did you mean `layer: yl_fac`"):
        read_layer(path, kind="facilities", layer="yl_fa")


def test_file_geodatabase_in_a_scenario_is_hashed_as_an_input(tmp_path):
    from planner.pipeline import load_scenario
    from planner.pipeline.outputs import hash_inputs

    path, _ = _gdb(tmp_path)
    yaml = tmp_path / "s.yaml"
    yaml.write_text(f"name: gdb\nlayers:\n  population: {{path: {path.name}, layer: jd_boundary}}\n"
                    f"  facilities: {{path: {path.name}, layer: yl_fac}}\n", encoding="utf-8")
    from planner.pipeline.result import RunResult

    sc = load_scenario(yaml)
    r = RunResult(scenario=sc)
    assert ST.layers(r) is None
    assert r.layers["facilities"]["tier"].tolist() == ["district_home"]
    rec = hash_inputs(sc, yaml)["layers.population.path"]
    assert rec["path"].endswith(".gdb") and len(rec["files"]) > 3  # every file of the folder


def test_cgcs2000_gauss_kruger_input_reads_like_any_crs(tmp_path):
    # what planning institutes deliver: CGCS2000 / 3-degree Gauss-Krüger CM 108E
    wgs = gpd.GeoDataFrame({"name": ["甲社区"], "population": [3000], "pop_60plus": [500]},
                           geometry=[box(108.94, 34.25, 108.95, 34.26)], crs=4326)
    gk = wgs.to_crs(4545)
    gk.to_file(tmp_path / "gk.gpkg", driver="GPKG")
    gdf = read_layer(tmp_path / "gk.gpkg", kind="population", target_crs="EPSG:32649")
    assert np.allclose(gdf.to_crs(4326).total_bounds, wgs.total_bounds, atol=1e-7)
    # the same metres labelled as degrees are caught by the location check
    wrong = gk.set_crs(4326, allow_override=True)
    wrong.to_file(tmp_path / "wrong.gpkg", driver="GPKG")
    with pytest.raises(LayerError, match="(?i)outside|coordinates"):
        read_layer(tmp_path / "wrong.gpkg", kind="population")


def test_evil_names_survive_the_shapefile(tmp_path):
    r = make_result()
    files = gis.write_shapefile(r.layers["facilities"], tmp_path, "fac")
    assert {p.suffix for p in files} >= {".shp", ".shx", ".dbf", ".prj", ".cpg", ".csv"}
    back = pyogrio.read_dataframe(tmp_path / "fac.shp")
    assert EVIL in back["name"].tolist()
