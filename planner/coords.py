"""WGS-84 / GCJ-02 / BD-09 coordinates, and choosing a metric CRS.

Chinese web maps publish coordinates in two obfuscated datums:

* **GCJ-02** ("Mars coordinates"): AMap/Gaode, Tencent, DataV GeoAtlas
  boundaries, most bureau facility registers geocoded on those maps;
* **BD-09**: Baidu Maps, a further offset on top of GCJ-02.

They sit a few hundred metres off WGS-84 (≈ 465 m north-east in central
Xi'an), so layers in these systems must be converted to WGS-84 before they
are combined with OSM roads or projected.  PROJ does not implement these
transforms (they are not geodetic datums), so they are written here, fully
vectorised in NumPy, from the widely used public algorithm (Krasovsky
ellipsoid a = 6378245 m, e² = 0.00669342162296594323).  The forward
transforms are closed-form; the inverses have no closed form and are solved
by fixed-point iteration to better than 1e-9 degrees (≈ 0.1 mm, far below
the 0.1 m asked for).

As in the standard algorithm, points outside a rough bounding box of China
(73.66–135.05 E, 3.86–53.55 N) are left unchanged by the GCJ-02 shift.

Examples
--------
>>> from planner import coords
>>> lon, lat = coords.wgs84_to_gcj02(121.5272106, 31.1774276)
>>> round(float(lon), 6), round(float(lat), 6)
(121.531542, 31.175304)
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pyproj
import shapely

from planner._errors import LayerError

__all__ = [
    "COORD_SYSTEMS",
    "REGIONS",
    "bd09_to_gcj02",
    "check_region",
    "bd09_to_wgs84",
    "convert",
    "gcj02_to_bd09",
    "gcj02_to_wgs84",
    "in_china",
    "metric_crs",
    "to_wgs84",
    "wgs84_to_bd09",
    "wgs84_to_gcj02",
]

CoordSystem = Literal["wgs84", "gcj02", "bd09"]
#: The coordinate systems understood by `convert` and `to_wgs84`.
COORD_SYSTEMS: tuple[str, ...] = ("wgs84", "gcj02", "bd09")
#: Where data may lie (`planner.layers.read_layer`'s ``region``): in China, or anywhere.
REGIONS: tuple[str, ...] = ("china", "any")

_A = 6378245.0  # Krasovsky 1940 semi-major axis (m), as in the GCJ-02 algorithm
_EE = 0.00669342162296594323  # its first eccentricity squared
_X_PI = np.pi * 3000.0 / 180.0  # Baidu's constant
_TOL_DEG = 1e-9  # inverse transforms stop below this (≈ 0.1 mm)
_MAX_ITER = 50

ArrayLike = Any


def _arrays(lon: ArrayLike, lat: ArrayLike) -> tuple[np.ndarray, np.ndarray, bool]:
    x = np.asarray(lon, dtype=float)
    y = np.asarray(lat, dtype=float)
    if x.shape != y.shape:
        raise ValueError(
            f"lon and lat must have the same shape, got {x.shape} and {y.shape}; "
            "pass one longitude per latitude."
        )
    return x, y, x.ndim == 0


def _out(x: np.ndarray, y: np.ndarray, scalar: bool) -> tuple[Any, Any]:
    if scalar:
        return np.float64(x), np.float64(y)
    return x, y


def in_china(lon: ArrayLike, lat: ArrayLike) -> np.ndarray:
    """True where a point lies in the rough box where GCJ-02 applies.

    Parameters
    ----------
    lon, lat
        Degrees (any shape, broadcast together).

    Returns
    -------
    numpy.ndarray of bool
    """
    x = np.asarray(lon, dtype=float)
    y = np.asarray(lat, dtype=float)
    return (x > 73.66) & (x < 135.05) & (y > 3.86) & (y < 53.55)


def _delta(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 offset (degrees) at WGS-84 ``x``, ``y`` (inside China)."""
    u = x - 105.0
    v = y - 35.0
    sq = np.sqrt(np.abs(u))
    common = (20.0 * np.sin(6.0 * u * np.pi) + 20.0 * np.sin(2.0 * u * np.pi)) * 2.0 / 3.0
    dlat = (
        -100.0 + 2.0 * u + 3.0 * v + 0.2 * v * v + 0.1 * u * v + 0.2 * sq
        + common
        + (20.0 * np.sin(v * np.pi) + 40.0 * np.sin(v / 3.0 * np.pi)) * 2.0 / 3.0
        + (160.0 * np.sin(v / 12.0 * np.pi) + 320.0 * np.sin(v * np.pi / 30.0)) * 2.0 / 3.0
    )
    dlon = (
        300.0 + u + 2.0 * v + 0.1 * u * u + 0.1 * u * v + 0.1 * sq
        + common
        + (20.0 * np.sin(u * np.pi) + 40.0 * np.sin(u / 3.0 * np.pi)) * 2.0 / 3.0
        + (150.0 * np.sin(u / 12.0 * np.pi) + 300.0 * np.sin(u / 30.0 * np.pi)) * 2.0 / 3.0
    )
    rad = y / 180.0 * np.pi
    magic = 1.0 - _EE * np.sin(rad) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrt_magic * np.cos(rad) * np.pi)
    inside = in_china(x, y)
    return np.where(inside, dlon, 0.0), np.where(inside, dlat, 0.0)


