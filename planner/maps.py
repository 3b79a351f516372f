"""Interactive web maps (Folium / Leaflet) that work with no internet.

Functions here add one kind of layer to a given `folium.Map` and return it,
in the style of GeoPandas' ``explore(m=...)``, so they compose in notebooks::

    m = base_map(bounds=bbox)
    add_facilities(m, study.layers["facilities"])
    add_service_areas(m, study.layers["service_areas"])
    finish(m)            # layer control, legend, credit
    save(m, "map.html")

`web_map` draws every layer of a `planner.study.Study` (an absent layer is
simply not drawn).  The map is one self-contained HTML file: Leaflet's JS and CSS
come inlined from the installed ``xstatic-leaflet`` package (BSD-2, the same
files the Leaflet CDN serves) and folium's other CDN links (jQuery,
Bootstrap, Font Awesome) are dropped, because no layer here needs them.
Base tiles are off by default: boundaries, roads and water are drawn from
the data on a plain background.

Every piece of user data that reaches the HTML (names from Shapefiles and
Excel sheets) is HTML-escaped in Python before it is handed to Leaflet,
which puts tooltip and popup text into ``innerHTML``.
"""

from __future__ import annotations

import base64
import copy
import html
import math
import re
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from branca.element import MacroElement
from jinja2 import Template

from planner._errors import OutputError, PlannerWarning
from planner._schema import TIER_LABELS, TIERS
from planner.checks import rows_in_use
from planner.defaults import CIRCLE_MIN, MAP_SIMPLIFY_M
from planner.study import Study

__all__ = ["COORD_DECIMALS", "OSM_CREDIT", "TEXT", "add_blind_spots", "add_boundaries",
           "add_credit", "add_facilities", "add_legend", "add_parks", "add_population",
           "add_population_access", "add_proposed_sites", "add_roads", "add_service_areas",
           "add_township_norms", "add_water", "base_map", "finish", "make_offline", "save", "time_bands",
           "add_labels", "add_title", "map_title", "TILE_PRESETS", "export_tiles", "tiles_datum",
           "total_bounds",
           "iframe_of", "to_html", "to_iframe", "township_status", "web_map"]

if TYPE_CHECKING:  # pragma: no cover
    import folium
    import geopandas as gpd
    import pandas as pd

Lang = Literal["zh", "en"]

#: Coordinates are rounded to this many decimals of a degree (1e-5 deg is about 1 m).
COORD_DECIMALS = 5

OSM_CREDIT = "© OpenStreetMap contributors (ODbL)"

# ---------------------------------------------------------------- labels and colours
TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "facilities": "现有养老设施",
        "proposed": "规划新增设施",
        "service_areas": "步行服务范围",
        "minutes_area": "{m:g} 分钟步行范围",
        "demand": "居住单元（按步行时间）",
        "blind_spots": "服务盲区",
        "townships": "街道/乡镇边界",
        "districts": "区县边界",
        "norms": "街镇达标情况",
        "roads": "步行道路",
        "water": "水系",
        "parks": "公园绿地",
        "legend": "图例",
        "name": "名称",
        "tier": "类型",
        "beds": "床位",
        "pop_60plus": "60岁及以上人口",
        "newly_covered": "新增覆盖老年人",
        "coverage_gain": "覆盖率提高",
        "time_saved": "平均节省步行时间",
        "walk_time": "最近设施步行时间",
        "minutes": "分钟",
        "persons": "人",
        "units": "居住单元数",
        "unreachable": "不可达",
        "band_5": "≤ 5 分钟",
        "band_10": "5–10 分钟",
        "band_15": "10–{m:g} 分钟",
        "band_over": "> {m:g} 分钟",
        "pass": "达标",
        "fail": "未达标",
        "not_assessable": "无法评估",
        "status": "达标情况",
        "all_pass": "全部指标达标",
        "clause": "依据",
        "pp": "个百分点",
        "estimated": "估算",
        "title": "{m:g}分钟养老服务圈",
    },
    "en": {
        "facilities": "Existing facilities",
        "proposed": "Proposed sites",
        "service_areas": "Walking service areas",
        "minutes_area": "{m:g}-minute walk",
        "demand": "Residential units (walking time)",
        "blind_spots": "Blind spots",
        "townships": "Township boundaries",
        "districts": "District boundaries",
        "norms": "Norm status by township",
        "roads": "Walkable roads",
        "water": "Water",
        "parks": "Parks",
        "legend": "Legend",
        "name": "Name",
        "tier": "Tier",
        "beds": "Beds",
        "pop_60plus": "Residents 60+",
        "newly_covered": "Older residents newly covered",
        "coverage_gain": "Coverage gain",
        "time_saved": "Mean walking time saved",
        "walk_time": "Walk to nearest facility",
        "minutes": "min",
        "persons": "persons",
        "units": "Residential units",
        "unreachable": "Unreachable",
        "band_5": "≤ 5 min",
        "band_10": "5–10 min",
        "band_15": "10–{m:g} min",
        "band_over": "> {m:g} min",
        "pass": "Pass",
        "fail": "Fail",
        "not_assessable": "Not assessable",
        "status": "Status",
        "all_pass": "All indicators pass",
        "clause": "Clause",
        "pp": "percentage points",
        "estimated": "estimated",
        "title": "{m:g}-minute elderly-care circle",
    },
}

# Colours are told apart with colour-blind vision too (tests/test_maps.py simulates
# deuteranopia, protanopia and tritanopia): walking times are one hue of blue getting
# lighter (5, 10, 15 minutes: service areas use the same three), beyond the circle is
# orange, unreachable dark grey; the three warnings of old maps that were all red are
# now orange (> 15 min), magenta (blind spot, dashed) and wine red (norm failure, on
# township outlines; passing townships green).
#: Symbol (CSS shape) and colour per facility tier (Paul Tol's muted colours).
TIER_STYLE: dict[str, tuple[str, str]] = {
    "district_home": ("square", "#332288"),
    "township_centre": ("triangle", "#882255"),
    "community_station": ("circle", "#117733"),
    "rural_point": ("diamond", "#999933"),
    "other": ("circle", "#777777"),
}
PROPOSED_COLOR = "#f0e442"
BAND_COLORS = {"5": "#08519c", "10": "#4292c6", "15": "#9ecae1", "over": "#e69f00",
               "unreachable": "#4d4d4d"}
STATUS_COLORS = {"pass": "#4daf4a", "fail": "#67001f", "not_assessable": "#999999"}
MINUTE_COLORS = [BAND_COLORS["5"], BAND_COLORS["10"], BAND_COLORS["15"], "#c6dbef", "#deebf7"]
BLIND_SPOT_COLOR = "#e7298a"
BACKGROUND = "#f5f4ef"


def _t(lang: str, key: str, **kw: Any) -> str:
    text = TEXT.get(lang, TEXT["zh"])[key]
    return text.format(**kw) if kw else text


def _tier_label(tier: str, lang: str) -> str:
    return TIER_LABELS.get(tier, {}).get(lang, str(tier))


def _esc(value: Any) -> str:
    """HTML-escape any value for text content and attributes."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return html.escape(str(value), quote=True)


def _num(value: Any, digits: int = 0) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return _esc(value)
    if math.isnan(v):
        return "–"
    if math.isinf(v):
        return "∞"
    return f"{v:,.{digits}f}"


def _text_or_empty(value: Any) -> str:
    """A table cell as text, with None/NaN as the empty string."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def _rows(pairs: Iterable[tuple[str, str]]) -> str:
    """An HTML table from (label, already-escaped value) pairs."""
    body = "".join(f"<tr><th>{_esc(k)}</th><td>{v}</td></tr>" for k, v in pairs)
    return f'<table class="planner-tip">{body}</table>'


# ---------------------------------------------------------------- offline assets
def _leaflet_dir() -> Path:
    try:
        import xstatic.pkg.leaflet as xleaflet
    except ImportError:  # pragma: no cover - dependency missing
        raise OutputError(
            "The offline map needs Leaflet's files from the `xstatic-leaflet` package, which "
            "is not installed. Install it with `pip install xstatic-leaflet`."
        ) from None
    return Path(xleaflet.BASE_DIR)


def _leaflet_css() -> str:
    """Leaflet's CSS with its images (layer-control icon, markers) inlined as data URIs."""
    folder = _leaflet_dir()
    css = (folder / "leaflet.css").read_text(encoding="utf-8")

    def data_uri(match: re.Match) -> str:
        image = folder / match.group(1)
        if not image.is_file():
            return "none"
        return "url(data:image/png;base64," + base64.b64encode(image.read_bytes()).decode() + ")"

    return re.sub(r"url\((images/[\w.-]+\.png)\)", data_uri, css)


