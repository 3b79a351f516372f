"""The report as a Word document (``report.docx``, python-docx) to paste into a plan text.

Bureau plan texts (规划文本、说明书) are Word documents, so the report is
written as one too, with the sections of the HTML page
(`planner.report.tables.document_sections`):

* headings in Word's built-in ``Heading 1``/``Heading 2`` styles, so they
  appear in the navigation pane and in a table of contents;
* tables as real Word tables (``Table Grid``), the header row repeated on
  every page, numbers right-aligned in the house format (thousands
  separators, shares as percentages, coordinates to 6 decimals), failing
  norm rows shaded; tables wider than eight columns get a landscape page;
* figures at print resolution (the print maps' 300 dpi PNGs; without them
  the coverage map is drawn at 300 dpi for the document), numbered
  captions;
* fonts set for East Asian text (``w:eastAsia``): 宋体 (SimSun) for body
  text and tables, 黑体 (SimHei) for headings, Times New Roman / Arial for
  Latin text; A4 pages with page numbers.
"""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

from planner.report.tables import (
    TEXT,
    Lang,
    Section,
    _t,
    document_sections,
)
from planner.study import ReportMeta, Study

__all__ = ["BODY_FONT", "HEADING_FONT", "coverage_figure_png", "word_report"]

#: (Latin, East Asian) fonts of body text and of headings.
BODY_FONT = ("Times New Roman", "宋体")
HEADING_FONT = ("Arial", "黑体")
_FAIL_SHADE = "FDE0DC"
_NA_SHADE = "EDEDED"
_HEAD_SHADE = "DDEBF7"
_WIDE = 10  # columns: a table wider than this gets a landscape page


# ---------------------------------------------------------------- low-level helpers
def _set_fonts(element: Any, latin: str, east_asia: str, *, lang: Lang | None = None) -> None:
    """Set the Latin and East Asian fonts of a style's or run's ``w:rPr``.

    Theme font attributes (``w:asciiTheme`` ...) override explicit names in
    Word, so they are removed.
    """
    from docx.oxml.ns import qn

    rpr = element.get_or_add_rPr()
    fonts = rpr.find(qn("w:rFonts"))
    if fonts is None:
        fonts = rpr.makeelement(qn("w:rFonts"), {})
        rpr.insert(0, fonts)
    for attr in ("w:asciiTheme", "w:hAnsiTheme", "w:eastAsiaTheme", "w:cstheme"):
        fonts.attrib.pop(qn(attr), None)
    fonts.set(qn("w:ascii"), latin)
    fonts.set(qn("w:hAnsi"), latin)
    fonts.set(qn("w:cs"), latin)
    fonts.set(qn("w:eastAsia"), east_asia)
    if lang is not None:
        tag = rpr.find(qn("w:lang"))
        if tag is None:
            tag = rpr.makeelement(qn("w:lang"), {})
            rpr.append(tag)
        tag.set(qn("w:val"), "en-US")
        tag.set(qn("w:eastAsia"), "zh-CN")


def _shade(cell: Any, color: str) -> None:
    from docx.oxml.ns import qn

    tcpr = cell._tc.get_or_add_tcPr()
    shd = tcpr.makeelement(qn("w:shd"), {qn("w:val"): "clear", qn("w:color"): "auto",
                                         qn("w:fill"): color})
    tcpr.append(shd)


def _repeat_header(row: Any) -> None:
    from docx.oxml.ns import qn

    trpr = row._tr.get_or_add_trPr()
    trpr.append(trpr.makeelement(qn("w:tblHeader"), {qn("w:val"): "true"}))


def _page_number_footer(section: Any) -> None:
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.oxml.ns import qn

    para = section.footer.paragraphs[0]
    para.alignment = WD_ALIGN_PARAGRAPH.CENTER
    fld = para._p.makeelement(qn("w:fldSimple"), {qn("w:instr"): "PAGE"})
    para._p.append(fld)


def _styles(doc: Any, lang: Lang) -> None:
    from docx.shared import Pt, RGBColor

    styles = doc.styles
    normal = styles["Normal"]
    normal.font.size = Pt(10.5)  # 五号
    _set_fonts(normal.element, *BODY_FONT, lang=lang)
    for name, size in (("Title", 18), ("Heading 1", 15), ("Heading 2", 12.5)):
        st = styles[name]
        st.font.size = Pt(size)
        st.font.bold = True
        st.font.color.rgb = RGBColor(0, 0, 0)
        _set_fonts(st.element, *HEADING_FONT)
    cap = styles["Caption"]
    cap.font.size = Pt(9)
    cap.font.color.rgb = RGBColor(0x33, 0x33, 0x33)
    _set_fonts(cap.element, *BODY_FONT)


