"""Tests of planner.report: the Excel workbook and the HTML report."""

from __future__ import annotations

import base64
import re
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from markupsafe import escape
from openpyxl import load_workbook
from test_maps import EVIL, make_result

from planner import report
from planner._errors import PlannerWarning
from planner.pipeline import StepRecord, presenting
from planner.pipeline import steps as ST
from planner.pipeline.outputs import package_versions as _versions
from planner.pipeline.settings import AccessSettings, NetworkSettings, NormsSettings

DEMO = Path(report.__file__).parent / "data"


def _full_result(**kw):
    r = make_result(**kw)
    r.scenario.network = NetworkSettings(speed_mps=0.8)
    r.scenario.access = AccessSettings(thresholds_min=[5, 10, 15])
    r.scenario.norms = NormsSettings(rules="national", plan_year=2030)
    # the form run.json and planner.scenario._hash_inputs use
    r.inputs["layers.population.path"] = {"path": "/data/pop.gpkg", "sha256": "ab" * 32,
                                          "bytes": 1024}
    r.inputs["layers.townships.path"] = {"path": "/data/shp", "files": {
        "t.shp": "cd" * 32, "t.dbf": "ef" * 32}}
    r.tables["demand_columns"] = pd.DataFrame({
        "layer": ["population", "population", "population"],
        "column": ["pop_60plus", "pop_80plus", "households"], "estimated": [True, True, False],
        "method": ["dasymetric", "dasymetric", ""], "source": ["c.csv"] * 3})
    r.steps.append(StepRecord("access", "done", 1.5))
    return r


def test_indicators_known_values():
    ind = report.indicators(presenting.study_of(make_result(lang="en"))).set_index("indicator")
    assert ind.loc["Residents aged 60+", "value"] == 500
    assert ind.loc["Existing facilities", "value"] == 3
    assert ind.loc["Older residents within 15 min walk", "value"] == pytest.approx(0.6)
    assert ind.loc["Blind spots", "value"] == 1
    assert ind.loc["Residents 60+ in blind spots", "value"] == 200
    assert ind.loc["Older residents newly covered", "value"] == 150
    assert ind.loc["Norm checks: Fail", "value"] == 1
    assert ind.loc["Norm checks: Not assessable", "value"] == 1


def test_coverage_share_falls_back_to_the_layer():
    r = make_result(lang="en")
    r.tables.pop("coverage")
    ind = report.indicators(presenting.study_of(r)).set_index("indicator")
    # P1 (100) and P2 (200) of 500 older residents are within 15 minutes
    assert ind.loc["Older residents within 15 min walk", "value"] == pytest.approx(0.6)


def test_excel_workbook_chinese(tmp_path):
    path = report.excel_report(presenting.study_of(make_result()), tmp_path / "p.xlsx")
    wb = load_workbook(path)
    assert wb.sheetnames == ["汇总指标", "分街镇覆盖", "规范核查", "规划新增设施", "规划前后对比",
                             "设施清单", "服务盲区"]
    ws = wb["规范核查"]
    heads = [c.value for c in ws[1]]
    assert heads[:4] == ["规则编号", "指标", "度量", "统计范围"] and "条款" in heads
    assert "依据标准" in heads
    col = {h: i + 1 for i, h in enumerate(heads)}
    values = [ws.cell(row=i, column=col["现状值"]).value for i in range(2, 6)]
    assert values == [1, 0, 0.25, None]  # numbers as numbers, NaN as empty
    assert [ws.cell(row=i, column=col["结论"]).value for i in range(2, 6)] == [
        "达标", "未达标", "达标", "无法评估"]
    assert ws.cell(row=3, column=col["条款"]).value == "附录C"
    for sheet in wb.worksheets:
        assert sheet.freeze_panes == "A2"
        assert sheet.column_dimensions["A"].width >= 8
    cov = wb["分街镇覆盖"]
    heads = [c.value for c in cov[1]]
    share = heads.index("老年人口覆盖率") + 1
    assert cov.cell(row=2, column=share).value == pytest.approx(0.6)
    assert cov.cell(row=2, column=share).number_format == "0.0%"
    pop = heads.index("60岁及以上人口") + 1
    assert cov.cell(row=2, column=pop).number_format == "#,##0"
    fac = wb["设施清单"]
    heads = [c.value for c in fac[1]]
    assert {"名称", "类型", "床位数", "经度", "纬度"} <= set(heads)
    names = [fac.cell(row=i, column=heads.index("名称") + 1).value for i in range(2, 5)]
    assert EVIL in names  # stored as plain text
    tiers = [fac.cell(row=i, column=heads.index("类型") + 1).value for i in range(2, 5)]
    assert tiers == ["区县养老院", "街镇综合养老服务中心", "社区养老服务站"]
    lon = fac.cell(row=2, column=heads.index("经度") + 1).value
    assert isinstance(lon, float) and 100 < lon < 120
    summary = wb["汇总指标"]
    rows = {summary.cell(row=i, column=1).value: summary.cell(row=i, column=2)
            for i in range(2, summary.max_row + 1)}
    assert rows["15分钟步行圈老年人口覆盖率"].value == pytest.approx(0.6)
    assert rows["15分钟步行圈老年人口覆盖率"].number_format == "0.0%"


