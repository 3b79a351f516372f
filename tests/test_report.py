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

from planner import plots, report
from planner._errors import PlannerWarning
from planner.pipeline import StepRecord, presenting
from planner.pipeline import steps as ST
from planner.pipeline.outputs import package_versions as _versions
from planner.pipeline.settings import AccessSettings, NetworkSettings, NormsSettings

DEMO = Path(report.__file__).parents[1] / "data"

# Without a CJK font (or with PLANNER_NO_CJK_FONT=1, as CI's second run) the figures the
# report embeds fall back to English and warn; tests/test_plots.py checks that warning,
# these tests check the report around it.
if plots.cjk_font() is None:
    pytestmark = pytest.mark.filterwarnings(
        "ignore:No Chinese \\(CJK\\) font:planner._errors.PlannerWarning")


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
    assert wb.sheetnames == ["汇总指标", "规范核查汇总", "分街镇覆盖", "分街镇覆盖率图", "规范核查",
                             "规划新增设施", "规划前后对比", "设施清单", "服务盲区"]
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
    assert {"名称", "类型", "床位数", "经度（WGS-84）", "纬度（WGS-84）"} <= set(heads)
    names = [fac.cell(row=i, column=heads.index("名称") + 1).value for i in range(2, 5)]
    assert EVIL in names  # stored as plain text
    tiers = [fac.cell(row=i, column=heads.index("类型") + 1).value for i in range(2, 5)]
    assert tiers == ["区县养老院", "街镇综合养老服务中心", "社区养老服务站"]
    lon = fac.cell(row=2, column=heads.index("经度（WGS-84）") + 1)
    assert isinstance(lon.value, float) and 100 < lon.value < 120
    assert lon.number_format == "0.000000"
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
    assert wb.sheetnames == ["Summary", "Norm checks by rule", "Coverage by township",
                             "Coverage chart", "Norm checks", "Facilities"]
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
                 "population.pop_60plus (分区密度法); population.pop_80plus (分区密度法)",
                 "national", "2030", "ab" * 32, "/data/pop.gpkg"):
        assert text in page, text
    assert f'<td>numpy</td><td>{_versions()["numpy"]}</td>' in page
    # provenance: one row per input with its path and hash, never the raw record
    assert ('<td>layers.population.path</td><td class="code">/data/pop.gpkg</td>'
            f'<td class="code">{"ab" * 32}</td>') in page
    assert f'<td class="code">t.dbf {"ef" * 32}; t.shp {"cd" * 32}</td>' in page
    assert "{&#39;path&#39;" not in page and "'sha256'" not in page
    assert "<iframe" not in page and "population.households" not in page
    # the appendix: failing rows first, marked for colouring; the missing data of a
    # not-assessable row is shown in its shortfall cell; clauses carry their source
    appendix = page[page.index('id="appendix-norm_checks"'):]
    assert re.search(r'<tbody>\s*<tr class="fail"><td>街镇综合养老服务中心</td>', appendix)
    assert re.search(r'<tr class="not_assessable">.*?<td>land_area_m2</td>', appendix, re.S)
    assert appendix.count("<tr class=") == len(r.tables["norm_checks"])
    assert "GB 50180-2018 附录C" in page
    # the step table in Chinese
    assert "<td>可达性分析</td><td class=\"nowrap\">完成</td>" in page


def _sections(page: str) -> list[str]:
    return re.findall(r"<h2>(.*?)</h2>", page)


