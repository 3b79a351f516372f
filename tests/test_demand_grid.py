"""Demand from population grids and buildings: hand-known answers on generated rasters and
footprints (half a cell, another CRS, nodata, a building on a border, totals to the person),
the exact method against the naive cell-centroid one, and the demand step with them."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import pytest
import rasterio
from rasterio.transform import from_origin
from shapely.geometry import box

from planner import demand
from planner._errors import DemandError, PlannerWarning
from planner.pipeline import RunResult, steps
from planner.pipeline.settings import Scenario
from planner.report import assumption_rows

UTM = "EPSG:32649"
X0, Y0 = 500000.0, 3800000.0  # top-left corner of the test grids (UTM 49N)


def write_tif(path, bands, *, transform=None, crs=UTM, nodata=None, descriptions=None):
    """A GeoTIFF of ``bands`` (list of 2-D arrays, row 0 at the top)."""
    arr = np.asarray(bands, dtype="float32")
    transform = transform or from_origin(X0, Y0, 100.0, 100.0)
    with rasterio.open(path, "w", driver="GTiff", width=arr.shape[2], height=arr.shape[1],
                       count=arr.shape[0], dtype="float32", crs=crs, transform=transform,
                       nodata=nodata) as ds:
        ds.write(arr)
        for i, d in enumerate(descriptions or []):
            ds.set_band_description(i + 1, d)
    return path


def local(bounds, crs=UTM, **cols) -> gpd.GeoDataFrame:
    """Boxes given relative to the grid's top-left corner: (x0, y_down0, x1, y_down1) with y
    measured downwards from the top edge, so cell (r, c) is (100c, 100r, 100c+100, 100r+100)."""
    geoms = [box(X0 + a, Y0 - d, X0 + c, Y0 - b) for a, b, c, d in bounds]
    return gpd.GeoDataFrame(cols, geometry=geoms, crs=crs)


@pytest.fixture
def grid6(tmp_path):
    # 2 rows x 3 columns: population and pop_60plus, described
    pop = [[100, 200, 300], [400, 500, 600]]
    old = [[10, 20, 30], [40, 50, 60]]
    return demand.read_population_raster(write_tif(
        tmp_path / "g.tif", [pop, old], descriptions=["population", "60岁及以上人口"]))


# --------------------------------------------------------------------------- reading
def test_band_descriptions_name_the_groups(grid6):
    assert grid6.groups == ["population", "pop_60plus"]
    assert grid6.values["pop_60plus"][1, 2] == 60
    assert grid6.cell_size_m == pytest.approx(100.0)
    assert grid6.bounds == (X0, Y0 - 200, X0 + 300, Y0)
    assert "band 2 (pop_60plus)" in grid6.describe("pop_60plus")


def test_undescribed_bands_need_a_mapping(tmp_path):
    p = write_tif(tmp_path / "u.tif", [[[1, 2]], [[3, 4]]])
    with pytest.raises(DemandError, match=r"bands: \{population: 1, pop_60plus: 2\}"):
        demand.read_population_raster(p)
    r = demand.read_population_raster(p, bands={"pop_60plus": [1, 2]})
    assert r.values["pop_60plus"].tolist() == [[4.0, 6.0]]
    one = write_tif(tmp_path / "one.tif", [[[1, 2]]])
    with pytest.raises(DemandError, match="group: pop_60plus"):
        demand.read_population_raster(one)
    with pytest.raises(DemandError, match="not understood"):
        demand.read_population_raster(one, group="old_people")
    with pytest.raises(DemandError, match=r"bands \[3\] do not exist"):
        demand.read_population_raster(p, bands={"population": 3})


def test_files_per_group_are_summed_nodata_only_where_all_are(tmp_path):
    # WorldPop style: one file per sex and age, summed into a group
    m = write_tif(tmp_path / "m60.tif", [[[1, -99999], [-99999, 4]]], nodata=-99999)
    f = write_tif(tmp_path / "f60.tif", [[[10, 20], [-99999, 40]]], nodata=-99999)
    r = demand.read_population_raster({"pop_60plus": [m, f]})
    v = r.values["pop_60plus"]
    assert v[0, 0] == 11 and v[0, 1] == 20 and v[1, 1] == 44 and np.isnan(v[1, 0])
    other = write_tif(tmp_path / "o.tif", [[[1, 2], [3, 4]]],
                      transform=from_origin(X0 + 50, Y0, 100.0, 100.0))
    with pytest.raises(DemandError, match="not on one grid"):
        demand.read_population_raster({"pop_60plus": [m, other]})


def test_no_crs_needs_one_and_a_given_crs_replaces_the_files_with_a_warning(tmp_path):
    p = write_tif(tmp_path / "n.tif", [[[5.0]]], crs=None)
    with pytest.raises(DemandError, match="has no CRS"):
        demand.read_population_raster(p, group="population")
    r = demand.read_population_raster(p, group="population", crs=UTM)
    assert r.crs == pyproj.CRS(UTM)
    q = write_tif(tmp_path / "q.tif", [[[5.0]]], crs="EPSG:32650")
    with pytest.warns(PlannerWarning, match="replaced by the given crs"):
        demand.read_population_raster(q, group="population", crs=UTM)


def test_within_reads_only_the_window_and_sums_agree(tmp_path):
    rng = np.random.default_rng(1)
    vals = rng.integers(0, 50, size=(60, 80)).astype(float)
    p = write_tif(tmp_path / "big.tif", [vals])
    poly = local([(1234, 2210, 1777, 2890)])
    full = demand.read_population_raster(p, group="population")
    part = demand.read_population_raster(p, group="population", within=poly)
    assert part.shape[0] < 10 and part.shape[1] < 10
    assert demand.zonal_sums(part, poly)["population"].iloc[0] == pytest.approx(
        demand.zonal_sums(full, poly)["population"].iloc[0], abs=1e-9)
    far = local([(100000, 0, 100100, 100)])
    with pytest.raises(DemandError, match="does not cover the study area"):
        demand.read_population_raster(p, group="population", within=far)


# --------------------------------------------------------------------------- zonal sums
def test_polygon_covering_half_a_cell_gets_half(grid6):
    polys = local([(0, 0, 50, 100),      # left half of cell (0,0)
                   (100, 0, 130, 100),   # 30 % of cell (0,1)
                   (200, 50, 300, 150),  # lower half of (0,2) + upper half of (1,2)
                   (0, 0, 300, 200)])    # everything
    z = demand.zonal_sums(grid6, polys)
    assert z["population"].tolist() == pytest.approx([50.0, 60.0, 450.0, 2100.0])
    assert z["pop_60plus"].tolist() == pytest.approx([5.0, 6.0, 45.0, 210.0])
    assert z["cells"].tolist() == pytest.approx([0.5, 0.3, 1.0, 6.0])
    assert (z["nodata_cells"] == 0).all() and (z["outside_share"] == 0).all()
    meth = z.attrs["demand_columns"]["pop_60plus"]
    assert "exact" in meth["method"] and "exactextract" in meth["method"]


def test_raster_in_another_crs_lonlat_grid_and_utm_polygons(tmp_path):
    # a WorldPop-like grid in degrees: 0.001° cells; the polygon is the western half of
    # cell (0, 0) drawn in lon/lat, then given in UTM
    lon0, lat0 = 112.0, 34.7
    p = write_tif(tmp_path / "ll.tif", [[[100.0, 7.0], [3.0, 1.0]]], crs="EPSG:4326",
                  transform=from_origin(lon0, lat0, 0.001, 0.001))
    r = demand.read_population_raster(p, group="pop_60plus")
    half = gpd.GeoDataFrame(geometry=[box(lon0, lat0 - 0.001, lon0 + 0.0005, lat0)],
                            crs="EPSG:4326").to_crs(UTM)
    whole = gpd.GeoDataFrame(geometry=[box(lon0, lat0 - 0.002, lon0 + 0.002, lat0)],
                             crs="EPSG:4326").to_crs(UTM)
    z = demand.zonal_sums(r, pd.concat([half, whole], ignore_index=True))
    assert z["pop_60plus"].tolist() == pytest.approx([50.0, 111.0], abs=1e-3)
    # and the other way round: a UTM grid, a polygon in lon/lat
    q = write_tif(tmp_path / "utm.tif", [[[80.0, 20.0]]])
    ru = demand.read_population_raster(q, group="pop_60plus")
    poly = local([(0, 0, 50, 100)]).to_crs("EPSG:4326")
    assert demand.zonal_sums(ru, poly)["pop_60plus"].iloc[0] == pytest.approx(40.0, abs=1e-3)


def test_nodata_cells_count_nothing_and_are_reported(tmp_path):
    vals = [[10.0, -99999.0], [30.0, 40.0]]
    declared = write_tif(tmp_path / "d.tif", [vals], nodata=-99999)
    r = demand.read_population_raster(declared, group="population")
    z = demand.zonal_sums(r, local([(0, 0, 200, 200), (100, 0, 200, 100), (50, 0, 150, 100)]))
    assert z["population"].tolist() == pytest.approx([80.0, 0.0, 5.0])
    assert z["nodata_cells"].tolist() == pytest.approx([1.0, 1.0, 0.5])
    # a no-data value the file does not declare: stop, and say how to declare it
    plain = write_tif(tmp_path / "p.tif", [vals])
    with pytest.raises(DemandError, match=r"1 cell\(s\) are negative.*-99999.*nodata="):
        demand.read_population_raster(plain, group="population")
    r2 = demand.read_population_raster(plain, group="population", nodata=-99999)
    assert demand.zonal_sums(r2, local([(0, 0, 200, 200)]))["population"].iloc[0] == 80.0
    # NaN is no data too
    nan = write_tif(tmp_path / "nan.tif", [[[np.nan, 5.0]]])
    r3 = demand.read_population_raster(nan, group="population")
    z3 = demand.zonal_sums(r3, local([(0, 0, 200, 100)]))
    assert z3["population"].iloc[0] == 5.0 and z3["nodata_cells"].iloc[0] == 1.0


def test_polygon_beyond_the_grid_is_warned_with_its_share(grid6):
    with pytest.warns(PlannerWarning, match=r"1 polygon\(s\) reach beyond.*50 %"):
        z = demand.zonal_sums(grid6, local([(-100, 0, 100, 100)]))
    assert z["population"].iloc[0] == pytest.approx(100.0)
    assert z["outside_share"].iloc[0] == pytest.approx(0.5)


def test_exact_against_naive_cell_centroid_method(tmp_path):
    # 3 x 3 cells valued 1..9 (row 0 at the top); polygon [40, 240] x [40, 240] measured
    # from the bottom-left corner.  Column shares 0.6, 1, 0.4; row shares (top to bottom)
    # 0.4, 1, 0.6.  Exact: 0.4(0.6+2+1.2) + (2.4+5+2.4) + 0.6(4.2+8+3.6) = 20.8.
    # Cell centres at 50, 150, 250: the naive method takes rows 1-2 x columns 0-1 wholly:
    # 4 + 5 + 7 + 8 = 24, i.e. 3.2 persons (15 %) too many.
    p = write_tif(tmp_path / "n.tif", [np.arange(1, 10, dtype=float).reshape(3, 3)],
                  transform=from_origin(X0, Y0 + 300 - 300, 100.0, 100.0))
    r = demand.read_population_raster(p, group="pop_60plus")
    poly = gpd.GeoDataFrame(geometry=[box(X0 + 40, Y0 - 300 + 40, X0 + 240, Y0 - 300 + 240)],
                            crs=UTM)
    exact = demand.zonal_sums(r, poly)["pop_60plus"].iloc[0]
    naive = demand.zonal_sums(r, poly, method="centroid")["pop_60plus"].iloc[0]
    # exactextract keeps coverage fractions in single precision: relative error ~1e-8
    assert exact == pytest.approx(20.8, rel=1e-7)
    assert naive == 24.0
    assert naive - exact == pytest.approx(3.2, rel=1e-6)


def test_exact_sums_over_a_partition_add_up_and_centroid_misplaces(tmp_path):
    # a generated 20 x 20 grid cut into 7 vertical strips at off-grid x positions: exact sums
    # add up to the grid's total and equal the hand sum of column shares; the centroid
    # method gives each strip whole columns instead
    rng = np.random.default_rng(4)
    vals = rng.integers(0, 100, size=(20, 20)).astype(float)
    r = demand.read_population_raster(write_tif(tmp_path / "g.tif", [vals]), group="population")
    cuts = np.array([0, 230, 570, 810, 1130, 1490, 1720, 2000], dtype=float)  # off centres
    strips = local([(a, 0, b, 2000) for a, b in zip(cuts[:-1], cuts[1:])])
    exact = demand.zonal_sums(r, strips)["population"].to_numpy()
    naive = demand.zonal_sums(r, strips, method="centroid")["population"].to_numpy()
    col = vals.sum(axis=0)
    edges = np.arange(21) * 100.0
    share = np.clip(np.minimum(cuts[1:, None], edges[None, 1:])
                    - np.maximum(cuts[:-1, None], edges[None, :-1]), 0, None) / 100.0
    assert exact == pytest.approx(share @ col, rel=1e-7)
    assert exact.sum() == pytest.approx(vals.sum(), rel=1e-7)
    centres = edges[:-1] + 50
    whole = np.array([col[(centres > a) & (centres < b)].sum()
                      for a, b in zip(cuts[:-1], cuts[1:])])
    assert naive == pytest.approx(whole)
    assert np.abs(naive - exact).max() > 10  # misplaced by whole half-columns


# --------------------------------------------------------------------------- census over cells
@pytest.fixture
def two_areas_over_grid6():
    # A = x [0, 150], B = x [150, 300], both over the two rows: cells of column 1 are split
    return local([(0, 0, 150, 200), (150, 0, 300, 200)], name=["A区", "B区"])


def test_allocate_to_grid_splits_border_cells_and_keeps_totals(tmp_path, two_areas_over_grid6):
    old = [[10, 20, 30], [0, 40, 0]]
    r = demand.read_population_raster(write_tif(tmp_path / "o.tif", [old]), group="pop_60plus")
    table = pd.DataFrame({"name": ["A区", "B区"], "population": [400, 100],
                          "pop_60plus": [80, 30]})
    out = demand.allocate_to_grid(two_areas_over_grid6, table, r)
    got = out.set_index("id")
    # A's weights: (0,0) 10, half of (0,1) 10, half of (1,1) 20 -> 80 shared 20/20/40
    assert got.loc["G0_0", "pop_60plus"] == pytest.approx(20.0)
    assert got.loc["G0_1-A区", "pop_60plus"] == pytest.approx(20.0)
    assert got.loc["G1_1-A区", "pop_60plus"] == pytest.approx(40.0)
    # B's weights: half of (0,1) 10, (0,2) 30, half of (1,1) 20 -> 30 shared 5/15/10
    assert got.loc["G0_2", "pop_60plus"] == pytest.approx(15.0)
    assert got.loc["G1_1-B区", "pop_60plus"] == pytest.approx(10.0)
    assert "G1_0" not in got.index  # a cell without people is no point
    assert out.groupby("area")[["population_int", "pop_60plus_int"]].sum().to_dict() == {
        "population_int": {"A区": 400, "B区": 100}, "pop_60plus_int": {"A区": 80, "B区": 30}}
    assert (out["pop_60plus_int"] <= out["population_int"]).all()
    assert got.loc["G0_0"].geometry.equals_exact(box(X0, Y0 - 100, X0 + 100, Y0).centroid, 1e-6)
    # 200 m blocks: 2 x 2 cells -> A one point at its weighted centre, B two points
    blocks = demand.allocate_to_grid(two_areas_over_grid6, table, r, cell_m=200)
    assert sorted(blocks["id"]) == ["G0_0-A区", "G0_0-B区", "G0_1"]
    a = blocks.set_index("id").loc["G0_0-A区"]
    # centres: (0,0) (50, -50), (0,1) (150, -50), (1,1) (150, -150), weights 10, 10, 20
    assert (a.geometry.x - X0, Y0 - a.geometry.y) == pytest.approx((125.0, 100.0))
    assert a["pop_60plus_int"] == 80 and a["cells"] == 3
    meth = out.attrs["demand_columns"]["pop_60plus_int"]["method"]
    assert "grid cells" in meth and "largest remainder" in meth


def test_allocate_to_grid_area_without_people_gets_a_point(tmp_path):
    r = demand.read_population_raster(write_tif(tmp_path / "z.tif", [[[5.0, 0.0]]]),
                                      group="population")
    areas = local([(0, 0, 100, 100), (100, 0, 200, 100)], name=["甲", "乙"])
    table = pd.DataFrame({"name": ["甲", "乙"], "population": [7, 9]})
    with pytest.warns(PlannerWarning, match=r"1 area\(s\) have no people.*\['乙'\]"):
        out = demand.allocate_to_grid(areas, table, r)
    assert out.set_index("area")["population_int"].to_dict() == {"甲": 7, "乙": 9}
    assert out.set_index("area").loc["乙", "placement"] == "area_point"


def test_grid_points_leave_out_what_units_cover(tmp_path):
    r = demand.read_population_raster(write_tif(tmp_path / "g.tif", [[[100.0, 50.0, 0.0]]]),
                                      group="pop_60plus")
    unit = local([(0, 0, 40, 100)])  # 40 % of the first cell
    pts = demand.grid_points(r, exclude=unit)
    assert pts.set_index("id")["pop_60plus"].to_dict() == pytest.approx(
        {"G0_0": 60.0, "G0_1": 50.0})
    one = demand.grid_points(r, exclude=unit, cell_m=200)
    assert one["pop_60plus"].tolist() == pytest.approx([110.0])
    # per area: the point carries the area's name
    areas = local([(0, 0, 150, 100)], name=["甲"])
    inside = demand.grid_points(r, areas=areas)
    assert inside.set_index("id")["pop_60plus"].to_dict() == pytest.approx(
        {"G0_0": 100.0, "G0_1": 25.0})
    assert set(inside["area"]) == {"甲"}


# --------------------------------------------------------------------------- buildings
@pytest.fixture
def areas_ab():
    return local([(0, 0, 100, 100), (100, 0, 200, 100)], name=["A区", "B区"])


@pytest.fixture
def footprints():
    return local(
        [(80, 10, 120, 20),    # b1 400 m², 3 floors, across the border: 600 m² each side
         (10, 50, 30, 80),     # b2 600 m², height 9.1 m -> 3 floors, 1800 m², in A
         (150, 50, 160, 60),   # b3 100 m², nothing known -> 1 floor, in B
         (300, 300, 310, 310),  # b4 outside both areas
         (20, 20, 40, 40)],    # b5 a shop: not residential
        id=["b1", "b2", "b3", "b4", "b5"], floors=[3, None, None, 5, 2],
        height=[None, 9.1, None, None, None], function=["住宅", "住宅", "住宅", "住宅", "商业"])


def test_floor_area_from_floors_height_or_default(footprints):
    with pytest.warns(PlannerWarning, match=r"1 residential building\(s\) have neither"):
        res = demand.residential_buildings(footprints, function_column="function")
    got = res.set_index("id")
    assert list(got.index) == ["b1", "b2", "b3", "b4"]  # the shop is dropped
    assert got["floor_area_m2"].to_dict() == pytest.approx(
        {"b1": 1200.0, "b2": 1800.0, "b3": 100.0, "b4": 500.0})
    assert got["floors_from"].tolist() == ["floors", "height", "default", "floors"]
    rep = res.attrs["buildings_report"]
    assert rep["n_not_residential"] == 1 and rep["n_from_height"] == 1
    assert "round(height / 3 m storey)" in res.attrs["method"]
    # a storey height of 2.8 m gives 9.1 / 2.8 = 3.25 -> 3 floors too; 4.5 m gives 2
    assert demand.residential_buildings(
        footprints.iloc[[1]], storey_height_m=4.5)["floors_used"].iloc[0] == 2.0
    with pytest.raises(DemandError, match=r"column 'floors': 1 value\(s\) negative"):
        demand.residential_buildings(footprints.assign(floors=[3, -1, 2, 2, 2]))


def test_building_straddling_two_areas_is_split_and_outside_ones_reported(areas_ab,
                                                                          footprints):
    with pytest.warns(PlannerWarning):
        res = demand.residential_buildings(footprints, function_column="function")
    table = pd.DataFrame({"name": ["A区", "B区"], "population": [120, 70],
                          "pop_60plus": [24, 14]})
    with pytest.warns(PlannerWarning, match=r"1 residential building\(s\) lie wholly outside"):
        out = demand.allocate_to_buildings(areas_ab, table, res)
    got = out.set_index("id")
    # A: b1's half 600 + b2 1800 -> 1:3;  B: b1's half 600 + b3 100 -> 6:1
    assert got["population"].to_dict() == pytest.approx(
        {"b1-A区": 30.0, "b2": 90.0, "b1-B区": 60.0, "b3": 10.0})
    assert got["pop_60plus_int"].to_dict() == {"b1-A区": 6, "b2": 18, "b1-B区": 12, "b3": 2}
    assert got.loc["b1-A区", "footprint_m2"] == pytest.approx(200.0)
    assert got.loc["b1-B区", "split"] and not got.loc["b2", "split"]
    rep = out.attrs["demand_report"]
    assert rep["n_outside"] == 1 and rep["n_split"] == 1 and rep["outside_weight"] == 500.0
    # the same answer as the overlay-based dasymetric allocation (an independent method)
    peer = demand.allocate(areas_ab, table, res, weight="floor_area_m2").set_index("id")
    assert peer["population"].to_dict() == pytest.approx(got["population"].to_dict())


def test_building_totals_preserved_to_the_person_and_groups_nested():
    rng = np.random.default_rng(7)
    areas = local([(0, 0, 1000, 1000), (1000, 0, 2000, 1000), (0, 1000, 2000, 1700)],
                  name=["甲", "乙", "丙"])
    x, y = rng.uniform(0, 1950, 600), rng.uniform(0, 1670, 600)
    bl = local([(a, b, a + rng.uniform(8, 40), b + rng.uniform(8, 20)) for a, b in zip(x, y)],
               id=[f"b{i}" for i in range(600)], floors=rng.integers(1, 33, 600))
    res = demand.residential_buildings(bl)
    pop = np.array([37_113, 20_011, 58_889])
    table = pd.DataFrame({"name": ["甲", "乙", "丙"], "population": pop,
                          "pop_60plus": [7_001, 3_334, 12_999],
                          "pop_65plus": [4_512, 2_222, 8_888], "pop_80plus": [901, 444, 1_777],
                          "households": [13_000, 7_001, 20_203]})
    out = demand.allocate_to_buildings(areas, table, res)
    assert out["split"].any()  # some buildings straddle a border
    sums = out.groupby("area")[[f"{c}_int" for c in demand.SPREAD_COLUMNS]].sum()
    for c in demand.SPREAD_COLUMNS:
        assert sums[f"{c}_int"].to_dict() == table.set_index("name")[c].to_dict()
    assert (out["pop_80plus_int"] <= out["pop_65plus_int"]).all()
    assert (out["pop_65plus_int"] <= out["pop_60plus_int"]).all()
    assert (out["pop_60plus_int"] <= out["population_int"]).all()
    assert np.abs(out["pop_60plus_int"] - out["pop_60plus"]).max() < 2


# --------------------------------------------------------------------------- sources side by side
def test_demand_by_unit_puts_sources_side_by_side(tmp_path, two_areas_over_grid6, areas_ab):
    old = [[10, 20, 30], [0, 40, 0]]
    r = demand.read_population_raster(write_tif(tmp_path / "o.tif", [old]), group="pop_60plus")
    table = pd.DataFrame({"name": ["A区", "B区"], "population": [400, 100],
                          "pop_60plus": [80, 30]})
    units = local([(0, 0, 150, 200), (150, 100, 300, 200)], id=["u1", "u2"],
                  name=["一", "二"], pop_60plus=[77, 9])
    bl = demand.residential_buildings(local([(10, 10, 50, 50), (160, 110, 180, 130),
                                             (200, 10, 220, 30)], floors=[2, 1, 3]))
    out = demand.demand_by_unit(units, raster=r, areas=two_areas_over_grid6, table=table,
                                buildings=bl, groups=["pop_60plus"]).set_index("id")
    assert out["pop_60plus"].tolist() == [77, 9]
    # grid: u1 = A (10 + 10 + 20); u2 = lower right: half of (1,1) 20 + (1,2) 0
    assert out["pop_60plus_grid"].tolist() == pytest.approx([40.0, 20.0])
    # census by grid: u1 all of A (80); u2 holds 20 of B's 60 weight -> 30 x 1/3
    assert out["pop_60plus_census_grid"].tolist() == pytest.approx([80.0, 10.0])
    # census by buildings: B's floor area 400 (u2) + 1200 -> u2 gets 30 x 1/4
    assert out["pop_60plus_census_buildings"].tolist() == pytest.approx([80.0, 7.5])
    assert "spread by band 1 (pop_60plus) of o.tif" in \
        out.attrs["demand_columns"]["pop_60plus_census_grid"]["method"]


# --------------------------------------------------------------------------- the demand step
def _result(tmp_path, **demand_settings) -> RunResult:
    scen = Scenario(name="t", layers={}, demand=demand_settings)
    scen = scen.model_copy(update={"base_dir": tmp_path})
    return RunResult(scenario=scen, crs=UTM)


def _census(tmp_path) -> str:
    """A: 400 residents, 80 aged 60+, 52 65+, 12 80+; B: 100, 30, 20, 4 (canonical bands)."""
    rows = []
    for name, (p, p60, p65, p80) in {"A区": (400, 80, 52, 12), "B区": (100, 30, 20, 4)}.items():
        row = dict.fromkeys(demand.BAND_COLUMNS, 0)
        row.update(name=name, m_30_34=p - p60, f_60_64=p60 - p65, m_70_74=p65 - p80,
                   f_85plus=p80)
        rows.append(row)
    pd.DataFrame(rows)[["name", *demand.BAND_COLUMNS]].to_csv(tmp_path / "c.csv", index=False)
    return "c.csv"


def test_step_spreads_census_over_grid_cells(tmp_path, two_areas_over_grid6):
    write_tif(tmp_path / "g.tif", [[[10, 20, 30], [0, 40, 0]]], descriptions=["pop_60plus"])
    res = _result(tmp_path, census=_census(tmp_path), grid={"path": "g.tif", "cell_m": 100},
                  spread_by="grid", plan_years=[], method="life_table")
    res.layers.update(districts=two_areas_over_grid6)
    assert steps.demand(res) is None
    pop = res.layers["population"]
    assert pop.groupby("district")["pop_60plus"].sum().to_dict() == {"A区": 80, "B区": 30}
    assert pop.groupby("district")["population"].sum().to_dict() == {"A区": 400, "B区": 100}
    assert (pop.geom_type == "Point").all() and len(pop) == 6
    assert pop["name"].str.contains("格网").all()
    cols = res.tables["demand_columns"].set_index("column")
    assert "grid cells" in cols.loc["pop_60plus", "method"]
    rows = dict(assumption_rows(lang="en", demand_columns=res.tables["demand_columns"]))
    assert "population.pop_60plus (census totals per area spread over grid cells" in rows["⚠"]


def test_step_spreads_census_over_buildings(tmp_path, areas_ab, footprints):
    footprints.to_file(tmp_path / "b.gpkg", layer="buildings", engine="pyogrio")
    res = _result(tmp_path, census=_census(tmp_path), spread_by="buildings",
                  buildings={"path": "b.gpkg", "function_column": "function"},
                  plan_years=[], method="life_table")
    res.layers.update(districts=areas_ab)
    with pytest.warns(PlannerWarning) as caught:
        assert steps.demand(res) is None
    assert any("lie wholly outside every census area" in str(w.message) for w in caught)
    pop = res.layers["population"].set_index("id")
    # A 1:3 (every part divides evenly); B 6:1 by parts: under 60 70 -> 60/10, 60-64 10 ->
    # 9/1, 65-79 16 -> 14/2, 80+ 4 -> 3/1 (largest remainders), so 86 and 14
    assert pop["population"].to_dict() == {"b1-A区": 100, "b2": 300, "b1-B区": 86, "b3": 14}
    assert pop["pop_80plus"].to_dict() == {"b1-A区": 3, "b2": 9, "b1-B区": 3, "b3": 1}
    assert pop.loc["b2", "floor_area_m2"] == pytest.approx(1800.0)
    meth = res.tables["demand_columns"].set_index("column").loc["pop_60plus", "method"]
    assert "residential buildings by floor_area_m2" in meth and "storey" in meth


def test_step_grid_without_census_makes_points_of_its_own_counts(tmp_path, areas_ab):
    write_tif(tmp_path / "g.tif", [[[10.0, 20.0, 30.0]]], descriptions=["pop_60plus"])
    res = _result(tmp_path, grid="g.tif")
    res.layers.update(districts=areas_ab)
    assert steps.demand(res) is None
    pop = res.layers["population"]
    assert pop.groupby("district")["pop_60plus"].sum().to_dict() == pytest.approx(
        {"A区": 10.0, "B区": 20.0})  # the third cell lies in no area
    assert "the grid's own counts" in res.tables["demand_columns"]["method"].iloc[0]


def test_step_given_units_get_a_table_beside_grid_and_census(tmp_path, two_areas_over_grid6):
    write_tif(tmp_path / "g.tif", [[[10, 20, 30], [0, 40, 0]]], descriptions=["pop_60plus"])
    units = local([(0, 0, 150, 200), (150, 100, 300, 200)], id=["u1", "u2"],
                  name=["一", "二"], population=[390, 60], pop_60plus=[77, 9], pop_65plus=[40, 5],
                  pop_80plus=[9, 1], district=["A区", "B区"])
    res = _result(tmp_path, census=_census(tmp_path), grid="g.tif", plan_years=[],
                  method="life_table", use_for_population=False)
    res.layers.update(districts=two_areas_over_grid6, population=units)
    assert steps.demand(res) is None
    assert res.layers["population"]["pop_60plus"].tolist() == [77, 9]  # kept as given
    t = res.tables["demand_by_unit"].set_index("id")
    assert t["pop_60plus_grid"].tolist() == pytest.approx([40.0, 20.0])
    assert t["pop_60plus_census_grid"].tolist() == pytest.approx([80.0, 10.0])
    cols = res.tables["demand_columns"]
    assert ((cols["layer"] == "demand_by_unit") & (cols["column"] == "pop_60plus_grid")).any()


def test_scenario_checks_the_spread_source_and_files(tmp_path):
    from planner import load_scenario
    from planner._errors import ScenarioError

    (tmp_path / "s.yaml").write_text(
        "name: t\nlayers: {}\ndemand:\n  census: c.csv\n  spread_by: grid\n"
        "  buildings: {path: nope.gpkg}\n", encoding="utf-8")
    with pytest.raises(ScenarioError) as err:
        load_scenario(tmp_path / "s.yaml")
    text = str(err.value)
    assert "spread_by: grid needs `grid:`" in text
    assert "`demand.buildings.path`: file" in text and "nope.gpkg does not exist" in text


def test_scenario_grid_files_are_checked_and_hashed(tmp_path):
    from planner import load_scenario
    from planner._errors import ScenarioError
    from planner.pipeline.scenario import input_paths

    write_tif(tmp_path / "m60.tif", [[[1.0]]])
    text = ("name: t\nlayers: {}\ndemand:\n  grid:\n    files:\n      pop_60plus: [m60.tif, "
            "f60.tif]\n")
    (tmp_path / "s.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"line 6: `demand.grid.files.pop_60plus.1`: file "
                                            r".*f60.tif does not exist; did you mean `m60.tif`"):
        load_scenario(tmp_path / "s.yaml")
    write_tif(tmp_path / "f60.tif", [[[2.0]]])
    scen = load_scenario(tmp_path / "s.yaml")
    assert [".".join(map(str, k)) for k, _ in input_paths(scen)] == [
        "demand.grid.files.pop_60plus.0", "demand.grid.files.pop_60plus.1"]
    (tmp_path / "s.yaml").write_text(text + "    path: m60.tif\n", encoding="utf-8")
    with pytest.raises(ScenarioError, match="either `path`"):
        load_scenario(tmp_path / "s.yaml")
