"""Tests of planner.norms: rule files, every measure on hand-computed cases, the demo."""

from __future__ import annotations

import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Point, box

import planner.norms as norms
from planner._errors import NormsError
from planner.norms import COLUMNS, check, load_rules

CRS = "EPSG:3857"


# --------------------------------------------------------------------------- helpers
def towns(pops=(10_000, 10_000, 10_000), **cols) -> gpd.GeoDataFrame:
    """Three 1 km × 1 km townships side by side: T1 [0,1000], T2 [1000,2000], T3 [2000,3000]."""
    n = 3 if pops is None else len(pops)
    data = {"id": [f"T{i + 1}" for i in range(n)], "name": [f"街道{i + 1}" for i in range(n)]}
    if pops is not None:
        data["population"] = list(pops)
    data.update(cols)
    return gpd.GeoDataFrame(data, geometry=[box(i * 1000, 0, (i + 1) * 1000, 1000) for i in range(n)],
                            crs=CRS)


def fac(rows: list[dict]) -> gpd.GeoDataFrame:
    """Facilities from dicts with x, y and canonical columns."""
    df = pd.DataFrame(rows)
    geom = [Point(x, y) for x, y in zip(df.pop("x"), df.pop("y"))]
    if "id" not in df.columns:
        df["id"] = [f"F{i + 1}" for i in range(len(df))]
    return gpd.GeoDataFrame(df, geometry=geom, crs=CRS)


def one_rule(tmp_path: Path, **fields) -> norms.RuleSet:
    """A rule set with a single rule (defaults filled in) written to a YAML file."""
    rule = {"id": "r1", "title": {"zh": "规则", "en": "rule"}, "unit": "u", "applies_from": 2020,
            "source": "测试文件", "clause": "第1条"}
    rule.update(fields)
    import yaml

    path = tmp_path / f"rules_{len(list(tmp_path.iterdir()))}.yaml"
    path.write_text(yaml.safe_dump({"jurisdiction": {"zh": "测试", "en": "test"}, "rules": [rule]},
                                   allow_unicode=True), encoding="utf-8")
    return load_rules(path)


def row(table: pd.DataFrame, rule_id: str, unit_id: str | None = None) -> pd.Series:
    sel = table[table.rule_id == rule_id]
    if unit_id is not None:
        sel = sel[sel.unit_id == unit_id]
    assert len(sel) == 1, sel
    return sel.iloc[0]


# --------------------------------------------------------------------------- rule files
def test_shipped_rule_sets_load_and_cite_sources():
    names = norms.shipped_rule_sets()
    assert set(names) >= {"national", "shaanxi_2023", "xian_2021", "sucheng_2024", "shanxi_2023",
                          "henan_2023"}
    for name in names:
        rules = load_rules(name)
        assert len(rules) > 0
        for r in rules:
            assert r.source and r.clause and r.title["zh"] and r.title["en"]
            assert r.measure in norms.MEASURES
    # every national rule comes from secondary sources and says so
    assert all(r.secondary for r in load_rules("national"))


def test_xian_extends_shaanxi_and_overrides_by_id():
    xian = load_rules("xian_2021", plan_year=2025)
    shaanxi = load_rules("shaanxi_2023", plan_year=2025)
    assert [p.name for p in xian.files] == ["xian_2021.yaml", "shaanxi_2023.yaml", "national.yaml"]
    assert shaanxi["nursing_bed_share"].threshold == 0.55
    assert xian["nursing_bed_share"].threshold == 0.60  # overridden (西安 二: 60 % by 2025)
    assert xian["nursing_bed_share"].source.startswith("西安市")
    # inherited unchanged from Shaanxi (item 21: 12 social workers per 1000 older people)
    assert xian["social_workers_per_1000_older"] == shaanxi["social_workers_per_1000_older"]
    assert xian["centre_coverage"].threshold == 0.7
    assert shaanxi["centre_coverage"].threshold == 0.6
    assert load_rules("sucheng_2024", plan_year=2025)["centre_coverage"].threshold == 1.0


def test_plan_year_selects_rules_in_force():
    y2023 = {r.id for r in load_rules("xian_2021", plan_year=2023)}
    y2025 = {r.id for r in load_rules("xian_2021", plan_year=2025)}
    assert "nursing_bed_share_2022" in y2023 and "nursing_bed_share" not in y2023
    assert "nursing_bed_share" in y2025 and "nursing_bed_share_2022" not in y2025
    assert "centre_coverage" not in y2023  # a 2025 target
    assert len(load_rules("xian_2021")) == len(y2025 | y2023 | {"nursing_bed_share_2022"})


