"""Tests of planner.demand: census parsing, dasymetric allocation, cohort projections."""

from __future__ import annotations

import re

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import box

from planner import demand
from planner._errors import DemandError, PlannerWarning
from planner.demand.allocation import _thin_residential_land
from planner.pipeline import RunResult, steps
from planner.pipeline.settings import Scenario

UTM = "EPSG:32649"
X0, Y0 = 300000.0, 3790000.0  # somewhere in Xi'an, UTM 49N

# 2020 layout band labels (0, 1到4, 5到9, ..., 80到84, 85岁以上) and 2010 labels
LABELS_2020 = ["0岁", "1到4岁"] + [f"{a}到{a + 4}岁" for a in range(5, 85, 5)] + ["85岁以上"]
LABELS_2010 = ["0岁", "1-4岁"] + [f"{a}-{a + 4}岁" for a in range(5, 85, 5)] + ["85岁及以上"]


def bands_of(seed: int) -> np.ndarray:
    """19 bands x 2 sexes of small positive integers, deterministic."""
    rng = np.random.default_rng(seed)
    return rng.integers(10, 100, size=(19, 2))


def census_2020(rows: dict[str, np.ndarray], *, households: int = 50) -> pd.DataFrame:
    data: dict[str, list] = {"区划代码": [], "区县": [], "人口数_合计": [], "家庭户数": []}
    for i, (name, b) in enumerate(rows.items()):
        data["区划代码"].append(610100.0 + i)
        data["区县"].append(name)
        data["人口数_合计"].append(int(b.sum()))
        data["家庭户数"].append(households)
        for k, lab in enumerate(LABELS_2020):
            data.setdefault(f"男_{lab}", []).append(int(b[k, 0]))
            data.setdefault(f"女_{lab}", []).append(int(b[k, 1]))
    return pd.DataFrame(data)


def census_2010(rows: dict[str, np.ndarray]) -> pd.DataFrame:
    data: dict[str, list] = {"区划代码": [], "地区": [], "合计": [], "家庭户户数": []}
    for name, b in rows.items():
        data["区划代码"].append(610100)
        data["地区"].append("  " + name)
        data["合计"].append(int(b.sum()))
        data["家庭户户数"].append(40)
        for k, lab in enumerate(LABELS_2010):
            data.setdefault(f"{lab}（男）", []).append(int(b[k, 0]))
            data.setdefault(f"{lab}（女）", []).append(int(b[k, 1]))
    return pd.DataFrame(data)


def shifted(b: np.ndarray, dx: float, dy: float):
    return box(X0 + b[0] + dx, Y0 + b[1] + dy, X0 + b[2] + dx, Y0 + b[3] + dy)


def boxes(bounds: list[tuple], crs=UTM, **cols) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(cols, geometry=[shifted(b, 0, 0) for b in bounds], crs=crs)


@pytest.fixture
def two_areas() -> gpd.GeoDataFrame:
    # A = [0,100]x[0,100], B = [100,200]x[0,100]
    return boxes([(0, 0, 100, 100), (100, 0, 200, 100)], name=["A区", "B区"])


@pytest.fixture
def residential() -> gpd.GeoDataFrame:
    # r1 in A (400 m²), r2 across the A|B border (400 + 400 m²), r3 in B (800 m²),
    # r4 outside both (100 m²)
    return boxes(
        [(10, 10, 30, 30), (80, 40, 120, 60), (150, 50, 170, 90), (300, 0, 310, 10)],
        id=["r1", "r2", "r3", "r4"], name=["一区", "二区", "三区", "外区"],
        floor_m2=[10.0, 30.0, 5.0, 99.0],
    )


def totals(**pop) -> pd.DataFrame:
    return pd.DataFrame({"name": list(pop), "population": [float(v) for v in pop.values()],
                         "households": [float(v) / 2 for v in pop.values()]})


# --------------------------------------------------------------------------- read_census
def test_read_census_2020_layout_canonical_columns(tmp_path):
    b = {"新城区": bands_of(1), "碑林区": bands_of(2)}
    path = tmp_path / "c2020.csv"
    census_2020(b).to_csv(path, index=False)
    t = demand.read_census(path)
    assert t["name"].tolist() == ["新城区", "碑林区"]
    assert t["code"].tolist() == ["610100", "610101"]
    assert list(demand.BAND_COLUMNS[:4]) == ["m_0", "f_0", "m_1_4", "f_1_4"]
    assert demand.BAND_COLUMNS[-1] == "f_85plus" and len(demand.BAND_COLUMNS) == 38
    for k, key in enumerate(["0", "1_4", "5_9"] + [f"{a}_{a + 4}" for a in range(10, 85, 5)]
                            + ["85plus"]):
        assert t.loc[0, f"m_{key}"] == b["新城区"][k, 0]
        assert t.loc[1, f"f_{key}"] == b["碑林区"][k, 1]
    assert t["population"].tolist() == [b["新城区"].sum(), b["碑林区"].sum()]
    assert t["households"].tolist() == [50, 50]


def test_read_census_2010_layout_strips_spaces_and_gbk(tmp_path):
    b = {"莲湖区": bands_of(3)}
    path = tmp_path / "c2010.csv"
    census_2010(b).to_csv(path, index=False, encoding="gbk")
    t = demand.read_census(path)
    assert t["name"].tolist() == ["莲湖区"]
    assert t.loc[0, "m_85plus"] == b["莲湖区"][18, 0]
    assert t.loc[0, "f_1_4"] == b["莲湖区"][1, 1]
    assert t.loc[0, "households"] == 40


def test_read_census_township_key_and_finer_top_bands():
    b = bands_of(4)
    raw = census_2020({"东城街道": b})
    raw = raw.rename(columns={"区县": "街道"})
    # split 85+ into 85-89 and 90+: they are summed back
    raw["男_85到89岁"] = raw["男_85岁以上"] - 3
    raw["男_90岁及以上"] = 3
    raw = raw.drop(columns="男_85岁以上")
    t = demand.read_census(raw)
    assert t.loc[0, "name"] == "东城街道"
    assert t.loc[0, "m_85plus"] == b[18, 0]


