"""Proposing sites per tier: township centres and community stations, as pure functions.

1. ``township_centre``: a centre for each township that the norm checks say
   lacks one (`centres_needed`: ``norm_checks`` rows of measure
   ``township_centre_count`` with status ``fail``; without norm checks and
   ``p: auto``, each township with no centre).  Per township, a p-median
   over its population units and the candidates inside it (tier
   ``township_centre`` or empty), with every existing centre fixed open.
   An integer ``p`` instead places ``p`` new centres over the whole area.
2. ``community_station``: by default set covering (LSCP) closing the
   walking circle's gaps, with existing stations, existing centres and the
   centres just proposed fixed (a centre also serves as its community's
   station).  ``pmedian`` / ``mclp`` with ``p: auto`` use the LSCP count.

`propose_sites` does both and returns a `SitePlan`: the proposed sites
(layer and table), coverage before and after, and each unit's walking time
before and after (minutes), so maps reuse them instead of routing again.
Warnings (generated candidates, a township without candidates, a solve not
proven optimal) are issued here as `PlannerWarning`.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp

from planner import defaults as D
from planner._errors import LocateError, PlannerWarning, reworded
from planner.locate._candidates import generate_candidates
from planner.locate._models import (
    LSCP,
    MCLP,
    LocateResult,
    Method,
    PMedian,
    UncoverableWarning,
)

__all__ = ["UNCOVERABLE_COLUMNS", "SitePlan", "TierModel", "centres_needed",
           "coverage_before_after", "propose_sites"]


@dataclass(frozen=True)
class TierModel:
    """How new sites of one tier are chosen (see `planner.locate`).

    ``model``: ``pmedian`` (least walking time), ``mclp`` (most older
    residents within ``coverage_min``) or ``lscp`` (fewest sites covering
    every unit, or ``target_share`` of the weight, within ``coverage_min``).
    ``p``: new sites; ``"auto"`` = one per township the norm checks flag
    (township centres) or the LSCP count (stations).  ``weight``: population
    column.  ``capacity``: candidate/facility column of capacities.
    ``method``: ``auto``/``exact`` (HiGHS, proven optimal) or ``heuristic``.
    ``generate_candidates``: add this many k-means candidate sites.
    """

    model: Literal["pmedian", "mclp", "lscp"] = "pmedian"
    p: int | Literal["auto"] = "auto"
    weight: str = "pop_60plus"
    coverage_min: float = D.CIRCLE_MIN
    target_share: float = 1.0
    capacity: str | None = None
    method: Method = "auto"
    time_limit_s: float = D.LOCATE_TIME_LIMIT_S
    generate_candidates: int | None = None


@dataclass
class SitePlan:
    """What `propose_sites` found.

    ``sites`` is the layer of proposed sites (``tier``, ``model``,
    ``candidate_id``, ``name``, ``township``, ``pop_60plus_served``,
    ``pop_60plus_newly_covered``, ``time_saved_min``) and ``table`` the same
    without geometry; ``coverage`` the older residents within each
    threshold before and after; ``time_min_before`` / ``time_min_after``
    each unit's walk to the nearest facility (``inf`` beyond the cut-off);
    ``results`` the `LocateResult` of every solve; ``uncoverable`` the
    population units that no candidate nor existing station covers within
    the stations' coverage (`UNCOVERABLE_COLUMNS`: their weight and nearest
    candidate with its walk in minutes, NaN beyond the cut-off), or ``None``.
    ``reason`` is set (and
    the rest empty) when nothing could be proposed, saying why.
    """

    sites: gpd.GeoDataFrame | None = None
    table: pd.DataFrame | None = None
    coverage: pd.DataFrame | None = None
    time_min_before: np.ndarray | None = None
    time_min_after: np.ndarray | None = None
    results: dict[str, LocateResult] = field(default_factory=dict)
    uncoverable: pd.DataFrame | None = None
    reason: str | None = None


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


def _warn(en: str, zh: str) -> None:
    warnings.warn(PlannerWarning(en, zh), stacklevel=3)


#: A tier's solve named in warnings: (English, Chinese).
_TIER_WORDS = {"township_centre": ("township centre", "街镇综合养老服务中心"),
               "community_station": ("community stations", "社区养老服务站")}


def _weights(pop, column: str) -> np.ndarray:
    if column in pop.columns:
        return pop[column].fillna(0).to_numpy(dtype=float)
    if "population" in pop.columns:
        _warn(f"locate: the population layer has no `{column}` column; weighting by "
              "`population` instead. Set `weight:` in the locate section to choose.",
              f"选址：人口图层没有 `{column}` 列，改按 `population`（常住人口）加权。可在 "
              "locate 部分用 `weight:` 指定。")
        return pop["population"].fillna(0).to_numpy(dtype=float)
    raise LocateError(f"locate: the population layer has no `{column}` column (columns: "
                      f"{list(pop.columns)}); set `weight:` in the scenario's locate section.")


def _capacities(ms: TierModel, facilities, fac_cols, cands, cand_cols):
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


def centres_needed(norm_checks: pd.DataFrame | None, townships: gpd.GeoDataFrame | None,
                   facilities: gpd.GeoDataFrame | None) -> dict[str, int]:
    """Township name -> number of township centres to add.

    From the norm checks' ``township_centre_count`` failures (the shortfall,
    rounded up, at least 1) when the checks hold that measure; otherwise one
    for each township with no facility of tier ``township_centre`` in it.
    """
    checks = norm_checks
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


def coverage_before_after(time_min_before: np.ndarray, time_min_after: np.ndarray,
                          weights: np.ndarray,
                          thresholds_min: tuple[float, ...] | list[float] = D.THRESHOLDS_MIN,
                          ) -> pd.DataFrame:
    """Weight within each threshold before and after, and the shares of the total.

    Columns ``threshold_min``, ``pop_60plus_before``, ``pop_60plus_after``,
    ``pop_60plus_gain``, ``share_before``, ``share_after``.
    """
    return _coverage_rows(np.asarray(time_min_before, dtype=float) * 60.0,
                          np.asarray(time_min_after, dtype=float) * 60.0,
                          np.asarray(weights, dtype=float), thresholds_min)


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


def _solve(model, ms: TierModel, *, seed: int, threads: int,
           what: tuple[str, str], progress: Any = False) -> LocateResult:
    """Solve ``model``; its warnings are re-issued naming the tier and in the run's words.

    ``what`` names the solve in English and Chinese.  The model's warning about
    uncoverable rows is left to the caller (`_community_stations` names the units).
    ``progress``: as `PMedian.solve`'s (``True`` prints lines labelled with the tier).
    """
    if progress is True:
        progress = f"locate ({what[0]}) "
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PlannerWarning)
        res = model.solve(time_limit_s=ms.time_limit_s, method=ms.method, seed=seed,
                          threads=threads, progress=progress)
    cost_unit = f"({ms.coverage_min * 60.0:g} in the cost's unit)"
    for c in caught:
        if issubclass(c.category, UncoverableWarning):
            continue
        if issubclass(c.category, PlannerWarning):
            w = reworded(c.message, en=lambda t: f"locate ({what[0]}): " + t.replace(
                "demand rows", "population units").replace(cost_unit,
                                                           f"({ms.coverage_min:g} min)"),
                zh=lambda t: f"选址（{what[1]}）：" + t.replace("需求单元", "人口单元"))
            warnings.warn(w, stacklevel=2)
        else:
            warnings.warn_explicit(c.message, c.category, c.filename, c.lineno)
    if res.status != "optimal" and ms.method != "heuristic":
        _warn(f"locate ({what[0]}): not proven optimal within {ms.time_limit_s:g} s "
              f"(gap {res.gap:.2%}); raise `time_limit_s` for a proof.",
              f"选址（{what[1]}）：在 {ms.time_limit_s:g} 秒内未能证明最优（差距 "
              f"{res.gap:.2%}）；如需证明请增大 `time_limit_s`。")
    return res


def _nearest(c: sp.csr_array, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``c``: the smallest value among columns ``cols`` (inf if none) and its
    position in ``cols`` (-1 if none)."""
    n = c.shape[0]
    best = np.full(n, np.inf)
    arg = np.full(n, -1)
    if cols.size == 0:
        return best, arg
    sub = sp.csr_array(c[:, cols])
    r = np.repeat(np.arange(n), np.diff(sub.indptr))
    order = np.lexsort((sub.data, r))
    first = np.r_[True, r[order][1:] != r[order][:-1]] if order.size else np.zeros(0, bool)
    rr = r[order][first]
    best[rr] = sub.data[order][first]
    arg[rr] = sub.indices[order][first]
    return best, arg