def _page(section: Any, *, landscape: bool) -> None:
    from docx.enum.section import WD_ORIENT
    from docx.shared import Cm

    short, long_ = Cm(21.0), Cm(29.7)
    section.orientation = WD_ORIENT.LANDSCAPE if landscape else WD_ORIENT.PORTRAIT
    section.page_width, section.page_height = (long_, short) if landscape else (short, long_)
    section.left_margin = section.right_margin = Cm(2.0)
    section.top_margin = section.bottom_margin = Cm(2.2)


def _text_width_cm(section: Any) -> float:
    return (section.page_width - section.left_margin - section.right_margin) / 360000


# ---------------------------------------------------------------- content
def _table(doc: Any, sec: Section, width_cm: float) -> Any:
    from docx.enum.table import WD_TABLE_ALIGNMENT
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.shared import Pt

    heads, rows, numeric, status = sec.headers, sec.rows(), sec.numeric, sec.status
    size = Pt(8 if len(heads) > 6 else 9)
    table = doc.add_table(rows=1, cols=len(heads))
    table.style = doc.styles["Table Grid"]
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    head = table.rows[0]
    _repeat_header(head)
    for cell, text, num in zip(head.cells, heads, numeric):
        para = cell.paragraphs[0]
        run = para.add_run(text)
        run.bold, run.font.size = True, size
        if num:
            para.alignment = WD_ALIGN_PARAGRAPH.RIGHT
        _shade(cell, _HEAD_SHADE)
    for values, state in zip(rows, status):
        cells = table.add_row().cells
        for cell, text, num in zip(cells, values, numeric):
            para = cell.paragraphs[0]
            para.add_run(text).font.size = size
            if num:
                para.alignment = WD_ALIGN_PARAGRAPH.RIGHT
            if state == "fail":
                _shade(cell, _FAIL_SHADE)
            elif state == "not_assessable":
                _shade(cell, _NA_SHADE)
    _set_widths(table, _column_widths(heads, rows, width_cm, unit_cm=size.pt * 0.0176))
    return table


def _text_width(text: str) -> int:
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


def _column_widths(heads: list[str], rows: list[list[str]], total_cm: float, *,
                   unit_cm: float) -> list[float]:
    """Column widths (cm) filling ``total_cm``: each column asks for its typical cell
    (90th percentile, at most 36 half-width characters of ``unit_cm``) or a few
    characters of its header; short columns get what they ask, long ones share the rest
    (max-min fair), so numbers and statuses never wrap for the sake of a long text."""
    pad = 0.45  # Word's default cell margins (2 × 0.19 cm) and a little air
    ask = []
    for j, head in enumerate(heads):
        cells = sorted(_text_width(r[j]) for r in rows[:300]) or [0]
        typical = cells[int(0.9 * (len(cells) - 1))]
        ask.append(pad + unit_cm * min(36, max(4, typical, min(_text_width(head), 6))))
    widths = [0.0] * len(ask)
    left = total_cm
    order = sorted(range(len(ask)), key=lambda j: ask[j])
    for k, j in enumerate(order):
        widths[j] = min(ask[j], left / (len(order) - k))
        left -= widths[j]
    if left > 0:  # room to spare: spread it in proportion
        widths = [w + left * w / sum(widths) for w in widths]
    return widths


def _set_widths(table: Any, widths_cm: list[float]) -> None:
    from docx.shared import Cm

    table.autofit = False
    for col, w in zip(table.columns, widths_cm):
        col.width = Cm(w)  # the grid (LibreOffice reads it) ...
        for cell in col.cells:  # ... and every cell (Word reads these)
            cell.width = Cm(w)


def _caption(doc: Any, text: str) -> None:
    from docx.enum.text import WD_ALIGN_PARAGRAPH

    para = doc.add_paragraph(text, style="Caption")
    para.alignment = WD_ALIGN_PARAGRAPH.CENTER


def _figure(doc: Any, image: str | Path | bytes, caption: str, width_cm: float) -> None:
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.shared import Cm

    stream = io.BytesIO(image) if isinstance(image, bytes) else str(image)
    doc.add_picture(stream, width=Cm(width_cm))
    doc.paragraphs[-1].alignment = WD_ALIGN_PARAGRAPH.CENTER
    _caption(doc, caption)


