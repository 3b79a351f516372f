"""The run's report: an Excel workbook and one self-contained HTML page.

Both read the layers and tables of a `planner.study.Study`
(tables ``coverage``, ``norm_checks``, ``proposed_sites``,
``coverage_before_after``; layers ``facilities``, ``blind_spots``,
``population_access`` ...); a table that is absent is left out.

* `excel_report` writes a workbook (openpyxl): summary indicators, coverage
  by township, norm checks with their clauses, proposed sites, facility
  list, blind spots.  Chinese headers by default (``lang="en"`` for
  English), numbers stored as numbers with number formats, column widths
  set, header row frozen.
* `html_report` renders ``templates/report.html.j2`` (Jinja2, autoescaped):
  key indicators, the norm table with clauses, the interactive map (as an
  ``iframe srcdoc``), print maps (PNG data URIs), the before/after of the
  proposals, the assumptions and the inputs' provenance (hashes, versions;
  the same as ``run.json``).
"""

from __future__ import annotations

import base64
import math
import re
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from planner._schema import TIER_LABELS
from planner.checks import counted
from planner.study import ReportMeta, Study

__all__ = ["HEADERS", "SHEETS", "SOURCE_SUFFIXES", "STATUS", "TEXT", "assumption_rows",
           "compact_norm_checks", "coverage_summary", "excel_report", "header", "html_report", "indicators",
           "input_rows", "report_tables"]

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
    },
}