def test_html_report_order_numbers_and_print_layout():
    r = _full_result()
    page = presenting.html_report(r, include_map=True)
    heads = _sections(page)
    # the per-rule summary comes right after the indicators; every check is in the appendix
    assert heads[:3] == ["主要指标", "规范核查汇总（按规则）", "覆盖地图"]
    assert heads[-1] == "附录：规范核查明细"
    summary = page[page.index('id="norm_summary"'):page.index('id="map"')]
    # rule "centre": 2 units, 1 failing (its shortfall), rule "land": 1 not assessable
    assert re.search(r'<tr class="fail"><td>街镇综合养老服务中心</td><td class="nowrap">街道/乡镇</td>'
                     r'<td class="num">1</td><td class="nowrap">个</td><td class="num">2</td>'
                     r'<td class="num">1</td><td class="num">0</td><td>缺 1 个中心</td>', summary)
    assert re.search(r'<tr class="pass"><td>养老用地</td>.*?<td class="num">2</td>'
                     r'<td class="num">0</td><td class="num">1</td>', summary)
    # numbers right-aligned with thousands separators; shares as percentages
    cov = page[page.index('id="coverage"'):page.index('id="proposed_sites"')]
    assert '<th class="num">60岁及以上人口</th>' in cov
    assert '<td class="num">500</td><td class="num">60.0%</td>' in cov
    # print: A4 with margins, page breaks before major sections, a static map in print
    assert "@page { size: A4; margin: 18mm 15mm 18mm 15mm; }" in page
    assert "section.major { break-before: page; }" in page
    assert ".planner-map, .screen-only { display: none !important; }" in page
    assert '<div class="screen-only"><iframe' in page
    fig = re.search(r'<figure class="print-only"><img src="data:image/png;base64,([^"]+)"', page)
    assert fig and base64.b64decode(fig.group(1))[:8] == b"\x89PNG\r\n\x1a\n"


def test_html_long_id_lists_wrap_and_proposed_sites_have_coordinates():
    r = _full_result()
    r.layers["blind_spots"]["unit_ids"] = "41990100100" + ",41990100100".join("123456789")
    page = presenting.html_report(r, include_map=False)
    assert "419901001001, 419901001002, 419901001003" in page  # a space after each comma
    sites = page[page.index('id="proposed_sites"'):page.index('id="before_after"')]
    assert "<th class=\"num\">经度（WGS-84）</th>" in sites
    from pyproj import Transformer

    pt = r.layers["proposed_sites"].geometry.iloc[0]
    lon, lat = Transformer.from_crs(r.crs, 4326, always_xy=True).transform(pt.x, pt.y)
    assert f'<td class="num">{lon:.6f}</td><td class="num">{lat:.6f}</td>' in sites
    assert "经纬度为 WGS-84 坐标，保留 6 位小数。" in sites


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
    # with print maps, the map's section is for the screen only (print shows the maps)
    assert '<section id="map" class="major screen-only">' in page
    assert "print-only" not in page.split("<body>")[1]