def test_read_census_band_mismatch_lists_difference_and_trust_options():
    raw = census_2020({"A区": bands_of(5), "B区": bands_of(6)})
    raw.loc[1, "人口数_合计"] += 7
    mismatch = r"B区: total \d+, bands sum to \d+ \(total - bands = \+7\)"
    with pytest.raises(DemandError, match=mismatch) as info:
        demand.read_census(raw)
    assert "A区" not in str(info.value)
    assert "trust='bands'" in str(info.value) and "trust='total'" in str(info.value)

    with pytest.warns(PlannerWarning, match="trusting the bands"):
        t = demand.read_census(raw, trust="bands")
    assert t.loc[1, "population"] == bands_of(6).sum()

    with pytest.warns(PlannerWarning, match="trusting the total"):
        t = demand.read_census(raw, trust="total")
    total = bands_of(6).sum() + 7
    assert t.loc[1, "population"] == total
    assert t.loc[1, list(demand.BAND_COLUMNS)].sum() == pytest.approx(total)
    assert t.loc[1, "m_0"] == pytest.approx(bands_of(6)[0, 0] * total / (total - 7))
    assert t.loc[0, "m_0"] == bands_of(5)[0, 0]  # the consistent area is untouched


def test_read_census_given_group_mismatch_reported():
    raw = census_2020({"A区": bands_of(7)})
    raw["pop_60plus"] = bands_of(7)[13:].sum() + 2
    with pytest.raises(DemandError, match=r"given pop_60plus .* \(difference \+2\)"):
        demand.read_census(raw)


def test_read_census_negative_and_non_numeric_collected():
    raw = census_2020({"A区": bands_of(8), "B区": bands_of(9)})
    raw["男_60到64岁"] = raw["男_60到64岁"].astype(object)
    raw.loc[0, "男_60到64岁"] = "12O"
    raw.loc[1, "女_5到9岁"] = -4
    raw.loc[1, "家庭户数"] = np.nan
    with pytest.raises(DemandError) as info:
        demand.read_census(raw)
    msg = str(info.value)
    assert "column '家庭户数', area 'B区': value is empty" in msg
    assert "column '男_60到64岁', area 'A区': value '12O' is not a number" in msg
    assert "column '女_5到9岁', area 'B区': negative count -4" in msg


def test_read_census_missing_band_and_no_key():
    raw = census_2020({"A区": bands_of(10)}).drop(columns="女_70到74岁")
    with pytest.raises(DemandError, match=r"age bands missing for \['f_70_74'\]"):
        demand.read_census(raw)
    with pytest.raises(DemandError, match="no area-name column"):
        demand.read_census(pd.DataFrame({"foo": ["x"], "population": [3]}))


def test_read_census_empty_file_names_it(tmp_path):
    for name, content, says in (("c.csv", b"", "is empty (0 bytes)"),
                                ("c.xlsx", b"", "is empty (0 bytes)"),
                                ("c2.csv", b"\n\n", "has no header row and no data")):
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(DemandError, match=re.escape(f"Table {path} {says}")):
            demand.read_census(path)


def test_older_groups_from_bands():
    b = bands_of(11)
    t = demand.older_groups(demand.read_census(census_2020({"A区": b}, households=40)))
    assert t.loc[0, "pop_60plus"] == b[13:].sum()  # bands 60-64 ... 85+
    assert t.loc[0, "pop_65plus"] == b[14:].sum()
    assert t.loc[0, "pop_80plus"] == b[17:].sum()
    assert t.loc[0, "persons_per_household"] == pytest.approx(b.sum() / 40)


# --------------------------------------------------------------------------- allocate
def test_allocate_by_area_splits_border_polygon(two_areas, residential):
    out = demand.allocate(two_areas, totals(A区=1000, B区=600), residential)
    by_id = out.set_index("id")
    # A: r1 400 m², r2 400 m² -> 500 each; B: r2 400 m², r3 800 m² -> 200 / 400
    assert sorted(by_id.index) == ["r1", "r2-A区", "r2-B区", "r3"]
    assert by_id.loc["r1", "population"] == pytest.approx(500)
    assert by_id.loc["r2-A区", "population"] == pytest.approx(500)
    assert by_id.loc["r2-B区", "population"] == pytest.approx(200)
    assert by_id.loc["r3", "population"] == pytest.approx(400)
    assert by_id.loc["r2-B区", "res_area_m2"] == pytest.approx(400)
    assert by_id.loc["r2-A区", "split"] and not by_id.loc["r1", "split"]
    assert by_id.loc["r2-B区", "source_id"] == "r2" and by_id.loc["r3", "name"] == "三区"
    assert by_id.loc["r3", "households"] == pytest.approx(200)
    assert by_id.loc["r3", "population_int"] == 400
    rep = out.attrs["demand_report"]
    assert rep["n_outside"] == 1 and rep["outside_area_m2"] == pytest.approx(100)
    assert rep["n_split"] == 1 and rep["areas_at_point"] == []
    assert out.crs == two_areas.crs
    cols = demand.demand_columns(out)
    assert set(cols["column"]) >= {"population", "population_int", "households_int"}
    assert cols["estimated"].all() and cols["method"].str.contains("residential area").all()


def test_allocate_by_weight_column(two_areas, residential):
    out = demand.allocate(two_areas, totals(A区=1000, B区=600), residential, weight="floor_m2")
    pop = out.set_index("id")["population"]
    # r2's weight 30 splits 15 | 15 by area; A: 10 vs 15, B: 15 vs 5
    assert pop["r1"] == pytest.approx(400)
    assert pop["r2-A区"] == pytest.approx(600)
    assert pop["r2-B区"] == pytest.approx(450)
    assert pop["r3"] == pytest.approx(150)
    assert demand.demand_columns(out)["method"].str.contains("floor_m2").all()