def _leaflet_js() -> str:
    js = (_leaflet_dir() / "leaflet.js").read_text(encoding="utf-8")
    # A literal "</script" would end the inline <script> element early.
    js = js.replace("</script", "<\\/script")
    # Drop the source-map comment: it would make browsers' devtools fetch a file.
    return re.sub(r"//# sourceMappingURL=\S+\s*$", "", js)


_PAGE_CSS = f"""
.leaflet-container {{ background: {BACKGROUND}; font-family: "Noto Sans CJK SC",
  "Microsoft YaHei", "PingFang SC", sans-serif; font-size: 13px; }}
.planner-tip th {{ text-align: left; padding-right: 6px; font-weight: 600; }}
.planner-tip td {{ text-align: right; }}
.planner-legend {{ background: rgba(255,255,255,.92); padding: 6px 9px; border-radius: 4px;
  box-shadow: 0 1px 4px rgba(0,0,0,.3); line-height: 1.5; max-height: 60vh; overflow-y: auto; }}
.planner-legend h4 {{ margin: 0 0 4px; font-size: 13px; }}
.planner-legend .sw {{ display: inline-block; width: 14px; height: 14px; margin-right: 6px;
  vertical-align: middle; }}
.planner-sym {{ display: block; box-sizing: border-box; }}
.planner-legend .planner-sym {{ display: inline-block; margin-right: 6px; vertical-align: middle; }}
.planner-sym.circle {{ border-radius: 50%; }}
.planner-sym.diamond {{ transform: rotate(45deg) scale(.8); }}
.planner-sym.triangle {{ width: 0; height: 0; border-left: 7px solid transparent;
  border-right: 7px solid transparent; border-bottom: 13px solid var(--c);
  filter: drop-shadow(0 0 1px #222); }}
.planner-sym.star {{ background: none !important; color: var(--c); font-size: 22px;
  line-height: 20px; text-align: center; text-shadow: 0 0 2px #000, 0 0 1px #000; }}
.planner-title {{ background: rgba(255,255,255,.92); padding: 4px 12px; border-radius: 4px;
  box-shadow: 0 1px 4px rgba(0,0,0,.3); font-size: 16px; font-weight: 600; }}
.planner-label {{ background: none; border: none; }}
.planner-label span {{ display: block; transform: translate(-50%, -50%); white-space: nowrap;
  font-size: 13px; font-weight: 600; color: #333; text-shadow: 0 0 3px #fff, 0 0 2px #fff,
  0 0 1px #fff; pointer-events: none; }}
"""


def make_offline(m: folium.Map) -> folium.Map:
    """Inline Leaflet's JS/CSS into the map's page and drop every CDN link.

    Folium links Leaflet, jQuery, Bootstrap and Font Awesome from CDNs
    (``Map.default_js`` / ``default_css``); none of the layers here need
    more than Leaflet, so those links are removed and Leaflet is inlined
    from ``xstatic-leaflet``.  Called by `base_map`; use it on a map you
    made yourself.
    """
    from branca.element import Element

    m.default_js = []
    m.default_css = []
    header = m.get_root().header
    header.add_child(Element(f"<style>{_leaflet_css()}</style>"), name="planner_leaflet_css")
    header.add_child(Element(f"<style>{_PAGE_CSS}</style>"), name="planner_css")
    header.add_child(Element(f"<script>{_leaflet_js()}</script>"), name="planner_leaflet_js")
    return m


def _external_links(m: folium.Map) -> list[str]:
    """URLs of every CDN resource a map's elements still ask for."""
    urls = []
    stack = [m.get_root()]
    while stack:
        el = stack.pop()
        for _, url in list(getattr(el, "default_js", [])) + list(getattr(el, "default_css", [])):
            urls.append(url)
        stack.extend(el._children.values())
    return urls


# ---------------------------------------------------------------- geometry preparation
def _opts(m: folium.Map) -> dict[str, Any]:
    opts = getattr(m, "planner_opts", None)
    if opts is None:
        opts = {"lang": "zh", "coord_system": "wgs84", "legend": {}, "credits": []}
        m.planner_opts = opts
    return opts


def _lang(m: folium.Map, lang: Lang | None) -> str:
    return lang or _opts(m)["lang"]


def _to_display(
    gdf: gpd.GeoDataFrame, *, coord_system: str, tolerance_m: float
) -> gpd.GeoDataFrame:
    """Simplify in metres, convert to WGS-84 (or GCJ-02 for GCJ tiles) and round.

    Simplification happens in a metric CRS (the layer's own if projected,
    else a UTM zone), because a tolerance in degrees is not a distance.
    """
    import shapely

    if gdf.crs is None:
        raise OutputError(
            f"A layer with columns {list(gdf.columns)[:8]} has no CRS, so it cannot be put on a "
            "map. Set one with `gdf.set_crs(...)` (run results are in `result.crs`)."
        )
    out = gdf[~(gdf.geometry.isna() | gdf.geometry.is_empty)].copy()
    if len(out) == 0:
        return out
    if tolerance_m > 0 and not (out.geom_type == "Point").all():
        metric = out if out.crs.is_projected else out.to_crs(out.estimate_utm_crs())
        geom = metric.geometry.simplify(tolerance_m, preserve_topology=True)
        out = metric.set_geometry(geom)
    out = out.to_crs(4326)
    if coord_system == "gcj02":
        out = out.set_geometry(_shift_gcj02(out.geometry.values))
    rounded = shapely.transform(out.geometry.values, lambda c: np.round(c, COORD_DECIMALS))
    return out.set_geometry(rounded)


def _shift_gcj02(geoms: Any) -> Any:
    """Shift WGS-84 geometries into GCJ-02 (for AMap / Tianditu-in-GCJ tiles)."""
    import shapely

    from planner import coords

    def shift(c: np.ndarray) -> np.ndarray:
        lon, lat = coords.wgs84_to_gcj02(c[:, 0], c[:, 1])
        return np.column_stack([np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)])

    return shapely.transform(geoms, shift)


def _features(gdf: gpd.GeoDataFrame, props: list[dict[str, Any]]) -> dict[str, Any]:
    """A GeoJSON FeatureCollection with only the given (already escaped) properties."""
    import shapely

    geoms = shapely.to_geojson(gdf.geometry.values)
    import json

    feats = [
        {"type": "Feature", "id": i, "properties": p, "geometry": json.loads(g)}
        for i, (g, p) in enumerate(zip(geoms, props))
    ]
    return {"type": "FeatureCollection", "features": feats}


def _geojson(
    parent: Any,
    gdf: gpd.GeoDataFrame,
    *,
    style: dict[str, Any],
    tips: list[str] | None = None,
    popups: list[str] | None = None,
    fields: dict[str, list[str]] | None = None,
    marker: Any = None,
    interactive: bool = True,
) -> None:
    """Add one GeoJson layer with a constant style (no per-feature style table).

    ``tips``/``popups`` are whole (escaped) HTML snippets per feature.
    ``fields`` (label → escaped value per feature) makes a tooltip table that
    the browser assembles, so each label is written once, not per feature:
    this keeps maps of thousands of units small.
    """
    import folium

    n = len(gdf)
    if n == 0:
        return
    props: list[dict[str, Any]] = [{} for _ in range(n)]
    for key, values in (("tip", tips), ("popup", popups)):
        if values is not None:
            for p, v in zip(props, values):
                p[key] = v
    tooltip = None
    if fields:
        keys = [f"f{i}" for i in range(len(fields))]
        for key, values in zip(keys, fields.values()):
            for p, v in zip(props, values):
                p[key] = v
        tooltip = folium.GeoJsonTooltip(fields=keys, aliases=[_esc(k) for k in fields],
                                        labels=True, class_name="planner-tip")
    elif tips is not None:
        tooltip = folium.GeoJsonTooltip(fields=["tip"], labels=False)
    data = _features(gdf, props)
    layer = folium.GeoJson(
        data,
        style_function=lambda _f, s=dict(style): s,
        marker=marker,
        tooltip=tooltip,
        popup=folium.GeoJsonPopup(fields=["popup"], labels=False) if popups is not None else None,
        interactive=interactive,
        control=False,
    )
    layer.add_to(parent)