def test_run_step_writes_files(tmp_path):
    r = _full_result(out_dir=tmp_path)
    r.scenario.outputs.print_maps = False
    assert ST.report(r) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["planner.xlsx", "report.docx",
                                                         "report.html"]
    assert "<iframe" in (tmp_path / "report.html").read_text(encoding="utf-8")
    r.scenario.outputs.map = False  # no web map asked for: none embedded either
    assert ST.report(r) is None
    assert "<iframe" not in (tmp_path / "report.html").read_text(encoding="utf-8")
    r.scenario.outputs.report = False
    r.scenario.outputs.excel = False
    r.scenario.outputs.docx = False
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
    # Chinese throughout: model and method names, step statuses, units
    text = re.sub(r"<[^>]+>", " ", page.split("<body>")[1])
    text = re.sub(r'data:image/[^"]+', "", text)
    for word in ("中位点模型", "集合覆盖模型", "队列变动比法", "完成", "可达性分析"):
        assert word in text, word
    for word in ("pmedian", "lscp", "Hamilton-Perry cohort", " done ", "share"):
        assert word not in text, word
    # the Word report: the page's sections, the three print maps at 300 dpi
    import docx
    from docx.image.image import Image as DocxImage

    assert "report.docx" in names
    doc = docx.Document(str(tmp_path / "report.docx"))
    heads = [p.text for p in doc.paragraphs if p.style.name == "Heading 1"]
    assert heads == [h for h in _sections(page) if h != "覆盖地图"]  # print: the maps instead
    assert len(doc.inline_shapes) == 3
    for shape in doc.inline_shapes:
        rid = shape._inline.graphic.graphicData.pic.blipFill.blip.embed
        assert DocxImage.from_blob(doc.part.related_parts[rid].blob).horz_dpi == 300
    tables = _docx_tables_by_heading(doc)
    assert len(tables["附录：规范核查明细"]) == len(checks) + 1
    sites = tables["规划新增设施"]
    assert "中位点模型" in {row[1] for row in sites}
    assert sites[0][-2:] == ["经度（WGS-84）", "纬度（WGS-84）"]


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
        assert str(escape(w)) in page
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
    td = r"<td(?: class=\"[^\"]*\")?>"  # cells may carry alignment classes
    rows = re.findall(rf"<tr>{td}(全域|街道/乡镇)</td>{td}([^<]*)</td>{td}0</td>"
                      rf"{td}([^<]*)</td>{td}([^<]*)</td>{td}([^<]*)</td></tr>", page)
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
# --------------------------------------------------------------------------- per-rule summary
def test_norm_summary_counts_and_total_shortfall():
    checks = pd.DataFrame({
        "rule_id": ["beds"] * 3 + ["site"] * 2 + ["area"] * 2,
        "title": ["每千名老年人养老床位数"] * 3 + ["一社区一站点"] * 2 + ["面积"] * 2,
        "scope": ["district"] * 3 + ["community"] * 2 + ["facility"] * 2,
        "threshold": [40.0] * 3 + [1.0] * 2 + [300.0] * 2,
        "unit": ["张/千名老年人"] * 3 + ["个"] * 2 + ["m²"] * 2,
        "status": ["fail", "fail", "pass", "fail", "not_assessable", "not_assessable",
                   "not_assessable"],
        "shortfall": [1294.0, 6.0, 0.0, 1.0, np.nan, np.nan, np.nan],
        "shortfall_text": ["还需床位 1,294 张", "还需床位 6 张", "", "还需 1 个社区养老服务站", "", "",
                           ""],
        "source": ["GB 50437-2007"] * 3 + ["市政办发〔2021〕47号"] * 4,
        "clause": ["3.2.1"] * 3 + ["三、（一）1"] * 4,
    })
    out = report.norm_summary(checks).set_index("rule_id")
    assert list(out.index) == ["beds", "site", "area"]  # failing rules first
    assert out.loc["beds", ["n_checked", "units_fail", "units_not_assessable"]].tolist() == [3, 2, 0]
    assert out.loc["beds", "total_shortfall"] == "还需床位 1,300 张"  # 1,294 + 6
    assert out.loc["beds", "clause"] == "GB 50437-2007 3.2.1"
    assert out.loc["site", "total_shortfall"] == "还需 1 个社区养老服务站"
    assert out.loc["site", "status"] == "fail"
    assert out.loc["area", "status"] == "not_assessable" and out.loc["area", "units_fail"] == 0


# --------------------------------------------------------------------------- names in the run's language
def test_model_method_status_and_step_names_follow_lang():
    sites = pd.DataFrame({"model": ["pmedian", "mclp", "lscp"],
                          "method": ["Hamilton-Perry cohort-change ratios 2010-2020", "x", ""]})
    zh = report.translate_values(sites, "zh")
    assert zh["model"].tolist() == ["中位点模型", "最大覆盖模型", "集合覆盖模型"]
    assert zh["method"].iloc[0] == "队列变动比法（Hamilton-Perry，2010–2020年）"
    en = report.translate_values(sites, "en")
    assert en["model"].tolist() == ["p-median", "Maximal covering (MCLP)", "Set covering (LSCP)"]
    assert en["method"].iloc[0] == "Hamilton-Perry cohort-change ratios 2010-2020"
    r = _full_result()
    r.steps.append(StepRecord("locate", "skipped", 0.0, "no `locate:` section in the scenario"))
    steps = presenting.report_meta(r).steps
    assert steps[-1] == ("设施选址", "跳过", "0.00", "方案中没有 `locate:` 部分")
    assert presenting.report_meta(r, lang="en").steps[-1] == (
        "Site selection", "skipped", "0.00", "no `locate:` section in the scenario")


