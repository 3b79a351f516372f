"""Cohort projections of the older groups to plan years, per census area and per unit.

`project_areas` projects each census area's 60+, 65+ and 80+ by
Hamilton-Perry cohort-change ratios (`cohort_change_ratios`) or by a life
table (`read_life_table`); `project_units` carries an area projection down
to small units; `area_projection_table` shows it; `projection_columns`
records how the projection was estimated.
"""

from __future__ import annotations

import itertools
import math
import os
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Literal

import numpy as np
import pandas as pd

from planner._errors import DemandError, PlannerWarning, collect
from planner.defaults import PLAN_YEARS
from planner.demand.census import (
    _BAND_RE,
    _SEX_WORDS,
    BAND_COLUMNS,
    GROUPS,
    SEXES,
    _clean_name,
    _find,
    _match_names,
    _read_table,
    _table_zh,
    close_names,
)

__all__ = ["area_projection_table", "cohort_change_ratios", "project_areas", "project_units",
           "projection_columns", "projection_needs", "read_life_table"]

# --------------------------------------------------------------------------- 5-year bands
# 5-year projection bands (0-4 merged): index i covers ages 5i..5i+4, 17 = 85+.
_N5 = 18
_BANDS5 = tuple(f"{5 * i}_{5 * i + 4}" for i in range(17)) + ("85plus",)

#: One projection step of band counts (areas, 2 sexes, 18 bands) -> the same, later.
_Advance = Callable[[np.ndarray], np.ndarray]


def _bands5(table: pd.DataFrame) -> np.ndarray:
    """Band counts as an array (areas, 2 sexes, 18 five-year bands; 0 and 1-4 merged)."""
    missing = [c for c in BAND_COLUMNS if c not in table.columns]
    if missing:
        raise DemandError(
            f"Projecting needs age bands by sex; the census table lacks {missing[:6]}... "
            "Give a census table with 5-year bands by sex (e.g. 男_60到64岁)."
        )
    out = np.empty((len(table), 2, _N5))
    for s, sex in enumerate(SEXES):
        out[:, s, 0] = table[f"{sex}_0"].to_numpy(float) + table[f"{sex}_1_4"].to_numpy(float)
        for i in range(1, _N5):
            out[:, s, i] = table[f"{sex}_{_BANDS5[i]}"].to_numpy(float)
    return out


def _band5_columns() -> list[str]:
    return [f"{s}_{b}" for b in _BANDS5 for s in SEXES]


def _wide5(arr: np.ndarray, index: Sequence[str]) -> pd.DataFrame:
    data = {f"{s}_{b}": arr[:, si, i] for i, b in enumerate(_BANDS5) for si, s in enumerate(SEXES)}
    return pd.DataFrame(data, index=pd.Index(list(index), name="area"))


