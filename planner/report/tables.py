"""The report's vocabulary and tables, shared by the HTML page, the workbook and the Word file.

Everything a reader sees is built here once, in the study's language:
column headers (`header`), values (statuses, tiers, scopes, model and
method names), the house number format (`number_formats`: thousands
separators, shares as percentages, coordinates to 6 decimals, the same
format code in Excel as in the text of the HTML and Word tables), and the
tables themselves (`report_tables`, `norm_summary`, `document_sections`).
Coordinates are written in one datum, ``study.coordinates`` (WGS-84,
GCJ-02 or CGCS2000), and every coordinate column names it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from planner._schema import SYNONYMS, TIER_LABELS
from planner.checks import rows_counted
from planner.study import ReportMeta, Study

__all__ = ["ANY_TIER", "DATUMS", "HEADERS", "METHODS", "SCOPE", "SHEETS", "STATUS", "TEXT",
           "SOURCE_SUFFIXES", "Section", "assumption_rows", "cell_text", "compact_norm_checks", "coverage_summary",
           "document_sections", "header", "indicators", "input_rows", "method_text",
           "norm_summary", "number_formats", "report_tables", "translate_values",
           "with_lonlat"]

Lang = Literal["zh", "en"]

# ---------------------------------------------------------------- column names
HEADERS: dict[str, dict[str, str]] = {
    "zh": {
        "id": "编号", "name": "名称", "tier": "类型", "beds": "床位数",
        "nursing_beds": "护理型床位数",
        "floor_area_m2": "建筑面积(m²)", "land_area_m2": "用地面积(m²)", "public": "公办",
        "social_workers": "社会工作者", "township": "街道/乡镇", "district": "区县",
        "community": "社区", "population": "常住人口", "pop_60plus": "60岁及以上人口",
        "pop_65plus": "65岁及以上人口", "pop_80plus": "80岁及以上人口", "households": "户数",
        "minutes": "步行时间阈值(分钟)", "scope": "统计范围", "area": "地区",
        "n_units": "居住单元数", "n_units_within": "范围内居住单元数",
        "population_within": "范围内常住人口", "population_share": "常住人口覆盖率",
        "pop_60plus_within": "范围内60岁及以上人口", "pop_60plus_share": "老年人口覆盖率",
        "rule_id": "规则编号", "title": "指标", "measure": "度量", "unit_id": "单元编号",
        "unit_name": "单元名称", "value": "现状值", "threshold": "标准值", "unit": "单位",
        "status": "结论", "shortfall": "缺口", "shortfall_text": "缺口说明",
        "missing": "缺少数据", "source": "依据标准", "clause": "条款",
        "pop_60plus_newly_covered": "新增覆盖老年人口", "time_saved_min": "平均节省步行时间(分钟)",
        "coverage_gain": "覆盖率提高", "capacity": "容量", "indicator": "指标", "note": "说明",
        "x": "经度", "y": "纬度", "lon": "经度", "lat": "纬度", "estimated": "估算",
        "covered_before": "规划前覆盖老年人口", "covered_after": "规划后覆盖老年人口",
        "share_before": "规划前覆盖率", "share_after": "规划后覆盖率",
        "time_min_any": "至最近设施步行时间(分钟)", "threshold_min": "步行时间阈值(分钟)",
        "pop_60plus_before": "规划前覆盖老年人口", "pop_60plus_after": "规划后覆盖老年人口",
        "pop_60plus_gain": "新增覆盖老年人口", "model": "模型", "candidate_id": "候选地块编号",
        "pop_60plus_served": "服务老年人口", "gap_id": "盲区编号",
        "time_min_nearest": "最近设施步行时间(分钟)", "n_unreachable": "不可达居住单元数",
        "unit_ids": "居住单元编号", "nearest_id": "最近设施编号",
        "snap_m": "接入路网距离(m)", "norm_status": "达标情况", "n_fail": "未达标项数",
        "n_not_assessable": "无法评估项数", "norm_text": "核查说明", "centroid_lon": "中心经度",
        "centroid_lat": "中心纬度", "area_m2": "面积(m²)",
        "demand": "需求人口", "accessibility": "人均可达供给（2SFCA）",
        "accessibility_per_1000": "每千人可达供给（2SFCA）", "n_facilities": "步行圈内设施数",
        "nearest_candidate_id": "最近候选地块编号",
        "time_min_nearest_candidate": "至最近候选地块步行时间(分钟)",
        "group": "人群", "change": "变化", "method": "方法",
        "n_checked": "核查单元数", "units_fail": "未达标单元数",
        "units_not_assessable": "无法评估单元数", "total_shortfall": "合计缺口",
        "label": "项目", "key": "输入项", "path": "文件", "sha256": "校验值（SHA-256）",
        "package": "软件包", "version": "版本", "step": "步骤", "seconds": "用时(秒)",
        "reason": "说明", "warning": "提示", "setting": "内容", "result": "结果",
    },
    "en": {
        "id": "ID", "name": "Name", "tier": "Type", "beds": "Beds",
        "nursing_beds": "Nursing beds", "floor_area_m2": "Floor area (m²)",
        "land_area_m2": "Land area (m²)", "public": "Public", "social_workers": "Social workers",
        "township": "Township/subdistrict", "district": "District", "community": "Community",
        "population": "Residents", "pop_60plus": "Residents 60+", "pop_65plus": "Residents 65+",
        "pop_80plus": "Residents 80+", "households": "Households",
        "minutes": "Walking time (min)", "scope": "Scope", "area": "Area",
        "n_units": "Residential units", "n_units_within": "Units within",
        "population_within": "Residents within", "population_share": "Residents covered",
        "pop_60plus_within": "Residents 60+ within", "pop_60plus_share": "Residents 60+ covered",
        "rule_id": "Rule ID", "title": "Indicator", "measure": "Measure", "unit_id": "Unit ID",
        "unit_name": "Unit", "value": "Value", "threshold": "Norm", "unit": "Unit of measure",
        "status": "Result", "shortfall": "Shortfall", "shortfall_text": "Shortfall",
        "missing": "Missing data", "source": "Source", "clause": "Clause",
        "pop_60plus_newly_covered": "Residents 60+ newly covered",
        "time_saved_min": "Mean walking time saved (min)", "coverage_gain": "Coverage gain",
        "capacity": "Capacity", "indicator": "Indicator", "note": "Note",
        "x": "Longitude", "y": "Latitude", "lon": "Longitude", "lat": "Latitude",
        "estimated": "Estimated", "covered_before": "Residents 60+ covered before",
        "covered_after": "Residents 60+ covered after", "share_before": "Coverage before",
        "share_after": "Coverage after", "time_min_any": "Walk to nearest facility (min)",
        "threshold_min": "Walking time (min)", "pop_60plus_before": "Residents 60+ covered before",
        "pop_60plus_after": "Residents 60+ covered after",
        "pop_60plus_gain": "Residents 60+ newly covered", "model": "Model",
        "candidate_id": "Candidate site", "pop_60plus_served": "Residents 60+ served",
        "gap_id": "Gap area", "time_min_nearest": "Walk to nearest facility (min)",
        "n_unreachable": "Unreachable units", "unit_ids": "Unit IDs",
        "nearest_id": "Nearest facility", "snap_m": "Distance to street (m)",
        "norm_status": "Norm status", "n_fail": "Checks failed",
        "n_not_assessable": "Checks not assessable", "norm_text": "Norm notes",
        "centroid_lon": "Centre longitude", "centroid_lat": "Centre latitude",
        "area_m2": "Area (m²)", "demand": "Demand (persons)",
        "accessibility": "Supply per person in reach (2SFCA)",
        "accessibility_per_1000": "Supply per 1,000 in reach (2SFCA)",
        "n_facilities": "Facilities in reach", "group": "Group", "change": "Change",
        "method": "Method", "nearest_candidate_id": "Nearest candidate site",
        "time_min_nearest_candidate": "Walk to nearest candidate site (min)",
        "n_checked": "Units checked", "units_fail": "Units failing",
        "units_not_assessable": "Units not assessable", "total_shortfall": "Total shortfall",
        "label": "Item", "key": "Input", "path": "File", "sha256": "SHA-256",
        "package": "Package", "version": "Version", "step": "Step", "seconds": "Seconds",
        "reason": "Note", "warning": "Warning", "setting": "Value", "result": "Result",
    },
}

#: Sheet names (Excel) and section headings (HTML, Word).
SHEETS = {
    "summary": {"zh": "汇总指标", "en": "Summary"},
    "norm_summary": {"zh": "规范核查汇总", "en": "Norm checks by rule"},
    "coverage": {"zh": "分街镇覆盖", "en": "Coverage by township"},
    "coverage_chart": {"zh": "分街镇覆盖率图", "en": "Coverage chart"},
    "norm_checks": {"zh": "规范核查", "en": "Norm checks"},
    "proposed_sites": {"zh": "规划新增设施", "en": "Proposed sites"},
    "facilities": {"zh": "设施清单", "en": "Facilities"},
    "blind_spots": {"zh": "服务盲区", "en": "Blind spots"},
    "before_after": {"zh": "规划前后对比", "en": "Before and after"},
    "demand_areas": {"zh": "老年人口预测", "en": "Older population projection"},
    "fca": {"zh": "设施供需比（2SFCA）", "en": "Supply-demand ratio (2SFCA)"},
    "assumptions": {"zh": "分析假设", "en": "Assumptions"},
    "provenance": {"zh": "数据来源与版本", "en": "Provenance"},
    "steps": {"zh": "运行步骤", "en": "Run steps"},
    "warnings": {"zh": "提示", "en": "Warnings"},
    "uncoverable": {"zh": "无法覆盖的单元", "en": "Units no site can cover"},
    "demand_by_unit": {"zh": "需求来源对比", "en": "Demand by source"},
}
#: Suffixes of `planner.demand.demand_by_unit`'s columns: which source estimated them.
SOURCE_SUFFIXES = {
    "grid": {"zh": "（人口格网）", "en": " (population grid)"},
    "census_grid": {"zh": "（普查按格网分配）", "en": " (census spread by grid)"},
    "census_buildings": {"zh": "（普查按住宅建筑面积分配）",
                         "en": " (census spread by floor area)"},
}

STATUS = {"zh": {"pass": "达标", "fail": "未达标", "not_assessable": "无法评估"},
          "en": {"pass": "Pass", "fail": "Fail", "not_assessable": "Not assessable"}}
ANY_TIER = {"zh": "任一养老设施", "en": "Any facility"}
SCOPE = {"zh": {"overall": "全域", "district": "区县", "township": "街道/乡镇",
               "community": "社区", "facility": "设施"},
         "en": {"overall": "Overall", "district": "District", "township": "Township",
                "community": "Community", "facility": "Facility"}}
#: Location models by their code in ``proposed_sites.model``.
METHODS = {"zh": {"pmedian": "中位点模型", "mclp": "最大覆盖模型", "lscp": "集合覆盖模型"},
           "en": {"pmedian": "p-median", "mclp": "Maximal covering (MCLP)",
                  "lscp": "Set covering (LSCP)"}}
#: How each datum is named next to a coordinate column.
DATUMS = {"wgs84": "WGS-84", "gcj02": "GCJ-02", "cgcs2000": "CGCS2000"}
#: The unit "share" of a norm rule, as shown.
SHARE_UNIT = {"zh": "%", "en": "%"}

TEXT = {
    "zh": {
        "population": "常住人口", "pop_60plus": "60岁及以上人口", "facilities": "现有养老设施",
        "coverage": "{m:g}分钟步行圈老年人口覆盖率", "blind_spots": "服务盲区",
        "blind_pop": "盲区内60岁及以上人口", "proposed": "规划新增设施",
        "newly": "新增覆盖老年人口", "checks": "规范核查（达标/未达标/无法评估）",
        "persons": "人", "count": "处", "share": "%", "report": "养老设施规划分析报告",
        "assumptions": "分析假设", "provenance": "输入数据与软件版本", "map": "覆盖地图",
        "print_maps": "出图", "indicators": "主要指标", "norms": "规范核查",
        "before_after": "规划前后对比", "steps": "运行步骤", "warnings": "提示",
        "speed": "老年人步行速度", "thresholds": "步行时间阈值", "circle": "生活圈",
        "estimated": "以下数据为估算值（非实际统计）：{cols}", "rules": "规范规则集",
        "plan_year": "规划年", "mps": "米/秒", "min": "分钟", "file": "文件", "hash": "校验值",
        "package": "软件包", "version": "版本", "generated": "生成时间", "scenario": "方案",
        "tiles": "底图", "no_tiles": "无在线底图（离线）", "all_pass": "全部达标",
        "tier_count": "{tier}数量", "step": "步骤", "result": "结果", "reason": "说明",
        "seconds": "用时(秒)", "lang_note": "", "appendix": "附录：规范核查明细",
        "not_counted": "未计入的登记设施（研究范围外或疑似地理编码失败，见提示）",
        "norm_summary": "规范核查汇总（按规则）", "more": "另有 {n:,} 行，见 planner.xlsx",
        "figure": "图", "table": "表", "coordinates": "坐标系",
        "coords_note": "经纬度为 {datum} 坐标，保留 6 位小数。",
        "static_map": "覆盖地图（静态图，供打印）", "interactive": "交互地图见 map.html。",
        "datum_wgs84": "WGS-84", "datum_gcj02": "GCJ-02（国测局加密坐标）",
        "datum_cgcs2000": "CGCS2000（2000国家大地坐标系）",
    },
    "en": {
        "population": "Resident population", "pop_60plus": "Residents aged 60+",
        "facilities": "Existing facilities", "coverage": "Older residents within {m:g} min walk",
        "blind_spots": "Blind spots", "blind_pop": "Residents 60+ in blind spots",
        "proposed": "Proposed sites", "newly": "Older residents newly covered",
        "checks": "Norm checks (pass/fail/not assessable)", "persons": "persons", "count": "",
        "not_counted": "Register rows not counted (outside the study area or doubtful "
                       "geocodes; see the warnings)",
        "share": "%", "report": "Elderly-care facility planning report",
        "assumptions": "Assumptions", "provenance": "Inputs and software versions",
        "map": "Coverage map", "print_maps": "Print maps", "indicators": "Key indicators",
        "norms": "Norm checks", "before_after": "Before and after the proposals",
        "steps": "Run steps", "warnings": "Warnings", "speed": "Walking speed of older adults",
        "thresholds": "Walking-time thresholds", "circle": "Care circle",
        "estimated": "Estimated, not counted: {cols}", "rules": "Rule set",
        "plan_year": "Plan year", "mps": "m/s", "min": "min", "file": "File", "hash": "SHA-256",
        "package": "Package", "version": "Version", "generated": "Generated",
        "scenario": "Scenario", "tiles": "Base tiles", "no_tiles": "none (offline)",
        "all_pass": "all pass", "tier_count": "{tier}", "step": "Step", "result": "Result",
        "reason": "Note", "seconds": "Seconds", "lang_note": "",
        "appendix": "Appendix: every norm check", "norm_summary": "Norm checks by rule",
        "more": "{n:,} more rows in planner.xlsx", "figure": "Figure", "table": "Table",
        "coordinates": "Coordinates",
        "coords_note": "Longitudes and latitudes are {datum}, to 6 decimals.",
        "static_map": "Coverage map (static, for print)",
        "interactive": "The interactive map is map.html.",
        "datum_wgs84": "WGS-84", "datum_gcj02": "GCJ-02 (the Chinese offset datum)",
        "datum_cgcs2000": "CGCS2000 (China Geodetic Coordinate System 2000)",
    },
}


def _t(lang: str, key: str, **kw: Any) -> str:
    text = TEXT.get(lang, TEXT["zh"])[key]
    return text.format(**kw) if kw else text


_COORD_COLUMNS = ("lon", "lat", "centroid_lon", "centroid_lat")


def header(column: str, lang: Lang = "zh", *, datum: str | None = None) -> str:
    """The display header of a canonical column name in ``lang``.

    Patterns: ``time_min_<tier>`` → walking time to the nearest ``<tier>``,
    ``within_<T>min`` → within T minutes, ``<count>_grid`` /
    ``<count>_census_grid`` / ``<count>_census_buildings`` → the count from
    that source.  Unknown columns are returned as is.  With ``datum`` (``"wgs84"``, ``"gcj02"``, ``"cgcs2000"``) coordinate
    columns name it: ``经度（WGS-84）``.
    """
    en = lang == "en"
    table = HEADERS["en" if en else "zh"]
    if column in table:
        text = table[column]
        if datum is not None and column in _COORD_COLUMNS:
            name = DATUMS.get(datum, datum)
            text = f"{text} ({name})" if en else f"{text}（{name}）"
        return text
    m = re.fullmatch(r"time_min_(\w+)", column)
    if m and m.group(1) in TIER_LABELS:
        tier = TIER_LABELS[m.group(1)]["en" if en else "zh"]
        return f"Walk to nearest {tier[0].lower()}{tier[1:]} (min)" if en else f"至最近{tier}步行时间(分钟)"
    m = re.fullmatch(r"within_([\d.]+)min", column)
    if m:
        return f"Within {m.group(1)} min" if en else f"{m.group(1)}分钟内可达"
    m = re.fullmatch(r"share_([\d.]+)min", column)
    if m:
        return f"Covered within {m.group(1)} min" if en else f"{m.group(1)}分钟覆盖率"
    m = re.fullmatch(r"(population|pop_\w+?)_(grid|census_grid|census_buildings)", column)
    if m and m.group(1) in table:
        return table[m.group(1)] + SOURCE_SUFFIXES[m.group(2)]["en" if en else "zh"]
    return column


def _share_column(name: str) -> bool:
    return name.endswith("_share") or name.startswith("share_") or name in (
        "coverage_gain", "share")


def _frame(df: Any) -> pd.DataFrame:
    """A plain DataFrame (geometry dropped) from a DataFrame or GeoDataFrame."""
    if df is None:
        return pd.DataFrame()
    if hasattr(df, "geometry") and "geometry" in getattr(df, "columns", []):
        return pd.DataFrame(df.drop(columns=df.geometry.name))
    return pd.DataFrame(df)


# ---------------------------------------------------------------- values in the reader's language
_METHOD_ZH = [
    (re.compile(r"Hamilton-Perry cohort-change ratios (\d{4})-(\d{4})"),
     r"队列变动比法（Hamilton-Perry，\1–\2年）"),
    (re.compile(r"Hamilton-Perry cohort-change ratios \(given\)"),
     "队列变动比法（Hamilton-Perry，给定比率）"),
    (re.compile(r"cohort-component survival ratios \(life table\)"), "队列要素法（生命表存活率）"),
    (re.compile(r", with net migration"), "，含净迁移"),
    (re.compile(r"; scaled to each unit's own count"), "；按各单元自身人数缩放"),
    (re.compile(r"^census (\d{4})$"), r"\1年普查"),
    (re.compile(r"dasymetric: area totals spread by residential area"),
     "分区密度法：按居住用地面积分配地区总数"),
    (re.compile(r"dasymetric: area totals spread by (\w+)"), r"分区密度法：按 \1 分配地区总数"),
    (re.compile(r" \(overlay of residential polygons with area boundaries\)"),
     "（居住用地与行政边界叠加）"),
    (re.compile(r" \(integers by largest remainder per area\)"), "（按最大余数法取整）"),
    (re.compile(r" \(floats\)"), "（小数）"),
    (re.compile(r"unit population × its (\w+)'s census share of (\w+)"),
     r"单元常住人口 × 所在\1普查中 \2 的比例"),
    (re.compile(r"^dasymetric$"), "分区密度法"),
]


def method_text(text: Any, lang: Lang) -> Any:
    """A projection or estimation method's label in ``lang`` (the library writes English).

    Model codes (``pmedian``, ``mclp``, ``lscp``) become their names; known
    demand-method phrases are translated for Chinese; anything else is kept.
    """
    if not isinstance(text, str):
        return text
    if text in METHODS[lang]:
        return METHODS[lang][text]
    if lang != "zh":
        return text
    for pattern, repl in _METHOD_ZH:
        text = pattern.sub(repl, text)
    return text


def translate_values(df: pd.DataFrame, lang: Lang) -> pd.DataFrame:
    """Statuses, tiers, scopes, model and method names and share units in ``lang``."""
    df = df.copy()
    if "status" in df:
        df["status"] = df["status"].map(lambda s: STATUS[lang].get(s, s))
    if "norm_status" in df:
        df["norm_status"] = df["norm_status"].map(lambda s: STATUS[lang].get(s, s))
    if "tier" in df:
        df["tier"] = df["tier"].map(lambda t: ANY_TIER[lang] if t == "any"
                                    else TIER_LABELS.get(t, {}).get(lang, t))
    if "scope" in df:
        df["scope"] = df["scope"].map(lambda s: SCOPE[lang].get(s, s))
    for col in ("model", "method", "方法"):  # demand_areas comes with Chinese headers
        if col in df:
            df[col] = df[col].map(lambda v: method_text(v, lang))
    if "unit" in df:
        df["unit"] = df["unit"].map(lambda u: SHARE_UNIT[lang] if u == "share" else u)
    if "unit_ids" in df:  # long id lists: a space after each comma lets them wrap
        df["unit_ids"] = df["unit_ids"].map(
            lambda v: re.sub(r",\s*", ", ", v) if isinstance(v, str) else v)
    return df


# ---------------------------------------------------------------- the house number format
def _column_format(column: str, values: pd.Series) -> str | None:
    """Excel number format of a column (None: text)."""
    if _share_column(column):
        return "0.0%"
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return None
    if column in _COORD_COLUMNS:
        return "0.000000"
    if column.endswith(("_min", "minutes")) or column.startswith("time_min"):
        return "#,##0.0"
    if column == "seconds":
        return "#,##0.00"
    finite = pd.to_numeric(values, errors="coerce").dropna()
    finite = finite[np.isfinite(finite.astype(float))]
    if len(finite) and np.allclose(finite, np.round(finite)):
        return "#,##0"
    return "#,##0.00"


def number_formats(df: pd.DataFrame) -> pd.DataFrame:
    """The number format of every cell (Excel codes; None for text), same shape as ``df``.

    Per column (`_column_format`), except that the value and threshold of a
    norm rule have each row's own precision, as percentages where the rule
    is measured as a share (``unit == "share"``).
    """
    out = pd.DataFrame({c: [_column_format(c, df[c])] * len(df) for c in df.columns},
                       index=df.index, dtype=object)
    if "unit" in df:
        share = (df["unit"] == "share").to_numpy()
        for col in ("value", "threshold"):
            if col in df and share.any():
                out.loc[share, col] = "0.0%"
        for col in ("value", "threshold"):  # each rule in its own precision
            if col in df:
                vals = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)
                whole = np.isclose(vals, np.round(vals)) | ~np.isfinite(vals)
                out.loc[~share & whole, col] = "#,##0"
                out.loc[~share & ~whole, col] = "#,##0.00"
    return out


def cell_text(value: Any, fmt: str | None = None) -> str:
    """A cell's text in the house format (``fmt``: an Excel code from `number_formats`)."""
    if value is None:
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return "✓" if value else "✗"
    if isinstance(value, (list, tuple, set)):
        return ", ".join(map(str, value))
    if isinstance(value, (int, float, np.integer, np.floating)):
        v = float(value)
        if math.isnan(v):
            return "–"
        if math.isinf(v):
            return "∞"
        if fmt == "0.0%":
            return f"{100 * v:.1f}%"
        if fmt == "0.000000":
            return f"{v:.6f}"
        if fmt == "#,##0.0":
            return f"{v:,.1f}"
        if fmt == "#,##0":
            return f"{v:,.0f}"
        if fmt == "#,##0.00":
            return f"{v:,.2f}"
        return f"{v:,.0f}" if v == round(v) else f"{v:,.2f}"
    if value is pd.NA or value is pd.NaT:
        return "–"
    return str(value)


