"""The report as an Excel workbook (openpyxl).

One sheet per table of `planner.report.tables.report_tables` (headers in
the study's language, numbers stored as numbers in the house format, the
header row frozen, filters on), plus:

* failures highlighted by conditional formatting (the norm checks and the
  per-rule summary: a row whose result is "fail" turns red, so the colour
  follows an edit of the cell);
* a coverage-by-township sheet with a bar chart (share of older residents
  within each walking time, per township);
* an assumptions sheet and a provenance sheet (the inputs' SHA-256, the
  package versions and the run's steps), from a `planner.study.ReportMeta`;
* proposed sites, facilities and blind spots with longitude/latitude to 6
  decimals, the datum named in the header.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from planner.report.tables import (
    SHEETS,
    STATUS,
    Lang,
    coverage_summary,
    header,
    number_formats,
    report_tables,
    translate_values,
)
from planner.study import ReportMeta, Study

__all__ = ["FAIL_FILL", "excel_report"]

#: Fill of a failing row (conditional formatting) and of a not-assessable one.
FAIL_FILL = "FDE0DC"
NA_FILL = "EDEDED"
_HEADER_FILL = "DDEBF7"


def _cell(value: Any) -> Any:
    """A value openpyxl stores natively (numbers as numbers, NaN as empty)."""
    import math

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


def _header_row(ws: Any, heads: list[str], row: int = 1) -> None:
    from openpyxl.styles import Alignment, Font, PatternFill

    for j, text in enumerate(heads, start=1):
        cell = ws.cell(row=row, column=j, value=text)
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor=_HEADER_FILL)
        cell.alignment = Alignment(vertical="center", wrap_text=False)


def _set_widths(ws: Any, columns: list[list[Any]]) -> None:
    from openpyxl.utils import get_column_letter

    for j, values in enumerate(columns, start=1):
        width = max([8.0] + [_width(v) for v in values[:200]])
        ws.column_dimensions[get_column_letter(j)].width = min(60, width + 2)


def _write_sheet(wb: Any, title: str, df: pd.DataFrame, lang: Lang, *, datum: str | None,
                 summary: bool = False) -> Any:
    from openpyxl.styles import Alignment

    ws = wb.create_sheet(title=title[:31])
    shown = translate_values(df, lang)
    fmts = number_formats(df)
    columns = list(shown.columns)
    heads = [header(c, lang, datum=datum) for c in columns]
    _header_row(ws, heads)
    for i, (row, frow) in enumerate(zip(shown.itertuples(index=False),
                                        fmts.itertuples(index=False)), start=2):
        for j, (value, fmt) in enumerate(zip(row, frow), start=1):
            cell = ws.cell(row=i, column=j, value=_cell(value))
            # openpyxl stores a string starting with "=" as a formula: user text (a name
            # like "=HYPERLINK(...)") must stay text, never run in the planner's Excel
            if cell.data_type == "f":
                cell.data_type = "s"
            if summary and columns[j - 1] == "value":
                fmt = "0.0%" if df["unit"].iloc[i - 2] == "share" else "#,##0"
            if fmt and isinstance(cell.value, (int, float)) and not isinstance(cell.value, bool):
                cell.number_format = fmt
                cell.alignment = Alignment(horizontal="right")
    _set_widths(ws, [[h] + [_cell(v) for v in shown[c].head(200)]
                     for h, c in zip(heads, columns)])
    ws.freeze_panes = "A2"
    if len(shown):
        ws.auto_filter.ref = ws.dimensions
    return ws


def _highlight_status(ws: Any, df: pd.DataFrame, lang: Lang, column: str = "status") -> None:
    """Conditional formatting: a row whose ``column`` reads "fail" red, "not assessable" grey."""
    from openpyxl.formatting.rule import FormulaRule
    from openpyxl.styles import PatternFill
    from openpyxl.utils import get_column_letter

    if column not in df or not len(df):
        return
    letter = get_column_letter(list(df.columns).index(column) + 1)
    last = get_column_letter(len(df.columns))
    rng = f"A2:{last}{len(df) + 1}"
    for status, color in (("fail", FAIL_FILL), ("not_assessable", NA_FILL)):
        text = STATUS[lang][status].replace('"', '""')
        ws.conditional_formatting.add(rng, FormulaRule(
            formula=[f'${letter}2="{text}"'],
            fill=PatternFill(start_color=color, end_color=color, fill_type="solid")))


def _coverage_chart(wb: Any, coverage: pd.DataFrame, lang: Lang) -> Any | None:
    """A sheet with the share of older residents within each walking time per township,
    and a clustered bar chart of it."""
    from openpyxl.chart import BarChart, Reference

    wide = coverage_summary(coverage)
    shares = [c for c in wide.columns if str(c).startswith("share_")]
    if not shares or "area" not in wide:
        return None
    if "scope" in wide and (wide["scope"] == "township").any():
        wide = wide[wide["scope"] == "township"]
    wide = wide[["area", *shares]].reset_index(drop=True)
    ws = _write_sheet(wb, SHEETS["coverage_chart"][lang], wide, lang, datum=None)
    n = len(wide)
    chart = BarChart()
    chart.type = "col"
    chart.grouping = "clustered"
    chart.title = SHEETS["coverage"][lang]
    chart.y_axis.title = header("pop_60plus_share", lang)
    chart.y_axis.number_format = "0%"
    chart.y_axis.scaling.min = 0.0
    chart.y_axis.scaling.max = 1.0
    chart.x_axis.title = header("township", lang)
    # openpyxl hides both axes unless told otherwise (delete=True by default in 3.1)
    chart.x_axis.delete = False
    chart.y_axis.delete = False
    data = Reference(ws, min_col=2, max_col=1 + len(shares), min_row=1, max_row=n + 1)
    cats = Reference(ws, min_col=1, min_row=2, max_row=n + 1)
    chart.add_data(data, titles_from_data=True)
    chart.set_categories(cats)
    chart.height, chart.width = 9, max(16, 2.2 * n)
    ws.add_chart(chart, f"{_col_letter(len(shares) + 3)}2")
    return ws


def _col_letter(j: int) -> str:
    from openpyxl.utils import get_column_letter

    return get_column_letter(j)


def _provenance_sheet(wb: Any, meta: ReportMeta, lang: Lang) -> None:
    """Inputs (key, file, SHA-256), then package versions, then the run's steps."""
    ws = wb.create_sheet(title=SHEETS["provenance"][lang][:31])
    blocks = [
        (["key", "path", "sha256"], [list(r) for r in meta.inputs]),
        (["package", "version"], [[k, v] for k, v in sorted(meta.versions.items())]),
        (["step", "result", "seconds", "reason"],
         [[n, s, _seconds(sec), r] for n, s, sec, r in meta.steps]),
    ]
    row = 1
    widths: dict[int, list[Any]] = {}
    for cols, rows in blocks:
        if not rows:
            continue
        heads = [header(c, lang) for c in cols]
        _header_row(ws, heads, row=row)
        for j, h in enumerate(heads, start=1):
            widths.setdefault(j, []).append(h)
        for values in rows:
            row += 1
            for j, v in enumerate(values, start=1):
                cell = ws.cell(row=row, column=j, value=_cell(v))
                if cell.data_type == "f":
                    cell.data_type = "s"
                if isinstance(cell.value, float):
                    cell.number_format = "#,##0.00"
                widths.setdefault(j, []).append(v)
        row += 2
    _set_widths(ws, [widths[j] for j in sorted(widths)])