def test_allocate_polygon_touching_border_is_not_split(two_areas):
    res = boxes([(100, 0, 120, 10), (20, 20, 40, 40)], id=["t", "a"])  # t touches A along x=100
    out = demand.allocate(two_areas, totals(A区=10, B区=20), res)
    assert sorted(out["id"]) == ["a", "t"]
    by_id = out.set_index("id")
    assert by_id.loc["t", "area"] == "B区" and not by_id.loc["t", "split"]
    assert by_id.loc["t", "population"] == pytest.approx(20)
    assert out.attrs["demand_report"]["n_split"] == 0


def test_allocate_bad_weight_column(two_areas, residential):
    residential.loc[2, "floor_m2"] = -1.0
    msg = r"non-negative numbers; 1 row\(s\) are not: \['row 2: -1'\]"
    with pytest.raises(DemandError, match=msg):
        demand.allocate(two_areas, totals(A区=1, B区=1), residential, weight="floor_m2")
    with pytest.raises(DemandError, match="Weight column 'dwellings' is not in"):
        demand.allocate(two_areas, totals(A区=1, B区=1), residential, weight="dwellings")


def test_allocate_integers_preserve_totals_exactly(two_areas, residential):
    out = demand.allocate(two_areas, totals(A区=1001, B区=601), residential)
    ints = out.set_index("id")["population_int"]
    # A: 500.5 | 500.5 -> the tie goes to the first polygon; B: 200.33 | 400.67
    assert ints["r1"] == 501 and ints["r2-A区"] == 500
    assert ints["r2-B区"] == 200 and ints["r3"] == 401
    sums = out.groupby("area")[["population", "population_int"]].sum()
    assert sums.loc["A区", "population_int"] == 1001 and sums.loc["B区", "population_int"] == 601
    assert sums["population"].to_numpy() == pytest.approx([1001, 601], abs=1e-9)


def test_largest_remainder_against_brute_force():
    rng = np.random.default_rng(0)
    v = rng.random(60) * 20
    groups = rng.integers(0, 5, 60)
    got = demand.largest_remainder(v, groups)
    for g in range(5):
        vg = v[groups == g]
        # independent: try every 0/1 rounding-up pattern's best (minimal max error) answer
        fl = np.floor(vg)
        k = int(round(vg.sum()) - fl.sum())
        expect = fl.copy()
        expect[np.argsort(-(vg - fl), kind="stable")[:k]] += 1
        assert got[groups == g].tolist() == expect.astype(int).tolist()
        assert got[groups == g].sum() == round(vg.sum())


def test_allocate_area_without_residential_kept_at_point(two_areas, residential):
    areas = pd.concat([two_areas, boxes([(0, 100, 100, 200)], name=["C区"])], ignore_index=True)
    with pytest.warns(PlannerWarning, match=r"1 area\(s\) have no residential polygon: \['C区'\]"):
        out = demand.allocate(areas, totals(A区=1000, B区=600, C区=50), residential)
    c = out[out["area"] == "C区"]
    assert len(c) == 1 and c["placement"].iloc[0] == "area_point"
    assert c["population"].iloc[0] == 50 and c["population_int"].iloc[0] == 50
    assert c.geometry.iloc[0].geom_type == "Point"
    assert c.geometry.iloc[0].within(areas.geometry.iloc[2])
    assert out["population"].sum() == pytest.approx(1650)


def test_allocate_areas_without_census_row_are_outside(two_areas, residential):
    # only A in the table: r3 (all in B) is outside; r2 keeps only its A piece
    out = demand.allocate(two_areas, totals(A区=100), residential)
    assert sorted(out["id"]) == ["r1", "r2-A区"]
    assert out.attrs["demand_report"]["n_outside"] == 2  # r3 and r4


def test_allocate_unmatched_names_suggest_close_matches(two_areas, residential):
    areas = two_areas.assign(name=["雁塔区", "新城区"])
    with pytest.raises(DemandError) as info:
        demand.allocate(areas, totals(雁塔=1, 新城区=2, 未央区=3), residential)
    msg = str(info.value)
    assert "'雁塔' (did you mean '雁塔区'?)" in msg
    assert "'未央区'" in msg and "'新城区'" not in msg.split("\n", 1)[1]
    # spaces do not matter
    out = demand.allocate(areas.assign(name=["雁塔区", "新城区 "]),
                          totals(**{"雁塔区": 1, " 新城区": 2}), residential)
    assert set(out["area"]) == {"雁塔区", "新城区"}


def test_allocate_reprojects_residential(two_areas, residential):
    ref = demand.allocate(two_areas, totals(A区=1000, B区=600), residential)
    other = demand.allocate(two_areas, totals(A区=1000, B区=600), residential.to_crs("EPSG:4326"))
    assert other.crs == two_areas.crs
    assert other.set_index("id")["population"].sort_index().to_numpy() == pytest.approx(
        ref.set_index("id")["population"].sort_index().to_numpy(), rel=1e-6)
    # areas in degrees: outputs in degrees, areas measured in metres
    geo = demand.allocate(two_areas.to_crs("EPSG:4326"), totals(A区=1000, B区=600), residential)
    assert geo.crs == "EPSG:4326"
    assert geo.set_index("id")["res_area_m2"]["r3"] == pytest.approx(800, rel=1e-3)


def test_allocate_needs_crs(two_areas, residential):
    with pytest.raises(DemandError, match="residential layer has no CRS.*set_crs"):
        demand.allocate(two_areas, totals(A区=1, B区=1), residential.set_crs(None,
                                                                            allow_override=True))
    with pytest.raises(DemandError, match="areas layer has no CRS"):
        demand.allocate(two_areas.set_crs(None, allow_override=True), totals(A区=1), residential)