# ---------------------------------------------------------------- indicators
def _total_60(study: Study) -> float | None:
    for key in ("population_access", "population"):
        gdf = study.layers.get(key)
        if gdf is not None and "pop_60plus" in gdf:
            return float(pd.to_numeric(gdf["pop_60plus"], errors="coerce").sum())
    return None


def _circle_min(study: Study) -> float:
    return float(study.circle_min)


def _overall_share(study: Study) -> float | None:
    """Share of residents 60+ within the care circle, from ``coverage`` or the layer."""
    circle = _circle_min(study)
    cov = study.tables.get("coverage")
    if cov is not None and {"tier", "minutes", "scope", "pop_60plus_share"} <= set(cov.columns):
        row = cov[(cov["tier"] == "any") & (cov["scope"] == "overall")
                  & (np.isclose(cov["minutes"].astype(float), circle))]
        if len(row):
            return float(row["pop_60plus_share"].iloc[0])
    pa = study.layers.get("population_access")
    if pa is not None and "time_min_any" in pa and "pop_60plus" in pa:
        pop = pd.to_numeric(pa["pop_60plus"], errors="coerce").fillna(0).to_numpy()
        within = pa["time_min_any"].to_numpy(dtype=float) <= circle
        return float(pop[within].sum() / pop.sum()) if pop.sum() > 0 else None
    return None


