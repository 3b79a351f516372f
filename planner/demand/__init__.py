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

The modules, by concern: `planner.demand.census` (band vocabulary, reading
census tables, older groups, area-name matching), `planner.demand.allocation`
(dasymetric allocation and the population layer) and
`planner.demand.projection` (cohort projections).  Everything public is
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
from planner.demand.projection import (
    area_projection_table,
    cohort_change_ratios,
    project_areas,
    project_units,
    projection_columns,
    projection_needs,
    read_life_table,
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
    "GROUPS",
    "MIN_RES_M2_PER_RESIDENT",
    "SEXES",
    "allocate",
    "area_projection_table",
    "close_names",
    "campus_like",
    "cohort_change_ratios",
    "demand_columns",
    "estimate_population",
    "fill_groups",
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
]
