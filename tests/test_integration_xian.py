"""A whole run on the real Xi'an data where population comes from the census alone.

Issue 8 §1: no population layer; the four central districts' 2020 census
(with 2010 for the cohort-change ratios) is spread over OSM residential
polygons within the GCJ-02 district boundaries, and the run's layers,
demand, network and access steps work on the estimate.  Skips where
../shared is absent.
"""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest

import planner
from planner._errors import PlannerWarning

pytestmark = [pytest.mark.xian, pytest.mark.slow]

# the data README's 2020 census figures: residents, aged 60+
CENSUS_2020 = {"新城区": (617986, 122179), "碑林区": (756840, 152839),
               "莲湖区": (1019102, 182279), "雁塔区": (2046737, 247483)}


@pytest.fixture(scope="module")
def scenario_file(xian_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("xian_census_only")
    # one facility (a test site, not a real one) at a point of 三学街社区 (碑林区)
    res = gpd.read_file(xian_dir / "xian_landuse_residential.gpkg")
    site = res.loc[res["name"] == "三学街社区"].geometry.representative_point().iloc[0]
    lon, lat = gpd.GeoSeries([site], crs=res.crs).to_crs(4326).iloc[0].coords[0]
    pd.DataFrame({"名称": ["测试站"], "类型": ["社区养老服务站"], "lon": [lon], "lat": [lat]}
                 ).to_csv(tmp / "facilities.csv", index=False)
    (tmp / "xian.yaml").write_text(f"""
name: 西安中心城区 (census only)
layers:
  districts: {{path: {xian_dir / "xian_districts_datav_gcj02.json"}, coord_system: gcj02}}
  residential: {xian_dir / "xian_landuse_residential.gpkg"}
  facilities: facilities.csv
network: {{source: lines, path: {xian_dir / "xian_road.kml"}}}
access: {{}}
demand:
  census: {xian_dir / "xian_core4_districts_census2020.csv"}
  census_previous: {xian_dir / "xian_core4_districts_census2010.csv"}
  area_layer: districts
""", encoding="utf-8")
    return tmp / "xian.yaml"


@pytest.fixture(scope="module")
def run(scenario_file):
    with pytest.warns(PlannerWarning):  # units far from streets / beyond the cut-off
        result = planner.run(scenario_file, steps=["layers", "demand", "network", "access"])
    return result


def test_steps_done_without_a_population_layer(run):
    status = dict(zip(run.summary()["name"], run.summary()["status"]))
    assert [status[s] for s in ("layers", "demand", "network", "access")] == ["done"] * 4
    assert run.out_dir is None  # in memory


def test_population_estimate_reproduces_the_census_per_district(run):
    pop = run.layers["population"]
    assert pop.crs == run.crs and pop.crs.to_epsg() == 32649
    sums = pop.groupby("district")[["population", "pop_60plus"]].sum()
    assert {d: tuple(int(v) for v in sums.loc[d]) for d in sums.index} == CENSUS_2020
    # residential polygons outside the four districts got nothing (193 in the data README)
    # (the run's warnings are in the scenario's language, Chinese by default)
    assert any(w.startswith("需求：193 个居住用地面") for w in run.warnings)
    # OSM's residential landuse is far from complete here (data README): reported, per district
    thin = next(w for w in run.warnings if "居住用地似乎不完整" in w)
    assert all(f"{d}（人均" in thin for d in CENSUS_2020)
    assert "三学街社区" in set(pop["name"])
    cols = run.tables["demand_columns"]
    flagged = cols.loc[(cols["layer"] == "population") & cols["estimated"], "column"]
    assert {"population", "pop_60plus", "households"} <= set(flagged)
    assert cols["method"].str.contains("dasymetric").any()


def test_projection_beside_census(run):
    areas = run.tables["demand_areas"]
    assert len(areas) == 4 * 3  # districts x (60+, 65+, 80+)
    older = areas[areas.iloc[:, 1] == "60岁及以上"].set_index(areas.columns[0])
    assert {d: int(older.loc[d, "2020普查"]) for d in CENSUS_2020} == {
        d: v[1] for d, v in CENSUS_2020.items()}
    proj = run.tables["demand_projection"]
    base = proj[(proj["year"] == 2020) & (proj["group"] == "pop_60plus")]
    assert base["value"].sum() == pytest.approx(sum(v[1] for v in CENSUS_2020.values()))
    assert set(proj["year"]) == {2020, 2025, 2030, 2035}


def test_access_on_the_estimate(run):
    pa = run.layers["population_access"]
    assert len(pa) == len(run.layers["population"])
    here = pa[pa["name"] == "三学街社区"]
    assert len(here) >= 1 and (here["time_min_any"] < 5).all()  # the site is inside it
    cov = run.tables["coverage"]
    total = cov[(cov["tier"] == "any") & (cov["scope"] == "overall") & (cov["minutes"] == 15)]
    assert int(total["population"].iloc[0]) == sum(v[0] for v in CENSUS_2020.values())
    assert int(total["pop_60plus"].iloc[0]) == 704780
    within = pa.loc[pa["time_min_any"] <= 15, "pop_60plus"].sum()
    assert int(total["pop_60plus_within"].iloc[0]) == int(within) > 0


def test_hamilton_perry_reproduces_xian_2020_from_2010(xian_dir):
    from planner import demand

    t20 = demand.read_census(xian_dir / "xian_core4_districts_census2020.csv")
    t10 = demand.read_census(xian_dir / "xian_core4_districts_census2010.csv")
    ccr = demand.cohort_change_ratios(t20, t10)
    back = demand.project_areas(t10, ratios=ccr, base_year=2010, plan_years=[2020])
    got = back[(back["year"] == 2020) & (back["group"] == "pop_60plus")].set_index("area")
    for d, (_, older) in CENSUS_2020.items():
        assert got.loc[d, "value"] == pytest.approx(older, rel=1e-12)


def test_validate_marks_the_estimate(scenario_file):
    from click.testing import CliRunner

    from planner.cli import cli

    res = CliRunner().invoke(cli, ["validate", str(scenario_file), "--no-network"])
    assert res.exit_code == 0, res.output
    row = next(line for line in res.output.splitlines() if line.strip().startswith("population"))
    assert row.split()[1] == "428"  # 421 polygons inside the four districts, some split
    assert "(estimated counts: see table demand_columns)" in row
    assert "居住用地似乎不完整" in res.output
    facilities = next(line for line in res.output.splitlines()
                      if line.strip().startswith("facilities"))
    assert "estimated" not in facilities