def indicators(study: Study, *, lang: Lang | None = None) -> pd.DataFrame:
    """Key indicators of a run: ``indicator``, ``value``, ``unit`` (a row per indicator).

    Only indicators whose inputs exist are listed.  Shares are 0..1.  Facilities
    are counted where `planner.checks.counted` says so (inside the study area,
    not excluded); the rows left out are counted on a line of their own.
    """
    lang = lang or study.lang
    rows: list[tuple[str, float, str]] = []
    pop_layer = study.layers.get("population_access", study.layers.get("population"))
    if pop_layer is not None and "population" in pop_layer:
        rows.append((_t(lang, "population"), float(pop_layer["population"].sum()),
                     _t(lang, "persons")))
    total = _total_60(study)
    if total is not None:
        rows.append((_t(lang, "pop_60plus"), total, _t(lang, "persons")))
    fac = study.layers.get("facilities")
    if fac is not None:
        left_out = len(fac)
        fac = rows_counted(fac)  # inside the study area, not a doubtful geocode
        left_out -= len(fac)
        rows.append((_t(lang, "facilities"), float(len(fac)), _t(lang, "count")))
        if "tier" in fac:
            for tier, n in fac["tier"].value_counts(sort=False).items():
                label = TIER_LABELS.get(tier, {}).get(lang, str(tier))
                rows.append(("  " + _t(lang, "tier_count", tier=label), float(n),
                             _t(lang, "count")))
        if left_out:
            rows.append(("  " + _t(lang, "not_counted"), float(left_out), _t(lang, "count")))
    share = _overall_share(study)
    if share is not None:
        rows.append((_t(lang, "coverage", m=_circle_min(study)), share, "share"))
    blind = study.layers.get("blind_spots")
    if blind is not None:
        rows.append((_t(lang, "blind_spots"), float(len(blind)), _t(lang, "count")))
        if "pop_60plus" in blind:
            rows.append((_t(lang, "blind_pop"), float(blind["pop_60plus"].sum()),
                         _t(lang, "persons")))
    prop = study.layers.get("proposed_sites", study.tables.get("proposed_sites"))
    if prop is not None:
        rows.append((_t(lang, "proposed"), float(len(prop)), _t(lang, "count")))
        if "pop_60plus_newly_covered" in prop:
            rows.append((_t(lang, "newly"), float(prop["pop_60plus_newly_covered"].sum()),
                         _t(lang, "persons")))
    checks = study.tables.get("norm_checks")
    if checks is not None and "status" in checks:
        for status in ("pass", "fail", "not_assessable"):
            rows.append((f"{_t(lang, 'norms')}: {STATUS[lang][status]}",
                         float((checks["status"] == status).sum()), ""))
    return pd.DataFrame(rows, columns=["indicator", "value", "unit"])


