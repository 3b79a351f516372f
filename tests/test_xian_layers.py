"""The real central Xi'an layers (../shared/data/xian): names, roads, and the GCJ-02 trap."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

from planner._kml import read_kml
from planner.layers import read_layer

pytestmark = pytest.mark.xian

CORE4 = {610102: "新城区", 610103: "碑林区", 610104: "莲湖区", 610113: "雁塔区"}
MAIN_ROADS = ["primary", "trunk", "secondary"]


@pytest.fixture(scope="module")
def residential(xian_dir):
    return read_layer(xian_dir / "xian_landuse_residential.gpkg", kind="residential")


@pytest.fixture(scope="module")
def roads(xian_dir):
    return read_layer(xian_dir / "xian_road.kml", kind="lines")


def districts(xian_dir, coord_system, crs):
    return read_layer(xian_dir / "xian_districts_datav_gcj02.json", kind="boundaries",
                      coord_system=coord_system, target_crs=crs)


def test_residential_keeps_chinese_names(residential):
    assert len(residential) == 614
    assert residential.crs.to_epsg() == 32649
    names = set(residential["name"].dropna())
    assert "三学街社区" in names
    assert residential["name"].notna().sum() == 520  # README: 520 named compounds
    assert residential.geometry.area.sum() / 1e6 == pytest.approx(16.2, abs=0.05)


def test_road_kml_loads(xian_dir, roads):
    raw = read_kml(xian_dir / "xian_road.kml")
    assert len(raw) == 5610 and raw.crs.to_epsg() == 4326
    assert {"fclass", "Name", "oneway", "maxspeed", "bridge", "tunnel", "layer"} <= set(raw.columns)
    assert (raw["Name"] != "").sum() == 1709  # README: lines with Chinese street names
    minx, miny, maxx, maxy = raw.total_bounds
    assert (round(minx, 3), round(miny, 3), round(maxx, 3), round(maxy, 3)) == (
        108.858, 34.175, 109.041, 34.339)
    assert raw["layer"].dtype.kind == "i"
    assert len(roads) == 5610 and roads.crs.to_epsg() == 32649
    assert "长乐中路" in set(roads["name"])
    assert set(roads.geom_type) == {"LineString"}


def test_gcj02_boundaries_fall_back_onto_the_roads(xian_dir, roads):
    """District borders along main roads coincide with them only after GCJ-02 → WGS-84."""
    main = roads[roads["fclass"].isin(MAIN_ROADS)]
    tree = shapely.STRtree(main.geometry.to_numpy())
    dist = {}
    for system in ("gcj02", "wgs84"):  # "wgs84" = read as-is, the trap
        d = districts(xian_dir, system, roads.crs)
        d = d[d["id"].isin(CORE4)].sort_values("id")
        xy = shapely.get_coordinates(d.geometry.to_numpy())
        _, dist[system] = tree.query_nearest(shapely.points(xy), return_distance=True,
                                             all_matches=False)
    along = dist["gcj02"] < 60  # boundary vertices that run along a main road once converted
    assert along.sum() >= 50
    assert np.median(dist["gcj02"][along]) < 10  # a few metres after conversion
    assert np.median(dist["wgs84"][along]) > 100  # ~hundreds of metres before
    assert np.median(dist["gcj02"]) < np.median(dist["wgs84"])


def test_residential_by_district_as_in_the_readme(xian_dir, residential):
    centroids = gpd.GeoDataFrame(geometry=residential.geometry.centroid, crs=residential.crs)
    counts = {}
    for system in ("gcj02", "wgs84"):
        d = districts(xian_dir, system, residential.crs)
        assert d.loc[d["id"].isin(CORE4), "name"].tolist() == list(CORE4.values())
        joined = gpd.sjoin(centroids, d[["name", "geometry"]], predicate="within")
        counts[system] = joined["name"].value_counts()
    assert counts["gcj02"]["莲湖区"] == 274
    assert counts["gcj02"]["碑林区"] == 63
    assert counts["gcj02"]["雁塔区"] == 50
    assert counts["gcj02"]["新城区"] == 34
    assert counts["wgs84"]["新城区"] == 14  # without the conversion
    outside = len(residential) - sum(counts["gcj02"][n] for n in CORE4.values())
    assert outside == 193


def test_context_layers(xian_dir):
    parks = read_layer(xian_dir / "xian_parks.gpkg", kind="context")
    water = read_layer(xian_dir / "xian_water.gpkg", kind="context")
    assert (len(parks), len(water)) == (92, 44)
    assert "小雁塔·西安博物院" in set(parks["name"].dropna())