def test_allocate_spreads_bands_and_groups_consistently(two_areas, residential):
    b = {"A区": bands_of(20), "B区": bands_of(21)}
    table = demand.older_groups(demand.read_census(census_2020(b)))
    out = demand.allocate(two_areas, table, residential)
    band_int = [f"{c}_int" for c in demand.BAND_COLUMNS]
    old_int = [f"{c}_int" for c in demand.BAND_COLUMNS if int(re.findall(r"\d+", c)[0]) >= 60]
    assert (out[band_int].sum(axis=1) == out["population_int"]).all()
    assert (out[old_int].sum(axis=1) == out["pop_60plus_int"]).all()
    sums = out.groupby("area")[["pop_60plus_int", "pop_80plus", "households_int"]].sum()
    assert sums.loc["A区", "pop_60plus_int"] == b["A区"][13:].sum()
    assert sums.loc["B区", "pop_80plus"] == pytest.approx(b["B区"][17:].sum())
    assert sums.loc["B区", "households_int"] == 50


# --------------------------------------------------------------------------- projection
def life_table(value: float) -> pd.DataFrame:
    bands = ["0-4"] + [f"{a}-{a + 4}" for a in range(5, 85, 5)] + ["85+"]
    return demand.read_life_table(pd.DataFrame(
        {"性别": ["男"] * 18 + ["女"] * 18, "年龄组": bands * 2, "存活比": [value] * 36}))


def test_life_table_survival_one_is_a_pure_shift():
    b = bands_of(30)
    table = demand.read_census(census_2020({"A区": b}))
    proj = demand.project_areas(table, method="life_table", life_table=life_table(1.0),
                                plan_years=[2025], include_bands=True)
    p25 = proj[proj["year"] == 2025].set_index("group")["value"]
    # band 60-64 in 2025 is band 55-59 of 2020 (index 12), per sex
    assert p25["m_60_64"] == b[12, 0] and p25["f_60_64"] == b[12, 1]
    assert p25["f_10_14"] == b[2, 1]
    assert p25["m_5_9"] == b[0, 0] + b[1, 0]  # 0 and 1-4 make 0-4
    assert p25["m_85plus"] == b[17, 0] + b[18, 0]  # 80-84 survive into 85+
    assert np.isnan(p25["m_0_4"])  # births are not projected
    assert p25["pop_60plus"] == b[12:].sum()
    assert (proj.loc[proj["year"] == 2025, "method"].str.contains("life table")).all()
    assert proj.loc[proj["year"] == 2025, "estimated"].all()
    assert not proj.loc[proj["year"] == 2020, "estimated"].any()


def test_life_table_with_survival_and_migration_by_hand():
    b = bands_of(31)
    table = demand.read_census(census_2020({"A区": b, "B区": b}))
    proj = demand.project_areas(table, method="life_table", life_table=life_table(0.9),
                                migration={"A区": 0.1}, plan_years=[2030])
    v = proj[(proj["year"] == 2030) & (proj["group"] == "pop_60plus")].set_index("area")["value"]
    # two 5-year steps: 60+ in 2030 = 50+ in 2020 (bands 50-54 ...), times (0.9·1.1)²
    assert v["A区"] == pytest.approx(b[11:].sum() * (0.9 * 1.1) ** 2)
    assert v["B区"] == pytest.approx(b[11:].sum() * 0.9 ** 2)


def test_life_table_missing_rows_and_bad_values():
    lt = life_table(1.0).drop(columns=["45_49"])
    table = demand.read_census(census_2020({"A区": bands_of(32)}))
    with pytest.raises(DemandError, match=r"lacks survival ratios for \['m_45_49', 'f_45_49'\]"):
        demand.project_areas(table, method="life_table", life_table=lt.reindex(
            columns=life_table(1.0).columns), plan_years=[2035])
    with pytest.raises(DemandError, match="row 0: sex 'x'"):
        demand.read_life_table(pd.DataFrame({"sex": ["x"], "band": ["60-64"], "survival": [0.9]}))


def test_hamilton_perry_reproduces_base_from_previous_by_construction():
    b10 = {"A区": bands_of(40), "B区": bands_of(41)}
    b20 = {"A区": bands_of(42), "B区": bands_of(43)}
    t10 = demand.read_census(census_2010(b10))
    t20 = demand.read_census(census_2020(b20))
    ccr = demand.cohort_change_ratios(t20, t10)
    assert ccr.loc["A区", "m_60_64"] == pytest.approx(b20["A区"][13, 0] / b10["A区"][11, 0])
    assert ccr.loc["B区", "f_85plus"] == pytest.approx(
        b20["B区"][18, 1] / b10["B区"][16:, 1].sum())
    assert ccr.loc["A区", "f_10_14"] == pytest.approx(
        b20["A区"][3, 1] / (b10["A区"][0, 1] + b10["A区"][1, 1]))
    proj = demand.project_areas(t10, ratios=ccr, base_year=2010, plan_years=[2020],
                                include_bands=True)
    p = proj[proj["year"] == 2020].set_index(["area", "group"])["value"]
    for area, b in b20.items():
        for k, lab in enumerate(["10_14"] + [f"{a}_{a + 4}" for a in range(15, 85, 5)], start=3):
            assert p[(area, f"m_{lab}")] == pytest.approx(b[k, 0])
            assert p[(area, f"f_{lab}")] == pytest.approx(b[k, 1])
        assert p[(area, "m_85plus")] == pytest.approx(b[18, 0])
        assert p[(area, "pop_60plus")] == pytest.approx(b[13:].sum())


def test_hamilton_perry_5_year_steps_are_geometric_interpolation():
    t10 = demand.read_census(census_2010({"A区": bands_of(50)}))
    t20 = demand.read_census(census_2020({"A区": bands_of(51)}))
    proj = demand.project_areas(t20, previous=t10, plan_years=[2025, 2030, 2035],
                                include_bands=True)
    p = proj.set_index(["year", "group"])["value"]
    for band in ("m_60_64", "f_85plus", "f_70_74"):
        assert p[(2025, band)] == pytest.approx(np.sqrt(p[(2020, band)] * p[(2030, band)]))
    assert p[(2035, "pop_65plus")] == pytest.approx(
        sum(p[(2035, f"{s}_{b}")] for s in "mf"
            for b in ["65_69", "70_74", "75_79", "80_84", "85plus"]))
    assert p[(2020, "pop_60plus")] == bands_of(51)[13:].sum()


