"""Population grids: reading rasters, exact zonal sums, census totals spread over cells.

Analysts in China often have population only as a 100 m grid (WorldPop's
age-sex grids, grids built from the 2020 census for every township).  This
module reads such a GeoTIFF (any CRS, nodata honoured, one band per group
or one band holding a stated group) into a `PopulationRaster`, and uses it
three ways:

* `zonal_sums`: the grid's count inside each polygon (communities,
  compounds), with **exact partial-cell weights**: a polygon covering 30 %
  of a cell gets 30 % of the cell's people.  The coverage fractions come
  from exactextract (C++, exact polygon-cell intersection areas, Baston's
  algorithm), fed WKB geometries through a small feature source (5x faster
  than its GeoPandas source, which goes through GeoJSON per feature).
  ``method="centroid"`` gives the naive method (a cell counts wholly for the
  polygon holding its centre; rasterio's rasterize) for comparison.
* `allocate_to_grid`: census totals per area spread over the area's cells
  in proportion to a band (the census says how many, the grid says where),
  cells aggregated to blocks of a chosen size, integers exact per area.
* `grid_points`: the grid's own counts as demand points where no units
  exist (cells with people only, aggregated to blocks, optionally leaving
  out the part of each cell covered by existing units).

Rasters are never resampled: polygons are projected to the raster's CRS
(densified first, so straight edges stay straight in the other CRS), since
resampling counts would move people between cells.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import pyproj

from planner._errors import DemandError, PlannerWarning
from planner.demand.census import _GROUP_NAMES, _TOTAL_NAMES, BAND_COLUMNS, GROUPS
from planner.demand.spread import area_points, prepare_areas, spread_counts

if TYPE_CHECKING:  # pragma: no cover
    import geopandas as gpd
    from affine import Affine

__all__ = ["RASTER_GROUPS", "PopulationRaster", "allocate_to_grid", "grid_points",
           "read_population_raster", "zonal_sums"]

#: Groups a band may hold (besides the census band columns ``m_60_64`` ...).
RASTER_GROUPS: tuple[str, ...] = ("population", *GROUPS)
_M_PER_DEG_LAT = 110_574.0
_M_PER_DEG_LON_EQ = 111_320.0


@dataclass(frozen=True, eq=False)
class PopulationRaster:
    """Population counts per cell on one north-up grid, one array per group.

    ``values[group]`` is a 2-D float array (row 0 at the top), NaN where the
    file has no data; ``transform`` maps (col, row) to the CRS; ``origin``
    says where each group came from (``"band 2 ('pop_60plus')"``), for the
    method text of estimated columns.
    """

    values: Mapping[str, np.ndarray]
    transform: Affine
    crs: pyproj.CRS
    source: str = ""
    origin: Mapping[str, str] = field(default_factory=dict)

    @property
    def groups(self) -> list[str]:
        return list(self.values)

    @property
    def shape(self) -> tuple[int, int]:
        return next(iter(self.values.values())).shape

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(minx, miny, maxx, maxy) of the grid."""
        t, (h, w) = self.transform, self.shape
        return (t.c, t.f + t.e * h, t.c + t.a * w, t.f)

    @property
    def cell_size_m(self) -> float:
        """Edge of a cell in metres (the mean of both edges; degrees at the grid's middle)."""
        a, e = abs(self.transform.a), abs(self.transform.e)
        if self.crs.is_geographic:
            lat = np.radians(0.5 * (self.bounds[1] + self.bounds[3]))
            return float(np.sqrt(a * _M_PER_DEG_LON_EQ * np.cos(lat) * e * _M_PER_DEG_LAT))
        unit = self.crs.axis_info[0].unit_conversion_factor if self.crs.axis_info else 1.0
        return float(np.sqrt(a * e) * unit)

    def describe(self, group: str) -> str:
        """Where ``group`` comes from, for messages and method texts."""
        where = self.origin.get(group, group)
        return f"{where} of {Path(self.source).name}" if self.source else where

    def centres(self, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cell centres (x, y) in the grid's CRS."""
        t = self.transform
        return t.c + t.a * (cols + 0.5), t.f + t.e * (rows + 0.5)


# --------------------------------------------------------------------------- reading
def read_population_raster(
    source: str | os.PathLike | Mapping[str, str | os.PathLike | Sequence[str | os.PathLike]],
    *,
    bands: Mapping[str, int | Sequence[int]] | None = None,
    group: str | None = None,
    crs: Any = None,
    nodata: float | None = None,
    within: gpd.GeoDataFrame | None = None,
) -> PopulationRaster:
    """Read a population GeoTIFF (or several on one grid) with rasterio.

    Parameters
    ----------
    source
        A raster file, or a mapping group -> file (or list of files summed
        into the group, e.g. WorldPop's ``chn_f_60_2020.tif``,
        ``chn_m_60_2020.tif``, ...; each file's band 1, all on one grid).
    bands
        Group -> band number (1-based) or list of band numbers summed into
        the group: ``{"population": 1, "pop_60plus": [2, 3]}``.
    group
        The group a single-band file holds (``"pop_60plus"``).
        Without ``bands`` or ``group`` the band descriptions must name the
        groups (``population``, ``pop_60plus``, ``60岁及以上人口`` ...).
    crs
        The grid's CRS when the file has none (or a wrong one: a warning
        says it is replaced).
    nodata
        The no-data value when the file declares none (WorldPop: -99999).
        Cells holding the file's (or this) no-data value, masked cells and
        NaN are no data: they count nothing.
    within
        Read only the window covering this layer (plus one cell), so a
        national grid is not read whole.

    Returns
    -------
    PopulationRaster
        Groups are ``population``, ``pop_60plus``, ``pop_65plus``,
        ``pop_80plus`` or census band columns (``m_60_64``).

    Raises
    ------
    DemandError
        Unreadable file, no CRS, a rotated grid, a band that does not exist,
        a group name not understood, files on different grids, negative
        counts (a no-data value not declared), or a grid missing the study area.
    """
    if isinstance(source, Mapping):
        if bands or group:
            raise DemandError("Give either one file with `bands`/`group`, or a mapping "
                              "group -> files (each file's band 1), not both.")
        parts = {g: [p] if isinstance(p, (str, os.PathLike)) else list(p)
                 for g, p in source.items()}
        plan = [(g, Path(p), 1) for g, ps in parts.items() for p in ps]
        label = ", ".join(sorted({str(p) for _, p, _ in plan}))
    else:
        path = Path(source)
        with _open(path) as ds:
            mapping = _band_mapping(ds, path, bands=bands, group=group)
        plan = [(g, path, b) for g, bs in mapping.items() for b in bs]
        label = str(path)
    for g, _, _ in plan:
        _check_group(g)
    values: dict[str, np.ndarray] = {}
    origin: dict[str, list[str]] = {}
    grid: tuple | None = None
    for g, path, b in plan:
        arr, this = _read_band(path, b, crs=crs, nodata=nodata, within=within)
        if grid is None:
            grid = this
        elif not _same_grid(grid, this):
            raise DemandError(
                f"Population grids {label} are not on one grid ({path} differs in CRS, cell "
                "size, origin or extent); warp them onto one grid first (e.g. gdalwarp "
                "-tr/-te with -r sum).")
        values[g] = arr if g not in values else _nan_add(values[g], arr)
        desc = f"band {b}" if not isinstance(source, Mapping) else path.name
        origin.setdefault(g, []).append(desc)
    transform, out_crs = grid[0], grid[1]
    origin_text = {g: f"{' + '.join(v)} ({g})" for g, v in origin.items()}
    return PopulationRaster(values=values, transform=transform, crs=out_crs, source=label,
                            origin=origin_text)


def _open(path: Path):
    import rasterio

    if not path.exists():
        raise DemandError(f"Population grid {path} does not exist. Check the path (in a "
                          "scenario, relative to the scenario file).")
    try:
        return rasterio.open(path)
    except rasterio.errors.RasterioIOError as exc:
        raise DemandError(f"Population grid {path} cannot be read as a raster ({exc}). Give "
                          "a GeoTIFF.") from None


def _group_of(text: str | None) -> str | None:
    """The group a band description names, or None."""
    if not text:
        return None
    t = "".join(str(text).split()).lower()
    if t in {g.lower() for g in (*RASTER_GROUPS, *BAND_COLUMNS)}:
        return next(g for g in (*RASTER_GROUPS, *BAND_COLUMNS) if g.lower() == t)
    if t in {n.lower() for n in _TOTAL_NAMES}:
        return "population"
    for g, names in _GROUP_NAMES.items():
        if t in {n.lower() for n in names}:
            return g
    return None


def _band_mapping(ds, path: Path, *, bands, group) -> dict[str, list[int]]:
    """Group -> band numbers of one file, from ``bands``, ``group`` or band descriptions."""
    n = ds.count
    if bands:
        mapping = {g: [b] if isinstance(b, (int, np.integer)) else list(b)
                   for g, b in bands.items()}
    elif group:
        if n != 1:
            raise DemandError(
                f"Population grid {path} has {n} bands; `group` names the group of a "
                "single-band file. Say which band holds which group with `bands`, e.g. "
                "bands: {population: 1, pop_60plus: 2}.")
        mapping = {group: [1]}
    else:
        found = [_group_of(d) for d in ds.descriptions]
        if all(found) and len(set(found)) == n:
            mapping = {g: [i + 1] for i, g in enumerate(found)}
        else:
            shown = ", ".join(f"band {i + 1}: {d!r}" for i, d in enumerate(ds.descriptions))
            hint = ("group: pop_60plus (the group the band holds)" if n == 1 else
                    "bands: {population: 1, pop_60plus: 2}")
            raise DemandError(
                f"Population grid {path}: its band descriptions ({shown}) do not name the "
                f"groups. Say what it holds, e.g. {hint} (scenario: demand.grid).")
    bad = sorted({b for bs in mapping.values() for b in bs if not 1 <= int(b) <= n})
    if bad:
        raise DemandError(f"Population grid {path} has bands 1..{n}; bands {bad} do not exist.")
    return mapping


def _check_group(g: str) -> None:
    if g not in RASTER_GROUPS and g not in BAND_COLUMNS:
        raise DemandError(
            f"Population grid group {g!r} is not understood; use {', '.join(RASTER_GROUPS)} "
            "or a census band column (m_60_64, f_85plus ...).")


def _window(ds, within, crs: pyproj.CRS) -> Any:
    """The window of ``ds`` (in ``crs``) covering ``within`` (plus one cell), or None for all."""
    from rasterio.windows import Window, from_bounds

    if within is None or len(within) == 0:
        return None
    bounds = within.to_crs(crs).total_bounds if within.crs != crs else within.total_bounds
    win = from_bounds(*bounds, transform=ds.transform)
    col0, row0 = int(np.floor(win.col_off)) - 1, int(np.floor(win.row_off)) - 1
    col1 = int(np.ceil(win.col_off + win.width)) + 1
    row1 = int(np.ceil(win.row_off + win.height)) + 1
    col0, row0 = max(col0, 0), max(row0, 0)
    col1, row1 = min(col1, ds.width), min(row1, ds.height)
    if col1 <= col0 or row1 <= row0:
        raise DemandError(
            f"Population grid {ds.name} (bounds {tuple(round(v, 4) for v in ds.bounds)}, "
            f"{ds.crs}) does not cover the study area. Give the grid of this region.")
    return Window(col0, row0, col1 - col0, row1 - row0)


def _read_band(path: Path, band: int, *, crs, nodata, within) -> tuple[np.ndarray, tuple]:
    """One band as floats (NaN = no data), and its grid (transform, crs, shape)."""
    with _open(path) as ds:
        file_crs = ds.crs
        out_crs = _grid_crs(path, file_crs, crs)
        t = ds.transform
        if t.b != 0 or t.d != 0:
            raise DemandError(f"Population grid {path} is rotated or sheared; warp it to a "
                              "north-up grid first (gdalwarp).")
        win = _window(ds, within, out_crs)
        arr = ds.read(band, window=win, masked=True)
        transform = ds.window_transform(win) if win is not None else ds.transform
        declared = ds.nodatavals[band - 1]
    data = np.ma.filled(arr.astype(np.float64), np.nan)
    if nodata is not None and declared is None:
        data[data == nodata] = np.nan
    if transform.e > 0:  # south-up: flip to north-up
        from affine import Affine

        data = data[::-1]
        transform = Affine(transform.a, 0.0, transform.c, 0.0, -transform.e,
                           transform.f + transform.e * data.shape[0])
    neg = np.isfinite(data) & (data < 0)
    if neg.any():
        r, c = np.argwhere(neg)[0]
        raise DemandError(
            f"Population grid {path}, band {band}: {int(neg.sum())} cell(s) are negative "
            f"(e.g. row {r}, column {c}: {data[r, c]:g}). Counts cannot be negative: if that "
            "is the no-data value, declare it (nodata=..., scenario: demand.grid.nodata).")
    return data, (transform, out_crs, data.shape)


def _grid_crs(path: Path, file_crs, crs) -> pyproj.CRS:
    if crs is None:
        if file_crs is None:
            raise DemandError(
                f"Population grid {path} has no CRS. Give it (crs='EPSG:4326' for WorldPop, "
                "scenario: demand.grid.crs).")
        return pyproj.CRS.from_user_input(file_crs)
    given = pyproj.CRS.from_user_input(crs)
    if file_crs is not None and pyproj.CRS.from_user_input(file_crs) != given:
        old = pyproj.CRS.from_user_input(file_crs).to_string()
        warnings.warn(PlannerWarning(
            f"Population grid {path}: its CRS {old}"
            f" is replaced by the given crs {given.to_string()}.",
            f"人口网格 {path}：其坐标系 {old} 已替换为指定的 crs {given.to_string()}。"),
            stacklevel=4)
    return given


def _same_grid(a: tuple, b: tuple) -> bool:
    return a[1] == b[1] and a[2] == b[2] and a[0].almost_equals(b[0], precision=1e-9)


def _nan_add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a + b with NaN only where both are NaN."""
    both = np.isnan(a) & np.isnan(b)
    out = np.nan_to_num(a) + np.nan_to_num(b)
    out[both] = np.nan
    return out


# --------------------------------------------------------------------------- geometry
def _in_raster_crs(gdf: gpd.GeoDataFrame, raster: PopulationRaster) -> np.ndarray:
    """The polygons of ``gdf`` in the raster's CRS (valid; densified before reprojecting)."""
    import shapely

    if gdf.crs is None:
        raise DemandError("The polygon layer has no CRS; set it where it is read "
                          "(scenario: `crs:` of the layer) or with gdf.set_crs(...).")
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    bad = ~shapely.is_valid(geoms) & ~shapely.is_missing(geoms)
    if bad.any():
        geoms = geoms.copy()
        geoms[bad] = shapely.make_valid(geoms[bad])
    if pyproj.CRS.from_user_input(gdf.crs) == raster.crs:
        return geoms
    step_m = raster.cell_size_m / 4.0
    step = step_m / _M_PER_DEG_LAT if gdf.crs.is_geographic else step_m
    geoms = shapely.segmentize(geoms, step)
    t = pyproj.Transformer.from_crs(gdf.crs, raster.crs, always_xy=True)
    return shapely.transform(geoms, lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1])))


