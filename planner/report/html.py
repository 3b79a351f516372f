"""The report as one self-contained HTML page (``templates/report.html.j2``, Jinja2, autoescaped).

Sections come from `planner.report.tables.document_sections` (the Word
report has the same ones).  The page prints on A4 (an ``@page`` rule with
margins, a page break before each major section); the interactive map is
an ``iframe srcdoc`` on screen and a static figure in print.
"""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import numpy as np

from planner.report.tables import (
    STATUS,
    TEXT,
    Lang,
    Section,
    _t,
    document_sections,
)
from planner.study import ReportMeta, Study

__all__ = ["html_report", "image_uri"]


def image_uri(image: str | Path | bytes) -> str:
    """A ``data:`` URI of a PNG or SVG file (or PNG bytes)."""
    if isinstance(image, bytes):
        return "data:image/png;base64," + base64.b64encode(image).decode()
    path = Path(image)
    kind = "svg+xml" if path.suffix.lower() == ".svg" else "png"
    return f"data:image/{kind};base64," + base64.b64encode(path.read_bytes()).decode()


def _indicator_cards(section: Section | None) -> list[tuple[str, str, str]]:
    if section is None:
        return []
    out = []
    for row in section.frame.itertuples(index=False):
        if row.unit == "share":  # not assessable (NaN: nobody counted) shows as "–"
            out.append((row.indicator, "–" if not np.isfinite(row.value)
                        else f"{100 * row.value:.1f}%", ""))
        else:
            out.append((row.indicator, f"{row.value:,.0f}", row.unit))
    return out


def _template_sections(sections: list[Section]) -> list[dict[str, Any]]:
    out = []
    for s in sections:
        out.append({"key": s.key, "heading": s.heading, "headers": s.headers, "rows": s.rows(),
                    "status": s.status, "numeric": s.numeric, "more": s.more, "note": s.note,
                    "appendix": s.appendix,
                    "nowrap": [h in ("status", "unit", "scope", "norm_status", "result")
                               for h in s.frame.columns],
                    "text_cols": [h in ("path", "sha256")
                                  for h in s.frame.columns]})
    return out


def html_report(
    study: Study,
    *,
    meta: ReportMeta | None = None,
    lang: Lang | None = None,
    print_maps: dict[str, Path] | None = None,
    map_html: str | None = None,
    static_map: str | Path | bytes | None = None,
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
    static_map
        A PNG (path or bytes) shown in print in place of the interactive map;
        without one the map's section is left out of print (the print maps
        show the same).
    """
    from jinja2 import Environment, PackageLoader, select_autoescape

    meta = meta or ReportMeta()
    lang = lang or study.lang
    env = Environment(loader=PackageLoader("planner", "templates"),
                      autoescape=select_autoescape(["html", "j2"], default=True))
    sections = document_sections(study, meta=meta, lang=lang)
    summary = next((s for s in sections if s.key == "summary"), None)
    body = [s for s in sections if s.key != "summary"]
    map_iframe = None
    if map_html is not None:
        from markupsafe import Markup

        from planner import maps

        map_iframe = Markup(maps.iframe_of(map_html, height_px=560))  # srcdoc escaped there
    images = [(title, image_uri(Path(p))) for title, p in (print_maps or {}).items()]
    template = env.get_template("report.html.j2")
    return template.render(
        lang=lang, t=TEXT[lang], title=f"{_t(lang, 'report')} · {study.name}",
        scenario=study.name, indicators=_indicator_cards(summary),
        sections=[s for s in _template_sections(body) if not s["appendix"]],
        appendix=[s for s in _template_sections(body) if s["appendix"]],
        map_iframe=map_iframe, static_map=image_uri(static_map) if static_map is not None
        else None, images=images, generated=time.strftime("%Y-%m-%d %H:%M"),
        status_text=STATUS[lang],
    )
