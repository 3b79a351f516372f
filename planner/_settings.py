"""The scenario schema: every setting of a run, typed and validated in one place.

A scenario YAML file is parsed into `Scenario`; unknown keys are rejected
(``extra="forbid"``) and every field has a documented default.  Each section
belongs to one step of the run (`layers`, `network`, `access`, `demand`,
`locate`, `norms`, `outputs`).  Paths are kept as written here and resolved
relative to the scenario file by `planner.scenario.load_scenario`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

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
    the coordinates are in (AMap/Tencent = gcj02, Baidu = bd09).
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


class LayersSettings(_Section):
    """The layers of a study area.

    ``population`` (communities or compounds with counts) is needed unless
    the `demand` step estimates it from census tables over ``residential``.
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


class NetworkSettings(_Section):
    """How the pedestrian network is built and how fast older residents walk.

    ``speed_mps`` overrides the profile's speed.  Default profile
    ``older_adult`` walks 1.0 m/s (15 min = 900 m; see NORMS.md and
    `planner.network.PROFILES` for sources).
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
    join_tolerance_m: float = Field(default=1.0, ge=0.0, le=50.0)
    max_snap_m: float = Field(default=300.0, gt=0.0)
    min_component_share: float = Field(default=0.01, ge=0.0, le=1.0)
    crossing_delay_s: float = Field(default=0.0, ge=0.0)


class FCASettings(_Section):
    """Capacity-aware accessibility (2SFCA / E2SFCA)."""

    supply: str = "beds"
    demand: str = "pop_60plus"
    catchment_min: float = Field(default=15.0, gt=0)
    decay: Literal["none", "gaussian"] = "gaussian"


class AccessSettings(_Section):
    """Walking-time thresholds and what the access step computes."""

    thresholds_min: list[float] = Field(default_factory=lambda: [5.0, 10.0, 15.0])
    circle_min: float = Field(default=15.0, gt=0)
    cutoff_min: float = Field(default=60.0, gt=0)
    service_areas: bool = True
    service_area_buffer_m: float = Field(default=25.0, gt=0)
    blind_spot_eps_m: float = Field(default=300.0, gt=0)
    fca: FCASettings | None = None

    @field_validator("thresholds_min")
    @classmethod
    def _sorted_positive(cls, v: list[float]) -> list[float]:
        if not v or any(t <= 0 for t in v):
            raise ValueError("thresholds_min must be a non-empty list of positive minutes")
        return sorted(v)


class DemandSettings(_Section):
    """Census tables spread onto small areas, and plan-year projections."""

    census: Path | None = None
    census_previous: Path | None = None
    area_layer: Literal["districts", "townships"] = "districts"
    area_key: str = "name"
    table_key: str | None = None
    weight: str | None = None
    method: Literal["hamilton_perry", "life_table"] = "hamilton_perry"
    life_table: Path | None = None
    base_year: int = 2020
    plan_years: list[int] = Field(default_factory=lambda: [2025, 2030, 2035])
    use_for_population: bool = True


class ModelSettings(_Section):
    """One location model for one tier."""

    model: Literal["pmedian", "mclp", "lscp"] = "pmedian"
    p: int | Literal["auto"] = "auto"
    weight: str = "pop_60plus"
    coverage_min: float = Field(default=15.0, gt=0)
    target_share: float = Field(default=1.0, gt=0, le=1.0)
    capacity: str | None = None
    method: Literal["auto", "exact", "heuristic"] = "auto"
    time_limit_s: float = Field(default=60.0, gt=0)
    generate_candidates: int | None = None


class LocateSettings(_Section):
    """Which tiers get proposed sites, and how."""

    township_centre: ModelSettings | None = None
    community_station: ModelSettings | None = None
    seed: int = 0
    threads: int = 1


class NormsSettings(_Section):
    """Which rule set (a shipped jurisdiction name or a YAML path) and plan year."""

    rules: str = "national"
    plan_year: int = 2025


class OutputsSettings(_Section):
    """Which outputs a run writes."""

    gpkg: bool = True
    csv: bool = True
    excel: bool = True
    map: bool = True
    report: bool = True
    print_maps: bool = False
    tiles: str | None = None
    tiles_coord_system: CoordSystem = "wgs84"


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
