"""Default values shared by the library functions and the scenario schema.

Each default is defined here once; the domain packages use it as the
default of their keyword arguments and `planner.pipeline.settings` refers
to it for the scenario's defaults, so a notebook call and a scenario run
without the key give the same answer.
"""

from __future__ import annotations

__all__ = [
    "BLIND_SPOT_EPS_M", "CIRCLE_MIN", "CUTOFF_MIN", "DEFAULT_FLOORS", "FCA_CATCHMENT_MIN",
    "FRAGMENT_SNAP_M", "GRID_POINT_M", "STOREY_HEIGHT_M",
    "FRAGMENT_SNAP_RATIO", "JOIN_TOLERANCE_M", "LOCATE_TIME_LIMIT_S", "MAP_SIMPLIFY_M",
    "MAX_DENSITY_PER_KM2", "MAX_SNAP_M", "MIN_COMPONENT_SHARE", "PLAN_YEAR", "PLAN_YEARS",
    "REGION", "SERVICE_AREA_BUFFER_M", "SOLVE_TIME_LIMIT_S", "STACK_TOLERANCE_M",
    "STUDY_AREA_BUFFER_M", "THRESHOLDS_MIN", "TOWNSHIP_MISMATCH_M",
]

#: Where the data may lie: "china" (points outside China are an error, as a wrong coordinate
#: column or CRS usually is) or "any" (anywhere; GCJ-02/BD-09 conversion is then refused).
REGION: str = "china"
#: Farthest a demand unit, facility or candidate may lie from a street (m).
MAX_SNAP_M: float = 300.0
#: A point stays on a small network fragment (a component that is not the main network and
#: holds no facility) only when it is within this many metres of it ...
FRAGMENT_SNAP_M: float = 30.0
#: ... and at most this share of its distance to the main network; otherwise it snaps to the
#: main network (a fragment captures no snap it is not clearly on).
FRAGMENT_SNAP_RATIO: float = 1.0 / 3.0
#: Walking-time thresholds reported by the access step (min).
THRESHOLDS_MIN: tuple[float, ...] = (5.0, 10.0, 15.0)
#: The elderly-care circle: the threshold that counts as "covered" (min).
CIRCLE_MIN: float = 15.0
#: Walks longer than this are not routed ("reaches no facility") (min).
CUTOFF_MIN: float = 60.0
#: Half-width of the street band drawn as a service area (m).
SERVICE_AREA_BUFFER_M: float = 25.0
#: Neighbourhood radius that joins uncovered units into one blind spot (m).
BLIND_SPOT_EPS_M: float = 300.0
#: Catchment of the 2SFCA accessibility score (min).
FCA_CATCHMENT_MIN: float = 15.0
#: Line ends closer than this are joined when noding a centre-line file (m).
JOIN_TOLERANCE_M: float = 1.0
#: Network components smaller than this share of all nodes are dropped.
MIN_COMPONENT_SHARE: float = 0.01
#: Time limit of a location model's `solve` called from Python (s).
SOLVE_TIME_LIMIT_S: float = 300.0
#: Time limit per solve in a scenario run (s): runs should finish.
LOCATE_TIME_LIMIT_S: float = 60.0
#: Plan year whose rules the norm checks apply.
PLAN_YEAR: int = 2025
#: Years the demand step projects older residents to.
PLAN_YEARS: tuple[int, ...] = (2025, 2030, 2035)
#: Simplification tolerance of polygons and lines on the web map (m).
MAP_SIMPLIFY_M: float = 5.0
#: Residents per km² of a unit's polygon above which a layer check warns: denser than any
#: whole city district (Hong Kong's densest, Kwun Tong, about 57,000 in 2021).
MAX_DENSITY_PER_KM2: float = 100_000.0
#: Without boundary layers, the study area is the network's extent plus this much (m).
STUDY_AREA_BUFFER_M: float = MAX_SNAP_M
#: Rows of a point layer closer than this share one (stacked) coordinate (m).
STACK_TOLERANCE_M: float = 5.0
#: A point farther than this outside the township its township column names is a mismatch (m).
TOWNSHIP_MISMATCH_M: float = 100.0
#: Height of one storey when a building's floors come from its height (m).
STOREY_HEIGHT_M: float = 3.0
#: Floors of a residential building with neither floors nor height.
DEFAULT_FLOORS: float = 1.0
#: Size of the demand points made of population-grid cells (m; blocks of cells).
GRID_POINT_M: float = 200.0