def _returned_reasons() -> set[str]:
    """Every reason a step returns as a literal (pipeline steps and the site plan)."""
    import ast
    from pathlib import Path

    root = Path(report.__file__).resolve().parents[1]
    found = set()
    for rel in ("pipeline/steps.py", "pipeline/presenting.py", "pipeline/outputs.py",
                "locate/plan.py"):
        tree = ast.parse((root / rel).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Return) and isinstance(node.value, ast.Constant) \
                    and isinstance(node.value.value, str):
                found.add(node.value.value)
            if isinstance(node, ast.keyword) and node.arg == "reason" \
                    and isinstance(node.value, ast.Constant):
                found.add(node.value.value)
    return found


def test_every_step_reason_has_a_chinese_text():
    from planner.pipeline.texts import REASONS, reason_text

    reasons = _returned_reasons()
    assert len(reasons) >= 15  # the scan finds the steps' reasons
    missing = sorted(r for r in reasons if r not in REASONS)
    assert missing == []
    assert all(reason_text(r, "zh") != r and reason_text(r, "en") == r for r in reasons)


# --------------------------------------------------------------------------- coordinates
def test_coordinates_name_their_datum_once_per_feature(tmp_path):
    from pyproj import Transformer

    from planner.coords import wgs84_to_gcj02

    r = make_result(lang="en")
    fac = r.layers["facilities"]
    fac["经度"], fac["纬度"] = 1.0, 2.0  # an input's own (GCJ-02) columns, as read from a CSV
    to_wgs = Transformer.from_crs(r.crs, 4326, always_xy=True)
    lon, lat = to_wgs.transform(fac.geometry.x.to_numpy(), fac.geometry.y.to_numpy())
    study = presenting.study_of(r)
    tab = report.report_tables(study)["facilities"]
    assert [c for c in tab.columns if c in ("经度", "纬度", "lon", "lat")] == ["lon", "lat"]
    assert tab["lon"].tolist() == pytest.approx(np.round(lon, 6), abs=1e-9)
    study.coordinates = "gcj02"
    gx, gy = wgs84_to_gcj02(lon, lat)
    tab = report.report_tables(study)["facilities"]
    assert tab["lon"].tolist() == pytest.approx(np.round(gx, 6), abs=1e-9)
    assert tab["lat"].tolist() == pytest.approx(np.round(gy, 6), abs=1e-9)
    assert abs(gx[0] - lon[0]) > 1e-3  # a real shift (hundreds of metres), not a relabel
    wb = load_workbook(report.excel_report(study, tmp_path / "p.xlsx"))
    heads = [c.value for c in wb["Proposed sites"][1]]
    assert heads[-2:] == ["Longitude (GCJ-02)", "Latitude (GCJ-02)"]
    study.coordinates = "cgcs2000"
    assert report.header("lat", "zh", datum="cgcs2000") == "纬度（CGCS2000）"


# --------------------------------------------------------------------------- workbook extras
def _status_rule(ws):
    """The conditional-formatting rules of a sheet: (range, formula, fill colour)."""
    out = []
    for rng in ws.conditional_formatting:
        for rule in rng.rules:
            out.append((str(rng.sqref), rule.formula[0], rule.dxf.fill.fgColor.rgb))
    return out


