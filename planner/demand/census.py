"""Census vocabulary and reading: age bands, `read_census`, `older_groups`, area names.

The canonical band columns (`BAND_COLUMNS`), the older groups (`GROUPS`)
and the count columns (`COUNT_COLUMNS`) are defined here once; the
allocation and projection modules of `planner.demand` use them.  Area
names are compared without whitespace (`_clean_name`); unmatched names are
reported with close matches (`_match_names`).
"""

from __future__ import annotations

import difflib
import functools
import math
import os
import re
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from planner._errors import DemandError, PlannerWarning, collect
from planner._schema import UNIT_SUFFIXES
from planner.layers import EXCEL_SUFFIXES, read_spreadsheet

__all__ = ["BANDS", "BAND_COLUMNS", "COUNT_COLUMNS", "GROUPS", "SEXES", "close_names",
           "older_groups", "read_census"]

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


_KEY_CANDIDATES = ("name", "名称", "地区", "街道", "乡镇", "镇街", "街镇", "街道/乡镇", "乡镇/街道",
                   "街道名称", "township", "subdistrict", "sub_district", "sub-district",
                   "street", "区县", "district", "区", "area")
_CODE_CANDIDATES = ("区划代码", "code", "adcode", "代码")
_TOTAL_NAMES = ("population", "合计", "人口数_合计", "人口数", "总人口", "常住人口", "人口",
                "population_total", "total_population", "pop_total", "total_pop", "residents",
                "常住人口数", "总人口数", "人口总数", "常住总人口", "常住人口总数", "人口合计", "pop")
_HOUSEHOLD_NAMES = ("households", "家庭户户数", "家庭户数", "家庭数", "户数", "总户数")
_GROUP_NAMES = {
    "pop_60plus": ("pop_60plus", "60岁及以上人口", "60岁以上人口", "60岁及以上"),
    "pop_65plus": ("pop_65plus", "65岁及以上人口", "65岁以上人口", "65岁及以上"),
    "pop_80plus": ("pop_80plus", "80岁及以上人口", "80岁以上人口", "80岁及以上"),
}
#: Columns giving an older group's share of the residents (0-1, or percent), per census area.
_SHARE_NAMES = {
    f"pop_{a}plus": (f"share_{a}plus", f"older_share_{a}plus", f"pop_{a}plus_share",
                     f"{a}岁及以上人口占比", f"{a}岁及以上占比", f"{a}岁及以上人口比重",
                     f"{a}岁及以上人口比例", f"{a}岁以上人口占比", f"{a}岁以上人口比例",
                     f"{a}岁及以上人口占比(%)", f"{a}岁及以上人口占比（%）",
                     f"{a}岁及以上人口比重(%)", f"{a}岁及以上人口比重（%）")
    for a in (60, 65, 80)
}
#: The column naming each area's district (kept when it is not the area key).
_PARENT_NAMES = ("district", "区县", "所属区县", "所属区", "区", "县区")

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
    """The first column named as one of ``names`` (whitespace, case and a "(人)" unit ignored)."""
    norm = {}
    for c in columns:
        key = re.sub(r"\s+", "", str(c)).lower()
        norm.setdefault(key, c)
        for suffix in UNIT_SUFFIXES:
            if key.endswith(suffix) and len(key) > len(suffix):
                norm.setdefault(key[: -len(suffix)], c)
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
        Excel sheet (a name, a 0-based number or ``"all"``; by default the one
        sheet with data, see `planner.layers.read_spreadsheet`); text encoding
        of a CSV (default: UTF-8, then GBK).

    Returns
    -------
    DataFrame
        One row per area: ``name`` (whitespace removed), ``code`` (from
        ``区划代码``, when present), ``district`` (from a ``区县``/``district``
        column that is not the key), ``population``, ``households`` (when
        present), the canonical band columns `BAND_COLUMNS` (when the table
        has bands), given ``pop_60plus``... only when it has no bands, and
        ``share_60plus``... from share columns (``60岁及以上人口占比``,
        ``share_60plus``; percentages are read as such).  A table of totals
        only (no bands, no older groups) is accepted: `older_groups` then
        takes the older shares from a higher-level table or an assumption.

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
    out = _area_names(raw, key, where)
    problems = _name_problems(out, key)
    numeric = functools.partial(_numeric, raw, names=out["name"].astype(str).tolist(),
                                problems=problems)
    bands = _band_groups(columns, problems)
    given_values = _read_counts(out, columns, key, bands, numeric, where)
    _read_shares(out, columns, numeric, problems)
    parent = _find(columns, _PARENT_NAMES)
    if parent is not None and parent != key:
        out["district"] = raw[parent].map(_clean_name)
    collect(problems, header=f"Census table {where} cannot be used:", error=DemandError)

    if bands:
        out = _check_band_sums(out, given_values, trust=trust, where=where)
    else:
        for g, v in given_values.items():
            out[g] = v
    out.attrs["source"] = str(where)
    return out.reset_index(drop=True)


