"""The whole area from its parts: merged layers and tables, the summary, map, report, batch.json.

Merged tables are the parts' CSV files joined as text, with a ``part``
column first, in the order of the parts in the boundary layer and each
part's own row order, so they are byte-identical however many workers ran
and in whatever order the parts finished.  Two tables are recomputed for
the whole area instead: ``coverage`` (from the merged ``population_access``,
so its overall row is the whole area's) and, when splitting by townships,
the district-scope rows of ``norm_checks`` (a township part sees only its
share of a district).  Layers that only give a part its surroundings
(road edges, water, parks, residential land, gates, the ``*_nearby`` layers)
are not merged: parts overlap there.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from planner.batch.parts import Part
from planner.batch.worker import PartOutcome

__all__ = ["CONTEXT_LAYERS", "district_norms", "merge_layers", "merge_tables", "province_summary",
           "read_csv_text", "typed", "whole_coverage", "write_csv", "write_json",
           "write_whole_area"]

#: Layers of a part that are its surroundings, not its own rows: not merged.
CONTEXT_LAYERS = frozenset({"network_edges", "water", "parks", "residential", "gates",
                            "facilities_nearby", "population_nearby"})
#: Preferred order of merged layers (others follow alphabetically).
_LAYER_ORDER = ("population", "facilities", "townships", "districts", "candidates",
                "population_access", "blind_spots", "service_areas", "township_norms",
                "proposed_sites")


def read_csv_text(path: Path) -> pd.DataFrame:
    """A CSV written by a run, every cell as the exact text written."""
    return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[],
                       encoding="utf-8-sig")


def write_csv(df: pd.DataFrame, path: Path) -> None:
    """Write a table as runs do (UTF-8 with BOM, for Excel), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{path.name}")
    df.to_csv(tmp, index=False, encoding="utf-8-sig")
    tmp.replace(path)


def _ok(parts: list[tuple[Part, PartOutcome]]) -> list[tuple[Part, PartOutcome]]:
    return [(p, o) for p, o in parts if o.status in ("done", "reused")]


def merge_tables(root: Path, parts: list[tuple[Part, PartOutcome]]) -> dict[str, pd.DataFrame]:
    """Every table of the parts, as text, with a ``part`` column (parts in order)."""
    names: list[str] = []
    for p, _ in _ok(parts):
        folder = root / "parts" / p.folder / "tables"
        if folder.is_dir():
            names += [f.stem for f in sorted(folder.glob("*.csv")) if f.stem not in names]
    out = {}
    for name in sorted(names):
        frames = []
        for p, _ in _ok(parts):
            f = root / "parts" / p.folder / "tables" / f"{name}.csv"
            if f.is_file():
                df = read_csv_text(f)
                df.insert(0, "part", p.id)
                frames.append(df)
        out[name] = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return out


def merge_layers(root: Path, parts: list[tuple[Part, PartOutcome]]) -> dict[str, Any]:
    """Every own layer of the parts (not `CONTEXT_LAYERS`) with a ``part`` column."""
    import geopandas as gpd
    import pyogrio

    per_part: dict[str, list] = {}
    for p, _ in _ok(parts):
        gpkg = root / "parts" / p.folder / "layers.gpkg"
        if not gpkg.is_file():
            continue
        for name, _geom in pyogrio.list_layers(gpkg):
            if name in CONTEXT_LAYERS or _geom is None:  # e.g. QGIS's layer_styles table
                continue
            gdf = gpd.read_file(gpkg, layer=name, engine="pyogrio")
            gdf.insert(0, "part", p.id)
            per_part.setdefault(name, []).append(gdf)
    order = [n for n in _LAYER_ORDER if n in per_part] + sorted(
        n for n in per_part if n not in _LAYER_ORDER)
    out = {}
    for name in order:
        frames = [f for f in per_part[name] if len(f)] or per_part[name][:1]
        crs = frames[0].crs
        gdf = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=crs)
        if name in ("districts", "townships") and "id" in gdf.columns:
            # township parts each carry the district they lie in: keep it once
            gdf = gdf[~gdf["id"].astype(str).duplicated()].reset_index(drop=True)
        out[name] = gdf
    return out