SHEETS = {
    "summary": {"zh": "汇总指标", "en": "Summary"},
    "coverage": {"zh": "分街镇覆盖", "en": "Coverage by township"},
    "norm_checks": {"zh": "规范核查", "en": "Norm checks"},
    "proposed_sites": {"zh": "规划新增设施", "en": "Proposed sites"},
    "facilities": {"zh": "设施清单", "en": "Facilities"},
    "blind_spots": {"zh": "服务盲区", "en": "Blind spots"},
    "before_after": {"zh": "规划前后对比", "en": "Before and after"},
    "demand_areas": {"zh": "老年人口预测", "en": "Older population projection"},
    "fca": {"zh": "设施供需比（2SFCA）", "en": "Supply-demand ratio (2SFCA)"},
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

TEXT = {
    "zh": {
        "population": "常住人口", "pop_60plus": "60岁及以上人口", "facilities": "现有养老设施",
        "coverage": "{m:g}分钟步行圈老年人口覆盖率", "blind_spots": "服务盲区",
        "blind_pop": "盲区内60岁及以上人口", "proposed": "规划新增设施",
        "newly": "新增覆盖老年人口", "checks": "规范核查（达标/未达标/无法评估）",
        "persons": "人", "count": "处", "share": "%", "report": "养老设施规划分析报告",
        "assumptions": "分析假设", "provenance": "输入数据与软件版本", "map": "交互地图",
        "print_maps": "出图", "indicators": "主要指标", "norms": "规范核查",
        "before_after": "规划前后对比", "steps": "运行步骤", "warnings": "提示",
        "speed": "老年人步行速度", "thresholds": "步行时间阈值", "circle": "生活圈",
        "estimated": "以下数据为估算值（非实际统计）：{cols}", "rules": "规范规则集",
        "plan_year": "规划年", "mps": "米/秒", "min": "分钟", "file": "文件", "hash": "校验值",
        "package": "软件包", "version": "版本", "generated": "生成时间", "scenario": "方案",
        "tiles": "底图", "no_tiles": "无在线底图（离线）", "all_pass": "全部达标",
        "tier_count": "{tier}数量", "step": "步骤", "result": "结果", "reason": "说明",
        "seconds": "用时(秒)", "lang_note": "",
        "not_counted": "未计入的登记设施（研究范围外或疑似地理编码失败，见提示）",
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
        "map": "Interactive map", "print_maps": "Print maps", "indicators": "Key indicators",
        "norms": "Norm checks", "before_after": "Before and after the proposals",
        "steps": "Run steps", "warnings": "Warnings", "speed": "Walking speed of older adults",
        "thresholds": "Walking-time thresholds", "circle": "Care circle",
        "estimated": "Estimated, not counted: {cols}", "rules": "Rule set",
        "plan_year": "Plan year", "mps": "m/s", "min": "min", "file": "File", "hash": "SHA-256",
        "package": "Package", "version": "Version", "generated": "Generated",
        "scenario": "Scenario", "tiles": "Base tiles", "no_tiles": "none (offline)",
        "all_pass": "all pass", "tier_count": "{tier}", "step": "Step", "result": "Result",
        "reason": "Note", "seconds": "Seconds", "lang_note": "",
    },
}


def _t(lang: str, key: str, **kw: Any) -> str:
    text = TEXT.get(lang, TEXT["zh"])[key]
    return text.format(**kw) if kw else text


def header(column: str, lang: Lang = "zh") -> str:
    """The display header of a canonical column name in ``lang``.

    Patterns: ``time_min_<tier>`` → walking time to the nearest ``<tier>``,
    ``within_<T>min`` → within T minutes, ``<count>_grid`` /
    ``<count>_census_grid`` / ``<count>_census_buildings`` → the count from
    that source.  Unknown columns are returned as is.
    """
    en = lang == "en"
    table = HEADERS["en" if en else "zh"]
    if column in table:
        return table[column]
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


def _translate_values(df: pd.DataFrame, lang: Lang) -> pd.DataFrame:
    df = df.copy()
    if "status" in df:
        df["status"] = df["status"].map(lambda s: STATUS[lang].get(s, s))
    if "tier" in df:
        df["tier"] = df["tier"].map(lambda t: ANY_TIER[lang] if t == "any"
                                    else TIER_LABELS.get(t, {}).get(lang, t))
    if "scope" in df:
        df["scope"] = df["scope"].map(lambda s: SCOPE[lang].get(s, s))
    return df


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
        fac = fac[counted(fac)]  # inside the study area, not a doubtful geocode
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


# ---------------------------------------------------------------- tables for both outputs
def report_tables(study: Study, *, lang: Lang | None = None) -> dict[str, pd.DataFrame]:
    """The tables of the report, keyed by sheet name (values still canonical columns)."""
    lang = lang or study.lang
    out: dict[str, pd.DataFrame] = {"summary": indicators(study, lang=lang)}
    cov = study.tables.get("coverage")
    if cov is not None and len(cov):
        cov = _frame(cov)
        if "scope" in cov and (cov["scope"] == "township").any():
            cov = cov[cov["scope"].isin(["overall", "township"])]
        out["coverage"] = cov
    for sheet, key in (("norm_checks", "norm_checks"), ("proposed_sites", "proposed_sites"),
                       ("before_after", "coverage_before_after"),
                       ("demand_areas", "demand_areas"), ("fca", "fca"),
                       ("uncoverable", "uncoverable_units"),
                       ("demand_by_unit", "demand_by_unit")):
        tab = study.tables.get(key)
        if tab is None and key == "proposed_sites":
            tab = study.layers.get("proposed_sites")
        if tab is not None and len(tab):
            out[sheet] = _frame(tab)
    fac = study.layers.get("facilities")
    if fac is not None and len(fac):
        out["facilities"] = _with_lonlat(fac)
    blind = study.layers.get("blind_spots")
    if blind is not None and len(blind):
        out["blind_spots"] = _with_lonlat(blind, centroid=True)
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


def _with_lonlat(gdf: Any, *, centroid: bool = False) -> pd.DataFrame:
    """Attribute table plus WGS-84 lon/lat of each feature's representative point."""
    df = _frame(gdf)
    if getattr(gdf, "crs", None) is not None and len(gdf):
        pts = gdf.geometry.representative_point().to_crs(4326)
        prefix = "centroid_" if centroid else ""
        df[f"{prefix}lon"] = np.round(pts.x.to_numpy(), 6)
        df[f"{prefix}lat"] = np.round(pts.y.to_numpy(), 6)
    return df


# ---------------------------------------------------------------- Excel
def _number_format(column: str, values: pd.Series) -> str | None:
    if _share_column(column):
        return "0.0%"
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return None
    if column.endswith(("_min", "minutes")) or column.startswith("time_min"):
        return "0.0"
    if column in ("lon", "lat", "centroid_lon", "centroid_lat"):
        return "0.000000"
    finite = values.dropna()
    finite = finite[np.isfinite(finite.astype(float))]
    if len(finite) and np.allclose(finite, np.round(finite)):
        return "#,##0"
    return "#,##0.00"


def _cell(value: Any) -> Any:
    """A value openpyxl stores natively (numbers as numbers, NaN as empty)."""
    if value is None:
        return None
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return None if math.isnan(v) or math.isinf(v) else v
    if isinstance(value, (list, tuple, dict, set)):
        return ", ".join(map(str, value)) if not isinstance(value, dict) else str(value)
    if pd.isna(value) if np.ndim(value) == 0 else False:
        return None
    return value if isinstance(value, (int, str)) else str(value)


def _width(text: Any) -> float:
    s = "" if text is None else str(text)
    # CJK characters take about two columns
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in s)


