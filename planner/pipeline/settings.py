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

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from planner import defaults as D

__all__ = ["AccessSettings", "DemandSettings", "FCASettings", "LayerSettings", "LayersSettings",
           "LocateSettings", "ModelSettings", "NetworkSettings", "NormsSettings",
           "OutputsSettings", "Scenario"]

CoordSystem = Literal["wgs84", "gcj02", "bd09"]
Lang = Literal["zh", "en"]
LayerKind = Literal["population", "facilities", "boundaries", "candidates", "points", "lines"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class LayerSettings(_Section):
    """One input layer of the scenario.

    ``path`` is relative to the scenario file.  ``columns`` maps the file's
    column names to canonical ones (``{社区名称: name}``) on top of the
    built-in Chinese/English synonyms.  ``coord_system`` says which datum
    the coordinates are in (AMap/Tencent = gcj02, Baidu = bd09).  A bare
    string is short for ``{path: ...}`` (``townships: boundaries.geojson``).
    """

    path: Path
    layer: str | None = None
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

    @model_validator(mode="before")
    @classmethod
    def _path_shorthand(cls, data: object) -> object:
        return {"path": data} if isinstance(data, str) else data


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
    ``include_classes`` lists exactly the classes walked.
    """

    source: Literal["lines", "osm", "graphml", "osmnx_place", "osmnx_bbox"] = "lines"
    path: Path | None = None
    layer: str | None = None
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
    cutoff_min: float = Field(default=D.CUTOFF_MIN, gt=0)
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
    """

    census: Path | None = None
    census_previous: Path | None = None
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
    ``report`` writes ``report.html`` and ``excel`` ``planner.xlsx``
    (`planner.report`); ``print_maps`` writes PNG (300 dpi) and SVG maps
    into ``print_maps/`` (`planner.plots`).  ``tiles`` is empty for a map
    without base tiles (works offline), or an XYZ URL template / xyzservices
    name (``GaoDe.Normal``); ``tiles_coord_system: gcj02`` for AMap or
    Tianditu-in-GCJ tiles shifts the data into GCJ-02 so both line up.
    ``map_simplify_m`` is the simplification tolerance of polygons and lines
    on the web map, in metres.
    """

    gpkg: bool = True
    csv: bool = True
    excel: bool = True
    map: bool = True
    report: bool = True
    print_maps: bool = False
    tiles: str | None = None
    tiles_coord_system: CoordSystem = "wgs84"
    tiles_attribution: str | None = None
    map_simplify_m: float = Field(default=D.MAP_SIMPLIFY_M, ge=0.0, le=100.0)


class Scenario(_Section):
    """A whole scenario: study area, layers and the settings of every step."""

    name: str
    lang: Lang = "zh"
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

    def resolve(self, path: Path | str | None) -> Path | None:
        """Return ``path`` resolved relative to the scenario file's folder."""
        if path is None:
            return None
        p = Path(path).expanduser()
        return p if p.is_absolute() else (self.base_dir / p).resolve()