def write(tmp_path: Path, text: str, name: str = "my_rules.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


GOOD = """\
jurisdiction: {zh: 测试市, en: Test City}
extends: xian_2021
rules:
  - id: nursing_bed_share
    threshold: 0.65
    clause: 第9条
  - id: station_floor_area
    enabled: false
"""


def test_user_file_extends_shipped_with_partial_override(tmp_path):
    rules = load_rules(write(tmp_path, GOOD), plan_year=2025)
    r = rules["nursing_bed_share"]
    assert (r.threshold, r.clause, r.measure, r.scope) == (0.65, "第9条", "nursing_bed_share", "district")
    assert r.source.startswith("西安市")  # inherited field
    assert "station_floor_area" not in {x.id for x in rules}
    assert rules.jurisdiction == {"zh": "测试市", "en": "Test City"}
    assert rules.files[0].name == "my_rules.yaml"


BAD_RULES = """\
jurisdiction: {zh: 坏, en: Bad}
rules:
  - id: a
    title: {zh: 甲, en: A}
    measure: land_per_person
    threshold: 0.2
    unit: m²
    scope: township
    applies_from: 2025
    source: s
    clause: c
  - id: b
    title: {zh: 乙, en: B}
    measure: land_per_resident
    unit: m²
    scope: township
    applies_from: 2025
    source: s
    clause: c
  - id: c
    title: {zh: 丙, en: C}
    measure: land_per_resident
    threshold: 0.2
    unit: m²
    scope: city
    applies_from: 2025
    source: s
    clause: c
  - id: d
    title: {zh: 丁, en: D}
    measure: nursing_bed_share
    threshold: "55%"
    unit: share
    scope: district
    applies_from: next year
    source: s
    clause: c
  - id: e
    title: {zh: 戊, en: E}
    measure: nursing_bed_share
    threshold: 55
    unit: share
    scope: community
    applies_from: 2025
    source: s
    clause: c
  - title: {zh: 己, en: F}
"""


def test_malformed_rules_are_all_reported_with_file_rule_and_field(tmp_path):
    path = write(tmp_path, BAD_RULES)
    with pytest.raises(NormsError) as info:
        load_rules(path)
    msg = str(info.value)
    assert str(path) in msg
    assert "rule `a` (#1): field `measure`: unknown measure 'land_per_person'" in msg
    assert "rule `b` (#2): field `threshold` is missing" in msg
    assert "rule `c` (#3): field `scope`: 'city' is not one of" in msg
    assert "rule `d` (#4): field `threshold` must be a non-negative number, got '55%'" in msg
    assert "rule `d` (#4): field `applies_from` must be a year such as 2025, got 'next year'" in msg
    assert "rule `e` (#5): field `threshold` of share measure 'nursing_bed_share' must be a fraction" in msg
    assert "rule `e` (#5): field `scope`: measure 'nursing_bed_share' is checked by district or township" in msg
    assert "rule #6: field `id` is missing" in msg
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("jurisdiction: {zh: a, en: b}\nextends: atlantis_2030\nrules: []\n",
         r"my_rules\.yaml.*`extends`.*Unknown rule set 'atlantis_2030'.*xian_2021"),
        ("jurisdiction: {zh: a, en: b}\nextends: nowhere.yaml\nrules: []\n",
         r"`extends`.*nowhere\.yaml does not exist"),
        ("jurisdiction: {zh: a, en: b}\nrules:\n  - id: x\n    threshold: [1\n",
         r"my_rules\.yaml is not valid YAML at line"),
        ("rules: []\n", r"top-level field `jurisdiction` is missing"),
        ("jurisdiction: {zh: a, en: b}\nrule: []\n",
         r"top-level field `rule` is unknown.*top-level field `rules` is missing"),
        ("jurisdiction: {zh: a, en: b}\nextends: national\nrules:\n  - id: coverage_15min\n"
         "    minutes: -5\n    colour: red\n",
         r"rule `coverage_15min` \(#1\): field `colour` is unknown.*"
         r"rule `coverage_15min` \(#1\): field `minutes` must be a positive number"),
        ("jurisdiction: {zh: a, en: b}\nextends: national\nrules:\n  - id: coverage_15mins\n"
         "    threshold: 0.9\n",
         r"rule `coverage_15mins` \(#1\): no rule with id 'coverage_15mins' in the parent rule set "
         r"`national`.*field `title` is missing"),
        ("jurisdiction: {zh: a, en: b}\nrules:\n  - {id: s, title: {zh: 站, en: S}, "
         "measure: facility_floor_area, threshold: 300, unit: m², scope: facility, "
         "applies_from: 2021, source: s, clause: c}\n",
         r"rule `s` \(#1\): field `tier` is missing"),
        ("jurisdiction: {zh: a, en: b}\nrules:\n  - {id: s, title: 站, "
         "measure: facility_floor_area, threshold: 300, unit: m², scope: facility, tier: station, "
         "applies_from: 2021, source: s, clause: c}\n",
         r"field `title` must be a mapping with `zh` and `en`.*field `tier`: 'station' is not one of"),
    ],
)
def test_malformed_rule_file_messages(tmp_path, text, match):
    with pytest.raises(NormsError, match=f"(?s){match}"):
        load_rules(write(tmp_path, text))


def test_extends_cycle_and_unknown_name(tmp_path):
    write(tmp_path, "jurisdiction: {zh: a, en: a}\nextends: b.yaml\nrules: []\n", "a.yaml")
    write(tmp_path, "jurisdiction: {zh: b, en: b}\nextends: a.yaml\nrules: []\n", "b.yaml")
    with pytest.raises(NormsError, match=r"(?s)`extends` makes a cycle.*a\.yaml.*b\.yaml"):
        load_rules(tmp_path / "a.yaml")
    with pytest.raises(NormsError, match=r"Unknown rule set 'beijing'.*shaanxi_2023"):
        load_rules("beijing")


# --------------------------------------------------------------------------- land per resident
def test_land_per_resident_boundary_exactly_passes_just_below_fails(tmp_path):
    rules = one_rule(tmp_path, measure="land_per_resident", threshold=0.2, scope="township")
    t = towns((10_000, 10_000, 20_000))
    f = fac([
        {"x": 500, "y": 500, "tier": "township_centre", "land_area_m2": 1200.0},
        {"x": 600, "y": 500, "tier": "community_station", "land_area_m2": 800.0},  # T1: 2000 → 0.2
        {"x": 1500, "y": 500, "tier": "township_centre", "land_area_m2": 1999.0},  # T2: 0.1999
        {"x": 2500, "y": 500, "tier": "district_home", "land_area_m2": 2760.0},  # T3: needs 1240
    ])
    out = check(rules, townships=t, facilities=f)
    assert list(out.columns) == COLUMNS
    r1, r2, r3 = (row(out, "r1", u) for u in ("T1", "T2", "T3"))
    assert (r1.value, r1.status, r1.shortfall, r1.shortfall_text) == (0.2, "pass", 0.0, "")
    assert r2.status == "fail" and r2.value == pytest.approx(0.1999)
    assert r2.shortfall == pytest.approx(1.0)
    assert r2.shortfall_text == "还需养老服务设施用地 1 m²"
    assert r3.shortfall == pytest.approx(1240.0)
    assert r3.shortfall_text == "还需养老服务设施用地 1,240 m²"
    assert (r3.unit_name, r3.source, r3.clause, r3.threshold) == ("街道3", "测试文件", "第1条", 0.2)
    en = check(rules, townships=t, facilities=f, lang="en")
    assert row(en, "r1", "T3").shortfall_text == "needs 1,240 m² more elderly-care land"
    assert row(en, "r1", "T3").title == "rule"


def test_float_division_at_threshold_passes(tmp_path):
    # 0.6 / 3 == 0.19999999999999998 in binary floating point: still exactly 0.2 m² per resident
    assert 0.6 / 3 < 0.2
    rules = one_rule(tmp_path, measure="land_per_resident", threshold=0.2, scope="township")
    out = check(rules, townships=towns((3,)), facilities=fac([{"x": 5, "y": 5, "land_area_m2": 0.6}]))
    assert row(out, "r1").status == "pass"
    assert norms.passes(0.2 * (1 - 1e-6), 0.2) is False


