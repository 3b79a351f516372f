"""Census tables to small areas, older residents, and plan-year projections.

Bureaus rarely have population per community.  They have census tables by
district or township (5-year age bands by sex, households) and residential
polygons.  This module turns them into counts per small area, honestly
labelled as estimates:

1. `read_census` parses the 2010 / 2020 Chinese census layouts (and the same
   layout per township) into one tidy table with canonical band columns
   ``m_0, f_0, m_1_4, f_1_4, m_5_9, ..., m_85plus, f_85plus`` and validates it.
2. `older_groups` adds ``pop_60plus``, ``pop_65plus``, ``pop_80plus`` and
   persons per household.
3. `allocate` spreads area totals onto residential polygons (dasymetric
   mapping) with totals preserved exactly per area.
4. `project_areas` projects the older groups to plan years by cohort
   methods (Hamilton-Perry cohort-change ratios, or a life table);
   `project_units` carries the projection down to small areas.
5. `run_step` is the ``demand`` step of `planner.scenario.run`.

No fertility assumption is needed: only the 60+, 65+ and 80+ groups are
projected, and people aged 60+ in 2035 were already 45+ in 2020 (at most
15 years ahead, every projected person is alive and counted in the base
census).  The youngest bands of a projection are left empty (NaN) on purpose.

Examples
--------
>>> from planner import demand
>>> table = demand.older_groups(demand.read_census("census2020.csv"))  # doctest: +SKIP
>>> small = demand.allocate(districts, table, residential)  # doctest: +SKIP
"""

from __future__ import annotations

import difflib
import math
import os
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from planner._errors import DemandError, PlannerWarning, collect

if TYPE_CHECKING:  # pragma: no cover
    import geopandas as gpd

    from planner.scenario import RunResult

# --------------------------------------------------------------------------- vocabulary
#: Canonical census age bands (lower, upper or None for the open band, key).
BANDS: tuple[tuple[int, int | None, str], ...] = (
    (0, 0, "0"), (1, 4, "1_4"),
    *((a, a + 4, f"{a}_{a + 4}") for a in range(5, 85, 5)),
    (85, None, "85plus"),
)
SEXES = ("m", "f")
#: Canonical band columns in census order: m_0, f_0, m_1_4, f_1_4, ..., m_85plus, f_85plus.
BAND_COLUMNS: tuple[str, ...] = tuple(f"{s}_{b[2]}" for b in BANDS for s in SEXES)
#: Older groups and their lower age.
GROUPS: dict[str, int] = {"pop_60plus": 60, "pop_65plus": 65, "pop_80plus": 80}
#: Count columns spread by `allocate` (when present), besides the bands.
COUNT_COLUMNS = ("population", "households", *GROUPS)

# 5-year projection bands (0-4 merged): index i covers ages 5i..5i+4, 17 = 85+.
_N5 = 18
_BANDS5 = tuple(f"{5 * i}_{5 * i + 4}" for i in range(17)) + ("85plus",)

_KEY_CANDIDATES = ("name", "名称", "地区", "街道", "乡镇", "镇街", "街道/乡镇", "乡镇/街道",
                   "township", "区县", "district", "区", "area")
_CODE_CANDIDATES = ("区划代码", "code", "adcode", "代码")
_TOTAL_NAMES = ("population", "合计", "人口数_合计", "人口数", "总人口", "常住人口", "人口", "pop")
_HOUSEHOLD_NAMES = ("households", "家庭户户数", "家庭户数", "家庭数", "户数", "总户数")
_GROUP_NAMES = {
    "pop_60plus": ("pop_60plus", "60岁及以上人口", "60岁以上人口", "60岁及以上"),
    "pop_65plus": ("pop_65plus", "65岁及以上人口", "65岁以上人口", "65岁及以上"),
    "pop_80plus": ("pop_80plus", "80岁及以上人口", "80岁以上人口", "80岁及以上"),
}

_SEX_WORDS = {"男": "m", "女": "f", "male": "m", "female": "f", "m": "m", "f": "f",
              "men": "m", "women": "f"}
_CANON_RE = re.compile(r"^([mf])_(\d+)(?:_(\d+))?(plus)?$")
_BAND_RE = re.compile(r"^(\d+)(?:-(\d+))?(?:岁|周岁)?(及以上|以上|\+|plus)?$")


