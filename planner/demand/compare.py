"""Demand per unit from several sources side by side: the units' own counts, the grid, the census.

`demand_by_unit` answers "do the sources agree where the older residents
live?" for a layer of units (communities, compounds): for each unit its own
count, the population grid's exact zonal sum, and the census totals of its
area spread by the grid or by residential floor area and summed inside the
unit.  All three estimates are floats computed exactly per unit (units are
cut by the area boundaries first, so a unit on a border takes from each
area its share).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from planner._errors import DemandError
from planner.demand.buildings import _pieces
from planner.demand.raster import PopulationRaster, _weight_group, zonal_sums
from planner.demand.spread import NESTED_COLUMNS, prepare_areas

if TYPE_CHECKING:  # pragma: no cover
    import geopandas as gpd

__all__ = ["demand_by_unit"]


def demand_by_unit(
    units: gpd.GeoDataFrame,
    *,
    raster: PopulationRaster | None = None,
    areas: gpd.GeoDataFrame | None = None,
    table: pd.DataFrame | None = None,
    buildings: gpd.GeoDataFrame | None = None,
    area_key: str = "name",
    table_key: str = "name",
    weight_group: str | None = None,
    groups: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Each unit's count from every source given, one column per source.

    Parameters
    ----------
    units
        Polygons (communities, compounds) with ``id`` (and ``name``, and
        their own counts when they have them).
    raster
        A population grid: adds ``<g>_grid`` (its exact zonal sum) for each
        group it has.
    areas, table
        Census areas and their table: with ``raster`` adds
        ``<g>_census_grid`` (the area's census count spread by the grid's
        ``weight_group``, see `planner.demand.allocate_to_grid`), with
        ``buildings`` adds ``<g>_census_buildings`` (spread by the
        buildings' ``floor_area_m2``, see `planner.demand.allocate_to_buildings`).
    groups
        Groups to compare (default: population and the older groups).

    Returns
    -------
    DataFrame
        ``id``, ``name`` and, per group, the unit's own ``<g>`` (when it has
        the column) and each source's estimate.  ``attrs["demand_columns"]``
        says how each estimated column was made.
    """
    groups = list(groups or NESTED_COLUMNS)
    out = pd.DataFrame({"id": units["id"].to_numpy() if "id" in units else units.index,
                        "name": units["name"].to_numpy() if "name" in units else None})
    info: dict[str, dict] = {}
    own = [g for g in groups if g in units.columns]
    for g in own:
        out[g] = units[g].to_numpy()
    if raster is not None:
        have = [g for g in groups if g in raster.values]
        if have:
            z = zonal_sums(raster, units, groups=have)
            for g in have:
                out[f"{g}_grid"] = z[g].to_numpy()
                info[f"{g}_grid"] = z.attrs["demand_columns"][g]
    if table is not None and areas is not None and (raster is not None or buildings is not None):
        _census_columns(out, info, units, areas, table, raster, buildings, groups,
                        area_key=area_key, table_key=table_key, weight_group=weight_group)
    cols = ["id", "name"] + [c for g in groups for c in
                             (g, f"{g}_grid", f"{g}_census_grid", f"{g}_census_buildings")
                             if c in out.columns]
    out = out[cols]
    out.attrs["demand_columns"] = info
    return out


def _census_columns(out: pd.DataFrame, info: dict, units, areas, table, raster, buildings,
                    groups: list[str], *, area_key: str, table_key: str,
                    weight_group: str | None) -> None:
    """Add ``<g>_census_grid`` / ``<g>_census_buildings``: census spread, summed per unit."""
    import geopandas as gpd

    ar, tab, columns = prepare_areas(areas, table, area_key=area_key, table_key=table_key)
    groups = [g for g in groups if g in columns]
    work = ar.crs if not ar.crs.is_geographic else ar.estimate_utm_crs()
    ar = ar.to_crs(work)
    un = gpd.GeoDataFrame({"_u": np.arange(len(units))}, geometry=units.geometry.values,
                          crs=units.crs).to_crs(work)
    pieces = gpd.overlay(un, ar[["_key", "geometry"]], how="intersection", keep_geom_type=True)
    source = str(table.attrs.get("source", "census table"))
    sources = []
    if raster is not None:
        wg = _weight_group(raster, weight_group)
        tot = zonal_sums(raster, ar, groups=[wg])[wg].to_numpy()
        part = zonal_sums(raster, pieces, groups=[wg])[wg].to_numpy()
        sources.append(("census_grid", tot, part,
                        f"census totals per area spread by {raster.describe(wg)} (exact "
                        "zonal sums of the unit's part of each area)", raster.source))
    if buildings is not None:
        if "floor_area_m2" not in buildings.columns:
            raise DemandError("The buildings need floor_area_m2 (residential_buildings()).")
        bl = buildings.to_crs(work)
        bg = np.asarray(bl.geometry.values, dtype=object)
        w = bl["floor_area_m2"].to_numpy(float)
        bi, ai, frac, _ = _pieces(bg, np.asarray(ar.geometry.values, dtype=object))
        tot = np.bincount(ai, weights=w[bi] * frac, minlength=len(ar))
        bi, pi, frac, _ = _pieces(bg, np.asarray(pieces.geometry.values, dtype=object))
        part = np.bincount(pi, weights=w[bi] * frac, minlength=len(pieces))
        sources.append(("census_buildings", tot, part,
                        "census totals per area spread over residential buildings by floor "
                        f"area ({buildings.attrs.get('method', 'floor_area_m2')})",
                        str(buildings.attrs.get("source", "buildings layer"))))
    area_of = pd.Series(np.arange(len(ar)), index=ar["_key"])
    pa = area_of.reindex(pieces["_key"]).to_numpy()
    for name, tot, part, method, src in sources:
        factor = np.divide(part, tot[pa], out=np.zeros(len(part)), where=tot[pa] > 0)
        for g in groups:
            val = tab[g].astype(float).reindex(pieces["_key"]).to_numpy() * factor
            out[f"{g}_{name}"] = np.bincount(pieces["_u"].to_numpy(), weights=val,
                                             minlength=len(units))
            info[f"{g}_{name}"] = {"estimated": True, "method": method,
                                   "source": f"{source}; {src}"}