def test_land_by_district_and_township_population_from_population_layer(tmp_path):
    rules = load_rules("national")
    t = towns(None, district=["区A", "区A", "区B"])
    pop = gpd.GeoDataFrame(
        {"id": ["C1", "C2", "C3", "C4"], "name": list("甲乙丙丁"),
         "population": [4000, 6000, 5000, 7000], "pop_60plus": [800, 1200, 1000, 1400]},
        geometry=[box(0, 0, 500, 1000), box(500, 0, 1000, 1000), box(1000, 0, 2000, 1000),
                  box(2000, 0, 3000, 1000)], crs=CRS)
    f = fac([{"x": 100, "y": 100, "land_area_m2": 1000.0, "tier": "district_home"},
             {"x": 1100, "y": 100, "land_area_m2": 1000.0, "tier": "township_centre"},
             {"x": 2100, "y": 100, "land_area_m2": 1400.0, "tier": "township_centre"}])
    out = check(rules, population=pop, townships=t, facilities=f)
    # townships: T1 1000/10000 = 0.1, T2 1000/5000 = 0.2, T3 1400/7000 = 0.2
    got = {r.unit_id: (r.value, r.status) for r in out[out.rule_id == "land_per_resident_township"].itertuples()}
    assert got == {"T1": (0.1, "fail"), "T2": (0.2, "pass"), "T3": (0.2, "pass")}
    # districts from the townships' `district` column: 区A = T1+T2 (2000 / 15000), 区B = T3
    d = out[out.rule_id == "land_per_resident_district"].set_index("unit_id")
    assert d.loc["区A", "value"] == pytest.approx(2000 / 15000)
    assert d.loc["区A", "shortfall"] == pytest.approx(0.2 * 15000 - 2000)
    assert d.loc["区B", "status"] == "pass"


def test_boundary_population_column_is_used_when_present(tmp_path):
    rules = one_rule(tmp_path, measure="land_per_resident", threshold=0.2, scope="township")
    pop = gpd.GeoDataFrame({"population": [1]}, geometry=[box(0, 0, 10, 10)], crs=CRS)
    out = check(rules, population=pop, townships=towns((5000,)),
                facilities=fac([{"x": 5, "y": 5, "land_area_m2": 1000.0}]))
    assert row(out, "r1").value == pytest.approx(0.2)


def test_facility_columns_win_over_location_and_names_or_ids_match(tmp_path):
    rules = one_rule(tmp_path, measure="land_per_resident", threshold=0.2, scope="township")
    f = fac([
        {"x": 500, "y": 500, "land_area_m2": 2000.0, "township": "街道2"},  # lies in T1, says T2
        {"x": 600, "y": 500, "land_area_m2": 100.0, "township": "T3"},  # by id
        {"x": 700, "y": 500, "land_area_m2": 7.0, "township": None},  # no value: by location (T1)
        {"x": 9000, "y": 500, "land_area_m2": 5000.0, "township": None},  # outside every township
    ])
    out = check(rules, townships=towns(), facilities=f)
    assert [row(out, "r1", u).value for u in ("T1", "T2", "T3")] == pytest.approx([7e-4, 0.2, 0.01])


def test_not_assessable_names_the_missing_column(tmp_path):
    rules = one_rule(tmp_path, measure="land_per_resident", threshold=0.2, scope="township")
    out = check(rules, townships=towns(), facilities=fac([{"x": 500, "y": 500, "tier": "district_home"}]))
    r1 = row(out, "r1", "T1")
    assert (r1.status, r1.missing) == ("not_assessable", "facilities.land_area_m2")
    assert math.isnan(r1.value) and math.isnan(r1.shortfall)
    # T2 has no facility at all, yet with the column absent from the layer nothing is known
    # about land: not assessable too, never a fail computed from no data (issue 13, item 13)
    assert (row(out, "r1", "T2").status, row(out, "r1", "T2").missing) == (
        "not_assessable", "facilities.land_area_m2")
    # no population anywhere
    out = check(rules, townships=towns(None), facilities=fac([{"x": 5, "y": 5, "land_area_m2": 1.0}]))
    assert set(out.status) == {"not_assessable"}
    assert row(out, "r1", "T1").missing == "population.population or townships.population"
    # no facilities layer at all
    out = check(rules, townships=towns())
    assert set(out.missing) == {"facilities"}


def test_partial_missing_values_are_a_lower_bound(tmp_path):
    rules = one_rule(tmp_path, measure="land_per_resident", threshold=0.2, scope="township")
    f = fac([{"x": 500, "y": 500, "land_area_m2": 2500.0}, {"x": 510, "y": 500, "land_area_m2": None},
             {"x": 1500, "y": 500, "land_area_m2": 100.0}, {"x": 1510, "y": 500, "land_area_m2": None}])
    out = check(rules, townships=towns(), facilities=f)
    assert row(out, "r1", "T1").status == "pass"  # known 2500 m² already enough
    r2 = row(out, "r1", "T2")
    assert (r2.status, r2.missing) == ("not_assessable", "facilities.land_area_m2 (1 facilities)")


# --------------------------------------------------------------------------- community measures
def communities(hh=(1500, 1000), **cols) -> gpd.GeoDataFrame:
    n = len(hh)
    data = {"id": [f"C{i + 1}" for i in range(n)], "name": [f"社区{i + 1}" for i in range(n)],
            "households": list(hh), "township": ["街道1"] * n}
    data.update(cols)
    return gpd.GeoDataFrame(data, geometry=[box(i * 100, 0, (i + 1) * 100, 100) for i in range(n)],
                            crs=CRS)


def test_floor_space_per_100_households(tmp_path):
    rules = one_rule(tmp_path, measure="community_floor_per_100_households", threshold=20,
                     scope="community", tier="community_station")
    f = fac([
        {"x": 50, "y": 50, "tier": "community_station", "floor_area_m2": 200.0},
        {"x": 60, "y": 50, "tier": "community_station", "floor_area_m2": 100.0},  # C1: 300 / 1500 hh
        {"x": 70, "y": 50, "tier": "township_centre", "floor_area_m2": 5000.0},  # other tier
        {"x": 150, "y": 50, "tier": "community_station", "floor_area_m2": 150.0,
         "community": "社区2"},
        {"x": 9999, "y": 50, "tier": "community_station", "floor_area_m2": 49.0, "community": "C2"},
    ])
    out = check(rules, population=communities(), facilities=f)
    c1, c2 = row(out, "r1", "C1"), row(out, "r1", "C2")
    assert (c1.value, c1.status) == (20.0, "pass")
    assert (c2.value, c2.status) == (pytest.approx(19.9), "fail")
    assert c2.shortfall == pytest.approx(1.0)
    assert c2.shortfall_text == "还需社区养老服务用房 1 m²"
    out = check(rules, population=communities().drop(columns="households"), facilities=f)
    assert set(out.missing) == {"population.households"}