def _area_names(raw: pd.DataFrame, key: str | None, where: str | os.PathLike) -> pd.DataFrame:
    """The table's ``name`` (and ``code``) columns; raises when there is no area column."""
    columns = list(raw.columns)
    if key is None or key not in raw.columns:
        raise DemandError(
            f"Census table {where}: no area-name column found (columns: {columns[:12]}...). "
            "Pass key='<column>' (scenario: demand.table_key) naming the district/township column."
        )
    out = pd.DataFrame({"name": raw[key].map(_clean_name)})
    code_col = _find(columns, _CODE_CANDIDATES)
    if code_col is not None and code_col != key:
        out["code"] = raw[code_col].map(_clean_name)
    return out


def _name_problems(out: pd.DataFrame, key: str) -> list[str]:
    """Empty and duplicate area names, as problem lines."""
    problems: list[str] = []
    if out["name"].isna().any():
        rows = [int(i) + 2 for i in np.flatnonzero(out["name"].isna().to_numpy())]
        problems.append(f"column {key!r}: empty area name in file rows {rows}")
    dup = out["name"][out["name"].duplicated()].unique().tolist()
    if dup:
        problems.append(f"column {key!r}: areas listed twice: {dup} (one row per area)")
    return problems


def _numeric(raw: pd.DataFrame, col: str, *, names: list[str], problems: list[str]) -> pd.Series:
    """Column ``col`` as floats; each empty, non-numeric or negative cell goes to ``problems``."""
    values = pd.to_numeric(raw[col], errors="coerce").astype(float)
    for i in np.flatnonzero(values.isna().to_numpy()):
        value = raw[col].iloc[i]
        what = "is empty" if pd.isna(value) else f"{_show(value)} is not a number"
        problems.append(f"column {col!r}, area {names[i]!r}: value {what}")
    for i in np.flatnonzero((values < 0).to_numpy()):
        problems.append(f"column {col!r}, area {names[i]!r}: negative count {values.iloc[i]:g}")
    return values


def _band_groups(columns: Sequence[str], problems: list[str]) -> dict[str, list[str]]:
    """The table's age-band columns per canonical band column (``m_85plus`` may take several).

    Bands that fit no census band, and canonical bands with no column, go to ``problems``.
    """
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
    return bands


def _read_counts(
    out: pd.DataFrame,
    columns: Sequence[str],
    key: str,
    bands: dict[str, list[str]],
    numeric: Callable[[str], pd.Series],
    where: str | os.PathLike,
) -> dict[str, pd.Series]:
    """Add the band, total and household counts to ``out``; return the given older groups."""
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
    return {g: numeric(c) for g, c in given.items()}


def _read_shares(out: pd.DataFrame, columns: Sequence[str], numeric: Callable[[str], pd.Series],
                 problems: list[str]) -> None:
    """Add ``share_60plus``... from share columns (fractions, or percent when above 1)."""
    for g, names in _SHARE_NAMES.items():
        col = _find(columns, names)
        if col is None:
            continue
        values = numeric(col)
        above = (values > 1).to_numpy()
        if above.any() and not above[values.notna().to_numpy()].all() and "%" not in str(col):
            problems.append(f"column {col!r}: shares mix fractions (0-1) and percentages "
                            f"({', '.join(f'{v:g}' for v in values.head(6))}); use one")
        elif "%" in str(col) or above.any():  # 28 means 28 %
            values = values / 100.0
        for i in np.flatnonzero((values > 1).to_numpy()):
            problems.append(f"column {col!r}, area {out['name'].iloc[i]!r}: share "
                            f"{values.iloc[i] * 100:g} % is above 100 %")
        out[f"share_{g.removeprefix('pop_')}"] = values


