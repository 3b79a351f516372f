"""The steps of a run: each reads its settings, calls library functions, stores what they return.

A step is a plain function ``step(result) -> str | None``: it returns
``None`` when it did its work, or a short reason when it skipped (its
scenario section is absent, or what it needs is missing).  It raises a
`planner.PlannerError` on bad input.  Every step is wrapped by `step`,
which records the warnings the library raised on ``result.warnings`` and
issues them again to the caller, so the same warnings reach a notebook
user calling a library function, a notebook user calling a step, and a
scenario run.

`STEPS` is the run order, as ``(name, function)`` pairs.  To add a step,
write a function here (or in a module of this package) that reads
``result.scenario.<section>`` and calls library code with explicit
arguments, decorate it with ``@step``, and insert it into `STEPS`.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyproj

from planner import access as A
from planner import checks as CK
from planner import demand as DM
from planner import layers as L
from planner import locate as LC
from planner import network as N
from planner import norms as NR
from planner._errors import (
    DemandError,
    LayerError,
    NetworkError,
    PlannerWarning,
    ScenarioError,
    text_of,
)
from planner.defaults import MAX_SNAP_M, STUDY_AREA_BUFFER_M
from planner.pipeline import outputs as O
from planner.pipeline.result import RunResult
from planner.pipeline.settings import AccessSettings, LayerSettings, ModelSettings, Scenario

__all__ = ["STEPS", "StepFunction", "access", "checks", "demand", "layers", "load_layer", "locate",
           "maps", "network", "norms", "outputs", "report", "step", "with_nearby"]

StepFunction = Callable[[RunResult], "str | None"]


def step(fn: StepFunction) -> StepFunction:
    """Collect the warnings ``fn`` raises on ``result.warnings`` and issue them again.

    Every warning (deprecations aside) is recorded once per message, in the
    order raised and in the scenario's language (`PlannerWarning.text`), the
    moment it is raised: what the step builds afterwards
    sees it on ``result.warnings`` (the report step lists the warning its
    own print maps raised).  They are re-issued after the step so a
    notebook shows them.
    """

    @functools.wraps(fn)
    def wrapper(result: RunResult) -> str | None:
        before = len(result.warnings)
        outer = result._collecting
        result._collecting = True
        caught: list[warnings.WarningMessage] = []

        def record(message, category, filename, lineno, file=None, line=None) -> None:
            caught.append(warnings.WarningMessage(message, category, filename, lineno))
            text = text_of(message, result.lang)  # in the scenario's language
            if text not in result.warnings[before:]:
                result.warnings.append(text)

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("always")
                warnings.filterwarnings("ignore", category=DeprecationWarning)
                warnings.filterwarnings("ignore", category=PendingDeprecationWarning)
                warnings.showwarning = record  # restored when the block is left
                reason = fn(result)
        finally:
            result._collecting = outer
        for w in caught:  # show them to the caller too (a notebook prints them)
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        return reason

    wrapper.collects_warnings = True  # type: ignore[attr-defined]
    return wrapper


def _max_snap_m(scenario: Scenario) -> float:
    return scenario.network.max_snap_m if scenario.network is not None else MAX_SNAP_M


def _snap_rule(scenario: Scenario) -> dict[str, float]:
    """The snap limit and the fragment rule of the scenario's network settings."""
    s = scenario.network
    if s is None:
        return {"max_snap_m": MAX_SNAP_M}
    return {"max_snap_m": s.max_snap_m, "fragment_snap_m": s.fragment_snap_m,
            "fragment_ratio": s.fragment_ratio}


# --------------------------------------------------------------------------- layers
def load_layer(settings: LayerSettings, *, kind: str, scenario: Scenario,
               target_crs: pyproj.CRS | None, name: str | None = None):
    """Read a layer described in a scenario (its path relative to the scenario file)."""
    return L.read_layer(
        scenario.resolve(settings.path), kind=kind, columns=settings.columns,
        coord_system=settings.coord_system, encoding=settings.encoding, crs=settings.crs,
        layer=settings.layer, id_column=settings.id_column, lon_column=settings.lon_column,
        lat_column=settings.lat_column, sheet=settings.sheet, target_crs=target_crs, name=name,
        tiers=settings.tiers or None, region=scenario.region, where=settings.where,
        sql=settings.sql,
    )