def test_station_per_community_and_centre_per_township(tmp_path):
    xian = load_rules("xian_2021", plan_year=2025)
    f = fac([{"x": 50, "y": 50, "tier": "community_station"},
             {"x": 60, "y": 50, "tier": "community_station"},
             {"x": 500, "y": 500, "tier": "township_centre"}])
    out = check(xian, population=communities((100, 100, 100)), facilities=f, townships=towns())
    st = out[out.rule_id == "station_per_community"].set_index("unit_id")
    assert st["value"].to_dict() == {"C1": 2.0, "C2": 0.0, "C3": 0.0}
    assert st.loc["C2", "shortfall_text"] == "还需 1 个社区养老服务站"
    ct = out[out.rule_id == "centre_per_township"].set_index("unit_id")
    assert ct["status"].to_dict() == {"T1": "pass", "T2": "fail", "T3": "fail"}
    assert ct.loc["T2", "shortfall_text"] == "还需 1 个街镇综合养老服务中心"
    assert norms.failing_townships(out) == ["T2", "T3"]
    en = check(xian, population=communities((100,)), facilities=f, townships=towns(), lang="en")
    assert row(en, "centre_per_township", "T3").shortfall_text == "1 more township/subdistrict centre(s)"


# --------------------------------------------------------------------------- facility scope
def test_township_centre_standards_xian_annex4():
    xian = load_rules("xian_2021", plan_year=2025)
    f = fac([
        {"x": 1, "y": 1, "tier": "township_centre", "floor_area_m2": 1500.0, "beds": 30, "nursing_beds": 21},
        {"x": 2, "y": 1, "tier": "township_centre", "floor_area_m2": 1499.5, "beds": 29, "nursing_beds": 20},
        {"x": 3, "y": 1, "tier": "community_station", "floor_area_m2": 300.0},
        {"x": 4, "y": 1, "tier": "community_station", "floor_area_m2": 260.0},
        {"x": 5, "y": 1, "tier": "community_station"},
    ])
    out = check(xian, facilities=f, townships=towns())
    assert row(out, "centre_floor_area", "F1").status == "pass"
    r = row(out, "centre_floor_area", "F2")
    assert (r.status, r.shortfall, r.shortfall_text) == ("fail", 0.5, "建筑面积还差 1 m²")
    assert row(out, "centre_beds", "F1").status == "pass"
    assert row(out, "centre_beds", "F2").shortfall_text == "还需床位 1 张"
    assert row(out, "centre_nursing_share", "F1").status == "pass"  # 21 / 30 = 70 %
    r = row(out, "centre_nursing_share", "F2")  # 20 / 29 = 69 %: 0.7 * 29 = 20.3 → 1 more
    assert (r.status, r.shortfall) == ("fail", 1.0)
    assert row(out, "station_floor_area", "F3").status == "pass"
    assert row(out, "station_floor_area", "F4").shortfall == 40.0
    r = row(out, "station_floor_area", "F5")
    assert (r.status, r.missing) == ("not_assessable", "facilities.floor_area_m2")


# --------------------------------------------------------------------------- district measures
def district_case(nursing=58, beds=100, public=True):
    f = fac([
        {"x": 100, "y": 100, "tier": "district_home", "beds": beds - 40, "nursing_beds": nursing - 20,
         "public": public},
        {"x": 1100, "y": 100, "tier": "township_centre", "beds": 40, "nursing_beds": 20, "public": "是"},
        {"x": 2100, "y": 100, "tier": "community_station", "beds": 15, "nursing_beds": 0,
         "public": "是"},  # day-care beds: not institutional beds
    ])
    return f


def test_nursing_bed_share_differs_by_jurisdiction_as_documents_do():
    f = district_case(nursing=58, beds=100)  # 58 %
    got = {}
    for name in ("shaanxi_2023", "xian_2021", "sucheng_2024"):
        out = check(name, facilities=f, townships=towns(), plan_year=2025)
        r = row(out, "nursing_bed_share")
        got[name] = (r.threshold, r.status, r.shortfall)
        assert r.value == pytest.approx(0.58)
    assert got == {"shaanxi_2023": (0.55, "pass", 0.0), "xian_2021": (0.60, "fail", 2.0),
                   "sucheng_2024": (0.70, "fail", 12.0)}
    out = check("sucheng_2024", facilities=f, townships=towns(), plan_year=2025, lang="en")
    assert row(out, "nursing_bed_share").shortfall_text.startswith("needs 12 more nursing-type beds")


def test_centre_coverage_60_70_100_by_jurisdiction():
    f = fac([{"x": 500, "y": 500, "tier": "township_centre"}, {"x": 1500, "y": 500, "tier": "township_centre"}])
    got = {}
    for name in ("shaanxi_2023", "xian_2021", "sucheng_2024", "henan_2023"):
        r = row(check(name, facilities=f, townships=towns(), plan_year=2025), "centre_coverage")
        assert r.value == pytest.approx(2 / 3)
        got[name] = (r.threshold, r.status, r.shortfall, r.shortfall_text)
    assert got["shaanxi_2023"] == (0.6, "pass", 0.0, "")
    assert got["xian_2021"] == (0.7, "fail", 1.0, "还需在 1 个街镇建设综合养老服务中心")
    assert got["sucheng_2024"][:3] == (1.0, "fail", 1.0)
    assert got["henan_2023"][:3] == (1.0, "fail", 1.0)


def test_public_home_and_public_beds(tmp_path):
    xian = load_rules("xian_2021", plan_year=2025)
    t = towns(pop_60plus=[5000, 6000, 8950])  # 19,950 older residents: 1 % = 199.5 beds
    out = check(xian, facilities=district_case(beds=180), townships=t)  # public 140 + 40 = 180 beds
    assert row(out, "public_home_per_district").status == "pass"
    r = row(out, "public_beds_share")
    assert r.value == pytest.approx(180 / 19950)
    assert (r.status, r.shortfall, r.shortfall_text) == ("fail", 20.0, "还需公办养老机构床位 20 张")
    out = check(xian, facilities=district_case(beds=200, public=False), townships=t)
    r = row(out, "public_home_per_district")
    assert (r.value, r.status, r.shortfall_text) == (0.0, "fail", "还需 1 所公办养老院")
    assert row(out, "public_beds_share").value == pytest.approx(40 / 19950)
    out = check(xian, facilities=district_case().drop(columns="public"), townships=t)
    assert row(out, "public_home_per_district").missing == "facilities.public"
    assert row(out, "public_beds_share").missing == "facilities.public"
    # ownership unknown: fails for sure with no district home at all, else not assessable
    f = district_case(public=None)
    assert row(check(xian, facilities=f, townships=t), "public_home_per_district").status == "not_assessable"
    f = f[f.tier != "district_home"]
    assert row(check(xian, facilities=f, townships=t), "public_home_per_district").status == "fail"


