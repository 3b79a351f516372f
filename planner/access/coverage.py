"""Who is inside the circle: walking times per unit, coverage tables, blind spots.

`population_access` gives every population unit its walk to the nearest
facility of each tier (minutes; NaN = beyond the cut-off or in another
network component), `coverage_table` sums the population within each
threshold, overall and per district and township, and `blind_spots` groups
the older residents outside the circle into gap areas.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
import shapely

from planner._errors import LayerError, PlannerWarning
from planner.access.routing import nearest_times
from planner.access.snap import (
    Snapped,
    point_geometries,
    served_components,
    snap_points,
    snap_units,
)
from planner.defaults import (
    BLIND_SPOT_EPS_M,
    CIRCLE_MIN,
    CUTOFF_MIN,
    MAX_SNAP_M,
    THRESHOLDS_MIN,
)

if TYPE_CHECKING:
    import geopandas as gpd

    from planner.network import WalkNetwork

__all__ = ["MAIN_TIERS", "blind_spots", "coverage_table", "population_access", "tier_values"]

#: Tiers that always get a ``time_min_<tier>`` column (NaN when the layer has none).
MAIN_TIERS: tuple[str, ...] = ("district_home", "township_centre", "community_station")


# --------------------------------------------------------------------------- population access
def _unit_min(seconds: np.ndarray, nearest: np.ndarray, snapped: Snapped
              ) -> tuple[np.ndarray, np.ndarray]:
    """Per unit: the smallest time over its points, that point's nearest source and snap."""
    unit = np.arange(len(snapped)) if snapped.unit is None else snapped.unit
    n = snapped.n_units
    order = np.lexsort((seconds, unit))
    first = np.ones(order.size, bool)
    first[1:] = unit[order][1:] != unit[order][:-1]
    pick = order[first]
    out_t = np.full(n, np.inf)
    out_i = np.full(n, -1, np.int64)
    out_t[unit[pick]] = seconds[pick]
    out_i[unit[pick]] = nearest[pick]
    return out_t, out_i


def _minutes(seconds: np.ndarray) -> np.ndarray:
    m = seconds / 60.0
    m[~np.isfinite(m)] = np.nan
    return m


def _tname(t: float) -> str:
    return f"within_{t:g}min"



def tier_values(facilities: pd.DataFrame) -> np.ndarray:
    """The tier of each facility as text: its ``tier`` column, ``"other"`` where missing.

    Without a ``tier`` column every facility is ``"other"``.  These are the
    tiers `population_access` reports on, and what `service_areas` expects
    as its ``tiers`` argument.
    """
    if "tier" in facilities.columns:
        return facilities["tier"].fillna("other").astype(str).to_numpy()
    return np.full(len(facilities), "other", dtype=object)