def _study_crs(scenario: Scenario) -> pyproj.CRS | None:
    if str(scenario.crs).lower() == "auto":
        return None
    target = L.as_crs(scenario.crs, what="Scenario crs")
    if target.is_geographic:
        raise LayerError(
            f"Scenario crs {scenario.crs!r} is geographic (degrees); distances need a metric "
            "CRS. Use e.g. `crs: EPSG:32649` (UTM 49N), or `crs: auto`."
        )
    return target


@step
def layers(result: RunResult) -> str | None:
    """Load every layer of the scenario into ``result.layers`` in one metric CRS.

    The study CRS is the scenario's ``crs`` unless it is ``"auto"``; then it
    is the UTM zone of the first layer's centre.
    """
    scenario = result.scenario
    conflicts = scenario.region_conflicts()
    if conflicts:
        raise ScenarioError(f"Scenario {scenario.name!r}: "
                            + "; ".join(message for _, message in conflicts) + ".")
    given = scenario.layers
    if given.population is None and not (given.residential is not None
                                         and scenario.demand is not None):
        raise LayerError(
            f"Scenario {scenario.name!r} has no population: add `layers: population:` (communities "
            "or compounds with 常住人口/60岁及以上人口), or `layers: residential:` together with a "
            "`demand:` section (census tables to spread over residential land)."
        )
    pre = result.preloaded
    if pre is not None and pre.layers:
        return _preloaded_layers(result, pre)
    target = _study_crs(scenario)
    for key, kind in L.LAYER_KINDS.items():
        settings = getattr(given, key, None)
        if settings is None:
            continue
        gdf = load_layer(settings, kind=kind, scenario=scenario, target_crs=target, name=key)
        if target is None:
            target = pyproj.CRS.from_user_input(gdf.crs)
        result.layers[key] = gdf
    result.crs = target
    return None


def _preloaded_layers(result: RunResult, pre) -> str | None:
    """The layers step with layers already read (`Preloaded`): checked, not read again."""
    if pre.crs is None:
        raise LayerError("Preloaded layers need their CRS (Preloaded.crs): the study's "
                         "metric CRS they are all in.")
    crs = pyproj.CRS.from_user_input(pre.crs)
    for key in L.LAYER_KINDS:
        gdf = pre.layers.get(key)
        if gdf is None:
            continue
        if gdf.crs is None or not pyproj.CRS.from_user_input(gdf.crs).equals(crs):
            raise LayerError(f"Preloaded layer {key!r} is in {gdf.crs}, not in the study CRS "
                             f"{crs.to_string()}; reproject it first.")
        result.layers[key] = gdf
    result.crs = crs
    return None


# --------------------------------------------------------------------------- demand
def _banded(table) -> bool:
    return all(c in table.columns for c in DM.BAND_COLUMNS)


def _census_tables(result: RunResult):
    """The census with its older groups, the higher-level table, and each area's parent.

    A census of totals takes its older groups from ``shares_from`` (by each
    area's ``shares_by`` area) or the assumed ``older_share_*`` values
    (`planner.demand.older_groups`).
    """
    s, scen = result.scenario.demand, result.scenario
    pre = result.preloaded.tables if result.preloaded is not None else {}
    table = pre.get("census")  # a batch part's rows, read once by its worker
    if table is None:
        table = DM.read_census(scen.resolve(s.census), key=s.table_key, trust=s.trust,
                               sheet=s.sheet)
    higher = parent = None
    if s.shares_from is not None:
        higher = DM.read_census(scen.resolve(s.shares_from), trust=s.trust)
    if higher is not None and not _banded(table):
        by_location = result.layers.get("districts") if s.area_layer != "districts" else None
        parent = DM.parent_areas(table, result.layers.get(s.area_layer), by=s.shares_by,
                                 area_key=s.area_key, parents=by_location)
    assumed = {g: v for g, v in (("pop_60plus", s.older_share_60plus),
                                 ("pop_65plus", s.older_share_65plus),
                                 ("pop_80plus", s.older_share_80plus)) if v is not None}
    return DM.older_groups(table, higher=higher, parent=parent, assumed=assumed), higher, parent