def _area_parts(tables: dict[str, pd.DataFrame]) -> dict[tuple[str, str], str]:
    """(scope, area) -> part, from the parts' own coverage tables."""
    cov = tables.get("coverage")
    if cov is None or not len(cov) or "scope" not in cov:
        return {}
    rows = cov[cov["scope"].isin(["district", "township"])]
    return {(s, a): p for s, a, p in zip(rows["scope"], rows["area"], rows["part"], strict=True)}


def whole_coverage(layers: dict[str, Any], part_tables: dict[str, pd.DataFrame], *,
                   thresholds_min: list[float], lang: str) -> pd.DataFrame | None:
    """The coverage table of the whole area (from the merged walking times), with ``part``."""
    from planner.access import coverage_table

    pa = layers.get("population_access")
    if pa is None or not len(pa):
        return None
    table = coverage_table(pa.drop(columns=["part"]), thresholds_min=thresholds_min, lang=lang)
    owner = _area_parts(part_tables)
    part = [owner.get((s, str(a)), "") if s != "overall" else ""
            for s, a in zip(table["scope"], table["area"], strict=True)]
    table.insert(0, "part", part)
    return table


def district_norms(scenario: Any, layers: dict[str, Any], *, lang: str) -> pd.DataFrame | None:
    """District-scope norm checks over the merged layers (for parts that are townships)."""
    from dataclasses import replace

    from planner import norms as NR

    s = scenario.norms
    if s is None:
        return None
    name = s.rules
    rules = NR.load_rules(scenario.resolve(Path(name)) if NR.is_rule_file(name) else name,
                          plan_year=s.plan_year)
    rules = replace(rules, rules=[r for r in rules if r.scope == "district"])
    if not len(rules):
        return None

    def plain(key: str):
        g = layers.get(key)
        return None if g is None else g.drop(columns=["part"])

    table, _ = NR.check_study(
        rules, population=plain("population"), facilities=plain("facilities"),
        townships=plain("townships"), districts=plain("districts"),
        access=plain("population_access"), lang=lang)
    return table


def province_summary(layers: dict[str, Any], tables: dict[str, pd.DataFrame],
                     parts: list[tuple[Part, PartOutcome]], *,
                     thresholds_min: list[float], lang: str) -> pd.DataFrame:
    """One row per part (and one for the whole area): residents 60+, coverage, failures, sites.

    Columns: ``part``, ``name``, ``status``, ``population``, ``pop_60plus``,
    ``pop_60plus_within_<T>min`` and ``..._share`` per threshold,
    ``norm_failures`` (rows of ``norm_checks`` with status ``fail``),
    and ``proposed_sites`` (no timings: the table is the same on every rerun;
    those are in ``batch.json``).
    """
    pa = layers.get("population_access")
    rows = []
    for p, o in parts:
        rows.append({"part": p.id, "name": p.name,
                     "status": "failed" if o.status == "failed" else "done"})
    df = pd.DataFrame(rows)
    ids = df["part"]

    def by_part(frame: pd.DataFrame | None, col: str) -> pd.Series:
        if frame is None or not len(frame) or col not in frame:
            return pd.Series(0.0, index=ids)
        vals = pd.to_numeric(frame[col], errors="coerce").fillna(0.0)
        return vals.groupby(frame["part"].astype(str)).sum().reindex(ids).fillna(0.0)

    for col in ("population", "pop_60plus"):
        df[col] = by_part(pa, col).to_numpy()
    if pa is not None and len(pa) and "pop_60plus" in pa and "time_min_any" in pa:
        t = pd.to_numeric(pa["time_min_any"], errors="coerce").to_numpy()
        for thr in sorted(thresholds_min):
            sub = pa.assign(_w=np.where(t <= thr, pd.to_numeric(pa["pop_60plus"],
                                                                  errors="coerce"), 0.0))
            within = by_part(sub, "_w").to_numpy()
            df[f"pop_60plus_within_{thr:g}min"] = within
            with np.errstate(invalid="ignore", divide="ignore"):
                df[f"pop_60plus_within_{thr:g}min_share"] = np.where(
                    df["pop_60plus"] > 0, within / df["pop_60plus"], np.nan)
    norms = tables.get("norm_checks")
    if norms is not None and len(norms) and "status" in norms:
        fails = norms[norms["status"] == "fail"].groupby("part").size()
        df["norm_failures"] = fails.reindex(ids).fillna(0).astype(int).to_numpy()
    sites = tables.get("proposed_sites")
    if sites is not None and len(sites):
        df["proposed_sites"] = sites.groupby("part").size().reindex(ids).fillna(0) \
            .astype(int).to_numpy()
    else:
        df["proposed_sites"] = 0
    total = {"part": "", "name": "全部" if lang == "zh" else "All",
             "status": "failed" if (df["status"] == "failed").any() else "done"}
    for c in df.columns:
        if c in ("population", "pop_60plus", "norm_failures", "proposed_sites") \
                or (c.startswith("pop_60plus_within_") and not c.endswith("_share")):
            total[c] = df[c].sum()
    for thr in sorted(thresholds_min):
        c = f"pop_60plus_within_{thr:g}min"
        if c in df:
            total[f"{c}_share"] = (total[c] / total["pop_60plus"]
                                   if total["pop_60plus"] > 0 else np.nan)
    return pd.concat([df, pd.DataFrame([total])], ignore_index=True)[df.columns]