# ---------------------------------------------------------------- norm checks
_NUMBER = re.compile(r"\d{1,3}(?:,\d{3})+|\d+")


def _total_shortfall_text(failing: pd.DataFrame) -> str:
    """The failing rows' shortfall texts as one: the first text with the summed amount.

    Every row of a rule words its shortfall the same way with its own
    amount ("还需床位 1,294 张", "建筑面积还差 80 m²"); the total is that
    wording with the sum of the amounts.  Rows whose text holds no amount
    (or rules without texts) give the count of failing units instead.
    """
    texts = failing["shortfall_text"].fillna("").astype(str) if "shortfall_text" in failing \
        else pd.Series([""] * len(failing))
    amounts = pd.to_numeric(failing.get("shortfall"), errors="coerce") \
        if "shortfall" in failing else pd.Series([np.nan] * len(failing))
    first = next(((t, a) for t, a in zip(texts, amounts) if t and np.isfinite(a)), None)
    if first is None:
        return ""
    text, amount = first
    shown = f"{math.ceil(amount - 1e-6):,d}"
    if shown not in text or len(failing) == 1:
        return text
    total = float(np.nansum(amounts.to_numpy(dtype=float)))
    return text.replace(shown, f"{math.ceil(total - 1e-6):,d}", 1)


