"""Capacity-aware accessibility: two-step floating catchment area (2SFCA / E2SFCA).

`fca_scores` works on any sparse cost matrix (demand x supply, seconds);
`fca` snaps the population and facility layers, builds that matrix on the
walk network (`planner.access.cost_matrix`) and returns one row per unit.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from planner._errors import LayerError, PlannerWarning
from planner.access.routing import cost_matrix
from planner.access.snap import Snapped, served_components, snap_points, snap_units
from planner.defaults import FCA_CATCHMENT_MIN, MAX_SNAP_M

if TYPE_CHECKING:
    import geopandas as gpd

    from planner.network import WalkNetwork

__all__ = ["Decay", "fca", "fca_scores"]

#: Distance decay of the catchment: none (2SFCA) or Dai's Gaussian (E2SFCA).
Decay = Literal["none", "gaussian"]


def _decay(seconds: np.ndarray, catchment_s: float, decay: Decay) -> np.ndarray:
    if decay == "none":
        return np.ones_like(seconds)
    # Dai (2010) Gaussian: 1 at distance 0, 0 at the catchment edge
    e = np.exp(-0.5)
    return (np.exp(-0.5 * (seconds / catchment_s) ** 2) - e) / (1.0 - e)


def fca_scores(
    cost: sp.csr_array,
    demand: np.ndarray,
    supply: np.ndarray,
    *,
    catchment_s: float,
    decay: Decay = "gaussian",
) -> tuple[np.ndarray, np.ndarray]:
    """Two-step floating catchment area (2SFCA / enhanced 2SFCA) scores.

    Step 1: each facility's supply-to-demand ratio
    ``R_j = S_j / sum_i W(d_ij) D_i`` over demand within the catchment;
    step 2: each demand unit's accessibility ``A_i = sum_j W(d_ij) R_j``.
    ``W`` is 1 (classic 2SFCA, ``decay="none"``) or Dai's (2010) Gaussian
    ``(exp(-d²/2d0²) - exp(-1/2)) / (1 - exp(-1/2))`` (E2SFCA).

    Parameters
    ----------
    cost
        Sparse seconds, shape ``(n_demand, n_supply)`` (`cost_matrix`; stored
        entries = reachable pairs, explicit zeros included).
    demand, supply
        Demand per unit (e.g. ``pop_60plus``) and supply per facility (beds,
        floor area m²).
    catchment_s
        Catchment, seconds; entries above it are ignored.

    Returns
    -------
    accessibility, ratio
        Supply per demand person for each unit, and ``R_j`` per facility
        (NaN for a facility with no demand in reach).
    """
    c = sp.coo_array(cost)
    inside = c.data <= catchment_s
    r, j, d = c.row[inside], c.col[inside], c.data[inside]
    w = _decay(d, catchment_s, decay)
    demand = np.asarray(demand, float)
    supply = np.asarray(supply, float)
    load = np.bincount(j, weights=w * demand[r], minlength=cost.shape[1])
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(load > 0, supply / load, np.nan)
    acc = np.bincount(r, weights=w * np.nan_to_num(ratio[j]), minlength=cost.shape[0])
    return acc, ratio


def fca(
    net: WalkNetwork,
    population: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame,
    *,
    supply: str = "beds",
    demand: str = "pop_60plus",
    catchment_min: float = FCA_CATCHMENT_MIN,
    decay: Decay = "gaussian",
    snap_population: Snapped | None = None,
    snap_facilities: Snapped | None = None,
    max_snap_m: float = MAX_SNAP_M,
) -> pd.DataFrame:
    """Capacity-aware accessibility per population unit (2SFCA / E2SFCA).

    Parameters
    ----------
    net
        The `WalkNetwork`.
    population, facilities
        Layers with the ``demand`` and ``supply`` columns.
    supply
        Facility column: ``beds``, ``nursing_beds`` or ``floor_area_m2``.
    demand
        Population column, usually ``pop_60plus``.
    catchment_min
        Catchment walking time, minutes.
    decay
        ``"gaussian"`` (E2SFCA) or ``"none"`` (2SFCA).

    Returns
    -------
    DataFrame
        Per unit: ``id``, ``name``/``township``/``district`` when present,
        ``demand``, ``accessibility`` (supply per demand person),
        ``accessibility_per_1000`` and ``n_facilities`` within the catchment.
    """
    for layer, col, what in ((facilities, supply, "facilities"),
                             (population, demand, "population")):
        if col not in layer.columns:
            raise LayerError(
                f"The {what} layer has no `{col}` column needed for 2SFCA (columns: "
                f"{list(layer.columns)}). Add it or set `access.fca."
                f"{'supply' if what == 'facilities' else 'demand'}` in the scenario."
            )
    s = pd.to_numeric(facilities[supply], errors="coerce")
    if s.isna().any():
        bad = facilities.loc[s.isna(), "id"] if "id" in facilities else s.index[s.isna()]
        shown = list(map(str, list(bad)[:20]))
        warnings.warn(PlannerWarning(
            f"{int(s.isna().sum())} facilities have no `{supply}` value and count as 0 supply "
            f"in 2SFCA: {', '.join(shown)}.",
            f"{int(s.isna().sum())} 处设施没有 `{supply}` 值，在 2SFCA 中按供给 0 计："
            f"{'、'.join(shown)}。"), stacklevel=2)
    if snap_population is None:
        snap_population = snap_units(net, population, max_snap_m=max_snap_m)
    if snap_facilities is None:
        snap_facilities = snap_points(net, facilities, max_snap_m=max_snap_m, what="facilities")
    if snap_population is None:
        snap_population = snap_units(net, population, max_snap_m=max_snap_m,
                                     main_components=served_components(net, snap_facilities))
    catchment_s = float(catchment_min) * 60.0
    cost = cost_matrix(net, snap_population, snap_facilities, cutoff_s=catchment_s)
    dem = pd.to_numeric(population[demand], errors="coerce").fillna(0).to_numpy(float)
    acc, _ = fca_scores(cost, dem, s.fillna(0).to_numpy(float), catchment_s=catchment_s,
                        decay=decay)
    keep = [c for c in ("id", "name", "township", "district") if c in population.columns]
    out = pd.DataFrame(population[keep]).reset_index(drop=True)
    out["demand"] = dem
    out["accessibility"] = acc
    out["accessibility_per_1000"] = acc * 1000.0
    out["n_facilities"] = np.diff(cost.indptr)
    return out

