"""Planning-norm checks: rule sets per jurisdiction, each result citing its clause.

Rule files (``*.yaml`` beside this module, one per jurisdiction) hold the
numbers of the policy documents (digest: the project's shared NORMS.md); `load_rules` reads
one (with its ``extends`` chain), `check` evaluates it on the layers of a
study area and returns one row per rule and unit, and `check_study` adds
the townships' worst status (what the pipeline's ``norms`` step stores).

Shipped rule sets: ``national`` (national references, secondary sources),
``shaanxi_2023``, ``xian_2021`` (extends Shaanxi), ``sucheng_2024``,
``shanxi_2023``, ``henan_2023``.

Rule fields: ``id``, ``title: {zh, en}``, ``measure``, ``threshold`` (a
lower bound; shares as fractions, 0.55 = 55 %), ``unit`` (display text),
``scope``, ``applies_from`` (first plan year; optional ``applies_until``),
``source``, ``clause``; optional ``tier``, ``township_kind`` (``subdistrict``
街道 or ``town`` 镇/乡: the township-centre measures count only that kind, as
where a document says "每个城市街道"), ``minutes``, ``quote`` (the
sentence of the document), ``note``, ``secondary`` and, in a file that
``extends`` another, ``enabled: false`` to drop an inherited rule.

Measures (value compared with the threshold):

=====================================  =====================  ==========================================
measure                                scope                  value
=====================================  =====================  ==========================================
``land_per_resident``                  district, township     facility ``land_area_m2`` / residents
``community_floor_per_100_households`` community              station ``floor_area_m2`` / households × 100
``facility_floor_area``                facility (``tier``)    ``floor_area_m2``
``facility_beds``                      facility (``tier``)    ``beds``
``facility_nursing_share``             facility (``tier``)    ``nursing_beds / beds``
``community_station_count``            community              stations in the community
``township_centre_count``              township               township centres in the township
``public_home_count``                  district               public ``district_home`` facilities
``public_beds_share``                  district, township     public institutional beds / residents 60+
``nursing_bed_share``                  district, township     nursing / all institutional beds
``coverage_15min``                     district, township     share of residents 60+ within ``minutes``
``township_centre_coverage``           district               share of townships with a centre
``community_station_coverage``         district, township     share of communities with a station
``beds_per_1000_older``                district, township     institutional beds per 1000 residents 60+
``social_workers_per_1000_older``      district, township     ``social_workers`` per 1000 residents 60+
``social_workers_per_100_beds``        district, township     institutions' workers per 100 of their beds
=====================================  =====================  ==========================================

Institutional beds are those of ``district_home`` and ``township_centre``
facilities (community stations' beds are day-care beds); a rule's ``tier``
narrows any measure to one tier.  See ``_checks.py`` for how facilities and
population units are assigned to units and how missing data is reported.

Examples
--------
>>> import planner.norms as norms
>>> rules = norms.load_rules("sucheng_2024", plan_year=2025)
>>> rules["nursing_bed_share"].threshold
0.7
"""

from __future__ import annotations

import os
from typing import Any, Literal

import pandas as pd

from planner._errors import NormsError
from planner.norms._checks import COLUMNS, MEASURE_FUNCS, REL_TOL, Ctx, Data, _ids, passes
from planner.norms._rules import (
    MEASURES,
    RULES_DIR,
    SCOPES,
    Rule,
    RuleSet,
    is_rule_file,
    load_rules,
    shipped_rule_sets,
)

__all__ = [
    "COLUMNS", "MEASURES", "REL_TOL", "RULES_DIR", "SCOPES", "Rule", "RuleSet", "check",
    "check_study", "failing_townships", "is_rule_file", "load_rules", "passes", "shipped_rule_sets",
    "township_status",
]

_STATUS_RANK = {"pass": 0, "not_assessable": 1, "fail": 2}
_STATUS_LABEL = {
    "zh": {"pass": "达标", "fail": "未达标", "not_assessable": "无法评估", "none": "无适用规则"},
    "en": {"pass": "pass", "fail": "fail", "not_assessable": "not assessable", "none": "no rule applies"},
}


def check(
    rules: RuleSet | str | os.PathLike,
    *,
    population: Any = None,
    facilities: Any = None,
    townships: Any = None,
    districts: Any = None,
    access: Any = None,
    lang: Literal["zh", "en"] = "zh",
    plan_year: int | None = None,
) -> pd.DataFrame:
    """Check a rule set against the layers of a study area.

    Parameters
    ----------
    rules
        A `RuleSet`, or a shipped name / rule-file path passed to `load_rules`.
    population
        Communities or compounds (polygons, or points) with canonical columns
        ``id, name, population, pop_60plus, households`` and optionally
        ``township``, ``district``.
    facilities
        Facility points with ``tier`` and, as the rules need them, ``beds,
        nursing_beds, floor_area_m2, land_area_m2, public, social_workers``
        and ``community`` / ``township`` / ``district``.
    townships, districts
        Boundary polygons (``id, name`` and optionally ``population``,
        ``pop_60plus``, ``households``, ``district``).
    access
        The access step's ``population_access`` layer (``pop_60plus`` and
        ``within_15min`` or ``time_min_any``), for coverage rules.
    lang
        Language of ``title`` and ``shortfall_text`` (and of the study-area name).
    plan_year
        Used only when ``rules`` is a name or path (see `load_rules`).

    Returns
    -------
    pandas.DataFrame
        One row per rule and unit with the columns of `COLUMNS`:
        ``status`` is ``"pass"``, ``"fail"`` or ``"not_assessable"``;
        ``shortfall`` is the amount missing in the rule's own terms (m² of
        land, beds, stations, older residents ...), ``shortfall_text`` says
        it in words, ``missing`` names the data that is lacking.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import Point, box
    >>> towns = gpd.GeoDataFrame({"id": ["T1"], "name": ["A街道"], "population": [10_000]},
    ...                          geometry=[box(0, 0, 1000, 1000)], crs=3857)
    >>> fac = gpd.GeoDataFrame({"id": ["F1"], "tier": ["township_centre"], "land_area_m2": [1500.0]},
    ...                        geometry=[Point(500, 500)], crs=3857)
    >>> t = check("national", townships=towns, facilities=fac, lang="en")
    >>> row = t.set_index("rule_id").loc["land_per_resident_township"]
    >>> float(row.value), row.status, row.shortfall_text
    (0.15, 'fail', 'needs 500 m² more elderly-care land')
    """
    table = _check(rules, population=population, facilities=facilities, townships=townships,
                   districts=districts, access=access, lang=lang, plan_year=plan_year)
    return table[COLUMNS]


