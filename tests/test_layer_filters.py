"""`where:` filters on layers, and the column-name synonyms of population and township."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from planner import network as N
from planner._errors import LayerError
from planner._where import WhereError, where_mask
from planner.demand import read_census
from planner.layers import read_layer

X0, Y0 = 108.94, 34.26  # central Xi'an

TABLE = pd.DataFrame({
    "id": [1, 2, 3, 4, 5, 6],
    "landuse": ["residential", "retail", "residential", None, "Residential", "park"],
    "名称": ["西北大学", "小区A", "交大二村", "医院", "it's", None],
    "area": [10.0, 20.0, np.nan, 40.0, 50.0, 60.0],
})

#: filter -> ids kept (by hand, SQL semantics: an empty cell makes a comparison unknown)
CASES = {
    "landuse = 'residential'": [1, 3],
    "landuse == 'residential'": [1, 3],
    "landuse != 'residential'": [2, 5, 6],
    "landuse <> 'residential'": [2, 5, 6],
    "NOT landuse = 'residential'": [2, 5, 6],  # row 4 (empty) is unknown either way
    "landuse IS NULL": [4],
    "landuse is not null AND area > 15": [2, 5, 6],
    "area >= 20 AND area <= 40": [2, 4],
    "area BETWEEN 20 AND 40": [2, 4],
    "area NOT BETWEEN 20 AND 40": [1, 5, 6],
    "area < 15 OR landuse = 'park'": [1, 6],
    "(area < 15 OR landuse = 'park') AND id > 1": [6],
    "landuse IN ('retail', 'park')": [2, 6],
    "landuse NOT IN ('retail', 'park')": [1, 3, 5],
    "landuse LIKE 'res%'": [1, 3, 5],  # LIKE ignores the case of Latin letters
    "名称 LIKE '%大学%'": [1],
    '"名称" NOT LIKE \'%大学%\'': [2, 3, 4, 5],
    "名称 LIKE '小区_'": [2],
    "名称 = 'it''s'": [5],
    "NOT (landuse = 'residential' OR area > 45)": [2],
    "area IS NULL OR NOT area > 30": [1, 2, 3],
}


@pytest.mark.parametrize("where", list(CASES))
def test_where_mask_hand_cases(where):
    assert TABLE["id"][where_mask(TABLE, where)].tolist() == CASES[where]


def test_where_mask_agrees_with_sqlite_through_a_geopackage(tmp_path):
    # a second implementation: GDAL hands a GeoPackage's filter to SQLite
    gdf = gpd.GeoDataFrame(TABLE, geometry=shapely.points(np.arange(6), np.zeros(6)),
                           crs=4326)
    gdf.to_file(tmp_path / "t.gpkg", layer="t", driver="GPKG")
    for where, want in CASES.items():
        if "==" in where:  # SQLite's alias; OGR SQL has no ==
            continue
        got = gpd.read_file(tmp_path / "t.gpkg", where=where, engine="pyogrio")
        assert sorted(got["id"]) == want, where


@pytest.mark.parametrize("where, message", [
    ("landuse = ", "expected value"),
    ("nosuch = 'x'", "no column 'nosuch'"),
    ("landuse = 'a' extra", "unexpected 'extra'"),
    ("landuse 'a'", "expected op"),
    ("landuse = 'a", "cannot read"),
    ("", "empty"),
])
def test_where_mask_errors(where, message):
    with pytest.raises(WhereError, match=message):
        where_mask(TABLE, where)


def _points_csv(path):
    df = TABLE.assign(经度=X0 + 0.001 * np.arange(6), 纬度=Y0, 常住人口=100)
    df.drop(columns=["id"]).to_csv(path, index=False)


def test_read_layer_filters_tables_and_vector_files(tmp_path):
    _points_csv(tmp_path / "units.csv")
    got = read_layer(tmp_path / "units.csv", kind="population",
                     where="landuse = 'residential' AND 名称 NOT LIKE '%大学%'")
    assert got["name"].tolist() == ["交大二村"]
    gdf = gpd.GeoDataFrame(TABLE.drop(columns=["名称"]),
                           geometry=shapely.points(X0 + 0.001 * np.arange(6), np.full(6, Y0)),
                           crs=4326)
    gdf.to_file(tmp_path / "units.geojson", driver="GeoJSON")  # OGR SQL
    got = read_layer(tmp_path / "units.geojson", kind="points", where="landuse = 'residential'")
    assert got["id"].tolist() == [1, 3, 5]  # GDAL's own OGR SQL compares text ignoring case
    got = read_layer(tmp_path / "units.geojson", kind="points", where="area > 30")
    assert got["id"].tolist() == [4, 5, 6]


def test_bad_filters_name_the_layer_and_the_columns(tmp_path):
    _points_csv(tmp_path / "units.csv")
    with pytest.raises(LayerError, match=r"Layer `population` .*the filter `where: landus = "
                                         r"'residential'` cannot be applied.*no column "
                                         r"'landus'.*landuse"):
        read_layer(tmp_path / "units.csv", kind="population", name="population",
                   where="landus = 'residential'")
    gdf = gpd.GeoDataFrame(TABLE.drop(columns=["名称"]),
                           geometry=shapely.points(X0 + 0.001 * np.arange(6), np.full(6, Y0)),
                           crs=4326)
    gdf.to_file(tmp_path / "units.gpkg", driver="GPKG")
    with pytest.raises(LayerError, match=r"Layer `residential` .*`where: landuse = ` cannot be "
                                         r"applied.*\(id, landuse, area\)"):
        read_layer(tmp_path / "units.gpkg", kind="points", name="residential",
                   where="landuse = ")
    with pytest.raises(LayerError, match=r"no row satisfies `where: landuse = 'farm'`"):
        read_layer(tmp_path / "units.gpkg", kind="points", where="landuse = 'farm'")


def test_scenario_where_on_residential_and_network_layers(tmp_path):
    import planner

    utm = "EPSG:32649"
    x0, y0 = 315000.0, 3794000.0
    lines = [[(x0, y0 + i * 100), (x0 + 300, y0 + i * 100)] for i in range(4)]
    lines += [[(x0 + i * 100, y0), (x0 + i * 100, y0 + 300)] for i in range(4)]
    roads = gpd.GeoDataFrame({"fclass": ["residential"] * 7 + ["track"]},
                             geometry=[shapely.LineString(c) for c in lines], crs=utm)
    roads.to_file(tmp_path / "roads.gpkg", driver="GPKG")
    land = gpd.GeoDataFrame(
        {"landuse": ["residential", "commercial", "residential"], "name": ["a", "b", "c"]},
        geometry=[shapely.box(x0 + 10 + 100 * i, y0 + 10, x0 + 90 + 100 * i, y0 + 90)
                  for i in range(3)], crs=utm)
    land.to_file(tmp_path / "land.gpkg", driver="GPKG")
    pd.DataFrame({"名称": ["u"], "常住人口": [10], "经度": [108.94], "纬度": [34.26]}).to_csv(
        tmp_path / "pop.csv", index=False)
    (tmp_path / "s.yaml").write_text(
        "name: t\nlayers:\n  population: pop.csv\n"
        "  residential: {path: land.gpkg, where: \"landuse = 'residential'\"}\n"
        "network: {source: lines, path: roads.gpkg, where: \"fclass != 'track'\"}\n",
        encoding="utf-8")
    result = planner.run(planner.load_scenario(tmp_path / "s.yaml"),
                         steps=["layers", "network"])
    assert result.layers["residential"]["name"].tolist() == ["a", "c"]
    net = result.artifacts["network"]
    assert net.edge_length_m.sum() == pytest.approx(300 * 4 + 300 * 3)
    full = N.from_lines(tmp_path / "roads.gpkg")
    assert full.edge_length_m.sum() == pytest.approx(300 * 8)


# --------------------------------------------------------------------------- synonyms
@pytest.mark.parametrize("column", ["population_total", "常住人口", "总人口", "常住人口（人）",
                                    "Total_Population", "人口总数"])
def test_population_column_spellings(tmp_path, column):
    pd.DataFrame({"名称": ["a"], column: ["1,234"], "经度": [X0], "纬度": [Y0]}).to_csv(
        tmp_path / "p.csv", index=False)
    got = read_layer(tmp_path / "p.csv", kind="population")
    assert got["population"].tolist() == [1234]


@pytest.mark.parametrize("column", ["street", "Subdistrict", "sub_district", "街道", "街镇"])
def test_township_column_spellings(tmp_path, column):
    pd.DataFrame({"名称": ["a"], column: ["西关街道"], "常住人口": [10], "经度": [X0],
                  "纬度": [Y0]}).to_csv(tmp_path / "p.csv", index=False)
    got = read_layer(tmp_path / "p.csv", kind="population")
    assert got["township"].tolist() == ["西关街道"]


def test_street_stays_a_street_name_in_road_layers(tmp_path):
    g = gpd.GeoDataFrame({"fclass": ["residential"], "street": ["西大街"]},
                         geometry=[shapely.LineString([(X0, Y0), (X0 + 0.001, Y0)])], crs=4326)
    g.to_file(tmp_path / "r.geojson", driver="GeoJSON")
    got = read_layer(tmp_path / "r.geojson", kind="lines")
    assert "street" in got.columns and "township" not in got.columns


def test_census_table_of_totals_with_english_headers():
    t = read_census(pd.DataFrame({"subdistrict": ["A", "B"], "population_total": [100, 250]}))
    assert t["name"].tolist() == ["A", "B"] and t["population"].tolist() == [100, 250]
    t = read_census(pd.DataFrame({"街道": ["A"], "常住人口（人）": [300]}))
    assert t["population"].tolist() == [300]
    with pytest.raises(Exception, match="neither a total column"):
        read_census(pd.DataFrame({"街道": ["A"], "常住人口（万人）": [3]}))  # never read as persons
