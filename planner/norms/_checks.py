"""The measures: how each rule is evaluated on population, facilities and boundaries.

Units and assignment
--------------------
* community: one row of the population layer (a community or compound).
* township: a row of the townships layer; without one, the distinct values
  of the population layer's ``township`` column.
* district: a row of the districts layer; else the distinct ``district``
  values of the population (or townships) layer; else the whole study area
  as one unit.
* A facility (or population unit) belongs to a unit through its own
  ``community`` / ``township`` / ``district`` column (matched to the unit's
  name or id) when it has one, else through a point-in-polygon join with
  the unit polygons (a population polygon's representative point), else
  through the unit it belongs to one level down (community → township →
  district).
* A rule with ``township_kind: subdistrict`` (or ``town``) counts only the
  townships of that kind in its township-centre measures; the kind comes
  from a ``kind`` column of the townships layer (`KIND_COLUMNS`: 街道 /
  镇 / 乡 ...) or else from the name's ending (…街道 → subdistrict, …镇 /
  …乡 → town).  Townships of unknown kind are checked.
* A unit's population, older population and households come from the
  boundary layer's own column where present, else the sum over the
  population units inside it.

Missing data
------------
A value that cannot be computed gives ``status="not_assessable"`` and names
the missing data in ``missing`` (``"facilities.land_area_m2"``).  A column
the facilities layer lacks altogether (or its ``tier``, where a measure
counts one tier) makes every unit of the rule not assessable, also the
units without such facilities.  Where only
some facilities lack a summed value (land, floor area, beds, workers), the
known part is a lower bound: the unit passes if the lower bound passes, and
is "not assessable" otherwise.  Facilities with no ``beds`` value are left
out of bed shares.

Boundary
--------
A value passes when ``value >= threshold * (1 - REL_TOL)``: exactly at the
threshold passes, and ratios that are mathematically equal to the threshold
but off by float rounding (``0.2 * 3 / 3``) pass too.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from planner._errors import PlannerWarning
from planner._schema import TIER_LABELS
from planner.norms._rules import Rule

__all__ = [
    "COLUMNS", "INSTITUTION_TIERS", "KIND_COLUMNS", "MEASURE_FUNCS", "REL_TOL", "STUDY_AREA",
    "UNIT_EN", "Ctx", "Data", "Units", "assign", "measure", "passes", "township_kinds",
    "unit_label",
]

#: Relative tolerance of the threshold comparison (float division noise only).
REL_TOL = 1e-9

#: Tiers whose beds are institutional beds (机构养老床位).  Bed measures (public-bed share,
#: nursing-bed share, beds per 1000 older residents, social workers per 100 beds) count only
#: these unless the rule names a ``tier``: the beds of community stations are day-care beds
#: (日间照料床位), which the documents count separately.
INSTITUTION_TIERS: tuple[str, ...] = ("district_home", "township_centre")

COLUMNS = [
    "rule_id", "title", "measure", "scope", "unit_id", "unit_name", "value", "threshold",
    "unit", "status", "shortfall", "shortfall_text", "missing", "source", "clause",
]

STUDY_AREA = {"zh": "研究范围", "en": "study area"}

_TEXT: dict[str, dict[str, str]] = {
    "land": {"zh": "还需养老服务设施用地 {n} m²", "en": "needs {n} m² more elderly-care land"},
    "floor_hh": {
        "zh": "还需社区养老服务用房 {n} m²",
        "en": "needs {n} m² more community elderly-care floor space",
    },
    "floor": {"zh": "建筑面积还差 {n} m²", "en": "floor area {n} m² short"},
    "beds": {"zh": "还需床位 {n} 张", "en": "needs {n} more beds"},
    "public_beds": {"zh": "还需公办养老机构床位 {n} 张", "en": "needs {n} more public beds"},
    "nursing": {
        "zh": "还需将 {n} 张床位改为护理型床位",
        "en": "needs {n} more nursing-type beds (converted from other beds)",
    },
    "count": {"zh": "还需 {n} 个{tier}", "en": "{n} more {tier_en}"},
    "public_home": {"zh": "还需 {n} 所公办养老院", "en": "{n} more public nursing home(s)"},
    "older": {
        "zh": "还需覆盖 {n} 名老年人（{m} 分钟步行范围内）",
        "en": "{n} more older residents to bring within a {m}-minute walk",
    },
    "towns": {
        "zh": "还需在 {n} 个街镇建设综合养老服务中心",
        "en": "centres needed in {n} more townships/subdistricts",
    },
    "stations": {
        "zh": "还需在 {n} 个社区建设养老服务站",
        "en": "stations needed in {n} more communities",
    },
    "workers": {"zh": "还需社会工作者 {n} 名", "en": "needs {n} more social workers"},
}


_AREA_TEXTS = ("land", "floor_hh", "floor")

#: English display of the units written in the shipped rule files (``unit`` is display text;
#: a unit not listed here is shown as written).  ``share`` stays ``share`` in both languages:
#: the report and maps format those values as percentages.
UNIT_EN: dict[str, str] = {
    "m²/人": "m² per resident",
    "m²/百户": "m² per 100 households",
    "个": "count",
    "所": "count",
    "张": "beds",
    "张/千名老年人": "beds per 1000 older residents",
    "人/千名老年人": "social workers per 1000 older residents",
    "人/百床": "social workers per 100 beds",
}


def unit_label(unit: str, lang: str) -> str:
    """A rule's ``unit`` in the table's language (English for the shipped Chinese units)."""
    return UNIT_EN.get(unit, unit) if lang == "en" else unit


def _fmt(n: float) -> str:
    return f"{math.ceil(n - 1e-6):,d}"


def passes(value: float, threshold: float) -> bool:
    """Whether ``value`` meets the lower bound ``threshold`` (see `REL_TOL`)."""
    return bool(value >= threshold * (1.0 - REL_TOL))


# --------------------------------------------------------------------------- data prep
def _key(v: Any) -> str | None:
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return None
    s = str(v).strip()
    return s or None


def _ids(df: pd.DataFrame, *, layer: str = "", stacklevel: int = 4) -> pd.Series:
    """Unit ids as text: the ``id`` column, else the row index; made unique (with a warning).

    ``stacklevel``: of the warning about duplicate ids (as `warnings.warn`'s, from the caller).
    """
    src = df["id"] if "id" in df.columns else pd.Series(df.index, index=df.index)
    ids = src.map(_key)
    ids = ids.where(ids.notna(), pd.Series([f"#{i}" for i in range(len(df))], index=df.index))
    dup = ids.duplicated(keep=False)
    if dup.any() and layer:
        first = ids[dup].iloc[0]
        warnings.warn(PlannerWarning(
            f"Layer `{layer}` has {int(dup.sum())} rows with duplicate ids "
            f"(e.g. {first!r}); the norm checks number them "
            f"'{first}#1', '#2'... Give each row its own id to name them in the "
            "results.",
            f"图层 `{layer}` 有 {int(dup.sum())} 行编号重复（如 {first!r}）；规范核查将其编为 "
            f"'{first}#1'、'#2'……请为每行设唯一编号，以便在结果中区分。"),
            stacklevel=stacklevel)
    if dup.any():
        n = ids.groupby(ids).cumcount() + 1
        ids = ids.where(~dup, ids + "#" + n.astype(str))
    return ids


def _warn_unmatched(df: pd.DataFrame, column: str, units: Units | None, layer: str, *,
                    stacklevel: int = 4) -> None:
    """Warn about names in ``layer.column`` that match no unit (they are placed by location)."""
    if units is None or units.source == "all" or column not in df.columns or not len(df):
        return
    vals = df[column].map(_key)
    bad = sorted({v for v, m in zip(vals, units.match(df[column]), strict=True)
                  if v is not None and m is None})
    if bad:
        shown = ", ".join(repr(b) for b in bad[:5]) + (" ..." if len(bad) > 5 else "")
        warnings.warn(PlannerWarning(
            f"{len(bad)} value(s) of `{layer}.{column}` match no name or id of the "
            f"{units.source} units: {shown}. Those rows are placed by their location "
            f"(or left out of {column} totals when outside every unit); fix the spelling "
            f"in `{layer}.{column}` to assign them by name.",
            f"`{layer}.{column}` 有 {len(bad)} 个值与 {units.source} 单元的名称或编号都不匹配："
            f"{shown}。这些行按位置归属（不在任何单元内的不计入 {column} 合计）；请修正 "
            f"`{layer}.{column}` 的写法，以便按名称归属。"), stacklevel=stacklevel)


def _names(df: pd.DataFrame, ids: pd.Series) -> pd.Series:
    if "name" in df.columns:
        return df["name"].map(_key).fillna(ids)
    return ids


def _is_geo(df: Any) -> bool:
    return df is not None and hasattr(df, "geometry") and "geometry" in df.columns


def _has_polygons(df: Any) -> bool:
    if not _is_geo(df) or len(df) == 0:
        return False
    return bool(df.geometry.geom_type.isin(["Polygon", "MultiPolygon"]).all())


def _to_bool(v: Any) -> float:
    """1.0 / 0.0 for public / not public, NaN when unknown."""
    if v is None or v is pd.NA:
        return np.nan
    if isinstance(v, (bool, np.bool_)):
        return float(v)
    if isinstance(v, (int, float, np.integer, np.floating)):
        return np.nan if math.isnan(float(v)) else float(v != 0)
    s = str(v).strip().lower()
    if s in {"true", "yes", "y", "1", "是", "公办", "公建公营", "公建民营", "公办民营", "t"}:
        return 1.0
    if s in {"false", "no", "n", "0", "否", "民办", "非公办", "f"}:
        return 0.0
    return np.nan


#: Columns of a townships layer that may say whether a township is a subdistrict or a town.
KIND_COLUMNS: tuple[str, ...] = ("kind", "township_kind", "type", "类型", "类别", "性质")
_SUBDISTRICT = {"subdistrict", "street", "街道", "街道办", "街道办事处", "街办"}
_TOWN = {"town", "镇", "乡", "乡镇", "民族乡"}


def township_kinds(names: pd.Series, explicit: pd.Series | None = None) -> pd.Series:
    """``"subdistrict"`` (街道), ``"town"`` (镇/乡) or None (unknown) for each township.

    An explicit kind column (`KIND_COLUMNS`) wins; otherwise the name's ending decides:
    ``…街道`` / ``…街道办(事处)`` / ``…街办`` is a subdistrict, ``…镇`` / ``…乡`` a town.
    """
    def from_name(v: Any) -> str | None:
        k = _key(v)
        if k is None:
            return None
        if k.endswith(("街道", "街道办", "街道办事处", "街办")):
            return "subdistrict"
        if k.endswith(("镇", "乡")):
            return "town"
        return None

    def from_value(v: Any) -> str | None:
        k = _key(v)
        if k is None:
            return None
        k = k.lower()
        return "subdistrict" if k in _SUBDISTRICT else "town" if k in _TOWN else None

    kinds = names.map(from_name)
    if explicit is not None:
        given = explicit.map(from_value)
        kinds = given.where(given.notna(), kinds)
    return kinds.astype(object)


def _kind_ok(ctx: Ctx, table: pd.DataFrame) -> pd.Series:
    """Which townships of ``table`` a rule with a ``township_kind`` applies to.

    Townships of the other kind are left out; those of unknown kind are checked (the rule
    may apply to them: give the townships layer a ``kind`` column to decide).
    """
    kind = ctx.rule.township_kind
    if kind is None or "_kind" not in table.columns:
        return pd.Series(True, index=table.index)
    k = table["_kind"]
    return k.isna() | (k == kind)


class Units:
    """The units of one scope: a table indexed by unit id (``name`` + counts) and polygons."""

    def __init__(self, table: pd.DataFrame, polygons: Any = None, *, source: str = ""):
        self.table = table
        self.polygons = polygons
        self.source = source  # which layer the units came from ("townships", "population.township")

    def __len__(self) -> int:
        return len(self.table)

    def match(self, values: pd.Series) -> pd.Series:
        """Map names or ids written in a column onto unit ids (None where unmatched)."""
        by_id = {str(i): str(i) for i in self.table.index}
        by_name = {str(n): str(i) for i, n in self.table["name"].items()}
        keys = values.map(_key)
        return keys.map(lambda k: None if k is None else by_name.get(k, by_id.get(k)))


def _boundary_units(layer: Any, name: str, *, stacklevel: int = 4) -> Units:
    """Units of a boundary layer (``townships`` / ``districts``): ids, names, counts, polygons."""
    ids = _ids(layer, layer=name, stacklevel=stacklevel)
    table = pd.DataFrame({"name": _names(layer, ids).to_numpy()}, index=ids.to_numpy())
    for col in ("population", "pop_60plus", "households", "district"):
        if col in layer.columns:
            table[col] = layer[col].to_numpy()
    polys = layer.set_index(ids.to_numpy())[["geometry"]] if _has_polygons(layer) else None
    return Units(table, polys, source=name)


def _value_units(values: pd.Series, source: str) -> Units:
    keys = sorted({k for k in values.map(_key) if k is not None})
    return Units(pd.DataFrame({"name": keys}, index=keys), None, source=source)


def _points(gdf: Any) -> Any:
    if not _is_geo(gdf):
        return None
    geom = gdf.geometry
    pts = geom.where(geom.geom_type == "Point", geom.representative_point())
    return gdf.set_geometry(pts)


def _spatial(gdf: Any, units: Units) -> pd.Series:
    """Unit id of each row of ``gdf`` by point-in-polygon (None outside every unit)."""
    out = pd.Series([None] * len(gdf), index=gdf.index, dtype=object)
    if units.polygons is None or not _is_geo(gdf) or len(gdf) == 0:
        return out
    import geopandas as gpd

    pts = _points(gdf)
    valid = ~(pts.geometry.isna() | pts.geometry.is_empty)
    pts = pts[valid]
    polys = gpd.GeoDataFrame({"_uid": units.polygons.index},
                             geometry=units.polygons.geometry.values, crs=units.polygons.crs)
    if pts.crs is not None and polys.crs is not None and pts.crs != polys.crs:
        pts = pts.to_crs(polys.crs)
    left = gpd.GeoDataFrame({"_row": np.arange(len(pts))}, geometry=pts.geometry.values,
                            crs=polys.crs)
    joined = gpd.sjoin(left, polys, how="left", predicate="within")
    joined = joined[~joined["_row"].duplicated()]
    vals = joined.sort_values("_row")["_uid"].to_numpy()
    out.loc[pts.index] = [None if pd.isna(v) else str(v) for v in vals]
    return out


def assign(df: Any, column: str, units: Units | None, *, via: pd.Series | None = None,
           via_map: dict[str, str] | None = None) -> pd.Series:
    """Unit id of each row: own column, else polygons, else ``via`` (lower level) mapped up."""
    out = pd.Series([None] * len(df), index=df.index, dtype=object)
    if units is None or df is None or len(df) == 0:
        return out
    if units.source == "all":
        return pd.Series(["all"] * len(df), index=df.index, dtype=object)
    if column in df.columns:
        out = units.match(df[column]).astype(object)
    todo = out.isna()
    if todo.any() and units.polygons is not None and _is_geo(df):
        out[todo] = _spatial(df[todo], units)
    todo = out.isna()
    if todo.any() and via is not None and via_map:
        out[todo] = via[todo].map(lambda k: via_map.get(k) if k is not None else None)
    return out.where(out.notna(), None)


def _community_units(pop: Any) -> Units:
    """The population rows as community units (ids, names, counts, polygons)."""
    ids = _ids(pop, layer="population", stacklevel=5)
    comm = pd.DataFrame({"name": _names(pop, ids).to_numpy()}, index=ids.to_numpy())
    for col in ("population", "pop_60plus", "households"):
        if col in pop.columns:
            comm[col] = pd.to_numeric(pop[col], errors="coerce").to_numpy()
    polys = pop.set_index(ids.to_numpy())[["geometry"]] if _has_polygons(pop) else None
    return Units(comm, polys, source="population")


def _township_units(townships: Any, pop: pd.DataFrame, fac: pd.DataFrame) -> Units | None:
    """The townships layer's units; else the distinct ``township`` values; with ``_kind``."""
    has_layer = townships is not None and len(townships)
    if has_layer:
        town = _boundary_units(townships, "townships", stacklevel=5)
    elif "township" in pop.columns:
        town = _value_units(pop["township"], "population.township")
    elif "township" in fac.columns:
        town = _value_units(fac["township"], "facilities.township")
    else:
        return None
    explicit = None
    if has_layer:
        kcol = next((c for c in KIND_COLUMNS if c in townships.columns), None)
        if kcol is not None:
            explicit = pd.Series(townships[kcol].to_numpy(), index=town.table.index)
    town.table["_kind"] = township_kinds(town.table["name"], explicit)
    return town


def _district_units(districts: Any, townships: Any, pop: pd.DataFrame, lang: str) -> Units:
    """The districts layer's units; else the distinct ``district`` values; else the study area."""
    if districts is not None and len(districts):
        return _boundary_units(districts, "districts", stacklevel=5)
    if "district" in pop.columns and pop["district"].notna().any():
        return _value_units(pop["district"], "population.district")
    if townships is not None and "district" in townships.columns:
        return _value_units(townships["district"], "townships.district")
    name = STUDY_AREA.get(lang, STUDY_AREA["zh"])
    return Units(pd.DataFrame({"name": [name]}, index=["all"]), None, source="all")


class Data:
    """Inputs of a check, with every facility and population unit assigned to its units."""

    def __init__(self, *, population: Any, facilities: Any, townships: Any, districts: Any,
                 access: Any, lang: str):
        self.lang = lang
        self.access = access
        pop = population if population is not None else pd.DataFrame()
        fac = facilities.copy() if facilities is not None else pd.DataFrame()
        self.has_facilities = facilities is not None
        # communities = population rows
        self.comm = (_community_units(pop) if population is not None and len(pop) else None)
        self.town = _township_units(townships, pop, fac)
        self.dist = _district_units(districts, townships, pop, lang)
        self._link_townships(townships, pop)
        self._assign_population(pop)
        self._assign_facilities(fac)

    def _link_townships(self, townships: Any, pop: pd.DataFrame) -> None:
        """Townships -> districts (``_district`` of the township table, ``_town_dist``)."""
        if self.town is not None:
            index = self.town.table.index
            tdf = townships if townships is not None and len(townships) else None
            if tdf is not None:
                t_dist = assign(tdf.set_axis(_ids(tdf).to_numpy()), "district", self.dist)
            elif self.town.source == "population.township" and "district" in pop.columns:
                pairs = pd.DataFrame({"t": pop["township"].map(_key), "d": pop["district"]})
                first = pairs.dropna().drop_duplicates("t").set_index("t")["d"]
                t_dist = assign(pd.DataFrame({"district": first.reindex(index)}, index=index),
                                "district", self.dist)
            else:
                t_dist = assign(pd.DataFrame(index=index), "district", self.dist)
            self.town.table["_district"] = t_dist.reindex(index).to_numpy()
        self._town_dist = (dict(self.town.table["_district"].dropna())
                           if self.town is not None else {})

    def _assign_population(self, pop: pd.DataFrame) -> None:
        """Population units -> township, district (``_comm_town``, ``_comm_dist``)."""
        if self.comm is not None:
            p = pop.set_axis(self.comm.table.index)
            for col, units in (("township", self.town), ("district", self.dist)):
                _warn_unmatched(p, col, units, "population", stacklevel=5)
            ct = assign(p, "township", self.town)
            cd = assign(p, "district", self.dist, via=ct, via_map=self._town_dist)
            self.comm.table["_township"] = ct.to_numpy()
            self.comm.table["_district"] = cd.to_numpy()
        self._comm_town = (dict(self.comm.table["_township"].dropna())
                           if self.comm is not None else {})
        self._comm_dist = (dict(self.comm.table["_district"].dropna())
                           if self.comm is not None else {})

    def _assign_facilities(self, fac: pd.DataFrame) -> None:
        """Facilities -> community, township, district (``fac``, ``_fac_town``)."""
        if len(fac):
            fac.index = _ids(fac, layer="facilities", stacklevel=5).to_numpy()
            for col, units in (("community", self.comm), ("township", self.town),
                               ("district", self.dist)):
                _warn_unmatched(fac, col, units, "facilities", stacklevel=5)
            fac["_name"] = _names(fac, pd.Series(fac.index, index=fac.index)).to_numpy()
            fc = assign(fac, "community", self.comm)
            ft = assign(fac, "township", self.town, via=fc, via_map=self._comm_town)
            fd = assign(fac, "district", self.dist, via=ft, via_map=self._town_dist)
            if fd.isna().any():
                fd[fd.isna()] = fc[fd.isna()].map(lambda k: self._comm_dist.get(k) if k else None)
            fac["_community"], fac["_township"], fac["_district"] = fc, ft, fd
            fac["_tier"] = fac["tier"].astype(object) if "tier" in fac.columns else None
        self.fac = fac
        self._fac_town = dict(fac["_township"].dropna()) if len(fac) else {}

    # ----------------------------------------------------------------- helpers
    def units(self, scope: str) -> Units | None:
        return {"community": self.comm, "township": self.town, "district": self.dist}.get(scope)

    def unit_key(self, scope: str) -> str:
        return {"community": "_community", "township": "_township", "district": "_district"}[scope]

    def township_of(self, scope: str, unit_id: str) -> str | None:
        if scope == "township":
            return unit_id
        if scope == "community":
            return self._comm_town.get(unit_id)
        if scope == "facility":
            return self._fac_town.get(unit_id)
        return None

    def facilities_in(self, tier: str | tuple[str, ...] | None = None) -> pd.DataFrame:
        """Facilities of ``tier`` (one tier, a tuple of tiers, or ``None`` for all)."""
        fac = self.fac
        if not len(fac) or tier is None:
            return fac
        tiers = (tier,) if isinstance(tier, str) else tuple(tier)
        return fac[fac["_tier"].isin(tiers)]

    def unit_counts(self, scope: str, column: str) -> tuple[pd.Series, str]:
        """Per unit: ``column`` (population, pop_60plus, households) and where it came from.

        The unit layer's own column first; else the sum over the population
        units inside; for districts, else the sum over their townships' own
        column.  NaN where it cannot be known (missing column, a NaN among the
        summed units, or nothing inside).
        """
        units = self.units(scope)
        index = units.table.index
        if scope == "community":
            col = self.comm.table.get(column)
            val = col.astype(float) if col is not None else pd.Series(np.nan, index=index)
            return val, f"population.{column}"
        value = (pd.to_numeric(units.table[column], errors="coerce")
                 if column in units.table.columns
                 else pd.Series(np.nan, index=index, dtype=float))
        src = f"{units.source}.{column}"
        lower = [(self.comm, "_township" if scope == "township" else "_district", "population")]
        if scope == "district" and self.town is not None:
            lower.append((self.town, "_district", self.town.source))
        for sub, key, name in lower:
            if value.notna().all():
                break
            if sub is None or column not in sub.table.columns or key not in sub.table.columns:
                continue
            keys = (sub.table[key] if units.source != "all"
                    else pd.Series("all", index=sub.table.index))
            vals = pd.to_numeric(sub.table[column], errors="coerce")
            grp = pd.DataFrame({"k": keys, "v": vals}).dropna(subset=["k"]).groupby("k")["v"]
            summed = grp.sum(min_count=1).where(~grp.apply(lambda x: x.isna().any()))
            value = value.where(value.notna(), summed.reindex(index))
            src = f"{name}.{column}"
        if value.isna().any():
            alt = [f"{units.source}.{column}"] if units.source in ("townships", "districts") else []
            if scope == "district" and self.town is not None and self.town.source == "townships":
                alt.append(f"townships.{column}")
            src = " or ".join(dict.fromkeys([f"population.{column}", *alt]))
        return value.astype(float), src


# --------------------------------------------------------------------------- rows
class Ctx:
    """Builds result rows for one rule."""

    def __init__(self, rule: Rule, data: Data):
        self.rule, self.data, self.lang = rule, data, data.lang
        self.rows: list[dict] = []

    def add(self, unit_id: Any, unit_name: Any, value: float, *,
            need: Callable[[float], float] | None, text: str | None = None, missing: str = "",
            partial: str = "", **fmt: Any) -> None:
        """One row.  ``need(value)`` is the shortfall amount (rounded up to whole items unless
        the text is an area); ``partial`` names data missing for some of the summed items
        (the value is then a lower bound)."""
        r = self.rule
        shortfall, stext, status = 0.0, "", "pass"
        if missing or value is None or not np.isfinite(value):
            status, value, shortfall = "not_assessable", np.nan, np.nan
            missing = missing or "?"
        elif not passes(value, r.threshold):
            if partial:
                status, shortfall, missing = "not_assessable", np.nan, partial
            else:
                status = "fail"
                shortfall = max(float(need(value)) if need else 0.0, 0.0)
                if text not in _AREA_TEXTS:
                    shortfall = float(math.ceil(shortfall - 1e-6))
                if text:
                    tier = fmt.pop("tier", None) or r.tier or "community_station"
                    stext = _TEXT[text][self.lang].format(
                        n=_fmt(shortfall), tier=TIER_LABELS[tier]["zh"],
                        tier_en=TIER_LABELS[tier]["en"].lower() + "(s)", **fmt,
                    )
        self.rows.append({
            "rule_id": r.id, "title": r.title_in(self.lang), "measure": r.measure, "scope": r.scope,
            "unit_id": "" if unit_id is None else str(unit_id),
            "unit_name": "" if unit_name is None else str(unit_name),
            "value": float(value) if value is not None else np.nan, "threshold": r.threshold,
            "unit": unit_label(r.unit, self.lang), "status": status, "shortfall": shortfall,
            "shortfall_text": stext,
            "missing": missing if status == "not_assessable" else "", "source": r.source,
            "clause": r.clause,
            "_township": self.data.township_of(r.scope, "" if unit_id is None else str(unit_id)),
        })

    def no_units(self, what: str) -> None:
        self.add(None, None, np.nan, need=None, missing=what)

    def all_missing(self, units: Units, missing: str) -> None:
        """One "not assessable" row per unit of ``units``, naming the ``missing`` data."""
        for uid, name in units.table["name"].items():
            self.add(uid, name, np.nan, need=None, missing=missing)


def _fac_sum(fac: pd.DataFrame, key: str, col: str) -> tuple[pd.Series, pd.Series]:
    """Per unit id: sum of known ``col`` and number of facilities lacking it."""
    if not len(fac):
        return pd.Series(dtype=float), pd.Series(dtype=float)
    vals = (pd.to_numeric(fac[col], errors="coerce") if col in fac.columns
            else pd.Series(np.nan, index=fac.index))
    g = pd.DataFrame({"k": fac[key], "v": vals}).dropna(subset=["k"]).groupby("k")["v"]
    return g.sum(), g.apply(lambda s: s.isna().sum()).astype(float)


def _count(fac: pd.DataFrame, key: str) -> pd.Series:
    if not len(fac):
        return pd.Series(dtype=float)
    return fac[key].dropna().value_counts().astype(float)


def _partial(n_missing: float, col: str) -> str:
    if n_missing and n_missing > 0:
        return f"facilities.{col} ({int(n_missing)} facilities)"
    return ""


# --------------------------------------------------------------------------- measures
MEASURE_FUNCS: dict[str, Callable[[Ctx], None]] = {}


def measure(name: str):
    def deco(fn: Callable[[Ctx], None]) -> Callable[[Ctx], None]:
        MEASURE_FUNCS[name] = fn
        return fn
    return deco


#: The data that makes the units of a scope, named when they are missing.
_UNITS_FROM = {"township": "townships (layer, or a `township` column in population)",
               "community": "population"}


def _scope_units(ctx: Ctx) -> Units | None:
    units = ctx.data.units(ctx.rule.scope)
    if units is None:
        ctx.no_units(_UNITS_FROM.get(ctx.rule.scope, ctx.rule.scope))
    return units


def _tier_data_missing(data: Data) -> str:
    """What is lacking to count facilities by tier (``""`` when nothing is)."""
    if not data.has_facilities:
        return "facilities"
    if len(data.fac) and "tier" not in data.fac.columns:
        return "facilities.tier"
    return ""


def _ratio_by_unit(ctx: Ctx, *, col: str, den_col: str, per: float, text: str,
                   tier: str | None = None,
                   den_fn: Callable[[Units], tuple[pd.Series, str]] | None = None,
                   fac_filter: Callable[[pd.DataFrame], pd.DataFrame] | None = None) -> None:
    """Generic "sum of a facility column per unit / unit count × per" measure."""
    units = _scope_units(ctx)
    if units is None:
        return
    data, scope, thr = ctx.data, ctx.rule.scope, ctx.rule.threshold
    if not data.has_facilities:
        ctx.all_missing(units, "facilities")
        return
    # a column the layer lacks leaves every unit unknown, also those without such facilities
    # (0 of an unknown quantity is no evidence of a shortfall)
    absent = [c for c in (col, "tier" if tier is not None else None)
              if c is not None and len(data.fac) and c not in data.fac.columns]
    if absent:
        ctx.all_missing(units, " and ".join(f"facilities.{c}" for c in absent))
        return
    key = data.unit_key(scope)
    fac = data.facilities_in(tier)
    if fac_filter is not None and len(fac):
        fac = fac_filter(fac)
    num, nmiss = _fac_sum(fac, key, col)
    den, den_src = den_fn(units) if den_fn else data.unit_counts(scope, den_col)
    num, nmiss, den = num.to_dict(), nmiss.to_dict(), den.to_dict()
    for uid, name in units.table["name"].items():
        n = float(num.get(uid, 0.0))
        miss = float(nmiss.get(uid, 0.0))
        d = den.get(uid, np.nan)
        if d is None or not np.isfinite(d):
            ctx.add(uid, name, np.nan, need=None, missing=den_src)
            continue
        if d <= 0:
            ctx.add(uid, name, np.nan, need=None, missing=f"{den_src} (0 in this unit)")
            continue
        ctx.add(uid, name, n / d * per, need=lambda v, n=n, d=d: thr * d / per - n, text=text,
                partial=_partial(miss, col))


def _communities_unplaceable(ctx: Ctx) -> bool:
    """Mark every community "not assessable" when facilities cannot be placed in them.

    That is when facilities carry no ``community`` column and the population
    units have no polygons to place them in by location.
    """
    data = ctx.data
    if data.comm is None or not len(data.fac) or "community" in data.fac.columns \
            or data.comm.polygons is not None:
        return False
    ctx.all_missing(data.comm,
                    "facilities.community (or population polygons to place facilities in)")
    return True


@measure("land_per_resident")
def _land(ctx: Ctx) -> None:
    _ratio_by_unit(ctx, col="land_area_m2", den_col="population", per=1.0, text="land",
                   tier=ctx.rule.tier)


@measure("community_floor_per_100_households")
def _floor_hh(ctx: Ctx) -> None:
    if _communities_unplaceable(ctx):
        return
    _ratio_by_unit(ctx, col="floor_area_m2", den_col="households", per=100.0, text="floor_hh",
                   tier=ctx.rule.tier or "community_station")


def _facility_rows(ctx: Ctx, value_fn: Callable[[dict], tuple[float, str, Callable | None]],
                   text: str, columns: tuple[str, ...]) -> None:
    """One row per facility of the rule's tier; ``value_fn`` gets the numeric ``columns``."""
    fac = ctx.data.fac
    if not len(fac):
        return
    if "tier" not in fac.columns:
        ctx.no_units("facilities.tier")
        return
    mine = fac[fac["_tier"] == ctx.rule.tier]
    nums = {c: (pd.to_numeric(mine[c], errors="coerce") if c in mine.columns
                else pd.Series(np.nan, index=mine.index)).astype(float).to_numpy()
            for c in columns}
    for i, (fid, name) in enumerate(zip(mine.index, mine["_name"], strict=True)):
        value, missing, need = value_fn({c: v[i] for c, v in nums.items()})
        ctx.add(fid, name, value, need=need, text=text, missing=missing)


def _facility_minimum(column: str, text: str):
    """A facility-scope check that one column reaches the rule's threshold."""

    def check(ctx: Ctx) -> None:
        thr = ctx.rule.threshold

        def fn(row):
            v = row[column]
            return v, ("" if np.isfinite(v) else f"facilities.{column}"), lambda x: thr - x
        _facility_rows(ctx, fn, text, (column,))

    return check


measure("facility_floor_area")(_facility_minimum("floor_area_m2", "floor"))
measure("facility_beds")(_facility_minimum("beds", "beds"))


@measure("facility_nursing_share")
def _fac_nursing(ctx: Ctx) -> None:
    thr = ctx.rule.threshold

    def fn(row):
        beds, nb = row["beds"], row["nursing_beds"]
        if not np.isfinite(beds) or beds <= 0:
            return np.nan, "facilities.beds (no beds given)", None
        if not np.isfinite(nb):
            return np.nan, "facilities.nursing_beds", None
        return nb / beds, "", lambda x: thr * beds - nb
    _facility_rows(ctx, fn, "nursing", ("beds", "nursing_beds"))


def _count_measure(ctx: Ctx, tier: str, text: str) -> None:
    units = _scope_units(ctx)
    if units is None:
        return
    data, thr = ctx.data, ctx.rule.threshold
    if missing := _tier_data_missing(data):
        ctx.all_missing(units, missing)
        return
    counts = _count(data.facilities_in(tier), data.unit_key(ctx.rule.scope)).to_dict()
    table = units.table
    if ctx.rule.scope == "township":
        table = table[_kind_ok(ctx, table)]
    for uid, name in table["name"].items():
        ctx.add(uid, name, float(counts.get(uid, 0.0)), need=lambda v: thr - v, text=text,
                tier=tier)


@measure("community_station_count")
def _station_count(ctx: Ctx) -> None:
    if _communities_unplaceable(ctx):
        return
    _count_measure(ctx, ctx.rule.tier or "community_station", "count")


@measure("township_centre_count")
def _centre_count(ctx: Ctx) -> None:
    _count_measure(ctx, ctx.rule.tier or "township_centre", "count")


@measure("public_home_count")
def _public_home(ctx: Ctx) -> None:
    units = _scope_units(ctx)
    if units is None:
        return
    data, thr = ctx.data, ctx.rule.threshold
    tier = ctx.rule.tier or "district_home"
    homes = data.facilities_in(tier) if data.has_facilities and "tier" in data.fac.columns \
        else None
    for uid, name in units.table["name"].items():
        if homes is None:
            ctx.add(uid, name, np.nan, need=None,
                    missing="facilities" if not data.has_facilities else "facilities.tier")
            continue
        mine = homes[homes["_district"] == uid] if len(homes) else homes
        pub = (mine["public"].map(_to_bool) if "public" in mine.columns
               else pd.Series(np.nan, index=mine.index))
        known = float((pub == 1.0).sum())
        unknown = float(pub.isna().sum())
        partial = ""
        if unknown:
            partial = ("facilities.public" if "public" not in mine.columns
                       else f"facilities.public ({int(unknown)} facilities)")
        if not passes(known, thr) and not passes(known + unknown, thr):
            partial = ""  # fails even if every unknown one were public
        ctx.add(uid, name, known, need=lambda v: thr - v, text="public_home", partial=partial)


@measure("public_beds_share")
def _public_beds(ctx: Ctx) -> None:
    fac = ctx.data.fac
    if len(fac) and "public" not in fac.columns:
        units = _scope_units(ctx)
        if units is not None:
            ctx.all_missing(units, "facilities.public")
        return
    public = fac["public"].map(_to_bool) if len(fac) else None
    any_unknown = public is not None and bool(public.isna().any())

    def only_public(f: pd.DataFrame) -> pd.DataFrame:
        pub = public.reindex(f.index)
        if not any_unknown:
            return f[pub == 1.0]
        # unknown ownership: count those beds as missing (lower bound)
        f = f.copy()
        f.loc[pub.isna(), "beds"] = np.nan
        return f[pub != 0.0]
    _ratio_by_unit(ctx, col="beds", den_col="pop_60plus", per=1.0, text="public_beds",
                   tier=ctx.rule.tier or INSTITUTION_TIERS, fac_filter=only_public)


@measure("nursing_bed_share")
def _nursing_share(ctx: Ctx) -> None:
    units = _scope_units(ctx)
    if units is None:
        return
    data, thr = ctx.data, ctx.rule.threshold
    if missing := _tier_data_missing(data):
        ctx.all_missing(units, missing)
        return
    key = data.unit_key(ctx.rule.scope)
    fac = data.facilities_in(ctx.rule.tier or INSTITUTION_TIERS)
    for col in ("beds", "nursing_beds"):
        if not len(fac) or col not in fac.columns:
            ctx.all_missing(units, "facilities" if not len(fac) else f"facilities.{col}")
            return
    beds = pd.to_numeric(fac["beds"], errors="coerce")
    fac = fac[beds > 0]
    beds_sum, _ = _fac_sum(fac, key, "beds")
    nb_sum, nb_miss = _fac_sum(fac, key, "nursing_beds")
    for uid, name in units.table["name"].items():
        b = float(beds_sum.get(uid, 0.0))
        if b <= 0:
            ctx.add(uid, name, np.nan, need=None, missing="facilities.beds (no beds in this unit)")
            continue
        nb = float(nb_sum.get(uid, 0.0))
        ctx.add(uid, name, nb / b, need=lambda v, b=b, nb=nb: thr * b - nb, text="nursing",
                partial=_partial(nb_miss.get(uid, 0.0), "nursing_beds"))


@measure("beds_per_1000_older")
def _beds_1000(ctx: Ctx) -> None:
    _ratio_by_unit(ctx, col="beds", den_col="pop_60plus", per=1000.0, text="beds",
                   tier=ctx.rule.tier or INSTITUTION_TIERS)


@measure("social_workers_per_1000_older")
def _sw_1000(ctx: Ctx) -> None:
    if _needs_column(ctx, "social_workers"):
        return
    _ratio_by_unit(ctx, col="social_workers", den_col="pop_60plus", per=1000.0, text="workers",
                   tier=ctx.rule.tier)


@measure("social_workers_per_100_beds")
def _sw_100_beds(ctx: Ctx) -> None:
    if _needs_column(ctx, "social_workers") or _needs_column(ctx, "beds"):
        return
    data = ctx.data
    key = data.unit_key(ctx.rule.scope)
    tiers = ctx.rule.tier or INSTITUTION_TIERS

    def den_fn(units: Units) -> tuple[pd.Series, str]:
        beds, miss = _fac_sum(data.facilities_in(tiers), key, "beds")
        beds = beds.where(miss.reindex(beds.index, fill_value=0) == 0)
        return beds.reindex(units.table.index), "facilities.beds"
    _ratio_by_unit(ctx, col="social_workers", den_col="", per=100.0, text="workers", den_fn=den_fn,
                   tier=tiers)


def _needs_column(ctx: Ctx, col: str) -> bool:
    if ctx.data.has_facilities and col in ctx.data.fac.columns:
        return False
    units = _scope_units(ctx)
    if units is not None:
        ctx.all_missing(units, f"facilities.{col}")
    return True


def _share_of_units(ctx: Ctx, sub_scope: str, *, tier: str, text: str) -> None:
    """Share of sub-units (``sub_scope``: townships, communities) of each unit holding ≥ 1
    facility of ``tier``."""
    units = _scope_units(ctx)
    if units is None:
        return
    data, thr = ctx.data, ctx.rule.threshold
    sub, what = data.units(sub_scope), _UNITS_FROM[sub_scope]
    if missing := (what if sub is None else _tier_data_missing(data)):
        ctx.all_missing(units, missing)
        return
    is_town = sub_scope == "township"
    counts = _count(data.facilities_in(tier), data.unit_key(sub_scope)).to_dict()
    table = sub.table[_kind_ok(ctx, sub.table)] if is_town else sub.table
    has = table.index.to_series().map(lambda k: counts.get(k, 0.0) >= 1)
    parent = table["_district"] if ctx.rule.scope == "district" else table.get("_township")
    for uid, name in units.table["name"].items():
        mask = parent == uid
        n = float(mask.sum())
        if n == 0:
            kind = ctx.rule.township_kind if is_town else None
            miss = (f"{what} (none inside this unit)" if kind is None else
                    f"{what} (no {kind} inside this unit; the rule counts {kind}s only)")
            ctx.add(uid, name, np.nan, need=None, missing=miss)
            continue
        covered = float(has[mask].sum())
        ctx.add(uid, name, covered / n, need=lambda v, n=n, c=covered: thr * n - c, text=text)


@measure("township_centre_coverage")
def _centre_cov(ctx: Ctx) -> None:
    _share_of_units(ctx, "township", tier=ctx.rule.tier or "township_centre", text="towns")


@measure("community_station_coverage")
def _station_cov(ctx: Ctx) -> None:
    _share_of_units(ctx, "community", tier=ctx.rule.tier or "community_station", text="stations")


@measure("coverage_15min")
def _coverage(ctx: Ctx) -> None:
    units = _scope_units(ctx)
    if units is None:
        return
    data, thr, minutes = ctx.data, ctx.rule.threshold, ctx.rule.minutes
    acc = data.access
    m_txt = f"{minutes:g}"
    # a rule with a `tier` reads that tier's time; else the within_<T>min flag or time_min_any
    within_col = f"within_{m_txt}min" if ctx.rule.tier is None else ""
    time_col = "time_min_any" if ctx.rule.tier is None else f"time_min_{ctx.rule.tier}"
    missing = ""
    if acc is None:
        missing = "population_access (run the access step: `access:` in the scenario)"
    elif "pop_60plus" not in acc.columns:
        missing = "population_access.pop_60plus"
    elif within_col not in acc.columns and time_col not in acc.columns:
        missing = (f"population_access.{within_col} (or {time_col})" if within_col
                   else f"population_access.{time_col}")
    if missing:
        ctx.all_missing(units, missing)
        return
    if within_col and within_col in acc.columns:
        inside = acc[within_col].fillna(False).astype(bool)
    else:
        inside = pd.to_numeric(acc[time_col], errors="coerce") <= minutes * (1 + REL_TOL)
    older = pd.to_numeric(acc["pop_60plus"], errors="coerce")
    a = acc.set_axis(_ids(acc).to_numpy())
    town = assign(a, "township", data.town)
    key = town if ctx.rule.scope == "township" else assign(
        a, "district", data.dist, via=town, via_map=data._town_dist)
    df = pd.DataFrame({"k": key.to_numpy(), "p": older.to_numpy(), "in": inside.to_numpy()})
    for uid, name in units.table["name"].items():
        part = df[df["k"] == uid]
        if part["p"].isna().any():
            ctx.add(uid, name, np.nan, need=None, missing="population_access.pop_60plus")
            continue
        total = float(part["p"].sum())
        if total <= 0:
            ctx.add(uid, name, np.nan, need=None,
                    missing="population_access.pop_60plus (no older residents in this unit)")
            continue
        cov = float(part.loc[part["in"], "p"].sum())
        ctx.add(uid, name, cov / total, need=lambda v, t=total, c=cov: thr * t - c, text="older",
                m=m_txt)