def test_excel_workbook_english_and_partial(tmp_path):
    r = make_result(lang="en")
    for key in ("blind_spots", "proposed_sites"):
        r.layers.pop(key)
    r.tables.pop("proposed_sites")
    r.tables.pop("coverage_before_after")
    wb = load_workbook(report.excel_report(presenting.study_of(r), tmp_path / "p.xlsx"))
    assert wb.sheetnames == ["Summary", "Coverage by township", "Norm checks", "Facilities"]
    heads = [c.value for c in wb["Norm checks"][1]]
    # English words, not the canonical snake_case names
    assert heads[:4] == ["Rule ID", "Indicator", "Measure", "Scope"] and "Clause" in heads
    assert [c.value for c in wb["Coverage by township"][1]][:4] == [
        "Type", "Walking time (min)", "Scope", "Area"]


def test_header_patterns():
    assert report.header("time_min_township_centre") == "至最近街镇综合养老服务中心步行时间(分钟)"
    assert report.header("within_15min") == "15分钟内可达"
    assert report.header("whatever") == "whatever"
    assert report.header("pop_60plus", "en") == "Residents 60+"
    assert report.header("time_min_township_centre", "en") == (
        "Walk to nearest township/subdistrict centre (min)")
    assert report.header("within_15min", "en") == "Within 15 min"
    assert report.header("share_10min", "en") == "Covered within 10 min"
    assert report.header("whatever", "en") == "whatever"
    # the 2SFCA table has Chinese headers too
    assert report.header("accessibility_per_1000") == "每千人可达供给（2SFCA）"


def test_html_report_contents():
    r = _full_result()
    page = presenting.html_report(r, include_map=False)
    assert EVIL not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    for text in ("养老设施规划分析报告", "60.0%", "规范核查", "附录C", "GB 50180-2018",
                 "未达标", "规划前后对比", "0.80 米/秒 (older_adult)", "5, 10, 15 分钟",
                 "以下数据为估算值",
                 "population.pop_60plus (dasymetric); population.pop_80plus (dasymetric)",
                 "national", "2030", "ab" * 32, "/data/pop.gpkg"):
        assert text in page, text
    assert f"<td>numpy</td><td>{_versions()['numpy']}</td>" in page
    # provenance: one row per input with its path and hash, never the raw record
    assert ("<td>layers.population.path</td><td><code>/data/pop.gpkg</code></td>"
            f"<td><code>{'ab' * 32}</code></td>") in page
    assert f"<code>t.dbf {'ef' * 32}; t.shp {'cd' * 32}</code>" in page
    assert "{&#39;path&#39;" not in page and "'sha256'" not in page
    assert "<iframe" not in page and "population.households" not in page
    # failing rows come first and are marked for colouring; the missing data of a
    # not-assessable row is shown in its shortfall cell; clauses carry their source
    assert re.search(r'<tbody>\s*<tr class="fail"><td>街镇综合养老服务中心</td>', page)
    assert re.search(r'<tr class="not_assessable">.*?<td>land_area_m2</td>', page, re.S)
    assert "GB 50180-2018 附录C" in page


