"""`Study`: the layers and tables of a study area, with the few facts maps and reports need.

Maps (`planner.maps`), print maps (`planner.plots`) and the report
(`planner.report`) draw and write from a `Study`, never from a scenario or
a run: build one by hand in a notebook (``Study(layers={...})``) or take
the one a run makes (``planner.pipeline.presenting.study_of(result)``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from planner import defaults as D

__all__ = ["MapStyle", "ReportMeta", "Study"]


@dataclass(frozen=True)
class MapStyle:
    """How the web map looks.

    ``tiles`` is ``None`` for a map without base tiles (works offline), or
    a named base map (``amap``, ``tianditu``), an XYZ URL template (a
    relative one for tiles beside the page) or an xyzservices name;
    ``tiles_coord_system`` the datum of those tiles (``None``: the source's
    own; the data is shifted to match); ``tiles_key`` the key a named base
    map needs (Tianditu's ``tk``); ``tiles_max_zoom`` the deepest zoom of
    local tiles; ``simplify_m`` the simplification tolerance of drawn
    polygons and lines (m).
    """

    tiles: str | None = None
    tiles_coord_system: Literal["wgs84", "gcj02", "bd09"] | None = None
    tiles_attribution: str | None = None
    tiles_key: str | None = None
    tiles_max_zoom: int | None = None
    simplify_m: float = D.MAP_SIMPLIFY_M


@dataclass
class ReportMeta:
    """What a report says about how its numbers were made.

    ``assumptions`` are (label, value) rows; ``inputs`` (key, path, SHA-256)
    rows; ``versions`` package -> version; ``steps`` (name, status, seconds
    text, reason) rows; ``warnings`` the run's warnings.
    """

    assumptions: list[tuple[str, str]] = field(default_factory=list)
    inputs: list[tuple[str, str, str]] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    steps: list[tuple[str, str, str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class Study:
    """The layers and tables of a study area, ready to draw and report.

    Attributes
    ----------
    layers
        GeoDataFrames by name (``population_access``, ``facilities``,
        ``townships``, ``service_areas``, ``proposed_sites`` ...).
    tables
        DataFrames by name (``coverage``, ``norm_checks``, ``demand_columns`` ...).
    name
        The study's name (titles).
    lang
        ``"zh"`` (default) or ``"en"``.
    crs
        The metric CRS to draw in (default: the layers' own, or their UTM zone).
    circle_min
        The elderly-care circle (min).
    osm_data
        Whether OpenStreetMap data was used (maps then credit it).
    time_min_after
        Per row of ``layers["population_access"]``: the walk once the
        proposed sites exist (min; ``inf`` or NaN beyond the cut-off), as
        `planner.locate.propose_sites` returns it; ``None`` when unknown.
    map_style
        How the web map looks.
    coordinates
        The datum of longitudes/latitudes written into tables and reports:
        ``"wgs84"`` (default), ``"gcj02"`` (as AMap/Tencent show them) or
        ``"cgcs2000"`` (EPSG:4490); every such column names its datum.
    mapping_unit
        Who made the maps (编制单位), printed in each print map's margin
        with the date, the coordinate system and ``data_sources``.
    data_sources
        The data the maps are drawn from (file names, "© OpenStreetMap
        contributors (ODbL)" ...), for the margin.
    """

    layers: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    name: str = ""
    lang: Literal["zh", "en"] = "zh"
    crs: Any = None
    circle_min: float = D.CIRCLE_MIN
    osm_data: bool = False
    time_min_after: np.ndarray | None = None
    map_style: MapStyle = field(default_factory=MapStyle)
    coordinates: Literal["wgs84", "gcj02", "cgcs2000"] = "wgs84"
    mapping_unit: str = ""
    data_sources: list[str] = field(default_factory=list)

    def estimated(self, layer: str) -> bool:
        """Whether ``tables["demand_columns"]`` marks columns of ``layer`` as estimates."""
        cols = self.tables.get("demand_columns")
        if cols is None or "layer" not in cols or "estimated" not in cols:
            return False
        return bool(cols[(cols["layer"] == layer) & cols["estimated"].astype(bool)].shape[0])