@step
def demand(result: RunResult) -> str | None:
    """Census to population units, and older residents by plan year.

    Without a ``population`` layer (and ``use_for_population``) the census is
    spread over what ``demand.spread_by`` names: ``layers["residential"]``
    (`planner.demand.estimate_population`), residential buildings by floor
    area (`planner.demand.allocate_to_buildings`) or population-grid cells
    (`planner.demand.allocate_to_grid`); with one, its missing older groups
    come from its area's shares (`planner.demand.fill_groups`) and, with a
    grid or buildings, ``tables["demand_by_unit"]`` puts its counts beside
    theirs.  A grid without a census makes the population layer from its
    own counts (`planner.demand.grid_points`).  Stores
    ``tables["demand_projection"]``, ``tables["demand_areas"]`` and
    ``tables["demand_columns"]``.
    """
    s = result.scenario.demand
    if s is None:
        return "no `demand:` section in the scenario"
    if s.census is None and s.grid is None:
        return "no census table (demand.census)"
    scen = result.scenario
    raster = _read_grid(result) if s.grid is not None else None
    buildings = _read_buildings(result) if s.buildings is not None else None
    area_col = "district" if s.area_layer == "districts" else "township"
    areas = result.layers.get(s.area_layer)
    population = result.layers.get("population")
    if s.census is None:
        return _demand_from_grid(result, raster, areas, area_col)
    table, higher, parent = _census_tables(result)
    pre = result.preloaded.tables if result.preloaded is not None else {}
    previous = pre.get("census_previous")
    if previous is None and s.census_previous is not None:
        previous = DM.read_census(scen.resolve(s.census_previous), key=s.table_key,
                                  trust=s.trust, sheet=s.sheet)
    life = DM.read_life_table(scen.resolve(s.life_table)) if s.life_table else None
    if population is None and s.use_for_population:
        if areas is None:
            raise DemandError(
                f"demand.area_layer is {s.area_layer!r} but no such layer was given: add "
                f"layers.{s.area_layer} (boundaries whose names match the census table)."
            )
        population, info = _estimate_population(result, table, areas, raster, buildings,
                                                area_col)
        estimated_base = True
    elif population is None:
        return "no population layer and demand.use_for_population is false"
    else:
        population, info = DM.fill_groups(population, table, areas, area_column=area_col,
                                          area_key=s.area_key, area_layer=s.area_layer,
                                          source=str(s.census))
        estimated_base = False
        info = _compare_sources(result, population, info, raster, buildings, areas, table)
    # a census of totals projects at the level of its banded higher-level table
    proj_table, proj_col = table, area_col
    if higher is not None and parent is not None and _banded(higher):
        proj_table, proj_col = DM.older_groups(higher), s.shares_by
        population = population.assign(**{proj_col: population[area_col].map(parent)})
    result.layers["population"] = population
    proj = DM.project_areas(proj_table, method=s.method, previous=previous, life_table=life,
                            migration=s.net_migration, base_year=s.base_year,
                            plan_years=list(s.plan_years), on_missing="skip")
    result.tables["demand_projection"] = DM.project_units(
        population, proj, area_column=proj_col, estimated_base=estimated_base)
    result.tables["demand_areas"] = DM.area_projection_table(proj, lang=result.lang)
    result.tables["demand_columns"] = DM.projection_columns(
        info, proj, source=str(s.census_previous or s.life_table or s.census))
    return None


def _study_extent(result: RunResult):
    """One box around every loaded layer (in the study CRS), to read only that part of a grid."""
    import geopandas as gpd
    import shapely

    boxes = [shapely.box(*g.total_bounds) for g in result.layers.values()
             if isinstance(g, gpd.GeoDataFrame) and len(g) and g.crs is not None]
    if not boxes or result.crs is None:
        return None
    return gpd.GeoDataFrame(geometry=[shapely.envelope(shapely.union_all(boxes))],
                            crs=result.crs)