def _write_sheet(wb: Any, title: str, df: pd.DataFrame, lang: Lang, *,
                 summary: bool = False) -> None:
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    ws = wb.create_sheet(title=title[:31])
    shown = _translate_values(df, lang)
    columns = list(shown.columns)
    heads = [header(c, lang) for c in columns]
    ws.append(heads)
    bold = Font(bold=True)
    fill = PatternFill("solid", fgColor="DDEBF7")
    for cell in ws[1]:
        cell.font = bold
        cell.fill = fill
        cell.alignment = Alignment(vertical="center", wrap_text=False)
    for row in shown.itertuples(index=False):
        ws.append([_cell(v) for v in row])
        for cell in ws[ws.max_row]:
            # openpyxl stores a string starting with "=" as a formula: user text (a name
            # like "=HYPERLINK(...)") must stay text, never run in the planner's Excel
            if cell.data_type == "f":
                cell.data_type = "s"
    widths = [_width(h) for h in heads]
    for j, col in enumerate(columns, start=1):
        fmt = _number_format(col, df[col]) if col in df else None
        for i in range(2, len(shown) + 2):
            cell = ws.cell(row=i, column=j)
            if summary and col == "value":
                unit = shown["unit"].iloc[i - 2]
                cell.number_format = "0.0%" if unit == "share" else "#,##0"
            elif fmt and isinstance(cell.value, (int, float)) and not isinstance(cell.value, bool):
                cell.number_format = fmt
        sample = shown[col].head(200)
        widths[j - 1] = max([widths[j - 1]] + [_width(_cell(v)) for v in sample])
        ws.column_dimensions[get_column_letter(j)].width = min(60, max(8, widths[j - 1] + 2))
    if summary and "unit" in shown:
        for i in range(2, len(shown) + 2):
            if ws.cell(row=i, column=columns.index("unit") + 1).value == "share":
                ws.cell(row=i, column=columns.index("unit") + 1).value = "%"
    ws.freeze_panes = "A2"
    if len(shown):
        ws.auto_filter.ref = ws.dimensions


def excel_report(study: Study, path: str | Path, *, lang: Lang | None = None) -> Path:
    """Write the study's workbook.

    Parameters
    ----------
    study
        The layers and tables to report (`planner.study.Study`).
    path
        The ``.xlsx`` file to write.
    lang
        Header language, default the study's.

    Returns
    -------
    Path
    """
    from openpyxl import Workbook

    lang = lang or study.lang
    wb = Workbook()
    wb.remove(wb.active)
    for key, df in report_tables(study, lang=lang).items():
        _write_sheet(wb, SHEETS[key][lang], df, lang, summary=key == "summary")
    path = Path(path)
    wb.save(path)
    return path


# ---------------------------------------------------------------- HTML
def _fmt(value: Any, column: str = "") -> str:
    """Text of a table cell for the HTML report (escaping is Jinja's job)."""
    if value is None:
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return "✓" if value else "✗"
    if isinstance(value, (int, float, np.integer, np.floating)):
        v = float(value)
        if math.isnan(v):
            return "–"
        if math.isinf(v):
            return "∞"
        if _share_column(column):
            return f"{100 * v:.1f}%"
        return f"{v:,.0f}" if v == round(v) else f"{v:,.2f}"
    return str(value)


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


