"""Exchange with desktop GIS: QGIS styles inside a GeoPackage, Shapefiles for ArcGIS users.

* `qgis_style` writes a layer's QML (QGIS's style format): the web map's
  colours and classes (walking-time bands, tiers, norm status, blind
  spots ...) and the column headers of the report as field aliases, in
  the study's language.  `add_layer_styles` stores QML in a GeoPackage's
  ``layer_styles`` table, the table QGIS itself uses, so a layer dragged
  into QGIS opens styled (``useAsDefault``).
* `write_shapefile` writes a layer for ArcGIS: field names cut to the
  Shapefile's 10 characters (kept unique), a ``<name>_fields.csv`` beside
  it mapping short names to the full names and their Chinese/English
  headers, and a ``.cpg`` naming the encoding (UTF-8 by default, GBK when
  asked, for old ArcMap installs).

Hand-written because no maintained library writes QML outside QGIS: the
format is XML; QGIS reads the subset written here (a rule-based renderer
with simple fill/line/marker symbols and field aliases).
"""

from __future__ import annotations

import re
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any, Literal
from xml.sax.saxutils import quoteattr

import numpy as np
import pandas as pd

from planner._errors import OutputError
from planner._schema import TIER_LABELS, TIERS
from planner.defaults import CIRCLE_MIN
from planner.maps import (
    BAND_COLORS,
    BLIND_SPOT_COLOR,
    MINUTE_COLORS,
    PROPOSED_COLOR,
    STATUS_COLORS,
    TIER_STYLE,
)

__all__ = ["SHAPEFILE_FIELD_CHARS", "add_layer_styles", "cgcs2000_gk3", "output_crs",
           "qgis_style", "shapefile_names", "write_shapefile"]

Lang = Literal["zh", "en"]

#: The longest field name a Shapefile's dBASE table holds.
SHAPEFILE_FIELD_CHARS = 10

_STATUS = {"zh": {"pass": "达标", "fail": "未达标", "not_assessable": "无法评估",
                  "none": "无相关规则"},
           "en": {"pass": "Pass", "fail": "Fail", "not_assessable": "Not assessable",
                  "none": "No rule applies"}}
_BANDS = {"zh": ("≤ 5 分钟", "5–10 分钟", "10–{m:g} 分钟", "> {m:g} 分钟", "不可达"),
          "en": ("≤ 5 min", "5–10 min", "10–{m:g} min", "> {m:g} min", "Unreachable")}
_MARKERS = {"square": "square", "triangle": "triangle", "circle": "circle",
            "diamond": "diamond"}


# ---------------------------------------------------------------- QML pieces
def _rgba(color: str, alpha: float = 1.0) -> str:
    c = color.lstrip("#")
    r, g, b = (int(c[i:i + 2], 16) for i in (0, 2, 4))
    return f"{r},{g},{b},{int(round(alpha * 255))}"


def _props(values: dict[str, str]) -> str:
    """Symbol-layer properties in both QGIS forms (``<Option>`` 3.26+, ``<prop>`` before)."""
    opts = "".join(f'<Option name={quoteattr(k)} value={quoteattr(v)} type="QString"/>'
                   for k, v in values.items())
    props = "".join(f"<prop k={quoteattr(k)} v={quoteattr(v)}/>" for k, v in values.items())
    return f'<Option type="Map">{opts}</Option>{props}'