def _read_grid(result: RunResult) -> DM.PopulationRaster:
    g = result.scenario.demand.grid
    scen = result.scenario
    if g.files is not None:
        source = {k: [scen.resolve(p) for p in (v if isinstance(v, list) else [v])]
                  for k, v in g.files.items()}
    else:
        source = scen.resolve(g.path)
    return DM.read_population_raster(source, bands=g.bands, group=g.group, crs=g.crs,
                                     nodata=g.nodata, within=_study_extent(result))


def _read_buildings(result: RunResult):
    b = result.scenario.demand.buildings
    layer = load_layer(b, kind="residential", scenario=result.scenario, target_crs=result.crs,
                       name="demand.buildings")
    values = b.residential_values if b.residential_values is not None else \
        DM.RESIDENTIAL_VALUES
    out = DM.residential_buildings(
        layer, floor_area_column=b.floor_area_column, floors_column=b.floors_column,
        height_column=b.height_column, storey_height_m=b.storey_height_m,
        function_column=b.function_column, residential_values=values,
        default_floors=b.default_floors)
    out.attrs["source"] = str(result.scenario.resolve(b.path))
    return out


def _estimate_population(result: RunResult, table, areas, raster, buildings, area_col: str):
    """The population layer from the census spread by ``demand.spread_by``."""
    s = result.scenario.demand
    if s.spread_by == "residential":
        return DM.estimate_population(
            areas, table, result.layers.get("residential"), area_key=s.area_key,
            area_column=area_col, weight=s.weight, source=str(s.census), lang=result.lang)
    if s.spread_by == "buildings":
        est = DM.allocate_to_buildings(areas, table, buildings, area_key=s.area_key)
        keep = ("floor_area_m2",)
        est = est.rename(columns={"weight": "floor_area_m2"})
    else:
        est = DM.allocate_to_grid(areas, table, raster, area_key=s.area_key,
                                  weight_group=s.grid.weight_group, cell_m=s.grid.cell_m)
        keep = ("cells",)
    pop, info = DM.population_units(est.to_crs(result.crs), area_column=area_col, areas=areas,
                                    area_key=s.area_key, lang=result.lang, keep=keep)
    return pop, info


def _demand_from_grid(result: RunResult, raster, areas, area_col: str) -> str | None:
    """No census: a given population layer is compared with the grid; else the grid's
    own counts become the population layer."""
    s = result.scenario.demand
    population = result.layers.get("population")
    if population is not None:
        info = _compare_sources(result, population, _no_columns(), raster, None, None, None)
        result.tables["demand_columns"] = info
        return None
    if not s.use_for_population:
        return "no census table and demand.use_for_population is false"
    pts = DM.grid_points(raster, cell_m=s.grid.cell_m, areas=areas, area_key=s.area_key,
                         crs=result.crs)
    label = "格网" if result.lang == "zh" else "grid"
    pts["name"] = [f"{a} {label} {b}".strip() for a, b in
                   zip(pts["area"] if "area" in pts else [""] * len(pts), pts["source_id"],
                       strict=True)]
    if "area" in pts:
        pts = pts.rename(columns={"area": area_col})
    result.layers["population"] = pts
    result.tables["demand_columns"] = pd.DataFrame(
        [{"layer": "population", "column": c, **v}
         for c, v in pts.attrs["demand_columns"].items()],
        columns=["layer", "column", "estimated", "method", "source"])
    return None


def _no_columns() -> pd.DataFrame:
    return pd.DataFrame(columns=["layer", "column", "estimated", "method", "source"])


def _compare_sources(result: RunResult, population, info, raster, buildings, areas, table):
    """``tables["demand_by_unit"]`` for a given population layer (polygons); the estimated
    columns it adds are appended to ``info``."""
    if raster is None and buildings is None:
        return info
    if not population.geom_type.isin(["Polygon", "MultiPolygon"]).all():
        warnings.warn(PlannerWarning(
            "demand: the population layer is not polygons, so the grid and "
            "buildings cannot be summed per unit (no demand_by_unit table).",
            "需求：人口单元图层不是面，无法按单元汇总网格人口和建筑估算的人口"
            "（不生成 demand_by_unit 表）。"), stacklevel=3)
        return info
    s = result.scenario.demand
    by_unit = DM.demand_by_unit(
        population, raster=raster, areas=areas, table=table, buildings=buildings,
        area_key=s.area_key, weight_group=s.grid.weight_group if s.grid else None)
    result.tables["demand_by_unit"] = by_unit
    rows = pd.DataFrame([{"layer": "demand_by_unit", "column": c, **v}
                         for c, v in by_unit.attrs["demand_columns"].items()],
                        columns=["layer", "column", "estimated", "method", "source"])
    return pd.concat([info, rows], ignore_index=True) if len(info) else rows