def _group(m: folium.Map, name: str, *, show: bool = True) -> Any:
    import folium

    group = folium.FeatureGroup(name=html.escape(name), show=show)
    group.add_to(m)
    return group


def _legend_add(m: folium.Map, section: str, items: list[tuple[str, str]],
                groups: Any = None) -> None:
    """Register legend entries: (swatch HTML, label) under a section title.

    ``groups``: the layer group each entry describes (one group for all, or
    a list, one per entry); the legend shows an entry only while one of its
    groups is on the map.
    """
    if groups is None or not isinstance(groups, (list, tuple)):
        groups = [groups] * len(items)
    names = [g.get_name() if g is not None else None for g in groups]
    _opts(m)["legend"][section] = [(sw, label, name) for (sw, label), name in zip(items, names)]


def _swatch(color: str, *, kind: str = "fill", opacity: float = 0.6) -> str:
    if kind == "line":
        return f'<span class="sw" style="border-bottom:3px solid {color};height:8px"></span>'
    if kind == "outline":
        return f'<span class="sw" style="border:2px solid {color}"></span>'
    return (f'<span class="sw" style="background:{color};opacity:{opacity};'
            f'border:1px solid {color}"></span>')


def _symbol(shape: str, color: str, size: int = 12) -> str:
    if shape == "triangle":  # drawn with CSS borders, so no inline border/background here
        return f'<span class="planner-sym triangle" style="--c:{color}"></span>'
    return (f'<span class="planner-sym {shape}" style="--c:{color};width:{size}px;'
            f'height:{size}px;background:{color};border:1px solid #222"></span>')


def _cols(gdf: Any, *names: str) -> str | None:
    for n in names:
        if n in gdf.columns:
            return n
    return None


# ---------------------------------------------------------------- the base map
#: Named base maps: URL template(s), datum, attribution, subdomains, maximum zoom.
#: AMap (高德) and Tencent tiles are in GCJ-02; Tianditu (天地图) is CGCS2000, which
#: agrees with WGS-84 to a few centimetres, so its tiles need no shift (but a ``tk`` key,
#: free from https://console.tianditu.gov.cn); Baidu uses its own projection and tile
#: grid (BD-09 on a custom Mercator), which Leaflet cannot show without a plugin.
TILE_PRESETS: dict[str, dict[str, Any]] = {
    "amap": {"urls": ["https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1"
                      "&style=8&x={x}&y={y}&z={z}"],
             "datum": "gcj02", "attribution": "© 高德地图 AutoNavi", "subdomains": "1234",
             "max_zoom": 18},
    "amap.satellite": {"urls": ["https://webst0{s}.is.autonavi.com/appmaptile?style=6&x={x}"
                                "&y={y}&z={z}",
                                "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1"
                                "&scale=1&style=8&x={x}&y={y}&z={z}&ltype=4"],
                       "datum": "gcj02", "attribution": "© 高德地图 AutoNavi",
                       "subdomains": "1234", "max_zoom": 18},
    "tianditu": {"urls": ["https://t{s}.tianditu.gov.cn/DataServer?T=vec_w&x={x}&y={y}&l={z}"
                          "&tk={tk}",
                          "https://t{s}.tianditu.gov.cn/DataServer?T=cva_w&x={x}&y={y}&l={z}"
                          "&tk={tk}"],
                 "datum": "wgs84", "attribution": "© 天地图 Tianditu", "subdomains": "01234567",
                 "max_zoom": 18, "key": True},
    "tianditu.satellite": {"urls": ["https://t{s}.tianditu.gov.cn/DataServer?T=img_w&x={x}"
                                    "&y={y}&l={z}&tk={tk}",
                                    "https://t{s}.tianditu.gov.cn/DataServer?T=cia_w&x={x}"
                                    "&y={y}&l={z}&tk={tk}"],
                           "datum": "wgs84", "attribution": "© 天地图 Tianditu",
                           "subdomains": "01234567", "max_zoom": 18, "key": True},
}
_GCJ_PROVIDERS = ("gaode", "amap", "autonavi", "tencent", "gtimg", "map.qq")


def tiles_datum(tiles: str | None) -> str:
    """The datum a tile source is drawn in: ``"gcj02"`` for AMap/Gaode and Tencent,
    ``"bd09"`` for Baidu, else ``"wgs84"`` (OSM, Esri, Tianditu's CGCS2000, local tiles)."""
    if not tiles:
        return "wgs84"
    key = tiles.strip().lower()
    if key in TILE_PRESETS:
        return TILE_PRESETS[key]["datum"]
    if "://" in key:
        host = re.sub(r"^\w+://", "", key).split("/")[0]
    elif "/" in key or "\\" in key:  # a local folder or a relative template: as stated
        return "wgs84"
    else:  # an xyzservices name: Gaode.Normal
        host = key.split(".")[0]
    if "baidu" in host or "bdimg" in host:
        return "bd09"
    if any(p in host for p in _GCJ_PROVIDERS):
        return "gcj02"
    return "wgs84"


def base_map(
    *,
    bounds: tuple[float, float, float, float] | None = None,
    tiles: str | None = None,
    tiles_coord_system: Literal["wgs84", "gcj02", "bd09"] | None = None,
    tiles_attribution: str | None = None,
    tiles_key: str | None = None,
    tiles_max_zoom: int | None = None,
    lang: Lang = "zh",
    height: str = "100%",
) -> folium.Map:
    """A Leaflet map that works offline: no tiles unless asked, assets inlined.

    Parameters
    ----------
    bounds
        (minx, miny, maxx, maxy) in WGS-84 degrees (lon/lat) to fit the view to.
    tiles
        ``None`` (default): no base tiles, a plain background.  Otherwise a
        named base map (``"amap"``, ``"amap.satellite"``, ``"tianditu"``,
        ``"tianditu.satellite"``: `TILE_PRESETS`), an XYZ URL template
        (``https://.../{z}/{x}/{y}.png``; a relative one such as
        ``tiles/{z}/{x}/{y}.png`` for tiles beside the page, see
        `export_tiles`), or an ``xyzservices`` provider name
        (``"OpenStreetMap.Mapnik"``, ``"Gaode.Normal"``).  Online sources need
        the internet when the map is opened.
    tiles_coord_system
        Datum of the tiles; ``None`` (default) takes it from the source
        (`tiles_datum`: AMap/Gaode and Tencent are GCJ-02, Tianditu and OSM
        WGS-84).  With ``"gcj02"`` every layer drawn on this map is shifted
        into GCJ-02 so data and tiles line up.  ``"bd09"`` (Baidu) is refused:
        Baidu tiles use their own projection and tile grid.
    tiles_attribution
        Credit shown for the tiles (default: the provider's or the host name).
    tiles_key
        The key a named base map needs (Tianditu's ``tk``).
    tiles_max_zoom
        The deepest zoom the tiles exist at (local tiles); Leaflet zooms no
        further than this.
    lang
        ``"zh"`` (default) or ``"en"`` for every label that the layer
        functions add to this map.
    height
        CSS height of the map element.

    Returns
    -------
    folium.Map
    """
    import folium

    datum = _check_datum(tiles, tiles_coord_system)
    m = folium.Map(
        tiles=None,
        control_scale=False,
        prefer_canvas=False,
        height=height,
        zoom_start=13,
        zoom_snap=0.25,  # fit the study area closely, not to the next whole zoom level
        zoom_delta=0.5,
        location=None if bounds is None else [(bounds[1] + bounds[3]) / 2,
                                              (bounds[0] + bounds[2]) / 2],
    )
    _opts(m).update(lang=lang, coord_system=datum)
    make_offline(m)
    m.add_child(_Scale())
    if tiles:
        _add_tiles(m, tiles, attribution=tiles_attribution, key=tiles_key,
                   max_zoom=tiles_max_zoom)
    if bounds is not None:
        sw_ne = _display_bounds(bounds, m.planner_opts["coord_system"])
        m.fit_bounds(sw_ne, max_zoom=tiles_max_zoom)
    return m