@dataclass
class _Problem:
    """Everything the tiers' solves share: costs, tiers, townships, what is chosen so far."""

    pop: Any
    facilities: Any
    cands: Any
    c_fac: sp.csr_array
    c_cand: sp.csr_array
    fac_t: np.ndarray
    cand_t: np.ndarray
    cand_tw: np.ndarray
    pop_tw: np.ndarray
    seed: int
    threads: int
    progress: Any = False
    chosen: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    uncoverable: pd.DataFrame | None = None
    proposed: list[dict] = field(default_factory=list)
    results: dict[str, LocateResult] = field(default_factory=dict)

    def add(self, tier: str, model: str, res: LocateResult, nfix: int,
            cand_cols: np.ndarray) -> None:
        """Record the new sites of one solve; model columns are [nfix fixed, cand_cols...]."""
        for s in res.sites:
            j = int(cand_cols[s - nfix])
            self.chosen[j] = True
            self.proposed.append({"tier": tier, "model": model, "candidate": j})


def _candidate_pool(net, pop, cands, *, township_centre, community_station, uncovered,
                    forbidden, seed: int):
    """The candidates layer, with k-means candidates added where asked or where none exist."""
    want_gen = [ms.generate_candidates for ms in (township_centre, community_station)
                if ms is not None and ms.generate_candidates]
    if (cands is None or len(cands) == 0) or want_gen:
        w0 = _weights(pop, (community_station or township_centre).weight)
        k = max(want_gen) if want_gen else max(1, int(np.ceil(len(pop) / 5)))
        gen = generate_candidates(pop.assign(_w=w0), net, k, weight="_w", uncovered=uncovered,
                                  forbidden=forbidden, seed=seed)
        if len(gen):
            _warn(f"locate: {len(gen)} candidate sites were generated by weighted k-means "
                  "on older residents outside the walking circle (ids gen-1...).",
                  f"选址：按步行圈外老年人口加权 k-means 生成了 {len(gen)} 个候选点"
                  "（编号 gen-1 …）。")
        cands = gen if cands is None or len(cands) == 0 else pd.concat(
            [cands, gen.to_crs(cands.crs)], ignore_index=True)
    return cands