def norm_summary(checks: pd.DataFrame) -> pd.DataFrame:
    """One row per rule: its title, scope, norm, units checked / failing / not assessable,
    the total shortfall and the clause cited; rules with failures first.

    Columns ``rule_id, title, scope, threshold, unit, n_checked, units_fail,
    units_not_assessable, total_shortfall, status, clause`` (``status`` is
    the rule's: ``fail`` when any unit fails, ``not_assessable`` when none
    could be assessed, else ``pass``).
    """
    if checks is None or not len(checks) or "rule_id" not in checks:
        return pd.DataFrame()
    rows = []
    for rule_id, grp in checks.groupby("rule_id", sort=False):
        status = grp["status"].astype(str) if "status" in grp else pd.Series(["pass"] * len(grp))
        n_fail = int((status == "fail").sum())
        n_na = int((status == "not_assessable").sum())
        first = grp.iloc[0]
        clause = " ".join(str(first.get(c)) for c in ("source", "clause")
                          if isinstance(first.get(c), str) and first.get(c)).strip()
        rows.append({
            "rule_id": rule_id, "title": first.get("title", rule_id),
            "scope": first.get("scope", ""), "threshold": first.get("threshold", np.nan),
            "unit": first.get("unit", ""), "n_checked": len(grp), "units_fail": n_fail,
            "units_not_assessable": n_na,
            "total_shortfall": _total_shortfall_text(grp[status == "fail"]) if n_fail else "",
            "status": "fail" if n_fail else ("not_assessable" if n_na == len(grp) else "pass"),
            "clause": clause,
        })
    out = pd.DataFrame(rows)
    order = out["status"].map({"fail": 0, "not_assessable": 1, "pass": 2}).to_numpy()
    return out.iloc[np.argsort(order, kind="stable")].reset_index(drop=True)