# --------------------------------------------------------------------------- network
def _build_network(s, path: Path | None, crs, region: str = "china") -> N.WalkNetwork:
    opts = N.NetworkOptions(
        speed_mps=s.speed_mps, profile=s.profile, exclude_classes=s.exclude_classes,
        include_classes=s.include_classes, avoid_steps=s.avoid_steps,
        min_component_share=s.min_component_share, crs=crs, crossing_delay_s=s.crossing_delay_s)
    if s.source == "lines":
        return N.from_lines(path, join_tolerance_m=s.join_tolerance_m, layer=s.layer,
                            coord_system=s.coord_system, class_column=s.class_column,
                            name_column=s.name_column, options=opts, region=region,
                            where=s.where)
    if s.source == "osm":
        return N.from_osm_file(path, options=opts)
    if s.source == "graphml":
        # None keeps a saved network's own crossing delays
        return N.from_graphml(path, options=opts.replace(
            crossing_delay_s=s.crossing_delay_s or None))
    if s.source == "osmnx_place":
        if not s.place:
            raise NetworkError("`network.source: osmnx_place` needs `network.place`.")
        return N.download_osm(place=s.place, options=opts)
    if s.bbox is None:
        raise NetworkError("`network.source: osmnx_bbox` needs `network.bbox`.")
    return N.download_osm(bbox=s.bbox, options=opts)


@step
def network(result: RunResult) -> str | None:
    """Build the walk network from the scenario's source.

    Stores ``result.artifacts["network"]`` (`WalkNetwork`),
    ``result.layers["network_edges"]`` and ``result.tables["network_report"]``.
    """
    s = result.scenario.network
    if s is None:
        return "no `network:` section in the scenario"
    path = result.scenario.resolve(s.path)
    given = result.preloaded.network if result.preloaded is not None else None
    if isinstance(given, N.WalkNetwork):
        net = given
    elif given is not None:
        if s.source != "lines":
            raise NetworkError(f"Preloaded road lines need `network.source: lines`, not "
                               f"{s.source!r}; preload a built WalkNetwork instead.")
        net = _build_network(s, given, result.crs, result.scenario.region)
    elif s.source in ("lines", "osm", "graphml") and path is None:
        raise NetworkError(
            f"`network.source` is {s.source!r} but `network.path` is not set. Give the path of "
            "the road file (relative to the scenario file)."
        )
    else:
        net = _build_network(s, path, result.crs, result.scenario.region)
    if result.crs is None:
        result.crs = net.crs
    result.artifacts["network"] = net
    result.layers["network_edges"] = net.edges
    result.tables["network_report"] = N.report_table(net, lang=result.lang)
    return None


# --------------------------------------------------------------------------- checks
#: Layers whose datum is checked: references (boundaries, population) first, then points.
_DATUM_LAYERS = ("townships", "districts", "population", "facilities", "candidates", "gates")


def _lonlat_source(gdf) -> bool:
    """Whether a layer came from longitude/latitude (only then can its datum be another)."""
    src = gdf.attrs.get("source_crs")
    return src is None or pyproj.CRS.from_user_input(src).is_geographic


def _check_datums(result: RunResult, net) -> None:
    """`planner.checks.check_datum` on every loaded layer; a layer found off is no reference."""
    lay, given = result.layers, result.scenario.layers
    refs = {"townships": lay.get("townships"), "population": lay.get("population")}
    fits = {}
    for key in _DATUM_LAYERS:
        settings, gdf = getattr(given, key, None), lay.get(key)
        if settings is None or gdf is None or not len(gdf) or not _lonlat_source(gdf):
            continue
        usable = {k: (None if k in fits and fits[k].suggested else v) for k, v in refs.items()}
        fits[key] = CK.check_datum(gdf, layer=key, declared=settings.coord_system, network=net,
                                   townships=usable["townships"],
                                   population=usable["population"], lang=result.lang)
    result.artifacts["datum_fits"] = fits