def _clean_name(value: Any) -> Any:
    """Area key as text without any whitespace; integer-valued floats lose '.0'."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return value
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        value = int(value)
    return re.sub(r"\s+", "", str(value))


def _show(value: Any) -> str:
    """A cell value for a message: numbers plainly, text quoted."""
    if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
        return f"{float(value):g}"
    return repr(str(value))


def _parse_band(column: str) -> tuple[str, int, int | None] | None:
    """Parse a census column name into (sex, lower age, upper age or None for open).

    Understands ``0岁（男）``, ``1-4岁（男）``, ``85岁及以上（女）`` (2010),
    ``男_0岁``, ``女_1到4岁``, ``男_85岁以上`` (2020) and ``m_1_4`` / ``f_85plus``.
    Returns None for columns that are not an age band by sex.
    """
    text = re.sub(r"\s+", "", str(column))
    m = _CANON_RE.match(text)
    if m:
        lo = int(m.group(2))
        hi = None if m.group(4) else (int(m.group(3)) if m.group(3) else lo)
        return m.group(1), lo, hi
    text = text.replace("（", "(").replace("）", ")")
    sex = None
    for word in ("男", "女"):
        if word in text:
            if sex is not None:
                return None
            sex = _SEX_WORDS[word]
            text = text.replace(word, "")
    if sex is None:
        return None
    text = re.sub(r"[()_]", "", text)
    text = re.sub(r"[到至~～—–]", "-", text)
    m = _BAND_RE.match(text)
    if not m or "岁" not in str(column) and not m.group(3):
        return None
    lo = int(m.group(1))
    if m.group(3):
        return sex, lo, None
    return sex, lo, int(m.group(2)) if m.group(2) else lo


def _canonical_band(lo: int, hi: int | None) -> str | None:
    """The canonical band key for (lo, hi); '85plus' also takes finer bands above 85."""
    for blo, bhi, key in BANDS:
        if (lo, hi) == (blo, bhi):
            return key
    if lo >= 85:
        return "85plus"
    return None


def _find(columns: Sequence[str], names: Iterable[str]) -> str | None:
    norm = {re.sub(r"\s+", "", str(c)).lower(): c for c in columns}
    for n in names:
        if n.lower() in norm:
            return norm[n.lower()]
    return None


# --------------------------------------------------------------------------- reading
def read_census(
    source: str | os.PathLike | pd.DataFrame,
    *,
    key: str | None = None,
    trust: Literal["bands", "total"] | None = None,
    sheet: str | int | None = None,
    encoding: str | None = None,
) -> pd.DataFrame:
    """Read a census table (by district or township) into a tidy, validated table.

    Parameters
    ----------
    source
        A CSV or Excel file, or a DataFrame, in one of the Chinese census
        layouts: 2010 (``合计``, ``0岁（男）``, ``1-4岁（男）``, ...,
        ``85岁及以上（女）``, ``家庭户户数``), 2020 (``人口数_合计``, ``男_0岁``,
        ``女_1到4岁``, ..., ``男_85岁以上``, ``家庭户数``), the same per township,
        or canonical columns (``population``, ``m_0``, ..., ``f_85plus``).
        Bands finer than 85+ (85-89, ..., 100+) are summed into 85+.
    key
        Column naming the area.  Default: the first of ``name``, ``名称``,
        ``地区``, ``街道``, ``乡镇``, ``township``, ``区县``, ``district``.
    trust
        What to believe where the age bands do not sum to the total (or to a
        given ``pop_60plus``...): ``"bands"`` sets the total to the band sum,
        ``"total"`` scales the bands of that area to the total.  Default
        (None): raise a `DemandError` listing every mismatch.
    sheet, encoding
        Excel sheet; text encoding of a CSV (default: UTF-8, then GBK).

    Returns
    -------
    DataFrame
        One row per area: ``name`` (whitespace removed), ``code`` (from
        ``区划代码``, when present), ``population``, ``households`` (when
        present), the canonical band columns `BAND_COLUMNS` (when the table
        has bands), and given ``pop_60plus``... only when it has no bands.

    Raises
    ------
    DemandError
        Listing every non-numeric or negative count, duplicate area and
        (unless ``trust`` is set) every band/total mismatch with its difference.
    """
    raw = _read_table(source, sheet=sheet, encoding=encoding)
    where = source if not isinstance(source, pd.DataFrame) else "the census table"
    columns = list(raw.columns)
    key = key or _find(columns, _KEY_CANDIDATES)
    if key is None or key not in raw.columns:
        raise DemandError(
            f"Census table {where}: no area-name column found (columns: {columns[:12]}...). "
            "Pass key='<column>' (scenario: demand.table_key) naming the district/township column."
        )
    out = pd.DataFrame({"name": raw[key].map(_clean_name)})
    code_col = _find(columns, _CODE_CANDIDATES)
    if code_col is not None and code_col != key:
        out["code"] = raw[code_col].map(_clean_name)

    problems: list[str] = []
    names = out["name"].astype(str).tolist()

    def numeric(col: str) -> pd.Series:
        values = pd.to_numeric(raw[col], errors="coerce").astype(float)
        for i in np.flatnonzero(values.isna().to_numpy()):
            value = raw[col].iloc[i]
            what = "is empty" if pd.isna(value) else f"{_show(value)} is not a number"
            problems.append(f"column {col!r}, area {names[i]!r}: value {what}")
        for i in np.flatnonzero((values < 0).to_numpy()):
            problems.append(f"column {col!r}, area {names[i]!r}: negative count {values.iloc[i]:g}")
        return values

    if out["name"].isna().any():
        rows = [int(i) + 2 for i in np.flatnonzero(out["name"].isna().to_numpy())]
        problems.append(f"column {key!r}: empty area name in file rows {rows}")
    dup = out["name"][out["name"].duplicated()].unique().tolist()
    if dup:
        problems.append(f"column {key!r}: areas listed twice: {dup} (one row per area)")

    # age bands by sex
    bands: dict[str, list[str]] = {}
    unmapped: list[str] = []
    for col in columns:
        parsed = _parse_band(col)
        if parsed is None:
            continue
        sex, lo, hi = parsed
        band = _canonical_band(lo, hi)
        if band is None:
            unmapped.append(str(col))
            continue
        bands.setdefault(f"{sex}_{band}", []).append(col)
    if unmapped:
        problems.append(
            f"age bands {unmapped} do not fit the census bands 0, 1-4, 5-9, ..., 80-84, 85+ "
            "(rename or split them into those bands)"
        )
    if bands:
        missing = [c for c in BAND_COLUMNS if c not in bands]
        if missing:
            problems.append(
                f"age bands missing for {missing} (every band 0 ... 85+ for both sexes)"
            )
        for canon in BAND_COLUMNS:
            if canon in bands:
                out[canon] = sum(numeric(c) for c in bands[canon])

    total_col = _find(columns, _TOTAL_NAMES)
    if total_col is not None and total_col != key:
        out["population"] = numeric(total_col)
    elif bands:
        out["population"] = np.nan  # filled from the bands below
    else:
        raise DemandError(
            f"Census table {where}: neither a total column ({', '.join(_TOTAL_NAMES[:4])}) "
            "nor age bands by sex (e.g. 男_60到64岁) found. Columns: "
            f"{columns[:15]}. Rename the total population column to 'population'."
        )
    hh_col = _find(columns, _HOUSEHOLD_NAMES)
    if hh_col is not None:
        out["households"] = numeric(hh_col)
    given = {g: c for g, names_ in _GROUP_NAMES.items() if (c := _find(columns, names_))}
    given_values = {g: numeric(c) for g, c in given.items()}
    collect(problems, header=f"Census table {where} cannot be used:", error=DemandError)

    if bands:
        out = _check_band_sums(out, given_values, trust=trust, where=where)
    else:
        for g, v in given_values.items():
            out[g] = v
    out.attrs["source"] = str(where)
    return out.reset_index(drop=True)


def _read_table(source: Any, *, sheet: Any, encoding: str | None) -> pd.DataFrame:
    if isinstance(source, pd.DataFrame):
        return source.copy()
    path = Path(source)
    if not path.is_file():
        raise DemandError(
            f"Census table {path} does not exist. Check demand.census in the scenario."
        )
    if path.suffix.lower() in (".xlsx", ".xlsm", ".xls"):
        return pd.read_excel(path, sheet_name=0 if sheet is None else sheet)
    tried = [encoding] if encoding else ["utf-8-sig", "gb18030"]
    for enc in tried:
        try:
            return pd.read_csv(path, encoding=enc)
        except UnicodeDecodeError:
            continue
    raise DemandError(
        f"Census table {path} is not readable as {' or '.join(tried)} text; "
        "pass encoding= (scenario: save the file as UTF-8)."
    )


def _check_band_sums(
    out: pd.DataFrame, given: dict[str, pd.Series], *, trust: str | None, where: Any
) -> pd.DataFrame:
    band_sum = out[list(BAND_COLUMNS)].sum(axis=1)
    if out["population"].isna().all():
        out["population"] = band_sum
    tol = 1e-6 * np.maximum(1.0, band_sum.abs())
    diff = out["population"] - band_sum
    bad = (diff.abs() > tol).to_numpy()
    lines = [
        f"{out['name'].iloc[i]}: total {out['population'].iloc[i]:g}, bands sum to "
        f"{band_sum.iloc[i]:g} (total - bands = {diff.iloc[i]:+g})"
        for i in np.flatnonzero(bad)
    ]
    group_bad = []
    for g, values in given.items():
        lo = GROUPS[g]
        gsum = out[_band_columns_from(lo)].sum(axis=1)
        gdiff = values - gsum
        for i in np.flatnonzero((gdiff.abs() > 1e-6 * np.maximum(1.0, gsum)).to_numpy()):
            group_bad.append(
                f"{out['name'].iloc[i]}: given {g} {values.iloc[i]:g}, bands {lo}+ sum to "
                f"{gsum.iloc[i]:g} (difference {gdiff.iloc[i]:+g})"
            )
    if not lines and not group_bad:
        return out
    if trust is None:
        collect(
            lines + group_bad,
            header=(
                f"Census table {where}: the age bands do not sum to the totals. Check the file, "
                "or choose what to trust: read_census(..., trust='bands') sets each total to its "
                "band sum, trust='total' scales the bands to the total "
                "(scenario: demand.trust: bands | total)."
            ),
            error=DemandError,
        )
    if trust == "bands":
        out["population"] = band_sum
    elif trust == "total":
        scale = np.where(bad, out["population"] / band_sum.where(band_sum > 0), 1.0)
        if np.isnan(scale).any():
            raise DemandError(
                f"Census table {where}: cannot scale bands that sum to 0 to the total; "
                "use trust='bands' or fix the bands."
            )
        out[list(BAND_COLUMNS)] = out[list(BAND_COLUMNS)].mul(scale, axis=0)
    else:
        raise DemandError(f"trust={trust!r} is not allowed: use 'bands', 'total' or None.")
    warnings.warn(
        f"Census table {where}: bands and totals disagree; trusting the {trust} "
        f"(trust={trust!r}): " + "; ".join(lines + group_bad)[:800],
        PlannerWarning,
        stacklevel=3,
    )
    return out


def _band_columns_from(age: int) -> list[str]:
    return [f"{s}_{key}" for lo, _, key in BANDS if lo >= age for s in SEXES]


def older_groups(table: pd.DataFrame) -> pd.DataFrame:
    """Add the older groups and household size to a census table.

    Parameters
    ----------
    table
        From `read_census` (canonical band columns, ``population``,
        ``households``).

    Returns
    -------
    DataFrame
        A copy with ``pop_60plus``, ``pop_65plus``, ``pop_80plus`` (both
        sexes, summed from the 5-year bands) and ``persons_per_household``
        (``population / households``: all residents over family households,
        so a little above the published family-household size where people
        live in collective quarters; NaN where households are missing or 0).
    """
    out = table.copy()
    has_bands = all(c in out.columns for c in BAND_COLUMNS)
    for g, lo in GROUPS.items():
        if has_bands:
            out[g] = out[_band_columns_from(lo)].sum(axis=1)
        elif g not in out.columns:
            raise DemandError(
                f"Cannot compute {g}: the census table has neither age bands by sex "
                f"(m_60_64 ... / 男_60到64岁) nor a {g} column. Columns: {list(out.columns)}."
            )
    if "households" in out.columns:
        hh = out["households"].astype(float)
        out["persons_per_household"] = out["population"] / hh.where(hh > 0)
    return out


# --------------------------------------------------------------------------- allocation
def allocate(
    areas: gpd.GeoDataFrame,
    totals: pd.DataFrame,
    residential: gpd.GeoDataFrame | None,
    *,
    area_key: str = "name",
    table_key: str = "name",
    columns: Sequence[str] | None = None,
    weight: str | None = None,
) -> gpd.GeoDataFrame:
    """Spread area totals onto the residential polygons inside each area (dasymetric).

    Each area's totals are shared among the pieces of residential polygons
    inside it, in proportion to piece area (m²) or to a weight column
    (floor area, dwellings...; a polygon's weight is split between areas by
    area share where the polygon crosses a border).  Written by hand rather
    than with tobler's ``area_interpolate``: that spreads by *source* area
    (so residents would be put on roads, parks and water, or lost where the
    residential layer does not cover an area), takes no per-target weight
    column, keeps no areas without targets and gives no integer counts; the
    whole method here is one overlay and a group-by.

    Parameters
    ----------
    areas
        Districts or townships with a CRS and the ``area_key`` column.
    totals
        One row per area (`read_census` / `older_groups`), keyed by ``table_key``.
        Every area in it must match an area name (whitespace ignored).
    residential
        Residential polygons with a CRS (any CRS or datum that pyproj knows;
        reprojected to ``areas.crs``).  GCJ-02 / BD-09 are not CRSs pyproj
        knows: convert such layers first (`planner.coords.to_wgs84`, or
        ``coord_system:`` in the scenario).  ``id`` and ``name`` columns are kept
        when present.  None: every area is placed at a point.
    area_key, table_key
        Matching columns of ``areas`` and ``totals``.
    columns
        Count columns to spread.  Default: ``population``, ``households``,
        ``pop_60plus``, ``pop_65plus``, ``pop_80plus`` and every age band present.
    weight
        Column of ``residential`` to spread by (non-negative numbers);
        default None spreads by residential area.

    Returns
    -------
    GeoDataFrame
        In ``areas.crs``, one row per residential piece (``id``, ``source_id``,
        ``name``, ``area``, ``placement="residential"``, ``split``,
        ``res_area_m2``, ``share``), plus one row at a representative point
        (``placement="area_point"``) per area without residential land.
        Each spread column ``c`` holds floats (``c``; per area they sum to the
        table's total up to float rounding) and integers (``c_int``, largest
        remainder per area: they sum to the rounded total exactly).  For age
        bands and older groups, ``pop_60plus_int`` etc. are the sums of the
        integer bands.  ``attrs["demand_columns"]`` (column -> estimated,
        method, source) and ``attrs["demand_report"]`` (counts of polygons
        outside every area, split polygons, areas placed at points) describe it.

    Raises
    ------
    DemandError
        Missing CRS, unmatched area names (with close matches), a bad weight
        column.
    """
    import geopandas as gpd

    _check_gdf(areas, "areas")
    if area_key not in areas.columns:
        raise DemandError(
            f"Area layer has no column {area_key!r} (columns: {list(areas.columns)}). "
            "Set area_key= (scenario: demand.area_key)."
        )
    if table_key not in totals.columns:
        raise DemandError(
            f"Census table has no column {table_key!r} (columns: {list(totals.columns)}). "
            "Set table_key= (scenario: demand.table_key)."
        )
    table = totals.copy()
    if all(c in table.columns for c in BAND_COLUMNS) and "pop_60plus" not in table.columns:
        table = older_groups(table)
    if columns is None:
        columns = [c for c in (*COUNT_COLUMNS, *BAND_COLUMNS) if c in table.columns]
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise DemandError(f"Census table has no columns {missing}; it has {list(table.columns)}.")
    table["_key"] = table[table_key].map(_clean_name)
    if table["_key"].duplicated().any():
        raise DemandError(
            f"Census table lists areas twice: {table['_key'][table['_key'].duplicated()].tolist()}."
        )
    area_names = areas[area_key].map(_clean_name)
    _match_names(table["_key"].tolist(), area_names.dropna().unique().tolist(), what=area_key)

    work_crs = areas.estimate_utm_crs() if areas.crs.is_geographic else areas.crs
    ar = gpd.GeoDataFrame({"_key": area_names}, geometry=areas.geometry.values, crs=areas.crs)
    ar = ar[ar["_key"].isin(set(table["_key"]))].to_crs(work_crs).dissolve(by="_key").reset_index()

    report: dict[str, Any] = {"n_residential": 0, "n_outside": 0, "outside_area_m2": 0.0,
                              "n_split": 0, "areas_at_point": []}
    pieces = _residential_pieces(residential, ar, work_crs, weight, report)

    # shares per area
    table = table.set_index("_key")
    wsum = pieces.groupby("_key")["_w"].transform("sum")
    zero = wsum <= 0
    if zero.any():
        bad = sorted(pieces.loc[zero, "_key"].unique())
        warnings.warn(
            f"Weight column {weight!r} is 0 on every residential polygon of {bad}; "
            "spreading those areas by residential area instead.",
            PlannerWarning,
            stacklevel=2,
        )
        pieces.loc[zero, "_w"] = pieces.loc[zero, "res_area_m2"]
        wsum = pieces.groupby("_key")["_w"].transform("sum")
    pieces["share"] = pieces["_w"] / wsum

    # areas without residential land: one point each, never dropped
    have = set(pieces["_key"])
    empty = [k for k in table.index if k not in have]
    if empty:
        report["areas_at_point"] = empty
        warnings.warn(
            f"{len(empty)} area(s) have no residential polygon: {empty[:10]}; their residents "
            "are placed at one representative point inside each area (an estimate; add "
            "residential polygons there for a better spread).",
            PlannerWarning,
            stacklevel=2,
        )
        pts = ar[ar["_key"].isin(empty)]
        pieces = pd.concat(
            [pieces, gpd.GeoDataFrame({
                "_key": pts["_key"].values, "source_id": None, "name": None,
                "placement": "area_point", "split": False, "res_area_m2": 0.0, "_w": 0.0,
                "share": 1.0,
            }, geometry=pts.representative_point().values, crs=work_crs)],
            ignore_index=True,
        )
    pieces = pieces.sort_values(["_key", "_order"], na_position="last", kind="stable")
    pieces = pieces.reset_index(drop=True)

    groups = pieces["_key"].to_numpy()
    share = pieces["share"].to_numpy()
    for col in columns:
        pieces[col] = table[col].astype(float).reindex(groups).to_numpy() * share
    # integers: bands by largest remainder; population and older groups as sums of the
    # integer bands (consistent, and still exact per area) where the table agrees with them
    all_bands = all(c in columns for c in BAND_COLUMNS)
    derived = {}
    for col in columns:
        if all_bands and (col == "population" or col in GROUPS):
            parts = list(BAND_COLUMNS) if col == "population" else _band_columns_from(GROUPS[col])
            if np.allclose(table[col].astype(float), table[parts].sum(axis=1), rtol=0, atol=1e-6):
                derived[col] = parts
                continue
        pieces[f"{col}_int"] = largest_remainder(pieces[col].to_numpy(), groups)
    for col, parts in derived.items():
        pieces[f"{col}_int"] = pieces[[f"{c}_int" for c in parts]].sum(axis=1)

    pieces["area"] = groups
    if "code" in table.columns:
        pieces["area_code"] = table["code"].reindex(groups).to_numpy()
    ids = pieces["source_id"].astype(object)
    pieces["id"] = np.where(
        pieces["placement"] == "area_point",
        ["area:" + str(a) for a in pieces["area"]],
        [f"{i}-{a}" if s else str(i) for i, a, s in zip(ids, pieces["area"], pieces["split"])],
    )
    keep = ["id", "source_id", "name", "area"] + (["area_code"] if "area_code" in pieces else [])
    keep += ["placement", "split", "res_area_m2", "share"]
    keep += [c for col in columns for c in (col, f"{col}_int")]
    out = gpd.GeoDataFrame(pieces[keep], geometry=pieces.geometry, crs=work_crs).to_crs(areas.crs)
    by = "residential area" if weight is None else weight
    method = (f"dasymetric: area totals spread by {by}"
              " (overlay of residential polygons with area boundaries)")
    source = str(totals.attrs.get("source", "census table"))
    out.attrs["demand_columns"] = {
        **{c: {"estimated": True, "method": method + " (floats)", "source": source}
           for c in columns},
        **{f"{c}_int": {"estimated": True,
                        "method": method + " (integers by largest remainder per area)",
                        "source": source} for c in columns},
    }
    out.attrs["demand_report"] = report
    return out


def _check_gdf(gdf: Any, what: str) -> None:
    import geopandas as gpd

    if not isinstance(gdf, gpd.GeoDataFrame):
        raise DemandError(f"{what} must be a GeoDataFrame, got {type(gdf).__name__}.")
    if gdf.crs is None:
        raise DemandError(
            f"The {what} layer has no CRS. Set it where it is read (scenario: `crs:` of the "
            f"layer, e.g. crs: EPSG:4326) or call gdf.set_crs(...)."
        )


def _match_names(table_names: list[str], area_names: list[str], *, what: str,
                 header: str | None = None) -> None:
    """Raise listing every table name without a boundary, with close matches."""
    problems = []
    for name in table_names:
        if name in area_names:
            continue
        close = difflib.get_close_matches(name, area_names, n=3, cutoff=0.5)
        close += [a for a in area_names if (name in a or a in name) and a not in close]
        hint = f" (did you mean {', '.join(repr(c) for c in close[:3])}?)" if close else ""
        problems.append(f"{name!r}{hint}")
    collect(
        problems,
        header=header or (
            f"Census areas match no boundary by {what!r} (boundaries: {area_names[:20]}). "
            "Rename them in the census table or the boundary layer so they agree:"
        ),
        error=DemandError,
    )


def _residential_pieces(
    residential: Any, ar: Any, work_crs: Any, weight: str | None, report: dict
) -> Any:
    """Residential polygons cut by the area boundaries, with their weight per piece."""
    import geopandas as gpd
    import shapely

    empty = gpd.GeoDataFrame(
        {"_key": pd.Series(dtype=object), "source_id": pd.Series(dtype=object),
         "name": pd.Series(dtype=object), "placement": pd.Series(dtype=object),
         "split": pd.Series(dtype=bool), "res_area_m2": pd.Series(dtype=float),
         "_w": pd.Series(dtype=float), "_order": pd.Series(dtype=float)},
        geometry=gpd.GeoSeries([], crs=work_crs), crs=work_crs,
    )
    if residential is None or len(residential) == 0:
        return empty
    _check_gdf(residential, "residential")
    res = residential.to_crs(work_crs)
    kinds = set(res.geom_type.dropna())
    if not kinds <= {"Polygon", "MultiPolygon"}:
        raise DemandError(
            f"Residential layer must hold polygons; it has {sorted(kinds)}. "
            "Give residential-area polygons (e.g. OSM landuse=residential)."
        )
    geom = res.geometry
    invalid = ~geom.is_valid
    if invalid.any():
        warnings.warn(
            f"{int(invalid.sum())} residential polygon(s) are invalid (self-intersecting); "
            "repaired with shapely.make_valid.",
            PlannerWarning,
            stacklevel=3,
        )
        geom = gpd.GeoSeries(shapely.make_valid(geom.values), index=res.index, crs=work_crs)
    poly_area = geom.area.to_numpy()
    if weight is not None:
        if weight not in res.columns:
            raise DemandError(
                f"Weight column {weight!r} is not in the residential layer "
                f"(columns: {list(res.columns)}). Set demand.weight to one of them, or leave it "
                "empty to spread by residential area."
            )
        w = pd.to_numeric(res[weight], errors="coerce").to_numpy(dtype=float)
        bad = np.flatnonzero(~np.isfinite(w) | (w < 0))
        if len(bad):
            rows = [f"row {res.index[i]}: {_show(res[weight].iloc[i])}" for i in bad[:10]]
            raise DemandError(
                f"Weight column {weight!r} of the residential layer needs non-negative numbers; "
                f"{len(bad)} row(s) are not: {rows}. Fill them (0 for no residents) or drop them."
            )
    else:
        w = poly_area
    ids = res["id"].to_numpy() if "id" in res.columns else res.index.to_numpy()
    names = res["name"].to_numpy() if "name" in res.columns else np.full(len(res), None)
    base = gpd.GeoDataFrame(
        {"_rid": np.arange(len(res)), "_wpoly": w, "_apoly": poly_area},
        geometry=geom.values, crs=work_crs,
    )
    with warnings.catch_warnings():
        # polygons that only touch a border give line pieces: dropped on purpose
        warnings.filterwarnings("ignore", message=".*keep_geom_type.*", category=UserWarning)
        cut = gpd.overlay(base, ar[["_key", "geometry"]], how="intersection",
                          keep_geom_type=True)
    cut["res_area_m2"] = cut.area
    cut = cut[cut["res_area_m2"] > 0]
    rid = cut["_rid"].to_numpy()
    counts = np.bincount(rid, minlength=len(res))
    inside = np.bincount(rid, weights=cut["res_area_m2"].to_numpy(), minlength=len(res))
    outside = counts == 0
    report.update(
        n_residential=len(res),
        n_outside=int(outside.sum()),
        outside_area_m2=float(poly_area[outside].sum()),
        n_split=int(((counts > 1) | ((counts == 1) & (inside < poly_area * (1 - 1e-9)))).sum()),
    )
    frac = np.divide(cut["res_area_m2"].to_numpy(), poly_area[rid],
                     out=np.zeros(len(cut)), where=poly_area[rid] > 0)
    return gpd.GeoDataFrame(
        {"_key": cut["_key"].to_numpy(), "source_id": ids[rid], "name": names[rid],
         "placement": "residential", "split": (counts[rid] > 1) | (frac < 1 - 1e-9),
         "res_area_m2": cut["res_area_m2"].to_numpy(), "_w": w[rid] * frac,
         "_order": rid.astype(float)},
        geometry=cut.geometry.values, crs=work_crs,
    )


def largest_remainder(values: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
    """Round non-negative values to integers that keep each group's rounded sum exactly.

    Hamilton's largest-remainder method: floor every value, then give one
    more to the largest fractional parts (ties: first in order) until each
    group sums to ``round(sum of its values)``.

    Parameters
    ----------
    values
        Non-negative floats.
    groups
        Group label per value (e.g. the area); None = one group.

    Returns
    -------
    ndarray of int64
    """
    v = np.asarray(values, dtype=float)
    if groups is None:
        groups = np.zeros(len(v), dtype=int)
    codes, uniq = pd.factorize(np.asarray(groups), sort=False)
    fl = np.floor(v + 1e-9)
    rem = v - fl
    target = np.round(np.bincount(codes, weights=v, minlength=len(uniq)))
    deficit = (target - np.bincount(codes, weights=fl, minlength=len(uniq))).astype(np.int64)
    order = np.lexsort((np.arange(len(v)), -rem, codes))
    sorted_codes = codes[order]
    starts = np.searchsorted(sorted_codes, np.arange(len(uniq)))
    rank = np.arange(len(v)) - starts[sorted_codes]
    add = np.zeros(len(v), dtype=np.int64)
    add[order] = (rank < deficit[sorted_codes]).astype(np.int64)
    return fl.astype(np.int64) + add


def demand_columns(gdf: Any, *, layer: str = "population") -> pd.DataFrame:
    """The ``attrs["demand_columns"]`` of an estimate as a table.

    Columns: layer, column, estimated, method, source.
    """
    info = gdf.attrs.get("demand_columns", {})
    return pd.DataFrame(
        [{"layer": layer, "column": c, **v} for c, v in info.items()],
        columns=["layer", "column", "estimated", "method", "source"],
    )


# --------------------------------------------------------------------------- projection
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
        _match_names(missing, prev.index.tolist(), what=f"{key} (previous census)")
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
        warnings.warn(
            f"Cohort-change ratios: a previous-census cohort is 0 in {areas[:10]}; "
            "those bands use the ratio of all areas pooled.",
            PlannerWarning,
            stacklevel=2,
        )
        ratio = np.where(zero, np.broadcast_to(pooled, ratio.shape), ratio)
    full = np.full((len(base), 2, _N5), np.nan)
    full[:, :, 2:] = ratio
    return _wide5(full, base_k.tolist()).drop(columns=[f"{s}_{b}" for b in _BANDS5[:2]
                                                       for s in SEXES])


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
    plan_years: Sequence[int] = (2025, 2030, 2035),
    key: str = "name",
    include_bands: bool = False,
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

    Returns
    -------
    DataFrame
        Long: ``area, year, group, value, method, estimated``; the base year
        rows are the census (``estimated=False``).
    """
    names = base[key].map(_clean_name).tolist()
    p = _bands5(base)
    _year_grid(base_year, plan_years, 5)  # plan years before the census are an error
    # the census alone (no later plan year): nothing to project, nothing else needed
    kind = "none" if all(y == base_year for y in plan_years) else method
    if kind == "none":
        step, label = 10, ""

        def advance(x: np.ndarray) -> np.ndarray:  # never called: no later years
            return x
    elif kind == "hamilton_perry":
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
        step = 10

        def advance(x: np.ndarray) -> np.ndarray:
            return _hp_step(x, c)
    elif kind == "life_table":
        if life_table is None:
            raise DemandError(
                "method 'life_table' needs survival ratios: set demand.life_table to a CSV with "
                "columns sex, band, survival (or use method: hamilton_perry)."
            )
        surv = life_table.reindex(index=list(SEXES), columns=list(_BANDS5)).to_numpy(float)
        mig = _migration(migration, names)
        step = 5
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
    else:
        raise DemandError(f"method={method!r} is not known: use 'hamilton_perry' or 'life_table'.")

    grid_years = _year_grid(base_year, plan_years, step)
    grid = {base_year: p}
    for y0, y1 in zip(grid_years, grid_years[1:]):
        grid[y1] = advance(grid[y0])
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
    projection: pd.DataFrame, *, lang: str = "zh", decimals: int | None = 0
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
        groups = {"pop_60plus": "60岁及以上", "pop_65plus": "65岁及以上", "pop_80plus": "80岁及以上"}
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