def _check_datum(tiles: str | None, given: str | None) -> str:
    """The datum data is drawn in: the tiles' own; an explicit mismatch is an error."""
    if not tiles:
        return "wgs84"
    own = tiles_datum(tiles)
    datum = given or own
    if datum == "bd09" or own == "bd09":
        raise OutputError(
            "Baidu tiles (BD-09) are not supported: Baidu draws its tiles in its own "
            "projection and tile grid, which Leaflet cannot show. Use AMap (`tiles: amap`, "
            "GCJ-02, shifted for you), Tianditu (`tiles: tianditu` with `tiles_key`, no shift) "
            "or OpenStreetMap tiles instead.")
    if given is not None and own == "gcj02" and given != "gcj02":
        raise OutputError(
            f"tiles {tiles!r} are drawn in GCJ-02, but tiles_coord_system is {given!r}: the "
            "data would sit 100-700 m off the streets. Leave tiles_coord_system empty (it "
            "follows the tiles) or set it to gcj02.")
    return datum


def _display_bounds(bounds: tuple[float, float, float, float], coord_system: str) -> list:
    minx, miny, maxx, maxy = bounds
    if coord_system == "gcj02":
        from planner import coords

        xs, ys = coords.wgs84_to_gcj02(np.array([minx, maxx]), np.array([miny, maxy]))
        minx, maxx = float(xs[0]), float(xs[1])
        miny, maxy = float(ys[0]), float(ys[1])
    return [[miny, minx], [maxy, maxx]]


#: A transparent 1×1 PNG for tiles that do not exist (no broken-image icons).
_EMPTY_TILE = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQV"
               "R42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=")


def _add_tiles(m: folium.Map, tiles: str, *, attribution: str | None, key: str | None = None,
               max_zoom: int | None = None) -> None:
    import folium

    preset = TILE_PRESETS.get(tiles.strip().lower())
    if preset is not None:
        if preset.get("key") and not key:
            raise OutputError(
                f"Base map {tiles!r} needs its key: set `tiles_key` (Tianditu's `tk`, free "
                "from https://console.tianditu.gov.cn after registering).")
        for i, url in enumerate(preset["urls"]):
            url = url.replace("{tk}", key or "")
            folium.TileLayer(tiles=url, attr=attribution or preset["attribution"],
                             name=f"tiles{i}", control=False, subdomains=preset["subdomains"],
                             max_zoom=max_zoom or preset["max_zoom"]).add_to(m)
        return
    if "{" in tiles:
        local = "://" not in tiles
        if attribution is None:
            host = re.sub(r"^\w+://", "", tiles).split("/")[0]
            attribution = "Tiles: local copy" if local else f"Tiles: {host}"
        kw: dict[str, Any] = {"max_zoom": 18}
        if max_zoom is not None:
            kw = {"max_zoom": max_zoom, "max_native_zoom": max_zoom}
        folium.TileLayer(tiles=tiles, attr=html.escape(attribution), name="tiles",
                         control=False, errorTileUrl=_EMPTY_TILE, **kw).add_to(m)
        return
    try:
        import xyzservices

        provider = xyzservices.providers.query_name(tiles)
    except (ValueError, ImportError):
        raise OutputError(
            f"Unknown tile source {tiles!r}. Give a named base map ({', '.join(TILE_PRESETS)}), "
            "an XYZ URL template with {z}/{x}/{y} (outputs.tiles in the scenario), a local "
            "tile folder or .mbtiles file (scenario runs), or an xyzservices provider name such "
            "as 'OpenStreetMap.Mapnik'; leave it empty for an offline map without tiles."
        ) from None
    folium.TileLayer(tiles=provider.build_url(), attr=attribution or provider.html_attribution,
                     name=provider.name, control=False,
                     max_zoom=provider.get("max_zoom", 18)).add_to(m)


# ---------------------------------------------------------------- local tiles
def _tile_range(bounds: tuple[float, float, float, float], z: int) -> tuple[int, int, int, int]:
    """(x0, x1, y0, y1) of the XYZ (Web Mercator, y down) tiles covering a lon/lat box."""
    minx, miny, maxx, maxy = bounds
    n = 2 ** z

    def tx(lon: float) -> int:
        return int(np.clip(np.floor((lon + 180.0) / 360.0 * n), 0, n - 1))

    def ty(lat: float) -> int:
        lat = np.radians(np.clip(lat, -85.0511, 85.0511))
        return int(np.clip(np.floor((1 - np.log(np.tan(lat) + 1 / np.cos(lat)) / np.pi) / 2 * n),
                           0, n - 1))

    return tx(minx), tx(maxx), ty(maxy), ty(miny)


def export_tiles(
    source: str | Path,
    dest: str | Path,
    *,
    bounds: tuple[float, float, float, float],
    coord_system: str = "wgs84",
    margin: float = 0.5,
) -> dict[str, Any]:
    """Copy the tiles of a local tile folder or MBTiles file that cover ``bounds`` into ``dest``.

    A map opened from ``file://`` loads tiles from a folder beside it
    (``dest/{z}/{x}/{y}.png``) with no server; an MBTiles file is a SQLite
    database the browser cannot read, so its tiles are written out (only
    those over the study area, ``bounds`` widened by ``margin`` of its size
    on each side, at every zoom the source has).  A folder must hold
    ``{z}/{x}/{y}.png|jpg|jpeg|webp`` (XYZ numbering, y down).

    Parameters
    ----------
    source
        The tile folder or ``.mbtiles`` file (raster tiles; vector ``pbf``
        tiles are refused).
    dest
        The folder to write (created).
    bounds
        (minx, miny, maxx, maxy) of the study in WGS-84 lon/lat.
    coord_system
        The tiles' datum (``"gcj02"`` for tiles saved from AMap): the box is
        shifted the same way before tiles are chosen.

    Returns
    -------
    dict
        ``template`` (``"<dest name>/{z}/{x}/{y}.<ext>"``, relative to
        ``dest``'s parent), ``min_zoom``, ``max_zoom``, ``n_tiles``.
    """
    source, dest = Path(source), Path(dest)
    if not source.exists():
        raise OutputError(f"Tile source {source} does not exist. Give a tile folder "
                          "({z}/{x}/{y}.png) or an .mbtiles file.")
    minx, miny, maxx, maxy = bounds
    if coord_system == "gcj02":
        from planner import coords

        xs, ys = coords.wgs84_to_gcj02(np.array([minx, maxx]), np.array([miny, maxy]))
        minx, maxx, miny, maxy = float(xs[0]), float(xs[1]), float(ys[0]), float(ys[1])
    w, h = maxx - minx, maxy - miny
    box = (minx - margin * w, miny - margin * h, maxx + margin * w, maxy + margin * h)
    if source.is_file():
        tiles, ext = _mbtiles(source, box)
    else:
        tiles, ext = _tile_folder(source, box)
    if not tiles:
        raise OutputError(
            f"Tile source {source} has no tile over the study area {tuple(round(v, 4) for v in box)}"
            " (lon/lat). Check that it covers the study and uses XYZ numbering (an MBTiles file "
            "is read as TMS, as the format says).")
    for (z, x, y), data in tiles.items():
        path = dest / str(z) / str(x) / f"{y}.{ext}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data() if callable(data) else data)
    zooms = sorted({z for z, _, _ in tiles})
    return {"template": f"{dest.name}/{{z}}/{{x}}/{{y}}.{ext}", "min_zoom": zooms[0],
            "max_zoom": zooms[-1], "n_tiles": len(tiles)}


def _mbtiles(path: Path, box: tuple[float, float, float, float]) -> tuple[dict, str]:
    import sqlite3

    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        meta = dict(con.execute("SELECT name, value FROM metadata").fetchall())
        zooms = [r[0] for r in con.execute("SELECT DISTINCT zoom_level FROM tiles")]
    except sqlite3.DatabaseError as exc:
        raise OutputError(f"{path} is not an MBTiles file ({exc}).") from None
    ext = str(meta.get("format", "png")).lower()
    if ext in ("pbf", "mvt"):
        raise OutputError(f"{path} holds vector tiles ({ext}); the web map needs raster tiles "
                          "(png/jpg/webp). Render them to raster tiles first.")
    out = {}
    with con:
        for z in zooms:
            x0, x1, y0, y1 = _tile_range(box, int(z))
            n = 2 ** int(z)
            # MBTiles rows are TMS (y up): row = 2^z - 1 - y
            rows = con.execute(
                "SELECT tile_column, tile_row, tile_data FROM tiles WHERE zoom_level = ? AND "
                "tile_column BETWEEN ? AND ? AND tile_row BETWEEN ? AND ?",
                (z, x0, x1, n - 1 - y1, n - 1 - y0)).fetchall()
            for x, row, data in rows:
                out[(int(z), int(x), n - 1 - int(row))] = bytes(data)
    con.close()
    return out, "jpg" if ext == "jpeg" else ext