def _source(raster: PopulationRaster, array: np.ndarray, name: str):
    from exactextract.raster import NumPyRasterSource

    minx, miny, maxx, maxy = raster.bounds
    return NumPyRasterSource(array, minx, miny, maxx, maxy, srs_wkt=raster.crs.to_wkt(),
                             name=name)


def _extract(rasters: list, geoms: np.ndarray, ops: list[str], crs: pyproj.CRS) -> pd.DataFrame:
    """exactextract over WKB features; one row per geometry, in order (empty ones: NaN)."""
    import shapely
    from exactextract import exact_extract

    ok = np.flatnonzero(~shapely.is_empty(geoms) & ~shapely.is_missing(geoms))
    if len(ok) == 0:
        return pd.DataFrame(index=range(len(geoms)))
    src = _wkb_source_class()([bytes(w) for w in shapely.to_wkb(geoms[ok])], crs.to_wkt())
    df = exact_extract(rasters, src, ops, include_cols=["i"], output="pandas")
    df.index = ok[df["i"].to_numpy()]
    return df.drop(columns="i").reindex(range(len(geoms)))


@functools.cache
def _wkb_source_class():
    from exactextract import Feature, FeatureSource

    class WKBFeature(Feature):
        def __init__(self, i: int, wkb: bytes):
            Feature.__init__(self)
            self.i, self.wkb, self.props = i, wkb, {}

        def geometry(self):
            return self.wkb

        def set_geometry_format(self):
            return "wkb"

        def get(self, name):
            return self.i if name == "i" else self.props[name]

        def set(self, name, value):
            self.props[name] = value

        def fields(self):
            return ["i"]

    class WKBSource(FeatureSource):
        """Features straight from WKB (exactextract's GeoPandas source goes through GeoJSON)."""

        def __init__(self, wkbs: list[bytes], srs_wkt: str):
            super().__init__()
            self.wkbs, self.wkt = wkbs, srs_wkt

        def count(self):
            return len(self.wkbs)

        def __iter__(self):
            for i, w in enumerate(self.wkbs):
                yield WKBFeature(i, w)

        def srs_wkt(self):
            return self.wkt

    return WKBSource


