"""A small, dependency-free KML/KMZ reader (xml.etree + shapely).

GDAL's ``KML``/``LIBKML`` drivers are not always built, and the plain
``KML`` driver drops attributes that exports keep in ``<description>``
(for example ``xian_road.kml`` stores each road's ``fclass``, ``Name``,
``oneway`` ... as a JSON object there).  KML is simple XML, so it is parsed
here directly: this is the one reason this module exists.

Supported: ``Placemark`` with ``Point``, ``LineString``, ``LinearRing``,
``Polygon`` (holes included) and nested ``MultiGeometry``; attributes from
``<name>``, ``ExtendedData`` (``Data/value`` and ``SchemaData/SimpleData``)
and a JSON object in ``<description>``; ``.kmz`` archives.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from planner._errors import LayerError

__all__ = ["read_kml"]


def _local(tag: str) -> str:
    """Tag name without its ``{namespace}``."""
    return tag.rsplit("}", 1)[-1]


def _children(elem: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in elem if _local(c.tag) == name]


def _child(elem: ET.Element, name: str) -> ET.Element | None:
    for c in elem:
        if _local(c.tag) == name:
            return c
    return None


def _coords(elem: ET.Element | None) -> np.ndarray:
    """Parse a ``<coordinates>`` element into an (n, 2) array of lon, lat."""
    if elem is None or not (elem.text or "").strip():
        return np.empty((0, 2))
    xy = []
    for tup in elem.text.split():
        parts = tup.split(",")
        if len(parts) >= 2:
            xy.append((float(parts[0]), float(parts[1])))
    return np.asarray(xy, dtype=float).reshape(-1, 2)


def _ring(elem: ET.Element | None) -> np.ndarray | None:
    if elem is None:
        return None
    lr = _child(elem, "LinearRing")
    xy = _coords(_child(lr if lr is not None else elem, "coordinates"))
    return xy if len(xy) >= 3 else None


def _geoms(elem: ET.Element) -> list[Any]:
    """Every simple geometry below ``elem`` (a geometry element)."""
    kind = _local(elem.tag)
    if kind == "Point":
        xy = _coords(_child(elem, "coordinates"))
        return [shapely.Point(xy[0])] if len(xy) else []
    if kind in ("LineString", "LinearRing"):
        xy = _coords(_child(elem, "coordinates"))
        if len(xy) < 2:
            return []
        if kind == "LinearRing" and len(xy) >= 3:
            return [shapely.Polygon(xy)]
        return [shapely.LineString(xy)]
    if kind == "Polygon":
        outer = _ring(_child(elem, "outerBoundaryIs"))
        if outer is None:
            return []
        holes = [h for h in (_ring(b) for b in _children(elem, "innerBoundaryIs")) if h is not None]
        return [shapely.Polygon(outer, holes)]
    if kind == "MultiGeometry":
        out = []
        for c in elem:
            out.extend(_geoms(c))
        return out
    return []


_GEOM_TAGS = ("Point", "LineString", "LinearRing", "Polygon", "MultiGeometry")


def _combine(parts: list[Any]) -> Any:
    """One geometry from the parts of a Placemark (Multi* when all alike)."""
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    types = {p.geom_type for p in parts}
    if types == {"Point"}:
        return shapely.MultiPoint(parts)
    if types == {"LineString"}:
        return shapely.MultiLineString(parts)
    if types == {"Polygon"}:
        return shapely.MultiPolygon(parts)
    return shapely.GeometryCollection(parts)


def _attributes(pm: ET.Element) -> dict[str, Any]:
    row: dict[str, Any] = {}
    name = _child(pm, "name")
    if name is not None and name.text is not None:
        row["name"] = name.text.strip()
    desc = _child(pm, "description")
    if desc is not None and desc.text and desc.text.strip():
        text = desc.text.strip()
        parsed = None
        if text.startswith("{"):
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
        if isinstance(parsed, dict):
            for k, v in parsed.items():
                row.setdefault(str(k), v if not isinstance(v, (dict, list)) else json.dumps(v))
        else:
            row["description"] = text
    ext = _child(pm, "ExtendedData")
    if ext is not None:
        for el in ext.iter():
            tag = _local(el.tag)
            if tag == "Data" and el.get("name"):
                val = _child(el, "value")
                row[el.get("name")] = None if val is None else (val.text or "").strip()
            elif tag == "SimpleData" and el.get("name"):
                row[el.get("name")] = (el.text or "").strip()
    return row


def _numeric(series: pd.Series) -> pd.Series:
    """Convert a column to numbers when every non-empty value is numeric.

    Whole-number columns without gaps become integers (``layer`` 0.0 -> 0).
    """
    if pd.api.types.is_bool_dtype(series):
        return series
    if pd.api.types.is_numeric_dtype(series):
        num = series
    else:
        values = series.where(series.astype(str).str.strip() != "", None)
        nonnull = values.dropna()
        if nonnull.empty or nonnull.map(lambda v: isinstance(v, bool)).any():
            return series
        try:
            num = pd.to_numeric(values, errors="raise")
        except (ValueError, TypeError):
            return series
    arr = num.to_numpy(dtype=float, na_value=np.nan)
    if len(arr) and np.isfinite(arr).all() and np.all(np.mod(arr, 1) == 0):
        return num.astype("int64")
    return num.astype(float)


def _read_bytes(path: Path) -> bytes:
    if path.suffix.lower() == ".kmz":
        with zipfile.ZipFile(path) as zf:
            names = [n for n in zf.namelist() if n.lower().endswith(".kml")]
            if not names:
                raise LayerError(f"KMZ archive {path} holds no .kml file; check the export.")
            main = "doc.kml" if "doc.kml" in names else names[0]
            return zf.read(main)
    return path.read_bytes()


def read_kml(path: str | os.PathLike) -> gpd.GeoDataFrame:
    """Read the Placemarks of a KML or KMZ file.

    Parameters
    ----------
    path
        A ``.kml`` or ``.kmz`` file.  Coordinates are longitude, latitude
        (KML is always WGS-84 by its specification; files exported from
        AMap/Baidu may still hold GCJ-02/BD-09, which the caller converts).

    Returns
    -------
    geopandas.GeoDataFrame
        One row per Placemark, in EPSG:4326, with columns from ``<name>``
        (as ``name``), ``ExtendedData`` and a JSON ``<description>``; values
        that are all numeric become numbers.  Placemarks without a geometry
        keep a missing geometry.

    Raises
    ------
    LayerError
        When the file is not well-formed XML or holds no Placemark.

    Examples
    --------
    >>> roads = read_kml("xian_road.kml")  # doctest: +SKIP
    >>> roads["fclass"].value_counts()  # doctest: +SKIP
    """
    path = Path(path)
    try:
        root = ET.fromstring(_read_bytes(path))
    except ET.ParseError as exc:
        raise LayerError(
            f"KML file {path} is not well-formed XML ({exc}). Re-export it, or convert it "
            "to GeoPackage (e.g. `ogr2ogr out.gpkg in.kml`)."
        ) from None
    rows: list[dict[str, Any]] = []
    geoms: list[Any] = []
    for pm in root.iter():
        if _local(pm.tag) != "Placemark":
            continue
        rows.append(_attributes(pm))
        parts: list[Any] = []
        for c in pm:
            if _local(c.tag) in _GEOM_TAGS:
                parts.extend(_geoms(c))
        geoms.append(_combine(parts))
    if not rows:
        raise LayerError(
            f"KML file {path} holds no <Placemark>; nothing to read. Check that it is the "
            "exported layer and not only a style or network link."
        )
    df = pd.DataFrame(rows)
    for col in df.columns:
        df[col] = _numeric(df[col])
    return gpd.GeoDataFrame(df, geometry=gpd.GeoSeries(geoms, crs="EPSG:4326"))