def _residents(result: RunResult, net):
    """The population units snapped (compound gates included), or None without them."""
    pop = result.layers.get("population")
    if net is None or pop is None or not len(pop):
        return None
    with warnings.catch_warnings():  # unmatched gates: the access step reports them
        warnings.simplefilter("ignore", PlannerWarning)
        return A.snap_units(net, pop, gates=result.layers.get("gates"),
                            max_snap_m=_max_snap_m(result.scenario), warn=False)


def _flag_outside(result: RunResult, area: CK.StudyArea, net) -> None:
    """``in_study_area`` / ``excluded`` on facilities and candidates (reach only when needed)."""
    acc = result.scenario.access or AccessSettings()
    residents = None
    for key in ("facilities", "candidates"):
        gdf = result.layers.get(key)
        if gdf is None or not len(gdf):
            continue
        if residents is None and not area.holds(gdf).all():
            residents = _residents(result, net)
        result.layers[key] = CK.flag_study_area(
            gdf, area, network=net, residents=residents, cutoff_min=acc.cutoff_min,
            max_snap_m=_max_snap_m(result.scenario), what=key)


@step
def checks(result: RunResult) -> str | None:
    """Checks on the data before the long steps (`planner.checks`); nothing is moved.

    The datum of every layer against the network and the named townships /
    communities; the study area (``layers["study_area"]``, the union of the
    boundary layers, else the network's extent plus a buffer) and the
    layers that miss it or the network; stacked geocodes and township names
    that disagree with the township polygons.  Facilities and candidates get
    ``in_study_area`` and ``excluded`` (and facilities ``stack_group`` and
    ``geocode_fallback``); later steps use `planner.checks.in_use` rows for
    walking access and `planner.checks.counted` rows for counts and norms.
    """
    lay, lang = result.layers, result.lang
    if not lay:
        return "no layers"
    net = result.artifacts.get("network")
    _check_datums(result, net)
    area = CK.study_area({k: lay.get(k) for k in ("townships", "districts")}, network=net,
                         buffer_m=STUDY_AREA_BUFFER_M)
    inputs = {k: lay[k] for k in L.LAYER_KINDS if k in lay}
    CK.check_overlap(inputs, network=net, area=area, max_snap_m=_max_snap_m(result.scenario),
                     lang=lang)
    towns = lay.get("townships")
    fac = lay.get("facilities")
    if fac is not None and len(fac):
        lay["facilities"] = CK.check_stacked(
            fac, townships=towns, accept=result.scenario.layers.facilities.accept_stacked,
            what="facilities")
    for key in ("facilities", "population"):
        if towns is not None and lay.get(key) is not None:
            CK.township_mismatch(lay[key], towns, what=key)
    if area is None:
        return None
    lay["study_area"] = area.to_frame()
    result.artifacts["study_area"] = area
    _flag_outside(result, area, net)
    return None


# --------------------------------------------------------------------------- access
def with_nearby(own, nearby):
    """``own`` rows first, then ``nearby`` rows, as one frame; and the number of own rows.

    The ``*_nearby`` layers (neighbours across the study area's border) join
    the walking-time and 2SFCA computations; results are kept for the own rows.
    """
    n_own = 0 if own is None else len(own)
    if nearby is None or len(nearby) == 0:
        return own, n_own
    if own is None or n_own == 0:
        return nearby, 0
    import pandas as pd

    return pd.concat([own, nearby], ignore_index=True), n_own


def _check_nearby_demand(result: RunResult, column: str) -> None:
    near = result.layers.get("population_nearby")
    if near is None or not len(near):
        return
    import pandas as pd

    n_bad = (int(pd.to_numeric(near[column], errors="coerce").isna().sum())
             if column in near.columns else len(near))
    if n_bad:
        warnings.warn(PlannerWarning(
            f"access: {n_bad} of {len(near)} nearby population units have no `{column}`; "
            "they load the facilities they share with this area as 0 in 2SFCA. Give the "
            f"nearby layer a `{column}` column.",
            f"可达性：周边 {len(near)} 个人口单元中有 {n_bad} 个没有 `{column}`，在 2SFCA 中"
            f"按 0 计入它们与本区共用的设施的需求。请为周边人口图层补充 `{column}` 列。"),
            stacklevel=2)