def test_workbook_highlights_failures_and_has_assumptions_provenance_and_chart(tmp_path):
    from openpyxl.utils import column_index_from_string

    r = _full_result()
    meta = presenting.report_meta(r)
    wb = load_workbook(report.excel_report(presenting.study_of(r), tmp_path / "p.xlsx",
                                           meta=meta))
    assert wb.sheetnames[-2:] == ["分析假设", "数据来源与版本"]
    # conditional formatting: a row is red exactly where its result cell reads 未达标
    ws = wb["规范核查"]
    rules = _status_rule(ws)
    fail = next(r_ for r_ in rules if r_[1].endswith('="未达标"'))
    letter = fail[1][1:fail[1].index("2=")]
    assert fail[0] == f"A2:{ws.cell(row=1, column=ws.max_column).column_letter}5"
    assert fail[2].endswith(report.excel.FAIL_FILL)
    col = column_index_from_string(letter)
    assert ws.cell(row=1, column=col).value == "结论"
    red = [ws.cell(row=i, column=col).value == "未达标" for i in range(2, 6)]
    assert red == (r.tables["norm_checks"]["status"] == "fail").tolist()
    assert any(r_[1].endswith('="无法评估"') for r_ in rules)
    assert _status_rule(wb["规范核查汇总"])
    # assumptions and provenance
    rows = {c[0].value: c[1].value for c in wb["分析假设"].iter_rows(min_row=2)}
    assert rows["老年人步行速度"] == "0.80 米/秒 (older_adult)" and rows["规划年"] == "2030"
    prov = [[c.value for c in row] for row in wb["数据来源与版本"].iter_rows()]
    assert ["layers.population.path", "/data/pop.gpkg", "ab" * 32] in [row[:3] for row in prov]
    assert ["numpy", _versions()["numpy"]] in [row[:2] for row in prov]
    assert ["可达性分析", "完成", 1.5, None] in prov
    # the chart: one bar series per walking time over the township rows of the sheet
    chart_ws = wb["分街镇覆盖率图"]
    assert [c.value for c in chart_ws[1]] == ["地区", "15分钟覆盖率"]
    assert [chart_ws.cell(row=i, column=1).value for i in (2, 3)] == ["新城街道", EVIL]
    assert [chart_ws.cell(row=i, column=2).value for i in (2, 3)] == [1.0, 0.0]


def test_workbook_chart_references_its_cells(tmp_path):
    # openpyxl does not read charts back: check the chart XML inside the file
    import zipfile

    r = _full_result()
    path = report.excel_report(presenting.study_of(r), tmp_path / "p.xlsx")
    with zipfile.ZipFile(path) as z:
        charts = [n for n in z.namelist() if n.startswith("xl/charts/chart")]
        assert len(charts) == 1
        xml = z.read(charts[0]).decode("utf-8")
    assert "<barChart>" in xml and '<barDir val="col"/>' in xml
    assert "'分街镇覆盖率图'!$B$2:$B$3" in xml  # the shares ...
    assert "'分街镇覆盖率图'!$A$2:$A$3" in xml  # ... by township
    assert "<strRef><f>'分街镇覆盖率图'!B1</f>" in xml  # series named by its header


# --------------------------------------------------------------------------- Word
def _docx_tables_by_heading(doc) -> dict[str, list[list[str]]]:
    """The text of every table under its Heading 1 (body order)."""
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    out, heading = {}, None
    for child in doc.element.body.iterchildren():
        if child.tag.endswith("}p"):
            para = Paragraph(child, doc)
            if para.style.name == "Heading 1":
                heading = para.text
        elif child.tag.endswith("}tbl"):
            table = Table(child, doc)
            out[heading] = [[c.text for c in row.cells] for row in table.rows]
    return out


def _rfonts(style):
    from docx.oxml.ns import qn

    f = style.element.rPr.find(qn("w:rFonts"))
    return {k.split("}")[1]: v for k, v in f.attrib.items()}


