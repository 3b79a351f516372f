"""Print maps with matplotlib: PNG (300 dpi) and SVG for reports and plan documents.

Three maps, each a function that returns a `matplotlib.figure.Figure`:

* `coverage_map`: demand units coloured by walking time, facilities by tier,
  blind spots, township boundaries and the road network;
* `before_after_map`: the same area before and after the proposed sites;
* `norm_status_map`: townships coloured by norm status.

Each has a north arrow, a scale bar, a legend and a credit line.  Maps are
drawn in the layers' metric CRS (``study.crs``, a `planner.study.Study`), so the scale
bar is true.  Chinese text needs a CJK font: `cjk_font` looks for one
(Noto Sans CJK, Source Han Sans, WenQuanYi, SimHei, Microsoft YaHei,
PingFang) through matplotlib's font manager and checks it really has the
glyphs; with none, a `PlannerWarning` says how to install one and every
label falls back to English, so no map ever shows boxes
(``PLANNER_NO_CJK_FONT=1`` simulates that on a machine that has one).
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np
from matplotlib.figure import Figure

from planner._errors import PlannerWarning
from planner._schema import TIER_LABELS, TIERS
from planner.checks import rows_in_use
from planner.maps import BAND_COLORS as _M_BANDS
from planner.maps import BLIND_SPOT_COLOR as _M_BLIND
from planner.maps import STATUS_COLORS as _M_STATUS
from planner.study import Study

__all__ = ["BAND_COLORS", "NO_CJK_FONT_ENV", "STATUS_COLORS", "TEXT", "MapFigure", "add_credit", "add_margin",
           "crs_text", "margin_lines", "add_north_arrow",
           "add_scale_bar", "after_times", "before_after_map", "cjk_font", "coverage_map",
           "font_path", "norm_status_map", "population_map", "print_maps", "save_figure"]

Lang = Literal["zh", "en"]

#: Font families tried in order for Chinese text.
CJK_FAMILIES = (
    "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "Source Han Sans CN",
    "WenQuanYi Zen Hei", "WenQuanYi Micro Hei", "SimHei", "Microsoft YaHei", "PingFang SC",
    "Heiti SC", "Noto Sans CJK JP", "Noto Sans CJK TC", "Noto Serif CJK SC",
)
#: Characters a CJK font must have to be used (a sample of the labels).
_PROBE_CHARS = "养老设施服务盲区分钟图例北街镇达标"

TEXT = {
    "zh": {
        "coverage": "15分钟养老服务圈覆盖", "coverage_m": "{m:g}分钟养老服务圈覆盖",
        "before": "规划前", "after": "规划后", "norms": "街镇规范达标情况",
        "band_5": "≤5分钟", "band_10": "5–10分钟", "band_15": "10–{m:g}分钟",
        "band_over": ">{m:g}分钟", "unreachable": "不可达", "blind_spots": "服务盲区",
        "proposed": "规划新增设施", "north": "北", "pass": "达标", "fail": "未达标",
        "not_assessable": "无法评估", "roads": "道路", "townships": "街镇边界",
        "share": "老年人口覆盖率 {b:.1f}% → {a:.1f}%", "newly": "新增覆盖 {n:,.0f} 人",
        "credit": "制图：planner", "osm": "道路数据 © OpenStreetMap contributors (ODbL)",
        "population": "60岁及以上人口分布", "estimated": "估算",
        "before_colours": "（居住单元仍按规划前步行时间着色）",
        "unit": "编制单位：{v}", "date": "制图日期：{v}", "crs": "坐标系：{v}",
        "source": "数据来源：{v}", "failed": "未达标规则", "water": "水系",
        "none": "无相关规则",
    },
    "en": {
        "coverage": "15-minute care-circle coverage",
        "coverage_m": "{m:g}-minute care-circle coverage",
        "before": "Before", "after": "After", "norms": "Norm status by township",
        "band_5": "≤5 min", "band_10": "5–10 min", "band_15": "10–{m:g} min",
        "band_over": ">{m:g} min", "unreachable": "Unreachable", "blind_spots": "Blind spots",
        "proposed": "Proposed sites", "north": "N", "pass": "Pass", "fail": "Fail",
        "not_assessable": "Not assessable", "roads": "Roads", "townships": "Township boundaries",
        "share": "Older residents covered {b:.1f}% → {a:.1f}%", "newly": "Newly covered: {n:,.0f}",
        "credit": "Map: planner", "osm": "Roads © OpenStreetMap contributors (ODbL)",
        "population": "Residents aged 60+", "estimated": "estimated",
        "before_colours": "(units still coloured by their walk before the proposals)",
        "unit": "Mapped by: {v}", "date": "Date: {v}", "crs": "Coordinate system: {v}",
        "source": "Data: {v}", "failed": "Rules failed", "water": "Water",
        "none": "no rule applies",
    },
}

# The web map's colours (planner.maps: colour-blind safe), so both read alike.
BAND_COLORS = dict(_M_BANDS)
STATUS_COLORS = dict(_M_STATUS)
BLIND_SPOT_COLOR = _M_BLIND
TIER_MARKERS = {"district_home": ("s", "#332288"), "township_centre": ("^", "#882255"),
                "community_station": ("o", "#117733"), "rural_point": ("D", "#999933"),
                "other": ("o", "#777777")}
PROPOSED = ("*", "#f0e442")
ROAD_COLOR = "#8c8c8c"
WATER_COLOR = "#a6cee3"


class MapFigure(Figure):
    """A matplotlib `Figure` that shows itself in Jupyter as a PNG.

    The maps are made without pyplot (no global state, no GUI backend), so
    IPython only shows ``<Figure size ...>`` for a plain `Figure` unless
    ``%matplotlib inline`` is on; this one has ``_repr_png_`` (100 dpi, so
    notebooks stay small) and displays inline either way.
    """

    def _repr_png_(self) -> bytes:
        import io

        buf = io.BytesIO()
        self.savefig(buf, format="png", dpi=100, bbox_inches="tight", pad_inches=0.1)
        return buf.getvalue()


# ---------------------------------------------------------------- fonts
def _has_glyphs(path: str, chars: str) -> bool:
    from matplotlib.ft2font import FT2Font

    try:
        font = FT2Font(path)
    except (OSError, RuntimeError):
        return False
    return all(font.get_char_index(ord(c)) != 0 for c in chars)


_CJK_FILES = ("notosanscjk", "notoserifcjk", "notosanssc", "sourcehansans", "wqy", "simhei",
              "msyh", "pingfang")


def _find_cjk_font() -> str | None:
    """Family name of an installed font that has Chinese glyphs, or None.

    Looks in matplotlib's font list first; if none is there (its cache was
    built before the font was installed), scans the system font folders for
    CJK font files and registers them.
    """
    from matplotlib import font_manager

    def lookup() -> str | None:
        by_name: dict[str, str] = {}
        for entry in font_manager.fontManager.ttflist:
            by_name.setdefault(entry.name, entry.fname)
        for family in CJK_FAMILIES:
            path = by_name.get(family)
            if path and _has_glyphs(path, _PROBE_CHARS):
                return family
        return None

    found = lookup()
    if found is None:
        known = {e.fname for e in font_manager.fontManager.ttflist}
        for path in font_manager.findSystemFonts(fontext="ttf") + font_manager.findSystemFonts(
                fontext="otf"):
            name = Path(path).name.lower().replace("-", "").replace("_", "")
            if path not in known and any(k in name for k in _CJK_FILES):
                try:
                    font_manager.fontManager.addfont(path)
                except (OSError, RuntimeError, ValueError):
                    continue
        found = lookup()
    return found


_FONT_CACHE: dict[str, str | None] = {}


#: Set to 1 to act as if no CJK font were installed (CI checks the fallback with it).
NO_CJK_FONT_ENV = "PLANNER_NO_CJK_FONT"


def cjk_font() -> str | None:
    """The CJK font family used for Chinese labels (None where none is installed).

    ``PLANNER_NO_CJK_FONT=1`` in the environment hides the installed ones, as
    on a machine without them (the English fallback, tested in CI).
    """
    if os.environ.get(NO_CJK_FONT_ENV, "") not in ("", "0"):
        return None
    if "font" not in _FONT_CACHE:
        _FONT_CACHE["font"] = _find_cjk_font()
    return _FONT_CACHE["font"]


def font_path(family: str) -> str:
    """File of an installed font family (as matplotlib's font manager resolves it)."""
    from matplotlib import font_manager

    return font_manager.findfont(font_manager.FontProperties(family=family),
                                 fallback_to_default=False)


def _resolve_lang(lang: Lang) -> tuple[str, dict[str, Any]]:
    """Language actually usable and the rcParams for it (English if no CJK font)."""
    # SVG text stays text (editable in Illustrator/Inkscape, searchable), not glyph paths
    rc: dict[str, Any] = {"axes.unicode_minus": False, "svg.fonttype": "none"}
    if lang != "zh":
        return "en", rc
    family = cjk_font()
    if family is None:
        warnings.warn(PlannerWarning(
            "No Chinese (CJK) font found for the print maps, so their labels are in English. "
            "Install one, e.g. `apt-get install fonts-noto-cjk` (Debian/Ubuntu) or "
            "`dnf install google-noto-sans-cjk-fonts`, then delete matplotlib's font cache "
            "(~/.cache/matplotlib) and run again.",
            "未找到中文（CJK）字体，出图标注改用英文。请安装中文字体，如 `apt-get install "
            "fonts-noto-cjk`（Debian/Ubuntu）或 `dnf install google-noto-sans-cjk-fonts`，删除 "
            "matplotlib 字体缓存（~/.cache/matplotlib）后重新运行。"), stacklevel=3)
        return "en", rc
    # Family names (not "sans-serif") are stored on each text when it is made, so the
    # figure keeps its font when saved after the rc context is left.
    rc["font.family"] = [family, "DejaVu Sans"]
    return "zh", rc


def _t(lang: str, key: str, **kw: Any) -> str:
    s = TEXT[lang][key]
    return s.format(**kw) if kw else s


def _label_ok(text: str, lang: str) -> bool:
    """Whether a user string can be drawn (non-ASCII needs the CJK font)."""
    return lang == "zh" or str(text).isascii()


# ---------------------------------------------------------------- decorations
def _nice_length(max_m: float) -> float:
    """The largest 1/2/5 × 10^k not above ``max_m``."""
    if max_m <= 0:
        return 0.0
    exp = 10 ** math.floor(math.log10(max_m))
    for f in (5, 2, 1):
        if f * exp <= max_m:
            return f * exp
    return exp


def add_scale_bar(ax: Any, *, lang: Lang = "zh") -> None:
    """A scale bar in the lower left, about a fifth of the map width (axes in metres)."""
    from matplotlib.patches import Rectangle

    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    length = _nice_length((x1 - x0) / 5)
    if length <= 0:
        return
    bx, by = x0 + 0.04 * (x1 - x0), y0 + 0.05 * (y1 - y0)
    h = 0.012 * (y1 - y0)
    half = length / 2
    ax.add_patch(Rectangle((bx, by), half, h, facecolor="black", edgecolor="black", zorder=20))
    ax.add_patch(Rectangle((bx + half, by), half, h, facecolor="white", edgecolor="black",
                           zorder=20))
    label = f"{length / 1000:g} km" if length >= 1000 else f"{length:g} m"
    ax.text(bx + length / 2, by + 2 * h, label, ha="center", va="bottom", fontsize=8, zorder=20)


def add_north_arrow(ax: Any, *, lang: Lang = "zh") -> None:
    """A north arrow in the upper right (maps are drawn north-up)."""
    ax.annotate(_t(lang, "north"), xy=(0.95, 0.95), xytext=(0.95, 0.85),
                xycoords="axes fraction", ha="center", va="center", fontsize=11,
                fontweight="bold", zorder=20,
                arrowprops={"facecolor": "black", "width": 4, "headwidth": 11, "headlength": 10})


def add_credit(ax: Any, text: str) -> None:
    """A small credit line in the lower right corner."""
    ax.text(0.995, 0.005, text, transform=ax.transAxes, ha="right", va="bottom", fontsize=6,
            color="#444444", zorder=20,
            bbox={"facecolor": "white", "alpha": 0.7, "edgecolor": "none", "pad": 1})


def _credit_text(study: Study | None, lang: str) -> str:
    parts = [_t(lang, "credit")]
    if study is not None and study.osm_data:
        parts.append(_t(lang, "osm"))
    return " · ".join(parts)


def crs_text(crs: Any) -> str:
    """A coordinate system as a map's margin names it: its name and EPSG code."""
    import pyproj

    if crs is None:
        return "?"
    crs = pyproj.CRS.from_user_input(crs)
    code = crs.to_epsg()
    return f"{crs.name} (EPSG:{code})" if code else crs.name


def margin_lines(study: Study, lang: str, *, crs: Any = None) -> list[str]:
    """The margin note of a print map: mapping unit and date, coordinate system, data sources."""
    import time

    unit = study.mapping_unit if _label_ok(study.mapping_unit, lang) else ""
    unit = unit or "planner"
    sources = [s for s in study.data_sources if _label_ok(s, lang)]
    if study.osm_data and not any("OpenStreetMap" in s for s in sources):
        sources.append("© OpenStreetMap contributors (ODbL)")
    first = " · ".join([_t(lang, "unit", v=unit), _t(lang, "date", v=time.strftime("%Y-%m-%d"))])
    second = _t(lang, "crs", v=crs_text(crs if crs is not None else study.crs))
    lines = [f"{first} · {second}"]
    if sources:
        lines.append(_t(lang, "source", v="; ".join(sources)))
    return lines


def add_margin(fig: Any, study: Study, lang: str, *, crs: Any = None) -> None:
    """Write the margin note under the map(s), across the figure's width."""
    fig.text(0.01, 0.002, "\n".join(margin_lines(study, lang, crs=crs)), ha="left",
             va="bottom", fontsize=6.5, color="#333333", parse_math=False, wrap=True)


# ---------------------------------------------------------------- drawing helpers
def _metric(gdf: Any, crs: Any) -> Any:
    if gdf is None or len(gdf) == 0 or gdf.crs is None:
        return None
    return gdf if crs is None or gdf.crs == crs else gdf.to_crs(crs)


def _frame_crs(layers: dict[str, Any]) -> Any:
    for gdf in layers.values():
        if gdf is not None and hasattr(gdf, "crs") and gdf.crs is not None and len(gdf):
            return gdf.crs if gdf.crs.is_projected else gdf.estimate_utm_crs()
    return None


def _draw_base(ax: Any, layers: dict[str, Any], crs: Any, lang: str, *,
               over_fills: bool = False) -> list:
    """Water and roads; ``over_fills`` draws them above area fills (the norm map) so
    they stay visible through the colours."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = []
    z = 4 if over_fills else 1
    water = _metric(layers.get("water"), crs)
    if water is not None:
        water.plot(ax=ax, color=WATER_COLOR, edgecolor="#6baed6", linewidth=0.3, zorder=z,
                   alpha=0.9)
        handles.append(Patch(facecolor=WATER_COLOR, edgecolor="#6baed6", label=_t(lang, "water")))
    edges = _metric(layers.get("network_edges"), crs)
    if edges is not None:
        edges.plot(ax=ax, color=ROAD_COLOR, linewidth=0.4, zorder=z + 1)
        handles.append(Line2D([], [], color=ROAD_COLOR, lw=1, label=_t(lang, "roads")))
    return handles


def _draw_townships(ax: Any, layers: dict[str, Any], crs: Any, lang: str) -> list:
    from matplotlib.lines import Line2D

    towns = _metric(layers.get("townships", layers.get("township_norms")), crs)
    if towns is None:
        return []
    towns.boundary.plot(ax=ax, color="#555555", linewidth=0.8, linestyle="--", zorder=6)
    _draw_labels(ax, towns, lang)
    return [Line2D([], [], color="#555555", lw=0.8, ls="--", label=_t(lang, "townships"))]


def _draw_labels(ax: Any, towns: Any, lang: str, *, extra: list[str] | None = None) -> None:
    """Township names at a point inside each (with a white halo), ``extra`` lines below."""
    from matplotlib import patheffects

    if towns is None or "name" not in towns:
        return
    halo = patheffects.withStroke(linewidth=2.2, foreground="white")
    pts = towns.geometry.representative_point()
    for k, (x, y, name) in enumerate(zip(pts.x, pts.y, towns["name"].astype(str))):
        if not _label_ok(name, lang):
            continue
        text = name + (f"\n{extra[k]}" if extra and extra[k] else "")
        # parse_math=False: a "$" in a user's name is text, not TeX
        ax.text(x, y, text, ha="center", va="center", fontsize=7.5, fontweight="bold",
                zorder=12, parse_math=False, path_effects=[halo], color="#222222")


def _draw_demand(ax: Any, pa: Any, crs: Any, lang: str, circle: float,
                 time_column: str = "time_min_any") -> list:
    from matplotlib.patches import Patch

    from planner.maps import time_bands

    pa = _metric(pa, crs)
    if pa is None or time_column not in pa:
        return []
    bands = time_bands(pa[time_column].to_numpy(dtype=float), circle)
    labels = {"5": _t(lang, "band_5"), "10": _t(lang, "band_10"),
              "15": _t(lang, "band_15", m=circle), "over": _t(lang, "band_over", m=circle),
              "unreachable": _t(lang, "unreachable")}
    handles = []
    points = (pa.geom_type == "Point").to_numpy()
    for band in ("5", "10", "15", "over", "unreachable"):
        sel = bands == band
        if not sel.any():
            continue
        color = BAND_COLORS[band]
        if (sel & ~points).any():
            pa[sel & ~points].plot(ax=ax, color=color, edgecolor="white", linewidth=0.2,
                                   alpha=0.85, zorder=3)
        if (sel & points).any():
            pa[sel & points].plot(ax=ax, color=color, edgecolor="#333333", linewidth=0.3,
                                  markersize=14, zorder=7)
        handles.append(Patch(facecolor=color, edgecolor="none", label=labels[band]))
    return handles


def _draw_blind(ax: Any, blind: Any, crs: Any, lang: str) -> list:
    from matplotlib.patches import Patch

    blind = _metric(blind, crs)
    if blind is None:
        return []
    blind.plot(ax=ax, facecolor="none", edgecolor=BLIND_SPOT_COLOR, hatch="///", linewidth=1.0,
               linestyle="--", zorder=5)
    return [Patch(facecolor="none", edgecolor=BLIND_SPOT_COLOR, hatch="///",
                  label=_t(lang, "blind_spots"))]


def _draw_facilities(ax: Any, fac: Any, crs: Any, lang: str) -> list:
    from matplotlib.lines import Line2D

    fac = _metric(fac, crs)
    if fac is None:
        return []
    fac = rows_in_use(fac)  # excluded rows (far outside, doubtful geocodes) would stretch the map
    if not len(fac):
        return []
    pts = fac.geometry.representative_point()
    tiers = fac["tier"].astype(str).to_numpy() if "tier" in fac else np.full(len(fac), "other")
    handles = []
    for tier in list(TIERS) + sorted(set(tiers) - set(TIERS)):
        sel = tiers == tier
        if not sel.any():
            continue
        marker, color = TIER_MARKERS.get(tier, TIER_MARKERS["other"])
        ax.scatter(pts.x[sel], pts.y[sel], marker=marker, s=36, c=color, edgecolors="black",
                   linewidths=0.5, zorder=10)
        label = TIER_LABELS.get(tier, {}).get(lang, tier)
        handles.append(Line2D([], [], marker=marker, color="none", markerfacecolor=color,
                              markeredgecolor="black", markersize=7, label=label))
    return handles


def _draw_proposed(ax: Any, prop: Any, crs: Any, lang: str) -> list:
    from matplotlib.lines import Line2D

    prop = _metric(prop, crs)
    if prop is None:
        return []
    pts = prop.geometry.representative_point()
    ax.scatter(pts.x, pts.y, marker=PROPOSED[0], s=220, c=PROPOSED[1], edgecolors="black",
               linewidths=0.7, zorder=11)
    return [Line2D([], [], marker=PROPOSED[0], color="none", markerfacecolor=PROPOSED[1],
                   markeredgecolor="black", markersize=13, label=_t(lang, "proposed"))]


def _finish_axes(ax: Any, handles: list, lang: str, credit: str, *, legend: bool = True) -> None:
    ax.set_aspect("equal")
    ax.set_axis_off()
    if legend and handles:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7,
                  framealpha=0.9, borderaxespad=0)
    add_north_arrow(ax, lang=lang)
    add_scale_bar(ax, lang=lang)
    add_credit(ax, credit)


def _layers_of(study: Study) -> tuple[dict[str, Any], Any, float]:
    layers = study.layers
    crs = study.crs if study.crs is not None else _frame_crs(layers)
    return layers, crs, float(study.circle_min)


def _figure(ncols: int = 1) -> tuple[Any, Any]:
    fig = MapFigure(figsize=(8.27 * (1.0 if ncols == 1 else 1.6), 8.27 if ncols == 1 else 6.0),
                 layout="constrained")
    axes = fig.subplots(1, ncols)
    return fig, axes


# ---------------------------------------------------------------- the three maps
def coverage_map(study: Study, *, lang: Lang | None = None) -> Any:
    """Demand units by walking time to the nearest facility, facilities, blind spots.

    Parameters
    ----------
    study
        A `planner.study.Study` (uses layers ``population_access``,
        ``facilities``, ``blind_spots``, ``townships``, ``network_edges``,
        ``water`` where present).
    lang
        ``"zh"`` (default: the study's) or ``"en"``.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib

    lang, rc = _resolve_lang(lang or study.lang)
    layers, crs, circle = _layers_of(study)
    with matplotlib.rc_context(rc):
        fig, ax = _figure()
        handles = _draw_base(ax, layers, crs, lang)
        handles += _draw_townships(ax, layers, crs, lang)
        handles += _draw_demand(ax, layers.get("population_access"), crs, lang, circle)
        handles += _draw_blind(ax, layers.get("blind_spots"), crs, lang)
        handles += _draw_facilities(ax, layers.get("facilities"), crs, lang)
        ax.set_title(_t(lang, "coverage_m", m=circle), fontsize=13)
        _finish_axes(ax, handles, lang, _credit_text(study, lang))
        add_margin(fig, study, lang, crs=crs)
    return fig


def _shares(study: Study, circle: float) -> tuple[float, float] | None:
    """Coverage share before and after at the care-circle threshold (locate's table)."""
    tab = study.tables.get("coverage_before_after")
    if tab is None or not {"share_before", "share_after"} <= set(tab.columns) or not len(tab):
        return None
    minutes = next((c for c in ("threshold_min", "minutes") if c in tab), None)
    row = tab if minutes is None else tab[np.isclose(tab[minutes].astype(float), circle)]
    if "tier" in row:
        row = row[row["tier"] == "any"]
    if not len(row):
        return None
    return float(row["share_before"].iloc[0]), float(row["share_after"].iloc[0])


def after_times(study: Study) -> Any:
    """Population units with ``time_min_after``: the walk once the proposed sites exist.

    The smaller of ``time_min_any`` and ``study.time_min_after`` (what
    `planner.locate.propose_sites` found, so the older residents within T
    minutes add up to its ``coverage_before_after`` table).  ``None`` where
    the study holds no such times or no proposed sites (e.g. layers read
    back from files).
    """
    pa = study.layers.get("population_access")
    prop = study.layers.get("proposed_sites")
    after = study.time_min_after
    if (pa is None or prop is None or len(prop) == 0 or after is None
            or "time_min_any" not in pa or len(after) != len(pa)):
        return None
    after = np.asarray(after, dtype=float).copy()
    after[~np.isfinite(after)] = np.nan
    out = pa.copy()
    out["time_min_after"] = np.fmin(pa["time_min_any"].to_numpy(dtype=float), after)
    return out


def before_after_map(study: Study, *, lang: Lang | None = None) -> Any:
    """Two panels: coverage before, and after the proposed sites are built.

    The *after* panel colours the demand units by their walk once the
    proposed sites exist (`after_times`) and draws the sites; without those
    times (layers read back from files) it keeps the *before*
    colours and says so under the panel.  The coverage before → after and
    the older residents newly covered come from the locate step's tables.
    """
    import matplotlib

    lang, rc = _resolve_lang(lang or study.lang)
    layers, crs, circle = _layers_of(study)
    after_pa = after_times(study)
    with matplotlib.rc_context(rc):
        fig, (ax0, ax1) = _figure(2)
        credit = _credit_text(study, lang)
        for ax, after in ((ax0, False), (ax1, True)):
            handles = _draw_base(ax, layers, crs, lang)
            handles += _draw_townships(ax, layers, crs, lang)
            if after and after_pa is not None:
                handles += _draw_demand(ax, after_pa, crs, lang, circle,
                                        time_column="time_min_after")
            else:
                handles += _draw_demand(ax, layers.get("population_access"), crs, lang, circle)
            handles += _draw_facilities(ax, layers.get("facilities"), crs, lang)
            if after:
                handles += _draw_proposed(ax, layers.get("proposed_sites"), crs, lang)
            ax.set_title(_t(lang, "after" if after else "before"), fontsize=12)
            _finish_axes(ax, handles, lang, credit, legend=after)
        if after_pa is None and layers.get("population_access") is not None:
            ax1.text(0.5, -0.07, _t(lang, "before_colours"), transform=ax1.transAxes,
                     ha="center", va="top", fontsize=7, color="#555555")
        notes = []
        shares = _shares(study, circle)
        if shares is not None:
            notes.append(_t(lang, "share", b=100 * shares[0], a=100 * shares[1]))
        prop = layers.get("proposed_sites")
        if prop is not None and "pop_60plus_newly_covered" in prop:
            notes.append(_t(lang, "newly", n=float(prop["pop_60plus_newly_covered"].sum())))
        if notes:
            ax1.text(0.5, -0.02, " · ".join(notes), transform=ax1.transAxes, ha="center",
                     va="top", fontsize=9)
        fig.suptitle(_t(lang, "coverage_m", m=circle), fontsize=13)
        add_margin(fig, study, lang, crs=crs)
    return fig


def _failed_rules(towns: Any, checks: Any, lang: str) -> list[list[str]]:
    """Per township: the titles of the rules that fail there (each once)."""
    import re

    from planner.maps import township_status

    if "failed_rules" in towns:  # the norms step's township layer: sub-units included
        return [[t for t in re.split(r"；|; ", str(v)) if t] if isinstance(v, str) else []
                for v in towns["failed_rules"]]
    _, failing = township_status(towns, checks)
    return [list(dict.fromkeys(str(r.get("title", r.get("rule_id"))) for r in rows
                               if r.get("status") == "fail")) for rows in failing]


def _circled(k: int, lang: str = "zh") -> str:
    """1 → ①, ... 20 → ⑳, then (21); "(1)" in the English fallback (fonts without ①)."""
    return chr(0x2460 + k - 1) if 1 <= k <= 20 and lang == "zh" else f"({k})"


def norm_status_map(study: Study, *, lang: Lang | None = None) -> Any:
    """Townships by norm status, each labelled with the numbers of the rules it fails.

    The fills are light and the water and roads are drawn over them, so the
    map still reads as a map; the status is also the outline's colour.  A
    panel beside the map lists the failing rules by number.
    """
    import matplotlib
    from matplotlib.patches import Patch

    from planner.maps import township_status

    lang, rc = _resolve_lang(lang or study.lang)
    layers, crs, _ = _layers_of(study)
    towns = _metric(layers.get("township_norms", layers.get("townships")), crs)
    with matplotlib.rc_context(rc):
        fig, ax = _figure()
        handles = []
        failed: list[list[str]] = []
        if towns is not None:
            checks = study.tables.get("norm_checks")
            status = (list(towns["norm_status"]) if "norm_status" in towns
                      else township_status(towns, checks)[0])
            colors = [STATUS_COLORS.get(st, "#dddddd") for st in status]
            towns.plot(ax=ax, color=colors, alpha=0.35, edgecolor="none", zorder=0.5)
            towns.boundary.plot(ax=ax, color=colors, linewidth=2.2, zorder=3)
            failed = _failed_rules(towns, checks, lang)
            for st in ("pass", "fail", "not_assessable"):
                if st in status:
                    handles.append(Patch(facecolor=STATUS_COLORS[st], alpha=0.6,
                                         edgecolor=STATUS_COLORS[st], lw=2, label=_t(lang, st)))
        handles = _draw_base(ax, layers, crs, lang, over_fills=True) + handles
        numbers: dict[str, int] = {}
        for titles in failed:
            for t in titles:
                numbers.setdefault(t, len(numbers) + 1)
        marks = ["".join(_circled(k, lang) for k in sorted(numbers[t] for t in titles))
                 for titles in failed]
        if towns is not None:
            _draw_labels(ax, towns, lang, extra=marks)
        handles += _draw_facilities(ax, layers.get("facilities"), crs, lang)
        ax.set_title(_t(lang, "norms"), fontsize=13)
        _finish_axes(ax, handles, lang, _credit_text(study, lang))
        if numbers:
            lines = [_t(lang, "failed")] + [
                f"{_circled(k, lang)} {t if _label_ok(t, lang) else '(see the report)'}"
                for t, k in numbers.items()]
            ax.text(1.02, 0.0, "\n".join(lines), transform=ax.transAxes, ha="left",
                    va="bottom", fontsize=6.5, parse_math=False, linespacing=1.4,
                    bbox={"facecolor": "white", "edgecolor": "#999999", "pad": 3})
        add_margin(fig, study, lang, crs=crs)
    return fig


def population_map(study: Study, *, column: str = "pop_60plus", lang: Lang | None = None) -> Any:
    """Older residents per population unit (five quantile classes), estimates flagged.

    For runs without walking times (no facilities yet), e.g. census counts
    spread over residential land by the demand step.
    """
    import matplotlib
    from matplotlib.patches import Patch

    lang, rc = _resolve_lang(lang or study.lang)
    layers, crs, _ = _layers_of(study)
    pop = _metric(layers.get("population"), crs)
    flag = f" ({_t(lang, 'estimated')})" if study.estimated("population") else ""
    with matplotlib.rc_context(rc):
        fig, ax = _figure()
        handles = _draw_base(ax, layers, crs, lang)
        handles += _draw_townships(ax, layers, crs, lang)
        if pop is not None and column in pop:
            values = pop[column].astype(float).to_numpy()
            edges = np.unique(np.nanquantile(values, [0.2, 0.4, 0.6, 0.8]))
            classes = np.searchsorted(edges, values, side="right")
            colors = ["#fef0d9", "#fdcc8a", "#fc8d59", "#e34a33", "#b30000"]
            bounds = [np.nanmin(values), *edges, np.nanmax(values)]
            for c in range(len(edges) + 1):
                sel = classes == c
                if not sel.any():
                    continue
                pop[sel].plot(ax=ax, color=colors[c], edgecolor="#777777", linewidth=0.2,
                              zorder=4)
                handles.append(Patch(facecolor=colors[c], edgecolor="#777777",
                                     label=f"{bounds[c]:,.0f}–{bounds[c + 1]:,.0f}"))
        handles += _draw_facilities(ax, layers.get("facilities"), crs, lang)
        ax.set_title(_t(lang, "population") + flag, fontsize=13)
        _finish_axes(ax, handles, lang, _credit_text(study, lang))
        add_margin(fig, study, lang, crs=crs)
    return fig


# ---------------------------------------------------------------- saving
def save_figure(fig: Any, path: str | Path, *, dpi: int = 300) -> Path:
    """Save a figure; the format follows the suffix (.png at ``dpi``, .svg vector with its
    text kept as text: the fonts must be installed where the SVG is opened)."""
    import matplotlib

    path = Path(path)
    # SVG text as <text> (editable; fonts named, not outlined): rc at save time counts
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        fig.savefig(path, dpi=dpi, format=path.suffix.lstrip(".") or "png",
                    bbox_inches="tight", pad_inches=0.15, metadata=None)
    return path


def print_maps(study: Study, *, lang: Lang | None = None) -> dict[str, tuple[str, Any]]:
    """Every print map the study's layers allow: name -> (title, figure).

    ``coverage`` (or ``population`` without walking times), ``before_after``
    with proposed sites, ``norm_status`` with townships and norm checks.
    Save each with `save_figure` as PNG (300 dpi) and SVG.
    """
    lang = lang or study.lang
    lay, tab = study.layers, study.tables
    makers = []
    if lay.get("population_access") is not None:
        makers.append(("coverage", coverage_map, {"zh": "养老服务圈覆盖", "en": "Coverage"}))
    elif lay.get("population") is not None:
        makers.append(("population", population_map,
                       {"zh": "老年人口分布", "en": "Older residents"}))
    if lay.get("proposed_sites") is not None:
        makers.append(("before_after", before_after_map,
                       {"zh": "规划前后对比", "en": "Before and after"}))
    if (lay.get("township_norms") is not None
            or (lay.get("townships") is not None and tab.get("norm_checks") is not None)):
        makers.append(("norm_status", norm_status_map,
                       {"zh": "街镇规范达标情况", "en": "Norm status"}))
    return {name: (title.get(lang, name), maker(study, lang=lang))
            for name, maker, title in makers}