def _tile_folder(folder: Path, box: tuple[float, float, float, float]) -> tuple[dict, str]:
    out: dict = {}
    ext = None
    for zdir in sorted(p for p in folder.iterdir() if p.is_dir() and p.name.isdigit()):
        z = int(zdir.name)
        x0, x1, y0, y1 = _tile_range(box, z)
        for x in range(x0, x1 + 1):
            for y in range(y0, y1 + 1):
                for e in ("png", "jpg", "jpeg", "webp"):
                    f = zdir / str(x) / f"{y}.{e}"
                    if f.is_file():
                        ext = ext or e
                        out[(z, x, y)] = f.read_bytes
                        break
    return out, ext or "png"


# ---------------------------------------------------------------- background layers
def add_roads(
    m: folium.Map, edges: gpd.GeoDataFrame, *, lang: Lang | None = None,
    tolerance_m: float = 3.0, color: str = "#b0b0b0", show: bool = True,
) -> folium.Map:
    """Draw the walkable network as thin grey lines (merged into one feature).

    Thousands of edges become one MultiLineString: per-edge features would
    only add bytes, since roads have no tooltip.
    """
    import geopandas as gpd
    import shapely

    if edges is None or len(edges) == 0:
        return m
    lang = _lang(m, lang)
    disp = _to_display(edges, coord_system=_opts(m)["coord_system"], tolerance_m=tolerance_m)
    lines = shapely.get_parts(disp.geometry.values)
    merged = gpd.GeoDataFrame(geometry=[shapely.multilinestrings(lines)], crs=4326)
    group = _group(m, _t(lang, "roads"), show=show)
    _geojson(group, merged, style={"color": color, "weight": 1, "opacity": 0.9},
             interactive=False)
    _legend_add(m, "roads", [(_swatch(color, kind="line"), _t(lang, "roads"))], group)
    return m


def _add_plain_polygons(m: folium.Map, gdf: Any, *, key: str, color: str, lang: Lang | None,
                        tolerance_m: float, fill_opacity: float = 0.5,
                        show: bool = True) -> folium.Map:
    if gdf is None or len(gdf) == 0:
        return m
    lang = _lang(m, lang)
    disp = _to_display(gdf, coord_system=_opts(m)["coord_system"], tolerance_m=tolerance_m)
    group = _group(m, _t(lang, key), show=show)
    _geojson(group, disp, style={"color": color, "weight": 0.5, "fillColor": color,
                                 "fillOpacity": fill_opacity}, interactive=False)
    _legend_add(m, key, [(_swatch(color), _t(lang, key))], group)
    return m


def add_water(m: folium.Map, water: gpd.GeoDataFrame, *, lang: Lang | None = None,
              tolerance_m: float = MAP_SIMPLIFY_M, show: bool = True) -> folium.Map:
    """Draw rivers and lakes (polygons or lines) in light blue."""
    return _add_plain_polygons(m, water, key="water", color="#a6cee3", lang=lang,
                               tolerance_m=tolerance_m, fill_opacity=0.7, show=show)


def add_parks(m: folium.Map, parks: gpd.GeoDataFrame, *, lang: Lang | None = None,
              tolerance_m: float = MAP_SIMPLIFY_M, show: bool = True) -> folium.Map:
    """Draw parks and green space in light green."""
    return _add_plain_polygons(m, parks, key="parks", color="#c7e9c0", lang=lang,
                               tolerance_m=tolerance_m, fill_opacity=0.7, show=show)


def add_boundaries(
    m: folium.Map, boundaries: gpd.GeoDataFrame, *, kind: Literal["townships", "districts"] =
    "townships", lang: Lang | None = None, tolerance_m: float = MAP_SIMPLIFY_M, show: bool = True,
) -> folium.Map:
    """Draw township or district outlines with their names on hover."""
    if boundaries is None or len(boundaries) == 0:
        return m
    lang = _lang(m, lang)
    disp = _to_display(boundaries, coord_system=_opts(m)["coord_system"], tolerance_m=tolerance_m)
    name = _cols(disp, "name")
    tips = [_esc(v) for v in disp[name]] if name else None
    color = "#555555" if kind == "townships" else "#222222"
    weight = 1.2 if kind == "townships" else 2.5
    group = _group(m, _t(lang, kind), show=show)
    _geojson(group, disp, style={"color": color, "weight": weight, "fill": False,
                                 "dashArray": "4 3" if kind == "townships" else None},
             tips=tips)
    _legend_add(m, kind, [(_swatch(color, kind="line"), _t(lang, kind))], group)
    return m


# ---------------------------------------------------------------- analysis layers
def add_service_areas(
    m: folium.Map, service_areas: gpd.GeoDataFrame, *, lang: Lang | None = None,
    tolerance_m: float = 10.0, dissolve: bool = True, show: bool = True,
) -> folium.Map:
    """Draw the walking service areas, one toggleable group per threshold.

    Parameters
    ----------
    service_areas
        Polygons with a ``minutes`` column (and ``facility_id``, ``tier``) as
        made by the access step.
    dissolve
        Merge the polygons of each threshold into one (smaller file, and
        overlaps do not darken), default True.
    """
    import geopandas as gpd
    import shapely

    if service_areas is None or len(service_areas) == 0 or "minutes" not in service_areas:
        return m
    lang = _lang(m, lang)
    disp = _to_display(service_areas, coord_system=_opts(m)["coord_system"],
                       tolerance_m=tolerance_m)
    items, groups = [], []
    minutes = sorted(disp["minutes"].dropna().unique())
    for i, minute in enumerate(reversed(minutes)):
        part = disp[disp["minutes"] == minute]
        if dissolve:
            geom = shapely.union_all(shapely.make_valid(part.geometry.values))
            part = gpd.GeoDataFrame(geometry=[geom], crs=4326)
        color = MINUTE_COLORS[min(len(minutes) - 1 - i, len(MINUTE_COLORS) - 1)]
        label = _t(lang, "minutes_area", m=float(minute))
        group = _group(m, f"{_t(lang, 'service_areas')}: {label}", show=show)
        _geojson(group, part, style={"color": color, "weight": 1, "fillColor": color,
                                     "fillOpacity": 0.18}, interactive=False)
        items.append((_swatch(color, opacity=0.35), label))
        groups.append(group)
    _legend_add(m, "service_areas", list(reversed(items)), list(reversed(groups)))
    return m


def time_bands(times: Any, circle_min: float) -> np.ndarray:
    """The band of each walking time in minutes, as keys of `BAND_COLORS`.

    ``"5"``, ``"10"``, ``"15"`` (up to ``circle_min``), ``"over"``, and
    ``"unreachable"`` for NaN or infinite times.
    """
    t = np.asarray(times, dtype=float)
    return np.select([~np.isfinite(t), t <= 5, t <= 10, t <= circle_min],
                     ["unreachable", "5", "10", "15"], "over")


def add_population_access(
    m: folium.Map, population_access: gpd.GeoDataFrame, *, time_column: str = "time_min_any",
    circle_min: float = CIRCLE_MIN, lang: Lang | None = None, tolerance_m: float = MAP_SIMPLIFY_M,
    show: bool = True,
) -> folium.Map:
    """Draw demand units coloured by walking time to the nearest facility.

    Bands: ≤5, 5–10, 10–``circle_min``, over, and unreachable (no facility
    within the cut-off).  Points become small circles; polygons are filled.
    """
    import folium

    if population_access is None or len(population_access) == 0:
        return m
    if time_column not in population_access:
        warnings.warn(PlannerWarning(
            f"population_access has no column {time_column!r}; demand units are not drawn. "
            f"Columns are {list(population_access.columns)}; pass time_column=...",
            f"population_access 没有 {time_column!r} 列，未绘制需求单元。其列为 "
            f"{list(population_access.columns)}；请传入 time_column=..."), stacklevel=2)
        return m
    lang = _lang(m, lang)
    disp = _to_display(population_access, coord_system=_opts(m)["coord_system"],
                       tolerance_m=tolerance_m)
    times = disp[time_column].astype(float).to_numpy()
    bands = time_bands(times, circle_min)
    unit = _t(lang, "minutes")
    columns: dict[str, list[str]] = {}
    if "name" in disp:
        columns[_t(lang, "name")] = [_esc(v) for v in disp["name"]]
    if "pop_60plus" in disp:
        columns[_t(lang, "pop_60plus")] = [_num(v) for v in disp["pop_60plus"]]
    columns[_t(lang, "walk_time")] = [
        f"{t:.1f} {unit}" if np.isfinite(t) else _t(lang, "unreachable") for t in times]

    def tips(idx: np.ndarray) -> dict[str, list[str]]:
        return {label: [values[i] for i in idx] for label, values in columns.items()}

    group = _group(m, _t(lang, "demand"), show=show)
    points = (disp.geom_type == "Point").to_numpy()
    labels = {"5": _t(lang, "band_5"), "10": _t(lang, "band_10"),
              "15": _t(lang, "band_15", m=circle_min),
              "over": _t(lang, "band_over", m=circle_min), "unreachable": _t(lang, "unreachable")}
    items = []
    for band in ("5", "10", "15", "over", "unreachable"):
        sel = bands == band
        if not sel.any():
            continue
        color = BAND_COLORS[band]
        idx = np.flatnonzero(sel & ~points)
        _geojson(group, disp.iloc[idx], style={"color": color, "weight": 0.5, "fillColor": color,
                                                "fillOpacity": 0.65}, fields=tips(idx))
        idx = np.flatnonzero(sel & points)
        _geojson(group, disp.iloc[idx], style={"color": "#333333", "weight": 1, "fill": True,
                                                "fillColor": color, "fillOpacity": 0.9},
                 fields=tips(idx), marker=folium.CircleMarker(radius=4))
        items.append((_swatch(color, opacity=0.8), labels[band]))
    _legend_add(m, "demand", items, group)
    return m


