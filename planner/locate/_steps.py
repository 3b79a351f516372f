"""The locate step of a run: proposed township centres and community stations.

1. ``township_centre``: a centre for each township that the norm checks say
   lacks one (``norm_checks`` rows of measure ``township_centre_count`` with
   status ``fail``; without norm checks and ``p: auto``, each township with
   no centre).  Per township, a p-median over its population units and the
   candidates inside it (tier ``township_centre`` or empty), with every
   existing centre fixed open.  An integer ``p`` instead places ``p`` new
   centres over the whole area.
2. ``community_station``: by default set covering (LSCP) closing the
   walking circle's gaps, with existing stations, existing centres and the
   centres just proposed fixed (a centre also serves as its community's
   station).  ``pmedian`` / ``mclp`` with ``p: auto`` use the LSCP count.

Outputs: ``layers["proposed_sites"]``, ``tables["proposed_sites"]``,
``tables["coverage_before_after"]`` and ``artifacts["locate_results"]``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from planner._errors import LocateError
from planner.locate._models import LSCP, MCLP, PMedian


def _tiers(gdf) -> np.ndarray:
    if gdf is None or len(gdf) == 0:
        return np.empty(0, dtype=object)
    if "tier" not in gdf.columns:
        return np.full(len(gdf), "", dtype=object)
    return gdf["tier"].fillna("").astype(str).to_numpy()


def _township_of(gdf, townships) -> np.ndarray:
    """Township name of each row: its ``township`` column, else the polygon it lies in."""
    import geopandas as gpd

    if "township" in gdf.columns and gdf["township"].notna().all():
        return gdf["township"].astype(str).to_numpy()
    out = np.full(len(gdf), "", dtype=object)
    if townships is None or len(townships) == 0 or "name" not in townships.columns:
        return out
    pts = gpd.GeoDataFrame(geometry=gdf.geometry.representative_point().values, crs=gdf.crs)
    j = gpd.sjoin(pts, townships[["name", "geometry"]].to_crs(gdf.crs), how="left",
                  predicate="within")
    j = j[~j.index.duplicated()]
    vals = j["name"].to_numpy()
    have = pd.notna(vals)
    out[have] = vals[have].astype(str)
    if "township" in gdf.columns:
        own = gdf["township"].to_numpy()
        ok = pd.notna(own)
        out[ok] = own[ok].astype(str)
    return out


def _weights(pop, column: str, result) -> np.ndarray:
    if column in pop.columns:
        return pop[column].fillna(0).to_numpy(dtype=float)
    if "population" in pop.columns:
        result.warn(f"locate: the population layer has no `{column}` column; weighting by "
                    "`population` instead. Set `weight:` in the locate section to choose.")
        return pop["population"].fillna(0).to_numpy(dtype=float)
    raise LocateError(f"locate: the population layer has no `{column}` column (columns: "
                      f"{list(pop.columns)}); set `weight:` in the scenario's locate section.")


def _capacities(ms, facilities, fac_cols, cands, cand_cols):
    """Capacities of the model's columns ([facilities..., candidates...]) or None."""
    if not ms.capacity:
        return None
    if ms.capacity not in cands.columns:
        raise LocateError(
            f"locate: `capacity: {ms.capacity}` names no column of the candidates layer "
            f"(columns: {list(cands.columns)}). Fix `capacity:` in the locate section."
        )
    big = 1e15  # existing sites without the column: unlimited
    cf = (facilities[ms.capacity].fillna(big).to_numpy(dtype=float)[fac_cols]
          if facilities is not None and ms.capacity in facilities.columns
          else np.full(len(fac_cols), big))
    cc = cands[ms.capacity].fillna(0).to_numpy(dtype=float)[cand_cols]
    return np.r_[cf, cc]