def test_html_report_embeds_map_and_print_maps(tmp_path):
    png = tmp_path / "a.png"
    png.write_bytes(base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="))
    r = make_result(lang="en")
    page = presenting.html_report(r, print_maps={"Coverage <map>": png})
    assert page.count("<iframe") == 1 and "srcdoc=" in page
    assert "data:image/png;base64,iVBORw0KGgo" in page
    assert "Coverage &lt;map&gt;" in page
    assert "Elderly-care facility planning report" in page
    assert not re.search(r"<(?:script|link|img)[^>]+(?:src|href)=\"https?:", page)


def test_run_step_writes_files(tmp_path):
    r = _full_result(out_dir=tmp_path)
    r.scenario.outputs.print_maps = False
    assert ST.report(r) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["planner.xlsx", "report.html"]
    assert "<iframe" in (tmp_path / "report.html").read_text(encoding="utf-8")
    r.scenario.outputs.map = False  # no web map asked for: none embedded either
    assert ST.report(r) is None
    assert "<iframe" not in (tmp_path / "report.html").read_text(encoding="utf-8")
    r.scenario.outputs.report = False
    r.scenario.outputs.excel = False
    assert "all false" in ST.report(r)
    r.out_dir = None
    assert "no output folder" in ST.report(r)


@pytest.mark.slow
def test_demo_run_writes_map_report_workbook_and_print_maps(tmp_path):
    from planner import pipeline as scenario

    sc = scenario.load_scenario(scenario.demo_scenario_path())
    sc.outputs.print_maps = True
    with warnings.catch_warnings():
        # the demo's own warnings (e.g. uncoverable units) are checked by test_demo/test_locate;
        # here they are only recorded on the result and listed in the report
        warnings.simplefilter("ignore", PlannerWarning)
        r = scenario.run(sc, out_dir=tmp_path)
    steps = {s.name: s.status for s in r.steps}
    assert steps["maps"] == "done" and steps["report"] == "done"
    names = {p.relative_to(tmp_path).as_posix() for p in r.files}
    assert {"map.html", "report.html", "planner.xlsx", "print_maps/coverage.png",
            "print_maps/coverage.svg", "print_maps/norm_status.png"} <= names
    wb = load_workbook(tmp_path / "planner.xlsx")
    assert {"汇总指标", "分街镇覆盖", "规范核查", "设施清单"} <= set(wb.sheetnames)
    # every township of the demo appears in the coverage sheet
    cov = wb["分街镇覆盖"]
    area_col = [c.value for c in cov[1]].index("地区") + 1
    areas = {cov.cell(row=i, column=area_col).value for i in range(2, cov.max_row + 1)}
    assert set(r.layers["townships"]["name"]) <= areas
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    checks = r.tables["norm_checks"]
    assert str(checks["clause"].dropna().iloc[0]) in page
    n_fail = int((checks["status"] == "fail").sum())
    assert f'<div class="v">{n_fail} <small></small></div><div class="k">规范核查: 未达标' in page
    for w in r.warnings:  # the run's warnings are listed, escaped
        assert str(escape(w)) in page
    if steps.get("locate") == "done" and len(r.layers.get("proposed_sites", [])):
        assert "print_maps/before_after.png" in names and "规划新增设施" in page


def test_report_lists_the_font_warning_its_own_print_maps_raised(tmp_path, monkeypatch):
    # a machine without a CJK font: the print maps, drawn in the report step before
    # the page, fall back to English with a warning that the page must list
    from planner import plots

    monkeypatch.setattr(plots, "_FONT_CACHE", {"font": None})
    r = _full_result(out_dir=tmp_path)
    r.warnings.append("an earlier step's warning")
    r.scenario.outputs.map = False
    with pytest.warns(PlannerWarning, match=r"No Chinese \(CJK\) font found") as rec:
        assert ST.report(r) is None
    from planner._errors import text_of

    font = [text_of(w.message, r.lang) for w in rec if "CJK" in str(w.message)][0]
    assert r.warnings == ["an earlier step's warning", font]  # once, after the earlier one
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    for w in r.warnings:
        assert f"<li>{escape(w)}</li>" in page
    assert (tmp_path / "print_maps" / "coverage.png").is_file()


def test_excel_keeps_formula_like_names_as_text(tmp_path):
    r = make_result(lang="en")
    r.layers["facilities"].loc[0, "name"] = '=HYPERLINK("http://x.example","click")'
    wb = load_workbook(report.excel_report(presenting.study_of(r), tmp_path / "p.xlsx"))
    ws = wb["Facilities"]
    col = [c.value for c in ws[1]].index("Name") + 1
    cell = ws.cell(row=2, column=col)
    assert cell.value == '=HYPERLINK("http://x.example","click")' and cell.data_type == "s"


def test_coverage_summary_is_one_row_per_area():
    cov = make_result().tables["coverage"]
    more = cov.assign(minutes=5.0, pop_60plus_within=[100.0, 100.0, 0.0],
                      pop_60plus_share=[0.2, 1 / 3, 0.0])
    other_tier = cov.assign(tier="district_home", pop_60plus_share=0.99)
    out = report.coverage_summary(pd.concat([cov, more, other_tier], ignore_index=True))
    assert list(out.columns) == ["scope", "area", "pop_60plus", "share_15min", "share_5min"]
    assert out["area"].tolist() == ["全部", "新城街道", EVIL]
    assert out["share_15min"].tolist() == [0.6, 1.0, 0.0]
    assert out["share_5min"].tolist() == pytest.approx([0.2, 1 / 3, 0.0])
    assert out["pop_60plus"].tolist() == [500.0, 300.0, 200.0]
    assert report.header("share_15min") == "15分钟覆盖率"


def test_coverage_summary_keeps_an_area_without_older_residents():
    # 新城街道 has no older resident: its shares are not assessable (NaN), not dropped
    cov = make_result().tables["coverage"]
    cov = cov.assign(pop_60plus=[200.0, 0.0, 200.0], pop_60plus_within=[0.0, 0.0, 0.0],
                     pop_60plus_share=[0.0, np.nan, 0.0])
    out = report.coverage_summary(pd.concat([cov, cov.assign(minutes=5.0)], ignore_index=True))
    assert out["area"].tolist() == ["全部", "新城街道", EVIL]
    assert list(out.columns) == ["scope", "area", "pop_60plus", "share_15min", "share_5min"]
    assert out["share_15min"].tolist()[::2] == [0.0, 0.0] and out["share_5min"].iloc[1:2].isna().all()
    assert out["share_15min"].iloc[1:2].isna().all()
    # nobody at all: every share is NaN, the table keeps its rows and columns
    none = report.coverage_summary(cov.assign(pop_60plus=0.0, pop_60plus_share=np.nan))
    assert none.shape == (3, 4) and none["share_15min"].isna().all()


def test_run_without_older_residents_writes_the_report_with_shares_not_assessable(tmp_path):
    # the demo district with every 60+, 65+ and 80+ count zero
    pop = gpd.read_file(DEMO / "demo.gpkg", layer="communities")
    pop[["pop_60plus", "pop_65plus", "pop_80plus"]] = 0
    pop.to_file(tmp_path / "zero.gpkg", layer="communities")
    (tmp_path / "s.yaml").write_text(f"""\
name: 零老年人口
layers:
  population: {{path: zero.gpkg, layer: communities}}
  facilities: {{path: {DEMO / "demo_facilities.csv"}, coord_system: gcj02}}
  townships: {{path: {DEMO / "demo.gpkg"}, layer: townships}}
network: {{source: lines, path: {DEMO / "demo.gpkg"}, layer: roads}}
access: {{thresholds_min: [5, 10, 15]}}
outputs: {{map: false, print_maps: false}}
""", encoding="utf-8")
    from planner import pipeline

    with pytest.warns(PlannerWarning, match=r"`pop_60plus` is 0 or missing in every one of "
                                            r"the 46 population units.*not assessable"):
        r = pipeline.run(tmp_path / "s.yaml", out_dir=tmp_path / "out",
                         steps=["layers", "network", "access", "outputs", "report"])
    assert {s.name: s.status for s in r.steps}["report"] == "done"
    assert r.tables["coverage"]["pop_60plus_share"].isna().all()
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert '<div class="v">– <small></small></div><div class="k">15分钟步行圈' in page
    assert not re.search(r">\s*nan", page, re.I)  # no "nan%" card, no "nan" cell
    rows = re.findall(r"<tr><td>(全域|街道/乡镇)</td><td>([^<]*)</td><td>0</td>"
                      r"<td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td></tr>", page)
    assert len(rows) == 4 and {cell for row in rows for cell in row[2:]} == {"–"}
    assert str(escape(r.warnings[0])) in page
    wb = load_workbook(tmp_path / "out" / "planner.xlsx")
    cov = wb["分街镇覆盖"]
    heads = [c.value for c in cov[1]]
    share = heads.index("老年人口覆盖率") + 1
    assert all(cov.cell(row=i, column=share).value is None for i in range(2, cov.max_row + 1))
def test_demand_by_unit_sheet_with_source_headers(tmp_path):
    r = make_result()
    r.tables["demand_by_unit"] = pd.DataFrame({
        "id": ["c1", "c2"], "name": ["甲社区", "乙社区"], "pop_60plus": [870, 584],
        "pop_60plus_grid": [833.1, 670.5], "pop_60plus_census_buildings": [930.9, 731.4]})
    assert report.header("pop_60plus_census_grid", "en") == "Residents 60+ (census spread by grid)"
    wb = load_workbook(report.excel_report(presenting.study_of(r), tmp_path / "p.xlsx"))
    ws = wb["需求来源对比"]
    assert [c.value for c in ws[1]] == ["编号", "名称", "60岁及以上人口", "60岁及以上人口（人口格网）",
                                        "60岁及以上人口（普查按住宅建筑面积分配）"]
    assert ws.cell(row=3, column=4).value == 670.5
    assert "Demand by source" in report.html_report(presenting.study_of(r), lang="en")