def _symbol(kind: str, name: str, *, color: str, alpha: float = 1.0,
            outline: str = "#333333", width: float = 0.26, dash: bool = False,
            shape: str = "circle", size: float = 2.4, fill: bool = True) -> str:
    """One QGIS symbol (``fill``, ``line`` or ``marker``) of one simple symbol layer."""
    if kind == "fill":
        cls, values = "SimpleFill", {
            "color": _rgba(color, alpha if fill else 0.0), "style": "solid" if fill else "no",
            "outline_color": _rgba(outline), "outline_width": f"{width:g}",
            "outline_width_unit": "MM", "outline_style": "dash" if dash else "solid",
            "joinstyle": "bevel"}
    elif kind == "line":
        cls, values = "SimpleLine", {
            "line_color": _rgba(color, alpha), "line_width": f"{width:g}",
            "line_width_unit": "MM", "line_style": "dash" if dash else "solid",
            "capstyle": "round", "joinstyle": "round"}
    else:
        cls, values = "SimpleMarker", {
            "color": _rgba(color, alpha), "name": shape, "size": f"{size:g}",
            "size_unit": "MM", "outline_color": _rgba(outline), "outline_width": "0.2",
            "outline_style": "solid"}
    return (f'<symbol type="{kind}" name={quoteattr(name)} alpha="1" clip_to_extent="1" '
            f'force_rhr="0"><layer class="{cls}" enabled="1" pass="0" locked="0">'
            f"{_props(values)}</layer></symbol>")


def _rules(rules: list[tuple[str, str, str]], symbols: list[str]) -> str:
    """A rule-based renderer: (filter expression, label, symbol name) per rule."""
    body = "".join(
        f"<rule key={quoteattr('{' + str(uuid.uuid4()) + '}')} filter={quoteattr(expr)} "
        f"symbol={quoteattr(sym)} label={quoteattr(label)}/>"
        for expr, label, sym in rules)
    return (f'<renderer-v2 type="RuleRenderer" symbollevels="0" enableorderby="0" '
            f'forceraster="0"><rules key={quoteattr("{" + str(uuid.uuid4()) + "}")}>{body}'
            f"</rules><symbols>{''.join(symbols)}</symbols></renderer-v2>")


def _kind(gdf: Any) -> str:
    types = set(gdf.geom_type.dropna()) if len(gdf) else set()
    if types and types <= {"Point", "MultiPoint"}:
        return "marker"
    if types and types <= {"LineString", "MultiLineString"}:
        return "line"
    return "fill"