def _need_centres(result, townships, facilities) -> dict[str, int]:
    """Township name -> number of centres to add."""
    checks = result.tables.get("norm_checks")
    if checks is not None and len(checks) and "measure" in checks.columns:
        rows = checks[(checks["measure"] == "township_centre_count")
                      & (checks["status"] == "fail")]
        if len(checks[checks["measure"] == "township_centre_count"]):
            need = {}
            for _, r in rows.iterrows():
                short = pd.to_numeric(pd.Series([r.get("shortfall")]), errors="coerce").iloc[0]
                k = int(math.ceil(short)) if pd.notna(short) and short > 0 else 1
                need[str(r.get("unit_name"))] = k
            return need
    if townships is None or len(townships) == 0:
        return {}
    tiers = _tiers(facilities)
    have = set()
    if facilities is not None and len(facilities):
        tw = _township_of(facilities, townships)
        have = set(tw[tiers == "township_centre"])
    return {str(n): 1 for n in townships["name"].astype(str) if n not in have}


def _coverage_rows(before_s, after_s, w, thresholds_min) -> pd.DataFrame:
    total = float(w.sum())
    rows = []
    for t in thresholds_min:
        b = float(w[before_s <= t * 60.0].sum())
        a = float(w[after_s <= t * 60.0].sum())
        rows.append({
            "threshold_min": t, "pop_60plus_before": b, "pop_60plus_after": a,
            "pop_60plus_gain": a - b,
            "share_before": b / total if total else np.nan,
            "share_after": a / total if total else np.nan,
        })
    return pd.DataFrame(rows)


def _solve(result, model, ms, settings, *, what: str):
    """Solve ``model``, passing its PlannerWarnings on through ``result.warn``."""
    import warnings

    from planner._errors import PlannerWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PlannerWarning)
        res = model.solve(time_limit=ms.time_limit_s, method=ms.method, seed=settings.seed,
                          threads=settings.threads)
    for c in caught:
        if issubclass(c.category, PlannerWarning):
            msg = str(c.message).replace("demand rows", "population units").replace(
                f"({ms.coverage_min * 60.0:g} in the cost's unit)", f"({ms.coverage_min:g} min)")
            result.warn(f"locate ({what}): {msg}")
        else:
            warnings.warn_explicit(c.message, c.category, c.filename, c.lineno)
    if res.status != "optimal" and ms.method != "heuristic":
        result.warn(f"locate ({what}): not proven optimal within {ms.time_limit_s:g} s "
                    f"(gap {res.gap:.2%}); raise `time_limit_s` for a proof.")
    return res


