"""The generated demo district 示范区 (Demo District) shipped in ``planner/data/``.

Everything in ``planner/data/demo*`` is *generated* by this module (no real
place, no download): ``write_demo(folder, seed=0)`` rewrites the committed
files byte-for-byte in content (a test regenerates them and compares).
The district is fictional and lies around 112.45 E, 34.62 N (WGS-84),
about 6 km x 5 km, with three townships/subdistricts: 东城街道 and 西河街道
north of a river, and 南山街道 (older and more rural) south of it.

How it is built (seed 0)
------------------------
A jittered street grid is laid out in a frame that follows a meandering
river (so rows of streets curve with it) and clipped to an irregular
blob.  Cells of the grid are residential compounds, parks, vacant land or
other uses; communities (社区) are contiguous groups of cells inside one
township.  The ``roads`` layer has Geofabrik-style columns (``fclass``,
``name``, ``oneway`` B/F/T, ``bridge`` and ``tunnel`` 'T'/'F', ``layer``)
and the traps a road-network builder must handle:

- the river is crossed only by 4 bridges (``bridge='T'``, ``layer=1``; one
  of them a footbridge); the bridges pass over the riverside roads without
  a shared vertex (they must not be noded with them);
- a rail line (layer ``rail``, not a road) is crossed by 2 underpasses
  (``tunnel='T'``, ``layer=-1``); the area north of it is reached only
  through them;
- one ``trunk`` road (no sidewalks), one ``motorway`` with a
  ``motorway_link`` south of the district; some one-way streets;
- footways through compounds and parks, a few ``steps``, curved lanes and
  dead ends;
- 4 near-misses (lane ends 0.4-0.8 m short of the node they belong to: to
  be joined), and one small disconnected cluster of 3 service lanes (to be
  dropped as a minor component).

Other layers: ``district`` (1), ``townships`` (3), ``communities`` (the
population units: id, name, population, pop_60plus, pop_65plus,
pop_80plus, households, township, district), ``residential``, ``parks``,
``water``, ``rail``, ``gates`` (compound gates with the ``community`` id)
and ``candidates`` (id, name, tier, capacity, land_area_m2).
``demo_facilities.csv`` is the facility register as a civil-affairs
bureau keeps it (Chinese headers, GCJ-02 coordinates as from AMap);
``demo_census_2010.csv`` and ``demo_census_2020.csv`` are township census
tables in the column format of the 6th/7th census county tables (bands
sum exactly to totals; 2020 township totals equal the community sums).

``demo_buildings.parquet`` (GeoParquet, EPSG:4326) holds 2,393 building
footprints: east-west residential slabs (``function`` 住宅) in every
compound, 2-6 floors in 南山街道 and 5-33 elsewhere, with ``floors`` only
(60 %), ``height_m`` only (25 %, 3.0 m +- 0.6 m per storey in total, so
round(height / 3.0) gives the floors back) or both; plus shops, offices
and schools (商业, 办公, 教育) that a function filter must drop.
``demo_grid_100m.tif`` is a 100 m population grid in UTM 49N (EPSG:32649,
bands ``population``, ``pop_60plus``, ``pop_65plus``, ``pop_80plus``, named
in the band descriptions): each community's counts are spread over its
residential buildings by floor area, and each building's residents over
the cells under its footprint by footprint share, so the grid holds every
resident (band totals equal the district's counts) and cells that are
mostly river and hold nobody are no data (-99999, as WorldPop does).
Buildings and grid draw from their own generator (``[seed, 16]``), so the
other layers are unchanged by them.

Norms the demo fails by construction (seed 0)
---------------------------------------------
The figures are recomputed from the data in ``tests/test_demo.py``.

- One centre per township (一镇街一中心, Xi'an 2021 三(一)2): 南山街道 has
  no township centre (2 of 3 townships covered = 66.7 %, below the
  Xi'an 2025 target of 70 %, above Shaanxi's 60 %).
- Township centre floor area >= 1500 m²: 西河街道综合养老服务中心 has
  1280 m² (220 m² short).  Its nursing beds are 30 of 40 (75 %, passes);
  东城街道综合养老服务中心 passes (2200 m², 60 beds, 45 nursing = 75 %).
- Community station floor area >= 300 m²: 2 stations fail
  (东城 station at 220 m², 南山 station at 260 m²).
- One station per community (一社区一站点): 16 stations serve 16 of the 46
  communities; 30 communities have none.
- 15-minute circle at 1.0 m/s (900 m walk): measured on the ``roads``
  layer without motorways (nodes at shared line ends, Dijkstra), 22 of the
  46 communities (their representative points; 9 in 南山街道, 8 in
  西河街道, 5 in 东城街道; 19,916 residents aged 60+) have no community
  station within 900 m.  The area north of the rail line has no station.
- Elderly-care land >= 0.2 m² per resident, by township (facility land
  over township population): 西河街道 20,500 m² / 88,750 = 0.231 (passes,
  thanks to a large private nursing home); 东城街道 10,600 / 96,875 =
  0.109 (fails, 8,775 m² short); 南山街道 600 / 68,125 = 0.009 (fails,
  13,025 m² short).
- Community elderly-care floor space >= 20 m² per 100 households (station
  floor areas): 东城街道 3,110 m² for 37,138 households (needs 7,428);
  西河街道 3,210 for 33,293 (needs 6,659); 南山街道 1,430 for 25,119
  (needs 5,024): all fail.
- Public nursing-home beds >= 1 % of the 60+ population: the one public
  home (示范区社会福利院) has 200 beds for 46,347 residents aged 60+
  (needs 464).

The candidate sites deliberately leave a few communities out of reach
(和平, 团结, 长春, 春晖 and 桃源社区 have no candidate or station within
about 900 m): a set-covering model must report them as uncoverable rather
than claim full coverage.

The district has 253,750 residents in 46 communities (南山街道 26 % aged
60+, the others 14-17 %).

Regenerate the committed files with ``python -m planner.demo planner/data``
(from the repository root; it also rewrites ``scenarios/demo.yaml`` and
``scenarios/demo_grid.yaml``).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "BAND_NAMES", "DISTRICT", "GPKG_LAYERS", "GRID_BANDS", "GRID_CELL_M", "GRID_CRS",
    "GRID_NODATA", "TOWNSHIPS", "TOWNSHIP_CODES", "demo_grid_yaml", "demo_yaml",
    "generate_demo", "rail_y", "river_y", "to_lonlat", "to_real", "write_demo", "write_grid",
]

# --------------------------------------------------------------------------- constants
LON0, LAT0 = 112.45, 34.62
M_PER_DEG_LAT = 110_574.0
M_PER_DEG_LON = 111_320.0 * math.cos(math.radians(LAT0))
DISTRICT = "示范区"
DISTRICT_CODE = 419901
TOWNSHIPS = ("东城街道", "西河街道", "南山街道")
TOWNSHIP_CODES = {"东城街道": 419901001, "西河街道": 419901002, "南山街道": 419901003}

DX = 230.0  # column spacing, m
COL0 = -3000.0
N_COLS = 27  # node columns 0..26
ROWS_NORTH = [50.0, 160.0] + [360.0 + 200.0 * k for k in range(15)]  # y' rows north of river
ROWS_SOUTH = [-50.0, -160.0] + [-360.0 - 200.0 * k for k in range(8)]  # rows south of it
ROWS = sorted(ROWS_SOUTH) + ROWS_NORTH
RIVER_HALF_WIDTH_M = 35.0

#: Columns (node index) of the main north-south roads and which cross the river.
PRIMARY_COL = 13
SECONDARY_COLS = (6, 20)
FOOTBRIDGE_COL = 9
BRIDGE_COLS = (6, FOOTBRIDGE_COL, 13, 20)
UNDERPASS_COLS = (8, 13)
PRIMARY_ROW = 960.0
SECONDARY_ROW = -960.0
TRUNK_ROW = 1560.0

#: (township, k-th station there) -> floor area below the 300 m² norm.
SMALL_STATIONS = {("东城街道", 2): 220, ("南山街道", 1): 260}

BAND_NAMES = [
    "0岁", "1到4岁", "5到9岁", "10到14岁", "15到19岁", "20到24岁", "25到29岁", "30到34岁",
    "35到39岁", "40到44岁", "45到49岁", "50到54岁", "55到59岁", "60到64岁", "65到69岁",
    "70到74岁", "75到79岁", "80到84岁", "85岁以上",
]
#: Shares of the 13 bands under 60 (both sexes), shaped like an urban 2020 county table.
_YOUNG_TEMPLATE = np.array(
    [4.2, 24.0, 29.4, 24.9, 23.6, 40.6, 51.2, 62.5, 49.2, 42.1, 49.1, 49.5, 45.5]
)
_MALE_SHARE = np.array([0.52] * 13 + [0.49, 0.48, 0.47, 0.45, 0.43, 0.40])


# --------------------------------------------------------------------------- helpers
def river_y(x: np.ndarray | float) -> np.ndarray | float:
    """Real y (m, local frame) of the river centre line at x (m)."""
    x = np.asarray(x, dtype=float)
    return (
        -700.0
        + 220.0 * np.sin(2 * np.pi * (x + 3000.0) / 5200.0)
        + 90.0 * np.sin(2 * np.pi * (x + 3000.0) / 1900.0 + 1.0)
    )


def rail_y(x: np.ndarray | float) -> np.ndarray | float:
    """Real y (m) of the rail line at x (m)."""
    x = np.asarray(x, dtype=float)
    return 1500.0 + x * 500.0 / 6400.0 + 40.0 * np.sin(x / 1700.0)


def to_real(x: np.ndarray, yp: np.ndarray) -> np.ndarray:
    """Map river-following coordinates (x, y') to the local metric frame (x, y)."""
    x = np.asarray(x, dtype=float)
    return np.column_stack([x, np.asarray(yp, dtype=float) + river_y(x)])


def to_lonlat(xy: np.ndarray) -> np.ndarray:
    """Local metric frame (m) to WGS-84 lon/lat, rounded to 1e-7 degrees (~1 cm)."""
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    lon = LON0 + xy[:, 0] / M_PER_DEG_LON
    lat = LAT0 + xy[:, 1] / M_PER_DEG_LAT
    return np.round(np.column_stack([lon, lat]), 7)


def _alloc(total: int, weights: np.ndarray) -> np.ndarray:
    """Split an integer total by weights into integers that sum exactly (largest remainder)."""
    w = np.asarray(weights, dtype=float)
    raw = total * w / w.sum()
    out = np.floor(raw).astype(np.int64)
    rest = int(total - out.sum())
    order = np.argsort(-(raw - out), kind="stable")
    out[order[:rest]] += 1
    return out


def _blob_inside(x: float, y: float) -> bool:
    u, v = x / 3000.0, y / 2500.0
    r = math.hypot(u, v)
    t = math.atan2(v, u)
    return r < 1.02 + 0.10 * math.sin(3 * t + 0.7) + 0.06 * math.sin(5 * t + 2.0)


# --------------------------------------------------------------------------- grid
class _Grid:
    """The jittered street grid in river-following coordinates."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.nc = N_COLS
        self.nr = len(ROWS)
        self.jx = rng.normal(0.0, 22.0, size=(self.nc, self.nr))
        self.jy = rng.normal(0.0, 18.0, size=(self.nc, self.nr))
        for j, yp in enumerate(ROWS):
            if abs(yp) == 50.0:
                self.jy[:, j] = 0.0  # riverside roads follow the banks exactly
        for i in (PRIMARY_COL, *SECONDARY_COLS):
            self.jx[i, :] *= 0.15  # main roads are straighter
        self.river_row = ROWS.index(-50.0)  # cell row j between -50 and +50

    def node_xyp(self, i: int, j: int) -> tuple[float, float]:
        return COL0 + i * DX + self.jx[i, j], ROWS[j] + self.jy[i, j]

    def node_real(self, i: int, j: int) -> np.ndarray:
        x, yp = self.node_xyp(i, j)
        return to_real(np.array([x]), np.array([yp]))[0]

    def edge_real(self, a: tuple[int, int], b: tuple[int, int], *, n: int = 4,
                  bow_m: float = 0.0) -> np.ndarray:
        """Points of the edge a→b (densified in y' space, optional sideways bow)."""
        (xa, ya), (xb, yb) = self.node_xyp(*a), self.node_xyp(*b)
        t = np.linspace(0.0, 1.0, n + 1)
        x = xa + (xb - xa) * t
        yp = ya + (yb - ya) * t
        if bow_m:
            length = math.hypot(xb - xa, yb - ya)
            nx_, ny_ = -(yb - ya) / length, (xb - xa) / length
            s = np.sin(np.pi * t) * bow_m
            x = x + nx_ * s
            yp = yp + ny_ * s
        return to_real(x, yp)

    def cell_ring(self, i: int, j: int) -> np.ndarray:
        """Closed ring (counter-clockwise) of cell (i, j), densified."""
        corners = [(i, j), (i + 1, j), (i + 1, j + 1), (i, j + 1), (i, j)]
        parts = [self.edge_real(a, b)[:-1] for a, b in pairwise(corners)]
        ring = np.vstack(parts)
        return np.vstack([ring, ring[:1]])

    def cell_centre(self, i: int, j: int) -> np.ndarray:
        pts = np.array([self.node_real(a, b) for a, b in
                        [(i, j), (i + 1, j), (i + 1, j + 1), (i, j + 1)]])
        return pts.mean(axis=0)


def _trace_union(grid: _Grid, cells: set[tuple[int, int]]):
    """Union of grid cells as a shapely (Multi)Polygon, traced on the grid.

    Done by hand (boundary edges of a polyomino chained into rings) rather
    than with ``unary_union`` so that the committed demo geometry does not
    depend on the GEOS version that generates it.
    """
    from shapely.geometry import MultiPolygon, Polygon

    directed: dict[tuple, list[tuple]] = {}
    edges = set()
    for i, j in cells:
        c = [(i, j), (i + 1, j), (i + 1, j + 1), (i, j + 1)]
        for k in range(4):
            edges.add((c[k], c[(k + 1) % 4]))
    boundary = [e for e in edges if (e[1], e[0]) not in edges]
    for a, b in boundary:
        directed.setdefault(a, []).append(b)
    used: set[tuple] = set()
    rings = []
    for start in sorted(boundary):
        if start in used:
            continue
        ring_nodes = [start[0]]
        prev, cur = start
        used.add(start)
        while True:
            ring_nodes.append(cur)
            if cur == start[0]:
                break
            options = [n for n in directed[cur] if (cur, n) not in used]
            if len(options) > 1:  # pinch point: take the leftmost turn
                din = (cur[0] - prev[0], cur[1] - prev[1])

                def turn(n, din=din, cur=cur):
                    dout = (n[0] - cur[0], n[1] - cur[1])
                    return -(din[0] * dout[1] - din[1] * dout[0])

                options.sort(key=turn)
            nxt = options[0]
            used.add((cur, nxt))
            prev, cur = cur, nxt
        pts = np.vstack([grid.edge_real(a, b)[:-1] for a, b in pairwise(ring_nodes)])
        pts = np.vstack([pts, pts[:1]])
        rings.append(to_lonlat(pts))
    shells, holes = [], []
    for r in rings:
        area = 0.5 * np.sum(r[:-1, 0] * r[1:, 1] - r[1:, 0] * r[:-1, 1])
        (shells if area > 0 else holes).append(r)
    polys = []
    for s in shells:
        sp_ = Polygon(s)
        inner = [h for h in holes if sp_.contains(Polygon(h).representative_point())]
        polys.append(Polygon(s, inner))
    return polys[0] if len(polys) == 1 else MultiPolygon(polys)


def _shrunk(ring_xy: np.ndarray, factor: float) -> np.ndarray:
    c = ring_xy[:-1].mean(axis=0)
    return c + (ring_xy - c) * factor


def _side_point(ring_xy: np.ndarray, side: int, *, inset_m: float = 0.0) -> np.ndarray:
    """Midpoint of side ``side`` (0-3) of a cell ring, moved ``inset_m`` towards its centre."""
    n_side = (len(ring_xy) - 1) // 4
    p = ring_xy[side * n_side + n_side // 2]
    if not inset_m:
        return p
    centre = ring_xy[:-1].mean(axis=0)
    return p + (centre - p) / np.linalg.norm(centre - p) * inset_m


# --------------------------------------------------------------------------- generation
def generate_demo(*, seed: int = 0) -> dict[str, pd.DataFrame]:
    """Generate the demo district 示范区 (Demo District).

    Parameters
    ----------
    seed
        Seed of the random generator; the same seed gives the same district.

    Returns
    -------
    dict
        ``roads``, ``rail``, ``water``, ``district``, ``townships``,
        ``communities``, ``residential``, ``parks``, ``gates``, ``candidates``
        (GeoDataFrames in EPSG:4326, WGS-84), ``facilities`` (the register
        as a DataFrame with Chinese headers and GCJ-02 ``经度``/``纬度``),
        ``census_2010`` and ``census_2020`` (DataFrames, one row per
        township), ``buildings`` (footprints: id, function, floors,
        height_m; EPSG:4326) and ``grid`` (the 100 m population grid:
        ``values`` of shape (4, rows, cols) for `GRID_BANDS`, ``transform``,
        ``crs``, ``nodata``).

    Examples
    --------
    >>> from planner.demo import generate_demo
    >>> demo = generate_demo(seed=0)
    >>> len(demo["townships"])
    3
    """
    # The phases draw from one generator in a fixed order: keep it.
    rng = np.random.default_rng(seed)
    grid = _Grid(rng)
    lay = _Layout(grid, _land_cells(grid, rng))
    roads, iso_cell = _roads(lay, rng)
    district, townships = _boundaries(lay)
    comms = _communities(lay, rng)
    residential = _residential(lay, comms, rng)
    parks = _parks(lay, comms.names_pool)
    gates = _gates(lay, comms, rng)
    facilities = _facilities(grid, lay.cells, lay.res_cells, lay.res_polys, comms.comm_of,
                             comms.records, comms.rows, rng)
    used_cells = set(facilities.pop("_cell"))
    candidates = _candidates(lay, used_cells, iso_cell, rng)
    census_2020 = _census_2020(comms.frame)
    census_2010 = _census_2010(census_2020, rng)
    water = _water()
    # buildings and the grid draw from their own generator: the phases above are unchanged
    buildings, residents = _buildings(lay, comms, seed=seed)
    return {
        "roads": roads, "rail": _rail(), "water": water, "district": district,
        "townships": townships, "communities": comms.frame, "residential": residential,
        "parks": parks, "gates": gates, "candidates": candidates,
        "facilities": facilities, "census_2010": census_2010, "census_2020": census_2020,
        "buildings": buildings, "grid": _population_grid(buildings, residents, water, district),
    }


#: Compound polygons are their grid cell shrunk about its centre by this factor.
_RES_SHRINK = 0.84
#: Communities per township.
_N_COMMUNITIES = {"东城街道": 17, "西河街道": 16, "南山街道": 13}

Cell = tuple[int, int]


@dataclass
class _Layout:
    """The street grid and its land cells, shared by the generation phases.

    ``cells`` maps a cell (i, j) in the district to its ``use``, ``town``,
    ``centre`` (local metric frame) and ``yp`` (y' of its middle).
    """

    grid: _Grid
    cells: dict[Cell, dict]
    res_cells: list[Cell] = field(init=False)
    park_cells: list[Cell] = field(init=False)
    #: Residential cell -> compound ring (local metric frame).
    res_polys: dict[Cell, np.ndarray] = field(init=False)

    def __post_init__(self) -> None:
        self.res_cells = self.cells_where(lambda c: c["use"] == "residential")
        self.park_cells = self.cells_where(lambda c: c["use"] == "park")
        self.res_polys = {c: _shrunk(self.grid.cell_ring(*c), _RES_SHRINK)
                          for c in self.res_cells}

    @property
    def res_ids(self) -> dict[Cell, str]:
        """Residential cell -> compound id."""
        return {c: f"R{k + 1:03d}" for k, c in enumerate(self.res_cells)}

    def cells_where(self, pred) -> list[Cell]:
        """Cells whose record satisfies ``pred``, sorted."""
        return [c for c in sorted(self.cells) if pred(self.cells[c])]


@dataclass
class _Communities:
    """The communities: their cells, records and layer."""

    #: One per community: ``cid`` (1-based), ``town`` and ``cells``.
    rows: list[dict]
    #: Cell -> cid.
    comm_of: dict[Cell, int]
    #: One per community: the attribute columns of the layer.
    records: list[dict]
    frame: pd.DataFrame
    names_pool: list[str]

    @property
    def cid_to_id(self) -> dict[int, str]:
        return {row["cid"]: rec["id"] for row, rec in zip(self.rows, self.records, strict=True)}


# ---- cells: which are in the district, what land use, which township
def _land_cells(grid: _Grid, rng: np.random.Generator) -> dict[Cell, dict]:
    cells: dict[Cell, dict] = {}
    for i in range(N_COLS - 1):
        for j in range(grid.nr - 1):
            cx, cy = grid.cell_centre(i, j)
            if not _blob_inside(cx, cy):
                continue
            yp = 0.5 * (ROWS[j] + ROWS[j + 1])
            if j == grid.river_row:
                use, town = "river", "南山街道"
            else:
                use, town = _land_use(grid, i, j, yp, rng), _township_of(i, yp)
            cells[(i, j)] = {"use": use, "town": town, "centre": (cx, cy), "yp": yp}
    return cells


def _land_use(grid: _Grid, i: int, j: int, yp: float, rng: np.random.Generator) -> str:
    from shapely.geometry import LineString, Polygon

    ring = grid.cell_ring(i, j)
    xs = np.linspace(ring[:, 0].min() - 50, ring[:, 0].max() + 50, 30)
    rail = LineString(np.column_stack([xs, rail_y(xs)]))
    if Polygon(ring).intersects(rail):
        return "rail"
    u = rng.random()
    if yp < 0:
        return ("residential" if u < 0.55 else "vacant" if u < 0.80
                else "park" if u < 0.85 else "other")
    return ("residential" if u < 0.72 else "vacant" if u < 0.78
            else "park" if u < 0.84 else "other")


def _township_of(i: int, yp: float) -> str:
    if yp < 0:
        return "南山街道"
    split = 12 if yp < 1300 else 14
    return "西河街道" if i < split else "东城街道"


# ---- roads
def _roads(lay: _Layout, rng: np.random.Generator):
    """The ``roads`` layer, and the vacant cell holding the disconnected cluster."""
    grid = lay.grid
    edges = _street_edges(lay.cells)
    _classify_streets(grid, edges, rng)
    edges = _keep_underpasses(edges)
    edges = _drop_redundant_lanes(edges, rng)
    _set_one_way(edges, rng)
    extra = _compound_footways(lay, rng) + _park_paths(lay, rng)
    iso_cell, cluster = _isolated_cluster(lay)
    extra += cluster
    for e in extra:
        e.update(bridge="F", tunnel="F", layer=0, oneway="B")
    _near_misses(edges, rng)
    return _roads_frame(edges + extra + _motorway(grid, edges)), iso_cell


def _street_edges(cells: dict[Cell, dict]) -> list[dict]:
    """Grid edges (``a``, ``b`` nodes, ``kind`` h/v/bridge) along the district's cells."""
    node_cells: dict[Cell, int] = {}
    for i, j in cells:
        for n in [(i, j), (i + 1, j), (i, j + 1), (i + 1, j + 1)]:
            node_cells[n] = node_cells.get(n, 0) + 1
    edges: list[dict] = []
    j_m150, j_p150 = ROWS.index(-160.0), ROWS.index(160.0)
    for (i, j) in sorted(node_cells):
        if (i + 1, j) in node_cells and _has_horizontal_street(cells, i, j):
            edges.append({"a": (i, j), "b": (i + 1, j), "kind": "h"})
        if (i, j + 1) in node_cells and _has_vertical_street(cells, i, j):
            edges.append({"a": (i, j), "b": (i, j + 1), "kind": "v"})
    for i in BRIDGE_COLS:
        if (i, j_m150) in node_cells and (i, j_p150) in node_cells:
            edges.append({"a": (i, j_m150), "b": (i, j_p150), "kind": "bridge"})
    return edges


def _has_horizontal_street(cells: dict[Cell, dict], i: int, j: int) -> bool:
    """Edge (i,j)-(i+1,j): needs an adjacent land cell (or is a riverside road)."""
    adj = [cells.get((i, j - 1)), cells.get((i, j))]
    if any(c is not None and c["use"] != "river" for c in adj) or abs(ROWS[j]) == 50.0:
        return any(c is not None for c in adj)
    return False


def _has_vertical_street(cells: dict[Cell, dict], i: int, j: int) -> bool:
    """Edge (i,j)-(i,j+1): needs an adjacent cell; the river is crossed only by bridges."""
    adj = [cells.get((i - 1, j)), cells.get((i, j))]
    if not any(c is not None for c in adj):
        return False
    if j == ROWS.index(-50.0):
        return False  # crossing the river: only the bridges
    # replaced by the bridge line
    return not (i in BRIDGE_COLS and j in (ROWS.index(-160.0), ROWS.index(50.0)))


def _edge_xy(grid: _Grid, e: dict, bow: float = 0.0) -> np.ndarray:
    if e["kind"] == "bridge":
        return np.vstack([grid.node_real(*e["a"]), grid.node_real(*e["b"])])
    return grid.edge_real(e["a"], e["b"], bow_m=bow)


def _street_class(kind: str, col: int, yp: float, rng: np.random.Generator) -> tuple[str, str]:
    """(fclass, name) of a street edge of ``kind`` starting in column ``col``, row ``yp``."""
    if kind in ("v", "bridge") and col == PRIMARY_COL:
        return "primary", "中州路"
    if kind in ("v", "bridge") and col in SECONDARY_COLS:
        return "secondary", "建设路" if col == 6 else "九都路"
    if kind == "bridge" and col == FOOTBRIDGE_COL:
        return "footway", "彩虹人行桥"
    if kind == "h" and yp == PRIMARY_ROW:
        return "primary", "解放路"
    if kind == "h" and yp == SECONDARY_ROW:
        return "secondary", "南环路"
    if kind == "h" and yp == TRUNK_ROW:
        return "trunk", "洛阳大道"
    if kind == "h" and abs(yp) == 50.0:
        return "residential", "滨河北路" if yp > 0 else "滨河南路"
    return ("residential" if rng.random() < 0.75 else "service"), ""


def _classify_streets(grid: _Grid, edges: list[dict], rng: np.random.Generator) -> None:
    """Give every edge its Geofabrik columns and (bowed, for lanes) geometry ``xy``."""
    for e in edges:
        (ia, ja) = e["a"]
        cls, name = _street_class(e["kind"], ia, ROWS[ja], rng)
        e.update(fclass=cls, name=name, bridge="T" if e["kind"] == "bridge" else "F",
                 tunnel="F", layer=1 if e["kind"] == "bridge" else 0)
        e["xy"] = _edge_xy(grid, e, bow=0.0 if cls != "residential" or name
                           else rng.normal(0, 7.0))


def _keep_underpasses(edges: list[dict]) -> list[dict]:
    """Rail crossings: keep two underpasses, drop every other edge crossing the rail."""
    from shapely.geometry import LineString

    rail_line = LineString(np.column_stack([np.linspace(-3500, 3500, 60),
                                            rail_y(np.linspace(-3500, 3500, 60))]))
    kept = []
    for e in edges:
        if LineString(e["xy"]).intersects(rail_line):
            if e["kind"] == "v" and e["a"][0] in UNDERPASS_COLS:
                e.update(tunnel="T", layer=-1)
                if e["fclass"] == "residential":
                    e["name"] = "铁路下穿通道"
            else:
                continue
        kept.append(e)
    return kept


def _drop_redundant_lanes(edges: list[dict], rng: np.random.Generator) -> list[dict]:
    """Dead ends and irregularity: drop lanes that do not disconnect the network."""
    import networkx as nx

    g = nx.Graph()
    for k, e in enumerate(edges):
        g.add_edge(e["a"], e["b"], k=k)
    main_component = max(nx.connected_components(g), key=len)
    drop = set()
    order = rng.permutation(len(edges))
    for k in order:
        e = edges[k]
        if e["fclass"] not in ("residential", "service") or e["name"] or e["tunnel"] == "T":
            continue
        if len(drop) >= int(0.14 * len(edges)):
            break
        if rng.random() < 0.5:
            continue
        g.remove_edge(e["a"], e["b"])
        if e["a"] in main_component and nx.has_path(g, e["a"], e["b"]):
            drop.add(int(k))
        else:
            g.add_edge(e["a"], e["b"], k=k)
    return [e for k, e in enumerate(edges) if k not in drop]


def _set_one_way(edges: list[dict], rng: np.random.Generator) -> None:
    for e in edges:
        if e["fclass"] in ("residential", "service", "secondary") and not e["tunnel"] == "T":
            u = rng.random()
            e["oneway"] = "F" if u < 0.08 else "T" if u < 0.11 else "B"
        elif e["fclass"] == "trunk":
            e["oneway"] = "F"
        else:
            e["oneway"] = "B"


def _compound_footways(lay: _Layout, rng: np.random.Generator) -> list[dict]:
    """Diagonal footways through some residential compounds."""
    out = []
    for c in lay.res_cells:
        if rng.random() < 0.22:
            i, j = c
            a, b = ((i, j), (i + 1, j + 1)) if rng.random() < 0.5 else ((i + 1, j), (i, j + 1))
            pa, pb = lay.grid.node_real(*a), lay.grid.node_real(*b)
            mid = (pa + pb) / 2 + rng.normal(0, 15, 2)
            out.append({"xy": np.vstack([pa, mid, pb]), "fclass": "footway", "name": ""})
    return out


def _park_paths(lay: _Layout, rng: np.random.Generator) -> list[dict]:
    """Paths from each park corner to its centre; three of them steps."""
    out = []
    n_steps = 0
    for c in lay.park_cells:
        i, j = c
        centre = np.asarray(lay.cells[c]["centre"])
        corners = [(i, j), (i + 1, j), (i + 1, j + 1), (i, j + 1)]
        for k, n in enumerate(corners):
            p = lay.grid.node_real(*n)
            fcl = "path" if k % 2 else "footway"
            if k == 0 and n_steps < 3 and lay.cells[c]["yp"] > 0:
                fcl = "steps"
                n_steps += 1
            out.append({"xy": np.vstack([p, (p + centre) / 2 + rng.normal(0, 6, 2), centre]),
                        "fclass": fcl, "name": "公园步道" if fcl != "steps" else ""})
    return out


def _isolated_cluster(lay: _Layout) -> tuple[Cell, list[dict]]:
    """Three service lanes in a vacant cell, connected to nothing else."""
    vacant = lay.cells_where(lambda c: c["use"] == "vacant" and c["yp"] > 0)
    iso_cell = vacant[len(vacant) // 2]
    cc = np.asarray(lay.cells[iso_cell]["centre"])
    lanes = [{"xy": np.vstack([cc, cc + np.array(dxy)]), "fclass": "service", "name": "",
              "isolated": True}
             for dxy in ([28.0, 0.0], [-14.0, 24.0], [-14.0, -24.0])]
    return iso_cell, lanes


def _near_misses(edges: list[dict], rng: np.random.Generator) -> None:
    """Four lane ends stop 0.4-0.8 m short of their node."""
    lanes = [k for k, e in enumerate(edges) if e["fclass"] in ("residential", "service")
             and not e["name"] and e["tunnel"] == "F"]
    for k in sorted(rng.choice(lanes, size=4, replace=False)):
        xy = edges[k]["xy"].copy()
        d = xy[-2] - xy[-1]
        gap = rng.uniform(0.4, 0.8)
        xy[-1] = xy[-1] + d / np.linalg.norm(d) * gap
        edges[k]["xy"] = xy
        edges[k]["near_miss_m"] = gap


def _motorway(grid: _Grid, edges: list[dict]) -> list[dict]:
    """The motorway south of the district and its link to the primary road."""
    prim_nodes = [e["a"] for e in edges if e["fclass"] == "primary" and e["a"][0] == PRIMARY_COL]
    bottom = min(prim_nodes, key=lambda n: n[1])
    pb = grid.node_real(*bottom)
    all_y = np.concatenate([e["xy"][:, 1] for e in edges])
    ym = all_y.min() - 180.0
    mx = np.linspace(-3400.0, 3400.0, 35)
    mx = np.sort(np.append(mx, pb[0] + 160.0))
    my = ym + 40.0 * np.sin(mx / 1500.0)
    k_join = int(np.where(mx == pb[0] + 160.0)[0][0])
    motorway = {"xy": np.column_stack([mx, my]), "fclass": "motorway", "name": "连霍高速",
                "oneway": "B", "bridge": "F", "tunnel": "F", "layer": 0}
    link = {"xy": np.vstack([pb, pb + np.array([40.0, -90.0]),
                             np.array([mx[k_join], my[k_join]])]),
            "fclass": "motorway_link", "name": "", "oneway": "F", "bridge": "F",
            "tunnel": "F", "layer": 0}
    return [motorway, link]


def _roads_frame(all_roads: list[dict]):
    import geopandas as gpd
    from shapely.geometry import LineString

    return gpd.GeoDataFrame(
        {
            "osm_id": [str(900000000 + k) for k in range(len(all_roads))],
            "fclass": [e["fclass"] for e in all_roads],
            "name": [e["name"] or None for e in all_roads],
            "oneway": [e["oneway"] for e in all_roads],
            "bridge": [e["bridge"] for e in all_roads],
            "tunnel": [e["tunnel"] for e in all_roads],
            "layer": np.array([e["layer"] for e in all_roads], dtype=np.int64),
        },
        geometry=[LineString(to_lonlat(e["xy"])) for e in all_roads],
        crs="EPSG:4326",
    )


# ---- rail, river, boundaries
def _rail():
    import geopandas as gpd
    from shapely.geometry import LineString

    return gpd.GeoDataFrame(
        {"fclass": ["rail"], "name": ["焦柳铁路"]},
        geometry=[LineString(to_lonlat(np.column_stack(
            [np.linspace(-3300, 3300, 40), rail_y(np.linspace(-3300, 3300, 40))])))],
        crs="EPSG:4326",
    )


def _water():
    import geopandas as gpd
    from shapely.geometry import Polygon

    wx = np.linspace(-3400.0, 3400.0, 137)
    w_north = to_real(wx, np.full_like(wx, RIVER_HALF_WIDTH_M))
    w_south = to_real(wx[::-1], np.full_like(wx, -RIVER_HALF_WIDTH_M))
    ring = np.vstack([w_south, w_north, w_south[:1]])
    return gpd.GeoDataFrame({"fclass": ["river"], "name": ["涧河"]},
                            geometry=[Polygon(to_lonlat(ring))], crs="EPSG:4326")


def _boundaries(lay: _Layout):
    """The ``district`` and ``townships`` layers."""
    import geopandas as gpd

    grid, cells = lay.grid, lay.cells
    district = gpd.GeoDataFrame({"id": [str(DISTRICT_CODE)], "name": [DISTRICT]},
                                geometry=[_trace_union(grid, set(cells))], crs="EPSG:4326")
    townships = gpd.GeoDataFrame(
        {"id": [str(TOWNSHIP_CODES[t]) for t in TOWNSHIPS], "name": list(TOWNSHIPS),
         "district": [DISTRICT] * 3},
        geometry=[_trace_union(grid, {c for c in cells if cells[c]["town"] == t})
                  for t in TOWNSHIPS],
        crs="EPSG:4326",
    )
    return district, townships


# ---- communities: contiguous groups of land cells per township
def _communities(lay: _Layout, rng: np.random.Generator) -> _Communities:
    import geopandas as gpd

    rows: list[dict] = []
    comm_of: dict[Cell, int] = {}
    for t in TOWNSHIPS:
        for group in _township_groups(lay, t, rng):
            cid = len(rows) + 1
            for c in group:
                comm_of[c] = cid
            rows.append({"cid": cid, "town": t, "cells": group})
    names_pool = _community_names()
    records = [_community_record(lay, k, row, names_pool, rng) for k, row in enumerate(rows)]
    frame = gpd.GeoDataFrame(
        records,
        geometry=[_trace_union(lay.grid, row["cells"]) for row in rows],
        crs="EPSG:4326",
    )
    return _Communities(rows, comm_of, records, frame, names_pool)


def _township_groups(lay: _Layout, town: str, rng: np.random.Generator) -> list[set[Cell]]:
    """The township's land cells in contiguous groups, one per community, in order."""
    cells = lay.cells
    tc = lay.cells_where(lambda c: c["town"] == town and c["use"] != "river")
    pts = np.array([c for c in tc], dtype=float) * np.array([DX, 200.0])
    w = np.array([1.0 if cells[c]["use"] == "residential" else 0.3 for c in tc])
    lab = _lloyd_labels(pts, w, _N_COMMUNITIES[town], rng)
    groups: dict[int, set] = {}
    for c, s in zip(tc, lab, strict=True):
        groups.setdefault(int(s), set()).add(c)
    # keep each group's largest 4-connected component; give the rest to a neighbour
    for _ in range(3):
        for s in sorted(groups):
            comps = _components(groups[s])
            for comp in comps[1:]:
                groups[s] -= comp
                nb = _neighbour_group(comp, groups, s)
                groups[nb] |= comp
    return [groups[s] for s in sorted(groups, key=lambda s: min(groups[s])) if groups[s]]


def _lloyd_labels(pts: np.ndarray, w: np.ndarray, k: int,
                  rng: np.random.Generator) -> np.ndarray:
    """Weighted Lloyd iterations (k-means by hand, numpy only): the cluster of each point."""
    seeds = pts[rng.choice(len(pts), size=k, replace=False)]
    for _ in range(25):
        lab = np.argmin(((pts[:, None, :] - seeds[None]) ** 2).sum(-1), axis=1)
        for s in range(k):
            m = lab == s
            if m.any():
                seeds[s] = (pts[m] * w[m, None]).sum(0) / w[m].sum()
    return np.argmin(((pts[:, None, :] - seeds[None]) ** 2).sum(-1), axis=1)


def _community_record(lay: _Layout, k: int, row: dict, names_pool: list[str],
                      rng: np.random.Generator) -> dict:
    """Attributes of the k-th community; population from its residential land."""
    from shapely.geometry import Polygon

    t = row["town"]
    res_area = sum(abs(Polygon(lay.res_polys[c]).area) for c in row["cells"]
                   if c in lay.res_polys)
    dens = rng.uniform(0.016, 0.030)  # residents per m² of residential land
    pop = int(np.clip(round(res_area * dens + rng.normal(0, 300)), 2000, 12000))
    pop = max(pop, 2000 + int(rng.integers(50, 900)))
    share60 = rng.uniform(0.23, 0.30) if t == "南山街道" else rng.uniform(0.12, 0.21)
    p60 = int(round(pop * share60))
    p65 = int(round(p60 * rng.uniform(0.62, 0.72)))
    p80 = int(round(p60 * rng.uniform(0.13, 0.20)))
    hh = int(round(pop / rng.uniform(2.4, 2.9)))
    return {
        "id": f"{TOWNSHIP_CODES[t]}{k + 1:03d}",
        "name": names_pool[k] + "社区",
        "population": pop, "pop_60plus": p60, "pop_65plus": p65, "pop_80plus": p80,
        "households": hh, "township": t, "district": DISTRICT,
    }


# ---- residential compounds, parks, gates
def _residential(lay: _Layout, comms: _Communities, rng: np.random.Generator):
    import geopandas as gpd
    from shapely.geometry import Polygon

    res_cells, res_ids, cid_to_id = lay.res_cells, lay.res_ids, comms.cid_to_id
    return gpd.GeoDataFrame(
        {"id": [res_ids[c] for c in res_cells],
         "name": [_compound_name(k, rng) for k in range(len(res_cells))],
         "landuse": "residential",
         "community": [cid_to_id[comms.comm_of[c]] for c in res_cells]},
        geometry=[Polygon(to_lonlat(lay.res_polys[c])) for c in res_cells],
        crs="EPSG:4326",
    )


def _parks(lay: _Layout, names_pool: list[str]):
    import geopandas as gpd
    from shapely.geometry import Polygon

    park_cells = lay.park_cells
    return gpd.GeoDataFrame(
        {"id": [f"P{k + 1:02d}" for k in range(len(park_cells))],
         "name": [f"{names_pool[-1 - k]}公园" for k in range(len(park_cells))],
         "leisure": "park"},
        geometry=[Polygon(to_lonlat(_shrunk(lay.grid.cell_ring(*c), 0.9))) for c in park_cells],
        crs="EPSG:4326",
    )


def _gates(lay: _Layout, comms: _Communities, rng: np.random.Generator):
    """Gates of gated compounds: midpoints of sides of the compound polygon."""
    import geopandas as gpd
    from shapely.geometry import Point

    res_cells, res_ids, cid_to_id = lay.res_cells, lay.res_ids, comms.cid_to_id
    gate_rows, gate_geoms = [], []
    gated = [res_cells[k] for k in sorted(rng.choice(len(res_cells), size=18, replace=False))]
    for c in gated:
        for s in sorted(rng.choice(4, size=int(rng.integers(1, 3)), replace=False)):
            p = _side_point(lay.res_polys[c], s)
            gate_rows.append({"id": f"G{len(gate_rows) + 1:03d}", "compound": res_ids[c],
                              "community": cid_to_id[comms.comm_of[c]]})
            gate_geoms.append(Point(to_lonlat(p)[0]))
    return gpd.GeoDataFrame(gate_rows, geometry=gate_geoms, crs="EPSG:4326")


# ---- candidate sites
def _candidates(lay: _Layout, used_cells: set[Cell], iso_cell: Cell,
                rng: np.random.Generator):
    """Candidate sites: in residential compounds without a facility, and on vacant land."""
    import geopandas as gpd
    from shapely.geometry import Point

    rows, points = _compound_candidates(lay, used_cells, rng)
    vac_rows, vac_points = _vacant_candidates(lay, iso_cell, rng)
    rows += vac_rows
    for k, r in enumerate(rows):
        r["id"] = f"C{k + 1:03d}"
        r["name"] = f"备选地块{k + 1:03d}" + ("(空地)" if r["kind"] == "vacant" else "")
    return gpd.GeoDataFrame(
        [{k: r[k] for k in ("id", "name", "tier", "capacity", "land_area_m2")} for r in rows],
        geometry=[Point(to_lonlat(p)[0]) for p in points + vac_points], crs="EPSG:4326",
    )


def _compound_candidates(lay: _Layout, used_cells: set[Cell],
                         rng: np.random.Generator) -> tuple[list[dict], list[np.ndarray]]:
    rows, points = [], []
    free_res = [c for c in lay.res_cells if c not in used_cells]
    for c in sorted(rng.choice(len(free_res), size=64, replace=False)):
        p = _side_point(lay.res_polys[free_res[c]], int(rng.integers(0, 4)), inset_m=15.0)
        land = float(rng.choice([300, 400, 500, 600, 800, 1000, 1200, 1500, 2000, 2500]))
        tier = ("township_centre" if land >= 2000 else
                "community_station" if rng.random() < 0.7 else None)
        cap = int(round(land / 25)) if tier == "township_centre" else int(rng.integers(20, 45))
        rows.append({"tier": tier, "capacity": cap, "land_area_m2": land, "kind": "residential"})
        points.append(p)
    return rows, points


def _vacant_candidates(lay: _Layout, iso_cell: Cell,
                       rng: np.random.Generator) -> tuple[list[dict], list[np.ndarray]]:
    rows, points = [], []
    vac = [c for c in sorted(lay.cells) if lay.cells[c]["use"] == "vacant" and c != iso_cell]
    for c in sorted(rng.choice(len(vac), size=8, replace=False)):
        centre = np.asarray(lay.cells[vac[c]]["centre"])
        land = float(rng.choice([3000, 4000, 5000, 6000, 8000]))
        rows.append({"tier": "township_centre" if land >= 4000 else None,
                     "capacity": int(land / 40), "land_area_m2": land, "kind": "vacant"})
        points.append(centre + rng.normal(0, 20, 2))
    return rows, points


def _components(cells: set) -> list[set]:
    """4-connected components of a set of grid cells, largest first."""
    left, comps = set(cells), []
    while left:
        start = min(left)
        comp, stack = {start}, [start]
        left.discard(start)
        while stack:
            i, j = stack.pop()
            for n in ((i + 1, j), (i - 1, j), (i, j + 1), (i, j - 1)):
                if n in left:
                    left.discard(n)
                    comp.add(n)
                    stack.append(n)
        comps.append(comp)
    comps.sort(key=lambda c: (-len(c), min(c)))
    return comps


def _neighbour_group(comp: set, groups: dict, own: int) -> int:
    counts: dict[int, int] = {}
    for i, j in comp:
        for n in ((i + 1, j), (i - 1, j), (i, j + 1), (i, j - 1)):
            for s, g in groups.items():
                if s != own and n in g:
                    counts[s] = counts.get(s, 0) + 1
    if not counts:
        return own
    return max(sorted(counts), key=lambda s: counts[s])


def _community_names() -> list[str]:
    return [
        "朝阳", "新华", "光明", "和平", "幸福", "建设", "文化", "团结", "胜利", "红旗",
        "东风", "友谊", "长春", "金谷", "兴隆", "安乐", "春晖", "丽景", "翠微", "锦华",
        "清河", "桃源", "柳湾", "杏林", "花园", "凤鸣", "龙泉", "望湖", "瑞丰", "康宁",
        "永安", "福寿", "泰和", "广济", "迎宾", "民主", "青年", "工农", "南苑", "北辰",
        "东岳", "西苑", "中和", "滨河", "古城", "新村", "华山", "嵩岳", "洛浦", "伊川",
        "牡丹", "紫荆", "玉泉", "石桥",
    ]


def _compound_name(k: int, rng: np.random.Generator) -> str:
    first = ["锦绣", "阳光", "金色", "翠湖", "名仕", "盛世", "怡景", "书香", "紫薇", "滨江",
             "恒大", "水岸", "华府", "万象", "东方", "天和", "铁路", "纺织厂", "机械厂", "电业局"]
    last = ["小区", "家园", "花园", "苑", "公寓", "新村", "家属院"]
    return f"{first[k % len(first)]}{last[int(rng.integers(0, len(last)))]}{k // len(first) + 1}期"


def _facilities(grid, cells, res_cells, res_polys, comm_of, comm_records, comm_rows, rng):
    """The facility register (Chinese headers, GCJ-02 coordinates)."""
    from planner.coords import wgs84_to_gcj02

    by_cid = {row["cid"]: rec for row, rec in zip(comm_rows, comm_records, strict=True)}

    def cells_of(town, *, north=None):
        out = [c for c in res_cells if cells[c]["town"] == town]
        if north is not None:
            out = [c for c in out if (rail_y(cells[c]["centre"][0]) < cells[c]["centre"][1])
                   == north]
        return out

    rows = []

    def add(name, typ, beds, nursing, floor, land, public, workers, cell):
        cid = comm_of[cell]
        rows.append({"名称": name, "类型": typ, "床位数": beds, "护理型床位数": nursing,
                     "建筑面积": floor, "用地面积": land, "是否公办": "是" if public else "否",
                     "社工人数": workers, "所属街道": by_cid[cid]["township"],
                     "所属社区": by_cid[cid]["name"],
                     "_xy": _side_point(res_polys[cell], 0, inset_m=12.0), "_cell": cell})

    east, west, south = cells_of("东城街道", north=False), cells_of("西河街道", north=False), \
        cells_of("南山街道")
    add("示范区社会福利院", "养老院", 200, 150, 9000, 8000, True, 6, east[len(east) // 3])
    add("西河颐养院", "养老院", 260, 160, 14000, 19000, False, 4, west[len(west) // 2])
    add("东城街道综合养老服务中心", "综合养老服务中心", 60, 45, 2200, 2600, True, 3,
        east[len(east) // 2])
    add("西河街道综合养老服务中心", "综合养老服务中心", 40, 30, 1280, 1500, True, 2,
        west[len(west) // 3])
    # community stations: 7 in 东城, 6 in 西河, 3 in 南山 (none north of the rail)
    plan = [("东城街道", east, 7), ("西河街道", west, 6), ("南山街道", south, 3)]
    n = 0
    for town, pool, k in plan:
        by_comm: dict[int, list] = {}
        for c in pool:
            by_comm.setdefault(comm_of[c], []).append(c)
        comm_ids = sorted(by_comm, key=lambda s: -by_cid[s]["population"])
        picks = comm_ids[:k] if town != "南山街道" else comm_ids[: 2 * k : 2]
        for m, s in enumerate(picks):
            cell = by_comm[s][len(by_comm[s]) // 2]
            if any(r["_cell"] == cell for r in rows):
                cell = by_comm[s][0]
            n += 1
            typ = "日间照料中心" if n % 3 == 0 else "社区养老服务站"
            floor = int(rng.integers(32, 70)) * 10
            if (town, m) in SMALL_STATIONS:
                floor = SMALL_STATIONS[(town, m)]
            beds = int(rng.integers(10, 21))
            label = "日间照料中心" if typ == "日间照料中心" else "养老服务站"
            add(f"{by_cid[s]['name']}{label}", typ, beds, 0, floor, 0, True,
                int(rng.integers(0, 3)), cell)
    rural = [c for c in south if cells[c]["centre"][1] < -1600]
    add("南山街道李庄村互助幸福院", "互助幸福院", 8, 0, 160, 600, False, 0,
        rural[0] if rural else south[-1])
    lonlat = to_lonlat(np.array([r["_xy"] for r in rows]))
    gcj = np.round(np.column_stack(wgs84_to_gcj02(lonlat[:, 0], lonlat[:, 1])), 6)
    df = pd.DataFrame(rows).drop(columns=["_xy"])
    df.insert(0, "编号", [f"F{k + 1:02d}" for k in range(len(df))])
    df["经度"] = gcj[:, 0]
    df["纬度"] = gcj[:, 1]
    return df


def _bands(total: int, p60: int, p65: int, p80: int) -> np.ndarray:
    """Sex-by-age bands (19 bands x [male, female]) summing exactly to the totals."""
    young = _alloc(total - p60, _YOUNG_TEMPLATE)
    b65_79 = _alloc(p65 - p80, np.array([0.42, 0.33, 0.25]))
    b80 = _alloc(p80, np.array([0.55, 0.45]))
    both = np.concatenate([young, [p60 - p65], b65_79, b80])
    male = np.round(both * _MALE_SHARE).astype(np.int64)
    return np.column_stack([male, both - male])


def _census_table(rows: list[dict]) -> pd.DataFrame:
    cols = ["区划代码", "省", "市", "区县", "人口数_合计", "pop_60plus", "pop_65plus",
            "pop_80plus", "人口比重_65岁及以上", "有65岁及以上老年人口的户数", "家庭户数"]
    for b in BAND_NAMES:
        cols += [f"男_{b}", f"女_{b}"]
    return pd.DataFrame(rows)[cols]


def _census_row(town: str, bands: np.ndarray, households: int, hh65: int) -> dict:
    total = int(bands.sum())
    both = bands.sum(axis=1)
    p60, p65, p80 = int(both[13:].sum()), int(both[14:].sum()), int(both[17:].sum())
    row = {"区划代码": TOWNSHIP_CODES[town], "省": "河南省", "市": "示范市", "区县": town,
           "人口数_合计": total, "pop_60plus": p60, "pop_65plus": p65, "pop_80plus": p80,
           "人口比重_65岁及以上": round(100.0 * p65 / total, 2),
           "有65岁及以上老年人口的户数": hh65, "家庭户数": households}
    for k, b in enumerate(BAND_NAMES):
        row[f"男_{b}"] = int(bands[k, 0])
        row[f"女_{b}"] = int(bands[k, 1])
    return row


def _census_2020(communities) -> pd.DataFrame:
    rows = []
    for t in TOWNSHIPS:
        c = communities[communities["township"] == t]
        total, p60 = int(c["population"].sum()), int(c["pop_60plus"].sum())
        p65, p80 = int(c["pop_65plus"].sum()), int(c["pop_80plus"].sum())
        hh = int(c["households"].sum())
        rows.append(_census_row(t, _bands(total, p60, p65, p80), hh, int(round(hh * p65 / total
                                                                                * 1.7))))
    return _census_table(rows)


def _census_2010(c2020: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """A 2010 table consistent with 2020 through plausible cohort-change ratios."""
    # 5-year groups: 0-4, 5-9, ..., 80-84, 85+ (18 groups); bands 0 and 1-4 merge into 0-4
    ccr = np.array([1.03, 1.04, 1.10, 1.18, 1.06, 1.00, 0.99, 0.99, 0.99, 0.98, 0.97,
                    0.95, 0.92, 0.88, 0.80, 0.68])  # 2010 group g -> 2020 group g + 2
    rows = []
    for _, r in c2020.iterrows():
        b20 = np.array([[r[f"男_{b}"], r[f"女_{b}"]] for b in BAND_NAMES], dtype=float)
        g20 = np.vstack([b20[0] + b20[1], b20[2:]])  # 18 groups x sex
        g10 = np.zeros_like(g20)
        noise = rng.uniform(0.97, 1.03, size=16)
        for g in range(16):
            g10[g] = g20[g + 2] / (ccr[g] * noise[g])
        # 80-84 and 85+ in 2010 are mostly gone by 2020: fixed shares of the 75-79 group
        g10[16] = g10[15] * 0.55
        g10[17] = g10[15] * 0.30
        g10 = np.round(g10).astype(np.int64)
        bands = np.vstack([np.round(g10[0] * 0.19).astype(np.int64), g10[0] -
                           np.round(g10[0] * 0.19).astype(np.int64), g10[1:]])
        hh = int(round(r["家庭户数"] * bands.sum() / r["人口数_合计"] * 0.93))
        p65 = int(bands[14:].sum())
        rows.append(_census_row(r["区县"], bands, hh, int(round(hh * p65 / bands.sum() * 1.7))))
    return _census_table(rows)


# --------------------------------------------------------------------------- buildings, grid
#: The demo's population grid: 100 m cells in UTM 49N, one band per group (WorldPop-like
#: no-data value on cells that are mostly river and hold nobody).
GRID_CRS = "EPSG:32649"
GRID_CELL_M = 100.0
GRID_BANDS = ("population", "pop_60plus", "pop_65plus", "pop_80plus")
GRID_NODATA = -99999.0
#: Housing per township: (share, floors low, floors high, slab length low, high, depth) per
#: kind; 南山街道 is older and lower.
_HOUSING = {
    "南山街道": [(0.75, 2, 6, 30, 55, 11.0), (0.25, 6, 11, 40, 70, 12.0)],
    "default": [(0.30, 5, 7, 40, 70, 12.0), (0.40, 8, 18, 40, 70, 13.0),
                (0.30, 18, 33, 30, 55, 15.0)],
}
_OTHER_FUNCTIONS = ("商业", "办公", "教育")


def _housing_kind(town: str, rng: np.random.Generator) -> tuple:
    kinds = _HOUSING.get(town, _HOUSING["default"])
    u, acc = rng.random(), 0.0
    for k in kinds:
        acc += k[0]
        if u < acc:
            return k
    return kinds[-1]


def _slabs(poly, length: float, depth: float, rng: np.random.Generator,
           limit: int = 8) -> list[np.ndarray]:
    """East-west slab rectangles (local frame) inside ``poly``, rows spaced for daylight."""
    from shapely.geometry import Polygon

    minx, miny, maxx, maxy = poly.bounds
    out = []
    y = miny + rng.uniform(0.0, 10.0)
    while y + depth <= maxy and len(out) < limit:
        x = minx + rng.uniform(0.0, 15.0)
        while x + length <= maxx and len(out) < limit:
            rect = np.array([[x, y], [x + length, y], [x + length, y + depth], [x, y + depth],
                             [x, y]])
            if poly.contains(Polygon(rect)):
                out.append(rect)
            x += length + rng.uniform(10.0, 18.0)
        y += depth + rng.uniform(22.0, 32.0)
    return out


def _building_record(floors: int, rng: np.random.Generator) -> tuple[float, float]:
    """(floors column, height_m column) as a building data set gives them: floors only
    (60 %), height only (25 %, storeys of 3.0 m +- 0.6 m in total) or both."""
    u = rng.random()
    height = round(floors * 3.0 + rng.uniform(-0.6, 0.6), 1)
    if u < 0.60:
        return float(floors), np.nan
    if u < 0.85:
        return np.nan, height
    return float(floors), height


def _buildings(lay: _Layout, comms: _Communities, *, seed: int):
    """Building footprints (residential slabs in every compound, a few shops and offices)
    and each residential building's residents by group (consistent with its community).

    A community's residents are spread over its residential buildings by floor area
    (footprint in UTM 49N x floors), so the buildings hold exactly the community counts.
    """
    import geopandas as gpd
    from shapely.geometry import Polygon

    rng = np.random.default_rng([seed, 16])
    rows: list[dict] = []
    rings: list[np.ndarray] = []
    for c in lay.res_cells:
        poly = Polygon(lay.res_polys[c]).buffer(-6.0)
        _share, lo, hi, llo, lhi, depth = _housing_kind(lay.cells[c]["town"], rng)
        for rect in _slabs(poly, float(rng.uniform(llo, lhi)), depth, rng):
            floors = int(rng.integers(lo, hi + 1))
            fl, h = _building_record(floors, rng)
            rows.append({"function": "住宅", "floors": fl, "height_m": h, "_floors": floors,
                         "_cid": comms.comm_of[c]})
            rings.append(rect)
        if rng.random() < 0.15:  # a shop block at the compound's south edge
            for rect in _slabs(poly, 24.0, 10.0, rng, limit=1):
                rows.append({"function": "商业", "floors": 2.0, "height_m": np.nan,
                             "_floors": 2, "_cid": comms.comm_of[c]})
                rings.append(rect)
    for c in lay.cells_where(lambda r: r["use"] == "other"):
        poly = Polygon(_shrunk(lay.grid.cell_ring(*c), 0.8))
        for rect in _slabs(poly, 36.0, 20.0, rng, limit=2):
            rows.append({"function": str(rng.choice(_OTHER_FUNCTIONS)),
                         "floors": float(rng.integers(3, 12)), "height_m": np.nan,
                         "_floors": 0, "_cid": 0})
            rings.append(rect)
    frame = pd.DataFrame(rows)
    frame.insert(0, "id", [f"B{k + 1:05d}" for k in range(len(frame))])
    gdf = gpd.GeoDataFrame(frame, geometry=[Polygon(to_lonlat(r)) for r in rings],
                           crs="EPSG:4326")
    residents = _building_residents(gdf, comms)
    return gdf.drop(columns=["_floors", "_cid"]), residents


def _building_residents(gdf, comms: _Communities) -> np.ndarray:
    """Residents per building and group (len x 4, `GRID_BANDS` order): each community's
    counts spread over its residential buildings by floor area."""
    res = (gdf["function"] == "住宅").to_numpy()
    fa = gdf.to_crs(GRID_CRS).area.to_numpy() * gdf["_floors"].to_numpy() * res
    cid = gdf["_cid"].to_numpy()
    total = np.bincount(cid, weights=fa, minlength=len(comms.rows) + 1)
    out = np.zeros((len(gdf), len(GRID_BANDS)))
    for k, row in enumerate(comms.rows):
        rec = comms.records[k]
        if total[row["cid"]] <= 0:
            raise RuntimeError(f"community {rec['name']} has no residential building")
        sel = cid == row["cid"]
        out[sel] = np.outer(fa[sel] / total[row["cid"]], [rec[g] for g in GRID_BANDS])
    return out


def _population_grid(buildings, residents: np.ndarray, water, district) -> dict:
    """The 100 m grid: each building's residents spread over the cells under its footprint
    by the share of the footprint in each cell; no data on cells that are at least half
    river and hold nobody."""
    import shapely
    from rasterio.transform import from_origin

    utm = buildings.to_crs(GRID_CRS)
    minx, miny, maxx, maxy = district.to_crs(GRID_CRS).total_bounds
    x0 = math.floor(minx / GRID_CELL_M) * GRID_CELL_M - GRID_CELL_M
    y1 = math.ceil(maxy / GRID_CELL_M) * GRID_CELL_M + GRID_CELL_M
    ncol = int(math.ceil((maxx - x0) / GRID_CELL_M)) + 1
    nrow = int(math.ceil((y1 - miny) / GRID_CELL_M)) + 1
    values = np.zeros((len(GRID_BANDS), nrow, ncol))
    geoms = np.asarray(utm.geometry.values)
    bx0, by0, bx1, by1 = shapely.bounds(geoms).T
    bi, rr, cc = [], [], []
    for b in np.flatnonzero(residents[:, 0] > 0):
        cols = range(int((bx0[b] - x0) // GRID_CELL_M), int((bx1[b] - x0) // GRID_CELL_M) + 1)
        rws = range(int((y1 - by1[b]) // GRID_CELL_M), int((y1 - by0[b]) // GRID_CELL_M) + 1)
        for r in rws:
            for c in cols:
                bi.append(b)
                rr.append(r)
                cc.append(c)
    bi, rr, cc = np.array(bi), np.array(rr), np.array(cc)
    cells = shapely.box(x0 + cc * GRID_CELL_M, y1 - (rr + 1) * GRID_CELL_M,
                        x0 + (cc + 1) * GRID_CELL_M, y1 - rr * GRID_CELL_M)
    share = shapely.area(shapely.intersection(geoms[bi], cells)) / shapely.area(geoms[bi])
    for g in range(len(GRID_BANDS)):
        np.add.at(values[g], (rr, cc), residents[bi, g] * share)
    r_all, c_all = np.divmod(np.arange(nrow * ncol), ncol)
    all_cells = shapely.box(x0 + c_all * GRID_CELL_M, y1 - (r_all + 1) * GRID_CELL_M,
                            x0 + (c_all + 1) * GRID_CELL_M, y1 - r_all * GRID_CELL_M)
    river = water.to_crs(GRID_CRS).geometry.iloc[0]
    wet = shapely.area(shapely.intersection(all_cells, river)) / GRID_CELL_M ** 2
    dry_nobody = (wet.reshape(nrow, ncol) >= 0.5) & (values[0] == 0)
    out = values.astype(np.float32)
    out[:, dry_nobody] = GRID_NODATA
    return {"values": out, "transform": from_origin(x0, y1, GRID_CELL_M, GRID_CELL_M),
            "crs": GRID_CRS, "nodata": GRID_NODATA, "bands": GRID_BANDS}


def write_grid(grid: dict, path: str | os.PathLike) -> Path:
    """Write the demo grid (`generate_demo`'s ``grid``) as a GeoTIFF, bands described
    (deflate-compressed, about 30 KB)."""
    import rasterio

    path = Path(path)
    v = grid["values"]
    with rasterio.open(path, "w", driver="GTiff", width=v.shape[2], height=v.shape[1],
                       count=v.shape[0], dtype="float32", crs=grid["crs"],
                       transform=grid["transform"], nodata=grid["nodata"],
                       compress="deflate", predictor=3) as ds:
        ds.write(v)
        for i, name in enumerate(grid["bands"]):
            ds.set_band_description(i + 1, name)
    return path


# --------------------------------------------------------------------------- writing
#: Layer order inside demo.gpkg.
GPKG_LAYERS = ("district", "townships", "communities", "residential", "parks", "water",
               "rail", "roads", "gates", "candidates")


def write_demo(folder: str | os.PathLike, *, seed: int = 0) -> dict[str, Path]:
    """Generate the demo and write ``demo.gpkg``, ``demo_buildings.parquet``,
    ``demo_grid_100m.tif``, the CSVs and ``demo.yaml`` into ``folder``.

    Parameters
    ----------
    folder
        Target folder (created if needed).  Existing demo files are replaced.
    seed
        Seed of the generator (``0`` gives the committed files).

    Returns
    -------
    dict
        Name → path of every file written.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    demo = generate_demo(seed=seed)
    gpkg = folder / "demo.gpkg"
    if gpkg.exists():
        gpkg.unlink()
    for name in GPKG_LAYERS:
        demo[name].to_file(gpkg, layer=name, driver="GPKG", engine="pyogrio")
    out = {"demo.gpkg": gpkg}
    bld = folder / "demo_buildings.parquet"  # GeoParquet: a fifth of a GeoPackage's size
    demo["buildings"].to_parquet(bld, compression="zstd", index=False)
    out["demo_buildings.parquet"] = bld
    out["demo_grid_100m.tif"] = write_grid(demo["grid"], folder / "demo_grid_100m.tif")
    for key, fname in (("facilities", "demo_facilities.csv"),
                       ("census_2010", "demo_census_2010.csv"),
                       ("census_2020", "demo_census_2020.csv")):
        p = folder / fname
        demo[key].to_csv(p, index=False, encoding="utf-8", lineterminator="\n")
        out[fname] = p
    p = folder / "demo.yaml"
    p.write_text(demo_yaml(""), encoding="utf-8")
    out["demo.yaml"] = p
    return out


def demo_yaml(prefix: str = "") -> str:
    """The demo scenario text; ``prefix`` is prepended to data paths (e.g. ``../planner/data/``)."""
    return f"""\
# The demo scenario: 示范区 (Demo District), a GENERATED fictional district
# (planner/demo.py writes every demo file; no real place, no download).
name: 示范区 (Demo District)
lang: zh
crs: auto
layers:
  population: {{path: {prefix}demo.gpkg, layer: communities}}
  facilities: {{path: {prefix}demo_facilities.csv, coord_system: gcj02}}
  townships: {{path: {prefix}demo.gpkg, layer: townships}}
  districts: {{path: {prefix}demo.gpkg, layer: district}}
  candidates: {{path: {prefix}demo.gpkg, layer: candidates}}
  gates: {{path: {prefix}demo.gpkg, layer: gates}}
  residential: {{path: {prefix}demo.gpkg, layer: residential}}
  water: {{path: {prefix}demo.gpkg, layer: water}}
  parks: {{path: {prefix}demo.gpkg, layer: parks}}
network:
  source: lines
  path: {prefix}demo.gpkg
  layer: roads
access:
  thresholds_min: [5, 10, 15]
  fca: {{supply: beds, demand: pop_60plus, catchment_min: 15}}
demand:
  census: {prefix}demo_census_2020.csv
  census_previous: {prefix}demo_census_2010.csv
  area_layer: townships
  use_for_population: false
locate:
  township_centre: {{model: pmedian, p: auto}}
  community_station: {{model: lscp, coverage_min: 15, target_share: 1.0}}
norms:
  rules: xian_2021
  plan_year: 2025
outputs:
  map: true
  excel: true
  report: true
  print_maps: true
"""


def demo_grid_yaml(prefix: str = "") -> str:
    """The demo with its population grid and buildings beside the community counts."""
    base = demo_yaml(prefix)
    base = base.replace(
        "# (planner/demo.py writes every demo file; no real place, no download).\n"
        "name: 示范区 (Demo District)\n",
        "# (planner/demo.py writes every demo file; no real place, no download).\n"
        "# The communities keep their own counts; the demand step puts beside them the\n"
        "# 100 m population grid's count and the township census spread by the grid and\n"
        "# by residential floor area (tables/demand_by_unit.csv, report sheet).\n"
        "name: 示范区 (Demo District, grid and buildings)\n")
    return base.replace(
        "  use_for_population: false\n",
        "  use_for_population: false\n"
        f"  grid: {{path: {prefix}demo_grid_100m.tif}}   # band descriptions name the groups\n"
        f"  buildings: {{path: {prefix}demo_buildings.parquet, function_column: function}}\n")


if __name__ == "__main__":  # pragma: no cover - regeneration helper
    import sys

    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "data"
    for path in write_demo(target).values():
        print(f"wrote {path}")
    scenarios = Path(__file__).resolve().parents[1] / "scenarios"
    if target.resolve() == (Path(__file__).parent / "data").resolve() and scenarios.is_dir():
        (scenarios / "demo.yaml").write_text(demo_yaml("../planner/data/"), encoding="utf-8")
        print(f"wrote {scenarios / 'demo.yaml'}")
        (scenarios / "demo_grid.yaml").write_text(demo_grid_yaml("../planner/data/"),
                                                   encoding="utf-8")
        print(f"wrote {scenarios / 'demo_grid.yaml'}")
