"""Census tables to small areas, older residents, and plan-year projections.

Bureaus rarely have population per community.  They have census tables by
district or township (5-year age bands by sex, households) and residential
polygons.  This package turns them into counts per small area, honestly
labelled as estimates:

1. `read_census` parses the 2010 / 2020 Chinese census layouts (and the same
   layout per township) into one tidy table with canonical band columns
   ``m_0, f_0, m_1_4, f_1_4, m_5_9, ..., m_85plus, f_85plus`` and validates it.
2. `older_groups` adds ``pop_60plus``, ``pop_65plus``, ``pop_80plus`` and
   persons per household.
3. `allocate` spreads area totals onto residential polygons (dasymetric
   mapping) with totals preserved exactly per area.
4. `project_areas` projects the older groups to plan years by cohort
   methods (Hamilton-Perry cohort-change ratios, or a life table);
   `project_units` carries the projection down to small areas.
5. `estimate_population` and `fill_groups` make the population layer of a
   run from these, and `projection_columns` records which columns are
   estimates: the pipeline's ``demand`` step (`planner.pipeline.steps.demand`)
   calls these functions with the scenario's settings.

Population grids and buildings say where inside each area people live
when residential land is incomplete or missing:

6. `read_population_raster` reads a population GeoTIFF (any CRS, nodata
   honoured, one band per group); `zonal_sums` counts it inside polygons
   with exact partial-cell weights (exactextract); `allocate_to_grid`
   spreads census totals over cells by a band; `grid_points` makes demand
   points of the grid's own counts where no units exist.
7. `residential_buildings` gives residential buildings their floor area
   (footprint x floors, or height / storey height); `allocate_to_buildings`
   spreads census totals over them.
8. `demand_by_unit` puts each unit's own count beside the grid's and the
   census spread by the grid or by buildings.

The modules, by concern: `planner.demand.census` (band vocabulary, reading
census tables, older groups, area-name matching), `planner.demand.allocation`
(dasymetric allocation and the population layer),
`planner.demand.projection` (cohort projections), `planner.demand.raster`
(population grids), `planner.demand.buildings` (building floor area),
`planner.demand.spread` (census totals over weighted targets, integers
exact per area) and `planner.demand.compare` (sources side by side).  Everything public is
available from ``planner.demand`` itself.

No fertility assumption is needed: only the 60+, 65+ and 80+ groups are
projected, and people aged 60+ in 2035 were already 45+ in 2020 (at most
15 years ahead, every projected person is alive and counted in the base
census).  The youngest bands of a projection are left empty (NaN) on purpose.

Examples
--------
>>> from planner import demand
>>> table = demand.older_groups(demand.read_census("census2020.csv"))  # doctest: +SKIP
>>> small = demand.allocate(districts, table, residential)  # doctest: +SKIP
"""

from __future__ import annotations

from planner.demand.allocation import (
    CAMPUS_NAMES,
    CAMPUS_SHARE_WARN,
    CAMPUS_TAGS,
    HOUSING_NAMES,
    MIN_RES_M2_PER_RESIDENT,
    OVERLAP_WARN_SHARE,
    allocate,
    campus_like,
    demand_columns,
    estimate_population,
    fill_groups,
    largest_remainder,
    parent_areas,
    trim_overlaps,
)
from planner.demand.buildings import (
    FLOORS_COLUMNS,
    HEIGHT_COLUMNS,
    RESIDENTIAL_VALUES,
    allocate_to_buildings,
    residential_buildings,
)
from planner.demand.census import (
    BAND_COLUMNS,
    BANDS,
    COUNT_COLUMNS,
    GROUPS,
    SEXES,
    close_names,
    older_groups,
    read_census,
)
from planner.demand.compare import demand_by_unit
from planner.demand.projection import (
    area_projection_table,
    cohort_change_ratios,
    project_areas,
    project_units,
    projection_columns,
    projection_needs,
    read_life_table,
)
from planner.demand.raster import (
    RASTER_GROUPS,
    PopulationRaster,
    allocate_to_grid,
    grid_points,
    read_population_raster,
    zonal_sums,
)
from planner.demand.spread import (
    NESTED_COLUMNS,
    SPREAD_COLUMNS,
    population_units,
    prepare_areas,
    spread_counts,
)

__all__ = [
    "BANDS",
    "BAND_COLUMNS",
    "CAMPUS_NAMES",
    "CAMPUS_SHARE_WARN",
    "CAMPUS_TAGS",
    "HOUSING_NAMES",
    "OVERLAP_WARN_SHARE",
    "COUNT_COLUMNS",
    "FLOORS_COLUMNS",
    "GROUPS",
    "HEIGHT_COLUMNS",
    "MIN_RES_M2_PER_RESIDENT",
    "NESTED_COLUMNS",
    "RASTER_GROUPS",
    "RESIDENTIAL_VALUES",
    "SEXES",
    "SPREAD_COLUMNS",
    "PopulationRaster",
    "allocate",
    "allocate_to_buildings",
    "allocate_to_grid",
    "area_projection_table",
    "close_names",
    "campus_like",
    "cohort_change_ratios",
    "demand_by_unit",
    "demand_columns",
    "estimate_population",
    "fill_groups",
    "grid_points",
    "largest_remainder",
    "older_groups",
    "parent_areas",
    "project_areas",
    "project_units",
    "projection_columns",
    "projection_needs",
    "read_census",
    "read_life_table",
    "trim_overlaps",
    "population_units",
    "project_areas",
    "project_units",
    "projection_columns",
    "prepare_areas",
    "read_census",
    "read_life_table",
    "read_population_raster",
    "residential_buildings",
    "spread_counts",
    "zonal_sums",
]