def _township_centres(pb: _Problem, ms: TierModel, *, norm_checks, townships) -> None:
    w = _weights(pb.pop, ms.weight)
    fixed_cols = np.flatnonzero(pb.fac_t == "township_centre")
    ok_cand = np.flatnonzero(np.isin(pb.cand_t, ["township_centre", ""]))
    groups: list[tuple[str, np.ndarray, np.ndarray, int]] = []
    if ms.p == "auto":
        for tw, k in centres_needed(norm_checks, townships, pb.facilities).items():
            rows = np.flatnonzero(pb.pop_tw == tw)
            cc = ok_cand[pb.cand_tw[ok_cand] == tw]
            if cc.size == 0:
                _warn(f"locate: township {tw} needs a centre but has no candidate site "
                      "(tier township_centre or empty) inside it; none proposed.",
                      f"选址：街镇 {tw} 需要综合养老服务中心，但其范围内没有候选点（层级为 "
                      "township_centre 或空），未能提出。")
                continue
            if rows.size == 0:
                _warn(f"locate: township {tw} needs a centre but no population unit lies in "
                      "it, so there is no one to place it for; none proposed. Add its "
                      "communities to the population layer (or check their `township` "
                      "names against the townships layer).",
                      f"选址：街镇 {tw} 需要综合养老服务中心，但人口图层中没有位于该街镇的单元，"
                      "无从为其选址，未能提出。请将其社区加入人口图层（或核对 `township` "
                      "名称与街镇图层是否一致）。")
                continue
            groups.append((tw, rows, cc, _at_most_candidates(k, cc.size, "township_centre",
                                                              where=tw)))
    elif ms.p > 0:
        groups.append(("", np.arange(len(pb.pop)), ok_cand,
                       _at_most_candidates(int(ms.p), ok_cand.size, "township_centre")))
    c_fixed = pb.c_fac[:, fixed_cols]
    for tw, rows, cc, k in groups:
        cost = sp.hstack([c_fixed, pb.c_cand[:, cc]]).tocsr()[rows]
        model = PMedian.from_cost_matrix(
            cost, p=k, weights=w[rows], fixed=np.arange(fixed_cols.size),
            capacity=_capacities(ms, pb.facilities, fixed_cols, pb.cands, cc))
        res = _solve(model, ms, seed=pb.seed, threads=pb.threads, progress=pb.progress,
                     what=(f"township centre {tw}".strip(), f"街镇综合养老服务中心 {tw}".strip()))
        pb.results[f"township_centre:{tw}" if tw else "township_centre"] = res
        pb.add("township_centre", "pmedian", res, fixed_cols.size, cc)