def test_beds_and_social_workers_per_older(tmp_path):
    t = towns(pop_60plus=[1000, 1000, 1000])  # 3000 older residents
    f = district_case(beds=119)  # institutional beds: 79 + 40 = 119 (< 40 per 1000 = 120)
    out = check("shaanxi_2023", facilities=f, townships=t, plan_year=2025)
    r = row(out, "beds_per_1000_older")
    assert (r.value, r.status, r.shortfall) == (pytest.approx(119 / 3), "fail", 1.0)
    assert row(out, "social_workers_per_1000_older").missing == "facilities.social_workers"
    f["social_workers"] = [20, 10, 5]  # 35 workers, 12 per 1000 older needs 36
    out = check("shaanxi_2023", facilities=f, townships=t, plan_year=2025)
    r = row(out, "social_workers_per_1000_older")
    assert (r.value, r.status, r.shortfall_text) == (pytest.approx(35 / 3), "fail", "还需社会工作者 1 名")
    r = row(check("sucheng_2024", facilities=f, townships=t, plan_year=2025), "social_workers_per_100_beds")
    assert r.value == pytest.approx(30 / 119 * 100) and r.status == "pass"  # institutions only


def test_coverage_15min_from_access_layer(tmp_path):
    rules = load_rules("national")
    acc = gpd.GeoDataFrame({"id": ["a", "b", "c", "d"], "pop_60plus": [100, 300, 50, 50],
                            "time_min_any": [3.0, 15.0, 15.5, np.inf]},
                           geometry=[Point(10, 10), Point(20, 10), Point(1500, 10), Point(2500, 10)],
                           crs=CRS)
    out = check(rules, townships=towns(), access=acc)
    r = row(out, "coverage_15min")
    assert (r.value, r.status, r.shortfall) == (0.8, "fail", 100.0)  # 400 of 500; exactly 15 is in
    assert r.shortfall_text == "还需覆盖 100 名老年人（15 分钟步行范围内）"
    # a rule naming a tier reads that tier's times
    tiered = one_rule(tmp_path, measure="coverage_15min", threshold=1.0, scope="district",
                      tier="community_station")
    assert row(check(tiered, townships=towns(), access=acc), "r1").missing == \
        "population_access.time_min_community_station"
    acc["time_min_community_station"] = [1.0, 2.0, 3.0, 4.0]
    assert row(check(tiered, townships=towns(), access=acc), "r1").status == "pass"
    acc["within_15min"] = [True, True, True, True]
    assert row(check(rules, townships=towns(), access=acc), "coverage_15min").status == "pass"
    r = row(check(rules, townships=towns()), "coverage_15min")
    assert r.status == "not_assessable" and r.missing.startswith("population_access")


def test_coverage_by_township_scope(tmp_path):
    rules = one_rule(tmp_path, measure="coverage_15min", threshold=0.9, scope="township", minutes=10)
    acc = gpd.GeoDataFrame({"pop_60plus": [90, 10, 50], "within_10min": [True, False, False]},
                           geometry=[Point(10, 10), Point(20, 10), Point(1500, 10)], crs=CRS)
    out = check(rules, townships=towns(), access=acc).set_index("unit_id")
    assert out.loc["T1", "status"] == "pass" and out.loc["T2", "shortfall"] == 45.0
    assert out.loc["T3", "missing"].startswith("population_access.pop_60plus (no older residents")


def test_station_coverage_by_district(tmp_path):
    rules = load_rules("sucheng_2024", plan_year=2025)
    f = fac([{"x": 50, "y": 50, "tier": "community_station"}])
    out = check(rules, population=communities((10, 10, 10, 10)), facilities=f, townships=towns())
    r = row(out, "station_coverage")
    assert (r.value, r.shortfall, r.shortfall_text) == (0.25, 3.0, "还需在 3 个社区建设养老服务站")


# --------------------------------------------------------------------------- independent check
def test_land_by_township_matches_brute_force_point_in_polygon(tmp_path):
    rng = np.random.default_rng(7)
    rules = one_rule(tmp_path, measure="land_per_resident", threshold=0.2, scope="township")
    t = towns((8000, 12000, 3000))
    xs, ys = rng.uniform(-200, 3200, 60), rng.uniform(-100, 1100, 60)
    land = rng.integers(100, 900, 60).astype(float)
    f = fac([{"x": x, "y": y, "land_area_m2": a} for x, y, a in zip(xs, ys, land)])
    out = check(rules, townships=t, facilities=f).set_index("unit_id")
    for poly, tid, popn in zip(t.geometry, t.id, t.population):
        total = sum(a for x, y, a in zip(xs, ys, land) if poly.contains(Point(x, y)))
        assert out.loc[tid, "value"] == pytest.approx(total / popn)
        assert out.loc[tid, "status"] == ("pass" if total / popn >= 0.2 else "fail")
        assert out.loc[tid, "shortfall"] == pytest.approx(max(0.2 * popn - total, 0.0))


# --------------------------------------------------------------------------- township layer
def test_township_status_worst_and_hover_text():
    xian = load_rules("xian_2021", plan_year=2025)
    f = fac([{"x": 500, "y": 500, "tier": "township_centre", "floor_area_m2": 2000.0, "beds": 40,
              "nursing_beds": 30, "land_area_m2": 2000.0}])
    t = towns()
    table = norms._check(xian, population=None, facilities=f, townships=t, districts=None,
                         access=None, lang="zh", plan_year=None)
    layer = norms.township_status(table, t)
    assert list(layer.norm_status) == ["pass", "fail", "fail"]
    assert list(layer.n_fail) == [0, 2, 2]  # no centre, too little land
    assert "一镇街一中心 还需 1 个街镇综合养老服务中心（三、（一）2）" in layer.norm_text.iloc[1]
    assert layer.norm_text.iloc[0] == "达标"
    assert layer.norm_text.iloc[1].startswith("未达标 2 项：")
    assert layer.crs == t.crs and len(layer) == 3


# --------------------------------------------------------------------------- run_step
def _scenario(**norm):
    from planner.pipeline.settings import NormsSettings, Scenario

    return Scenario(name="t", layers={}, norms=NormsSettings(**norm))


def test_run_step_stores_table_layer_and_skips_without_section(tmp_path):
    from planner.pipeline import RunResult, steps

    res = RunResult(scenario=_scenario(rules="sucheng_2024", plan_year=2025))
    assert steps.norms(res) == "needs a population or facilities layer"
    res.layers["townships"] = towns()
    res.layers["facilities"] = fac([{"x": 500, "y": 500, "tier": "township_centre"}])
    assert steps.norms(res) is None
    table = res.tables["norm_checks"]
    assert list(table.columns) == COLUMNS
    assert row(table, "centre_coverage").threshold == 1.0
    # T1: its centre has no land area (not assessable); T2, T3: no centre, no land
    assert list(res.layers["township_norms"].norm_status) == ["not_assessable", "fail", "fail"]
    res.scenario.norms = None
    assert steps.norms(res) == "no `norms:` section in the scenario"
    path = write(tmp_path, GOOD)
    res = RunResult(scenario=_scenario(rules=path.name, plan_year=2025).model_copy(
        update={"base_dir": tmp_path}))
    res.layers["facilities"] = fac([{"x": 500, "y": 500, "tier": "township_centre"}])
    assert steps.norms(res) is None
    assert row(res.tables["norm_checks"], "nursing_bed_share").threshold == 0.65