# --------------------------------------------------------------------------- the step
def run_step(result: RunResult) -> str | None:
    """The ``demand`` step: census to population units, and older residents by plan year.

    Reads ``demand.census`` (and ``census_previous`` / ``life_table``);
    if ``use_for_population`` and no ``population`` layer was given,
    spreads the census over ``layers["residential"]`` within the area layer
    (`allocate`) and sets ``result.layers["population"]`` (integer counts,
    estimated); if a population layer exists, fills its missing older
    groups from its area's shares and projects its own counts.  Always
    stores ``tables["demand_projection"]`` (per unit, year, group),
    ``tables["demand_areas"]`` (census beside projection per area) and
    ``tables["demand_columns"]`` (which columns are estimates, how).
    """
    settings = result.scenario.demand
    if settings is None:
        return "no `demand:` section in the scenario"
    if settings.census is None:
        return "no census table (demand.census)"
    scen = result.scenario
    table = older_groups(read_census(scen.resolve(settings.census), key=settings.table_key,
                                     trust=settings.trust))
    previous = None
    if settings.census_previous is not None:
        previous = read_census(scen.resolve(settings.census_previous), key=settings.table_key,
                               trust=settings.trust)
    life = read_life_table(scen.resolve(settings.life_table)) if settings.life_table else None
    area_col = "district" if settings.area_layer == "districts" else "township"
    areas = result.layers.get(settings.area_layer)
    col_rows: list[pd.DataFrame] = []
    population = result.layers.get("population")

    if population is None and settings.use_for_population:
        if areas is None:
            raise DemandError(
                f"demand.area_layer is {settings.area_layer!r} but no such layer was given: add "
                f"layers.{settings.area_layer} (boundaries whose names match the census table)."
            )
        est = allocate(areas, table, result.layers.get("residential"), area_key=settings.area_key,
                       weight=settings.weight)
        population = _population_layer(est, area_col, lang=result.lang)
        if area_col == "township" and "district" in areas.columns:
            names = areas[settings.area_key].map(_clean_name)
            population["district"] = population["township"].map(
                dict(zip(names, areas["district"])))
        result.layers["population"] = population
        info = demand_columns(est)
        info = info[info["column"].str.endswith("_int")].assign(
            column=lambda d: d["column"].str.removesuffix("_int"), source=str(settings.census))
        col_rows.append(info[info["column"].isin(population.columns)])
        rep = est.attrs["demand_report"]
        if rep["n_outside"]:
            result.warn(
                f"demand: {rep['n_outside']} residential polygon(s) "
                f"({rep['outside_area_m2'] / 1e6:.2f} km²) lie outside every census area "
                "and got no residents."
            )
        sparse = _thin_residential_land(est, table, settings.weight)
        if sparse:
            result.warn(
                "demand: residential land looks incomplete in "
                + ", ".join(f"{a} ({m2:.1f} m² per resident)" for a, m2 in sparse)
                + f": below {MIN_RES_M2_PER_RESIDENT:g} m² per resident, far less than even "
                "dense high-rise housing has, so each polygon gets too many residents and "
                "areas are spread unevenly (OpenStreetMap's landuse=residential is often "
                "incomplete). Treat these estimates as rough; complete the residential layer "
                "or give a weight column (demand.weight: floor area or dwellings)."
            )
        estimated_base = True
    elif population is None:
        return "no population layer and demand.use_for_population is false"
    else:
        population, filled = _fill_groups(population, table, areas, area_col, settings)
        result.layers["population"] = population
        col_rows.append(filled)
        estimated_base = False

    plan_years = list(settings.plan_years)
    proj = project_areas(table, method=settings.method, previous=previous, life_table=life,
                         migration=settings.net_migration, base_year=settings.base_year,
                         plan_years=plan_years)
    units = project_units(population, proj, area_column=area_col,
                          estimated_base=estimated_base)
    result.tables["demand_projection"] = units
    result.tables["demand_areas"] = area_projection_table(proj, lang=result.lang)
    method = proj.loc[proj["estimated"], "method"].iloc[0] if proj["estimated"].any() else ""
    col_rows.append(pd.DataFrame([{
        "layer": "demand_projection", "column": "value", "estimated": True,
        "method": method + "; scaled to each unit's own count",
        "source": str(settings.census_previous or settings.life_table or settings.census),
    }]))
    result.tables["demand_columns"] = pd.concat(col_rows, ignore_index=True)
    return None