def _read_table(
    source: str | os.PathLike | pd.DataFrame, *, sheet: str | int | None, encoding: str | None
) -> pd.DataFrame:
    if isinstance(source, pd.DataFrame):
        return source.copy()
    path = Path(source)
    if not path.is_file():
        raise DemandError(
            f"Census table {path} does not exist. Check demand.census in the scenario."
        )
    if path.stat().st_size == 0:
        raise DemandError(
            f"Table {path} is empty (0 bytes), so it has no columns and no rows; it was "
            "probably not saved or copied completely. Export it again, or fix its path under "
            "`demand:` in the scenario (census, census_previous or life_table)."
        )
    if path.suffix.lower() in EXCEL_SUFFIXES:
        return read_spreadsheet(path, sheet=sheet, error=DemandError, key="demand.sheet")
    tried = [encoding] if encoding else ["utf-8-sig", "gb18030"]
    for enc in tried:
        try:
            return pd.read_csv(path, encoding=enc)
        except UnicodeDecodeError:
            continue
        except pd.errors.EmptyDataError:
            raise DemandError(f"Table {path} has no header row and no data (only blank "
                              "lines). Export it again with its column names in the first "
                              "row.") from None
    raise DemandError(
        f"Census table {path} is not readable as {' or '.join(tried)} text; "
        "pass encoding= (scenario: save the file as UTF-8)."
    )