def population_access(
    net: WalkNetwork,
    population: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame,
    *,
    gates: gpd.GeoDataFrame | None = None,
    thresholds_min: Sequence[float] = THRESHOLDS_MIN,
    cutoff_min: float = CUTOFF_MIN,
    max_snap_m: float = MAX_SNAP_M,
    snap_population: Snapped | None = None,
    snap_facilities: Snapped | None = None,
    warn: bool = True,
) -> gpd.GeoDataFrame:
    """Walking time from every population unit to the nearest facility of each tier.

    Parameters
    ----------
    net
        The `WalkNetwork` (metric CRS).
    population
        Population units (canonical columns; polygons or points).
    facilities
        Facilities with a ``tier`` column (`planner._schema.TIERS`).
    gates
        Optional compound gates (see `snap_units`).
    thresholds_min
        Minutes for the ``within_<T>min`` columns.
    cutoff_min
        Search cut-off in minutes; farther is NaN (unreachable).
    max_snap_m
        Snap warning threshold, metres.
    snap_population, snap_facilities
        Already snapped points (skip snapping).  Facilities are snapped
        first; units then snap freely to every network component holding a
        facility, and off other small fragments (`snap_points`).
    warn
        Issue a `PlannerWarning` listing the units that reach no facility
        within ``cutoff_min`` (``False`` where that is expected, e.g. when
        ``facilities`` are only the proposed sites).

    Returns
    -------
    GeoDataFrame
        ``population`` plus ``time_min_<tier>`` for the three main tiers
        (NaN where the layer has no facility of that tier) and any other tier
        present, ``time_min_any``, ``nearest_id`` (the nearest facility of
        any tier), ``snap_m`` and ``within_<T>min`` (``time_min_any <= T``).
        Minutes; NaN = not reachable within ``cutoff_min``.  With no
        facility at all every unit is unreached, with a `PlannerWarning`.
    """
    if snap_facilities is None:
        snap_facilities = snap_points(net, facilities, max_snap_m=max_snap_m, what="facilities")
    if snap_population is None:
        snap_population = snap_units(net, population, gates=gates, max_snap_m=max_snap_m,
                                     main_components=served_components(net, snap_facilities))
    cutoff_s = float(cutoff_min) * 60.0
    tiers = tier_values(facilities)
    out = population.copy()
    names = list(MAIN_TIERS) + [t for t in dict.fromkeys(tiers) if t not in MAIN_TIERS]
    for tier in names:
        mask = tiers == tier
        if not mask.any():
            out[f"time_min_{tier}"] = np.nan
            continue
        t, _ = nearest_times(net, snap_facilities.take(mask), snap_population, cutoff_s=cutoff_s)
        t, _ = _unit_min(t, np.zeros(t.size, np.int64), snap_population)
        out[f"time_min_{tier}"] = _minutes(t)
    t, i = nearest_times(net, snap_facilities, snap_population, cutoff_s=cutoff_s)
    t, i = _unit_min(t, i, snap_population)
    out["time_min_any"] = _minutes(t)
    ids = np.asarray(snap_facilities.ids, dtype=object)
    out["nearest_id"] = (np.where(i >= 0, ids[np.maximum(i, 0)], None) if ids.size
                         else np.full(len(out), None, dtype=object))
    unit = np.arange(len(snap_population)) if snap_population.unit is None else snap_population.unit
    snap_m = np.full(snap_population.n_units, np.inf)
    np.minimum.at(snap_m, unit, snap_population.dist_m)
    out["snap_m"] = snap_m
    for thr in sorted(thresholds_min):
        out[_tname(thr)] = out["time_min_any"].to_numpy() <= thr
    if len(snap_facilities) == 0 and len(out):
        warnings.warn(PlannerWarning(
            f"The facilities layer is empty, so none of the {len(out)} population units "
            "reaches a facility: every walking time is NaN and every unit is outside every "
            "circle. Check the facilities layer (its path, layer name or filter).",
            f"设施图层为空，{len(out)} 个人口单元都到不了任何设施：步行时间全部为空值（NaN），"
            "所有单元都不在任何步行圈内。请检查设施图层（路径、图层名或筛选条件）。"),
            stacklevel=2)
    elif warn:
        _warn_unreached(out, cutoff_min)
    return out


def _warn_unreached(pa: pd.DataFrame, cutoff_min: float) -> None:
    """Warn about the units of `population_access` that reach no facility."""
    lost = pa["time_min_any"].isna().to_numpy()
    if lost.any():
        ids = pa["id"] if "id" in pa.columns else pa.index
        shown = list(map(str, list(ids[lost])[:20]))
        more = f" … (+{int(lost.sum()) - 20})" if lost.sum() > 20 else ""
        warnings.warn(PlannerWarning(
            f"{int(lost.sum())} population units reach no facility within "
            f"{cutoff_min:g} min (another network component or too far): "
            f"{', '.join(shown)}{more}. They count as outside every circle.",
            f"{int(lost.sum())} 个人口单元在 {cutoff_min:g} 分钟内到不了任何设施（位于路网的"
            f"另一连通部分或距离太远）：{'、'.join(shown)}{more}。它们按不在任何步行圈内计。"),
            stacklevel=3)


# --------------------------------------------------------------------------- coverage
_ALL = {"zh": "全部", "en": "All"}