#: Residential land per resident (m²) below which a residential layer is reported as
#: incomplete: dense high-rise compounds still have well over this.
MIN_RES_M2_PER_RESIDENT = 8.0


def _thin_residential_land(est: Any, table: pd.DataFrame,
                           weight: str | None) -> list[tuple[str, float]]:
    """Areas whose residential land per census resident is implausibly small."""
    if weight is not None or "population" not in table.columns:
        return []
    land = est.loc[est["placement"] == "residential"].groupby("area")["res_area_m2"].sum()
    people = table.set_index(table["name"].map(_clean_name))["population"].astype(float)
    per = (land / people.reindex(land.index)).dropna()
    return [(str(a), float(v)) for a, v in per.items() if v < MIN_RES_M2_PER_RESIDENT]


def _population_layer(est: Any, area_col: str, *, lang: str) -> Any:
    """Canonical population layer from an `allocate` result (integer counts)."""
    import geopandas as gpd

    out = pd.DataFrame({"id": est["id"].astype(str)})
    label = "居住用地" if lang == "zh" else "residential"
    point = "（区域代表点）" if lang == "zh" else " (area point)"
    names = []
    for n, a, pl, i in zip(est["name"], est["area"], est["placement"], range(len(est))):
        if pl == "area_point":
            names.append(f"{a}{point}")
        elif isinstance(n, str) and n.strip():
            names.append(n)
        else:
            names.append(f"{a} {label} {i + 1}")
    out["name"] = names
    for c in ("population", "pop_60plus", "pop_65plus", "pop_80plus", "households"):
        if f"{c}_int" in est.columns:
            out[c] = est[f"{c}_int"].to_numpy()
    out[area_col] = est["area"].to_numpy()
    out["res_area_m2"] = est["res_area_m2"].to_numpy()
    out["placement"] = est["placement"].to_numpy()
    return gpd.GeoDataFrame(out, geometry=est.geometry.values, crs=est.crs)