def add_population(
    m: folium.Map, population: gpd.GeoDataFrame, *, column: str = "pop_60plus",
    estimated: bool = False, lang: Lang | None = None, tolerance_m: float = MAP_SIMPLIFY_M,
    show: bool = True,
) -> folium.Map:
    """Draw population units shaded by ``column`` (five quantile classes).

    Used where no walking times exist yet (no facilities).  ``estimated``
    marks the counts as estimates (e.g. census spread over residential land)
    in the tooltip and the legend.
    """
    if population is None or len(population) == 0 or column not in population:
        return m
    lang = _lang(m, lang)
    disp = _to_display(population, coord_system=_opts(m)["coord_system"],
                       tolerance_m=tolerance_m)
    values = disp[column].astype(float).to_numpy()
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return m
    edges = np.unique(np.quantile(finite, [0.2, 0.4, 0.6, 0.8]))
    classes = np.searchsorted(edges, values, side="right")
    colors = ["#fef0d9", "#fdcc8a", "#fc8d59", "#e34a33", "#b30000"]
    flag = f" ({_t(lang, 'estimated')})" if estimated else ""
    name = _cols(disp, "name")
    label = _t(lang, "pop_60plus") if column == "pop_60plus" else column
    tips = [_rows(([(_t(lang, "name"), _esc(disp[name].iloc[k]))] if name else [])
                  + [(label + flag, _num(values[k]))]) for k in range(len(disp))]
    group = _group(m, label + flag, show=show)
    items = []
    bounds = [float(finite.min())] + [float(e) for e in edges] + [float(finite.max())]
    for c in range(len(edges) + 1):
        idx = np.flatnonzero(classes == c)
        if len(idx) == 0:
            continue
        color = colors[min(c, len(colors) - 1)]
        _geojson(group, disp.iloc[idx], style={"color": "#777777", "weight": 0.4,
                                                "fillColor": color, "fillOpacity": 0.75},
                 tips=[tips[i] for i in idx])
        items.append((_swatch(color, opacity=0.9),
                      f"{_num(bounds[c])}–{_num(bounds[min(c + 1, len(bounds) - 1)])}"))
    _legend_add(m, "population", [("", label + flag)] + items, group)
    return m


def add_blind_spots(
    m: folium.Map, blind_spots: gpd.GeoDataFrame, *, lang: Lang | None = None,
    tolerance_m: float = MAP_SIMPLIFY_M, show: bool = True,
) -> folium.Map:
    """Draw the gap areas of uncovered older residents (``pop_60plus``, ``n_units``)."""
    if blind_spots is None or len(blind_spots) == 0:
        return m
    lang = _lang(m, lang)
    disp = _to_display(blind_spots, coord_system=_opts(m)["coord_system"], tolerance_m=tolerance_m)
    tips = []
    for _, row in disp.iterrows():
        pairs = [(_t(lang, "blind_spots"), "")]
        if "pop_60plus" in disp:
            pairs.append((_t(lang, "pop_60plus"), _num(row["pop_60plus"])))
        if "n_units" in disp:
            pairs.append((_t(lang, "units"), _num(row["n_units"])))
        tips.append(_rows(pairs))
    group = _group(m, _t(lang, "blind_spots"), show=show)
    _geojson(group, disp, style={"color": BLIND_SPOT_COLOR, "weight": 2.5, "dashArray": "6 4",
                                 "fillColor": BLIND_SPOT_COLOR, "fillOpacity": 0.3}, tips=tips)
    _legend_add(m, "blind_spots", [(_swatch(BLIND_SPOT_COLOR, opacity=0.5),
                                    _t(lang, "blind_spots"))], group)
    return m


def _point_layer(disp: Any) -> Any:
    """Representative points of any geometry (facilities may come as polygons)."""
    if (disp.geom_type == "Point").all():
        return disp
    return disp.set_geometry(disp.geometry.representative_point())