def compact_norm_checks(checks: pd.DataFrame) -> pd.DataFrame:
    """The norm table for reading: failures first, then not assessable, then passes.

    Keeps the columns a planner reads (rule title, scope, unit, value,
    threshold, status, shortfall and the clause cited) and folds the missing
    data into the shortfall text of "not assessable" rows.
    """
    df = checks.copy()
    if "status" in df:
        order = {"fail": 0, "not_assessable": 1, "pass": 2}
        df = df.iloc[np.argsort(df["status"].map(order).fillna(3).to_numpy(), kind="stable")]
    if {"missing", "shortfall_text"} <= set(df.columns):
        miss = df["missing"].fillna("").astype(str)
        text = df["shortfall_text"].fillna("").astype(str)
        df["shortfall_text"] = np.where((text == "") & (miss != ""), miss, text)
    if {"source", "clause"} <= set(df.columns):
        df["clause"] = (df["source"].fillna("").astype(str) + " "
                        + df["clause"].fillna("").astype(str)).str.strip()
    keep = [c for c in ("title", "scope", "unit_name", "value", "threshold", "unit", "status",
                        "shortfall_text", "clause") if c in df.columns]
    return df[keep].reset_index(drop=True)


# ---------------------------------------------------------------- coordinates
def _coordinate_columns(df: pd.DataFrame) -> list[str]:
    """Columns an input kept as its own coordinates (经度/纬度, lng/lat, x/y ...)."""
    out = []
    for c in df.columns:
        key = str(c).strip().lower()
        if SYNONYMS.get(key, SYNONYMS.get(str(c).strip())) in ("lon", "lat"):
            out.append(c)
    return out


def _lonlat(points: Any, datum: str) -> tuple[np.ndarray, np.ndarray]:
    if datum == "cgcs2000":
        pts = points.to_crs(4490)
        return pts.x.to_numpy(), pts.y.to_numpy()
    pts = points.to_crs(4326)
    x, y = pts.x.to_numpy(), pts.y.to_numpy()
    if datum == "gcj02":
        from planner.coords import wgs84_to_gcj02

        x, y = wgs84_to_gcj02(x, y)
    return np.asarray(x, dtype=float), np.asarray(y, dtype=float)


def with_lonlat(gdf: Any, *, datum: str = "wgs84", centroid: bool = False) -> pd.DataFrame:
    """Attribute table plus the lon/lat (6 decimals, in ``datum``) of each feature's point.

    The input's own coordinate columns (经度/纬度 of a CSV, in whatever datum
    it was given) are dropped, so each feature has one pair of coordinates,
    in one stated datum.  ``centroid``: name them ``centroid_lon/lat``
    (polygons; the representative point, which lies inside).
    """
    df = _frame(gdf)
    df = df.drop(columns=_coordinate_columns(df))
    if getattr(gdf, "crs", None) is not None and len(gdf):
        x, y = _lonlat(gdf.geometry.representative_point(), datum)
        prefix = "centroid_" if centroid else ""
        df[f"{prefix}lon"] = np.round(x, 6)
        df[f"{prefix}lat"] = np.round(y, 6)
    return df


