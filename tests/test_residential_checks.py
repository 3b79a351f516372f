"""Residential land before allocation: overlaps removed, campus-like polygons flagged."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import box

from planner import demand
from planner._errors import PlannerWarning

UTM = "EPSG:32649"
X0, Y0 = 300000.0, 3790000.0


def boxes(bounds, **cols):
    return gpd.GeoDataFrame(cols, geometry=[box(X0 + a, Y0 + b, X0 + c, Y0 + d)
                                            for a, b, c, d in bounds], crs=UTM)


def test_trim_overlaps_gives_shared_land_to_the_smaller_polygon():
    polys = boxes([(0, 0, 100, 100),  # a community outline over its compounds
                   (10, 10, 40, 40),  # compound a: 900 m²
                   (30, 10, 60, 40),  # compound b: same size, overlaps a by 10 x 30
                   (70, 70, 90, 90),  # compound c, 400 m² ...
                   (70, 70, 90, 90)])  # ... mapped twice
    geoms, areas = demand.trim_overlaps(polys.geometry)
    np.testing.assert_allclose(areas, [10000 - 900 - 600 - 400, 900, 600, 400, 0], atol=1e-6)
    union = shapely.union_all(polys.geometry.values)
    assert shapely.union_all(geoms).area == pytest.approx(union.area)
    assert areas.sum() == pytest.approx(union.area)  # nothing covered twice
    assert geoms[4].is_empty


def test_allocation_counts_nobody_twice_and_reports_the_overlap():
    areas = boxes([(0, 0, 100, 100)], name=["A区"])
    table = pd.DataFrame({"name": ["A区"], "population": [1000.0]})
    res = boxes([(0, 0, 100, 100), (0, 0, 50, 100)], id=["community", "compound"])
    with pytest.warns(PlannerWarning, match=r"areas sum to 0.01 km², 1.50 times the 0.01 km² "
                                            r"they cover.*1 polygon\(s\) trimmed"):
        est = demand.allocate(areas, table, res)
    assert est.set_index("id")["population"].to_dict() == pytest.approx(
        {"community": 500.0, "compound": 500.0})
    rep = est.attrs["demand_report"]
    assert rep["overlap_removed_m2"] == pytest.approx(5000.0)
    assert rep["residential_area_sum_m2"] == pytest.approx(15000.0)
    assert rep["residential_union_m2"] == pytest.approx(10000.0)
    # the old way, on request: the compound's residents are counted in both
    old = demand.allocate(areas, table, res, remove_overlaps=False)
    assert old.set_index("id")["population"].to_dict() == pytest.approx(
        {"community": 1000 * 2 / 3, "compound": 1000 / 3})


def test_trimmed_polygon_keeps_the_share_of_its_weight_its_land_keeps():
    areas = boxes([(0, 0, 100, 100)], name=["A区"])
    table = pd.DataFrame({"name": ["A区"], "population": [900.0]})
    res = boxes([(0, 0, 100, 100), (0, 0, 50, 100)], id=["big", "half"], dwellings=[200, 50])
    with pytest.warns(PlannerWarning, match="overlap"):
        est = demand.allocate(areas, table, res, weight="dwellings")
    # big keeps half its land, so half its 200 dwellings: 100 against 50
    assert est.set_index("id")["population"].to_dict() == pytest.approx(
        {"big": 600.0, "half": 300.0})


@pytest.mark.parametrize("name, flagged", [
    ("西安交通大学", True), ("陕西省人民医院", True), ("省体育场", True), ("运动场", True),
    ("西北大学桃园校区住宅区", False), ("西安交通大学医学院家属院", False),
    ("西安交通大学第二医院职工公寓", False), ("体育场小区", False), ("三学街社区", False),
    ("Riverside Campus", True), ("City Hospital staff quarters", False), ("Stadium", True),
    (None, False),
])
def test_campus_like_names(name, flagged):
    assert demand.campus_like(pd.DataFrame({"name": [name]})).tolist() == [flagged]


def test_campus_like_tags():
    df = pd.DataFrame({"amenity": ["university", None, "School"],
                       "leisure": [None, "pitch", None], "name": ["x", "y", "z"]})
    assert demand.campus_like(df).tolist() == [True, True, True]


def test_allocation_warns_when_much_of_an_area_lands_on_campus_like_polygons():
    areas = boxes([(0, 0, 100, 100), (100, 0, 200, 100)], name=["A区", "B区"])
    table = pd.DataFrame({"name": ["A区", "B区"], "population": [1000.0, 1000.0]})
    res = boxes([(0, 0, 60, 100), (60, 0, 100, 100), (100, 0, 195, 100), (195, 0, 200, 100)],
                name=["幸福小区", "西北大学", "东方花园", "区医院"])
    with pytest.warns(PlannerWarning, match=r"more than 10% of an area's residents .* campus, "
                                            r"hospital or sports ground .*: A区 40% \(西北大学\)\. "):
        est = demand.allocate(areas, table, res)
    assert est.attrs["demand_report"]["campus_share"] == pytest.approx({"A区": 0.4, "B区": 0.05})
    assert est["campus_like"].tolist() == [False, True, False, True]
    # B区's 5 % stays under the threshold; a lower threshold names it too
    with pytest.warns(PlannerWarning, match=r"A区 40% \(西北大学\); B区 5% \(区医院\)"):
        demand.allocate(areas, table, res, campus_share_warn=0.01)


# --------------------------------------------------------------------------- Xi'an
@pytest.fixture(scope="module")
def xian_residential(xian_dir):
    return gpd.read_file(xian_dir / "xian_landuse_residential.gpkg")


@pytest.mark.xian
def test_xian_overlaps_are_removed_exactly(xian_residential):
    geoms = shapely.make_valid(xian_residential.geometry.values)
    union = shapely.union_all(geoms).area
    trimmed, areas = demand.trim_overlaps(geoms)
    assert shapely.area(geoms).sum() > union * 1.001  # OSM polygons that overlap
    assert areas.sum() == pytest.approx(union, rel=1e-9)
    assert shapely.union_all(trimmed).area == pytest.approx(union, rel=1e-9)


@pytest.mark.xian
def test_xian_campus_like_is_the_sports_ground_not_the_staff_housing(xian_residential):
    flagged = demand.campus_like(xian_residential)
    assert xian_residential.loc[flagged, "name"].tolist() == ["运动场"]
    housing = xian_residential["name"].fillna("").str.contains("大学|学院|医院|中学")
    assert housing.sum() >= 10 and not (flagged & housing).any()