def add_facilities(
    m: folium.Map, facilities: gpd.GeoDataFrame, *, lang: Lang | None = None,
    show: bool = True,
) -> folium.Map:
    """Draw existing facilities, one group and one symbol per tier."""
    import folium

    if facilities is None or len(facilities) == 0:
        return m
    lang = _lang(m, lang)
    disp = _point_layer(_to_display(facilities, coord_system=_opts(m)["coord_system"],
                                    tolerance_m=0))
    tiers = disp["tier"].astype(str) if "tier" in disp else None
    items, groups = [], []
    order = list(TIERS) + sorted(set(tiers) - set(TIERS)) if tiers is not None else ["other"]
    for tier in order:
        part = disp if tiers is None else disp[tiers == tier]
        if len(part) == 0:
            continue
        shape, color = TIER_STYLE.get(tier, TIER_STYLE["other"])
        label = _tier_label(tier, lang)
        tips = []
        for _, row in part.iterrows():
            pairs = [(_t(lang, "name"), _esc(row.get("name"))), (_t(lang, "tier"), _esc(label))]
            if "beds" in part and row.get("beds") == row.get("beds"):
                pairs.append((_t(lang, "beds"), _num(row["beds"])))
            tips.append(_rows(pairs))
        size = 12 if tier != "community_station" else 10
        icon = folium.DivIcon(html=_symbol(shape, color, size), icon_size=(size, size),
                              icon_anchor=(size // 2, size // 2), class_name="planner-icon")
        group = _group(m, f"{_t(lang, 'facilities')}: {label}", show=show)
        _geojson(group, part, style={}, tips=tips, marker=folium.Marker(icon=icon))
        items.append((_symbol(shape, color, 12), label))
        groups.append(group)
    _legend_add(m, "facilities", items, groups)
    return m


def add_proposed_sites(
    m: folium.Map, proposed_sites: gpd.GeoDataFrame, *, total_pop_60plus: float | None = None,
    lang: Lang | None = None, show: bool = True,
) -> folium.Map:
    """Draw proposed sites as stars with a popup.

    The popup gives the name, tier, older residents newly covered
    (``pop_60plus_newly_covered``), the coverage gain (column
    ``coverage_gain`` as a share, else newly covered / ``total_pop_60plus``)
    and the mean walking time saved (``time_saved_min``) when present.
    """
    import folium

    if proposed_sites is None or len(proposed_sites) == 0:
        return m
    lang = _lang(m, lang)
    disp = _point_layer(_to_display(proposed_sites, coord_system=_opts(m)["coord_system"],
                                    tolerance_m=0))
    popups, tips = [], []
    for _, row in disp.iterrows():
        tier = str(row.get("tier", "other"))
        pairs = [(_t(lang, "name"), _esc(row.get("name", row.get("id")))),
                 (_t(lang, "tier"), _esc(_tier_label(tier, lang)))]
        newly = row.get("pop_60plus_newly_covered")
        if newly is not None:
            pairs.append((_t(lang, "newly_covered"), f"{_num(newly)} {_t(lang, 'persons')}"))
        gain = row.get("coverage_gain")
        if gain is None and newly is not None and total_pop_60plus:
            gain = float(newly) / float(total_pop_60plus)
        if gain is not None and gain == gain:
            pairs.append((_t(lang, "coverage_gain"), f"{100 * float(gain):.1f} {_t(lang, 'pp')}"))
        saved = row.get("time_saved_min")
        if saved is not None and saved == saved:
            pairs.append((_t(lang, "time_saved"), f"{float(saved):.1f} {_t(lang, 'minutes')}"))
        popups.append(_rows(pairs))
        tips.append(_esc(row.get("name", row.get("id"))))
    icon = folium.DivIcon(html=f'<span class="planner-sym star" style="--c:{PROPOSED_COLOR}">'
                               "★</span>", icon_size=(22, 22), icon_anchor=(11, 11),
                          class_name="planner-icon")
    group = _group(m, _t(lang, "proposed"), show=show)
    _geojson(group, disp, style={}, tips=tips, popups=popups, marker=folium.Marker(icon=icon))
    _legend_add(m, "proposed", [(f'<span class="sw" style="color:{PROPOSED_COLOR};'
                                 'text-shadow:0 0 2px #000">★</span>', _t(lang, "proposed"))],
                group)
    return m


def township_status(
    townships: gpd.GeoDataFrame, norm_checks: pd.DataFrame | None, *, lang: Lang = "zh",
) -> tuple[list[str], list[list[dict[str, Any]]]]:
    """Norm status per township and its failing checks, in the layer's row order.

    Status is ``"fail"`` if any check of the township fails,
    ``"not_assessable"`` if none fails but some cannot be assessed, else
    ``"pass"``.  Checks are matched on ``unit_id`` (to ``id``) or
    ``unit_name`` (to ``name``); without a table the layer's ``status``
    column is used.
    """
    n = len(townships)
    statuses: list[str] = []
    failing: list[list[dict[str, Any]]] = [[] for _ in range(n)]
    if norm_checks is None or len(norm_checks) == 0 or "status" not in norm_checks:
        col = _cols(townships, "status", "norm_status")
        statuses = [str(v) if col else "not_assessable" for v in
                    (townships[col] if col else [None] * n)]
        return statuses, failing
    checks = norm_checks
    if "scope" in checks:
        checks = checks[checks["scope"].astype(str).str.startswith("township")]
    by_id: dict[str, list[int]] = {}
    by_name: dict[str, list[int]] = {}
    for i, row in enumerate(checks.itertuples(index=False)):
        if getattr(row, "unit_id", None) is not None:
            by_id.setdefault(str(row.unit_id), []).append(i)
        if getattr(row, "unit_name", None) is not None:
            by_name.setdefault(str(row.unit_name), []).append(i)
    records = checks.to_dict("records")
    for k in range(n):
        rid = str(townships["id"].iloc[k]) if "id" in townships else None
        rname = str(townships["name"].iloc[k]) if "name" in townships else None
        rows = by_id.get(rid) if rid is not None and rid in by_id else by_name.get(rname, [])
        status = {records[i]["status"] for i in rows}
        if "fail" in status:
            statuses.append("fail")
        elif "not_assessable" in status or not status:
            statuses.append("not_assessable")
        else:
            statuses.append("pass")
        failing[k] = [records[i] for i in rows if records[i]["status"] != "pass"]
    return statuses, failing


def add_township_norms(
    m: folium.Map, township_norms: gpd.GeoDataFrame, *, norm_checks: pd.DataFrame | None = None,
    lang: Lang | None = None, tolerance_m: float = MAP_SIMPLIFY_M, show: bool = True,
) -> folium.Map:
    """Colour township boundaries by norm status, with failing clauses on hover."""
    if township_norms is None or len(township_norms) == 0:
        return m
    lang = _lang(m, lang)
    disp = _to_display(township_norms, coord_system=_opts(m)["coord_system"],
                       tolerance_m=tolerance_m)
    statuses, failing = township_status(disp, norm_checks, lang=lang)
    tips = []
    for k in range(len(disp)):
        name = _esc(disp["name"].iloc[k]) if "name" in disp else ""
        lines = [f"<b>{name}</b> · {_esc(_t(lang, statuses[k]))}"]
        for rec in failing[k][:8]:
            detail = _text_or_empty(rec.get("shortfall_text"))
            clause = " ".join(_text_or_empty(rec.get(c)) for c in ("source", "clause")).strip()
            st = TEXT[lang].get(str(rec.get("status")), rec.get("status"))
            line = f"{_esc(rec.get('title', rec.get('rule_id')))}: {_esc(st)}"
            if detail:
                line += f" ({_esc(detail)})"
            if clause:
                line += f"<br><i>{_esc(_t(lang, 'clause'))}: {_esc(clause)}</i>"
            lines.append(line)
        if statuses[k] == "pass":
            lines.append(_esc(_t(lang, "all_pass")))
        tips.append("<br>".join(lines))
    group = _group(m, _t(lang, "norms"), show=show)
    items = []
    for status in ("pass", "fail", "not_assessable"):
        idx = [i for i, s in enumerate(statuses) if s == status]
        if not idx:
            continue
        color = STATUS_COLORS[status]
        _geojson(group, disp.iloc[idx], style={"color": color, "weight": 3, "fillColor": color,
                                                "fillOpacity": 0.12},
                 tips=[tips[i] for i in idx])
        items.append((_swatch(color, kind="outline"), _t(lang, status)))
    _legend_add(m, "norms", items, group)
    return m


# ---------------------------------------------------------------- controls
class _Credit(MacroElement):
    """Adds a line to the map's attribution box (class-level template survives deepcopy)."""

    _template = Template(
        "{% macro script(this, kwargs) %}"
        "{{ this._parent.get_name() }}.attributionControl.addAttribution("
        "{{ this.text|tojson }});"
        "{% endmacro %}")

    def __init__(self, text: str) -> None:
        super().__init__()
        self._name = "PlannerCredit"
        self.text = text


class _Scale(MacroElement):
    """A metric-only scale bar (folium's control_scale also shows feet and miles)."""

    _template = Template(
        "{% macro script(this, kwargs) %}"
        "L.control.scale({imperial: false, maxWidth: 160})"
        ".addTo({{ this._parent.get_name() }});"
        "{% endmacro %}")

    def __init__(self) -> None:
        super().__init__()
        self._name = "PlannerScale"


class _Legend(MacroElement):
    """A Leaflet control holding the legend's (already escaped) HTML.

    Entries with ``data-layers`` (the JS names of their layer groups) are
    shown only while one of those groups is on the map: the legend follows
    the layer control.
    """

    _template = Template(
        "{% macro script(this, kwargs) %}"
        "(function(){var map = {{ this._parent.get_name() }};"
        "var c = L.control({position: {{ this.position|tojson }}});"
        "c.onAdd = function(){var d = L.DomUtil.create('div', 'planner-legend');"
        "d.innerHTML = {{ this.html|tojson }}; L.DomEvent.disableScrollPropagation(d);"
        "return d;}; c.addTo(map);"
        "var d = c.getContainer();"
        "function sync(){var any = false;"
        "d.querySelectorAll('[data-layers]').forEach(function(e){"
        "var on = e.getAttribute('data-layers').split(' ').some(function(n){"
        "return window[n] && map.hasLayer(window[n]);});"
        "e.style.display = on ? '' : 'none'; any = any || on;});"
        "d.style.display = any ? '' : 'none';}"
        "map.on('overlayadd overlayremove layeradd layerremove', sync); sync();})();"
        "{% endmacro %}")

    def __init__(self, html_text: str, position: str) -> None:
        super().__init__()
        self._name = "PlannerLegend"
        self.html = html_text
        self.position = position


def add_credit(m: folium.Map, text: str = OSM_CREDIT) -> folium.Map:
    """Add a credit line (e.g. the OSM/ODbL attribution) to the map's attribution box."""
    opts = _opts(m)
    if text in opts["credits"]:
        return m
    opts["credits"].append(text)
    el = _Credit(html.escape(text))
    m.add_child(el)
    return m


def add_legend(m: folium.Map, *, lang: Lang | None = None,
               position: str = "bottomleft") -> folium.Map:
    """Add a legend control listing what the layer functions drew so far."""
    lang = _lang(m, lang)
    sections = _opts(m)["legend"]
    if not sections:
        return m
    order = ["proposed", "facilities", "service_areas", "demand", "population", "blind_spots",
             "norms",
             "townships", "districts", "roads", "water", "parks"]
    parts = [f"<h4>{_esc(_t(lang, 'legend'))}</h4>"]
    for key in sorted(sections, key=lambda k: order.index(k) if k in order else 99):
        entries = sections[key]
        # an entry without a swatch heads its section: it shows with the section's layers
        names = " ".join(sorted({n for _, _, n in entries if n}))
        for swatch, label, name in entries:
            layers = name or names
            attr = f' data-layers="{_esc(layers)}"' if layers else ""
            parts.append(f"<div{attr}>{swatch}{_esc(label)}</div>")
    el = _Legend("".join(parts), position)
    m.add_child(el)
    return m


class _Title(MacroElement):
    """The map's title in a box at the top centre."""

    _template = Template(
        "{% macro script(this, kwargs) %}"
        "(function(){var c = L.control({position: 'topright'});"
        "c.onAdd = function(){var d = L.DomUtil.create('div', 'planner-title');"
        "d.textContent = {{ this.text|tojson }}; return d;};"
        "c.addTo({{ this._parent.get_name() }});})();"
        "{% endmacro %}")

    def __init__(self, text: str) -> None:
        super().__init__()
        self._name = "PlannerTitle"
        self.text = text


def add_title(m: folium.Map, title: str) -> folium.Map:
    """A title on the map (top right, above the layer control) and as the page's ``<title>``."""
    m.get_root().title = html.escape(title)
    m.add_child(_Title(title))  # set as textContent: never parsed as HTML
    return m


def add_labels(m: folium.Map, areas: gpd.GeoDataFrame, *, column: str = "name",
               tolerance_m: float = MAP_SIMPLIFY_M) -> folium.Map:
    """Names of areas (townships) at a point inside each, always shown (not a layer to
    switch off: they are what a reader finds the map by)."""
    import folium

    if areas is None or len(areas) == 0 or column not in areas:
        return m
    disp = _to_display(areas, coord_system=_opts(m)["coord_system"], tolerance_m=tolerance_m)
    pts = disp.geometry.representative_point()
    for (x, y), name in zip(zip(pts.x, pts.y), disp[column]):
        text = _text_or_empty(name)
        if not text:
            continue
        icon = folium.DivIcon(html=f"<span>{_esc(text)}</span>", icon_size=(0, 0),
                              class_name="planner-label")
        folium.Marker([y, x], icon=icon, interactive=False).add_to(m)
    return m


def finish(m: folium.Map, *, lang: Lang | None = None, osm_credit: bool = False,
           collapsed: bool = True) -> folium.Map:
    """Add the layer control (collapsed: a button, opened on hover), the legend (it
    follows the layers switched on) and (when OSM data is used) the ODbL credit."""
    import folium

    folium.LayerControl(collapsed=collapsed).add_to(m)
    add_legend(m, lang=lang)
    if osm_credit:
        add_credit(m, OSM_CREDIT)
    return m


# ---------------------------------------------------------------- output
def to_html(m: folium.Map) -> str:
    """The whole map as one self-contained HTML page (warns about any CDN link left)."""
    links = _external_links(m)
    if links:
        warnings.warn(PlannerWarning(
            f"The map still links {len(links)} online resource(s) ({links[0]} ...), added by a "
            "folium plugin; it will not work without internet. Use planner.maps functions, or "
            "call make_offline(m) after adding plugins that only need Leaflet.",
            f"地图仍链接 {len(links)} 个在线资源（{links[0]} …），由 folium 插件加入；断网时"
            "无法使用。请改用 planner.maps 的函数，或在加入只需 Leaflet 的插件后调用 "
            "make_offline(m)。"), stacklevel=2)
    # folium appends some script lines again on every render; render a copy so that
    # to_html() gives the same page however often it is called.
    return copy.deepcopy(m.get_root()).render()


def save(m: folium.Map, path: str | Path) -> Path:
    """Write the map as one self-contained HTML file (UTF-8)."""
    path = Path(path)
    path.write_text(to_html(m), encoding="utf-8")
    return path


def to_iframe(m: folium.Map, *, height_px: int = 600, title: str = "map") -> str:
    """The map as an ``<iframe srcdoc=...>`` fragment to embed in a larger HTML page.

    The whole page is HTML-escaped into the ``srcdoc`` attribute, so the
    fragment is self-contained and cannot break the host page's markup.  (No
    ``sandbox`` attribute: Chromium does not run the map in a sandboxed
    ``srcdoc`` frame opened from ``file://``.)
    """
    return iframe_of(to_html(m), height_px=height_px, title=title)


def iframe_of(page: str, *, height_px: int = 600, title: str = "map") -> str:
    """An HTML page (e.g. `to_html`'s) as an escaped ``<iframe srcdoc=...>`` fragment."""
    doc = html.escape(page, quote=True)
    return (f'<iframe class="planner-map" title="{_esc(title)}" srcdoc="{doc}" '
            f'style="width:100%;height:{int(height_px)}px;border:1px solid #ccc">'
            "</iframe>")


# ---------------------------------------------------------------- from a run
def total_bounds(layers: dict[str, Any]) -> tuple[float, float, float, float] | None:
    """The WGS-84 (lon/lat) box of the analysed area (population first, then roads,
    townships, facilities, districts): what the web map opens on."""
    # the analysed area first: boundary layers often cover a whole city around it
    for key in ("population_access", "population", "network_edges", "townships", "facilities",
                "districts"):
        gdf = rows_in_use(layers.get(key))
        if gdf is not None and len(gdf) and gdf.crs is not None:
            b = gdf.to_crs(4326).total_bounds
            if np.all(np.isfinite(b)):
                return tuple(float(v) for v in b)  # type: ignore[return-value]
    return None


def web_map(study: Study, *, lang: Lang | None = None) -> folium.Map:
    """Draw every layer of a study; absent layers are simply not drawn.

    Facilities excluded by the checks (``excluded``: outside the study area
    and out of reach, or a doubtful stacked geocode) are not drawn.

    Parameters
    ----------
    study
        The layers and tables to draw (`planner.study.Study`; a run's is
        ``planner.pipeline.presenting.study_of(result)``).
    lang
        Label language; default the study's ``lang``.
    """
    lang = lang or study.lang
    style = study.map_style
    layers = study.layers
    tables = study.tables
    m = base_map(bounds=total_bounds(layers), tiles=style.tiles,
                 tiles_coord_system=style.tiles_coord_system,
                 tiles_attribution=style.tiles_attribution, tiles_key=style.tiles_key,
                 tiles_max_zoom=style.tiles_max_zoom, lang=lang)
    tol = float(style.simplify_m)
    # at start: coverage, facilities and proposed sites; the rest in the layer control
    add_water(m, layers.get("water"), tolerance_m=tol, show=False)
    add_parks(m, layers.get("parks"), tolerance_m=tol, show=False)
    add_roads(m, layers.get("network_edges"), tolerance_m=tol, show=False)
    add_service_areas(m, layers.get("service_areas"), tolerance_m=tol, show=False)
    towns = layers.get("township_norms", layers.get("townships"))
    if layers.get("township_norms") is not None:
        add_township_norms(m, layers["township_norms"], norm_checks=tables.get("norm_checks"),
                           tolerance_m=tol, show=False)
    else:
        add_boundaries(m, layers.get("townships"), kind="townships", tolerance_m=tol,
                       show=False)
    add_boundaries(m, layers.get("districts"), kind="districts", tolerance_m=tol, show=False)
    pa = layers.get("population_access")
    if pa is not None and "time_min_any" in pa:
        add_population_access(m, pa, circle_min=study.circle_min, tolerance_m=tol)
    elif layers.get("population") is not None:
        add_population(m, layers["population"], estimated=study.estimated("population"),
                       tolerance_m=tol)
    add_blind_spots(m, layers.get("blind_spots"), tolerance_m=tol, show=False)
    add_facilities(m, rows_in_use(layers.get("facilities")))
    total = None
    pop = layers.get("population_access", layers.get("population"))
    if pop is not None and "pop_60plus" in pop:
        total = float(pop["pop_60plus"].sum())
    add_proposed_sites(m, layers.get("proposed_sites"), total_pop_60plus=total)
    add_labels(m, towns, tolerance_m=tol)
    add_title(m, map_title(study, lang=lang))
    finish(m, osm_credit=study.osm_data)
    return m


def map_title(study: Study, *, lang: Lang | None = None) -> str:
    """The web map's title: the study's name and its care circle."""
    lang = lang or study.lang
    circle = _t(lang, "title", m=float(study.circle_min))
    return f"{study.name} · {circle}" if study.name else circle