def cohort_change_ratios(
    base: pd.DataFrame, previous: pd.DataFrame, *, key: str = "name"
) -> pd.DataFrame:
    """Hamilton-Perry 10-year cohort-change ratios per area, sex and 5-year band.

    ``CCR[x] = P_base[x, x+4] / P_prev[x-10, x-6]`` for bands 10-14 ... 80-84,
    and for the open band ``CCR[85+] = P_base[85+] / (P_prev[75-79] +
    P_prev[80-84] + P_prev[85+])``; the band 10-14 uses the previous 0-4
    (0 plus 1-4).  Each ratio carries ten years of mortality and migration
    together.  A band whose previous cohort is 0 takes the ratio of all areas
    pooled (with a `PlannerWarning`).

    Parameters
    ----------
    base, previous
        `read_census` tables of two censuses ten years apart (2020 and 2010).
    key
        Area column of both; every area of ``base`` must be in ``previous``.

    Returns
    -------
    DataFrame
        Index ``area``, columns ``m_10_14, f_10_14, ..., m_85plus, f_85plus``.
    """
    base_k = base[key].map(_clean_name)
    prev = previous.assign(_k=previous[key].map(_clean_name)).set_index("_k")
    missing = [k for k in base_k if k not in prev.index]
    if missing:
        _census_names_differ(missing, [k for k in prev.index if k not in set(base_k)],
                             base=base, previous=previous)
    p1 = _bands5(base)
    p0 = _bands5(prev.loc[base_k.tolist()])
    num = p1[:, :, 2:].copy()
    den = p0[:, :, :-2].copy()
    den[:, :, -1] = p0[:, :, 15:].sum(axis=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = num / den
        pooled = num.sum(axis=0) / den.sum(axis=0)
    zero = den <= 0
    if zero.any():
        areas = sorted({base_k.iloc[i] for i in np.argwhere(zero)[:, 0]})
        warnings.warn(PlannerWarning(
            f"Cohort-change ratios: a previous-census cohort is 0 in {areas[:10]}; "
            "those bands use the ratio of all areas pooled.",
            f"队列变动比：上次普查中 {'、'.join(map(str, areas[:10]))} 有年龄队列为 0；"
            "这些年龄组改用所有地区合并计算的比率。"), stacklevel=2)
        ratio = np.where(zero, np.broadcast_to(pooled, ratio.shape), ratio)
    full = np.full((len(base), 2, _N5), np.nan)
    full[:, :, 2:] = ratio
    return _wide5(full, base_k.tolist()).drop(columns=[f"{s}_{b}" for b in _BANDS5[:2]
                                                       for s in SEXES])


def _census_names_differ(only_base: list[str], only_prev: list[str], *, base: pd.DataFrame,
                         previous: pd.DataFrame) -> None:
    """Raise naming both census files and the areas each has that the other lacks.

    Neither file is blamed: an area renamed, split or merged between the
    censuses shows up on both sides, and the user decides which name to keep.
    """
    def label(df: pd.DataFrame, what: str) -> str:
        src = str(df.attrs.get("source", ""))
        return f"{what} {src}" if src and src != "the census table" else f"{what} table"

    base_l, prev_l = label(base, "the census"), label(previous, "the previous census")
    lines = []
    for name in only_base:
        close = close_names(name, only_prev)
        hint = f" (renamed from {' or '.join(repr(c) for c in close)}?)" if close else ""
        lines.append(f"{name!r} is in {base_l} but not in {prev_l}{hint}")
    if only_prev:
        lines.append(f"{prev_l} has area(s) that {base_l} lacks: "
                     f"{', '.join(repr(n) for n in only_prev[:20])}")
    collect(lines, header=(
        f"The two censuses name their areas differently ({base_l}; {prev_l}); Hamilton-Perry "
        "compares each area with itself ten years earlier. Where an area was renamed, use one "
        "name in both files; where areas were split or merged, add them up to the same areas "
        "in both files:"), error=DemandError)


def _hp_step(p: np.ndarray, ccr: np.ndarray) -> np.ndarray:
    """Ten years ahead with cohort-change ratios (arrays (n, 2, 18); ccr NaN below 10)."""
    out = np.full_like(p, np.nan)
    out[:, :, 2:17] = ccr[:, :, 2:17] * p[:, :, 0:15]
    out[:, :, 17] = ccr[:, :, 17] * p[:, :, 15:].sum(axis=2)
    return out


def _lt_step(p: np.ndarray, surv: np.ndarray, mig: np.ndarray) -> np.ndarray:
    """Five years ahead with survival ratios (surv (2, 18)) and net migration (n,)."""
    out = np.full_like(p, np.nan)
    f = (1.0 + mig)[:, None, None]
    out[:, :, 1:17] = p[:, :, 0:16] * surv[None, :, 0:16] * f
    out[:, :, 17] = (p[:, :, 16] * surv[None, :, 16] + p[:, :, 17] * surv[None, :, 17]) * f[:, :, 0]
    return out


def read_life_table(source: str | os.PathLike | pd.DataFrame) -> pd.DataFrame:
    """Read 5-year survival ratios by sex and band.

    Parameters
    ----------
    source
        CSV/Excel file or DataFrame with columns ``sex`` (m/f, 男/女),
        ``band`` (``60-64``, ``60_64``, ``60`` for its lower age, ``85+``)
        and ``survival`` (share of the band alive in the next band five
        years later; for ``85+``, the share of 85+ still alive).  Chinese
        headers 性别 / 年龄组 / 存活比 are accepted.

    Returns
    -------
    DataFrame
        Index ``sex`` (m, f), columns the 18 five-year bands (``0_4`` ...
        ``85plus``), NaN where the table has no ratio.
    """
    raw = _read_table(source, sheet=None, encoding=None)
    sex_c = _find(raw.columns, ("sex", "性别"))
    band_c = _find(raw.columns, ("band", "age", "年龄组", "年龄"))
    s_c = _find(raw.columns, ("survival", "s", "存活比", "生存比", "survival_ratio"))
    if None in (sex_c, band_c, s_c):
        raise DemandError(
            f"Life table needs columns sex, band, survival (性别, 年龄组, 存活比); it has "
            f"{list(raw.columns)}."
        )
    out = pd.DataFrame(np.nan, index=pd.Index(SEXES, name="sex"), columns=list(_BANDS5))
    problems = []
    for i, row in raw.iterrows():
        sex = _SEX_WORDS.get(str(row[sex_c]).strip().lower())
        text = re.sub(r"\s+", "", str(row[band_c])).replace("_", "-").replace("到", "-")
        text = re.sub(r"\.0$", "", text)
        m = _BAND_RE.match(text)
        band = None
        if m:
            lo = int(m.group(1))
            band = "85plus" if m.group(3) or lo >= 85 else (f"{lo}_{lo + 4}" if lo % 5 == 0
                                                           else None)
        val = pd.to_numeric(pd.Series([row[s_c]]), errors="coerce").iloc[0]
        if sex is None or band is None or not (0 <= val <= 1.5):
            problems.append(f"row {i}: sex {row[sex_c]!r}, band {row[band_c]!r}, survival "
                            f"{row[s_c]!r} (sex m/f, 5-year band, ratio between 0 and 1)")
            continue
        out.loc[sex, band] = float(val)
    collect(problems, header="Life table rows cannot be used:", error=DemandError)
    return out


def _year_grid(base_year: int, plan_years: Sequence[int], step: int) -> list[int]:
    bad = [y for y in plan_years if y < base_year]
    if bad:
        raise DemandError(
            f"Plan years {bad} are before the base census year {base_year}; "
            "give plan years after it (demand.plan_years)."
        )
    last = max([base_year, *plan_years])
    n = math.ceil((last - base_year) / step)
    return [base_year + step * k for k in range(n + 1)]


def _interpolate(grid: dict[int, np.ndarray], year: int, step: int, base_year: int) -> np.ndarray:
    """Geometric interpolation per band between the bracketing grid years."""
    k = (year - base_year) // step
    y0 = base_year + step * k
    if y0 == year:
        return grid[y0]
    f = (year - y0) / step
    a, b = grid[y0], grid[y0 + step]
    with np.errstate(divide="ignore", invalid="ignore"):
        geo = np.exp((1 - f) * np.log(a) + f * np.log(b))
    lin = (1 - f) * a + f * b
    return np.where((a > 0) & (b > 0), geo, lin)


def project_areas(
    base: pd.DataFrame,
    *,
    method: Literal["hamilton_perry", "life_table"] = "hamilton_perry",
    previous: pd.DataFrame | None = None,
    ratios: pd.DataFrame | None = None,
    life_table: pd.DataFrame | None = None,
    migration: float | Mapping[str, float] = 0.0,
    base_year: int = 2020,
    plan_years: Sequence[int] = PLAN_YEARS,
    key: str = "name",
    include_bands: bool = False,
    on_missing: Literal["raise", "skip"] = "raise",
) -> pd.DataFrame:
    """Project the older population of each census area to plan years.

    ``hamilton_perry``: ``P(t+10)[x] = CCR[x] · P(t)[x-10]`` with the
    area's `cohort_change_ratios` from two censuses ten years apart,
    applied in 10-year steps.  ``life_table``: ``P(t+5)[x+5] = P(t)[x] ·
    S[x] · (1 + m)`` (open band: ``(P[80-84]·S[80] + P[85+]·S[85+])·(1+m)``)
    with the user's survival ratios and net-migration factor ``m`` per
    5-year step.  Years between steps (2025 and 2035 for Hamilton-Perry)
    are interpolated geometrically per band between the bracketing step
    years, ``P(y0 + f·step) = P(y0)^(1-f) · P(y0+step)^f`` (linear where a
    band is 0): constant growth rate within the step, and the step years
    themselves are reproduced exactly.  No fertility assumption is needed:
    people 60+ at 15 years ahead were 45+ at the base census; bands below
    the projected horizon are NaN.

    Parameters
    ----------
    base
        `read_census` table of the base census (canonical band columns).
    method
        ``"hamilton_perry"`` (needs ``previous``) or ``"life_table"`` (needs
        ``life_table`` from `read_life_table`).
    previous
        The census ten years before ``base``.
    ratios
        Instead of ``previous``: cohort-change ratios from
        `cohort_change_ratios` (index: the areas of ``base``), e.g. to apply
        one period's ratios to another base.
    life_table
        Survival ratios (index m/f, columns the 5-year bands).
    migration
        Net-migration factor per 5-year step (life table only): one number
        for every area, or area name -> factor (others 0).
    base_year, plan_years
        Census year of ``base``; years to project to (not before ``base_year``).
    key
        Area column.
    include_bands
        Also return the 5-year band rows (group ``m_60_64`` ...).
    on_missing
        What to do when the projection cannot run (age bands by sex missing
        from a census, no previous census or life table; `projection_needs`
        says which): ``"raise"`` a `DemandError`, or ``"skip"``: a
        `PlannerWarning` saying what is needed, and the base year only.

    Returns
    -------
    DataFrame
        Long: ``area, year, group, value, method, estimated``; the base year
        rows are the census (``estimated=False``), or, for a table of totals
        only, its older groups (estimated where `older_groups` made them).
    """
    names = base[key].map(_clean_name).tolist()
    _year_grid(base_year, plan_years, 5)  # plan years before the census are an error
    need = projection_needs(base, method=method, previous=previous, ratios=ratios,
                            life_table=life_table, base_year=base_year, plan_years=plan_years)
    if need is not None:
        if on_missing != "skip":
            raise DemandError(need)
        years = sorted(set(plan_years))
        need_zh = projection_needs(base, method=method, previous=previous, ratios=ratios,
                                   life_table=life_table, base_year=base_year,
                                   plan_years=plan_years, lang="zh")
        warnings.warn(PlannerWarning(
            need + f" The projection to {', '.join(map(str, years))} is "
            f"skipped; demand_projection holds the base year ({base_year}) only. Set "
            "demand.plan_years: [] if no projection is wanted.",
            f"{need_zh}已跳过到 {'、'.join(map(str, years))} 年的推算，demand_projection 只含"
            f"基期（{base_year} 年）。如不需要推算，请设置 demand.plan_years: []。"),
            stacklevel=2)
        plan_years = []
    if not all(c in base.columns for c in BAND_COLUMNS):
        return _group_rows(base, names, base_year=base_year)
    p = _bands5(base)
    # the census alone (no later plan year): nothing to project, nothing else needed
    kind = "none" if all(y == base_year for y in plan_years) else method
    if kind == "none":
        step, label, advance = 10, "", _unchanged
    elif kind == "hamilton_perry":
        step, label, advance = _hamilton_perry(base, previous, ratios, names, key=key,
                                               base_year=base_year)
    elif kind == "life_table":
        step, label, advance = _life_table(life_table, migration, names, base_year=base_year,
                                           plan_years=plan_years)
    else:
        raise DemandError(f"method={method!r} is not known: use 'hamilton_perry' or 'life_table'.")

    grid_years = _year_grid(base_year, plan_years, step)
    grid = {base_year: p}
    for y0, y1 in itertools.pairwise(grid_years):
        grid[y1] = advance(grid[y0])
    return _projection_rows(grid, names, base_year=base_year, plan_years=plan_years, step=step,
                            label=label, include_bands=include_bands)


def projection_needs(
    base: pd.DataFrame,
    *,
    method: str = "hamilton_perry",
    previous: pd.DataFrame | None = None,
    ratios: pd.DataFrame | None = None,
    life_table: pd.DataFrame | None = None,
    base_year: int = 2020,
    plan_years: Sequence[int] = PLAN_YEARS,
    lang: str = "en",
) -> str | None:
    """What a projection to ``plan_years`` lacks, as a sentence; None when it can run.

    A projection of the 60+ residents ``h`` years ahead moves cohorts in
    steps (10 years for Hamilton-Perry, 5 for a life table), so it needs the
    base census's 5-year age bands by sex from age ``60 - step·⌈h/step⌉`` up
    (from 40 for 2035 from a 2020 census by Hamilton-Perry) and, for
    Hamilton-Perry, the previous census's from ten years lower.  The tables
    read by `read_census` have all bands or none.  ``lang="zh"`` gives the
    sentence in Chinese.
    """
    horizon = max([base_year, *plan_years]) - base_year
    if horizon <= 0:
        return None
    zh = lang == "zh"
    step = 5 if method == "life_table" else 10
    age = max(0, 60 - step * math.ceil(horizon / step))
    banded = all(c in base.columns for c in BAND_COLUMNS)
    where = base.attrs.get("source", "the census table")
    if zh:
        where = _table_zh(base)
    lacks = []
    if not banded:
        lacks.append(f"基期普查（{where}）没有分性别的 5 岁年龄组，需要 {age} 岁及以上各组"
                     f"（m_{age}_{age + 4} … f_85plus）" if zh else
                     f"the base census ({where}) has no 5-year age bands by sex; it needs "
                     f"them from age {age} up (m_{age}_{age + 4} ... f_85plus)")
    if method == "life_table":
        if life_table is None:
            lacks.append("没有给出生命表（demand.life_table：sex、band、survival）" if zh else
                         "no life table is given (demand.life_table: sex, band, survival)")
    elif ratios is None:
        prev_age = max(0, age - 10)
        if previous is None:
            lacks.append(f"没有给出上次普查（demand.census_previous，基期前十年，需有 {prev_age} "
                         "岁及以上分性别的 5 岁年龄组）" if zh else
                         f"no previous census is given (demand.census_previous, ten years "
                         f"before the base, with 5-year age bands by sex from age {prev_age} "
                         "up)")
        elif not all(c in previous.columns for c in BAND_COLUMNS):
            lacks.append(f"上次普查（{_table_zh(previous)}）没有分性别的 5 岁年龄组，"
                         f"需要 {prev_age} 岁及以上各组" if zh else
                         f"the previous census ({previous.attrs.get('source', '')}) has no "
                         f"5-year age bands by sex; it needs them from age {prev_age} up")
    if not lacks:
        return None
    if zh:
        how = "生命表法" if method == "life_table" else "Hamilton-Perry 队列变动比法"
        return f"无法推算 {horizon} 年后的老年人口（{how}）：" + "；".join(lacks) + "。"
    how = "by life table" if method == "life_table" else "by Hamilton-Perry cohort-change ratios"
    return (f"Projecting the older residents {horizon} years ahead {how} cannot run: "
            + "; ".join(lacks) + ".")


def _group_rows(base: pd.DataFrame, names: list[str], *, base_year: int) -> pd.DataFrame:
    """Base-year rows of a table without bands: its older groups, estimated where made up."""
    made = base.attrs.get("group_methods", {})
    rows = [pd.DataFrame({
        "area": names, "year": base_year, "group": g,
        "value": base[g].to_numpy(float), "method": made.get(g, f"census {base_year}"),
        "estimated": g in made,
    }) for g in GROUPS if g in base.columns]
    if not rows:
        return pd.DataFrame(columns=["area", "year", "group", "value", "method", "estimated"])
    return pd.concat(rows, ignore_index=True)


def _unchanged(x: np.ndarray) -> np.ndarray:
    """The step of a projection with no later year: never called."""
    return x


def _hamilton_perry(
    base: pd.DataFrame,
    previous: pd.DataFrame | None,
    ratios: pd.DataFrame | None,
    names: list[str],
    *,
    key: str,
    base_year: int,
) -> tuple[int, str, _Advance]:
    """Step (10 years), method label and step function of a Hamilton-Perry projection."""
    if previous is None and ratios is None:
        raise DemandError(
            "The Hamilton-Perry projection needs the previous census (ten years before the "
            "base): set demand.census_previous (e.g. the 2010 table), or use "
            "method: life_table with demand.life_table."
        )
    if ratios is None:
        ccr = cohort_change_ratios(base, previous, key=key)
        label = f"Hamilton-Perry cohort-change ratios {base_year - 10}-{base_year}"
    else:
        ratios = ratios.rename(index=_clean_name)
        missing = [n for n in names if n not in ratios.index]
        if missing:
            _match_names(missing, ratios.index.tolist(), what="ratios index")
        ccr = ratios.loc[names]
        label = "Hamilton-Perry cohort-change ratios (given)"
    c = np.full((len(base), 2, _N5), np.nan)
    for i, b in enumerate(_BANDS5[2:], start=2):
        for si, s in enumerate(SEXES):
            c[:, si, i] = ccr[f"{s}_{b}"].to_numpy()

    def advance(x: np.ndarray) -> np.ndarray:
        return _hp_step(x, c)

    return 10, label, advance


def _life_table(
    life_table: pd.DataFrame | None,
    migration: float | Mapping[str, float],
    names: list[str],
    *,
    base_year: int,
    plan_years: Sequence[int],
) -> tuple[int, str, _Advance]:
    """Step (5 years), method label and step function of a life-table projection."""
    if life_table is None:
        raise DemandError(
            "method 'life_table' needs survival ratios: set demand.life_table to a CSV with "
            "columns sex, band, survival (or use method: hamilton_perry)."
        )
    surv = life_table.reindex(index=list(SEXES), columns=list(_BANDS5)).to_numpy(float)
    mig = _migration(migration, names)
    label = "cohort-component survival ratios (life table)" + (
        ", with net migration" if np.any(mig != 0) else "")
    horizon = max([base_year, *plan_years]) - base_year
    need = max(0, 12 - math.ceil(horizon / 5))
    missing = [f"{s}_{_BANDS5[i]}" for si, s in enumerate(SEXES) for i in range(need, _N5)
               if not np.isfinite(surv[si, i])]
    if missing:
        raise DemandError(
            f"Life table lacks survival ratios for {missing} (needed to project 60+ "
            f"{horizon} years ahead). Add those rows (sex, band, survival)."
        )

    def advance(x: np.ndarray) -> np.ndarray:
        return _lt_step(x, surv, mig)

    return 5, label, advance


def _projection_rows(
    grid: dict[int, np.ndarray],
    names: list[str],
    *,
    base_year: int,
    plan_years: Sequence[int],
    step: int,
    label: str,
    include_bands: bool,
) -> pd.DataFrame:
    """The long table of `project_areas` from the band counts of the step years."""
    rows = []
    for year in sorted({base_year, *plan_years}):
        arr = _interpolate(grid, year, step, base_year)
        wide = _wide5(arr, names)
        values = {g: wide[[c for c in _band5_columns() if _lower5(c) >= lo]].sum(axis=1)
                  for g, lo in GROUPS.items()}
        if include_bands:
            values.update({c: wide[c] for c in _band5_columns()})
        est = year != base_year
        for g, series in values.items():
            rows.append(pd.DataFrame({
                "area": names, "year": year, "group": g, "value": series.to_numpy(),
                "method": label if est else f"census {base_year}", "estimated": est,
            }))
    return pd.concat(rows, ignore_index=True)


def _lower5(column: str) -> int:
    return int(re.match(r"[mf]_(\d+)", column).group(1))


def _migration(migration: float | Mapping[str, float], names: list[str]) -> np.ndarray:
    if isinstance(migration, Mapping):
        clean = {_clean_name(k): float(v) for k, v in migration.items()}
        unknown = [k for k in clean if k not in names]
        if unknown:
            _match_names(unknown, names, what="net-migration area")
        return np.array([clean.get(n, 0.0) for n in names])
    return np.full(len(names), float(migration))


def area_projection_table(
    projection: pd.DataFrame, *, lang: Literal["zh", "en"] = "zh", decimals: int | None = 0
) -> pd.DataFrame:
    """Wide display table: per area and older group, the census beside each plan year.

    Parameters
    ----------
    projection
        From `project_areas`.
    lang
        ``"zh"`` (default) or ``"en"`` column labels.
    decimals
        Round the counts for display (default whole persons); None keeps them.

    Returns
    -------
    DataFrame
        Columns area, group, one column per year (the base year is the
        census), the change from the base year to the last plan year, and the method.
    """
    p = projection[projection["group"].isin(list(GROUPS))]
    wide = p.pivot_table(index=["area", "group"], columns="year", values="value",
                         sort=False).reset_index()
    years = sorted(p["year"].unique())
    base, last = years[0], years[-1]
    wide["change"] = wide[last] - wide[base]
    methods = p[p["estimated"]]["method"].unique()
    wide["method"] = methods[0] if len(methods) else ""
    if decimals is not None:
        wide[[*years, "change"]] = wide[[*years, "change"]].round(decimals)
    wide.columns = [str(c) for c in wide.columns]
    if lang == "zh":
        names = {"area": "地区", "group": "人群", "change": f"{base}–{last}变化",
                 "method": "方法", str(base): f"{base}普查"}
        names.update({str(y): f"{y}预测" for y in years[1:]})
        groups = {"pop_60plus": "60岁及以上", "pop_65plus": "65岁及以上",
                  "pop_80plus": "80岁及以上"}
        wide["group"] = wide["group"].map(groups)
        wide = wide.rename(columns=names)
    return wide


def project_units(
    units: pd.DataFrame,
    projection: pd.DataFrame,
    *,
    area_column: str,
    id_column: str = "id",
    name_column: str | None = "name",
    estimated_base: bool = False,
) -> pd.DataFrame:
    """Carry an area projection down to small units (communities, residential pieces).

    Each unit keeps its own base-year count of each older group and grows
    it as its area does: ``value(unit, g, y) = base(unit, g) · area(g, y) /
    area(g, base)``.  This is the same as giving every unit its area's age
    structure above the group's lower age, scaled to the unit's own count:
    simple, and honest about what a small area's count can support.  A unit
    whose area has 0 of a group grows like all areas pooled.

    Parameters
    ----------
    units
        Table with ``id_column``, ``area_column`` and the older groups
        (``pop_60plus``, ``pop_65plus``, ``pop_80plus``; those present).
    projection
        From `project_areas` (the areas named in ``area_column``).
    estimated_base
        Whether the units' base counts are themselves estimates.

    Returns
    -------
    DataFrame
        Long: ``unit_id, name, area, year, group, value, change, method, estimated``.
    """
    groups = [g for g in GROUPS if g in units.columns]
    p = projection[projection["group"].isin(groups)]
    years = sorted(p["year"].unique())
    base_year = years[0]
    areas = units[area_column].map(_clean_name)
    unknown = sorted(set(areas.dropna()) - set(p["area"]))
    if unknown:
        listed = sorted(p["area"].unique())
        _match_names(unknown, listed, what=area_column, header=(
            f"Population units: their {area_column!r} value(s) below match no area of the "
            f"census projection (it has: {listed[:20]}). Use the census table of the units' "
            "level (scenario: demand.area_layer districts or townships), or make the names "
            "agree:"))
    if areas.isna().any():
        raise DemandError(
            f"{int(areas.isna().sum())} unit(s) have no {area_column!r}; fill it so each unit "
            "takes its area's projection."
        )
    rows = []
    for g in groups:
        pg = p[p["group"] == g].pivot_table(index="area", columns="year", values="value")
        base = pg[base_year]
        pooled = pg.sum() / base.sum() if base.sum() > 0 else pg.sum() * np.nan
        factor = pg.div(base.where(base > 0), axis=0)
        factor = factor.fillna(pooled)
        meth = p[(p["group"] == g) & p["estimated"]].drop_duplicates("area").set_index("area")
        own = units[g].to_numpy(float)
        for y in years:
            f = factor[y].reindex(areas).to_numpy()
            value = own * f
            rows.append(pd.DataFrame({
                "unit_id": units[id_column].to_numpy(),
                "name": units[name_column].to_numpy() if name_column in units else None,
                "area": areas.to_numpy(), "year": y, "group": g, "value": value,
                "change": value - own,
                "method": (meth["method"].reindex(areas).to_numpy() if y != base_year
                           else "base count"),
                "estimated": True if y != base_year else estimated_base,
            }))
    if not rows:
        return pd.DataFrame(columns=["unit_id", "name", "area", "year", "group", "value",
                                     "change", "method", "estimated"])
    out = pd.concat(rows, ignore_index=True)
    later = out["year"] != base_year
    out.loc[later, "method"] = out.loc[later, "method"] + "; scaled to each unit's own count"
    return out


def projection_columns(info: pd.DataFrame, projection: pd.DataFrame, *,
                       source: str = "") -> pd.DataFrame:
    """Which columns of a run are estimates, and how: ``info`` plus the projection's row.

    ``info`` comes from `estimate_population` or `fill_groups`; the row added
    says how ``demand_projection.value`` was estimated (the projection's
    method, scaled to each unit's own count) and from which ``source``.
    """
    est = projection["estimated"].astype(bool) & (projection["year"] != projection["year"].min())
    if est.any():
        method = projection.loc[est, "method"].iloc[0] + "; scaled to each unit's own count"
    else:
        method = "no projection: the base-year counts of each unit"
    row = pd.DataFrame([{
        "layer": "demand_projection", "column": "value", "estimated": True,
        "method": method, "source": source,
    }])
    return pd.concat([info, row], ignore_index=True)

