"""Checks and repairs of layers: each returns problems (strings) instead of raising.

`planner.layers.read_layer` runs every check, gathers all problems and
raises one `LayerError` (via `planner._errors.collect`), so a user fixes a
file in one pass.  Repairs are reported as `PlannerWarning`s.

Rows are named by their 1-based position in the file (``row 3`` is the
third feature, or the third data row under a spreadsheet's header), with
the feature's ``name`` where it has one.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import shapely

from planner._errors import PlannerWarning
from planner._schema import COUNT_COLUMNS, TIER_SYNONYMS, TIERS

#: Geometry types allowed per layer kind ("repoint" kinds accept polygons and
#: replace them by a representative point, with a warning).
POINT = {"Point", "MultiPoint"}
LINE = {"LineString", "MultiLineString"}
POLY = {"Polygon", "MultiPolygon"}
ANY = POINT | LINE | POLY | {"GeometryCollection", "LinearRing"}
KIND_GEOMETRY: dict[str, set[str]] = {
    "population": POLY | POINT,
    "facilities": POINT,
    "boundaries": POLY,
    "candidates": POINT | POLY,
    "gates": POINT,
    "points": POINT,
    "residential": POLY,
    "context": ANY,
    "lines": LINE,
}
#: Kinds whose polygon features become representative points (with a warning).
REPOINT_KINDS = {"facilities", "gates", "points"}
#: Kinds where empty geometries are dropped with a warning (they carry no
#: information for an analysis: context layers, road lines, residential land).
DROP_EMPTY_KINDS = {"context", "lines", "residential"}
#: Kinds with a ``tier`` column normalised to `TIERS`.
TIER_KINDS = {"facilities", "candidates"}

# China's rough bounding box (same as `planner.coords.in_china`, a little wider).
CHINA_BBOX = (73.0, 3.0, 136.0, 54.0)
_SHOW = 8  # rows shown per problem


def rows_text(df: pd.DataFrame, positions: Sequence[int] | np.ndarray, *,
              lang: str = "en") -> str:
    """``row 3 (西关社区), row 7 … and 12 more`` for 0-based positions
    (``lang="zh"``: ``第 3 行（西关社区）、第 7 行 … 等另 12 行``)."""
    positions = list(np.asarray(positions, dtype=int))
    names = df["name"] if "name" in df.columns else None
    zh = lang == "zh"
    parts = []
    for p in positions[:_SHOW]:
        label = f"第 {p + 1} 行" if zh else f"row {p + 1}"
        if names is not None:
            value = names.iloc[p]
            if isinstance(value, str) and value.strip():
                label += f"（{value.strip()}）" if zh else f" ({value.strip()})"
        parts.append(label)
    more = len(positions) - _SHOW
    if zh:
        return "、".join(parts) + (f" … 等另 {more} 行" if more > 0 else "")
    return ", ".join(parts) + (f" … and {more} more" if more > 0 else "")


def warn(message: str, zh: str) -> None:
    """Issue a `PlannerWarning` (a repair or an assumption), in English and Chinese."""
    warnings.warn(PlannerWarning(message, zh), stacklevel=3)


# ------------------------------------------------------------------------ tiers
_CJK = re.compile(r"[\u4e00-\u9fff]")


def _clean(value: str) -> str:
    return re.sub(r"\s+", " ", str(value)).strip().lower()


def normalize_tier(value: Any, *, tiers: dict[str, str] | None = None) -> str | None:
    """Map what a user wrote for a facility tier onto `planner._schema.TIERS`.

    Parameters
    ----------
    value
        A tier label such as ``"社区养老服务站"``, ``"Community station"`` or a
        facility name such as ``"西关街道综合养老服务中心"``.
    tiers
        Extra user mapping (value → tier), tried first (e.g. ``{"老年食堂": "other"}``).

    Returns
    -------
    str or None
        The tier, or None when nothing matches (or two tiers match equally well).

    Notes
    -----
    Matching order: the user's mapping, then `TIER_SYNONYMS` exactly (spaces
    removed, English lower-cased), then the longest synonym contained in the
    value (Chinese synonyms anywhere, English ones as whole words).
    """
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    text = _clean(value)
    if not text:
        return None
    compact = text.replace(" ", "")
    for mapping in (tiers or {}), TIER_SYNONYMS:
        for key, tier in mapping.items():
            k = _clean(key)
            if text == k or compact == k.replace(" ", ""):
                return tier
    best: list[tuple[int, str]] = []
    for key, tier in TIER_SYNONYMS.items():
        k = _clean(key)
        if _CJK.search(k):
            hit = k in compact
        else:
            hit = len(k) >= 5 and re.search(rf"\b{re.escape(k)}\b", text) is not None
        if hit:
            best.append((len(k), tier))
    if not best:
        return None
    top = max(n for n, _ in best)
    found = {t for n, t in best if n == top}
    return found.pop() if len(found) == 1 else None


def check_tiers(df: pd.DataFrame, *, kind: str, tiers: dict[str, str] | None) -> list[str]:
    """Normalise ``df["tier"]`` in place; return problems for unknown values."""
    if "tier" not in df.columns:
        return []
    raw = df["tier"]
    blank = raw.isna() | (raw.astype(str).str.strip() == "")
    lookup = {v: normalize_tier(v, tiers=tiers) for v in pd.unique(raw[~blank])}
    mapped = [None if b else lookup[v] for v, b in zip(raw, blank)]
    out = pd.Series(mapped, index=df.index, dtype=object)
    problems = []
    bad = np.flatnonzero(~blank.to_numpy() & out.isna().to_numpy())
    if len(bad):
        values = sorted({str(raw.iloc[p]) for p in bad})
        problems.append(
            f"column `tier`: unknown tier value(s) {', '.join(repr(v) for v in values[:10])} in "
            f"{rows_text(df, bad)}. Allowed: {', '.join(TIERS)} or Chinese names such as "
            "养老院, 综合养老服务中心, 社区养老服务站, 日间照料中心, 互助幸福院. "
            "Fix the values, or map them in the scenario with `tiers: {<value>: <tier>}` "
            "(e.g. `{老年食堂: other}`)."
        )
    if kind == "facilities" and blank.any():
        problems.append(
            f"column `tier`: empty tier in {rows_text(df, np.flatnonzero(blank.to_numpy()))}. "
            f"Every facility needs a tier ({', '.join(TIERS)})."
        )
    df["tier"] = out
    return problems


# ------------------------------------------------------------------------ counts
_NUMBER_JUNK = re.compile(r"[,，\s\u3000]")

#: More people (or households, beds, workers) than China's whole population (about 1.41
#: billion in the 2020 census) cannot be in one row of any layer.
MAX_COUNT = 1_500_000_000
#: Count columns that hold persons (or households, beds, workers): capped by `MAX_COUNT`.
PERSON_COLUMNS = ("population", "pop_60plus", "pop_65plus", "pop_80plus", "households", "beds",
                  "nursing_beds", "social_workers", "capacity")
#: (smaller, larger): a row's ``smaller`` can never exceed its ``larger``.
NESTED_COUNTS = (
    ("pop_60plus", "population"), ("pop_65plus", "population"), ("pop_80plus", "population"),
    ("pop_65plus", "pop_60plus"), ("pop_80plus", "pop_65plus"), ("pop_80plus", "pop_60plus"),
    ("households", "population"), ("nursing_beds", "beds"),
)
_NESTED_WHY = {
    ("households", "population"): "a household has at least one resident",
    ("nursing_beds", "beds"): "nursing-type beds are part of all beds",
}


def check_counts(df: pd.DataFrame) -> list[str]:
    """Convert `COUNT_COLUMNS` to numbers in place; report non-numeric and negative values.

    Numeric strings such as ``"1,234"`` or ``" 56 "`` are converted; empty
    cells become missing (NaN).
    """
    problems = []
    for col in COUNT_COLUMNS:
        if col not in df.columns:
            continue
        raw = df[col]
        if pd.api.types.is_bool_dtype(raw):
            problems.append(f"column `{col}`: holds true/false values, expected counts.")
            continue
        if pd.api.types.is_numeric_dtype(raw):
            num = raw.astype(float)
            bad = np.zeros(len(df), dtype=bool)
        else:
            text = raw.astype(str).str.replace(_NUMBER_JUNK, "", regex=True)
            empty = raw.isna() | (text == "") | text.str.lower().isin(["nan", "none", "null"])
            num = pd.to_numeric(text.where(~empty, None), errors="coerce").astype(float)
            bad = (num.isna() & ~empty).to_numpy()
        if bad.any():
            pos = np.flatnonzero(bad)
            vals = ", ".join(repr(str(raw.iloc[p])) for p in pos[:_SHOW])
            problems.append(
                f"column `{col}`: non-numeric value(s) {vals} in {rows_text(df, pos)}. "
                "Counts must be numbers (thousands separators are fine); fix or empty these cells."
            )
        neg = np.flatnonzero((num < 0).to_numpy())
        if len(neg):
            vals = ", ".join(f"{num.iloc[p]:g}" for p in neg[:_SHOW])
            problems.append(
                f"column `{col}`: negative value(s) {vals} in {rows_text(df, neg)}. "
                "Counts cannot be negative; correct these rows in the source file."
            )
        huge = np.flatnonzero((num > MAX_COUNT).to_numpy()) if col in PERSON_COLUMNS else []
        if len(huge):
            vals = ", ".join(f"{num.iloc[p]:g}" for p in huge[:_SHOW])
            problems.append(
                f"column `{col}`: impossible value(s) {vals} in {rows_text(df, huge)}: more than "
                "China's whole population (1.41 billion). Correct these rows in the source file "
                "(a unit or decimal-point error?)."
            )
        arr = num.to_numpy(dtype=float)
        whole = len(arr) and np.isfinite(arr).all() and np.all(np.mod(arr, 1) == 0)
        df[col] = num.astype("int64") if whole and not len(huge) else num
    return problems + check_nested_counts(df)


def check_nested_counts(df: pd.DataFrame) -> list[str]:
    """Rows where a count exceeds the count it is part of (60+ > population, 80+ > 65+ ...).

    Compares only where both values are numbers (after `check_counts`).
    """
    problems = []
    for small, large in NESTED_COUNTS:
        if small not in df.columns or large not in df.columns:
            continue
        a = pd.to_numeric(df[small], errors="coerce").to_numpy(dtype=float)
        b = pd.to_numeric(df[large], errors="coerce").to_numpy(dtype=float)
        with np.errstate(invalid="ignore"):
            bad = np.flatnonzero((a > b) & (b >= 0))  # negative counts are reported already
        if len(bad):
            pairs = ", ".join(f"{a[p]:g} > {b[p]:g}" for p in bad[:_SHOW])
            why = _NESTED_WHY.get((small, large),
                                  f"everyone counted in `{small}` is counted in `{large}`")
            problems.append(
                f"columns `{small}` and `{large}`: `{small}` is larger than `{large}` ({pairs}) "
                f"in {rows_text(df, bad)}, which cannot be ({why}). Check that the columns are "
                "not swapped or mapped to the wrong field (`columns:`), and correct these rows."
            )
    return problems


def warn_density(gdf: Any, *, max_per_km2: float) -> None:
    """Warn about polygon units with more than ``max_per_km2`` residents per km² of their area.

    ``gdf`` must be in a metric CRS.  Such a density is implausible for a
    whole unit (denser than any city district; see
    `planner.defaults.MAX_DENSITY_PER_KM2`): the count may be wrong, or the
    polygon too small (a building instead of its compound).
    """
    if "population" not in gdf.columns or not len(gdf):
        return
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    area_km2 = shapely.area(geoms) / 1e6
    is_poly = np.isin(shapely.get_type_id(geoms), [3, 6])  # Polygon, MultiPolygon
    pop = pd.to_numeric(gdf["population"], errors="coerce").to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        density = pop / area_km2
    dense = np.flatnonzero(is_poly & (area_km2 > 0) & (density > max_per_km2))
    if not len(dense):
        return
    order = dense[np.argsort(-density[dense])]
    shown = ", ".join(f"{rows_text(gdf, [p])}: {density[p]:,.0f}" for p in order[:_SHOW])
    shown_zh = "、".join(f"{rows_text(gdf, [p], lang='zh')}：{density[p]:,.0f}"
                         for p in order[:_SHOW])
    more = f" … and {len(dense) - _SHOW} more" if len(dense) > _SHOW else ""
    more_zh = f" … 等另 {len(dense) - _SHOW} 个" if len(dense) > _SHOW else ""
    warn(
        f"{len(dense)} unit(s) have more than {max_per_km2:,.0f} residents per km² of their "
        f"polygon ({shown}{more} per km²), denser than any city district. Check `population` "
        "of these rows, and that each polygon covers the whole unit (not one building).",
        f"{len(dense)} 个单元每平方公里人口超过 {max_per_km2:,.0f}（{shown_zh}{more_zh}，人/km²），"
        "高于任何城区的密度。请检查这些行的 `population`（常住人口），以及每个面是否覆盖"
        "整个单元（而非一栋楼）。",
    )


_TRUE = {"1", "true", "t", "yes", "y", "是", "公办", "公建", "公建公营", "公建民营", "国有"}
_FALSE = {"0", "false", "f", "no", "n", "否", "民办", "民营", "私营", "社会办"}


def check_public(df: pd.DataFrame) -> list[str]:
    """Convert a ``public`` column (是/否, 公办/民办, true/false, 1/0) to booleans in place."""
    if "public" not in df.columns or pd.api.types.is_bool_dtype(df["public"]):
        return []
    raw = df["public"]
    text = raw.astype(str).str.strip().str.lower()
    blank = raw.isna() | (text == "") | text.isin(["nan", "none"])
    value = pd.Series(pd.NA, index=df.index, dtype="boolean")
    value[text.isin(_TRUE)] = True
    value[text.isin(_FALSE)] = False
    bad = np.flatnonzero((value.isna() & ~blank).to_numpy())
    df["public"] = value
    if len(bad):
        vals = sorted({str(raw.iloc[p]) for p in bad})
        return [f"column `public`: value(s) {vals[:8]} in {rows_text(df, bad)} are not yes/no; "
                "use 是/否, 公办/民办, true/false or 1/0."]
    return []


# ------------------------------------------------------------------------ ids
def check_ids(df: pd.DataFrame) -> list[str]:
    """Report duplicate and missing values of ``df["id"]``."""
    if "id" not in df.columns:
        return []
    ids = df["id"]
    problems = []
    missing = np.flatnonzero(ids.isna().to_numpy())
    if len(missing):
        problems.append(f"column `id`: empty id in {rows_text(df, missing)}; every row needs one.")
    dup = ids.duplicated(keep=False) & ids.notna()
    if dup.any():
        values = list(dict.fromkeys(ids[dup].tolist()))
        detail = "; ".join(
            f"id {v!r} in {rows_text(df, np.flatnonzero((ids == v).to_numpy()))}"
            for v in values[:_SHOW]
        )
        more = f" … and {len(values) - _SHOW} more ids" if len(values) > _SHOW else ""
        problems.append(
            f"column `id`: duplicate ids: {detail}{more}. Ids must be unique: fix them, or set "
            "`id_column:` to a unique column (without an id column, row numbers are used)."
        )
    return problems


# ------------------------------------------------------------------------ geometry
def check_geometry(gdf, *, kind: str) -> tuple[Any, list[str]]:
    """Check geometry types, empties and validity; repair what is safe.

    Returns the (possibly repaired, possibly shorter) GeoDataFrame and the
    problems that cannot be repaired.  Repairs (polygon facilities → points,
    invalid polygons fixed with `shapely.make_valid`, empty rows dropped for
    context kinds) are warned about, naming the rows.
    """
    problems: list[str] = []
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    empty = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if empty.any():
        pos = np.flatnonzero(empty)
        if kind in DROP_EMPTY_KINDS:
            warn(f"dropped {len(pos)} row(s) with empty geometry: {rows_text(gdf, pos)}.",
                 f"删除了 {len(pos)} 行空几何：{rows_text(gdf, pos, lang='zh')}。")
            gdf = gdf.iloc[np.flatnonzero(~empty)]
            geoms = geoms[~empty]
        else:
            problems.append(
                f"empty or missing geometry in {rows_text(gdf, pos)}. Give these features a "
                "location (or delete the rows) in the source file."
            )
            return gdf, problems
    if shapely.get_coordinate_dimension(geoms).max(initial=2) > 2:
        geoms = shapely.force_2d(geoms)
    types = shapely.get_type_id(geoms)
    names = np.array(["Point", "LineString", "LinearRing", "Polygon", "MultiPoint",
                      "MultiLineString", "MultiPolygon", "GeometryCollection"])[types]
    allowed = KIND_GEOMETRY[kind]
    # single-part MultiPoint -> Point (exactly the same location)
    single = (names == "MultiPoint") & (shapely.get_num_geometries(geoms) == 1)
    if single.any():
        geoms[single] = shapely.get_geometry(geoms[single], 0)
        names[single] = "Point"
    if kind in REPOINT_KINDS:
        poly = np.isin(names, list(POLY | {"MultiPoint"}))
        if poly.any():
            pos = np.flatnonzero(poly)
            warn(
                f"{len(pos)} {kind} feature(s) are polygons or multi-points; each is replaced by a "
                f"representative point inside it: {rows_text(gdf, pos)}.",
                f"{len(pos)} 个要素是面或多点，已分别用其内部的代表点代替："
                f"{rows_text(gdf, pos, lang='zh')}。"
            )
            geoms[poly] = shapely.point_on_surface(shapely.make_valid(geoms[poly]))
            names[poly] = "Point"
    wrong = ~np.isin(names, list(allowed))
    if wrong.any():
        pos = np.flatnonzero(wrong)
        found = sorted(set(names[wrong]))
        problems.append(
            f"wrong geometry type {', '.join(found)} in {rows_text(gdf, pos)}: a {kind} layer "
            f"needs {' or '.join(sorted(allowed))}. Check that this is the right file or layer."
        )
        return gdf, problems
    invalid = ~shapely.is_valid(geoms)
    if invalid.any():
        pos = np.flatnonzero(invalid)
        reasons = shapely.is_valid_reason(geoms[invalid])
        fixed = shapely.make_valid(geoms[invalid])
        repaired, failed = [], []
        for i, (p, g) in enumerate(zip(pos, fixed)):
            g2 = _keep_kind(g, names[p])
            if g2 is None:
                failed.append(i)
            else:
                geoms[p] = g2
                repaired.append(i)
        if repaired:
            warn(
                f"repaired {len(repaired)} invalid geometr{'y' if len(repaired) == 1 else 'ies'} "
                f"with shapely.make_valid: "
                + ", ".join(f"{rows_text(gdf, [pos[i]])} [{reasons[i]}]" for i in repaired[:_SHOW])
                + ". Check these features in the source file.",
                f"用 shapely.make_valid 修复了 {len(repaired)} 个无效几何："
                + "、".join(f"{rows_text(gdf, [pos[i]], lang='zh')} [{reasons[i]}]"
                           for i in repaired[:_SHOW])
                + "。请在源文件中检查这些要素。"
            )
        if failed:
            problems.append(
                "invalid geometry that cannot be repaired without changing its type in "
                + ", ".join(f"{rows_text(gdf, [pos[i]])} [{reasons[i]}]" for i in failed[:_SHOW])
                + ". Fix these features in a GIS (e.g. QGIS 'Fix geometries')."
            )
    import geopandas as gpd

    gdf = gdf.copy()
    gdf[gdf.geometry.name] = gpd.GeoSeries(geoms, index=gdf.index, crs=gdf.crs)
    return gdf, problems


def _keep_kind(geom: Any, original: str) -> Any:
    """The part of a repaired geometry with the original dimension, or None."""
    if geom is None or geom.is_empty:
        return None
    if original in POLY:
        dim = 2
    elif original in LINE:
        dim = 1
    else:
        dim = 0
    if geom.geom_type == "GeometryCollection":
        parts = [g for g in shapely.get_parts(geom) if shapely.get_dimensions(g) == dim]
        if not parts:
            return None
        geom = shapely.union_all(parts)
    if shapely.get_dimensions(geom) != dim or geom.is_empty:
        return None
    if dim == 2 and geom.area <= 0:
        return None
    return geom


def check_lonlat(x: np.ndarray, y: np.ndarray, df: pd.DataFrame, *, what: str,
                 region: str = "china") -> list[str]:
    """Swapped longitude/latitude and points outside China (degrees, WGS-84 or near it).

    With ``region="any"`` only coordinates that are no longitude/latitude
    at all (latitude beyond ±90°, longitude beyond ±180°) are problems.
    """
    problems = []
    ok = np.isfinite(x) & np.isfinite(y)
    if not ok.any():
        return problems
    if region == "any":
        outside = ok & ((np.abs(y) > 90) | (np.abs(x) > 180))
        if outside.any():
            pos = np.flatnonzero(outside)
            sample = ", ".join(f"({x[p]:.5f}, {y[p]:.5f})" for p in pos[:3])
            problems.append(
                f"{what}: {len(pos)} point(s) are not longitude/latitude (latitude beyond ±90° "
                f"or longitude beyond ±180°), e.g. {sample}, in {rows_text(df, pos)}. Check the "
                "lon/lat columns (swapped?) and the layer's `crs:`.")
        return problems
    swapped = ok & (x >= 15) & (x <= 55) & (y >= 70) & (y <= 140)
    if swapped[ok].mean() > 0.5:
        problems.append(
            f"{what}: longitude and latitude look swapped (x = {np.nanmedian(x[ok]):.4f}, "
            f"y = {np.nanmedian(y[ok]):.4f}; in China longitude is 73–136 and latitude 3–54). "
            "Set `lon_column:` / `lat_column:` to the right columns, or swap the axes of the file."
        )
        return problems
    minx, miny, maxx, maxy = CHINA_BBOX
    outside = ok & ~((x >= minx) & (x <= maxx) & (y >= miny) & (y <= maxy))
    if outside.any():
        pos = np.flatnonzero(outside)
        sample = ", ".join(f"({x[p]:.5f}, {y[p]:.5f})" for p in pos[:3])
        problems.append(
            f"{what}: {len(pos)} point(s) outside China, e.g. {sample}, in {rows_text(df, pos)}. "
            "Check the coordinates (lon/lat columns, `crs:` of the layer) or remove these rows; "
            "for data outside China set `region: any` in the scenario (read_layer(..., "
            "region='any'))."
        )
    return problems