def _table(df: pd.DataFrame, lang: Lang, *, max_rows: int = 500) -> dict[str, Any]:
    """Headers and formatted rows of a table for the template (rows capped)."""
    shown = _translate_values(df, lang)
    cols = list(shown.columns)
    rows = [[_fmt(v, c) for v, c in zip(row, cols)]
            for row in shown.head(max_rows).itertuples(index=False)]
    status = list(df["status"].head(max_rows)) if "status" in df else [None] * len(rows)
    return {"headers": [header(c, lang) for c in cols], "rows": rows, "status": status,
            "more": max(0, len(shown) - max_rows)}


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
            method = rec.get("method")
            names.append(f"{name} ({method})" if isinstance(method, str) and method else name)
        if names:
            out.append(("⚠", _t(lang, "estimated", cols="; ".join(names))))
    if rules is not None:
        out.append((_t(lang, "rules"), rules))
        out.append((_t(lang, "plan_year"), str(plan_year)))
    out.append((_t(lang, "tiles"), tiles or _t(lang, "no_tiles")))
    return out


def input_rows(inputs: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(key, path, SHA-256) rows of the inputs' record (``run.json``'s ``inputs``)."""
    rows = []
    for key, rec in inputs.items():
        if isinstance(rec, dict):  # run.json's form: {path, sha256, bytes} or {path, files}
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


def _image_uri(path: Path) -> str:
    kind = "svg+xml" if path.suffix.lower() == ".svg" else "png"
    return f"data:image/{kind};base64," + base64.b64encode(path.read_bytes()).decode()


def html_report(
    study: Study,
    *,
    meta: ReportMeta | None = None,
    lang: Lang | None = None,
    print_maps: dict[str, Path] | None = None,
    map_html: str | None = None,
) -> str:
    """The study's report as one self-contained HTML page.

    Parameters
    ----------
    study
        The layers and tables to report (`planner.study.Study`).
    meta
        Assumptions, inputs, versions, steps and warnings (`planner.study.ReportMeta`).
    lang
        Language, default the study's.
    print_maps
        Title → PNG file of print maps to embed (as data URIs).
    map_html
        A web map page (`planner.maps.to_html`) to embed as an ``iframe srcdoc``.
    """
    import time

    from jinja2 import Environment, PackageLoader, select_autoescape

    meta = meta or ReportMeta()
    lang = lang or study.lang
    env = Environment(loader=PackageLoader("planner", "templates"),
                      autoescape=select_autoescape(["html", "j2"], default=True))
    tables = report_tables(study, lang=lang)
    summary = tables.pop("summary")
    ind = [(r.indicator, _fmt(r.value, "share") if r.unit == "share" else _fmt(r.value),
            "" if r.unit == "share" else r.unit) for r in summary.itertuples(index=False)]
    map_iframe = None
    if map_html is not None:
        from markupsafe import Markup

        from planner import maps

        map_iframe = Markup(maps.iframe_of(map_html, height_px=560))  # srcdoc escaped there
    images = [(title, _image_uri(Path(p))) for title, p in (print_maps or {}).items()]
    if "coverage" in tables:  # the long table stays in the workbook; the page gets a summary
        tables["coverage"] = coverage_summary(tables["coverage"])
    if "norm_checks" in tables:  # the full table stays in the workbook; the page gets a readable one
        tables["norm_checks"] = compact_norm_checks(tables["norm_checks"])
    sections = [(SHEETS[k][lang], _table(v, lang)) for k, v in tables.items()]
    template = env.get_template("report.html.j2")
    return template.render(
        lang=lang, t=TEXT[lang], title=f"{_t(lang, 'report')} · {study.name}",
        scenario=study.name, indicators=ind, sections=sections, map_iframe=map_iframe,
        images=images, assumptions=meta.assumptions, inputs=meta.inputs,
        versions=meta.versions, steps=meta.steps,
        warnings=meta.warnings[:50], generated=time.strftime("%Y-%m-%d %H:%M"),
        status_text=STATUS[lang],
    )
