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
import pyproj

from planner import access as A
from planner import demand as DM
from planner import layers as L
from planner import locate as LC
from planner import network as N
from planner import norms as NR
from planner._errors import DemandError, LayerError, NetworkError, PlannerWarning
from planner.defaults import MAX_SNAP_M
from planner.pipeline import outputs as O
from planner.pipeline.result import RunResult
from planner.pipeline.settings import AccessSettings, LayerSettings, ModelSettings, Scenario

__all__ = ["STEPS", "StepFunction", "access", "demand", "layers", "load_layer", "locate", "maps",
           "network", "norms", "outputs", "report", "step", "with_nearby"]

StepFunction = Callable[[RunResult], "str | None"]


def step(fn: StepFunction) -> StepFunction:
    """Collect the warnings ``fn`` raises on ``result.warnings`` and issue them again.

    Every warning (deprecations aside) is recorded once per message, in the
    order raised, then re-issued after the step so a notebook shows it.
    """

    @functools.wraps(fn)
    def wrapper(result: RunResult) -> str | None:
        before = len(result.warnings)
        outer = result._collecting
        result._collecting = True
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                warnings.filterwarnings("ignore", category=DeprecationWarning)
                warnings.filterwarnings("ignore", category=PendingDeprecationWarning)
                reason = fn(result)
        finally:
            result._collecting = outer
        seen = set(result.warnings[before:])
        for w in caught:
            msg = str(w.message)
            if msg not in seen:
                result.warnings.append(msg)
                seen.add(msg)
        for w in caught:  # show them to the caller too (a notebook prints them)
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        return reason

    wrapper.collects_warnings = True  # type: ignore[attr-defined]
    return wrapper


def _max_snap_m(scenario: Scenario) -> float:
    return scenario.network.max_snap_m if scenario.network is not None else MAX_SNAP_M