# ---------------------------------------------------------------- tables for every output
def report_tables(study: Study, *, lang: Lang | None = None) -> dict[str, pd.DataFrame]:
    """The tables of the report, keyed by sheet name (values still canonical columns).

    ``summary``, ``norm_summary``, ``coverage`` (overall and per township),
    ``norm_checks``, ``proposed_sites`` (with coordinates where the layer
    exists), ``before_after``, ``demand_areas``, ``fca``, ``facilities``,
    ``blind_spots``; an absent input leaves its table out.
    """
    lang = lang or study.lang
    out: dict[str, pd.DataFrame] = {"summary": indicators(study, lang=lang)}
    checks = study.tables.get("norm_checks")
    if checks is not None and len(checks):
        out["norm_summary"] = norm_summary(_frame(checks))
    cov = study.tables.get("coverage")
    if cov is not None and len(cov):
        cov = _frame(cov)
        if "scope" in cov and (cov["scope"] == "township").any():
            cov = cov[cov["scope"].isin(["overall", "township"])]
        out["coverage"] = cov
    if checks is not None and len(checks):
        out["norm_checks"] = _frame(checks)
    sites = study.layers.get("proposed_sites")
    if sites is not None and len(sites) and getattr(sites, "crs", None) is not None:
        out["proposed_sites"] = with_lonlat(sites, datum=study.coordinates)
    else:
        tab = study.tables.get("proposed_sites")
        if tab is not None and len(tab):
            out["proposed_sites"] = _frame(tab)
    for sheet, key in (("before_after", "coverage_before_after"),
                       ("demand_areas", "demand_areas"), ("fca", "fca"),
                       ("uncoverable", "uncoverable_units"),
                       ("demand_by_unit", "demand_by_unit")):
        tab = study.tables.get(key)
        if tab is not None and len(tab):
            out[sheet] = _frame(tab)
    fac = study.layers.get("facilities")
    if fac is not None and len(fac):
        out["facilities"] = with_lonlat(fac, datum=study.coordinates)
    blind = study.layers.get("blind_spots")
    if blind is not None and len(blind):
        out["blind_spots"] = with_lonlat(blind, datum=study.coordinates, centroid=True)
    return out


def coverage_summary(coverage: pd.DataFrame) -> pd.DataFrame:
    """A compact coverage table: one row per area, the older-resident share per threshold.

    From the long ``coverage`` table of the access step, tier ``any``:
    columns ``scope, area, pop_60plus`` (or ``population``) and
    ``share_<T>min`` for every threshold T (0..1).
    """
    cov = coverage[coverage["tier"] == "any"] if "tier" in coverage else coverage
    weight = "pop_60plus" if "pop_60plus_share" in cov else "population"
    if not {"minutes", "area", f"{weight}_share"} <= set(cov.columns) or not len(cov):
        return cov
    keys = [k for k in ("scope", "area") if k in cov]
    totals = cov.drop_duplicates(keys).set_index(keys)[weight]
    # a share that is not assessable (nobody counted in the area) stays NaN ("–"):
    # pivot_table would drop those rows and columns
    wide = cov.pivot_table(index=keys, columns="minutes", values=f"{weight}_share",
                           sort=False).reindex(index=totals.index,
                                               columns=pd.unique(cov["minutes"]))
    wide.columns = [f"share_{float(m):g}min" for m in wide.columns]
    return pd.concat([totals, wide], axis=1).reset_index()


def assumption_rows(
    *,
    lang: Lang = "zh",
    speed_mps: float | None = None,
    profile: str | None = None,
    thresholds_min: list[float] | tuple[float, ...] | None = None,
    circle_min: float | None = None,
    demand_columns: pd.DataFrame | None = None,
    rules: str | None = None,
    plan_year: int | None = None,
    tiles: str | None = None,
    coordinates: str | None = None,
) -> list[tuple[str, str]]:
    """The report's assumptions as (label, value) rows; absent settings are left out.

    Parameters
    ----------
    speed_mps, profile
        Walking speed and the walking profile it came from.
    thresholds_min, circle_min
        The access thresholds and the care circle (min).
    demand_columns
        The demand step's table of estimated columns (listed with their method).
    rules, plan_year
        The rule set and plan year of the norm checks.
    tiles
        The web map's base tiles (``None``: none).
    coordinates
        The datum of the tables' longitudes/latitudes.
    """
    out: list[tuple[str, str]] = []
    if speed_mps is not None:
        prof = f" ({profile})" if profile else ""
        out.append((_t(lang, "speed"), f"{float(speed_mps):.2f} {_t(lang, 'mps')}{prof}"))
    if thresholds_min is not None:
        mins = ", ".join(f"{t:g}" for t in thresholds_min)
        out.append((_t(lang, "thresholds"), f"{mins} {_t(lang, 'min')}"))
    if circle_min is not None:
        out.append((_t(lang, "circle"), f"{circle_min:g} {_t(lang, 'min')}"))
    cols = demand_columns
    if cols is not None and len(cols) and "column" in cols:
        if "estimated" in cols:
            cols = cols[cols["estimated"].astype(bool)]
        names = []
        for rec in cols.to_dict("records"):
            name = f"{rec['layer']}.{rec['column']}" if rec.get("layer") else str(rec["column"])
            method = method_text(rec.get("method"), lang)
            names.append(f"{name} ({method})" if isinstance(method, str) and method else name)
        if names:
            out.append(("⚠", _t(lang, "estimated", cols="; ".join(names))))
    if rules is not None:
        out.append((_t(lang, "rules"), rules))
        out.append((_t(lang, "plan_year"), str(plan_year)))
    out.append((_t(lang, "tiles"), tiles or _t(lang, "no_tiles")))
    if coordinates is not None:
        out.append((_t(lang, "coordinates"), _t(lang, f"datum_{coordinates}")))
    return out