def _fwd_gcj(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    dx, dy = _delta(x, y)
    return x + dx, y + dy


def wgs84_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> tuple[Any, Any]:
    """WGS-84 → GCJ-02 (AMap/Tencent).  Identity outside China.

    Parameters
    ----------
    lon, lat
        WGS-84 degrees: scalars or arrays of the same shape.

    Returns
    -------
    tuple
        ``(lon, lat)`` in GCJ-02, same shape as the input.
    """
    x, y, scalar = _arrays(lon, lat)
    return _out(*_fwd_gcj(x, y), scalar)


def _invert(forward, x: np.ndarray, y: np.ndarray,
            start: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Solve ``forward(w) = (x, y)`` for ``w`` by fixed-point iteration.

    The transforms are small, smooth offsets (Jacobian ≈ identity), so
    ``w ← w - (forward(w) - target)`` converges in a handful of steps,
    starting from ``start`` (default: the target itself).
    """
    wx, wy = (x.copy(), y.copy()) if start is None else start
    for _ in range(_MAX_ITER):
        fx, fy = forward(wx, wy)
        ex, ey = fx - x, fy - y
        wx = wx - ex
        wy = wy - ey
        if not (np.any(np.abs(ex) > _TOL_DEG) or np.any(np.abs(ey) > _TOL_DEG)):
            break
    return wx, wy


def gcj02_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> tuple[Any, Any]:
    """GCJ-02 → WGS-84, iterated to better than 1e-9 degrees.

    Parameters
    ----------
    lon, lat
        GCJ-02 degrees: scalars or arrays of the same shape.

    Returns
    -------
    tuple
        ``(lon, lat)`` in WGS-84.  Points outside China are returned unchanged.
    """
    x, y, scalar = _arrays(lon, lat)
    wx, wy = _invert(_fwd_gcj, x, y)
    outside = ~in_china(x, y)
    return _out(np.where(outside, x, wx), np.where(outside, y, wy), scalar)


def _fwd_bd(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    z = np.sqrt(x * x + y * y) + 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def gcj02_to_bd09(lon: ArrayLike, lat: ArrayLike) -> tuple[Any, Any]:
    """GCJ-02 → BD-09 (Baidu).

    Parameters
    ----------
    lon, lat
        GCJ-02 degrees.

    Returns
    -------
    tuple
        ``(lon, lat)`` in BD-09.
    """
    x, y, scalar = _arrays(lon, lat)
    bx, by = _fwd_bd(x, y)
    return _out(bx, by, scalar)


def bd09_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> tuple[Any, Any]:
    """BD-09 → GCJ-02, the exact inverse of `gcj02_to_bd09` (iterated).

    The usual one-line Baidu inverse is only accurate to about a metre; here
    it is refined by fixed-point iteration to better than 1e-9 degrees.
    """
    x, y, scalar = _arrays(lon, lat)
    # the classic closed-form approximation is a good starting point
    u, v = x - 0.0065, y - 0.006
    z = np.sqrt(u * u + v * v) - 0.00002 * np.sin(v * _X_PI)
    theta = np.arctan2(v, u) - 0.000003 * np.cos(u * _X_PI)
    gx, gy = _invert(_fwd_bd, x, y, start=(z * np.cos(theta), z * np.sin(theta)))
    return _out(gx, gy, scalar)


def wgs84_to_bd09(lon: ArrayLike, lat: ArrayLike) -> tuple[Any, Any]:
    """WGS-84 → BD-09 (through GCJ-02)."""
    gx, gy = wgs84_to_gcj02(lon, lat)
    return gcj02_to_bd09(gx, gy)


def bd09_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> tuple[Any, Any]:
    """BD-09 → WGS-84 (through GCJ-02), iterated to better than 1e-9 degrees."""
    gx, gy = bd09_to_gcj02(lon, lat)
    return gcj02_to_wgs84(gx, gy)


_CONVERTERS = {
    ("wgs84", "gcj02"): wgs84_to_gcj02,
    ("gcj02", "wgs84"): gcj02_to_wgs84,
    ("gcj02", "bd09"): gcj02_to_bd09,
    ("bd09", "gcj02"): bd09_to_gcj02,
    ("wgs84", "bd09"): wgs84_to_bd09,
    ("bd09", "wgs84"): bd09_to_wgs84,
}


def check_region(region: str, coord_system: str, *, what: str = "The layer") -> None:
    """Refuse GCJ-02/BD-09 coordinates for data that may lie outside China.

    Raises
    ------
    LayerError
        When ``region`` is not one of `REGIONS`, or is ``"any"`` and
        ``coord_system`` is not ``"wgs84"``: the GCJ-02/BD-09 offsets are
        defined only inside China (the standard algorithm leaves points
        outside unchanged), so converting data that may lie anywhere would be
        silently wrong.
    """
    if region not in REGIONS:
        raise LayerError(f"region={region!r} is not known: use 'china' (default) or 'any'.")
    if region == "any" and coord_system != "wgs84":
        raise LayerError(
            f"{what}: coord_system {coord_system} is refused with `region: any`: GCJ-02 and "
            "BD-09 are offsets of Chinese web maps, defined inside China only. Give the data in "
            "WGS-84 (`coord_system: wgs84`), or, for data in China, leave `region` at its "
            "default (china)."
        )


def _check_system(value: str, what: str) -> str:
    key = str(value).lower().replace("-", "").replace("_", "")
    aliases = {"wgs84": "wgs84", "epsg4326": "wgs84", "gcj02": "gcj02", "gcj": "gcj02",
               "amap": "gcj02", "gaode": "gcj02", "tencent": "gcj02", "bd09": "bd09",
               "baidu": "bd09", "bd09ll": "bd09"}
    if key not in aliases:
        raise LayerError(
            f"Unknown coordinate system {what}={value!r}. Use one of {', '.join(COORD_SYSTEMS)} "
            "(AMap/Tencent/DataV = gcj02, Baidu = bd09, GPS/OSM = wgs84)."
        )
    return aliases[key]


def convert(lon: ArrayLike, lat: ArrayLike, *, src: CoordSystem, dst: CoordSystem
            ) -> tuple[Any, Any]:
    """Convert longitudes/latitudes between ``wgs84``, ``gcj02`` and ``bd09``.

    Parameters
    ----------
    lon, lat
        Degrees in ``src``: scalars or arrays of the same shape.
    src, dst
        ``"wgs84"``, ``"gcj02"`` or ``"bd09"`` (aliases ``amap``, ``baidu`` ...
        accepted).

    Returns
    -------
    tuple
        ``(lon, lat)`` in ``dst``.
    """
    src = _check_system(src, "src")
    dst = _check_system(dst, "dst")
    if src == dst:
        x, y, scalar = _arrays(lon, lat)
        return _out(x.copy(), y.copy(), scalar)
    return _CONVERTERS[(src, dst)](lon, lat)


def to_wgs84(data: Any, *, coord_system: CoordSystem) -> Any:
    """Convert every vertex of geometries from ``coord_system`` to WGS-84.

    Parameters
    ----------
    data
        A shapely geometry, an array/list of geometries, a GeoSeries or a
        GeoDataFrame, in longitude/latitude degrees of ``coord_system``.
    coord_system
        ``"wgs84"`` (returned as a copy), ``"gcj02"`` or ``"bd09"``.

    Returns
    -------
    The same kind of object, converted (a GeoSeries/GeoDataFrame keeps its
    index and columns and is labelled EPSG:4326).

    Raises
    ------
    LayerError
        If a GeoSeries/GeoDataFrame has a projected CRS (the offsets are
        defined on longitude/latitude only).
    """
    import geopandas as gpd

    system = _check_system(coord_system, "coord_system")

    def transform(coords: np.ndarray) -> np.ndarray:
        if system == "wgs84" or len(coords) == 0:
            return coords
        x, y = convert(coords[:, 0], coords[:, 1], src=system, dst="wgs84")
        return np.column_stack([x, y])

    if isinstance(data, (gpd.GeoDataFrame, gpd.GeoSeries)):
        if data.crs is not None and not data.crs.is_geographic:
            raise LayerError(
                f"Cannot convert {system} coordinates of a layer in projected CRS "
                f"{data.crs.to_string()}: {system} offsets apply to longitude/latitude. "
                "Give the layer in degrees (EPSG:4326) with its coord_system."
            )
        out = data.copy()
        geoms = shapely.transform(np.asarray(data.geometry.values, dtype=object), transform)
        if isinstance(out, gpd.GeoDataFrame):
            out[out.geometry.name] = gpd.GeoSeries(geoms, index=out.index, crs="EPSG:4326")
            return out.set_crs("EPSG:4326", allow_override=True)
        return gpd.GeoSeries(geoms, index=out.index, crs="EPSG:4326", name=out.name)
    if isinstance(data, shapely.Geometry):
        return shapely.transform(data, transform)
    return shapely.transform(np.asarray(data, dtype=object), transform)


def metric_crs(lon: ArrayLike, lat: ArrayLike) -> pyproj.CRS:
    """The UTM zone (WGS 84) of the centre of some points: a metric CRS.

    Parameters
    ----------
    lon, lat
        WGS-84 degrees (scalars or arrays); the centre of their bounding
        box picks the zone.

    Returns
    -------
    pyproj.CRS
        ``EPSG:326zz`` north of the equator, ``EPSG:327zz`` south
        (Xi'an → EPSG:32649, Beijing → EPSG:32650).

    Raises
    ------
    LayerError
        If the coordinates are not finite degrees.
    """
    x = np.asarray(lon, dtype=float).ravel()
    y = np.asarray(lat, dtype=float).ravel()
    ok = np.isfinite(x) & np.isfinite(y)
    if not ok.any() or np.abs(x[ok]).max() > 180 or np.abs(y[ok]).max() > 90:
        raise LayerError(
            "Cannot choose a metric CRS: the coordinates are not longitude/latitude degrees "
            f"(x range {np.nanmin(x) if x.size else None}..{np.nanmax(x) if x.size else None}). "
            "Give the layer's CRS, or set `crs:` in the scenario (e.g. EPSG:32649)."
        )
    cx = (x[ok].min() + x[ok].max()) / 2.0
    cy = (y[ok].min() + y[ok].max()) / 2.0
    zone = int(np.floor((cx + 180.0) / 6.0)) % 60 + 1
    return pyproj.CRS.from_epsg((32600 if cy >= 0 else 32700) + zone)