def _community_stations(pb: _Problem, ms: TierModel) -> None:
    w = _weights(pb.pop, ms.weight)
    fixed_fac = np.flatnonzero(np.isin(pb.fac_t, ["community_station", "township_centre"]))
    new_centres = np.flatnonzero(pb.chosen)
    ok_cand = np.flatnonzero(np.isin(pb.cand_t, ["community_station", ""]) & ~pb.chosen)
    cols_c = np.r_[new_centres, ok_cand]
    cost = sp.hstack([pb.c_fac[:, fixed_fac], pb.c_cand[:, cols_c]]).tocsr()
    fixed = np.arange(fixed_fac.size + new_centres.size)
    cov_s = ms.coverage_min * 60.0
    if ok_cand.size == 0:
        _warn("locate: no candidate site may host a community station "
              "(tier community_station or empty); none proposed.",
              "选址：没有可设社区养老服务站的候选点（层级为 community_station 或空），未能提出。")
        return
    cap = _capacities(ms, pb.facilities, fixed_fac, pb.cands, cols_c)
    kw = dict(seed=pb.seed, threads=pb.threads, progress=pb.progress)
    if ms.model == "lscp" or ms.p == "auto":
        lscp = LSCP.from_cost_matrix(cost, coverage=cov_s, target_share=ms.target_share,
                                     weights=w, fixed=fixed, capacity=cap)
        res = _solve(lscp, ms, what=("community stations, LSCP", "社区养老服务站，LSCP"), **kw)
        pb.results["community_station:lscp"] = res
        _note_uncoverable(pb, res, w, ok_cand, ms)
    if ms.model == "lscp":
        pb.add("community_station", "lscp", res, fixed_fac.size, cols_c)
        return
    p = int(res.objective) if ms.p == "auto" else _at_most_candidates(
        int(ms.p), ok_cand.size, "community_station")
    if ms.model == "pmedian":
        mdl = PMedian.from_cost_matrix(cost, p=p, weights=w, fixed=fixed, capacity=cap)
    else:
        mdl = MCLP.from_cost_matrix(cost, p=p, coverage=cov_s, weights=w, fixed=fixed,
                                    capacity=cap)
    res = _solve(mdl, ms, what=(f"community stations, {ms.model}", f"社区养老服务站，{ms.model}"),
                 **kw)
    pb.results[f"community_station:{ms.model}"] = res
    pb.add("community_station", ms.model, res, fixed_fac.size, cols_c)


def _at_most_candidates(p: int, n_candidates: int, tier: str, *, where: str = "") -> int:
    """``p`` new sites, or all ``n_candidates`` (with a warning naming both) when fewer."""
    if p <= n_candidates:
        return p
    en, zh = _TIER_WORDS[tier]
    _warn(f"locate ({en}{' ' + where if where else ''}): {p} new sites asked for but only "
          f"{n_candidates} candidate site(s) may host one; all {n_candidates} are proposed. "
          "Add candidate sites (or `generate_candidates`) to place more.",
          f"选址（{zh}{' ' + where if where else ''}）：要求新增 {p} 处，但只有 {n_candidates} 个"
          f"候选点可用；已全部提出这 {n_candidates} 处。如需更多，请增加候选点（或设置 "
          "`generate_candidates`）。")
    return n_candidates


#: Columns of `SitePlan.uncoverable`.
UNCOVERABLE_COLUMNS = ["id", "name", "township", "pop_60plus", "nearest_candidate_id",
                       "time_min_nearest_candidate"]


