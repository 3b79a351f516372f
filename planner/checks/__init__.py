"""Checks on the user's data: is every number right, or does the toolkit say why not?

Library functions over GeoDataFrames and the walk network.  Each returns
what it found and issues a `planner.PlannerWarning` (English and Chinese
text) with the rows by name and how to answer; none of them changes a
coordinate.  Texts a check returns (``check_overlap``, ``DatumFit.message``)
are Chinese by default and English with ``lang="en"``.

``datum``
    `check_datum`: a layer that fits the streets, or the townships and
    communities its rows name, clearly better in another datum (GCJ-02,
    BD-09, WGS-84) than the one declared.
``area``
    `study_area` (the union of the boundary layers, else the network's
    extent plus a buffer), `flag_study_area` (facilities and candidates
    outside it: ``in_study_area``, and ``excluded`` when residents cannot
    reach them), `check_overlap` (layers that miss the network or the area
    entirely), and the row selections `in_use` and `counted`.
``geocodes``
    `check_stacked` (rows sharing a coordinate; stacks that look like a
    geocoder's fallback point are excluded unless accepted) and
    `township_mismatch` (rows lying in another township than they name).

Columns written: ``in_study_area`` (bool), ``stack_group`` (0 = alone),
``geocode_fallback`` (bool) and ``excluded`` (``""`` = used, else
``outside_study_area`` and/or ``stacked_geocode`` joined by ``;``).
"""

from __future__ import annotations

from planner.checks.area import (
    EXCLUDED,
    IN_STUDY_AREA,
    OUTSIDE,
    StudyArea,
    check_overlap,
    counted,
    flag_study_area,
    in_use,
    network_extent,
    rows_counted,
    rows_in_use,
    study_area,
)
from planner.checks.datum import DatumFit, check_datum
from planner.checks.geocodes import (
    ACCEPT_COLUMN,
    STACKED,
    check_stacked,
    stack_groups,
    township_mismatch,
)

__all__ = [
    "ACCEPT_COLUMN",
    "EXCLUDED",
    "IN_STUDY_AREA",
    "OUTSIDE",
    "STACKED",
    "DatumFit",
    "StudyArea",
    "check_datum",
    "check_overlap",
    "check_stacked",
    "counted",
    "flag_study_area",
    "in_use",
    "rows_counted",
    "rows_in_use",
    "network_extent",
    "stack_groups",
    "study_area",
    "township_mismatch",
]