# --------------------------------------------------------------------------- demo district
DEMO = Path(norms.__file__).parents[1] / "data"


@pytest.fixture(scope="module")
def demo_raw():
    if not (DEMO / "demo.gpkg").is_file():
        pytest.skip("demo data not generated yet")
    comm = gpd.read_file(DEMO / "demo.gpkg", layer="communities")
    towns_ = gpd.read_file(DEMO / "demo.gpkg", layer="townships")
    fac_raw = pd.read_csv(DEMO / "demo_facilities.csv", dtype={"编号": str})
    return comm, towns_, fac_raw


@pytest.fixture(scope="module")
def demo_checks(demo_raw):
    comm, towns_, fac_raw = demo_raw
    tiers = {"养老院": "district_home", "综合养老服务中心": "township_centre",
             "社区养老服务站": "community_station", "日间照料中心": "community_station",
             "互助幸福院": "rural_point"}
    f = pd.DataFrame({
        "id": fac_raw["编号"], "name": fac_raw["名称"], "tier": fac_raw["类型"].map(tiers),
        "beds": fac_raw["床位数"], "nursing_beds": fac_raw["护理型床位数"],
        "floor_area_m2": fac_raw["建筑面积"], "land_area_m2": fac_raw["用地面积"],
        "public": fac_raw["是否公办"], "social_workers": fac_raw["社工人数"],
        "township": fac_raw["所属街道"], "community": fac_raw["所属社区"],
    })
    return check("xian_2021", plan_year=2025, population=comm, facilities=f, townships=towns_)


def test_demo_fails_the_norms_it_was_built_to_fail(demo_raw, demo_checks):
    comm, towns_, fac_raw = demo_raw
    out = demo_checks
    # land per resident by township, recomputed with plain pandas sums
    land = fac_raw.groupby("所属街道")["用地面积"].sum()
    pop = comm.groupby("township")["population"].sum()
    lt = out[out.rule_id == "land_per_resident_township"].set_index("unit_name")
    for town in ("东城街道", "西河街道", "南山街道"):
        ratio = land.get(town, 0) / pop[town]
        assert lt.loc[town, "value"] == pytest.approx(ratio)
        assert lt.loc[town, "shortfall"] == pytest.approx(max(0.2 * pop[town] - land.get(town, 0), 0))
    assert lt["status"].to_dict() == {"东城街道": "fail", "西河街道": "pass", "南山街道": "fail"}
    # one centre per township: 南山街道 has none; 2 of 3 covered < 70 % (Xi'an 2025)
    ct = out[out.rule_id == "centre_per_township"].set_index("unit_name")["status"]
    assert ct.to_dict() == {"东城街道": "pass", "西河街道": "pass", "南山街道": "fail"}
    r = row(out, "centre_coverage")
    assert (r.value, r.status) == (pytest.approx(2 / 3), "fail")
    # centre floor area: 西河 1280 m², 220 m² short; stations under 300 m²
    r = out[(out.rule_id == "centre_floor_area") & (out.status == "fail")]
    assert list(r.unit_name) == ["西河街道综合养老服务中心"] and list(r.shortfall) == [220.0]
    stations = fac_raw[fac_raw["类型"].isin(["社区养老服务站", "日间照料中心"])]
    small = stations[stations["建筑面积"] < 300]
    r = out[(out.rule_id == "station_floor_area") & (out.status == "fail")]
    assert sorted(r.unit_name) == sorted(small["名称"])
    assert sorted(r.shortfall) == sorted(300.0 - small["建筑面积"])
    assert len(small) == 2
    # one station per community: communities without a station in the register
    with_station = set(stations["所属社区"])
    st = out[out.rule_id == "station_per_community"]
    assert set(st[st.status == "fail"].unit_name) == set(comm.name) - with_station
    assert (st.status == "fail").sum() == len(comm) - len(with_station)
    # public institution beds (nursing homes and centres) below 1 % of the 60+ population
    inst = fac_raw[fac_raw["类型"].isin(["养老院", "综合养老服务中心"]) & (fac_raw["是否公办"] == "是")]
    older = comm["pop_60plus"].sum()
    r = row(out, "public_beds_share")
    assert r.value == pytest.approx(inst["床位数"].sum() / older)
    assert r.status == "fail"
    assert r.shortfall == math.ceil(0.01 * older - inst["床位数"].sum())
    # coverage needs the access step: not assessable here, naming what is missing
    assert row(out, "coverage_15min").missing.startswith("population_access")


def test_demo_scenario_norms_step_matches_direct_check(demo_checks):
    from planner.pipeline import demo_scenario_path, run

    result = run(demo_scenario_path(), steps=["layers", "norms"])
    table = result.tables["norm_checks"]
    assert list(table.columns) == COLUMNS
    key = ["rule_id", "unit_name"]
    got = table.set_index(key).sort_index()
    want = demo_checks.set_index(key).sort_index()
    assert got.index.equals(want.index)
    assert (got["status"] == want["status"]).all()
    np.testing.assert_allclose(got["value"], want["value"], rtol=1e-12)
    layer = result.layers["township_norms"]
    assert list(layer.name) == ["东城街道", "西河街道", "南山街道"]
    assert set(layer.norm_status) == {"fail"}
    assert "一镇街一中心" in layer.set_index("name").loc["南山街道", "norm_text"]


def test_unmatched_names_and_duplicate_ids_warn(tmp_path):
    from planner._errors import PlannerWarning

    rules = one_rule(tmp_path, measure="land_per_resident", threshold=0.2, scope="township")
    f = fac([{"x": 500, "y": 500, "land_area_m2": 2000.0, "township": "街道一"},  # typo: in T1
             {"x": 9000, "y": 500, "land_area_m2": 9.0, "township": "邻区街道"}])  # outside
    with pytest.warns(PlannerWarning, match=r"2 value\(s\) of `facilities.township` match no name.*"
                                            r"'街道一', '邻区街道'"):
        out = check(rules, townships=towns(), facilities=f)
    assert row(out, "r1", "T1").value == pytest.approx(0.2)  # placed by location instead
    f = fac([{"x": 500, "y": 500, "land_area_m2": 1000.0, "id": "A"},
             {"x": 600, "y": 500, "land_area_m2": 1000.0, "id": "A"}])
    with pytest.warns(PlannerWarning, match=r"`facilities` has 2 rows with duplicate ids \(e.g. 'A'\)"):
        out = check(rules, townships=towns(), facilities=f)
    assert row(out, "r1", "T1").value == pytest.approx(0.2)  # both kept