def _cell_pieces(raster: PopulationRaster, geoms: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(polygon index, row, col, coverage fraction) of every cell a polygon touches."""
    ones = np.zeros(raster.shape, dtype=np.float32)
    df = _extract([_source(raster, ones, "c")], geoms, ["cell_id", "coverage"], raster.crs)
    if df.empty or "cell_id" not in df:
        z = np.zeros(0, dtype=np.int64)
        return z, z, z, np.zeros(0)
    df = df.dropna(subset=["cell_id"])
    lengths = df["cell_id"].map(len).to_numpy()
    cid = np.concatenate(df["cell_id"].to_list()).astype(np.int64) if len(df) else \
        np.zeros(0, np.int64)
    cov = np.concatenate(df["coverage"].to_list()) if len(df) else np.zeros(0)
    fid = np.repeat(df.index.to_numpy(), lengths)
    w = raster.shape[1]
    return fid, cid // w, cid % w, cov


# --------------------------------------------------------------------------- zonal sums
def zonal_sums(
    raster: PopulationRaster,
    polygons: gpd.GeoDataFrame,
    *,
    groups: Sequence[str] | None = None,
    method: Literal["exact", "centroid"] = "exact",
) -> pd.DataFrame:
    """The grid's count of each group inside each polygon.

    ``method="exact"`` (default): every cell counts with the share of its
    area inside the polygon (exactextract coverage fractions), so a polygon
    covering half a cell gets half its people, and neighbouring polygons
    share a cell without double counting.  ``"centroid"``: the naive
    method, a cell counts wholly for the polygon holding its centre
    (polygons are burnt in order, so where they overlap the later one
    takes the cell); shown for comparison.

    Returns
    -------
    DataFrame
        Indexed like ``polygons``: one column per group (persons, floats),
        ``cells`` (cells covered, fractions counted), ``nodata_cells``
        (covered cells that have no data in the first group: people there
        are unknown, not 0) and ``outside_share`` (share of the polygon's
        area beyond the grid's extent).  ``attrs["demand_columns"]`` gives
        each group column's method and source.  Warns when polygons reach
        beyond the grid.
    """
    import shapely

    groups = list(groups or raster.groups)
    missing = [g for g in groups if g not in raster.values]
    if missing:
        raise DemandError(f"Population grid {raster.source} has no groups {missing}; it has "
                          f"{raster.groups}.")
    geoms = _in_raster_crs(polygons, raster)
    box = shapely.box(*raster.bounds)
    area = shapely.area(geoms)
    inside = shapely.area(shapely.intersection(geoms, box))
    cell_area = abs(raster.transform.a * raster.transform.e)
    if method == "exact":
        sums, valid = _exact_sums(raster, geoms, groups)
        cells = inside / cell_area
    elif method == "centroid":
        sums, valid, cells = _centroid_sums(raster, geoms, groups)
    else:
        raise DemandError(f"Zonal method {method!r} is not known; use 'exact' or 'centroid'.")
    out = pd.DataFrame(sums, index=polygons.index)
    out["cells"] = cells
    out["nodata_cells"] = np.clip(cells - valid, 0.0, None)
    out["outside_share"] = np.divide(area - inside, area, out=np.zeros(len(area)),
                                     where=area > 0)
    beyond = out["outside_share"].to_numpy() > 1e-4  # not reprojection round-off
    if beyond.any():
        grid_name = Path(raster.source).name
        warnings.warn(PlannerWarning(
            f"{int(beyond.sum())} polygon(s) reach beyond the population grid "
            f"{grid_name or 'given'} (up to "
            f"{100 * out['outside_share'].max():.0f} % of their area); nobody is counted there.",
            f"{int(beyond.sum())} 个面超出了人口网格{f' {grid_name} ' if grid_name else ''}的范围"
            f"（最多超出其面积的 {100 * out['outside_share'].max():.0f}%）；超出部分不计人口。"),
            stacklevel=2)
    text = ("exact zonal sum: each cell weighted by the share of its area inside the polygon "
            "(exactextract)" if method == "exact" else
            "cell-centroid zonal sum: a cell counts wholly for the polygon holding its centre")
    out.attrs["demand_columns"] = {g: {"estimated": True, "method": f"{text}; "
                                       f"{raster.describe(g)}", "source": raster.source}
                                   for g in groups}
    return out


def _exact_sums(raster: PopulationRaster, geoms: np.ndarray, groups: list[str]
                ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    rasters = [_source(raster, raster.values[g], f"g{k}") for k, g in enumerate(groups)]
    df = _extract(rasters, geoms, ["sum", "count"], raster.crs)
    sums = {}
    for k, g in enumerate(groups):
        col = f"g{k}_sum" if f"g{k}_sum" in df else "sum"
        sums[g] = df[col].fillna(0.0).to_numpy(float) if col in df else np.zeros(len(geoms))
    col = "g0_count" if "g0_count" in df else "count"
    valid = df[col].fillna(0.0).to_numpy(float) if col in df else np.zeros(len(geoms))
    return sums, valid


def _centroid_sums(raster: PopulationRaster, geoms: np.ndarray, groups: list[str]
                   ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    import shapely
    from rasterio.features import rasterize

    n = len(geoms)
    ok = np.flatnonzero(~shapely.is_empty(geoms) & ~shapely.is_missing(geoms))
    ids = rasterize(((geoms[i], int(i) + 1) for i in ok), out_shape=raster.shape,
                    transform=raster.transform, fill=0, all_touched=False, dtype="int32") \
        if len(ok) else np.zeros(raster.shape, dtype=np.int32)
    flat = ids.ravel()
    sums = {g: np.bincount(flat, weights=np.nan_to_num(raster.values[g]).ravel(),
                           minlength=n + 1)[1:] for g in groups}
    first = raster.values[groups[0]]
    valid = np.bincount(flat, weights=np.isfinite(first).ravel().astype(float),
                        minlength=n + 1)[1:]
    cells = np.bincount(flat, minlength=n + 1)[1:].astype(float)
    return sums, valid, cells


# --------------------------------------------------------------------------- cells to blocks
def _block_factor(raster: PopulationRaster, cell_m: float | None) -> int:
    if cell_m is None:
        return 1
    if cell_m <= 0:
        raise DemandError(f"cell_m must be positive (got {cell_m}).")
    return max(1, int(round(cell_m / raster.cell_size_m)))


def _blocks(raster: PopulationRaster, fid: np.ndarray, rows: np.ndarray, cols: np.ndarray,
            k: int, weights: np.ndarray, sums: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Cell pieces summed per (polygon, k x k block), weighted centres, blocks with weight only."""
    nbc = (raster.shape[1] + k - 1) // k
    nbr = (raster.shape[0] + k - 1) // k
    br, bc = rows // k, cols // k
    code = (fid.astype(np.int64) * nbr + br) * nbc + bc
    uniq, inv = np.unique(code, return_inverse=True)
    m = len(uniq)
    x, y = raster.centres(rows, cols)
    wsum = np.bincount(inv, weights=weights, minlength=m)
    out = pd.DataFrame({
        "_fid": uniq // (nbr * nbc), "block_row": (uniq // nbc) % nbr, "block_col": uniq % nbc,
        "_w": wsum,
        "cells": np.bincount(inv, weights=(weights > 0).astype(float), minlength=m),
        "_x": np.bincount(inv, weights=weights * x, minlength=m),
        "_y": np.bincount(inv, weights=weights * y, minlength=m),
    })
    for g, v in sums.items():
        out[g] = np.bincount(inv, weights=v, minlength=m)
    out = out[out["_w"] > 0].reset_index(drop=True)
    out["_x"] /= out["_w"]
    out["_y"] /= out["_w"]
    out["cells"] = out["cells"].astype(np.int64)
    return out


def _points(raster: PopulationRaster, x: np.ndarray, y: np.ndarray, crs) -> Any:
    import geopandas as gpd

    pts = gpd.GeoSeries(gpd.points_from_xy(x, y), crs=raster.crs)
    return pts.to_crs(crs) if crs is not None and pyproj.CRS.from_user_input(crs) != \
        raster.crs else pts


def _block_ids(blocks: pd.DataFrame, keys: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: block id ``G<row>_<col>``, unit id (``-<area>`` added where a block is split
    between areas) and whether it is split."""
    rows, cols = blocks["block_row"].to_numpy(), blocks["block_col"].to_numpy()
    _, inv, count = np.unique(rows * (cols.max(initial=0) + 1) + cols, return_inverse=True,
                              return_counts=True)
    split = count[inv] > 1
    base = np.array([f"G{r}_{c}" for r, c in zip(rows.tolist(), cols.tolist())], dtype=object)
    ids = base.copy()
    cut = np.flatnonzero(split)
    ids[cut] = [f"{b}-{k}" for b, k in zip(base[cut], keys[cut])]
    return base, ids, split


# --------------------------------------------------------------------------- census over cells
def _weight_group(raster: PopulationRaster, weight_group: str | None) -> str:
    if weight_group is not None:
        if weight_group not in raster.values:
            raise DemandError(f"Population grid {raster.source} has no group {weight_group!r} "
                              f"to weight by; it has {raster.groups}.")
        return weight_group
    for g in ("pop_60plus", "population"):
        if g in raster.values:
            return g
    return raster.groups[0]


def allocate_to_grid(
    areas: gpd.GeoDataFrame,
    totals: pd.DataFrame,
    raster: PopulationRaster,
    *,
    area_key: str = "name",
    table_key: str = "name",
    weight_group: str | None = None,
    cell_m: float | None = None,
    columns: Sequence[str] | None = None,
) -> gpd.GeoDataFrame:
    """Spread census totals per area over the grid's cells inside each area.

    The census says how many live in each area (totals, older groups); the
    grid says where inside: each area's totals are shared over the parts of
    cells inside it in proportion to the grid's ``weight_group`` times the
    share of the cell inside the area (exact coverage fractions, so a cell
    on a border is split between the areas).  Cells are summed into blocks
    of ``cell_m`` (k x k cells aligned with the grid, k = cell_m / cell
    size rounded; None: single cells) and only blocks with people are kept.

    Parameters
    ----------
    weight_group
        The group whose band weights every column (one weight, so the
        groups stay nested in every block).  Default: ``pop_60plus`` when
        the grid has it (the group elderly-care planning cares about), else
        ``population``, else the first band.
    columns
        Count columns to spread (default: population, older groups and
        households, those the table has).

    Returns
    -------
    GeoDataFrame
        Points in ``areas.crs`` at each block's weighted centre: ``id``,
        ``source_id`` (block), ``area``, ``placement="grid"`` (or
        ``"area_point"`` for an area the grid gives nobody, with a warning),
        ``split``, ``cells`` (cells with weight), ``grid_weight``, ``share``,
        and per column ``c`` (floats) and ``c_int`` (integers exact per
        area, nested groups kept nested).  ``attrs["demand_columns"]`` and
        ``attrs["demand_report"]`` describe it.
    """
    import geopandas as gpd

    ar, table, columns = prepare_areas(areas, totals, area_key=area_key, table_key=table_key,
                                       columns=columns)
    group = _weight_group(raster, weight_group)
    k = _block_factor(raster, cell_m)
    fid, rows, cols, cov = _cell_pieces(raster, _in_raster_crs(ar, raster))
    w = np.nan_to_num(raster.values[group][rows, cols]) * cov
    blocks = _blocks(raster, fid, rows, cols, k, w, {})
    keys = ar["_key"].to_numpy()[blocks["_fid"].to_numpy()]
    base, ids, split = _block_ids(blocks, keys)
    pts = _points(raster, blocks["_x"].to_numpy(), blocks["_y"].to_numpy(), areas.crs)
    frame = gpd.GeoDataFrame({
        "id": ids, "source_id": base, "name": None, "area": keys, "placement": "grid",
        "split": split, "cells": blocks["cells"].to_numpy(),
        "grid_weight": blocks["_w"].to_numpy()}, geometry=pts.values, crs=areas.crs)
    present = set(np.unique(keys).tolist())
    empty = [a for a in table.index if a not in present]
    if empty:
        ap = area_points(ar.to_crs(areas.crs), empty, f"people in the grid's {group!r} band",
                         f"人口网格 {group!r} 组的人口")
        frame = pd.concat([frame, gpd.GeoDataFrame({
            "id": ["area:" + str(a) for a in ap["_key"]], "source_id": None, "name": None,
            "area": ap["_key"].to_numpy(), "placement": "area_point", "split": False,
            "cells": 0, "grid_weight": 0.0}, geometry=ap.geometry.values, crs=areas.crs)],
            ignore_index=True)
    weights = np.where(frame["placement"] == "area_point", 1.0, frame["grid_weight"])
    counts, share = spread_counts(frame["area"].to_numpy(), weights, table, columns)
    frame["share"] = share
    for c in columns:
        frame[c] = counts[c]
        frame[f"{c}_int"] = counts[f"{c}_int"]
    method = (f"census totals per area spread over grid cells by {raster.describe(group)}, "
              "cells weighted by the share of their area inside the area (exactextract), "
              f"summed into {k} x {k}-cell blocks")
    source = f"{totals.attrs.get('source', 'census table')}; {raster.source}"
    frame.attrs["demand_columns"] = {
        **{c: {"estimated": True, "method": method + " (floats)", "source": source}
           for c in columns},
        **{f"{c}_int": {"estimated": True, "method": method + " (integers by largest "
                        "remainder per area, nested groups kept nested)", "source": source}
           for c in columns}}
    frame.attrs["demand_report"] = {"n_points": int((frame["placement"] == "grid").sum()),
                                    "block_cells": k, "weight_group": group,
                                    "areas_at_point": empty}
    return frame


# --------------------------------------------------------------------------- the grid's own counts
def grid_points(
    raster: PopulationRaster,
    *,
    groups: Sequence[str] | None = None,
    cell_m: float | None = None,
    areas: gpd.GeoDataFrame | None = None,
    area_key: str = "name",
    exclude: gpd.GeoDataFrame | None = None,
    crs: Any = None,
) -> gpd.GeoDataFrame:
    """The grid's own counts as demand points (cells with people only).

    Parameters
    ----------
    groups
        Groups to carry (default: every band).
    cell_m
        Block size: k x k cells summed into one point (k = cell_m / cell
        size, rounded); None: one point per cell.
    areas
        Boundaries: points are made per area (a block crossing a border
        becomes one point per area, cells split by exact coverage) and
        carry the area's ``area_key`` in ``area``; None: the whole grid.
    exclude
        Existing units (polygons): the part of each cell they cover is left
        out (exact coverage), so points stand only where no unit exists.
    crs
        CRS of the points (default: ``areas.crs``, else the grid's).

    Returns
    -------
    GeoDataFrame
        Points at each block's population-weighted centre: ``id``,
        ``source_id``, ``area`` (with ``areas``), ``placement="grid"``,
        ``cells`` and one float column per group (the grid's counts: every
        person of the grid inside ``areas`` and outside ``exclude`` once).
    """
    import geopandas as gpd

    groups = list(groups or raster.groups)
    k = _block_factor(raster, cell_m)
    if areas is not None:
        if area_key not in areas.columns:
            raise DemandError(f"Area layer has no column {area_key!r} (columns: "
                              f"{list(areas.columns)}).")
        fid, rows, cols, cov = _cell_pieces(raster, _in_raster_crs(areas, raster))
    else:
        have = np.zeros(raster.shape, dtype=bool)
        for g in groups:
            have |= np.nan_to_num(raster.values[g]) > 0
        rows, cols = np.nonzero(have)
        fid, cov = np.zeros(len(rows), dtype=np.int64), np.ones(len(rows))
    if exclude is not None and len(exclude):
        efid, er, ec, ecov = _cell_pieces(raster, _in_raster_crs(exclude, raster))
        covered = np.zeros(raster.shape)
        np.add.at(covered, (er, ec), ecov)
        cov = cov * (1.0 - np.clip(covered[rows, cols], 0.0, 1.0))
    sums = {g: np.nan_to_num(raster.values[g][rows, cols]) * cov for g in groups}
    weight = sums["population"] if "population" in sums else sum(sums.values())
    blocks = _blocks(raster, fid, rows, cols, k, weight, sums)
    out_crs = crs if crs is not None else (areas.crs if areas is not None else raster.crs)
    pts = _points(raster, blocks["_x"].to_numpy(), blocks["_y"].to_numpy(), out_crs)
    keys = (areas[area_key].to_numpy()[blocks["_fid"].to_numpy()] if areas is not None
            else np.full(len(blocks), "", dtype=object))
    base, ids, split = _block_ids(blocks, keys)
    data: dict[str, Any] = {"id": ids, "source_id": base, "name": None}
    if areas is not None:
        data["area"] = keys
    data.update({"placement": "grid", "split": split, "cells": blocks["cells"].to_numpy()})
    data.update({g: blocks[g].to_numpy() for g in groups})
    out = gpd.GeoDataFrame(data, geometry=pts.values, crs=pts.crs)
    where = " outside the given units" if exclude is not None else ""
    out.attrs["demand_columns"] = {
        g: {"estimated": True, "method": f"the grid's own counts{where}: {raster.describe(g)}, "
            f"summed into {k} x {k}-cell blocks" + (", cells split by exact coverage"
                                                     if areas is not None or where else ""),
            "source": raster.source} for g in groups}
    return out