def input_rows(inputs: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(key, path, SHA-256) rows of the inputs' record (``run.json``'s ``inputs``)."""
    rows = []
    for key, rec in inputs.items():
        if isinstance(rec, dict) and "database" in rec:  # a PostGIS table or query
            path = str(rec["database"])
            digest = str(rec.get("sql") or rec.get("layer") or "")
        elif isinstance(rec, dict):  # run.json's form: {path, sha256, bytes} or {path, files}
            path = str(rec.get("path", ""))
            if "sha256" in rec:
                digest = str(rec["sha256"])
            else:  # a folder (e.g. a Shapefile's): one line per file
                digest = "; ".join(f"{name} {h}" for name, h in
                                   sorted(dict(rec.get("files") or {}).items()))
        else:  # older "path sha256:<hex>" text
            path, _, digest = str(rec).rpartition(" sha256:")
            path = path or str(rec)
        rows.append((key, path, digest))
    return rows


# ---------------------------------------------------------------- the document's sections
@dataclass
class Section:
    """One section of the report: a heading and a table (HTML, Word), or a sheet (Excel).

    ``frame`` keeps canonical columns and raw values (numbers as numbers);
    ``shown`` the same values in the reader's language; ``formats`` the
    number format of every cell; ``status`` each row's pass/fail state (for
    colouring); ``more`` rows left out of the document (they are in the
    workbook); ``appendix`` sections come after the others.
    """

    key: str
    heading: str
    frame: pd.DataFrame
    lang: Lang = "zh"
    datum: str | None = None
    note: str = ""
    appendix: bool = False
    max_rows: int | None = None
    shown: pd.DataFrame = field(init=False)
    formats: pd.DataFrame = field(init=False)

    def __post_init__(self) -> None:
        self.frame = self.frame.reset_index(drop=True)
        self.shown = translate_values(self.frame, self.lang)
        self.formats = number_formats(self.frame)

    @property
    def headers(self) -> list[str]:
        return [header(c, self.lang, datum=self.datum) for c in self.frame.columns]

    @property
    def numeric(self) -> list[bool]:
        """Per column: numbers (right-aligned)."""
        return [pd.api.types.is_numeric_dtype(self.frame[c])
                and not pd.api.types.is_bool_dtype(self.frame[c]) for c in self.frame.columns]

    @property
    def status(self) -> list[str | None]:
        col = "status" if "status" in self.frame else ("norm_status" if "norm_status"
                                                        in self.frame else None)
        if col is None:
            return [None] * len(self.frame)
        return [s if s in ("pass", "fail", "not_assessable") else None
                for s in self.frame[col].head(self._limit())]

    @property
    def more(self) -> int:
        return max(0, len(self.frame) - self._limit())

    def _limit(self) -> int:
        return len(self.frame) if self.max_rows is None else self.max_rows

    def rows(self) -> list[list[str]]:
        """The cells' texts in the house format, rows capped at ``max_rows``."""
        n = self._limit()
        shown, fmts = self.shown.head(n), self.formats.head(n)
        return [[cell_text(v, f) for v, f in zip(vals, fr)]
                for vals, fr in zip(shown.itertuples(index=False), fmts.itertuples(index=False))]


def _meta_frames(meta: ReportMeta, lang: Lang) -> dict[str, pd.DataFrame]:
    out = {}
    if meta.assumptions:
        out["assumptions"] = pd.DataFrame(meta.assumptions, columns=["label", "setting"]).astype(str)
    if meta.warnings:
        out["warnings"] = pd.DataFrame({"warning": list(meta.warnings)})
    if meta.steps:
        steps = pd.DataFrame(meta.steps, columns=["step", "status", "seconds", "reason"])
        steps["seconds"] = pd.to_numeric(steps["seconds"], errors="coerce")
        out["steps"] = steps.rename(columns={"status": "result"})
    inputs = pd.DataFrame(meta.inputs, columns=["key", "path", "sha256"])
    versions = pd.DataFrame(sorted(meta.versions.items()), columns=["package", "version"])
    if len(inputs) or len(versions):
        out["inputs"], out["versions"] = inputs, versions
    return out


def document_sections(study: Study, *, meta: ReportMeta | None = None, lang: Lang | None = None,
                      max_rows: int = 500) -> list[Section]:
    """Every table section of the report, in reading order, for the HTML page and Word file.

    Key indicators; the norm checks summarised per rule; coverage (one row
    per township); proposed sites (with coordinates); before/after;
    projection, 2SFCA, facilities, blind spots; assumptions, warnings, run
    steps and provenance; and, as an appendix, every norm check.  Long
    tables are capped at ``max_rows`` (the workbook holds every row).
    """
    meta = meta or ReportMeta()
    lang = lang or study.lang
    tables = report_tables(study, lang=lang)
    datum = study.coordinates
    out: list[Section] = []

    def add(key: str, frame: pd.DataFrame, heading: str | None = None, **kw: Any) -> None:
        if frame is not None and len(frame):
            out.append(Section(key, heading or SHEETS[key][lang], frame, lang=lang, **kw))

    summary = tables.pop("summary")
    add("summary", summary, _t(lang, "indicators"))
    rules = tables.pop("norm_summary", None)
    if rules is not None:  # the rule's title names it; its id stays in the workbook
        add("norm_summary", rules.drop(columns=["rule_id"]), _t(lang, "norm_summary"))
    if "coverage" in tables:
        add("coverage", coverage_summary(tables.pop("coverage")))
    checks = tables.pop("norm_checks", None)
    for key in ("proposed_sites", "before_after", "demand_areas", "fca", "uncoverable",
                "demand_by_unit", "facilities", "blind_spots"):
        if key in tables:
            coords = bool(set(_COORD_COLUMNS) & set(tables[key].columns))
            add(key, tables[key], datum=datum,
                note=_t(lang, "coords_note", datum=DATUMS[datum]) if coords else "",
                max_rows=max_rows)
    frames = _meta_frames(meta, lang)
    add("assumptions", frames.get("assumptions"), _t(lang, "assumptions"))
    add("warnings", frames.get("warnings"), _t(lang, "warnings"), max_rows=50)
    add("steps", frames.get("steps"), _t(lang, "steps"))
    if "inputs" in frames:
        add("inputs", frames["inputs"], _t(lang, "provenance"))
        add("versions", frames["versions"], _t(lang, "provenance") if not len(frames["inputs"])
            else f"{_t(lang, 'package')} / {_t(lang, 'version')}")
    if checks is not None:
        add("norm_checks", compact_norm_checks(checks), _t(lang, "appendix"), appendix=True,
            max_rows=max_rows)
    return out