def _note_uncoverable(pb: _Problem, res: LocateResult, w: np.ndarray, ok_cand: np.ndarray,
                      ms: TierModel) -> None:
    """Name the units no station can cover (`SitePlan.uncoverable`) and warn about them."""
    rows = np.asarray(res.uncoverable if res.uncoverable is not None else [], dtype=np.int64)
    rows = rows[w[rows] > 0]
    if rows.size == 0:
        return
    pop = pb.pop
    best, arg = _nearest(sp.csr_array(pb.c_cand[rows]), ok_cand)
    cand_ids = (pb.cands["id"].astype(str).to_numpy() if "id" in pb.cands.columns
                else np.arange(len(pb.cands)).astype(str))
    ids = pop["id"].to_numpy() if "id" in pop.columns else np.arange(len(pop))
    names = pop["name"].to_numpy() if "name" in pop.columns else np.full(len(pop), "")
    table = pd.DataFrame({
        "id": ids[rows], "name": names[rows], "township": pb.pop_tw[rows],
        ms.weight: w[rows],
        "nearest_candidate_id": np.where(arg >= 0, cand_ids[ok_cand[np.maximum(arg, 0)]], None),
        "time_min_nearest_candidate": np.where(np.isfinite(best), np.round(best / 60.0, 2),
                                               np.nan),
    })
    pb.uncoverable = table.sort_values(table.columns[3], ascending=False, kind="stable")
    first = [str(n) for n in pb.uncoverable["name"].head(5)]
    more = " …" if rows.size > 5 else ""
    _warn(f"locate (community stations, LSCP): {rows.size} population units "
          f"(weight {w[rows].sum():g}) have no candidate nor existing site within "
          f"{ms.coverage_min:g} min and cannot be covered ({', '.join(first)}{more}); they are listed "
          "in the table `uncoverable_units` with their nearest candidate. Add candidate sites "
          "near them.",
          f"选址（社区养老服务站，LSCP）：{rows.size} 个人口单元（权重 {w[rows].sum():g}）"
          f"在 {ms.coverage_min:g} 分钟内既无候选点也无现有设施，无法覆盖（{'、'.join(first)}{more}）；"
          "详见表 `uncoverable_units`（含最近的候选点）。请在其附近增加候选点。")


_SITE_COLUMNS = ["tier", "model", "candidate_id", "name", "township", "pop_60plus_served",
                 "pop_60plus_newly_covered", "time_saved_min"]


def _site_rows(pb: _Problem, before, w_old, *, circle_s: float, cutoff_s: float):
    """The proposed-sites table and each unit's time after (s)."""
    cands = pb.cands
    ids = cands["id"].astype(str).to_numpy() if "id" in cands.columns else \
        np.array([str(i) for i in range(len(cands))])
    names = cands["name"].astype(str).to_numpy() if "name" in cands.columns else ids
    sel = np.array([d["candidate"] for d in pb.proposed], dtype=np.int64)
    # which proposed site serves each unit after (one it reaches sooner than before)
    best_new, serve = _nearest(pb.c_cand, sel)
    after_all = np.minimum(before, best_new)
    serve[~(best_new < before)] = -1
    rows_out = []
    for k, d in enumerate(pb.proposed):
        j = d["candidate"]
        mine = serve == k
        newly = mine & (before > circle_s) & (after_all <= circle_s)
        b = np.minimum(before[mine], cutoff_s)
        saved = float(np.dot(w_old[mine], b - after_all[mine]) / max(w_old[mine].sum(), 1e-12)
                      / 60.0) if mine.any() else 0.0
        rows_out.append({
            "tier": d["tier"], "model": d["model"], "candidate_id": ids[j], "name": names[j],
            "township": pb.cand_tw[j], "pop_60plus_served": float(w_old[mine].sum()),
            "pop_60plus_newly_covered": float(w_old[newly].sum()),
            "time_saved_min": round(saved, 2),
        })
    return pd.DataFrame(rows_out, columns=_SITE_COLUMNS), sel, after_all


