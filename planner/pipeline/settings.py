"""The scenario schema: every setting of a run, typed and validated in one place.

A scenario YAML file is parsed into `Scenario`; unknown keys are rejected
(``extra="forbid"``) and every field has a documented default.  Each section
belongs to one step of the run (`layers`, `network`, `access`, `demand`,
`locate`, `norms`, `outputs`).  Paths are kept as written here and resolved
relative to the scenario file by `planner.pipeline.load_scenario`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from planner import defaults as D

__all__ = ["AccessSettings", "BuildingSettings", "DemandSettings", "FCASettings", "GridSettings",
           "LayerSettings", "LayersSettings", "LocateSettings", "ModelSettings",
           "NetworkSettings", "NormsSettings", "OutputsSettings", "Scenario"]

CoordSystem = Literal["wgs84", "gcj02", "bd09"]
Lang = Literal["zh", "en"]
Region = Literal["china", "any"]
LayerKind = Literal["population", "facilities", "boundaries", "candidates", "points", "lines"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class LayerSettings(_Section):
    """One input layer of the scenario.

    ``path`` is relative to the scenario file, or a ``postgresql://`` URL of
    a PostGIS database (``layer`` then names the table, ``schema.table``, or
    ``sql`` gives a query, which may filter in space).  ``columns`` maps the file's
    column names to canonical ones (``{社区名称: name}``) on top of the
    built-in Chinese/English synonyms.  ``coord_system`` says which datum
    the coordinates are in (AMap/Tencent = gcj02, Baidu = bd09).  ``where``
    keeps the rows satisfying an SQL condition on the file's own column
    names (``where: "landuse = 'residential'"``), applied as the file is
    read.  A bare string is short for ``{path: ...}`` (``townships:
    boundaries.geojson``).
    """

    path: Path | str
    layer: str | None = None
    sql: str | None = None
    columns: dict[str, str] = Field(default_factory=dict)
    coord_system: CoordSystem = "wgs84"
    encoding: str | None = None
    crs: str | None = None
    id_column: str | None = None
    lon_column: str | None = None
    lat_column: str | None = None
    sheet: str | int | None = None
    #: extra facility-tier values → tier (``{老年食堂: other}``), tried before the built-ins
    tiers: dict[str, str] = Field(default_factory=dict)
    #: keep only the rows satisfying this SQL condition on the file's own columns
    #: (``"landuse = 'residential'"``; see `planner.layers.read_layer`)
    where: str | None = None
    #: keep rows that share a coordinate even where they look like failed geocodes
    #: (`planner.checks.check_stacked`; a true ``accept_stacked`` column accepts single rows)
    accept_stacked: bool = False

    @model_validator(mode="before")
    @classmethod
    def _path_shorthand(cls, data: object) -> object:
        return {"path": data} if isinstance(data, str) else data

    @field_validator("path", mode="before")
    @classmethod
    def _path_or_database(cls, value: object) -> object:
        # a PostGIS URL stays text (a Path would fold its "//"); anything else is a path
        from planner.postgis import is_database_url

        return value if is_database_url(value) or not isinstance(value, str) else Path(value)


class LayersSettings(_Section):
    """The layers of a study area.

    ``population`` (communities or compounds with counts) is needed unless
    the `demand` step estimates it from census tables over ``residential``.
    ``facilities_nearby`` and ``population_nearby`` are the neighbours across
    the study area's border (a district study with the next district's
    register): residents walk to nearby facilities, nearby residents share
    them (2SFCA), and neither is counted in the area's own tables.
    `planner.batch` fills them for each part of a province.
    """

    population: LayerSettings | None = None
    facilities: LayerSettings | None = None
    townships: LayerSettings | None = None
    districts: LayerSettings | None = None
    candidates: LayerSettings | None = None
    gates: LayerSettings | None = None
    residential: LayerSettings | None = None
    water: LayerSettings | None = None
    parks: LayerSettings | None = None
    #: Facilities outside the study area that its residents can walk to (across a border).
    #: They count for walking times and 2SFCA supply; norms, service areas and the
    #: location models' facility counts use ``facilities`` only.
    facilities_nearby: LayerSettings | None = None
    #: Residents outside the study area who load the same facilities (2SFCA demand only).
    population_nearby: LayerSettings | None = None


class NetworkSettings(_Section):
    """How the pedestrian network is built and how fast older residents walk.

    ``speed_mps`` overrides the profile's speed.  Default profile
    ``older_adult`` walks 1.0 m/s (15 min = 900 m; see the README's walking-speed section and
    `planner.network.PROFILES` for sources); others: ``older_adult_design``
    0.9, ``frail`` 0.65 and ``wheelchair`` 0.8 (both avoid steps),
    ``generic_adult`` 1.33.  ``source``: ``lines`` (a road centre-line
    layer at ``path``, read like any layer, with ``layer`` and
    ``coord_system``), ``osm`` (a .osm / .osm.pbf extract), ``graphml``,
    or an OSMnx download by ``place`` or ``bbox`` (online only).
    ``exclude_classes`` replaces the default motorway/trunk exclusion;
    ``include_classes`` lists exactly the classes walked.  A unit or facility
    whose nearest street is on a small fragment (a piece not connected to the
    main network and holding no facility) snaps to the main network unless
    it is within ``fragment_snap_m`` of the fragment and at most
    ``fragment_ratio`` of its distance to the main network
    (`planner.access.snap_points`).
    """

    source: Literal["lines", "osm", "graphml", "osmnx_place", "osmnx_bbox"] = "lines"
    path: Path | None = None
    layer: str | None = None
    #: ``source: lines`` only: keep the lines satisfying this SQL condition (as for layers)
    where: str | None = None
    coord_system: CoordSystem = "wgs84"
    place: str | None = None
    bbox: tuple[float, float, float, float] | None = None
    profile: str = "older_adult"
    speed_mps: float | None = Field(default=None, gt=0.1, lt=3.0)
    exclude_classes: list[str] | None = None
    include_classes: list[str] | None = None
    avoid_steps: bool | None = None
    join_tolerance_m: float = Field(default=D.JOIN_TOLERANCE_M, ge=0.0, le=50.0)
    max_snap_m: float = Field(default=D.MAX_SNAP_M, gt=0.0)
    #: a unit or facility stays on a small fragment only within this many metres of it ...
    fragment_snap_m: float = Field(default=D.FRAGMENT_SNAP_M, ge=0.0)
    #: ... and at most this share of its distance to the main network (else: main network)
    fragment_ratio: float = Field(default=D.FRAGMENT_SNAP_RATIO, ge=0.0, le=1.0)
    min_component_share: float = Field(default=D.MIN_COMPONENT_SHARE, ge=0.0, le=1.0)
    crossing_delay_s: float = Field(default=0.0, ge=0.0)
    class_column: str | None = None  # road-class column of a line layer (default: found)
    name_column: str | None = None  # street-name column of a line layer (default: found)


class FCASettings(_Section):
    """Capacity-aware accessibility (2SFCA / E2SFCA)."""

    supply: str = "beds"
    demand: str = "pop_60plus"
    catchment_min: float = Field(default=D.FCA_CATCHMENT_MIN, gt=0)
    decay: Literal["none", "gaussian"] = "gaussian"


class AccessSettings(_Section):
    """Walking-time thresholds and what the access step computes."""

    thresholds_min: list[float] = Field(default_factory=lambda: list(D.THRESHOLDS_MIN))
    circle_min: float = Field(default=D.CIRCLE_MIN, gt=0)
    cutoff_min: float = Field(default=D.CUTOFF_MIN, gt=0, validate_default=True)
    service_areas: bool = True
    service_area_buffer_m: float = Field(default=D.SERVICE_AREA_BUFFER_M, gt=0)
    blind_spot_eps_m: float = Field(default=D.BLIND_SPOT_EPS_M, gt=0)
    fca: FCASettings | None = None

    @field_validator("thresholds_min")
    @classmethod
    def _sorted_positive(cls, v: list[float]) -> list[float]:
        if not v or any(t <= 0 for t in v):
            raise ValueError("thresholds_min must be a non-empty list of positive minutes")
        return sorted(v)

    @field_validator("cutoff_min")
    @classmethod
    def _cutoff_reaches_thresholds(cls, v: float, info: ValidationInfo) -> float:
        """Walks are cut at ``cutoff_min``: a threshold beyond it would count too few residents."""
        longest = [(t, f"thresholds_min ({t:g})") for t in info.data.get("thresholds_min") or []]
        if info.data.get("circle_min") is not None:
            longest.append((info.data["circle_min"], f"circle_min ({info.data['circle_min']:g})"))
        over = [what for t, what in longest if t > v]
        if over:
            top = max(t for t, _ in longest)
            raise ValueError(
                f"cutoff_min ({v:g}) is below {' and '.join(dict.fromkeys(over))}: walks longer "
                f"than the cut-off are not routed, so those residents would count as not "
                f"covered; set cutoff_min to at least {top:g} (the default is {D.CUTOFF_MIN:g})"
            )
        return v


class GridSettings(_Section):
    """A population grid (GeoTIFF, any CRS): `planner.demand.read_population_raster`.

    ``path`` is one file whose ``bands`` map groups to band numbers
    (``{population: 1, pop_60plus: 2}``), or whose single band holds
    ``group``; without either the band descriptions must name the groups.
    ``files`` instead maps each group to files summed into it (WorldPop's
    one file per age and sex).  ``crs``: the grid's CRS when the file has
    none; ``nodata``: the no-data value when the file declares none.
    ``weight_group``: the band that spreads census totals over cells
    (default ``pop_60plus``, else ``population``).  ``cell_m``: size of the
    demand points made of cells (blocks of cells, default 200 m).
    """

    path: Path | None = None
    files: dict[str, Path | list[Path]] | None = None
    bands: dict[str, int | list[int]] | None = None
    group: str | None = None
    crs: str | None = None
    nodata: float | None = None
    weight_group: str | None = None
    cell_m: float = Field(default=D.GRID_POINT_M, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _path_shorthand(cls, data: object) -> object:
        return {"path": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _one_source(self) -> GridSettings:
        if (self.path is None) == (self.files is None):
            raise ValueError("give either `path` (one GeoTIFF) or `files` (group -> files)")
        return self


class BuildingSettings(LayerSettings):
    """A building-footprint layer whose residential floor area spreads the census.

    Read like any layer (``path``, ``layer``, ``columns``, ``coord_system``
    ...).  Floor area per building: ``floor_area_column`` where the data has
    it, else footprint x ``floors_column``, else footprint x round(height /
    ``storey_height_m``) (3.0 m), else footprint x ``default_floors`` (1);
    floors and height columns are found by name when not given
    (`planner.demand.FLOORS_COLUMNS`, `HEIGHT_COLUMNS`).
    ``function_column`` with ``residential_values`` keeps residential
    buildings only (default values: `planner.demand.RESIDENTIAL_VALUES`).
    """

    floor_area_column: str | None = None
    floors_column: str | None = None
    height_column: str | None = None
    storey_height_m: float = Field(default=D.STOREY_HEIGHT_M, gt=0)
    function_column: str | None = None
    residential_values: list[str] | None = None
    default_floors: float = Field(default=D.DEFAULT_FLOORS, gt=0)


class DemandSettings(_Section):
    """Census tables spread onto small areas, and plan-year projections.

    ``census`` (base year) and ``census_previous`` (ten years earlier, for
    Hamilton-Perry) are tables by district or township whose names
    (``table_key``, default: detected) match ``area_key`` of the
    ``area_layer``.  ``weight`` is a column of the residential layer to
    spread by (default: residential area).  ``trust`` says what to believe
    where age bands do not sum to the total (default: stop with an error).
    ``net_migration`` is the factor per 5-year step for ``method:
    life_table`` (one number, or area name -> number).

    A census of totals only (residents per subdistrict, no age bands) is
    accepted: the older groups then come from the table's own 60+ count or
    share column, else from ``shares_from`` (a census table with age bands
    at a higher level, e.g. the districts, whose area each census area lies
    in: the census table's ``区县``/``district`` column, the area layer's
    ``shares_by`` column, or the districts layer), else from an assumed
    ``older_share_60plus`` (and ``older_share_65plus``, ``older_share_80plus``),
    which is labelled as an assumption wherever the counts are shown.  The
    projection then runs on ``shares_from`` (with ``census_previous`` at its
    level) or, when it cannot run, is skipped with a warning saying which age
    bands it needs; ``plan_years: []`` asks for no projection.
    ``grid`` (a population raster) and ``buildings`` (footprints with
    floors or height) say where inside each area people live:
    ``spread_by`` chooses what the census is spread over when the step
    makes the population layer (``residential`` polygons, residential
    ``buildings`` by floor area, or ``grid`` cells by a band, as points of
    ``grid.cell_m``).  Without a census, a grid alone makes the population
    layer from its own counts.  With a given population layer, the step
    adds ``tables["demand_by_unit"]``: each unit's own count beside the
    grid's and the census spread by grid and buildings.
    """

    census: Path | None = None
    shares_from: Path | None = None
    shares_by: str = "district"
    older_share_60plus: float | None = Field(default=None, ge=0.0, le=1.0)
    older_share_65plus: float | None = Field(default=None, ge=0.0, le=1.0)
    older_share_80plus: float | None = Field(default=None, ge=0.0, le=1.0)
    census_previous: Path | None = None
    #: sheet of census workbooks (.xlsx): a name, a 0-based number or ``all`` (default: the one
    #: sheet with data; several sheets with data are an error listing them)
    sheet: str | int | None = None
    area_layer: Literal["districts", "townships"] = "districts"
    area_key: str = "name"
    table_key: str | None = None
    weight: str | None = None
    method: Literal["hamilton_perry", "life_table"] = "hamilton_perry"
    life_table: Path | None = None
    net_migration: float | dict[str, float] = 0.0
    trust: Literal["bands", "total"] | None = None
    base_year: int = 2020
    plan_years: list[int] = Field(default_factory=lambda: list(D.PLAN_YEARS))
    use_for_population: bool = True
    grid: GridSettings | None = None
    buildings: BuildingSettings | None = None
    spread_by: Literal["residential", "buildings", "grid"] = "residential"

    @model_validator(mode="after")
    def _spread_source_given(self) -> DemandSettings:
        if self.spread_by == "grid" and self.grid is None:
            raise ValueError("spread_by: grid needs `grid:` (a population GeoTIFF)")
        if self.spread_by == "buildings" and self.buildings is None:
            raise ValueError("spread_by: buildings needs `buildings:` (a footprint layer)")
        return self


class ModelSettings(_Section):
    """One location model for one tier (see `planner.locate`).

    ``model``: ``pmedian`` (least walking time), ``mclp`` (most older residents
    within ``coverage_min``) or ``lscp`` (fewest sites covering every unit, or
    ``target_share`` of the weight, within ``coverage_min``).  ``p``: new
    sites; ``auto`` = one per township the norm checks flag (township
    centres) or the LSCP count (stations).  ``weight``: population column.
    ``capacity``: candidate/facility column of capacities (beds or persons
    served); all three models respect it: the capacitated p-median assigns
    demand so no site is over capacity, MCLP and LSCP count only what fits.
    ``method``: ``auto``/``exact`` (HiGHS, proven optimal) or ``heuristic``.
    ``generate_candidates``: add this many k-means candidate sites.
    """

    model: Literal["pmedian", "mclp", "lscp"] = "pmedian"
    p: int | Literal["auto"] = Field(default="auto")
    weight: str = "pop_60plus"
    coverage_min: float = Field(default=D.CIRCLE_MIN, gt=0)
    target_share: float = Field(default=1.0, gt=0, le=1.0)
    capacity: str | None = None
    method: Literal["auto", "exact", "heuristic"] = "auto"
    time_limit_s: float = Field(default=D.LOCATE_TIME_LIMIT_S, gt=0)
    generate_candidates: int | None = None


class LocateSettings(_Section):
    """Which tiers get proposed sites, and how."""

    township_centre: ModelSettings | None = None
    community_station: ModelSettings | None = None
    seed: int = 0
    threads: int = 1


class NormsSettings(_Section):
    """Which rule set (a shipped jurisdiction name or a YAML path) and plan year.

    ``rules``: ``national``, ``shaanxi_2023``, ``xian_2021``, ``sucheng_2024``,
    ``shanxi_2023``, ``henan_2023`` (see `planner.norms`), or the path of
    your own rule file (``my_rules.yaml``, relative to the scenario file).
    ``plan_year`` keeps the rules in force that year (their ``applies_from``).
    """

    rules: str = "national"
    plan_year: int = Field(default=D.PLAN_YEAR, ge=1900, le=2200)


class OutputsSettings(_Section):
    """Which outputs a run writes, and how the web map looks.

    ``map`` writes ``map.html`` (one offline file, `planner.maps`);
    ``report`` writes ``report.html``, ``docx`` ``report.docx`` (Word, to
    paste into a plan text) and ``excel`` ``planner.xlsx``
    (`planner.report`); ``print_maps`` writes PNG (300 dpi) and SVG maps
    into ``print_maps/`` (`planner.plots`).  ``coordinates`` is the datum of
    the longitudes/latitudes in the report and workbook (``wgs84``,
    ``gcj02`` as AMap shows them, or ``cgcs2000``).
    ``tiles`` is empty for a map without base tiles (works offline); a named
    base map: ``amap`` (AMap, GCJ-02: the data is shifted to match),
    ``tianditu`` (Tianditu, CGCS2000 = WGS-84 within centimetres, no shift;
    needs ``tiles_key``, its ``tk``); an XYZ URL template or xyzservices
    name; or a local tile folder (``{z}/{x}/{y}.png``) or ``.mbtiles`` file
    (relative to the scenario), whose tiles over the study area are copied
    to ``tiles/`` beside ``map.html`` so the map works offline.
    ``tiles_coord_system`` is the tiles' datum, by default the source's own
    (AMap/Tencent ``gcj02``, others ``wgs84``; local tiles saved from AMap
    need ``gcj02``); Baidu tiles (``bd09``) are refused: Leaflet cannot show
    their tile grid.
    ``map_simplify_m`` is the simplification tolerance of polygons and lines
    on the web map, in metres.  ``mapping_unit`` (编制单位) is printed in the
    print maps' margin with the date, coordinate system and data sources.
    ``gpkg`` writes ``layers.gpkg`` with QGIS styles (``gpkg_styles``: the
    web map's symbols and Chinese field aliases); ``shapefile`` also writes
    ``shapefile/<layer>.shp`` for ArcGIS (``shapefile_encoding`` utf-8 or
    gbk, a ``.cpg`` and a field-name map); ``crs`` is the coordinate system
    of those files: empty (the study's metric CRS, UTM by default),
    ``cgcs2000`` (EPSG:4490), ``cgcs2000_gk3`` (the study's 3-degree
    Gauss-Krüger zone) or an EPSG code.  ``postgis`` (a ``postgresql://``
    URL) also writes every layer and table into that database, in schema
    ``postgis_schema`` (tables replaced on each run).
    """

    gpkg: bool = True
    csv: bool = True
    excel: bool = True
    map: bool = True
    report: bool = True
    docx: bool = True
    print_maps: bool = False
    coordinates: Literal["wgs84", "gcj02", "cgcs2000"] = "wgs84"
    tiles: str | None = None
    tiles_coord_system: CoordSystem | None = None
    tiles_attribution: str | None = None
    tiles_key: str | None = None
    mapping_unit: str | None = None
    postgis: str | None = None
    postgis_schema: str = "planner"
    shapefile: bool = False
    shapefile_encoding: Literal["utf-8", "gbk"] = "utf-8"
    gpkg_styles: bool = True
    crs: str | None = None
    map_simplify_m: float = Field(default=D.MAP_SIMPLIFY_M, ge=0.0, le=100.0)


class Scenario(_Section):
    """A whole scenario: study area, layers and the settings of every step.

    ``region``: ``china`` (default) stops with an error where a layer lies
    outside China (usually a wrong coordinate column or CRS); ``any`` accepts
    data anywhere (to test or use the toolkit elsewhere), and then refuses
    GCJ-02/BD-09 coordinates, which exist only inside China.
    """

    name: str
    lang: Lang = "zh"
    region: Region = D.REGION  # type: ignore[assignment]
    crs: str = "auto"
    output: Path | None = None
    layers: LayersSettings
    network: NetworkSettings | None = None
    access: AccessSettings | None = None
    demand: DemandSettings | None = None
    locate: LocateSettings | None = None
    norms: NormsSettings | None = None
    outputs: OutputsSettings = Field(default_factory=OutputsSettings)
    osm_data: bool = False
    base_dir: Path = Field(default=Path("."), exclude=True)

    @field_validator("locate")
    @classmethod
    def _coverage_within_cutoff(cls, v: LocateSettings | None,
                                info: ValidationInfo) -> LocateSettings | None:
        """A model's ``coverage_min`` beyond the access cut-off would cover too few residents."""
        if v is None or "access" not in info.data:  # no locate, or access itself is invalid
            return v
        access = info.data["access"]
        cutoff = access.cutoff_min if access is not None else D.CUTOFF_MIN
        over = [f"{tier}.coverage_min ({ms.coverage_min:g})"
                for tier in ("township_centre", "community_station")
                if (ms := getattr(v, tier)) is not None and ms.coverage_min > cutoff]
        if over:
            raise ValueError(
                f"{' and '.join(over)} is beyond the routing cut-off access.cutoff_min "
                f"({cutoff:g}): walks longer than the cut-off are not routed, so residents "
                "between the two would count as not covered; raise access.cutoff_min or lower "
                "coverage_min"
            )
        return v
    def region_conflicts(self) -> list[tuple[tuple, str]]:
        """(key path, problem) for every GCJ-02/BD-09 setting refused by ``region: any``."""
        if self.region != "any":
            return []
        found: list[tuple[tuple, str]] = []
        for name, lay in self.layers:
            if lay is not None and lay.coord_system != "wgs84":
                found.append((("layers", name, "coord_system"), lay.coord_system))
        if self.network is not None and self.network.coord_system != "wgs84":
            found.append((("network", "coord_system"), self.network.coord_system))
        if self.outputs.tiles_coord_system not in (None, "wgs84"):
            found.append((("outputs", "tiles_coord_system"), self.outputs.tiles_coord_system))
        return [(loc, f"`{'.'.join(loc)}: {value}` is refused with `region: any`: GCJ-02 and "
                      "BD-09 are offsets of Chinese web maps, defined inside China only; give "
                      "WGS-84 data (coord_system: wgs84), or remove `region: any` for data in "
                      "China") for loc, value in found]

    def resolve(self, path: Path | str | None) -> Path | None:
        """Return ``path`` resolved relative to the scenario file's folder (a database URL
        is returned as it is)."""
        from planner.postgis import is_database_url

        if path is None or is_database_url(path):
            return path
        p = Path(path).expanduser()
        return p if p.is_absolute() else (self.base_dir / p).resolve()