def _seconds(text: Any) -> Any:
    try:
        return float(text)
    except (TypeError, ValueError):
        return text


def excel_report(study: Study, path: str | Path, *, lang: Lang | None = None,
                 meta: ReportMeta | None = None) -> Path:
    """Write the study's workbook.

    Parameters
    ----------
    study
        The layers and tables to report (`planner.study.Study`).
    path
        The ``.xlsx`` file to write.
    lang
        Header language, default the study's.
    meta
        Assumptions, inputs, versions and steps (`planner.study.ReportMeta`):
        with it the workbook gets an assumptions and a provenance sheet.

    Returns
    -------
    Path
    """
    from openpyxl import Workbook

    lang = lang or study.lang
    wb = Workbook()
    wb.remove(wb.active)
    datum = study.coordinates
    for key, df in report_tables(study, lang=lang).items():
        ws = _write_sheet(wb, SHEETS[key][lang], df, lang, datum=datum,
                          summary=key == "summary")
        if key in ("norm_checks", "norm_summary"):
            _highlight_status(ws, df, lang)
        if key == "coverage":
            _coverage_chart(wb, df, lang)
    if meta is not None:
        if meta.assumptions:
            frame = pd.DataFrame(meta.assumptions, columns=["label", "setting"]).astype(str)
            _write_sheet(wb, SHEETS["assumptions"][lang], frame, lang, datum=None)
        if meta.inputs or meta.versions or meta.steps:
            _provenance_sheet(wb, meta, lang)
    path = Path(path)
    wb.save(path)
    return path