@step
def access(result: RunResult) -> str | None:
    """Walking times, coverage, blind spots, service areas and 2SFCA.

    Snaps facilities, then population (from compound gates where a ``gates``
    layer exists; units snap freely to every network component holding a
    facility and off other small fragments, see `planner.access.snap_points`),
    and stores ``population_access``, ``blind_spots`` and
    ``service_areas`` (layers), ``coverage`` and ``fca`` (tables), and the
    ``snap_population`` / ``snap_facilities`` artifacts.  Facilities of
    ``facilities_nearby`` count for walking times and 2SFCA supply (service
    areas are drawn for ``facilities`` only); residents of
    ``population_nearby`` load the facilities in 2SFCA.
    """
    net = result.artifacts.get("network")
    if net is None:
        return "no walk network (the network step did not build one)"
    lay = result.layers
    facilities = CK.rows_in_use(lay.get("facilities"))
    all_fac, n_own_fac = with_nearby(facilities, lay.get("facilities_nearby"))
    if all_fac is None:
        return "no facilities layer"
    if len(all_fac) == 0:
        return "no facility left in the analysis (see the warnings of the checks step)"
    population = lay.get("population")
    if population is None or len(population) == 0:
        return "no population layer"
    s = result.scenario.access or AccessSettings()
    rule = _snap_rule(result.scenario)
    snap_fac = A.snap_points(net, all_fac, warn=False, what="facilities", **rule)
    pop_all, n_pop = with_nearby(population, lay.get("population_nearby"))
    snap_all = A.snap_units(net, pop_all, gates=lay.get("gates"), warn=False,
                            main_components=A.served_components(net, snap_fac), **rule)
    snap_pop = snap_all if n_pop == len(pop_all) else snap_all.take(snap_all.unit < n_pop)
    for snapped, what in ((snap_pop, "population units"), (snap_fac, "facilities")):
        snapped.warn(what)
    result.artifacts["snap_population"] = snap_pop
    result.artifacts["snap_facilities"] = snap_fac
    pa = A.population_access(
        net, population, all_fac, thresholds_min=s.thresholds_min,
        cutoff_min=s.cutoff_min, snap_population=snap_pop, snap_facilities=snap_fac,
    )
    result.layers["population_access"] = pa
    result.tables["coverage"] = A.coverage_table(pa, thresholds_min=s.thresholds_min,
                                                 lang=result.lang)
    result.layers["blind_spots"] = A.blind_spots(pa, circle_min=s.circle_min,
                                                 eps_m=s.blind_spot_eps_m)
    if s.service_areas and n_own_fac:
        result.layers["service_areas"] = A.service_areas(
            net, snap_fac.take(np.arange(n_own_fac)), minutes=s.thresholds_min,
            buffer_m=s.service_area_buffer_m, tiers=A.tier_values(facilities), lang=result.lang,
            progress=result.bar_label("service_areas"))
    if s.fca is not None:
        f = s.fca
        _check_nearby_demand(result, f.demand)
        table = A.fca(
            net, pop_all, all_fac, supply=f.supply, demand=f.demand,
            catchment_min=f.catchment_min, decay=f.decay, snap_population=snap_all,
            snap_facilities=snap_fac)
        result.tables["fca"] = table.iloc[:n_pop].reset_index(drop=True)
    return None


# --------------------------------------------------------------------------- norms
@step
def norms(result: RunResult) -> str | None:
    """Check the scenario's rule set on the run's layers.

    Stores ``result.tables["norm_checks"]``, ``result.layers["township_norms"]``
    (when a townships layer exists) and ``result.artifacts["rules"]``.
    """
    s = result.scenario.norms
    if s is None:
        return "no `norms:` section in the scenario"
    lay = result.layers
    if lay.get("population") is None and lay.get("facilities") is None:
        return "needs a population or facilities layer"
    name = s.rules
    rules = NR.load_rules(result.scenario.resolve(Path(name)) if NR.is_rule_file(name) else name,
                          plan_year=s.plan_year)
    table, towns = NR.check_study(
        rules, population=lay.get("population"), facilities=CK.rows_counted(lay.get("facilities")),
        townships=lay.get("townships"), districts=lay.get("districts"),
        access=lay.get("population_access"), lang=result.lang)
    result.tables["norm_checks"] = table
    result.artifacts["rules"] = rules
    if towns is not None:
        result.layers["township_norms"] = towns
    return None


