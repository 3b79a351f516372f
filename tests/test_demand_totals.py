"""Census tables of totals only (no age bands): older shares from elsewhere, projections skipped."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import box

from planner import demand
from planner._errors import DemandError, PlannerWarning
from planner.demand.census import BAND_COLUMNS
from planner.pipeline import RunResult, steps
from planner.pipeline.settings import Scenario

UTM = "EPSG:32649"
X0, Y0 = 300000.0, 3790000.0


def banded(rows: dict[str, tuple[int, int]]) -> pd.DataFrame:
    """A canonical banded table: per area (count in each band under 60, count in each 60+ band).

    There are 13 bands below 60 and 6 from 60 (60-64 ... 80-84, 85+), per sex, so an area
    with (a, b) has 26 a residents under 60 and 12 b aged 60+ (4 b aged 80+).
    """
    data = {"name": list(rows)}
    for col in BAND_COLUMNS:
        lo = int(col.split("_")[1].replace("plus", ""))
        data[col] = [b if lo >= 60 else a for a, b in rows.values()]
    out = pd.DataFrame(data)
    out["population"] = out[list(BAND_COLUMNS)].sum(axis=1)
    return out


def boxes(bounds, **cols):
    return gpd.GeoDataFrame(cols, geometry=[box(X0 + a, Y0 + b, X0 + c, Y0 + d)
                                            for a, b, c, d in bounds], crs=UTM)


# --------------------------------------------------------------------------- reading
def test_totals_only_table_with_share_columns():
    t = demand.read_census(pd.DataFrame({
        "街道": ["甲街道", "乙街道"], "常住人口": [1000, 2000], "60岁及以上人口占比": [25, 30]}))
    assert t["share_60plus"].tolist() == [0.25, 0.30]  # percentages read as such
    assert not any(c in t.columns for c in BAND_COLUMNS)
    with pytest.warns(PlannerWarning, match=r"totals only.*pop_60plus = population × the "
                                            r"area's share of 60\+ given in the census"):
        g = demand.older_groups(t)
    assert g["pop_60plus"].tolist() == [250.0, 600.0]
    assert "pop_80plus" not in g.columns  # nothing says how many are 80+
    with pytest.raises(DemandError, match="mix fractions"):
        demand.read_census(pd.DataFrame({"街道": ["a", "b"], "常住人口": [1, 2],
                                         "share_60plus": [0.2, 25]}))


def test_totals_only_table_without_any_older_share_says_the_three_ways():
    t = demand.read_census(pd.DataFrame({"subdistrict": ["a"], "population_total": [10]}))
    with pytest.raises(DemandError) as err:
        demand.older_groups(t)
    text = str(err.value)
    for way in ("5-year age bands by sex", "60岁及以上人口占比", "demand.shares_from",
                "demand.older_share_60plus: 0.28"):
        assert way in text


def test_older_shares_from_the_district_table_and_from_an_assumption():
    towns = demand.read_census(pd.DataFrame({
        "街道": ["甲", "乙", "丙"], "区县": ["东区", "东区", "西区"],
        "常住人口": [1000, 3000, 500]}))
    assert towns["district"].tolist() == ["东区", "东区", "西区"]
    # 东区: 26*30 = 780 under 60, 12*20 = 240 aged 60+ (80 aged 80+): shares 240/1020 ...
    districts = banded({"东区": (30, 20), "西区": (10, 10)})
    with pytest.warns(PlannerWarning, match="higher-level area's census share"):
        g = demand.older_groups(towns, higher=districts)
    east, west = 240 / 1020, 120 / 380
    np.testing.assert_allclose(g["pop_60plus"], [1000 * east, 3000 * east, 500 * west])
    np.testing.assert_allclose(g["pop_80plus"], [1000 * 80 / 1020, 3000 * 80 / 1020,
                                                 500 * 40 / 380])
    assert "higher-level" in g.attrs["group_methods"]["pop_65plus"]
    # a parent mapping given explicitly wins over nothing; unknown districts are named
    with pytest.raises(DemandError, match="did you mean '东区'"):
        demand.older_groups(towns.drop(columns="district"), higher=districts,
                            parent={"甲": "东 区x", "乙": "东区", "丙": "西区"})
    # an assumption, labelled as one
    with pytest.warns(PlannerWarning, match=r"pop_60plus = population × 0.28: an ASSUMED share"):
        a = demand.older_groups(towns, assumed={"pop_60plus": 0.28})
    assert a["pop_60plus"].tolist() == pytest.approx([280.0, 840.0, 140.0])
    assert "scenario demand.older_share_60plus" in a.attrs["group_methods"]["pop_60plus"]
    # a banded census ignores both, and says so
    with pytest.warns(PlannerWarning, match="are not used"):
        b = demand.older_groups(districts, assumed={"pop_60plus": 0.5})
    assert b["pop_60plus"].tolist() == [240, 120]


def test_parent_areas_from_columns_or_location():
    towns = demand.read_census(pd.DataFrame({"街道": ["甲", "乙", "丙"], "常住人口": [1, 2, 3]}))
    layer = boxes([(0, 0, 10, 10), (20, 0, 30, 10), (120, 0, 130, 10)],
                  name=["甲", "乙", "丙"], district=["东区", None, None])
    districts = boxes([(0, 0, 100, 100), (100, 0, 200, 100)], name=["东区", "西区"])
    assert demand.parent_areas(towns, layer, parents=districts) == {
        "甲": "东区", "乙": "东区", "丙": "西区"}  # 乙 and 丙 by location
    assert demand.parent_areas(towns, layer) == {"甲": "东区"}


# --------------------------------------------------------------------------- projections
def test_projection_needs_names_the_bands():
    towns = demand.read_census(pd.DataFrame({"街道": ["甲"], "常住人口": [100]}))
    msg = demand.projection_needs(towns, plan_years=[2025, 2030, 2035])
    assert "has no 5-year age bands by sex; it needs them from age 40 up (m_40_44" in msg
    assert "no previous census is given" in msg and "from age 30 up" in msg
    msg = demand.projection_needs(towns, method="life_table", plan_years=[2030])
    assert "from age 50 up" in msg and "no life table" in msg
    assert demand.projection_needs(towns, plan_years=[]) is None
    assert demand.projection_needs(towns, plan_years=[2020]) is None


def test_projection_is_skipped_with_a_reason_and_plan_years_empty_is_fine():
    towns = demand.older_groups(demand.read_census(pd.DataFrame({
        "街道": ["甲", "乙"], "常住人口": [100, 300], "60岁及以上人口": [20, 90]})))
    with pytest.raises(DemandError, match="cannot run"):
        demand.project_areas(towns)
    with pytest.warns(PlannerWarning, match=r"cannot run.*from age 40 up.*The projection to "
                                            r"2025, 2030, 2035 is skipped"):
        p = demand.project_areas(towns, on_missing="skip")
    assert p["year"].unique().tolist() == [2020]
    assert p.set_index("area").loc["乙", "value"] == 90
    assert not p["estimated"].any()  # the census's own counts
    q = demand.project_areas(towns, plan_years=[])  # no warning: nothing was asked
    pd.testing.assert_frame_equal(p, q)


# --------------------------------------------------------------------------- the step
def _result(tmp_path, layers, **demand_settings) -> RunResult:
    scen = Scenario(name="t", layers={}, demand=demand_settings)
    scen = scen.model_copy(update={"base_dir": tmp_path})
    res = RunResult(scenario=scen, crs=UTM)
    res.layers.update(layers)
    return res


def _townships():
    # 甲 [0,100]x[0,100] and 乙 [100,200]x[0,100] in 东区; 丙 [200,300]x[0,100] in 西区
    return boxes([(0, 0, 100, 100), (100, 0, 200, 100), (200, 0, 300, 100)],
                 name=["甲", "乙", "丙"], district=["东区", "东区", "西区"])


def _residential():
    return boxes([(10, 10, 90, 90), (110, 10, 150, 50), (160, 10, 190, 90),
                  (210, 10, 290, 60)], id=["r1", "r2", "r3", "r4"])


def test_step_totals_with_district_bands_projects_by_district(tmp_path):
    pd.DataFrame({"街道": ["甲", "乙", "丙"], "常住人口": [1000, 3000, 500]}).to_csv(
        tmp_path / "towns.csv", index=False)
    d20 = banded({"东区": (30, 20), "西区": (10, 10)})
    d10 = banded({"东区": (30, 15), "西区": (10, 8)})
    d20.to_csv(tmp_path / "d20.csv", index=False)
    d10.to_csv(tmp_path / "d10.csv", index=False)
    res = _result(tmp_path, {"townships": _townships(), "residential": _residential()},
                  census="towns.csv", shares_from="d20.csv", census_previous="d10.csv",
                  area_layer="townships")
    with pytest.warns(PlannerWarning) as caught:
        assert steps.demand(res) is None
    assert any("higher-level area's census share" in str(w.message) for w in caught)
    pop = res.layers["population"]
    by_town = pop.groupby("township")["pop_60plus"].sum()
    east, west = 240 / 1020, 120 / 380
    assert by_town.to_dict() == {"甲": round(1000 * east), "乙": round(3000 * east),
                                 "丙": round(500 * west)}
    assert set(pop["district"]) == {"东区", "西区"}
    proj = res.tables["demand_projection"]
    assert sorted(proj["year"].unique()) == [2020, 2025, 2030, 2035]
    # every unit grows like its district (Hamilton-Perry on the district tables)
    areas = demand.project_areas(demand.older_groups(d20), previous=d10)
    a60 = areas[areas["group"] == "pop_60plus"].pivot_table(index="area", columns="year",
                                                           values="value")
    p60 = proj[proj["group"] == "pop_60plus"].pivot_table(index="unit_id", columns="year",
                                                         values="value", aggfunc="sum")
    unit_district = pop.set_index("id")["district"]
    for uid, row in p60.iterrows():
        growth = a60.loc[unit_district[uid]]
        assert row[2030] / row[2020] == pytest.approx(growth[2030] / growth[2020])
    cols = res.tables["demand_columns"].set_index(["layer", "column"])
    assert "higher-level area's census share" in cols.loc[("population", "pop_60plus"), "method"]
    assert "Hamilton-Perry" in cols.loc[("demand_projection", "value"), "method"]


def test_step_totals_with_an_assumed_share_and_no_bands_anywhere(tmp_path):
    pd.DataFrame({"street": ["甲", "乙", "丙"], "population_total": [1000, 3000, 500]}).to_csv(
        tmp_path / "towns.csv", index=False)
    res = _result(tmp_path, {"townships": _townships(), "residential": _residential()},
                  census="towns.csv", older_share_60plus=0.28, area_layer="townships")
    with pytest.warns(PlannerWarning) as caught:
        assert steps.demand(res) is None
    shown = [str(w.message) for w in caught]
    assert any("ASSUMED share of 60+" in m for m in shown)
    assert any("needs them from age 40 up" in m and "is skipped" in m for m in shown)
    pop = res.layers["population"]
    assert pop.groupby("township")["pop_60plus"].sum().to_dict() == {
        "甲": 280, "乙": 840, "丙": 140}
    assert "pop_80plus" not in pop.columns
    proj = res.tables["demand_projection"]
    assert proj["year"].unique().tolist() == [2020]
    assert proj.groupby("group")["value"].sum().to_dict() == {"pop_60plus": 1260}
    cols = res.tables["demand_columns"].set_index(["layer", "column"])
    assert "ASSUMED share" in cols.loc[("population", "pop_60plus"), "method"]
    areas = res.tables["demand_areas"]
    assert areas["方法"].iloc[0].startswith("population × 0.28: an ASSUMED share")
    # asked for no projection: no projection warning
    res = _result(tmp_path, {"townships": _townships(), "residential": _residential()},
                  census="towns.csv", older_share_60plus=0.28, area_layer="townships",
                  plan_years=[])
    with pytest.warns(PlannerWarning) as caught:
        assert steps.demand(res) is None
    assert not any("is skipped" in str(w.message) for w in caught)


def test_scenario_file_keys_for_totals(tmp_path):
    import planner

    pd.DataFrame({"街道": ["甲"], "常住人口": [10]}).to_csv(tmp_path / "t.csv", index=False)
    (tmp_path / "s.yaml").write_text(
        "name: t\nlayers: {}\ndemand:\n  census: t.csv\n  shares_from: nowhere.csv\n"
        "  older_share_60plus: 1.5\n", encoding="utf-8")
    with pytest.raises(planner.ScenarioError) as err:
        planner.load_scenario(tmp_path / "s.yaml")
    text = str(err.value)
    assert "line 5: `demand.shares_from`: file" in text and "does not exist" in text
    assert "line 6: `demand.older_share_60plus`" in text