def _norm_text(text: str) -> str:
    """Half-width punctuation, no spaces, no private-use characters (PDF-extraction debris:
    document 000 has U+E010 inside "12人以上")."""
    table = str.maketrans("，、；：（）“”【】", ",,;:()\"\"[]")
    text = "".join(ch for ch in text if not 0xE000 <= ord(ch) <= 0xF8FF)
    return "".join(text.translate(table).split())


def test_rule_quotes_appear_verbatim_in_the_source_documents():
    from conftest import SHARED

    seeds = SHARED / "seeds"
    if not seeds.is_dir():
        pytest.skip(f"source documents not found at {seeds} (../shared is absent)")
    corpus = _norm_text("".join(p.read_text(encoding="utf-8") for p in sorted(seeds.glob("*.txt"))))
    checked = 0
    for name in norms.shipped_rule_sets():
        for r in load_rules(name):
            for part in filter(None, r.quote.split("……")):
                assert _norm_text(part) in corpus, (name, r.id, part)
                checked += 1
    assert checked > 30


def test_ruleset_helpers():
    rules = load_rules("sucheng_2024", plan_year=2025)
    frame = rules.to_frame(lang="en")
    assert list(frame.rule_id) == [r.id for r in rules]
    assert frame.set_index("rule_id").loc["nursing_bed_share", "title"] == "Share of nursing-type beds"
    with pytest.raises(KeyError, match="no rule with id 'nope'"):
        rules["nope"]
    assert "Sucheng" in repr(rules) and "plan year 2025" in repr(rules)


def test_missing_layers_are_named():
    xian = load_rules("xian_2021", plan_year=2025)
    pop = communities((100, 100)).drop(columns="township")
    out = check(xian, population=pop)
    r = row(out, "centre_per_township")
    assert (r.status, r.unit_id) == ("not_assessable", "")
    assert r.missing == "townships (layer, or a `township` column in population)"
    st = out[out.rule_id == "station_per_community"]
    assert list(st.missing) == ["facilities", "facilities"]
    # without districts, the whole study area is one unit, named in the table's language
    assert row(out, "public_home_per_district").unit_name == "研究范围"
    assert row(check(xian, population=pop, lang="en"), "public_home_per_district").unit_name == \
        "study area"


# Every rule in force in plan year 2025, per shipped jurisdiction: (threshold, clause, file it
# comes from), read off the source documents by hand (seeds/000-004; NORMS.md).  Rules not
# listed for a jurisdiction are inherited from the national defaults (secondary sources).
NATIONAL_2025 = {
    "land_per_resident_district": (0.2, "人均用地0.1—0.3平方米", "national"),
    "land_per_resident_township": (0.2, "人均用地0.1—0.3平方米，分区分级规划", "national"),
    "community_floor_per_100hh": (20, "新建居住区每百户不低于20平方米（已建成区不低于15平方米）",
                                  "national"),
    "coverage_15min": (1.0, "第2.0.2条、表3.0.4（15分钟生活圈居住区，步行距离800—1000米）",
                       "national"),
    "beds_per_1000_older": (40, "第3.2.1条（每千名老年人不少于40床）", "national"),
}
SHAANXI_2025 = {
    **NATIONAL_2025,
    "coverage_15min": (1.0, "二、（五）15", "shaanxi_2023"),  # 一刻钟养老服务圈基本形成
    "nursing_bed_share": (0.55, "二、（四）12", "shaanxi_2023"),  # 护理型床位占比不低于55%
    "public_home_per_district": (1, "二、（四）12", "shaanxi_2023"),
    "centre_per_township": (1, "二、（五）15", "shaanxi_2023"),
    "centre_coverage": (0.6, "二、（五）15", "shaanxi_2023"),  # 覆盖率不低于60%
    "social_workers_per_1000_older": (12, "二、（六）21", "shaanxi_2023"),  # 12人以上
}
EXPECTED_2025 = {
    "national": NATIONAL_2025,
    "shaanxi_2023": SHAANXI_2025,
    "xian_2021": {
        **SHAANXI_2025,
        "land_per_resident_district": (0.2, "三、（五）17", "xian_2021"),  # 人均用地0.1—0.3平方米
        "land_per_resident_township": (0.2, "三、（五）17", "xian_2021"),
        "community_floor_per_100hh": (20, "三、（一）1", "xian_2021"),  # 每百户不低于20平方米
        "coverage_15min": (1.0, "三、（一）1", "xian_2021"),  # 15分钟养老圈
        "station_per_community": (1, "三、（一）1", "xian_2021"),
        "station_floor_area": (300, "三、（一）1；附件4", "xian_2021"),
        "centre_per_township": (1, "三、（一）2", "xian_2021"),
        "centre_floor_area": (1500, "三、（一）2；附件4", "xian_2021"),
        "centre_beds": (30, "三、（一）2；附件4", "xian_2021"),
        "centre_nursing_share": (0.7, "三、（一）2；附件4", "xian_2021"),
        "public_home_per_district": (1, "三、（一）3", "xian_2021"),
        "public_beds_share": (0.01, "三、（一）3；附件4", "xian_2021"),  # 老年人口的1%
        "nursing_bed_share": (0.6, "二", "xian_2021"),  # 到2025年……不低于60%
        "centre_coverage": (0.7, "二", "xian_2021"),  # 镇街综合养老服务中心覆盖率达70%
        "social_workers_per_100_beds": (1, "三、（五）18", "xian_2021"),
    },
    "sucheng_2024": {
        **NATIONAL_2025,
        "land_per_resident_district": (0.2, "三、（一）", "sucheng_2024"),  # 不少于0.2平方米
        "land_per_resident_township": (0.2, "三、（一）", "sucheng_2024"),
        "community_floor_per_100hh": (20, "二、（二）4（引宿政办发〔2023〕44号）", "sucheng_2024"),
        "station_coverage": (1.0, "二、（二）4", "sucheng_2024"),
        "centre_per_township": (1, "一、（二）", "sucheng_2024"),
        "centre_coverage": (1.0, "一、（二）", "sucheng_2024"),
        "public_home_per_district": (1, "二、（二）3", "sucheng_2024"),
        "nursing_bed_share": (0.7, "一、（二）", "sucheng_2024"),
        "coverage_15min": (1.0, "二、（五）13", "sucheng_2024"),
        "social_workers_per_1000_older": (1, "一、（二）；三、（三）", "sucheng_2024"),
        "social_workers_per_100_beds": (1, "一、（二）；三、（三）", "sucheng_2024"),
    },
    "shanxi_2023": {
        **NATIONAL_2025,
        "coverage_15min": (1.0, "二、（四）12", "shanxi_2023"),  # 一刻钟社区居家养老服务圈
        "public_home_per_district": (1, "二、（四）13", "shanxi_2023"),
    },
    "henan_2023": {
        **NATIONAL_2025,
        "centre_per_township": (1, "二、（三）10", "henan_2023"),  # 街道和社区养老服务设施全覆盖
        "centre_coverage": (1.0, "二、（三）10", "henan_2023"),
        "station_coverage": (1.0, "二、（三）10", "henan_2023"),
    },
}