def test_word_report_sections_tables_figures_and_fonts(tmp_path):
    import docx
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.image.image import Image as DocxImage
    from docx.oxml.ns import qn

    r = _full_result(out_dir=tmp_path)
    r.scenario.outputs.print_maps = False
    assert ST.report(r) is None
    doc = docx.Document(str(tmp_path / "report.docx"))
    # headings in Word's built-in styles (navigation pane), the same sections as the page
    heads = [p.text for p in doc.paragraphs if p.style.name == "Heading 1"]
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert heads == _sections(page)
    assert [p.text for p in doc.paragraphs if p.style.name == "Title"] == [
        "养老设施规划分析报告 · t"]
    tables = _docx_tables_by_heading(doc)
    # the per-rule summary, counted here from the run's norm checks
    checks = r.tables["norm_checks"]
    summary = tables["规范核查汇总（按规则）"]
    assert summary[0][:8] == ["指标", "统计范围", "标准值", "单位", "核查单元数", "未达标单元数",
                              "无法评估单元数", "合计缺口"]
    for row in summary[1:]:
        rule = checks[checks["title"] == row[0]]
        assert row[4:7] == [str(len(rule)), str(int((rule["status"] == "fail").sum())),
                            str(int((rule["status"] == "not_assessable").sum()))]
    # the appendix holds every check, failures first
    appendix = tables["附录：规范核查明细"]
    assert len(appendix) == len(checks) + 1
    assert appendix[1][0] == "街镇综合养老服务中心" and appendix[1][6] == "未达标"
    assert {row[2] for row in appendix[1:]} == set(checks["unit_name"])  # names as plain text
    cov = tables["分街镇覆盖"]
    assert cov[1][-2:] == ["500", "60.0%"] and cov[2][-1] == "100.0%"
    ind = dict((row[0], row[1]) for row in tables["主要指标"][1:])
    assert ind["60岁及以上人口"] == "500" and ind["15分钟步行圈老年人口覆盖率"] == "60.0%"
    # real Word tables: header row repeated, numbers right-aligned, failing rows shaded
    word_tables = doc.tables
    appendix_table = next(t for t in word_tables if len(t.rows) == len(checks) + 1
                          and t.rows[0].cells[0].text == "指标")
    assert appendix_table.rows[0]._tr.trPr.find(qn("w:tblHeader")) is not None
    fail_cell = appendix_table.rows[1].cells[0]
    assert fail_cell._tc.tcPr.find(qn("w:shd")).get(qn("w:fill")) == "FDE0DC"
    cov_table = next(t for t in word_tables if t.rows[0].cells[-1].text == "15分钟覆盖率")
    assert cov_table.rows[1].cells[-1].paragraphs[0].alignment == WD_ALIGN_PARAGRAPH.RIGHT
    assert cov_table.style.name == "Table Grid"
    # one figure (no print maps: the coverage map drawn for the document) at 300 dpi
    shapes = doc.inline_shapes
    assert len(shapes) == 1
    rid = shapes[0]._inline.graphic.graphicData.pic.blipFill.blip.embed
    image = DocxImage.from_blob(doc.part.related_parts[rid].blob)
    assert image.horz_dpi == 300 and image.content_type == "image/png"
    assert image.px_width / 300 >= shapes[0].width.inches * 0.99  # 300 dpi as printed
    assert any(p.style.name == "Caption" and p.text.startswith("图 1 ") for p in doc.paragraphs)
    # East Asian fonts: 宋体 for text, 黑体 for headings, no theme font overriding them
    assert _rfonts(doc.styles["Normal"])["eastAsia"] == "宋体"
    assert _rfonts(doc.styles["Heading 1"]) == {"ascii": "Arial", "hAnsi": "Arial", "cs": "Arial",
                                                "eastAsia": "黑体"}


def test_word_report_in_english_without_figures(tmp_path):
    import docx

    r = make_result(lang="en")
    path = report.word_report(presenting.study_of(r), tmp_path / "r.docx", figures={})
    doc = docx.Document(str(path))
    heads = [p.text for p in doc.paragraphs if p.style.name == "Heading 1"]
    assert heads[:2] == ["Key indicators", "Norm checks by rule"]
    assert "Appendix: every norm check" == heads[-1] and "Coverage map" not in heads
    assert len(doc.inline_shapes) == 0
    tables = _docx_tables_by_heading(doc)
    sites = tables["Proposed sites"]
    assert sites[0][-2:] == ["Longitude (WGS-84)", "Latitude (WGS-84)"]
    assert sites[1][sites[0].index("Type")] == "Township/subdistrict centre"
