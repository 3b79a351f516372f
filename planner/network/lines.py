"""Walk networks from road centre lines (Shapefile, GeoPackage, GeoJSON, KML, GeoDataFrame).

`from_lines` reads the layer, finds its class / name / bridge / tunnel /
layer columns, filters road classes, nodes the lines (`planner.network.noding`)
and assembles the network (`planner.network.assemble`).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pyproj

from planner._errors import NetworkError, PlannerWarning
from planner.defaults import JOIN_TOLERANCE_M, REGION
from planner.network.assemble import assemble
from planner.network.graph import WalkNetwork
from planner.network.noding import merge_degree2, node_lines
from planner.network.options import NetworkOptions, resolve_options
from planner.network.profiles import class_filter, normalise_classes, resolve_profile

if TYPE_CHECKING:
    import geopandas as gpd
    from typing_extensions import Unpack

    from planner.coords import CoordSystem
    from planner.network.options import NetworkOptionFields

__all__ = ["from_lines"]

_CLASS_COLUMNS = ("fclass", "highway", "road_class", "class", "type", "道路等级", "等级",
                  "道路类型", "道路类别", "类型", "tier")  # read_layer renames 等级/类型 to tier
_NAME_COLUMNS = ("name", "道路名称", "路名", "名称")
_FALSE = {"", "f", "false", "no", "n", "0", "0.0", "none", "nan", "否", "<na>"}


# --------------------------------------------------------------------------- the builder
def from_lines(
    lines: gpd.GeoDataFrame | str | os.PathLike,
    *,
    options: NetworkOptions | None = None,
    join_tolerance_m: float = JOIN_TOLERANCE_M,
    class_column: str | None = None,
    name_column: str | None = None,
    layer: str | None = None,
    coord_system: CoordSystem = "wgs84",
    region: Literal["china", "any"] = REGION,
    where: str | None = None,
    **overrides: Unpack[NetworkOptionFields],
) -> WalkNetwork:
    """Build a walk network from a road centre-line layer.

    Lines are split where they meet or cross at grade; a bridge, a tunnel or
    a different ``layer`` value passes over without a junction.  Dangling
    ends within ``join_tolerance_m`` of another line are joined (and
    counted in ``net.report["near_miss_joins"]``).  Only the connected
    components with at least ``min_component_share`` of the nodes are kept
    (always the largest); the rest is reported.

    Parameters
    ----------
    lines
        A GeoDataFrame of (Multi)LineStrings with a CRS, or the path of a
        Shapefile / GeoPackage / GeoJSON / KML file.  Optional columns:
        road class (``fclass`` or ``highway``; Chinese classes such as
        主干路 are mapped), ``name``, ``bridge``, ``tunnel``, ``layer``.
    options
        How to build it: profile, speed, road classes, components, CRS,
        crossing delay (see `NetworkOptions`; default ``NetworkOptions()``).
    join_tolerance_m
        Largest gap in metres between a line's dangling end and another
        line that is closed.
    class_column, name_column
        Column names when they are not among the usual ones.
    layer, coord_system, region
        Layer name, datum (``wgs84``/``gcj02``/``bd09``) and region (``china``:
        lines outside China are an error; ``any``: anywhere, WGS-84 only) when
        ``lines`` is a path (see `planner.layers.read_layer`).
    where
        Keep only the lines satisfying this SQL condition on the file's own
        columns when ``lines`` is a path (``"fclass != 'track'"``; see
        `planner.layers.read_layer`).
    **overrides
        Fields of `NetworkOptions` as keywords (``profile="frail"``); they
        override ``options``.

    Returns
    -------
    WalkNetwork
        With ``edges`` (u, v, length_m, fclass, name, geometry from u to v)
        and ``report`` (crossings, joins, components, dropped classes).

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> roads = gpd.GeoDataFrame({"fclass": ["residential", "residential"]},
    ...     geometry=[shapely.LineString([(0, 50), (100, 50)]),
    ...               shapely.LineString([(50, 0), (50, 100)])], crs="EPSG:32649")
    >>> net = from_lines(roads)
    >>> net.n_nodes, net.n_edges
    (5, 4)
    """
    import geopandas as gpd

    opts = resolve_options(options, overrides, caller="from_lines")
    crs = opts.crs
    if isinstance(lines, (str, os.PathLike)):
        lines = _read_lines(Path(lines), layer=layer, coord_system=coord_system,
                            target_crs=crs, region=region, where=where)
    if not isinstance(lines, gpd.GeoDataFrame):
        raise NetworkError(
            f"from_lines needs a GeoDataFrame of road lines or a file path, got "
            f"{type(lines).__name__}."
        )
    if lines.crs is None:
        raise NetworkError(
            "The road layer has no CRS. Set one (e.g. `gdf.set_crs('EPSG:4326')`, or `crs:` "
            "for the layer in the scenario) so lengths can be measured in metres."
        )
    if join_tolerance_m < 0 or not np.isfinite(join_tolerance_m):
        raise NetworkError(f"join_tolerance_m={join_tolerance_m!r} must be 0 or more metres.")
    profile, speed, avoid = resolve_profile(opts.profile, opts.speed_mps, opts.avoid_steps)
    report: dict[str, Any] = {"source": "lines", "n_lines_in": int(len(lines))}
    gdf = lines[~(lines.geometry.isna() | lines.geometry.is_empty)]
    kinds = gdf.geom_type
    bad = ~kinds.isin(["LineString", "MultiLineString"])
    if bad.all():
        raise NetworkError(
            "The road layer has no line geometries (found "
            f"{', '.join(sorted(set(kinds)))}). Give a layer of road centre lines."
        )
    if bad.any() or len(gdf) < len(lines):
        n_bad = int(bad.sum()) + len(lines) - len(gdf)
        found = ', '.join(sorted(set(kinds[bad])) or ['empty'])
        warnings.warn(PlannerWarning(
            f"{n_bad} rows of the road layer are empty or not lines ({found}) and were ignored.",
            f"道路图层有 {n_bad} 行为空或不是线（{found}），已忽略。"), stacklevel=2)
        gdf = gdf[~bad]
    metric = pyproj.CRS.from_user_input(crs) if crs is not None else _metric_crs_for(gdf)
    gdf = gdf.explode(index_parts=False).to_crs(metric)
    cols = list(gdf.columns)
    ccol = _find_column(cols, class_column, _CLASS_COLUMNS, "road class")
    ncol = _find_column(cols, name_column, _NAME_COLUMNS, "road name")
    if ccol is None:
        warnings.warn(PlannerWarning(
            "The road layer has no road-class column (fclass/highway/道路等级), so every line "
            "is treated as walkable, motorways included. Name the column with `class_column`.",
            "道路图层没有道路等级列（fclass/highway/道路等级），所有线（包括高速公路）都按可步行"
            "处理。请用 `class_column` 指定该列。"), stacklevel=2)
        classes = np.full(len(gdf), "unknown", dtype=object)
    else:
        classes = normalise_classes(gdf[ccol].to_numpy())
    names = (gdf[ncol].fillna("").astype(str).to_numpy() if ncol is not None
             else np.full(len(gdf), "", dtype=object))
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    import shapely

    keep = class_filter(classes, shapely.length(geoms), include_classes=opts.include_classes,
                        exclude_classes=opts.exclude_classes, avoid_steps=avoid, report=report)
    report["n_lines_used"] = int(keep.sum())
    if not keep.any():
        raise NetworkError(
            "No walkable edge is left in the network: every line's road class is excluded "
            f"({', '.join(sorted(report['excluded_classes']))}). Check `network.include_classes`"
            " / `exclude_classes`."
        )

    def col(name, conv):
        c = _find_column(cols, None, (name,), name)
        return conv(gdf[c].to_numpy()) if c is not None else None

    bridge = col("bridge", _truthy)
    tunnel = col("tunnel", _truthy)
    lay = col("layer", lambda v: np.nan_to_num(
        np.asarray(__import__("pandas").to_numeric(v, errors="coerce"), dtype=float)))
    n = len(gdf)
    bridge = np.zeros(n, dtype=bool) if bridge is None else bridge
    tunnel = np.zeros(n, dtype=bool) if tunnel is None else tunnel
    lay = np.zeros(n) if lay is None else lay
    nodes_xy, eu, ev, egeoms, eline, stats = node_lines(
        geoms[keep], np.round(lay[keep]).astype(np.int64), bridge[keep], tunnel[keep],
        join_tolerance_m=float(join_tolerance_m))
    report.update(stats)
    report["join_tolerance_m"] = float(join_tolerance_m)
    attrs = {"fclass": classes[keep][eline], "name": names[keep][eline]}
    nodes_xy, eu, ev, egeoms, attrs, n_merged = merge_degree2(nodes_xy, eu, ev, egeoms, attrs)
    report["pass_through_nodes_merged"] = n_merged
    return assemble(nodes_xy, eu, ev, egeoms, attrs, crs=metric, speed_mps=speed,
                    profile=profile, min_component_share=opts.min_component_share,
                    crossing_delay_s=opts.crossing_delay_s, report=report)


def _read_lines(path: Path, *, layer: str | None, coord_system: CoordSystem = "wgs84",
                target_crs: Any = None, region: str = REGION,
                where: str | None = None) -> gpd.GeoDataFrame:
    """Read a road layer with `planner.layers.read_layer` (KML, GBK Shapefiles, datums)."""
    from planner.layers import read_layer

    if not path.exists():
        raise NetworkError(f"Road layer {path} does not exist. Check `network.path`.")
    return read_layer(path, kind="lines", layer=layer, coord_system=coord_system,
                      target_crs=target_crs, name=f"network ({path.name})", region=region,
                      where=where)


# --------------------------------------------------------------------------- helpers
def _truthy(values: Sequence[Any] | np.ndarray) -> np.ndarray:
    """OSM-style flags ('T', 'yes', 'viaduct', 1, True) as booleans; 'F', 'no', 0, '' false."""
    import pandas as pd

    s = pd.Series(values, dtype=object)
    out = ~s.isna().to_numpy()
    txt = s.astype(str).str.strip().str.lower().to_numpy()
    return out & ~np.isin(txt, list(_FALSE))


def _find_column(columns: Sequence[Any], wanted: str | None, candidates: tuple[str, ...],
                 what: str) -> Any:
    if wanted is not None:
        if wanted not in columns:
            raise NetworkError(
                f"The road layer has no column {wanted!r} for the {what}. Its columns are: "
                f"{', '.join(map(str, columns))}."
            )
        return wanted
    lower = {str(c).lower(): c for c in columns}
    for c in candidates:
        if c in lower:
            return lower[c]
    return None


def _metric_crs_for(gdf: gpd.GeoDataFrame) -> pyproj.CRS:
    from planner.coords import metric_crs

    if gdf.crs is not None and not gdf.crs.is_geographic:
        return gdf.crs
    b = gdf.to_crs(4326).total_bounds
    return metric_crs([b[0], b[2]], [b[1], b[3]])