@pytest.mark.parametrize("name", sorted(EXPECTED_2025))
def test_thresholds_and_clauses_per_jurisdiction_as_in_the_documents(name):
    rules = load_rules(name, plan_year=2025)
    got = {r.id: (r.threshold, r.clause, Path(r.file).stem) for r in rules}
    assert got == EXPECTED_2025[name]


def test_xian_before_2025_uses_its_own_2021_targets():
    y2023 = load_rules("xian_2021", plan_year=2023)
    assert y2023["nursing_bed_share_2022"].threshold == 0.55  # 二: 到2022年……不低于55%
    sw = y2023["social_workers_per_1000_older_2021"]  # 三（五）18: 每千名老年人……1名社会工作者
    assert (sw.threshold, sw.clause, sw.measure) == (1, "三、（五）18", "social_workers_per_1000_older")
    assert "social_workers_per_1000_older" not in {r.id for r in y2023}  # Shaanxi's 12: from 2025
    assert "social_workers_per_1000_older_2021" not in {r.id for r in load_rules("xian_2021",
                                                                                  plan_year=2025)}


def test_switching_jurisdiction_changes_exactly_the_rules_whose_numbers_differ():
    # one district, 3000 older residents, 100 institutional beds of which 58 nursing-type,
    # 2 of 3 townships with a centre, 9 social workers (3 per 1000 older residents)
    t = towns(pop_60plus=[1000, 1000, 1000])
    f = fac([{"x": 500, "y": 500, "tier": "township_centre", "beds": 60, "nursing_beds": 38,
              "public": True, "social_workers": 5},
             {"x": 1500, "y": 500, "tier": "township_centre", "beds": 40, "nursing_beds": 20,
              "public": True, "social_workers": 4}])
    status = {}
    for name in ("shaanxi_2023", "xian_2021", "sucheng_2024", "henan_2023", "shanxi_2023"):
        out = check(name, facilities=f, townships=t, plan_year=2025)
        out = out[out.measure.isin(["nursing_bed_share", "township_centre_coverage",
                                    "social_workers_per_1000_older"])]
        status[name] = {r.measure: (r.threshold, r.status) for r in out.itertuples()}
    assert status == {
        "shaanxi_2023": {"nursing_bed_share": (0.55, "pass"), "township_centre_coverage": (0.6, "pass"),
                         "social_workers_per_1000_older": (12, "fail")},
        "xian_2021": {"nursing_bed_share": (0.6, "fail"), "township_centre_coverage": (0.7, "fail"),
                      "social_workers_per_1000_older": (12, "fail")},
        "sucheng_2024": {"nursing_bed_share": (0.7, "fail"), "township_centre_coverage": (1.0, "fail"),
                         "social_workers_per_1000_older": (1, "pass")},
        "henan_2023": {"township_centre_coverage": (1.0, "fail")},
        "shanxi_2023": {},
    }


def test_units_are_shown_in_the_table_language():
    f = district_case()
    zh = check("xian_2021", facilities=f, townships=towns(pop_60plus=[10, 10, 10]), plan_year=2025)
    en = check("xian_2021", facilities=f, townships=towns(pop_60plus=[10, 10, 10]), plan_year=2025,
               lang="en")
    assert row(zh, "land_per_resident_township", "T1").unit == "m²/人"
    assert row(en, "land_per_resident_township", "T1").unit == "m² per resident"
    assert row(en, "beds_per_1000_older").unit == "beds per 1000 older residents"
    assert row(en, "nursing_bed_share").unit == "share"
    cjk = [u for u in set(en.unit) if any("\u4e00" <= ch <= "\u9fff" for ch in u)]
    assert cjk == []


def test_centre_rules_for_subdistricts_leave_towns_out():
    # Xi'an 三（一）2: a centre in every *urban subdistrict* (towns only "有条件的镇也要积极建设");
    # Sucheng 一（二）: 街道 centre coverage 100 %; Xi'an 二: 镇街 (both kinds) coverage 70 %
    t = towns(None).assign(name=["东关街道", "灞桥镇", "洪庆街道办"])
    f = fac([{"x": 500, "y": 500, "tier": "township_centre"}])  # in 东关街道 only
    xian = check("xian_2021", facilities=f, townships=t, plan_year=2025)
    per = xian[xian.rule_id == "centre_per_township"].set_index("unit_name")["status"].to_dict()
    assert per == {"东关街道": "pass", "洪庆街道办": "fail"}  # the town is not required to
    assert row(xian, "centre_coverage").value == pytest.approx(1 / 3)  # 镇街: all three count
    su = row(check("sucheng_2024", facilities=f, townships=t, plan_year=2025), "centre_coverage")
    assert (su.value, su.shortfall) == (0.5, 1.0)  # 1 of the 2 subdistricts
    # an explicit `kind` column wins over the name; unknown kinds are checked
    t2 = t.assign(name=["甲", "乙", "丙"], kind=["街道", "镇", None])
    per = check("xian_2021", facilities=f, townships=t2, plan_year=2025)
    per = per[per.rule_id == "centre_per_township"].set_index("unit_id")["status"].to_dict()
    assert per == {"T1": "pass", "T3": "fail"}
    # a district of towns only: subdistrict coverage cannot be computed, and says why
    t3 = t.assign(name=["甲镇", "乙镇", "丙乡"])
    r = row(check("sucheng_2024", facilities=f, townships=t3, plan_year=2025), "centre_coverage")
    assert r.status == "not_assessable" and "no subdistrict inside this unit" in r.missing


def test_township_kind_is_validated(tmp_path):
    with pytest.raises(NormsError, match=r"field `township_kind`: 'village' is not one of"):
        one_rule(tmp_path, measure="township_centre_count", threshold=1, scope="township",
                 township_kind="village")
    with pytest.raises(NormsError, match=r"`township_kind` applies only to the measures"):
        one_rule(tmp_path, measure="land_per_resident", threshold=0.2, scope="township",
                 township_kind="town")