def _field(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _str(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


# ---------------------------------------------------------------- one renderer per layer
def _time_bands(gdf: Any, lang: Lang, circle_min: float, column: str = "time_min_any") -> str:
    kind = _kind(gdf)
    labels = [t.format(m=circle_min) for t in _BANDS[lang]]
    f = _field(column)
    exprs = [f"{f} <= 5", f"{f} > 5 AND {f} <= 10", f"{f} > 10 AND {f} <= {circle_min:g}",
             f"{f} > {circle_min:g} AND {f} < 1e300", f"{f} IS NULL OR {f} >= 1e300"]
    keys = ("5", "10", "15", "over", "unreachable")
    symbols = [_symbol(kind, str(i), color=BAND_COLORS[k], alpha=0.8,
                       outline="#ffffff" if kind == "fill" else "#333333", width=0.2)
               for i, k in enumerate(keys)]
    return _rules([(e, lab, str(i)) for i, (e, lab) in enumerate(zip(exprs, labels))], symbols)


def _categories(gdf: Any, column: str, styles: dict[Any, tuple[str, str, dict]]) -> str:
    """Rules ``column = value`` with their (label, colour, symbol options)."""
    kind = _kind(gdf)
    rules, symbols = [], []
    for i, (value, (label, color, kw)) in enumerate(styles.items()):
        expr = f"{_field(column)} = {value if isinstance(value, (int, float)) else _str(value)}"
        rules.append((expr, label, str(i)))
        symbols.append(_symbol(kind, str(i), color=color, **kw))
    return _rules(rules, symbols)


def _single(gdf: Any, label: str, **kw: Any) -> str:
    return _rules([("ELSE", label, "0")], [_symbol(_kind(gdf), "0", **kw)])


def _renderer(name: str, gdf: Any, lang: Lang, circle_min: float) -> str | None:
    """The renderer of a layer of a run, as on the web map (``None``: QGIS's default)."""
    kind = _kind(gdf)
    if name == "population_access" and "time_min_any" in gdf:
        return _time_bands(gdf, lang, circle_min)
    if name == "facilities" and "tier" in gdf:
        styles = {}
        for tier in [t for t in TIERS if t in set(gdf["tier"].astype(str))]:
            shape, color = TIER_STYLE.get(tier, TIER_STYLE["other"])
            styles[tier] = (TIER_LABELS[tier][lang], color,
                            {"shape": _MARKERS.get(shape, "circle"), "size": 3.0})
        return _categories(gdf, "tier", styles)
    if name == "proposed_sites":
        return _single(gdf, "规划新增设施" if lang == "zh" else "Proposed sites",
                       color=PROPOSED_COLOR, shape="star", size=5.0, outline="#000000")
    if name == "blind_spots":
        return _single(gdf, "服务盲区" if lang == "zh" else "Blind spots",
                       color=BLIND_SPOT_COLOR, alpha=0.3, outline=BLIND_SPOT_COLOR, width=0.6,
                       dash=True)
    if name == "township_norms" and "norm_status" in gdf:
        styles = {s: (_STATUS[lang][s], STATUS_COLORS.get(s, "#dddddd"),
                      {"alpha": 0.2, "outline": STATUS_COLORS.get(s, "#999999"), "width": 0.8})
                  for s in ("pass", "fail", "not_assessable")}
        return _categories(gdf, "norm_status", styles)
    if name == "service_areas" and "minutes" in gdf:
        minutes = sorted(pd.to_numeric(gdf["minutes"], errors="coerce").dropna().unique())
        unit = "分钟步行范围" if lang == "zh" else "-minute walk"
        styles = {float(m): (f"{m:g}{unit}", MINUTE_COLORS[min(i, len(MINUTE_COLORS) - 1)],
                             {"alpha": 0.18, "outline": MINUTE_COLORS[min(i, 4)]})
                  for i, m in enumerate(minutes)}
        return _categories(gdf, "minutes", styles)
    if name in ("townships", "districts"):
        return _single(gdf, name, color="#555555", fill=False, outline="#555555",
                       width=0.5 if name == "townships" else 0.9, dash=name == "townships")
    if name == "network_edges" or (name == "roads" and kind == "line"):
        return _single(gdf, name, color="#8c8c8c", width=0.2)
    if name == "water":
        return _single(gdf, name, color="#a6cee3", alpha=0.9, outline="#6baed6", width=0.1)
    if name == "parks":
        return _single(gdf, name, color="#c7e9c0", alpha=0.9, outline="#a1d99b", width=0.1)
    return None


def qgis_style(name: str, gdf: Any, *, lang: Lang = "zh", circle_min: float = CIRCLE_MIN) -> str:
    """The QML of one layer of a run: the web map's symbols and the report's field aliases.

    Parameters
    ----------
    name
        The layer's name in the run (``population_access``, ``facilities``,
        ``township_norms`` ...): it picks the classes and colours.
    gdf
        The layer (its geometry type and columns shape the style).
    lang
        Language of the legend labels and field aliases.
    circle_min
        The care circle (min): the last walking-time class.
    """
    from planner.report import header

    aliases = "".join(
        f"<alias field={quoteattr(str(c))} index=\"{i}\" name={quoteattr(header(str(c), lang))}/>"
        for i, c in enumerate(c for c in gdf.columns if c != gdf.geometry.name))
    renderer = _renderer(name, gdf, lang, circle_min) or ""
    geom = {"marker": 0, "line": 1, "fill": 2}[_kind(gdf)]
    return ("<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>"
            '<qgis version="3.28.0" styleCategories="Symbology|Fields">'
            f"{renderer}<aliases>{aliases}</aliases>"
            f"<layerGeometryType>{geom}</layerGeometryType></qgis>")


_LAYER_STYLES = """CREATE TABLE IF NOT EXISTS layer_styles (
  id INTEGER PRIMARY KEY AUTOINCREMENT, f_table_catalog TEXT(256), f_table_schema TEXT(256),
  f_table_name TEXT(256), f_geometry_column TEXT(256), styleName TEXT(30), styleQML TEXT,
  styleSLD TEXT, useAsDefault BOOLEAN, description TEXT, owner TEXT(30), ui TEXT(30),
  update_time DATETIME DEFAULT CURRENT_TIMESTAMP)"""


def add_layer_styles(gpkg: str | Path, styles: dict[str, str], *,
                     description: str = "planner") -> int:
    """Store QML styles in a GeoPackage's ``layer_styles`` table as each layer's default.

    The table is the one QGIS writes ("Save style → in database"), listed in
    ``gpkg_contents`` as an attribute table so the GeoPackage stays valid.
    A layer's earlier default style from planner is replaced.  Returns the
    number of styles written.
    """
    con = sqlite3.connect(str(gpkg))
    try:
        geom_cols = dict(con.execute(
            "SELECT table_name, column_name FROM gpkg_geometry_columns").fetchall())
        missing = sorted(set(styles) - set(geom_cols))
        if missing:
            raise OutputError(f"{gpkg} has no layer(s) {missing} to style; layers there: "
                              f"{sorted(geom_cols)}.")
        con.execute(_LAYER_STYLES)
        now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        con.execute("INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, "
                    "description, last_change) VALUES ('layer_styles', 'attributes', "
                    "'layer_styles', '', ?)", (now,))
        for name, qml in styles.items():
            con.execute("DELETE FROM layer_styles WHERE f_table_name = ? AND description = ?",
                        (name, description))
            con.execute(
                "INSERT INTO layer_styles (f_table_catalog, f_table_schema, f_table_name, "
                "f_geometry_column, styleName, styleQML, styleSLD, useAsDefault, description, "
                "owner, ui) VALUES ('', '', ?, ?, ?, ?, '', 1, ?, '', '')",
                (name, geom_cols[name], name, qml, description))
        con.commit()
    finally:
        con.close()
    return len(styles)


# ---------------------------------------------------------------- coordinate systems
def cgcs2000_gk3(lon: float) -> int:
    """EPSG code of the CGCS2000 3-degree Gauss-Krüger zone (central-meridian form, no zone
    number in the easting: EPSG:4534 CM 75E ... EPSG:4554 CM 135E) for a longitude."""
    cm = 3 * round(float(lon) / 3)
    if not 75 <= cm <= 135:
        raise OutputError(f"Longitude {lon:g} is outside China's CGCS2000 3-degree zones "
                          "(75E-135E); give the output CRS as an EPSG code instead.")
    return 4534 + (cm - 75) // 3


def output_crs(value: str | None, *, lon: float | None = None) -> Any:
    """The CRS outputs are written in: ``None`` (the study's), ``"cgcs2000"`` (EPSG:4490,
    geographic), ``"cgcs2000_gk3"`` (the 3-degree Gauss-Krüger zone at ``lon``), or any
    CRS pyproj reads (``"EPSG:4547"``)."""
    import pyproj

    if value is None:
        return None
    key = str(value).strip().lower()
    if key == "cgcs2000":
        return pyproj.CRS.from_epsg(4490)
    if key in ("cgcs2000_gk3", "cgcs2000-gk3"):
        if lon is None:
            raise OutputError("cgcs2000_gk3 needs the study's longitude to pick its zone.")
        return pyproj.CRS.from_epsg(cgcs2000_gk3(lon))
    try:
        return pyproj.CRS.from_user_input(value)
    except pyproj.exceptions.CRSError:
        raise OutputError(f"Output CRS {value!r} is not known. Use cgcs2000, cgcs2000_gk3, "
                          "utm (the study's) or an EPSG code such as EPSG:4547.") from None


# ---------------------------------------------------------------- Shapefiles
def shapefile_names(columns: list[str]) -> dict[str, str]:
    """Column → Shapefile field name: at most 10 characters (bytes, as dBASE counts them in
    UTF-8), unique, ASCII kept readable (``pop_60plus_newly_covered`` → ``pop_60plu1``)."""
    out: dict[str, str] = {}
    taken: set[str] = set()
    for col in columns:
        base = re.sub(r"[^0-9A-Za-z_]", "_", str(col)) if str(col).isascii() else str(col)
        name = base
        while len(name.encode("utf-8")) > SHAPEFILE_FIELD_CHARS:
            name = name[:-1]
        k = 1
        while name.lower() in taken:
            suffix = str(k)
            name = base
            while len((name + suffix).encode("utf-8")) > SHAPEFILE_FIELD_CHARS:
                name = name[:-1]
            name += suffix
            k += 1
        taken.add(name.lower())
        out[str(col)] = name
    return out


def _plain(df: Any) -> Any:
    """Scalars only (lists → text), booleans as integers: what dBASE holds."""
    import json

    df = df.copy()
    for c in df.columns:
        if c == getattr(df, "_geometry_column_name", None):
            continue
        if df[c].dtype == object and df[c].map(lambda v: isinstance(v, (list, tuple, dict, set))).any():
            df[c] = df[c].map(lambda v: json.dumps(list(v) if isinstance(v, set) else v,
                                                   ensure_ascii=False, default=str)
                              if isinstance(v, (list, tuple, dict, set)) else v)
        elif pd.api.types.is_bool_dtype(df[c]):
            df[c] = df[c].astype(int)
        elif pd.api.types.is_float_dtype(df[c]):
            df[c] = df[c].where(np.isfinite(df[c].to_numpy(dtype=float)))
    return df


def write_shapefile(gdf: Any, folder: str | Path, name: str, *, encoding: str = "utf-8",
                    lang: Lang = "zh") -> list[Path]:
    """Write a layer as ``folder/<name>.shp`` (+ .shx .dbf .prj .cpg) and ``<name>_fields.csv``.

    Parameters
    ----------
    gdf
        The layer (one geometry type; mixed polygon/multipolygon is fine).
    folder, name
        Where, and the file name without suffix.
    encoding
        ``"utf-8"`` (default) or ``"gbk"`` (ArcMap 10.x reads GBK without a
        ``.cpg``; the ``.cpg`` says it either way).
    lang
        Language of the headers in the name map.

    Returns
    -------
    list of Path
        Every file written.
    """
    from planner.report import header

    enc = {"utf8": "utf-8", "utf-8": "utf-8", "gbk": "gbk", "cp936": "gbk",
           "gb18030": "gb18030"}.get(str(encoding).lower().replace("_", "-"))
    if enc is None:
        raise OutputError(f"Shapefile encoding {encoding!r} is not supported; use 'utf-8' "
                          "(default) or 'gbk'.")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cols = [c for c in gdf.columns if c != gdf.geometry.name]
    names = shapefile_names(cols)  # UTF-8 bytes: never longer than the GBK ones
    out = _plain(gdf).rename(columns=names)
    shp = folder / f"{name}.shp"
    try:
        out.to_file(shp, driver="ESRI Shapefile", engine="pyogrio", encoding=enc)
    except UnicodeEncodeError as exc:
        raise OutputError(f"Layer {name} has text that {enc} cannot hold ({exc}); write it "
                          "as UTF-8 (shapefile_encoding: utf-8).") from None
    (folder / f"{name}.cpg").write_text("UTF-8" if enc == "utf-8" else enc.upper(),
                                        encoding="ascii")
    table = pd.DataFrame({"field": list(names.values()), "column": list(names),
                          "header": [header(c, lang) for c in names]})
    fields = folder / f"{name}_fields.csv"
    table.to_csv(fields, index=False, encoding="utf-8-sig")
    return sorted(p for p in folder.iterdir() if p.stem in (name, f"{name}_fields"))