# --------------------------------------------------------------------------- layers
def load_layer(settings: LayerSettings, *, kind: str, scenario: Scenario,
               target_crs: pyproj.CRS | None, name: str | None = None):
    """Read a layer described in a scenario (its path relative to the scenario file)."""
    return L.read_layer(
        scenario.resolve(settings.path), kind=kind, columns=settings.columns,
        coord_system=settings.coord_system, encoding=settings.encoding, crs=settings.crs,
        layer=settings.layer, id_column=settings.id_column, lon_column=settings.lon_column,
        lat_column=settings.lat_column, sheet=settings.sheet, target_crs=target_crs, name=name,
        tiers=settings.tiers or None,
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
@step
def demand(result: RunResult) -> str | None:
    """Census to population units, and older residents by plan year.

    Without a ``population`` layer (and ``use_for_population``) the census is
    spread over ``layers["residential"]`` (`planner.demand.estimate_population`);
    with one, its missing older groups come from its area's shares
    (`planner.demand.fill_groups`).  Stores ``tables["demand_projection"]``,
    ``tables["demand_areas"]`` and ``tables["demand_columns"]``.
    """
    s = result.scenario.demand
    if s is None:
        return "no `demand:` section in the scenario"
    if s.census is None:
        return "no census table (demand.census)"
    scen = result.scenario
    pre = result.preloaded.tables if result.preloaded is not None else {}
    census = pre.get("census")
    if census is None:
        census = DM.read_census(scen.resolve(s.census), key=s.table_key, trust=s.trust)
    table = DM.older_groups(census)
    previous = pre.get("census_previous")
    if previous is None and s.census_previous is not None:
        previous = DM.read_census(scen.resolve(s.census_previous), key=s.table_key,
                                  trust=s.trust)
    life = DM.read_life_table(scen.resolve(s.life_table)) if s.life_table else None
    area_col = "district" if s.area_layer == "districts" else "township"
    areas = result.layers.get(s.area_layer)
    population = result.layers.get("population")
    if population is None and s.use_for_population:
        if areas is None:
            raise DemandError(
                f"demand.area_layer is {s.area_layer!r} but no such layer was given: add "
                f"layers.{s.area_layer} (boundaries whose names match the census table)."
            )
        population, info = DM.estimate_population(
            areas, table, result.layers.get("residential"), area_key=s.area_key,
            area_column=area_col, weight=s.weight, source=str(s.census), lang=result.lang)
        estimated_base = True
    elif population is None:
        return "no population layer and demand.use_for_population is false"
    else:
        population, info = DM.fill_groups(population, table, areas, area_column=area_col,
                                          area_key=s.area_key, area_layer=s.area_layer,
                                          source=str(s.census))
        estimated_base = False
    result.layers["population"] = population
    proj = DM.project_areas(table, method=s.method, previous=previous, life_table=life,
                            migration=s.net_migration, base_year=s.base_year,
                            plan_years=list(s.plan_years))
    result.tables["demand_projection"] = DM.project_units(
        population, proj, area_column=area_col, estimated_base=estimated_base)
    result.tables["demand_areas"] = DM.area_projection_table(proj, lang=result.lang)
    result.tables["demand_columns"] = DM.projection_columns(
        info, proj, source=str(s.census_previous or s.life_table or s.census))
    return None


# --------------------------------------------------------------------------- network
def _build_network(s, path, crs) -> N.WalkNetwork:
    opts = N.NetworkOptions(
        speed_mps=s.speed_mps, profile=s.profile, exclude_classes=s.exclude_classes,
        include_classes=s.include_classes, avoid_steps=s.avoid_steps,
        min_component_share=s.min_component_share, crs=crs, crossing_delay_s=s.crossing_delay_s)
    if s.source == "lines":
        return N.from_lines(path, join_tolerance_m=s.join_tolerance_m, layer=s.layer,
                            coord_system=s.coord_system, class_column=s.class_column,
                            name_column=s.name_column, options=opts)
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
        net = _build_network(s, given, result.crs)
    elif s.source in ("lines", "osm", "graphml") and path is None:
        raise NetworkError(
            f"`network.source` is {s.source!r} but `network.path` is not set. Give the path of "
            "the road file (relative to the scenario file)."
        )
    else:
        net = _build_network(s, path, result.crs)
    if result.crs is None:
        result.crs = net.crs
    result.artifacts["network"] = net
    result.layers["network_edges"] = net.edges
    result.tables["network_report"] = N.report_table(net, lang=result.lang)
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
        warnings.warn(
            f"access: {n_bad} of {len(near)} nearby population units have no `{column}`; "
            "they load the facilities they share with this area as 0 in 2SFCA. Give the "
            f"nearby layer a `{column}` column.", PlannerWarning, stacklevel=2)


@step
def access(result: RunResult) -> str | None:
    """Walking times, coverage, blind spots, service areas and 2SFCA.

    Snaps population (from compound gates where a ``gates`` layer exists)
    and facilities, and stores ``population_access``, ``blind_spots`` and
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
    facilities = lay.get("facilities")
    all_fac, n_own_fac = with_nearby(facilities, lay.get("facilities_nearby"))
    if all_fac is None or len(all_fac) == 0:
        return "no facilities layer"
    population = lay.get("population")
    if population is None or len(population) == 0:
        return "no population layer"
    s = result.scenario.access or AccessSettings()
    max_snap_m = _max_snap_m(result.scenario)
    pop_all, n_pop = with_nearby(population, lay.get("population_nearby"))
    snap_all = A.snap_units(net, pop_all, gates=lay.get("gates"), max_snap_m=max_snap_m,
                            warn=False)
    snap_pop = snap_all if n_pop == len(pop_all) else snap_all.take(snap_all.unit < n_pop)
    snap_fac = A.snap_points(net, all_fac, max_snap_m=max_snap_m, warn=False,
                             what="facilities")
    for snapped, what in ((snap_pop, "population units"), (snap_fac, "facilities")):
        snapped.warn_far(what)
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
            buffer_m=s.service_area_buffer_m, tiers=A.tier_values(facilities))
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
        rules, population=lay.get("population"), facilities=lay.get("facilities"),
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
    ``tables["coverage_before_after"]``, ``artifacts["locate_results"]`` and
    each unit's walk once the sites exist (``time_min_after`` in
    ``layers["population_after"]``, for the print maps).
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
        net, pop, facilities=with_nearby(lay.get("facilities"), lay.get("facilities_nearby"))[0],
        candidates=lay.get("candidates"),
        townships=lay.get("townships"), gates=lay.get("gates"),
        forbidden=[lay.get("water"), lay.get("parks")],
        township_centre=tier_model(s.township_centre),
        community_station=tier_model(s.community_station),
        norm_checks=result.tables.get("norm_checks"), circle_min=acc.circle_min,
        cutoff_min=acc.cutoff_min, thresholds_min=acc.thresholds_min,
        max_snap_m=_max_snap_m(result.scenario), seed=s.seed, threads=s.threads,
        snap_population=result.artifacts.get("snap_population"),
        snap_facilities=result.artifacts.get("snap_facilities"))
    if plan.reason:
        return plan.reason
    result.layers["proposed_sites"] = plan.sites
    result.tables["proposed_sites"] = plan.table
    result.tables["coverage_before_after"] = plan.coverage
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
    ("access", access),
    ("norms", norms),
    ("locate", locate),
    ("outputs", outputs),
    ("maps", maps),
    ("report", report),
]
