"""Data outside China: refused by default, accepted with `region: any` (WGS-84 only)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

import planner
from planner import coords
from planner import network as N
from planner._errors import LayerError, ScenarioError
from planner.layers import read_layer

#: A point in Nairobi, Kenya (UTM zone 37 south).
LON0, LAT0 = 36.8219, -1.2921
UTM = "EPSG:32737"


def _write_extract(folder):
    """A 5 x 5 street grid 100 m apart in Nairobi, two compounds and one facility."""
    lines = [[(0, i * 100.0), (400, i * 100.0)] for i in range(5)]
    lines += [[(i * 100.0, 0), (i * 100.0, 400)] for i in range(5)]
    x0, y0 = gpd.GeoSeries([shapely.Point(LON0, LAT0)], crs=4326).to_crs(UTM).iloc[0].coords[0]
    roads = gpd.GeoDataFrame(
        {"fclass": ["residential"] * len(lines)},
        geometry=[shapely.LineString([(x0 + x, y0 + y) for x, y in c]) for c in lines], crs=UTM)
    roads.to_crs(4326).to_file(folder / "roads.geojson", driver="GeoJSON")

    def lonlat(x, y):
        p = gpd.GeoSeries([shapely.Point(x0 + x, y0 + y)], crs=UTM).to_crs(4326).iloc[0]
        return p.x, p.y

    fx, fy = lonlat(0, 0)
    pd.DataFrame({"名称": ["Kibera home"], "类型": ["社区养老服务站"], "经度": [fx],
                  "纬度": [fy]}).to_csv(folder / "facilities.csv", index=False)
    rows = [("A", 300, 200), ("B", 400, 400)]  # on the grid: 500 m and 800 m from (0, 0)
    pd.DataFrame({"名称": [r[0] for r in rows], "常住人口": [100, 200],
                  "60岁及以上人口": [20, 40],
                  "经度": [lonlat(r[1], r[2])[0] for r in rows],
                  "纬度": [lonlat(r[1], r[2])[1] for r in rows]}).to_csv(
        folder / "population.csv", index=False)


def _scenario(folder, *, region=None, facilities_datum=None):
    text = ["name: nairobi test", "lang: en"]
    if region:
        text.append(f"region: {region}")
    fac = "facilities.csv" if facilities_datum is None else \
        f"{{path: facilities.csv, coord_system: {facilities_datum}}}"
    text += ["layers:", "  population: population.csv", f"  facilities: {fac}",
             "network:", "  source: lines", "  path: roads.geojson",
             "access:", "  service_areas: false"]
    path = folder / "scenario.yaml"
    path.write_text("\n".join(text) + "\n", encoding="utf-8")
    return path


def test_data_outside_china_is_refused_by_default_with_the_override_named(tmp_path):
    _write_extract(tmp_path)
    with pytest.raises(LayerError, match=r"outside China.*set `region: any`"):
        planner.run(_scenario(tmp_path), steps=["layers"])
    with pytest.raises(LayerError, match=r"outside China.*region='any'"):
        read_layer(tmp_path / "population.csv", kind="population")


def test_region_any_runs_on_data_elsewhere(tmp_path):
    _write_extract(tmp_path)
    result = planner.run(_scenario(tmp_path, region="any"),
                         steps=["layers", "network", "access"])
    assert result.crs.to_epsg() == 32737  # the local UTM zone, south
    net = result.artifacts["network"]
    assert (net.n_nodes, net.n_edges) == (21, 36)  # 5 x 5 grid, its 4 corners merged
    pa = result.layers["population_access"].set_index("name")
    np.testing.assert_allclose(pa.loc[["A", "B"], "time_min_any"], [500 / 60, 800 / 60],
                               atol=0.01)  # 1 m/s, metres to minutes
    lines = N.from_lines(tmp_path / "roads.geojson", region="any")
    assert lines.n_edges == 36
    with pytest.raises(LayerError, match="outside China"):
        N.from_lines(tmp_path / "roads.geojson")


def test_region_any_refuses_gcj02_and_bd09(tmp_path):
    _write_extract(tmp_path)
    with pytest.raises(ScenarioError, match=r"line 6: `layers.facilities.coord_system: gcj02` "
                                            r"is refused with `region: any`"):
        planner.load_scenario(_scenario(tmp_path, region="any", facilities_datum="gcj02"))
    with pytest.raises(LayerError, match="coord_system bd09 is refused with `region: any`"):
        read_layer(tmp_path / "facilities.csv", kind="facilities", coord_system="bd09",
                   region="any")
    with pytest.raises(LayerError, match="region='mars' is not known"):
        coords.check_region("mars", "wgs84")
    # a notebook-built scenario is stopped by the first step
    from planner.pipeline.settings import Scenario

    sc = Scenario(name="t", region="any", base_dir=tmp_path,
                  layers={"facilities": {"path": "facilities.csv", "coord_system": "gcj02"},
                          "population": "population.csv"})
    with pytest.raises(ScenarioError, match="refused with `region: any`"):
        planner.run(sc, steps=["layers"])


def test_region_any_still_catches_coordinates_that_are_not_lonlat(tmp_path):
    pd.DataFrame({"名称": ["x"], "类型": ["养老院"], "经度": [36.8], "纬度": [120.0]}).to_csv(
        tmp_path / "bad.csv", index=False)
    with pytest.raises(LayerError, match=r"not longitude/latitude.*latitude beyond ±90°"):
        read_layer(tmp_path / "bad.csv", kind="facilities", region="any")
