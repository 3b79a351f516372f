"""PostGIS: layers read from and results written to a real PostgreSQL + PostGIS server
(started by the `postgis_url` fixture; the tests skip, saying why, where none can be)."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely.geometry import box

from planner import postgis
from planner._errors import LayerError
from planner.layers import read_layer

CRS = "EPSG:32649"
X0, Y0 = 300_000.0, 3_800_000.0


def _towns() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"名称": ["新城街道", "碑林街道", "雁塔街道"], "人口": [30000, 25000, 41000],
         "share": [0.5, np.nan, np.inf], "ok": [True, False, True]},
        geometry=[box(X0 + 1000 * i, Y0, X0 + 1000 * (i + 1), Y0 + 1000) for i in range(3)],
        crs=CRS)


def test_write_and_read_back_a_layer(postgis_url):
    towns = _towns()
    assert postgis.write_postgis(towns, postgis_url, "test.towns") == 3
    back = postgis.read_postgis(postgis_url, table="test.towns")
    assert back.crs.to_epsg() == 32649
    assert back["名称"].tolist() == towns["名称"].tolist()
    assert back["人口"].tolist() == [30000, 25000, 41000]
    assert back["share"].iloc[0] == 0.5 and back["share"].iloc[1:].isna().all()  # NaN, inf: NULL
    assert back["ok"].tolist() == [True, False, True]
    assert shapely.equals_exact(back.geometry.values, towns.geometry.values, 1e-6).all()
    # replaced, not appended, on the next write
    postgis.write_postgis(towns.iloc[:1], postgis_url, "test.towns")
    assert len(postgis.read_postgis(postgis_url, table="test.towns")) == 1


def test_read_only_the_part_needed(postgis_url):
    towns = _towns()
    postgis.write_postgis(towns, postgis_url, "test.towns_all")
    # a lon/lat box over the first township only (shrunk inside it)
    first = towns.iloc[[0]].to_crs(4326).total_bounds
    pad = 0.2 * (first[2] - first[0])
    part = postgis.read_postgis(postgis_url, table="test.towns_all",
                                bbox=(first[0] + pad, first[1] + pad, first[2] - pad,
                                      first[3] - pad))
    assert part["名称"].tolist() == ["新城街道"]
    # an SQL query with its own spatial filter (what a province batch part would send)
    sql = (f"SELECT * FROM test.towns_all WHERE ST_Intersects(geom, "
           f"ST_MakeEnvelope({X0 + 1500}, {Y0}, {X0 + 3000}, {Y0 + 10}, 32649))")
    assert sorted(postgis.read_postgis(postgis_url, sql=sql)["名称"]) == ["碑林街道", "雁塔街道"]


def test_read_layer_from_postgis_is_checked_like_a_file(postgis_url):
    towns = _towns()
    towns["人口"] = [30000, -5, 41000]
    postgis.write_postgis(towns, postgis_url, "test.towns_bad")
    with pytest.raises(LayerError, match=r"-5.*row|row.*-5"):
        read_layer(postgis_url, kind="population", layer="test.towns_bad")
    postgis.write_postgis(_towns(), postgis_url, "test.towns_ok")
    gdf = read_layer(postgis_url, kind="population", layer="test.towns_ok",
                     target_crs="EPSG:4547")
    assert gdf["name"].tolist() == ["新城街道", "碑林街道", "雁塔街道"]  # synonyms applied
    assert gdf["population"].tolist() == [30000, 25000, 41000] and gdf.crs.to_epsg() == 4547
    with pytest.raises(LayerError, match='relation "test.nope" does not exist'):
        read_layer(postgis_url, kind="population", layer="test.nope")


def test_a_scenario_reads_postgis_and_writes_results_there(postgis_url, tmp_path):
    """The demo's population and facilities from PostGIS give the same walking times as from
    the files, and the results land in the database."""
    import warnings

    from planner import demo
    from planner._errors import PlannerWarning
    from planner.pipeline import load_scenario, run

    data = Path(demo.__file__).parent / "data"
    comm = gpd.read_file(data / "demo.gpkg", layer="communities")
    postgis.write_postgis(comm, postgis_url, "src.communities")
    base = (data / "demo.yaml").read_text(encoding="utf-8")
    file_yaml = tmp_path / "files.yaml"
    file_yaml.write_text(_scenario(data, "{path: demo.gpkg, layer: communities}"),
                         encoding="utf-8")
    pg = postgis_url.replace("planner@", "planner:secret@")
    db_yaml = tmp_path / "db.yaml"
    db_yaml.write_text(_scenario(data, f"{{path: '{pg}', layer: src.communities}}")
                       + f"outputs: {{postgis: '{pg}', postgis_schema: results, map: false,"
                         " report: false, excel: false, docx: false}\n", encoding="utf-8")
    assert "demo.gpkg" in base
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PlannerWarning)
        a = run(load_scenario(file_yaml), steps=["layers", "network", "access"])
        b = run(db_yaml, out_dir=tmp_path / "out", steps=["layers", "network", "access",
                                                          "outputs"])
    ta = a.layers["population_access"].set_index("id")["time_min_any"]
    tb = b.layers["population_access"].set_index("id")["time_min_any"]
    assert np.allclose(ta.sort_index(), tb.sort_index().astype(float), equal_nan=True)
    back = postgis.read_postgis(postgis_url, table="results.population_access")
    assert len(back) == len(tb) and back.crs == b.crs
    assert np.allclose(back.set_index("id")["time_min_any"].astype(float).sort_index(),
                       tb.sort_index(), equal_nan=True)
    assert _rows(postgis_url, "SELECT count(*) FROM results.coverage")[0][0] == len(
        b.tables["coverage"])  # tables too
    info = json.loads((tmp_path / "out" / "run.json").read_text(encoding="utf-8"))
    rec = info["inputs"]["layers.population.path"]
    assert rec["layer"] == "src.communities" and "secret" not in json.dumps(info)
    assert rec["database"].startswith("postgresql://planner:***@")


def _rows(url: str, sql: str) -> list:
    import psycopg

    with psycopg.connect(url) as con:
        return con.execute(sql).fetchall()


def _scenario(data, population: str) -> str:
    return (f"name: pg\nlang: zh\ncrs: EPSG:32649\nlayers:\n  population: {population}\n"
            f"  facilities: {{path: {data / 'demo_facilities.csv'}, coord_system: gcj02}}\n"
            f"network:\n  source: lines\n  path: {data / 'demo.gpkg'}\n  layer: roads\n"
            f"access:\n  thresholds_min: [5, 10, 15]\n  service_areas: false\n").replace(
        "path: demo.gpkg", f"path: {data / 'demo.gpkg'}")


def test_connection_errors_say_where_without_the_password():
    pytest.importorskip("psycopg", reason="psycopg is not installed (pip install .[postgis])")
    url = "postgresql://planner:secret@127.0.0.1:9/nowhere?connect_timeout=2"
    with pytest.raises(LayerError) as err:
        postgis.read_postgis(url, table="x")
    assert "cannot connect to postgresql://planner:***@127.0.0.1:9/nowhere" in str(err.value)
    assert "secret" not in str(err.value)
    assert postgis.redact("postgresql://u:p@h:5/db") == "postgresql://u:***@h:5/db"
    assert postgis.is_database_url("postgres://h/db") and not postgis.is_database_url("a.gpkg")
    with pytest.raises(LayerError, match="not both or neither"):
        postgis.read_postgis(url)