def coverage_figure_png(study: Study, *, dpi: int = 300, lang: Lang | None = None) -> bytes | None:
    """The coverage print map (`planner.plots.coverage_map`) as PNG bytes at ``dpi``.

    ``None`` when the study has no walking times to draw.
    """
    from planner import plots

    if study.layers.get("population_access") is None:
        return None
    fig = plots.coverage_map(study, lang=lang)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", pad_inches=0.15)
    return buf.getvalue()


class _Writer:
    """Adds sections to a document, switching to a landscape page for wide tables."""

    def __init__(self, doc: Any, lang: Lang):
        self.doc, self.lang = doc, lang
        self.landscape = False
        self.n_fig = self.n_tab = 0

    def orient(self, landscape: bool) -> None:
        from docx.enum.section import WD_SECTION

        if landscape == self.landscape:
            return
        section = self.doc.add_section(WD_SECTION.NEW_PAGE)
        _page(section, landscape=landscape)
        self.landscape = landscape

    def width_cm(self) -> float:
        return _text_width_cm(self.doc.sections[-1])

    def table_section(self, sec: Section) -> None:
        self.orient(len(sec.headers) > _WIDE)
        self.doc.add_heading(sec.heading, level=1)
        self.n_tab += 1
        _caption(self.doc, f"{_t(self.lang, 'table')} {self.n_tab} {sec.heading}")
        _table(self.doc, sec, self.width_cm())
        notes = [sec.note] if sec.note else []
        if sec.more:
            notes.append("… " + _t(self.lang, "more", n=sec.more))
        for note in notes:
            self.doc.add_paragraph(note, style="Caption")

    def figure_section(self, heading: str, figures: list[tuple[str, str | Path | bytes]]) -> None:
        self.orient(False)
        self.doc.add_heading(heading, level=1)
        for caption, image in figures:
            self.n_fig += 1
            _figure(self.doc, image, f"{_t(self.lang, 'figure')} {self.n_fig} {caption}",
                    self.width_cm())


def word_report(
    study: Study,
    path: str | Path,
    *,
    meta: ReportMeta | None = None,
    lang: Lang | None = None,
    figures: dict[str, str | Path | bytes] | None = None,
) -> Path:
    """Write the study's report as a Word document.

    Parameters
    ----------
    study
        The layers and tables to report (`planner.study.Study`).
    path
        The ``.docx`` file to write.
    meta
        Assumptions, inputs, versions, steps and warnings (`planner.study.ReportMeta`).
    lang
        Language, default the study's.
    figures
        Caption → PNG (a path or bytes) at print resolution, e.g. the print
        maps.  ``None``: the coverage map is drawn at 300 dpi
        (`coverage_figure_png`); ``{}``: no figures.

    Returns
    -------
    Path
    """
    import docx
    from docx.enum.text import WD_ALIGN_PARAGRAPH

    meta = meta or ReportMeta()
    lang = lang or study.lang
    doc = docx.Document()
    _styles(doc, lang)
    _page(doc.sections[0], landscape=False)
    _page_number_footer(doc.sections[0])
    props = doc.core_properties
    props.title = f"{_t(lang, 'report')} · {study.name}"
    props.language = "zh-CN" if lang == "zh" else "en"
    title = doc.add_heading(props.title, level=0)
    title.alignment = WD_ALIGN_PARAGRAPH.CENTER
    t = TEXT[lang]
    doc.add_paragraph(f"{t['scenario']}: {study.name} · {t['generated']}: "
                      f"{time.strftime('%Y-%m-%d %H:%M')}", style="Caption")
    if figures is None:
        png = coverage_figure_png(study, lang=lang)
        figures = {_t(lang, "map"): png} if png is not None else {}
    heading = _t(lang, "print_maps") if len(figures) > 1 else _t(lang, "map")
    w = _Writer(doc, lang)
    sections = document_sections(study, meta=meta, lang=lang)
    keys = [s.key for s in sections]
    # as in the HTML page: the figures after the norm summary (or the indicators)
    anchor = "norm_summary" if "norm_summary" in keys else "summary"
    if anchor not in keys and figures:
        w.figure_section(heading, list(figures.items()))
    for sec in sections:
        if sec.appendix:
            continue
        w.table_section(sec)
        if sec.key == anchor and figures:
            w.figure_section(heading, list(figures.items()))
    for sec in sections:
        if sec.appendix:
            w.table_section(sec)
    path = Path(path)
    doc.save(str(path))
    return path