def test_projection_input_errors():
    t20 = demand.read_census(census_2020({"A区": bands_of(60)}))
    with pytest.raises(DemandError, match="no previous census is given"):
        demand.project_areas(t20)
    t10 = demand.read_census(census_2010({"A区": bands_of(61)}))
    with pytest.raises(DemandError, match=r"Plan years \[2015\] are before"):
        demand.project_areas(t20, previous=t10, plan_years=[2015])
    t10b = demand.read_census(census_2010({"A": bands_of(61)}))
    with pytest.raises(DemandError, match=r"'A区' is in the census table but not in the "
                                          r"previous census table \(renamed from 'A'\?\)"):
        demand.project_areas(t20, previous=t10b)


def test_project_units_scale_own_counts():
    t10 = demand.read_census(census_2010({"A区": bands_of(70), "B区": bands_of(71)}))
    t20 = demand.read_census(census_2020({"A区": bands_of(72), "B区": bands_of(73)}))
    proj = demand.project_areas(t20, previous=t10, plan_years=[2030])
    units = pd.DataFrame({"id": ["u1", "u2"], "name": ["一", "二"], "district": ["A区", "B区 "],
                          "pop_60plus": [30.0, 12.0]})
    out = demand.project_units(units, proj, area_column="district")
    area = proj[proj["group"] == "pop_60plus"].set_index(["area", "year"])["value"]
    v = out.set_index(["unit_id", "year"])
    assert v.loc[("u1", 2030), "value"] == pytest.approx(30 * area["A区", 2030] / area["A区", 2020])
    assert v.loc[("u2", 2030), "change"] == pytest.approx(
        12 * area["B区", 2030] / area["B区", 2020] - 12)
    assert v.loc[("u2", 2020), "value"] == 12 and not v.loc[("u2", 2020), "estimated"]
    assert v.loc[("u1", 2030), "estimated"]
    assert "scaled to each unit's own count" in v.loc[("u1", 2030), "method"]
    with pytest.raises(DemandError, match="did you mean 'A区'"):
        demand.project_units(units.assign(district=["A", "B区"]), proj, area_column="district")


# --------------------------------------------------------------------------- population layer
def census_counts(**rows: tuple[float, float, float]) -> pd.DataFrame:
    """A census table without bands: area -> (population, pop_60plus, households)."""
    return pd.DataFrame({"name": list(rows),
                         "population": [float(r[0]) for r in rows.values()],
                         "pop_60plus": [float(r[1]) for r in rows.values()],
                         "households": [float(r[2]) for r in rows.values()]})


def test_estimate_population_integer_counts_sum_to_census_totals(two_areas, residential):
    # r1, r2, r3 only (nothing outside); 800 and 1200 m² of land for 61 and 37 residents
    table = census_counts(A区=(61, 13, 25), B区=(37, 11, 16))
    pop, info = demand.estimate_population(two_areas, table, residential.iloc[:3],
                                           source="c2020.csv")
    by_id = pop.set_index("id")
    assert by_id.index.tolist() == ["r1", "r2-A区", "r2-B区", "r3"]
    # A: r1 400 m² | r2's A piece 400 m² -> halves; x.5 ties go to the first polygon
    # B: r2's B piece 400 m² | r3 800 m² -> thirds: 37 -> 12.33 | 24.67, 11 -> 3.67 | 7.33,
    #    16 -> 5.33 | 10.67; the one person left over goes to the larger remainder
    assert by_id["population"].tolist() == [31, 30, 12, 25]
    assert by_id["pop_60plus"].tolist() == [7, 6, 4, 7]
    assert by_id["households"].tolist() == [13, 12, 5, 11]
    for col in ("population", "pop_60plus", "households"):
        assert pop[col].dtype.kind == "i"
    sums = pop.groupby("district")[["population", "pop_60plus", "households"]].sum()
    assert sums.loc["A区"].tolist() == [61, 13, 25]
    assert sums.loc["B区"].tolist() == [37, 11, 16]
    assert by_id.loc["r2-B区", "name"] == "二区" and by_id.loc["r3", "district"] == "B区"
    assert (pop["placement"] == "residential").all()
    assert pop.crs == two_areas.crs
    assert info["column"].tolist() == ["population", "households", "pop_60plus"]
    assert (info["layer"] == "population").all() and info["estimated"].all()
    assert (info["source"] == "c2020.csv").all()
    assert info["method"].str.contains("integers by largest remainder per area").all()


def test_estimate_population_warns_about_residential_land_outside_every_area(two_areas,
                                                                           residential):
    # r4 (100 m²) and a 1 km² polygon lie east of both areas
    far = boxes([(300, 0, 1300, 1000)], id=["r5"], name=["远区"], floor_m2=[1.0])
    res = pd.concat([residential, far], ignore_index=True)
    table = census_counts(A区=(61, 13, 25), B区=(37, 11, 16))
    with pytest.warns(PlannerWarning) as caught:
        pop, _ = demand.estimate_population(two_areas, table, res)
    assert [str(w.message) for w in caught] == [
        "demand: 2 residential polygon(s) (1.00 km²) lie outside every census area "
        "and got no residents."]
    assert not {"r4", "r5"} & set(pop["id"])
    assert pop.groupby("district")["population"].sum().to_dict() == {"A区": 61, "B区": 37}


