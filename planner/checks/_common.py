"""Helpers shared by the checks: message language, row labels, place-name keys."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import shapely

from planner._errors import PlannerWarning

__all__ = ["DEFAULT_LANG", "SHOW", "both", "flag_excluded", "join", "label", "labels", "name_key",
           "pick", "polygon_lookup", "warn"]

DEFAULT_LANG = "zh"
#: Rows named in one warning before "… and N more".
SHOW = 12

# What a place name may end with in one file and not in another (东城街道 / 东城街道办事处 / 东城).
_SUFFIXES = re.compile(r"(街道办事处|地区办事处|办事处|街道办|街道|镇|乡|苏木)$")


def pick(lang: str, texts: dict[str, str], **values: Any) -> str:
    """``texts[lang]`` (Chinese when ``lang`` is not ``"en"``) formatted with ``values``."""
    return texts["en" if lang == "en" else "zh"].format(**values)


def join(items: Sequence[str], lang: str, *, limit: int = SHOW) -> str:
    """Items joined in the language's way, at most ``limit`` of them, then "… and N more"."""
    shown = list(items[:limit])
    more = len(items) - len(shown)
    text = ("、" if lang != "en" else ", ").join(shown)
    if more > 0:
        text += f" 等，另有 {more} 项" if lang != "en" else f" … and {more} more"
    return text


def label(gdf: pd.DataFrame, pos: int) -> str:
    """``F05 兴隆社区养老服务站``: the row's id and name (row number where it has neither)."""
    parts = []
    for col in ("id", "name"):
        if col in gdf.columns:
            value = gdf[col].iloc[pos]
            if pd.notna(value) and str(value).strip():
                parts.append(str(value).strip())
    return " ".join(dict.fromkeys(parts)) or f"row {pos + 1}"


def labels(gdf: pd.DataFrame, positions: Sequence[int] | np.ndarray) -> list[str]:
    """`label` of each position."""
    return [label(gdf, int(p)) for p in positions]


def name_key(value: Any) -> str | None:
    """A township/community name as compared across files (spaces and 街道/镇/乡 suffix off)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    text = re.sub(r"\s+", "", str(value))
    if not text or text.lower() in ("nan", "none"):
        return None
    short = _SUFFIXES.sub("", text)
    return short or text


def polygon_lookup(polygons: Any, columns: Sequence[str] = ("name",)
                   ) -> dict[str, shapely.Geometry]:
    """Name key -> polygon (parts of one name unioned) from ``columns`` of a polygon layer."""
    geoms = np.asarray(polygons.geometry.values, dtype=object)
    keep = np.isin(shapely.get_type_id(geoms), (3, 6))
    out: dict[str, list] = {}
    for col in columns:
        if col not in polygons.columns:
            continue
        for value, geom, ok in zip(polygons[col].to_numpy(), geoms, keep, strict=True):
            key = name_key(value)
            if ok and key is not None:
                out.setdefault(key, []).append(geom)
    return {k: (v[0] if len(v) == 1 else shapely.union_all(v)) for k, v in out.items()}


def flag_excluded(gdf: pd.DataFrame, mask: np.ndarray, reason: str) -> None:
    """Add ``reason`` to the ``excluded`` column of the rows in ``mask`` (in place)."""
    if "excluded" not in gdf.columns:
        gdf["excluded"] = ""
    old = gdf["excluded"].fillna("").astype(str).to_numpy()
    new = np.array([
        (o if reason in o.split(";") else (f"{o};{reason}" if o else reason)) if m else o
        for o, m in zip(old, np.asarray(mask, bool), strict=True)], dtype=object)
    gdf["excluded"] = new


def both(make: Callable[[str], str]) -> tuple[str, str]:
    """``(make("en"), make("zh"))``: a text in both languages, for `warn`."""
    return make("en"), make("zh")


def warn(en: str, zh: str) -> None:
    """Issue a `PlannerWarning` (English and Chinese text) pointing at the caller of the check."""
    warnings.warn(PlannerWarning(en, zh), stacklevel=3)