def coverage_table(
    population_access: pd.DataFrame,
    *,
    thresholds_min: Sequence[float] = THRESHOLDS_MIN,
    tiers: Sequence[str] | None = None,
    lang: Literal["zh", "en"] = "zh",
) -> pd.DataFrame:
    """Population and older population within T minutes, overall and by area.

    Parameters
    ----------
    population_access
        Output of `population_access`.
    thresholds_min
        Minutes.
    tiers
        Tiers to report (``"any"`` = nearest facility of any tier).  Default:
        ``any`` and every tier with at least one reachable unit.
    lang
        Language of the overall row's area name (``全部`` / ``All``).

    Returns
    -------
    DataFrame
        Long form, one row per (tier, minutes, scope, area):
        ``tier, minutes, scope`` (``overall`` | ``district`` | ``township``),
        ``area``, ``district`` (for township rows, when known), ``n_units``,
        ``n_units_within``, ``population``, ``population_within``,
        ``population_share``, and the same three for ``pop_60plus`` when the
        layer has it.  Shares are 0..1 (NaN where the area has nobody; a
        `PlannerWarning` when a count is 0 in every unit).
    """
    pa = population_access
    if tiers is None:
        tiers = ["any"] + [
            c[len("time_min_"):] for c in pa.columns
            if c.startswith("time_min_") and c != "time_min_any" and pa[c].notna().any()
        ]
    counts = [c for c in ("population", "pop_60plus") if c in pa.columns]
    base = pd.DataFrame({c: pd.to_numeric(pa[c], errors="coerce").fillna(0.0).to_numpy()
                         for c in counts})
    base["n_units"] = 1
    _warn_nobody_counted(base, counts)
    scopes: list[tuple[str, list[str]]] = [("overall", [])]
    if "district" in pa.columns:
        base["district"] = pa["district"].to_numpy()
        scopes.append(("district", ["district"]))
    if "township" in pa.columns:
        base["township"] = pa["township"].to_numpy()
        scopes.append(("township", ["district", "township"] if "district" in pa.columns
                       else ["township"]))
    frames = []
    for tier in tiers:
        col = f"time_min_{tier}"
        if col not in pa.columns:
            raise LayerError(f"population_access has no column {col!r}; tiers available: "
                             f"{[c[9:] for c in pa.columns if c.startswith('time_min_')]}")
        time = pa[col].to_numpy(dtype=float)
        for thr in sorted(thresholds_min):
            within = time <= thr
            df = base.copy()
            for c in counts + ["n_units"]:
                df[f"{c}_within"] = np.where(within, df[c], 0)
            for scope, keys in scopes:
                cols = counts + ["n_units"] + [f"{c}_within" for c in counts + ["n_units"]]
                if keys:
                    g = df.groupby(keys, dropna=False, sort=True)[cols].sum().reset_index()
                    g["area"] = g[keys[-1]]
                else:
                    g = df[cols].sum().to_frame().T
                    g["area"] = _ALL[lang]
                if scope != "township":
                    g["district"] = g["area"] if scope == "district" else None
                g["tier"], g["minutes"], g["scope"] = tier, float(thr), scope
                frames.append(g)
    out = pd.concat(frames, ignore_index=True)
    for c in counts:
        with np.errstate(invalid="ignore", divide="ignore"):
            out[f"{c}_share"] = np.where(out[c] > 0, out[f"{c}_within"] / out[c], np.nan)
    order = ["tier", "minutes", "scope", "area", "district", "n_units", "n_units_within"]
    for c in counts:
        order += [c, f"{c}_within", f"{c}_share"]
    out["n_units"] = out["n_units"].astype(int)
    out["n_units_within"] = out["n_units_within"].astype(int)
    return out[order]


def _warn_nobody_counted(base: pd.DataFrame, counts: list[str]) -> None:
    """Warn when a count column is 0 (or missing) in every unit: its shares are NaN."""
    for c in counts:
        if len(base) and not (base[c] > 0).any():
            warnings.warn(PlannerWarning(
                f"`{c}` is 0 or missing in every one of the {len(base)} population units, so "
                f"the share of them within each walking time is not assessable (NaN in the "
                f"coverage table, shown as \"–\" in the report), and every result weighted by "
                f"`{c}` (blind spots, site proposals) counts nobody. Check that the column "
                "holds the residents of that age group (its source column and the census "
                "year).",
                f"全部 {len(base)} 个人口单元的 `{c}` 都为 0 或缺失，因此无法评估其在各步行时间内的"
                "覆盖比例（覆盖表中为空值 NaN，报告中显示为“–”），凡按 "
                f"`{c}` 加权的结果（服务盲区、选址建议）都不计任何人。请检查该列是否为该年龄段的"
                "常住人口（其来源列和普查年份）。"), stacklevel=3)