def test_fill_groups_estimates_missing_groups_from_area_shares(two_areas):
    # c1 lies in A区, c2 in B区; neither carries its district nor pop_60plus / households
    pop = boxes([(10, 10, 20, 20), (150, 10, 160, 20)], id=["c1", "c2"], name=["甲", "乙"],
                population=[100.0, 200.0])
    table = census_counts(A区=(1000, 250, 400), B区=(800, 120, 200))
    with pytest.warns(PlannerWarning, match=r"^Population layer: pop_60plus, households "
                                            r"estimated from each unit's population and its "
                                            r"district's census shares\.$"):
        out, info = demand.fill_groups(pop, table, two_areas, source="c.csv")
    assert out["district"].tolist() == ["A区", "B区"]  # found by location
    assert out["pop_60plus"].tolist() == pytest.approx([100 * 250 / 1000, 200 * 120 / 800])
    assert out["households"].tolist() == pytest.approx([100 * 400 / 1000, 200 * 200 / 800])
    assert "pop_60plus" not in pop.columns  # the input is not changed
    assert info["column"].tolist() == ["pop_60plus", "households"]
    assert info["method"].tolist() == [
        "unit population × its district's census share of pop_60plus",
        "unit population × its district's census share of households"]
    assert (info["source"] == "c.csv").all() and info["estimated"].all()

    # a given value is kept; only the missing one is estimated
    part = pop.assign(pop_60plus=[40.0, np.nan], households=[45.0, 60.0], district=["A区", "B区"])
    with pytest.warns(PlannerWarning, match="^Population layer: pop_60plus estimated"):
        out, info = demand.fill_groups(part, table, None)
    assert out["pop_60plus"].tolist() == pytest.approx([40.0, 30.0])
    assert out["households"].tolist() == [45.0, 60.0]
    assert info["column"].tolist() == ["pop_60plus"]

    # nothing missing: no warning, nothing estimated
    out, info = demand.fill_groups(part.assign(pop_60plus=[40.0, 30.0]), table, None)
    assert out["pop_60plus"].tolist() == [40.0, 30.0] and info.empty


# --------------------------------------------------------------------------- run_step
def _result(tmp_path, **demand_settings) -> RunResult:
    scen = Scenario(name="t", layers={}, demand=demand_settings)
    scen = scen.model_copy(update={"base_dir": tmp_path})
    return RunResult(scenario=scen, crs=UTM)


def test_run_step_skips_without_section(tmp_path):
    res = RunResult(scenario=Scenario(name="t", layers={}))
    assert steps.demand(res) == "no `demand:` section in the scenario"


def test_run_step_builds_population_layer(tmp_path, two_areas, residential):
    b20 = {"A区": bands_of(80), "B区": bands_of(81)}
    census_2020(b20).to_csv(tmp_path / "c20.csv", index=False)
    census_2010({"A区": bands_of(82), "B区": bands_of(83)}).to_csv(tmp_path / "c10.csv",
                                                                  index=False)
    res = _result(tmp_path, census="c20.csv", census_previous="c10.csv")
    res.layers.update(districts=two_areas, residential=residential)
    with pytest.warns(PlannerWarning) as caught:
        assert steps.demand(res) is None
    shown = [str(w.message) for w in caught]
    assert any("1 residential polygon(s)" in m and "outside every census area" in m
               for m in shown)
    # A区: 400 + 400 m² of residential land for its census residents (bands_of(80))
    thin = next(m for m in shown if "residential land looks incomplete" in m)
    assert f"A区 ({800 / b20['A区'].sum():.1f} m² per resident)" in thin
    assert "demand.weight" in thin
    pop = res.layers["population"]
    assert {"id", "name", "population", "pop_60plus", "pop_65plus", "pop_80plus", "households",
            "district"} <= set(pop.columns)
    sums = pop.groupby("district")[["population", "pop_60plus"]].sum()
    assert sums.loc["A区", "population"] == b20["A区"].sum()
    assert sums.loc["B区", "pop_60plus"] == b20["B区"][13:].sum()
    assert pop["population"].dtype.kind == "i"
    cols = res.tables["demand_columns"]
    pop_cols = cols[cols["layer"] == "population"].set_index("column")
    assert pop_cols.loc["pop_60plus", "estimated"]
    assert "largest remainder" in pop_cols.loc["pop_60plus", "method"]
    proj = res.tables["demand_projection"]
    assert sorted(proj["year"].unique()) == [2020, 2025, 2030, 2035]
    assert set(proj["unit_id"]) == set(pop["id"])
    total30 = proj[(proj["year"] == 2030) & (proj["group"] == "pop_60plus")]["value"].sum()
    areas = demand.project_areas(demand.read_census(tmp_path / "c20.csv"),
                                 previous=demand.read_census(tmp_path / "c10.csv"))
    assert total30 == pytest.approx(
        areas[(areas["year"] == 2030) & (areas["group"] == "pop_60plus")]["value"].sum())
    shown = res.tables["demand_areas"].set_index(["地区", "人群"])
    assert shown.loc[("A区", "60岁及以上"), "2020普查"] == b20["A区"][13:].sum()
    assert shown.loc[("A区", "60岁及以上"), "2030预测"] == round(
        areas[(areas["year"] == 2030) & (areas["group"] == "pop_60plus")
              & (areas["area"] == "A区")]["value"].iloc[0])
    assert any("不在任何普查地区内" in w for w in res.warnings)  # the scenario's language