def _fill_groups(population: Any, table: pd.DataFrame, areas: Any, area_col: str,
                 settings: Any) -> tuple[Any, pd.DataFrame]:
    """Give a population layer its area column and any missing older group (area shares)."""
    pop = population.copy()
    if area_col not in pop.columns or pop[area_col].isna().all():
        if areas is None:
            raise DemandError(
                f"The population layer has no {area_col!r} column and no "
                f"layers.{settings.area_layer} was given to find each unit's area: add either."
            )
        import geopandas as gpd

        pts = gpd.GeoDataFrame(geometry=pop.geometry.representative_point(), crs=pop.crs)
        ar = areas[[settings.area_key, "geometry"]].to_crs(pop.crs)
        hit = gpd.sjoin(pts, ar, how="left", predicate="within")
        hit = hit[~hit.index.duplicated()]
        pop[area_col] = hit[settings.area_key].map(_clean_name).to_numpy()
        if pop[area_col].isna().any():
            raise DemandError(
                f"{int(pop[area_col].isna().sum())} population unit(s) lie in no "
                f"{settings.area_layer} boundary; fill their {area_col!r} column."
            )
    pop[area_col] = pop[area_col].map(_clean_name)
    rows = []
    key = table.set_index(table["name"].map(_clean_name))
    for g in ("pop_60plus", "pop_65plus", "pop_80plus", "households"):
        if g in pop.columns and pop[g].notna().all():
            continue
        if "population" not in pop.columns or g not in key.columns:
            continue
        unknown = sorted(set(pop[area_col]) - set(key.index))
        if unknown:
            _match_names(unknown, key.index.tolist(), what=area_col, header=(
                f"Population layer: its {area_col!r} value(s) below match no area of the census "
                f"table {settings.census} (it lists: {key.index.tolist()[:20]}). Set "
                "demand.area_layer to the level of the census table (districts or townships), "
                "or make the names agree:"))
        ratio = (key[g] / key["population"]).reindex(pop[area_col]).to_numpy()
        est = pop["population"].to_numpy(float) * ratio
        if g in pop.columns:
            est = np.where(pop[g].isna(), est, pop[g].to_numpy(float))
        pop[g] = est
        rows.append({"layer": "population", "column": g, "estimated": True,
                     "method": f"unit population × its {area_col}'s census share of {g}",
                     "source": str(settings.census)})
    if rows:
        warnings.warn(
            f"Population layer: {', '.join(r['column'] for r in rows)} estimated from each "
            f"unit's population and its {area_col}'s census shares.",
            PlannerWarning,
            stacklevel=3,
        )
    return pop, pd.DataFrame(rows, columns=["layer", "column", "estimated", "method", "source"])