def run_step(result: Any) -> str | None:
    """Propose sites per tier; see the module docstring."""
    import geopandas as gpd

    from planner._settings import AccessSettings
    from planner._snap import snap_points
    from planner.access import cost_matrix, snap_units
    from planner.locate._candidates import generate_candidates

    settings = result.scenario.locate
    if settings is None:
        return "no `locate:` section in the scenario"
    net = result.artifacts.get("network")
    if net is None:
        return "no walk network (the network step did not build one)"
    pop = result.layers.get("population")
    if pop is None or len(pop) == 0:
        return "no population layer"
    if settings.township_centre is None and settings.community_station is None:
        return "no tier set under `locate:` (township_centre / community_station)"
    access = result.scenario.access or AccessSettings()
    circle_s = access.circle_min * 60.0
    cutoff_s = access.cutoff_min * 60.0
    max_snap = result.scenario.network.max_snap_m if result.scenario.network else 300.0
    facilities = result.layers.get("facilities")
    townships = result.layers.get("townships")
    cands = result.layers.get("candidates")

    snap_pop = result.artifacts.get("snap_population")
    if snap_pop is None:
        snap_pop = snap_units(net, pop, gates=result.layers.get("gates"), max_snap_m=max_snap,
                              warn=False)
    n_pop = len(pop)
    fac_t = _tiers(facilities)
    if facilities is not None and len(facilities):
        snap_fac = result.artifacts.get("snap_facilities")
        if snap_fac is None or len(snap_fac) != len(facilities):
            snap_fac = snap_points(net, facilities, max_snap_m=max_snap, warn=False,
                                   what="facilities")
        c_fac = cost_matrix(net, snap_pop, snap_fac, cutoff_s=cutoff_s)
    else:
        c_fac = sp.csr_array((n_pop, 0))

    def nearest(c: sp.csr_array, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per unit: time to the nearest of columns ``cols`` of ``c`` (inf if none) and its
        position in ``cols`` (-1 if none)."""
        best = np.full(n_pop, np.inf)
        arg = np.full(n_pop, -1)
        if cols.size == 0:
            return best, arg
        sub = sp.csr_array(c[:, cols])
        r = np.repeat(np.arange(n_pop), np.diff(sub.indptr))
        order = np.lexsort((sub.data, r))
        first = np.r_[True, r[order][1:] != r[order][:-1]] if order.size else np.zeros(0, bool)
        rr = r[order][first]
        best[rr] = sub.data[order][first]
        arg[rr] = sub.indices[order][first]
        return best, arg

    before, _ = nearest(c_fac, np.arange(c_fac.shape[1]))
    seed = settings.seed
    results: dict[str, Any] = {}
    proposed: list[dict] = []
    # candidate pool
    want_gen = [ms.generate_candidates for ms in (settings.township_centre,
                                                  settings.community_station)
                if ms is not None and ms.generate_candidates]
    if (cands is None or len(cands) == 0) or want_gen:
        w0 = _weights(pop, (settings.community_station or settings.township_centre).weight,
                      result)
        k = max(want_gen) if want_gen else max(1, int(np.ceil(n_pop / 5)))
        gen = generate_candidates(
            pop.assign(_w=w0), net, k, weight="_w", uncovered=before > circle_s,
            forbidden=[result.layers.get("water"), result.layers.get("parks")], seed=seed)
        if len(gen):
            result.warn(f"locate: {len(gen)} candidate sites were generated by weighted k-means "
                        "on older residents outside the walking circle (ids gen-1...).")
        cands = gen if cands is None or len(cands) == 0 else pd.concat(
            [cands, gen.to_crs(cands.crs)], ignore_index=True)
    if cands is None or len(cands) == 0:
        return "no candidate sites (add a `candidates` layer or set generate_candidates)"
    cands = cands.reset_index(drop=True)
    snap_c = snap_points(net, cands, max_snap_m=max_snap, warn=False, what="candidates")
    c_cand = cost_matrix(net, snap_pop, snap_c, cutoff_s=cutoff_s)
    cand_t = _tiers(cands)
    cand_tw = _township_of(cands, townships)
    pop_tw = _township_of(pop, townships)
    ids = cands["id"].astype(str).to_numpy() if "id" in cands.columns else \
        np.array([str(i) for i in range(len(cands))])
    names = cands["name"].astype(str).to_numpy() if "name" in cands.columns else ids
    chosen = np.zeros(len(cands), bool)

    def add(tier: str, model: str, res, nfix: int, cand_cols: np.ndarray) -> None:
        """Record the new sites of one solve; model columns are [nfix fixed, cand_cols...]."""
        for s in res.sites:
            j = int(cand_cols[s - nfix])
            chosen[j] = True
            proposed.append({"tier": tier, "model": model, "candidate": j})

    # ------------------------------------------------------------ township centres
    ms = settings.township_centre
    if ms is not None:
        w = _weights(pop, ms.weight, result)
        fixed_cols = np.flatnonzero(fac_t == "township_centre")
        ok_cand = np.flatnonzero(np.isin(cand_t, ["township_centre", ""]))
        groups: list[tuple[str, np.ndarray, np.ndarray, int]] = []
        if ms.p == "auto":
            need = _need_centres(result, townships, facilities)
            for tw, k in need.items():
                rows = np.flatnonzero(pop_tw == tw)
                cc = ok_cand[cand_tw[ok_cand] == tw]
                if cc.size == 0:
                    result.warn(f"locate: township {tw} needs a centre but has no candidate site "
                                "(tier township_centre or empty) inside it; none proposed.")
                    continue
                groups.append((tw, rows, cc, min(k, cc.size)))
        elif ms.p > 0:
            groups.append(("", np.arange(n_pop), ok_cand, int(ms.p)))
        c_fixed = c_fac[:, fixed_cols]
        for tw, rows, cc, k in groups:
            cost = sp.hstack([c_fixed, c_cand[:, cc]]).tocsr()[rows]
            model = PMedian.from_cost_matrix(
                cost, p=k, weights=w[rows], fixed=np.arange(fixed_cols.size),
                capacity=_capacities(ms, facilities, fixed_cols, cands, cc))
            res = _solve(result, model, ms, settings, what=f"township centre {tw}".strip())
            results[f"township_centre:{tw}" if tw else "township_centre"] = res
            add("township_centre", "pmedian", res, fixed_cols.size, cc)

    # ------------------------------------------------------------ community stations
    ms = settings.community_station
    if ms is not None:
        w = _weights(pop, ms.weight, result)
        fixed_fac = np.flatnonzero(np.isin(fac_t, ["community_station", "township_centre"]))
        new_centres = np.flatnonzero(chosen)
        ok_cand = np.flatnonzero(np.isin(cand_t, ["community_station", ""]) & ~chosen)
        cols_c = np.r_[new_centres, ok_cand]
        cost = sp.hstack([c_fac[:, fixed_fac], c_cand[:, cols_c]]).tocsr()
        nfix = fixed_fac.size + new_centres.size
        fixed = np.arange(nfix)
        cov_s = ms.coverage_min * 60.0
        if ok_cand.size == 0:
            result.warn("locate: no candidate site may host a community station "
                        "(tier community_station or empty); none proposed.")
        else:
            cap = _capacities(ms, facilities, fixed_fac, cands, cols_c)
            if ms.model == "lscp" or ms.p == "auto":
                lscp = LSCP.from_cost_matrix(
                    cost, coverage=cov_s, target_share=ms.target_share, weights=w, fixed=fixed,
                    capacity=cap)
                res = _solve(result, lscp, ms, settings, what="community stations, LSCP")
                results["community_station:lscp"] = res
            if ms.model == "lscp":
                add("community_station", "lscp", res, fixed_fac.size, cols_c)
            else:
                p = int(res.objective) if ms.p == "auto" else min(int(ms.p), ok_cand.size)
                if ms.model == "pmedian":
                    mdl = PMedian.from_cost_matrix(cost, p=p, weights=w, fixed=fixed,
                                                   capacity=cap)
                else:
                    mdl = MCLP.from_cost_matrix(cost, p=p, coverage=cov_s, weights=w,
                                                fixed=fixed, capacity=cap)
                res = _solve(result, mdl, ms, settings, what=f"community stations, {ms.model}")
                results[f"community_station:{ms.model}"] = res
                add("community_station", ms.model, res, fixed_fac.size, cols_c)

    # ------------------------------------------------------------ outputs
    w_old = _weights(pop, "pop_60plus" if "pop_60plus" in pop.columns else
                     (settings.community_station or settings.township_centre).weight, result)
    sel = np.array([d["candidate"] for d in proposed], dtype=np.int64)
    # which proposed site serves each unit after (one it reaches sooner than before)
    best_new, serve = nearest(c_cand, sel)
    after_all = np.minimum(before, best_new)
    serve[~(best_new < before)] = -1
    rows_out = []
    for k, d in enumerate(proposed):
        j = d["candidate"]
        mine = serve == k
        newly = mine & (before > circle_s) & (after_all <= circle_s)
        b = np.minimum(before[mine], cutoff_s)
        saved = float(np.dot(w_old[mine], b - after_all[mine]) / max(w_old[mine].sum(), 1e-12)
                      / 60.0) if mine.any() else 0.0
        rows_out.append({
            "tier": d["tier"], "model": d["model"], "candidate_id": ids[j], "name": names[j],
            "township": cand_tw[j], "pop_60plus_served": float(w_old[mine].sum()),
            "pop_60plus_newly_covered": float(w_old[newly].sum()),
            "time_saved_min": round(saved, 2),
        })
    table = pd.DataFrame(rows_out, columns=["tier", "model", "candidate_id", "name", "township",
                                            "pop_60plus_served", "pop_60plus_newly_covered",
                                            "time_saved_min"])
    geom = cands.geometry.iloc[sel].to_numpy() if sel.size else []
    result.layers["proposed_sites"] = gpd.GeoDataFrame(table.copy(), geometry=list(geom),
                                                       crs=cands.crs)
    result.tables["proposed_sites"] = table
    result.tables["coverage_before_after"] = _coverage_rows(
        before, after_all, w_old, access.thresholds_min)
    result.artifacts["locate_results"] = results
    return None