# --------------------------------------------------------------------------- locate
def tier_model(ms: ModelSettings | None) -> LC.TierModel | None:
    """The library's `planner.locate.TierModel` for a scenario's model settings."""
    if ms is None:
        return None
    return LC.TierModel(model=ms.model, p=ms.p, weight=ms.weight, coverage_min=ms.coverage_min,
                        target_share=ms.target_share, capacity=ms.capacity, method=ms.method,
                        time_limit_s=ms.time_limit_s,
                        generate_candidates=ms.generate_candidates)


@step
def locate(result: RunResult) -> str | None:
    """Propose township centres and community stations (`planner.locate.propose_sites`).

    Stores ``layers["proposed_sites"]``, ``tables["proposed_sites"]``,
    ``tables["coverage_before_after"]``, ``tables["uncoverable_units"]`` (the
    units no station can cover, when there are some), ``artifacts["locate_results"]``
    (the `LocateResult` of every solve) and ``artifacts["site_plan"]`` (the
    `planner.locate.SitePlan`, whose ``time_min_after``, each unit's walk once
    the sites exist, the print maps draw through ``Study.time_min_after``).
    """
    s = result.scenario.locate
    if s is None:
        return "no `locate:` section in the scenario"
    net = result.artifacts.get("network")
    if net is None:
        return "no walk network (the network step did not build one)"
    pop = result.layers.get("population")
    if pop is None or len(pop) == 0:
        return "no population layer"
    acc = result.scenario.access or AccessSettings()
    lay = result.layers
    plan = LC.propose_sites(
        net, pop, facilities=with_nearby(CK.rows_in_use(lay.get("facilities")),
                                         lay.get("facilities_nearby"))[0],
        candidates=CK.rows_in_use(lay.get("candidates")),
        townships=lay.get("townships"), gates=lay.get("gates"),
        forbidden=[lay.get("water"), lay.get("parks")],
        township_centre=tier_model(s.township_centre),
        community_station=tier_model(s.community_station),
        norm_checks=result.tables.get("norm_checks"), circle_min=acc.circle_min,
        cutoff_min=acc.cutoff_min, thresholds_min=acc.thresholds_min,
        max_snap_m=_max_snap_m(result.scenario), seed=s.seed, threads=s.threads,
        snap_population=result.artifacts.get("snap_population"),
        snap_facilities=result.artifacts.get("snap_facilities"), progress=result.progress)
    if plan.reason:
        return plan.reason
    result.layers["proposed_sites"] = plan.sites
    result.tables["proposed_sites"] = plan.table
    result.tables["coverage_before_after"] = plan.coverage
    if plan.uncoverable is not None and len(plan.uncoverable):
        result.tables["uncoverable_units"] = plan.uncoverable
    result.artifacts["locate_results"] = plan.results
    result.artifacts["site_plan"] = plan
    return None


# --------------------------------------------------------------------------- outputs
@step
def outputs(result: RunResult) -> str | None:
    """Write every layer (``layers.gpkg``) and table (``tables/<name>.csv``) of the run."""
    return O.write_layers_and_tables(result)


@step
def maps(result: RunResult) -> str | None:
    """Build the web map into ``result.artifacts["map"]`` and write ``map.html``."""
    from planner.pipeline import presenting

    return presenting.write_map(result)


@step
def report(result: RunResult) -> str | None:
    """Write print maps, ``report.html`` and ``planner.xlsx`` (each when switched on)."""
    from planner.pipeline import presenting

    return presenting.write_report(result)


#: The run order: (name, step function).
STEPS: list[tuple[str, StepFunction]] = [
    ("layers", layers),
    ("demand", demand),
    ("network", network),
    ("checks", checks),
    ("access", access),
    ("norms", norms),
    ("locate", locate),
    ("outputs", outputs),
    ("maps", maps),
    ("report", report),
]
