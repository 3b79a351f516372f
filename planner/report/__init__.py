"""The run's report: a Word document, an Excel workbook and one self-contained HTML page.

All three read the layers and tables of a `planner.study.Study` (tables
``coverage``, ``norm_checks``, ``proposed_sites``,
``coverage_before_after``; layers ``facilities``, ``blind_spots``,
``population_access`` ...) and a `planner.study.ReportMeta` (assumptions,
inputs' hashes, versions, steps, warnings); a table that is absent is left
out.  They share one vocabulary and one number format
(`planner.report.tables`), so a number reads the same in every output.

* `word_report` (``report.docx``, python-docx): the sections of the HTML
  page as Word headings, tables and 300 dpi figures, East Asian fonts set
  (`planner.report.word`).
* `excel_report` (``planner.xlsx``, openpyxl): one sheet per table, failures
  highlighted by conditional formatting, a coverage-by-township chart,
  assumptions and provenance sheets (`planner.report.excel`).
* `html_report` (``report.html``, Jinja2): key indicators, the norm checks
  per rule, the interactive map (a static figure in print), print maps, the
  tables, assumptions and provenance, every norm check in an appendix; A4
  print layout (`planner.report.html`).
"""

from __future__ import annotations

from planner.report.excel import excel_report
from planner.report.html import html_report, image_uri
from planner.report.tables import (
    ANY_TIER,
    DATUMS,
    HEADERS,
    METHODS,
    SCOPE,
    SHEETS,
    STATUS,
    TEXT,
    Section,
    assumption_rows,
    cell_text,
    compact_norm_checks,
    coverage_summary,
    document_sections,
    header,
    indicators,
    input_rows,
    method_text,
    norm_summary,
    number_formats,
    report_tables,
    translate_values,
    with_lonlat,
)
from planner.report.word import coverage_figure_png, word_report

__all__ = ["ANY_TIER", "DATUMS", "HEADERS", "METHODS", "SCOPE", "SHEETS", "STATUS", "TEXT",
           "Section", "assumption_rows", "cell_text", "compact_norm_checks",
           "coverage_figure_png", "coverage_summary", "document_sections", "excel_report",
           "header", "html_report", "image_uri", "indicators", "input_rows", "method_text",
           "norm_summary", "number_formats", "report_tables", "translate_values",
           "with_lonlat", "word_report"]