def _check(rules, *, population, facilities, townships, districts, access, lang, plan_year):
    if lang not in ("zh", "en"):
        raise NormsError(f"lang must be 'zh' or 'en', got {lang!r}.")
    if not isinstance(rules, RuleSet):
        rules = load_rules(rules, plan_year=plan_year)
    data = Data(population=population, facilities=facilities, townships=townships,
                districts=districts, access=access, lang=lang)
    rows: list[dict] = []
    for rule in rules:
        ctx = Ctx(rule, data)
        MEASURE_FUNCS[rule.measure](ctx)
        rows.extend(ctx.rows)
    table = pd.DataFrame(rows, columns=[*COLUMNS, "_township"])
    for col in ("value", "threshold", "shortfall"):
        table[col] = table[col].astype(float)
    return table


def township_status(checks: pd.DataFrame, townships: Any, *, lang: str = "zh",
                    township_of: pd.Series | None = None) -> Any:
    """Township polygons with their worst norm status and a hover text of failing rules.

    Parameters
    ----------
    checks
        Rows of `check` with a ``_township`` column (the township each row's
        unit lies in), as produced inside `check_study`; or ``township_of`` gives it.
    townships
        The township polygons (canonical ``id``, ``name``).

    Returns
    -------
    geopandas.GeoDataFrame
        ``townships`` plus ``norm_status`` (``fail`` > ``not_assessable`` >
        ``pass``; ``none`` where no rule reaches the township), ``n_fail``,
        ``n_not_assessable``, ``norm_text`` (failing rules with their clauses)
        and ``failed_rules`` (the titles of the rules that fail there, each
        once, joined by "；" / "; ").
    """
    out = townships.copy()
    ids = _ids(out)
    key = township_of if township_of is not None else checks.get("_township")
    df = checks.assign(_t=key)
    labels = _STATUS_LABEL[lang]
    status, n_fail, n_na, texts, failed = [], [], [], [], []
    sep = "；" if lang == "zh" else "; "
    for uid in ids:
        rows = df[df["_t"] == uid]
        if rows.empty:
            status.append("none")
            n_fail.append(0)
            n_na.append(0)
            texts.append(labels["none"])
            failed.append("")
            continue
        worst = max(rows["status"], key=_STATUS_RANK.__getitem__)
        fails = rows[rows["status"] == "fail"]
        status.append(worst)
        n_fail.append(len(fails))
        n_na.append(int((rows["status"] == "not_assessable").sum()))
        texts.append(_hover(fails, rows, worst, labels, lang))
        failed.append(sep.join(dict.fromkeys(fails["title"].astype(str))))
    out["norm_status"] = status
    out["n_fail"] = n_fail
    out["n_not_assessable"] = n_na
    out["norm_text"] = texts
    out["failed_rules"] = failed
    return out


def _hover(fails: pd.DataFrame, rows: pd.DataFrame, worst: str, labels: dict, lang: str) -> str:
    if fails.empty:
        return labels[worst]
    sep = "；" if lang == "zh" else "; "
    by_rule = fails.groupby("rule_id", sort=False)
    parts = []
    for _, g in by_rule:
        first = g.iloc[0]
        count = f"×{len(g)}" if len(g) > 1 else ""
        short = f" {first['shortfall_text']}" if len(g) == 1 and first["shortfall_text"] else ""
        parts.append(f"{first['title']}{count}{short}（{first['clause']}）" if lang == "zh"
                     else f"{first['title']}{count}{short} ({first['clause']})")
    head = f"{labels['fail']} {len(fails)}: " if lang == "en" else f"{labels['fail']} {len(fails)} 项："
    return head + sep.join(parts[:6]) + (sep + "…" if len(parts) > 6 else "")


def failing_townships(checks: pd.DataFrame, *, measure: str = "township_centre_count") -> list[str]:
    """Unit ids of the townships failing ``measure`` (what the locate step reads)."""
    rows = checks[(checks["measure"] == measure) & (checks["status"] == "fail")]
    return rows["unit_id"].tolist()


def check_study(
    rules: RuleSet,
    *,
    population: Any = None,
    facilities: Any = None,
    townships: Any = None,
    districts: Any = None,
    access: Any = None,
    lang: Literal["zh", "en"] = "zh",
) -> tuple[pd.DataFrame, Any]:
    """`check` a study area, and its townships coloured by their worst status.

    Returns
    -------
    (checks, township_norms)
        The table of `check` (columns `COLUMNS`) and the township polygons
        with `township_status` (``None`` without townships).
    """
    table = _check(rules, population=population, facilities=facilities, townships=townships,
                   districts=districts, access=access, lang=lang, plan_year=None)
    towns = None
    if townships is not None and len(townships):
        towns = township_status(table, townships, lang=lang)
    return table[COLUMNS].reset_index(drop=True), towns