def _check_band_sums(
    out: pd.DataFrame,
    given: dict[str, pd.Series],
    *,
    trust: str | None,
    where: str | os.PathLike,
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
    detail = "; ".join(lines + group_bad)[:800]
    warnings.warn(PlannerWarning(
        f"Census table {where}: bands and totals disagree; trusting the {trust} "
        f"(trust={trust!r}): " + detail,
        f"普查表 {where}：分年龄组之和与合计不一致；按 trust={trust!r} 以"
        f"{'分年龄组' if trust == 'bands' else '合计'}为准：" + detail), stacklevel=3)
    return out


def _band_columns_from(age: int) -> list[str]:
    return [f"{s}_{key}" for lo, _, key in BANDS if lo >= age for s in SEXES]


def older_groups(
    table: pd.DataFrame,
    *,
    higher: pd.DataFrame | None = None,
    parent: Mapping[str, str] | pd.Series | None = None,
    assumed: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """Add the older groups and household size to a census table.

    With age bands the groups are the band sums.  A table of totals only
    (the common case for subdistricts) takes each group, in this order, from
    its own ``pop_60plus`` column, from a share column per area
    (``share_60plus``), from the area's higher-level area in ``higher``
    (e.g. the district table with bands: the township's population times its
    district's share), or from ``assumed`` shares (an assumption, stated in
    ``attrs["group_methods"]`` and in a `PlannerWarning`).

    Parameters
    ----------
    table
        From `read_census` (canonical band columns, ``population``,
        ``households``).
    higher
        A `read_census` table of the higher-level areas (bands or group
        counts), used where ``table`` has no bands.
    parent
        Area name -> higher-level area name, for every area of ``table``
        (e.g. from `planner.demand.parent_areas`); default the table's own
        ``district`` column.
    assumed
        Shares of the residents by group, e.g. ``{"pop_60plus": 0.28}``.

    Returns
    -------
    DataFrame
        A copy with ``pop_60plus``, ``pop_65plus``, ``pop_80plus`` (those
        that can be had; ``pop_60plus`` always) and ``persons_per_household``
        (``population / households``: all residents over family households,
        so a little above the published family-household size where people
        live in collective quarters; NaN where households are missing or 0).
        ``attrs["group_methods"]`` says how each group not in the census was
        made.

    Raises
    ------
    DemandError
        When ``pop_60plus`` can be had from none of these, or an area has no
        higher-level area in ``higher``.
    """
    out = table.copy()
    methods: dict[str, str] = dict(out.attrs.get("group_methods", {}))
    if all(c in out.columns for c in BAND_COLUMNS):
        for g, lo in GROUPS.items():
            out[g] = out[_band_columns_from(lo)].sum(axis=1)
        if higher is not None or assumed:
            warnings.warn(PlannerWarning(
                f"Census table {out.attrs.get('source', '')} has age bands by sex: the older "
                "groups are counted from them, and the higher-level table / assumed shares "
                "(demand.shares_from, demand.older_share_*) are not used.",
                f"{_table_zh(out)} 有分性别的年龄组：老年人口按年龄组统计，"
                "不使用上级普查表或假定比例（demand.shares_from、demand.older_share_*）。"),
                stacklevel=2)
    else:
        _groups_of_totals(out, methods, higher=higher, parent=parent, assumed=assumed or {})
    if "households" in out.columns:
        hh = out["households"].astype(float)
        out["persons_per_household"] = out["population"] / hh.where(hh > 0)
    out.attrs["group_methods"] = methods
    return out


def _source_of(table: pd.DataFrame) -> str:
    """The file a census table was read from; ``""`` for a table given in memory."""
    src = str(table.attrs.get("source", ""))
    return "" if src == "the census table" else src


def _table_zh(table: pd.DataFrame, what: str = "普查表") -> str:
    """``普查表 <file>`` for a warning in Chinese (``普查表`` for a table given in memory)."""
    src = _source_of(table)
    return f"{what} {src}" if src else what


#: Endings of Chinese area names that say what an area is, not which one (longest first).
_AREA_ENDINGS = ("街道办事处", "社区居委会", "街道办", "居委会", "村委会", "街道", "社区",
                 "新区", "城区", "镇", "乡", "区", "县", "市", "旗", "村")


def _stem(name: str) -> str:
    """``name`` without its administrative ending (四平路街道 -> 四平路), if anything is left."""
    for end in _AREA_ENDINGS:
        if name.endswith(end) and len(name) > len(end):
            return name[: -len(end)]
    return name


def close_names(name: str, options: Sequence[str], *, n: int = 3) -> list[str]:
    """Names of ``options`` that ``name`` may be a misspelling of, best first.

    Compared without their administrative endings (街道, 镇, 区 ...), so
    '定海路街道' is not offered '四平路街道' (their distinctive parts 定海路 and
    四平路 share only 路): an option qualifies when the distinctive parts
    share characters and are at least half alike (difflib ratio ≥ 0.5), or
    one contains the other.
    """
    stem = _stem(str(name))
    scored = []
    for opt in dict.fromkeys(map(str, options)):
        other = _stem(opt)
        if not set(stem) & set(other):
            continue
        ratio = difflib.SequenceMatcher(None, stem, other).ratio()
        inside = stem in other or other in stem
        if ratio >= 0.5 or inside:
            scored.append((-(ratio + inside), opt))
    return [opt for _, opt in sorted(scored)[:n]]


def _groups_of_totals(out: pd.DataFrame, methods: dict[str, str], *,
                      higher: pd.DataFrame | None, parent: Mapping[str, str] | pd.Series | None,
                      assumed: Mapping[str, float]) -> None:
    """Fill the older groups of a table without bands in place (see `older_groups`)."""
    where = out.attrs.get("source", "the census table")
    shares = None
    zh: dict[str, str] = {}  # the methods in Chinese, for the warning
    for g in GROUPS:
        label = g.removeprefix("pop_").replace("plus", "+")
        share_col = f"share_{g.removeprefix('pop_')}"
        if g in out.columns:
            continue
        if share_col in out.columns:
            out[g] = out["population"].astype(float) * out[share_col].astype(float)
            methods[g] = (f"population × the area's share of {label} given in the census "
                          f"table ({share_col})")
            zh[g] = f"常住人口 × 普查表给出的该区域 {label} 人口占比（{share_col}）"
            continue
        if higher is not None:
            if shares is None:
                shares = _higher_shares(out, higher, parent)
            if g in shares.columns:
                out[g] = out["population"].astype(float) * shares[g].to_numpy()
                src = higher.attrs.get("source", "the higher-level census table")
                methods[g] = (f"population × its higher-level area's census share of {label} "
                              f"({src})")
                zh[g] = (f"常住人口 × 上级区域普查的 {label} 人口占比"
                         f"（{_table_zh(higher, '上级普查表')}）")
                continue
        if g in assumed:
            value = float(assumed[g])
            if not 0.0 <= value <= 1.0:
                raise DemandError(f"The assumed share of {label} ({value:g}) must be between 0 "
                                  "and 1 (e.g. demand.older_share_60plus: 0.28).")
            out[g] = out["population"].astype(float) * value
            methods[g] = (f"population × {value:g}: an ASSUMED share of {label} "
                          f"(scenario demand.older_share_{g.removeprefix('pop_')}), not census "
                          "data")
            zh[g] = (f"常住人口 × {value:g}：{label} 人口的假定比例（情景文件 "
                     f"demand.older_share_{g.removeprefix('pop_')}），并非普查数据")
    if "pop_60plus" not in out.columns:
        raise DemandError(
            f"Census table {where} has no age bands by sex and no count or share of residents "
            "aged 60+, so older residents cannot be counted. Give one of: a census table with "
            "5-year age bands by sex; a column of 60+ residents (60岁及以上人口) or of their "
            "share (60岁及以上人口占比, share_60plus) per area; a higher-level census table with "
            "age bands (scenario: demand.shares_from, e.g. the district table, with each area's "
            "district); or an assumed share (scenario: demand.older_share_60plus: 0.28)."
        )
    made = [g for g in GROUPS if g in methods and g in out.columns]
    if made:
        warnings.warn(PlannerWarning(
            f"Census table {where} has totals only (no age bands by sex): "
            + "; ".join(f"{g} = {methods[g]}" for g in made)
            + ". Every older-resident count of this run rests on this; it is listed as an "
            "estimate in demand_columns and the report.",
            f"{_table_zh(out)} 只有总数（没有分性别的年龄组）："
            + "；".join(f"{g} = {zh.get(g, methods[g])}" for g in made)
            + "。本次运行的所有老年人口数都以此为据；它在 demand_columns 和报告中列为估算值。"),
            stacklevel=3,
        )


def _higher_shares(out: pd.DataFrame, higher: pd.DataFrame,
                   parent: Mapping[str, str] | pd.Series | None) -> pd.DataFrame:
    """Per area of ``out`` (in order), the older-group shares of its higher-level area."""
    if parent is None:
        if "district" not in out.columns:
            raise DemandError(
                "The census table has no column naming each area's district (区县/district), "
                "needed to take the older shares from the higher-level table: add one, or give "
                "the area boundaries a `district` column (or a districts layer they lie in)."
            )
        parent = dict(zip(out["name"], out["district"], strict=True))
    parent = {_clean_name(k): _clean_name(v) for k, v in dict(parent).items()}
    missing = [n for n in out["name"] if not isinstance(parent.get(n), str)]
    if missing:
        raise DemandError(f"No higher-level area (district) is known for census area(s) "
                          f"{missing[:20]}; give each its district.")
    if all(c in higher.columns for c in BAND_COLUMNS):
        top = older_groups(higher)
    elif any(g in higher.columns for g in GROUPS):
        top = higher
    else:
        raise DemandError(
            f"The higher-level census table {higher.attrs.get('source', '')} has neither age "
            "bands by sex nor counts of residents aged 60+ (60岁及以上人口): it cannot give "
            "the older shares."
        )
    top = top.set_index(top["name"].map(_clean_name))
    wanted = [parent[n] for n in out["name"]]
    _match_names(sorted(set(wanted)), top.index.tolist(), what="district", header=(
        "Census areas' districts below are not in the higher-level census table (it lists: "
        f"{top.index.tolist()[:20]}); make the names agree:"))
    pop = top["population"].astype(float)
    shares = {g: (top[g].astype(float) / pop.where(pop > 0)).reindex(wanted).to_numpy()
              for g in GROUPS if g in top.columns}
    return pd.DataFrame(shares, index=out.index)


def _match_names(table_names: list[str], area_names: list[str], *, what: str,
                 header: str | None = None) -> None:
    """Raise listing every table name without a boundary, with close matches."""
    problems = []
    for name in table_names:
        if name in area_names:
            continue
        close = close_names(name, area_names)
        hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
        problems.append(f"{name!r}{hint}")
    collect(
        problems,
        header=header or (
            f"Census areas match no boundary by {what!r} (boundaries: {area_names[:20]}). "
            "Rename them in the census table or the boundary layer so they agree:"
        ),
        error=DemandError,
    )
