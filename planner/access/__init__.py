"""Walking access to elderly-care facilities: the 15-minute circle.

How long an older resident walks to the nearest facility of each tier, who
is inside the 15-minute circle (一刻钟养老服务圈), where the gaps are, what each
facility's service area looks like, and capacity-aware accessibility
(2SFCA / enhanced 2SFCA).

Layout
------
Import the public names from ``planner.access``; the modules split the work
by concern:

``snap``
    `Snapped`, `snap_points`, `snap_units` (compound gates; `gate_units` matches
    gates to units), and the edge
    geometries every other module shares (cached per network).
``routing``
    `node_times`, `nearest_times`, `cost_matrix`: SciPy csgraph Dijkstra on
    the network's CSR arrays plus one virtual node per snapped source.
``coverage``
    `population_access` (times per unit and tier), `coverage_table`,
    `blind_spots`, `tier_values`, `MAIN_TIERS`.
``areas``
    `service_areas`: the streets reached within each threshold, as polygons.
``faces``
    The city blocks (faces of the network drawn in the plane) that
    ``areas`` takes whole instead of unioning one band per street.
``floating_catchment``
    `fca_scores` and `fca` (2SFCA / E2SFCA).

Walking is undirected (one-way streets do not bind pedestrians).  Times are
seconds in the array functions and minutes in the tables; unreachable
(beyond the cut-off or in another component) is ``inf`` in the arrays,
``NaN`` in the tables.  Derived arrays (CSR, edge geometries, STRtree, city
blocks) are kept on the network with `planner.network.WalkNetwork.cached`.
The defaults (snap limit, thresholds, cut-off, ...) come from
`planner.defaults`.
"""

from __future__ import annotations

from planner.access.areas import service_areas
from planner.access.coverage import (
    MAIN_TIERS,
    blind_spots,
    coverage_table,
    population_access,
    tier_values,
)
from planner.access.floating_catchment import fca, fca_scores
from planner.access.routing import cost_matrix, nearest_times, node_times
from planner.access.snap import Snapped, gate_units, served_components, snap_points, snap_units

__all__ = [
    "Snapped",
    "gate_units",
    "served_components",
    "snap_points",
    "snap_units",
    "node_times",
    "nearest_times",
    "cost_matrix",
    "population_access",
    "coverage_table",
    "blind_spots",
    "tier_values",
    "service_areas",
    "fca_scores",
    "fca",
    "MAIN_TIERS",
]