def test_run_step_with_given_population_fills_groups(tmp_path, two_areas):
    census_2020({"A区": bands_of(90), "B区": bands_of(91)}).to_csv(tmp_path / "c20.csv",
                                                                  index=False)
    life_table(0.95).reset_index().melt(id_vars="sex", var_name="band",
                                        value_name="survival").to_csv(tmp_path / "lt.csv",
                                                                      index=False)
    pop = boxes([(10, 10, 20, 20), (150, 10, 160, 20)], id=["c1", "c2"], name=["甲", "乙"],
                population=[100.0, 200.0])
    res = _result(tmp_path, census="c20.csv", method="life_table", life_table="lt.csv")
    res.layers.update(districts=two_areas, population=pop)
    with pytest.warns(PlannerWarning, match="estimated from each unit's population"):
        assert steps.demand(res) is None
    out = res.layers["population"]
    b = bands_of(91)
    assert out["district"].tolist() == ["A区", "B区"]  # found by location
    assert out.loc[1, "pop_60plus"] == pytest.approx(200 * b[13:].sum() / b.sum())
    proj = res.tables["demand_projection"]
    v = proj[(proj["unit_id"] == "c2") & (proj["group"] == "pop_60plus")].set_index("year")
    # life table 0.95, 60+ in 2025 = 55+ in 2020 · 0.95 (scaled to the unit's own 60+)
    assert v.loc[2025, "value"] == pytest.approx(out.loc[1, "pop_60plus"] * 0.95 * b[12:].sum()
                                                 / b[13:].sum())
    assert res.tables["demand_columns"].set_index("column").loc["pop_60plus", "estimated"]


# --------------------------------------------------------------------------- real Xi'an data
@pytest.fixture(scope="module")
def xian(xian_dir):
    from planner.coords import to_wgs84

    t20 = demand.older_groups(demand.read_census(xian_dir / "xian_core4_districts_census2020.csv"))
    t10 = demand.read_census(xian_dir / "xian_core4_districts_census2010.csv")
    districts = to_wgs84(gpd.read_file(xian_dir / "xian_districts_datav_gcj02.json"),
                         coord_system="gcj02")
    res = gpd.read_file(xian_dir / "xian_landuse_residential.gpkg")
    est = demand.allocate(districts.to_crs(UTM), t20, res)
    return {"t20": t20, "t10": t10, "est": est, "dir": xian_dir}


def test_xian_given_groups_equal_band_sums(xian):
    raw = pd.read_csv(xian["dir"] / "xian_core4_districts_census2020.csv")
    t = xian["t20"].set_index("name")
    for _, row in raw.iterrows():
        for g in ("pop_60plus", "pop_65plus", "pop_80plus"):
            assert t.loc[row["区县"], g] == row[g]
    assert t.loc["雁塔区", "population"] == 2046737
    assert t.loc["新城区", "pop_60plus"] == 122179


def test_xian_allocation_reproduces_census(xian):
    est, t = xian["est"], xian["t20"].set_index("name")
    assert set(est["area"]) == {"新城区", "碑林区", "莲湖区", "雁塔区"}
    sums = est.groupby("area").sum(numeric_only=True)
    for col in ("population", "pop_60plus", "pop_65plus", "pop_80plus", "households", "m_85plus"):
        assert np.abs(sums[col] - t.loc[sums.index, col]).max() < 1e-6
        assert (sums[f"{col}_int"] == t.loc[sums.index, col].astype(int)).all()
    bands60 = [c for c in demand.BAND_COLUMNS if int(re.findall(r"\d+", c)[0]) >= 60]
    assert np.allclose(est[bands60].sum(axis=1), est["pop_60plus"])
    assert (est[[f"{c}_int" for c in bands60]].sum(axis=1) == est["pop_60plus_int"]).all()
    assert est.attrs["demand_report"]["n_residential"] == 614
    assert est.attrs["demand_report"]["areas_at_point"] == []


def test_xian_polygons_outside_the_four_districts_get_nothing(xian):
    est = xian["est"]
    rep = est.attrs["demand_report"]
    assert rep["n_outside"] == 193  # as the data README counts them
    assert rep["outside_area_m2"] / 1e6 == pytest.approx(6.0, abs=0.1)
    # every output row lies inside a district that has census counts
    assert est["source_id"].nunique() == 614 - 193


def test_xian_hamilton_perry_2030_by_hand(xian):
    proj = demand.project_areas(xian["t20"], previous=xian["t10"], plan_years=[2025, 2030, 2035])
    table = demand.area_projection_table(proj, lang="en", decimals=None)
    table = table.set_index(["area", "group"])
    raw20 = pd.read_csv(xian["dir"] / "xian_core4_districts_census2020.csv").set_index("区县")
    raw10 = pd.read_csv(xian["dir"] / "xian_core4_districts_census2010.csv")
    raw10 = raw10.assign(地区=raw10["地区"].str.strip()).set_index("地区")
    d = "碑林区"
    expected = 0.0
    for sex20, sex10 in (("男", "男"), ("女", "女")):
        for a in range(60, 85, 5):  # CCR_x · P2020[x-10] for 60-64 ... 80-84
            ccr = (raw20.loc[d, f"{sex20}_{a}到{a + 4}岁"]
                   / raw10.loc[d, f"{a - 10}-{a - 6}岁（{sex10}）"])
            expected += ccr * raw20.loc[d, f"{sex20}_{a - 10}到{a - 6}岁"]
        open20 = raw20.loc[d, f"{sex20}_85岁以上"]
        open10 = (raw10.loc[d, f"75-79岁（{sex10}）"] + raw10.loc[d, f"80-84岁（{sex10}）"]
                  + raw10.loc[d, f"85岁及以上（{sex10}）"])
        base = (raw20.loc[d, f"{sex20}_75到79岁"] + raw20.loc[d, f"{sex20}_80到84岁"] + open20)
        expected += open20 / open10 * base
    assert table.loc[(d, "pop_60plus"), "2030"] == pytest.approx(expected)
    assert table.loc[(d, "pop_60plus"), "2020"] == 152839  # the census, beside it
    assert table.loc[(d, "pop_60plus"), "change"] == pytest.approx(
        table.loc[(d, "pop_60plus"), "2035"] - 152839)
    assert table["method"].str.contains("Hamilton-Perry").all()