def propose_sites(
    net: Any,
    population: gpd.GeoDataFrame,
    *,
    facilities: gpd.GeoDataFrame | None = None,
    candidates: gpd.GeoDataFrame | None = None,
    townships: gpd.GeoDataFrame | None = None,
    gates: gpd.GeoDataFrame | None = None,
    forbidden: list[gpd.GeoDataFrame | None] | None = None,
    township_centre: TierModel | None = None,
    community_station: TierModel | None = None,
    norm_checks: pd.DataFrame | None = None,
    circle_min: float = D.CIRCLE_MIN,
    cutoff_min: float = D.CUTOFF_MIN,
    thresholds_min: tuple[float, ...] | list[float] = D.THRESHOLDS_MIN,
    max_snap_m: float = D.MAX_SNAP_M,
    seed: int = 0,
    threads: int = 1,
    snap_population: Any = None,
    snap_facilities: Any = None,
    progress: Any = False,
) -> SitePlan:
    """Propose township centres and community stations; see the module docstring.

    Parameters
    ----------
    net
        The `planner.network.WalkNetwork`.
    population
        Demand units (``pop_60plus`` or the tiers' ``weight`` column).
    facilities, candidates, townships, gates
        Existing facilities (``tier``), candidate sites (``tier`` empty = any),
        township boundaries (``name``), compound gates.
    forbidden
        Polygon layers (water, parks) where generated candidates may not lie.
    township_centre, community_station
        How each tier is placed; ``None`` places none of that tier.
    norm_checks
        The norm checks' table (which townships lack a centre).
    circle_min, cutoff_min, thresholds_min, max_snap_m
        The walking circle, the routing cut-off and thresholds (min), and
        the snap limit (m), as in `planner.access`.
    seed, threads
        Passed to every solve.
    snap_population, snap_facilities
        Snaps already made by the access step (made here when absent).
    progress
        Each solve's incumbent, bound and gap as it goes (``True``: printed;
        a callable: called with each `planner.progress.SolveProgress`).

    Returns
    -------
    SitePlan
    """
    from planner.access import cost_matrix, served_components, snap_points, snap_units

    if township_centre is None and community_station is None:
        return SitePlan(reason="no tier set under `locate:` (township_centre / community_station)")
    pop = population
    circle_s, cutoff_s = circle_min * 60.0, cutoff_min * 60.0
    snap_fac = None
    if facilities is not None and len(facilities):
        snap_fac = snap_facilities
        if snap_fac is None or len(snap_fac) != len(facilities):
            snap_fac = snap_points(net, facilities, max_snap_m=max_snap_m, warn=False,
                                   what="facilities")
    main = None if snap_fac is None else served_components(net, snap_fac)
    snap_pop = snap_population
    if snap_pop is None:
        snap_pop = snap_units(net, pop, gates=gates, max_snap_m=max_snap_m, warn=False,
                              main_components=main)
    if snap_fac is not None:
        c_fac = cost_matrix(net, snap_pop, snap_fac, cutoff_s=cutoff_s)
    else:
        c_fac = sp.csr_array((len(pop), 0))
    before, _ = _nearest(c_fac, np.arange(c_fac.shape[1]))
    cands = _candidate_pool(net, pop, candidates, township_centre=township_centre,
                            community_station=community_station, uncovered=before > circle_s,
                            forbidden=list(forbidden or []), seed=seed)
    if cands is None or len(cands) == 0:
        return SitePlan(reason="no candidate sites (add a `candidates` layer or set "
                               "generate_candidates)")
    cands = cands.reset_index(drop=True)
    snap_c = snap_points(net, cands, max_snap_m=max_snap_m, warn=False, what="candidates",
                         main_components=main)
    pb = _Problem(pop=pop, facilities=facilities, cands=cands, c_fac=c_fac,
                  c_cand=cost_matrix(net, snap_pop, snap_c, cutoff_s=cutoff_s),
                  fac_t=_tiers(facilities), cand_t=_tiers(cands),
                  cand_tw=_township_of(cands, townships), pop_tw=_township_of(pop, townships),
                  seed=seed, threads=threads, progress=progress,
                  chosen=np.zeros(len(cands), bool))
    if township_centre is not None:
        _township_centres(pb, township_centre, norm_checks=norm_checks, townships=townships)
    if community_station is not None:
        _community_stations(pb, community_station)
    w_old = _weights(pop, "pop_60plus" if "pop_60plus" in pop.columns else
                     (community_station or township_centre).weight)
    table, sel, after_all = _site_rows(pb, before, w_old, circle_s=circle_s, cutoff_s=cutoff_s)
    geom = cands.geometry.iloc[sel].to_numpy() if sel.size else []
    return SitePlan(
        sites=gpd.GeoDataFrame(table.copy(), geometry=list(geom), crs=cands.crs),
        table=table,
        coverage=_coverage_rows(before, after_all, w_old, thresholds_min),
        time_min_before=before / 60.0, time_min_after=after_all / 60.0, results=pb.results,
        uncoverable=pb.uncoverable,
    )