def write_whole_area(root: Path, scenario: Any, layers: dict[str, Any],
                     tables: dict[str, pd.DataFrame], parts: list[tuple[Part, PartOutcome]], *,
                     inputs: dict[str, Any], crs: Any, make_map: bool = True,
                     make_report: bool = True) -> list[Path]:
    """Write ``layers.gpkg``, the report, map and workbook of the whole area into ``root``."""
    from planner.pipeline import RunResult, StepRecord, presenting
    from planner.pipeline import outputs as O

    outs = scenario.outputs.model_copy(update={
        "map": scenario.outputs.map and make_map,
        "report": scenario.outputs.report and make_report,
        "excel": scenario.outputs.excel and make_report,
        "print_maps": scenario.outputs.print_maps and make_report})
    whole = scenario.model_copy(update={"outputs": outs, "output": None})
    result = RunResult(scenario=whole, layers=dict(layers), crs=crs, out_dir=root,
                       inputs=inputs)
    result.tables = {k: typed(v) for k, v in tables.items()}
    seen: set[str] = set()
    for _, o in parts:
        for w in o.warnings:
            text = f"{o.name}: {w}"
            if text not in seen:
                seen.add(text)
                result.warnings.append(text)
    result.steps = [StepRecord(f"{p.name} ({p.id})", o.status, o.seconds, o.error or "")
                    for p, o in parts]
    if layers:
        def write_gpkg(tmp: Path) -> None:
            for name, gdf in layers.items():
                O.plain_columns(gdf).to_file(tmp, layer=name, driver="GPKG", engine="pyogrio")

        result.write("layers.gpkg", write_gpkg)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if outs.map and layers:
            presenting.write_map(result)
        if outs.report or outs.excel or outs.print_maps:
            presenting.write_report(result)
    return list(result.files)


def typed(df: pd.DataFrame) -> pd.DataFrame:
    """Text columns that hold numbers back as numbers (tables merged as text); ids stay text."""
    out = df.copy()
    for c in out.columns:
        name = str(c)
        if out[c].dtype != object or name in ("part", "id", "area", "name", "unit_name") \
                or name.endswith("_id"):
            continue
        col = out[c].replace("", np.nan)
        num = pd.to_numeric(col, errors="coerce")
        if num.notna().sum() == col.notna().sum():
            out[c] = num
        elif set(col.dropna().unique()) <= {"True", "False"}:
            out[c] = col.map({"True": True, "False": False})
    return out


def write_json(path: Path, info: dict[str, Any]) -> None:
    tmp = path.with_name(f".tmp-{path.name}")
    tmp.write_text(json.dumps(info, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    tmp.replace(path)

