"""Pedestrian networks for older residents.

Builds a walk graph from an OSM extract (.osm / .osm.pbf), an OSMnx
download, a road centre-line layer (Shapefile/GeoPackage/GeoJSON/KML) or a
saved GraphML, and stores it as compact arrays (`WalkNetwork`) that the
access step routes on with SciPy's csgraph.  Walking is undirected: one-way
streets are ignored.

Every builder (`from_lines`, `from_osm_file`, `from_osmnx_graph`,
`download_osm`, `from_graphml`) takes its source, the options of the build
as one `NetworkOptions` (``options=``) and any of its fields as keywords,
which override ``options``::

    from_lines(roads, profile="frail", min_component_share=0)
    from_lines(roads, options=NetworkOptions(profile="frail", min_component_share=0))

Walkable road classes
---------------------
By default motorways, trunk roads and their links are excluded
(`DEFAULT_EXCLUDE`): Chinese urban trunk roads (城市快速路, mapped as
``trunk`` in OSM) are grade-separated expressways without sidewalks, so an
older resident cannot walk along or across them except at the crossings
the other roads provide.  Everything in `WALKABLE_CLASSES` is kept,
including ``cycleway`` (Chinese cycle lanes are mostly side lanes of main
roads, which pedestrians use and cross) and ``track``.  ``steps`` are kept
but dropped by the ``frail`` and ``wheelchair`` profiles (`PROFILES`).

Centre lines
------------
`from_lines` nodes a bureau's centre lines itself (vectorised Shapely 2 /
NumPy; `shapely.node` would wrongly join bridges to the roads below):
junctions where lines share a vertex on one level or cross at grade, none
where a bridge, tunnel or another ``layer`` passes over; dangling ends
within ``join_tolerance_m`` of a line are joined; pass-through points
(degree 2, same class and name) are merged away; connected components
under ``min_component_share`` of the nodes are dropped.  Every count is in
``net.report`` (and `report_table`).

Walking speed
-------------
The default profile ``older_adult`` walks 1.0 m/s: Chinese 15-minute
elderly-care circle analyses convert at 60 m/min (15 min ≈ 900 m), and
measured speeds of older pedestrians are 0.9-1.2 m/s (Knoblauch et al.
1996; Fitzpatrick et al. 2006; Webb et al. 2017; see the README, 'Walking speed and coverage').

Layout
------
``options``
    `NetworkOptions` (the build options, documented once), their keyword
    form `NetworkOptionFields` and ``resolve_options``.
``graph``
    `WalkNetwork`: the arrays, the CSR adjacency, re-timing, a per-network cache.
``profiles``
    `PROFILES`, the road-class sets, profile resolution and the class filter.
``elevation``
    `tobler_factor` and `with_elevation` (slope penalties).
``noding``
    Noding centre lines into edges, merging pass-through nodes.
``assemble``
    Components, walking times, crossing delays and the edges table of a
    noded network (the last step of every builder).
``lines``
    `from_lines`: road centre-line layers.
``osm``
    `from_osmnx_graph`, `from_osm_file`, `download_osm`: OpenStreetMap.
``graphml``
    `to_graphml`, `from_graphml`.
``report``
    `report_table`: the build report for planners.

This package's ``__all__`` is the public API; each module's ``__all__``
also names what the other modules of the package use.
"""

from __future__ import annotations

from planner.network.elevation import tobler_factor, with_elevation
from planner.network.graph import WalkNetwork
from planner.network.graphml import from_graphml, to_graphml
from planner.network.lines import from_lines
from planner.network.options import NetworkOptionFields, NetworkOptions
from planner.network.osm import download_osm, from_osm_file, from_osmnx_graph
from planner.network.profiles import (
    DEFAULT_EXCLUDE,
    MAJOR_CLASSES,
    PROFILES,
    WALKABLE_CLASSES,
)
from planner.network.report import report_table

__all__ = [
    "DEFAULT_EXCLUDE",
    "MAJOR_CLASSES",
    "PROFILES",
    "WALKABLE_CLASSES",
    "NetworkOptionFields",
    "NetworkOptions",
    "WalkNetwork",
    "download_osm",
    "from_graphml",
    "from_lines",
    "from_osm_file",
    "from_osmnx_graph",
    "report_table",
    "to_graphml",
    "tobler_factor",
    "with_elevation",
]