# --------------------------------------------------------------------------- blind spots
def blind_spots(
    population_access: gpd.GeoDataFrame,
    *,
    circle_min: float = CIRCLE_MIN,
    eps_m: float = BLIND_SPOT_EPS_M,
    min_pop_60plus: float = 1.0,
    time_column: str = "time_min_any",
) -> gpd.GeoDataFrame:
    """Gap areas: older residents outside every circle, grouped with DBSCAN.

    Units whose ``time_column`` exceeds ``circle_min`` (or is NaN,
    unreachable) and that house older residents are clustered with
    scikit-learn's DBSCAN on the gaps between their shapes (``eps_m`` metres;
    touching compounds are 0 m apart; sample weights = ``pop_60plus``, so a
    core needs ``min_pop_60plus`` older residents, rounded up, within
    ``eps_m``).  Units DBSCAN leaves as noise become
    gap areas of their own: no uncovered resident is dropped.

    Returns
    -------
    GeoDataFrame
        One row per gap area, largest ``pop_60plus`` first: ``gap_id`` (1..),
        ``n_units``, ``population``, ``pop_60plus``, ``time_min_nearest``
        (best unit's time, NaN if none reachable), ``n_unreachable``,
        ``unit_ids`` and ``township`` (most common) when known.  Geometry:
        union of the unit polygons (points: their convex hull buffered by
        ``eps_m / 2``).
    """
    import geopandas as gpd
    from sklearn.cluster import DBSCAN

    pa = population_access
    weight_col = "pop_60plus" if "pop_60plus" in pa.columns else "population"
    cols = ["gap_id", "n_units", "population", "pop_60plus", "township", "time_min_nearest",
            "n_unreachable", "unit_ids"]
    time = pa[time_column].to_numpy(dtype=float)
    w = pd.to_numeric(pa[weight_col], errors="coerce").fillna(0).to_numpy(float) \
        if weight_col in pa.columns else np.ones(len(pa))
    gap = ~(time <= circle_min) & (w > 0)
    if not gap.any():
        return gpd.GeoDataFrame({c: [] for c in cols}, geometry=[], crs=pa.crs)
    sub = pa.loc[gap].copy()
    _, ids = point_geometries(sub, what="population units")
    shape = np.asarray(sub.geometry.values, dtype=object)
    # distance between units = the gap between their shapes (0 for touching compounds),
    # as a sparse radius graph from an STRtree, for DBSCAN's precomputed metric
    i, j = shapely.STRtree(shape).query(shape, predicate="dwithin", distance=eps_m)
    dist = shapely.distance(shape[i], shape[j]) + 1e-9  # keep touching pairs stored
    graph = sp.csr_matrix((dist, (i, j)), shape=(len(shape), len(shape)))
    labels = DBSCAN(eps=eps_m + 1e-6, min_samples=max(1, int(np.ceil(min_pop_60plus))),
                    metric="precomputed").fit(graph, sample_weight=w[gap]).labels_
    noise = labels < 0
    labels[noise] = labels.max() + 1 + np.arange(noise.sum())
    sub["_gap"] = labels
    sub["_w"] = w[gap]
    sub["_id"] = ids
    sub["_unreach"] = ~np.isfinite(time[gap])
    is_pt = shapely.get_type_id(shape) == 0
    agg = {"unit_ids": ("_id", lambda s: ",".join(map(str, s))),
           "n_units": ("_w", "size"),
           "_weight": ("_w", "sum"),
           "time_min_nearest": (time_column, "min"),
           "n_unreachable": ("_unreach", "sum")}
    for c in ("population", "pop_60plus"):
        if c in sub.columns:
            agg[c] = (c, lambda s: pd.to_numeric(s, errors="coerce").sum())
    if "township" in sub.columns:
        agg["township"] = ("township", lambda s: s.mode().iloc[0] if s.notna().any() else None)
    table = sub.groupby("_gap").agg(**agg)
    geom = []
    for lab in table.index:
        m = labels == lab
        g = shape[m]
        if is_pt[m].all():
            geom.append(shapely.buffer(shapely.convex_hull(shapely.multipoints(g)), eps_m / 2))
        else:
            geom.append(shapely.union_all(np.where(is_pt[m], shapely.buffer(g, eps_m / 2), g)))
    out = gpd.GeoDataFrame(table.reset_index(drop=True), geometry=geom, crs=pa.crs)
    out = out.sort_values("_weight", ascending=False, kind="stable").reset_index(drop=True)
    out = out.drop(columns="_weight")
    out.insert(0, "gap_id", np.arange(1, len(out) + 1))
    keep = ["gap_id", "n_units"] + [c for c in ("population", "pop_60plus", "township")
                                     if c in out.columns]
    out = out[keep + ["time_min_nearest", "n_unreachable", "unit_ids", "geometry"]]
    out["n_unreachable"] = out["n_unreachable"].astype(int)
    return out