def test_run_step_townships_get_their_district(tmp_path):
    towns = boxes([(0, 0, 100, 100), (100, 0, 200, 100)], name=["东街道", "西街道"],
                  district=["示范区", "示范区"])
    census_2020({"东街道": bands_of(95), "西街道": bands_of(96)}).rename(
        columns={"区县": "街道"}).to_csv(tmp_path / "c20.csv", index=False)
    res = _result(tmp_path, census="c20.csv", area_layer="townships", plan_years=[],
                  method="life_table")
    res.layers.update(townships=towns, residential=boxes([(10, 10, 20, 20)], id=["r"]))
    with pytest.warns(PlannerWarning) as caught:
        assert steps.demand(res) is None
    shown = [str(w.message) for w in caught]
    assert any("no residential polygon: ['西街道']" in m for m in shown)
    # only 东街道 has residential land (100 m²); 西街道 is at a point, not measured
    thin = next(m for m in shown if "residential land looks incomplete" in m)
    assert "东街道 (" in thin and "西街道" not in thin
    pop = res.layers["population"].set_index("township")
    assert pop["district"].tolist() == ["示范区", "示范区"]
    assert pop.loc["西街道", "name"] == "西街道（区域代表点）"
    assert pop.loc["东街道", "population"] == bands_of(95).sum()
    assert set(res.tables["demand_projection"]["year"]) == {2020}


def test_demo_scenario_projects_given_communities():
    from planner.pipeline import demo_scenario_path, run

    res = run(demo_scenario_path(), steps=["layers", "demand"])
    pop = res.layers["population"]
    proj = res.tables["demand_projection"]
    areas = demand.project_areas(
        demand.read_census(demo_scenario_path().parent / "demo_census_2020.csv"),
        previous=demand.read_census(demo_scenario_path().parent / "demo_census_2010.csv"))
    a = areas[areas["group"] == "pop_60plus"].set_index(["area", "year"])["value"]
    unit = pop.iloc[0]
    v = proj[(proj["unit_id"] == unit["id"]) & (proj["group"] == "pop_60plus")]
    v = v.set_index("year")["value"]
    town = unit["township"]
    assert v[2035] == pytest.approx(unit["pop_60plus"] * a[town, 2035] / a[town, 2020])
    assert len(proj) == len(pop) * 3 * 4  # units x groups x years


def test_allocate_inconsistent_table_integerises_population_on_its_own(two_areas, residential):
    table = demand.older_groups(demand.read_census(census_2020({"A区": bands_of(97),
                                                               "B区": bands_of(98)})))
    table.loc[0, "population"] += 10.0  # built by hand, not through read_census
    out = demand.allocate(two_areas, table, residential)
    sums = out.groupby("area")["population_int"].sum()
    assert sums["A区"] == bands_of(97).sum() + 10
    assert sums["B区"] == bands_of(98).sum()


def test_cohort_change_ratio_with_empty_cohort_uses_pooled_ratio():
    b10 = {"A区": bands_of(99), "B区": bands_of(100)}
    b10["A区"][11, 0] = 0  # nobody 50-54 (m) in A in 2010
    t10 = demand.read_census(census_2010(b10))
    b20 = {"A区": bands_of(101), "B区": bands_of(102)}
    t20 = demand.read_census(census_2020(b20))
    with pytest.warns(PlannerWarning, match=r"cohort is 0 in \['A区'\]"):
        ccr = demand.cohort_change_ratios(t20, t10)
    pooled = (b20["A区"][13, 0] + b20["B区"][13, 0]) / b10["B区"][11, 0]
    assert ccr.loc["A区", "m_60_64"] == pytest.approx(pooled)
    assert ccr.loc["B区", "m_60_64"] == pytest.approx(b20["B区"][13, 0] / b10["B区"][11, 0])


def test_run_step_plausible_residential_land_gives_no_density_warning(tmp_path):
    # two 1 km² areas, each with 200 m x 200 m of residential land for ~2,000 residents:
    # about 20 m² per resident, nothing to report
    areas = boxes([(0, 0, 1000, 1000), (1000, 0, 2000, 1000)], name=["A区", "B区"])
    b20 = {"A区": bands_of(70), "B区": bands_of(71)}
    census_2020(b20).to_csv(tmp_path / "c.csv", index=False)
    res = _result(tmp_path, census="c.csv", plan_years=[], method="life_table")
    res.layers.update(districts=areas, residential=boxes(
        [(100, 100, 300, 300), (1100, 100, 1300, 300)], id=["a", "b"]))
    assert steps.demand(res) is None  # no warning (warnings are errors here)
    assert res.layers["population"]["population"].tolist() == [b20["A区"].sum(),
                                                                b20["B区"].sum()]
    # the same land for 40,000 residents in B区: 1 m² per resident, reported
    assert _thin_residential_land(
        demand.allocate(areas, totals(A区=2000, B区=40000), res.layers["residential"]),
        totals(A区=2000, B区=40000), None) == [("B区", pytest.approx(1.0))]


def test_run_step_units_at_another_level_than_the_census(tmp_path):
    # townships' census, but the units carry only their district (the demo with
    # area_layer: districts): one message naming the units' value and the census areas
    census_2020({"东街道": bands_of(30), "西街道": bands_of(31)}).rename(
        columns={"区县": "街道"}).to_csv(tmp_path / "c20.csv", index=False)
    pop = boxes([(10, 10, 20, 20)], id=["c1"], name=["甲"], population=[100],
                pop_60plus=[20], pop_65plus=[10], pop_80plus=[2], households=[40], district=["示范区"])
    res = _result(tmp_path, census="c20.csv", plan_years=[], method="life_table")
    res.layers.update(population=pop)
    with pytest.raises(DemandError, match=r"(?s)^Population units: their 'district' value.*"
                                          r"\['东街道', '西街道'\].*demand.area_layer.*'示范区'"):
        steps.demand(res)
    res.layers.update(population=pop.drop(columns=["pop_80plus"]))  # a group to fill first
    with pytest.raises(DemandError, match=r"(?s)^Population layer: its 'district' value.*"
                                          r"c20\.csv.*demand.area_layer.*'示范区'"):
        steps.demand(res)
