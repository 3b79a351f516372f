"""The maps and report steps' glue: a run's `Study`, its `ReportMeta`, and the files written.

`study_of` turns a `RunResult` into the `planner.study.Study` that
`planner.maps`, `planner.plots` and `planner.report` draw from (the
settings they need become plain values); `write_map` and `write_report`
write ``map.html``, ``print_maps/*``, ``planner.xlsx``, ``report.html``
and ``report.docx``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from planner import maps as M
from planner import plots as P
from planner import report as R
from planner.network import PROFILES
from planner.pipeline.outputs import package_versions
from planner.pipeline.result import RunResult
from planner.pipeline.texts import step_rows
from planner.progress import bar
from planner.study import MapStyle, ReportMeta, Study

__all__ = ["html_report", "local_base_map", "report_meta", "study_of", "write_map",
           "write_print_maps", "write_report"]


def _uses_osm(result: RunResult) -> bool:
    sc = result.scenario
    net = sc.network
    return bool(sc.osm_data) or (net is not None and str(net.source).startswith(("osm", "osmnx")))


def _time_min_after(result: RunResult) -> np.ndarray | None:
    plan = result.artifacts.get("site_plan")
    pa = result.layers.get("population_access")
    if plan is None or plan.time_min_after is None or pa is None:
        return None
    return plan.time_min_after if len(plan.time_min_after) == len(pa) else None


def study_of(result: RunResult) -> Study:
    """The run's layers and tables with the settings maps and reports need, as plain values."""
    sc = result.scenario
    out = sc.outputs
    return Study(
        layers=result.layers, tables=result.tables, name=sc.name, lang=sc.lang, crs=result.crs,
        circle_min=sc.access.circle_min if sc.access is not None else Study.circle_min,
        osm_data=_uses_osm(result), time_min_after=_time_min_after(result),
        map_style=result.artifacts.get("map_style") or MapStyle(
            tiles=out.tiles, tiles_coord_system=out.tiles_coord_system,
            tiles_attribution=out.tiles_attribution, tiles_key=out.tiles_key,
            simplify_m=out.map_simplify_m),
        coordinates=out.coordinates, mapping_unit=out.mapping_unit or "",
        data_sources=_data_sources(result),
    )


def _data_sources(result: RunResult) -> list[str]:
    """The input files' names (each once, scenario file aside) and the OSM credit."""
    names = []
    for key, rec in result.inputs.items():
        path = rec.get("path") if isinstance(rec, dict) else None
        if key != "scenario" and path:
            names.append(Path(path).name)
    out = list(dict.fromkeys(names))
    if _uses_osm(result):
        out.append("© OpenStreetMap contributors (ODbL)")
    return out


def _speed(result: RunResult) -> float | None:
    net = result.artifacts.get("network")
    speed = getattr(net, "speed_mps", None)
    sc = result.scenario
    if speed is None and sc.network is not None:
        speed = sc.network.speed_mps
        if speed is None:
            speed = PROFILES.get(sc.network.profile, {}).get("speed_mps")
    return speed


def report_meta(result: RunResult, *, lang: str | None = None) -> ReportMeta:
    """Assumptions, inputs, versions, steps and warnings of a run, for the report."""
    sc = result.scenario
    lang = lang or result.lang
    assumptions = R.assumption_rows(
        lang=lang, speed_mps=_speed(result),
        profile=sc.network.profile if sc.network is not None else None,
        thresholds_min=sc.access.thresholds_min if sc.access is not None else None,
        circle_min=sc.access.circle_min if sc.access is not None else None,
        demand_columns=result.tables.get("demand_columns"),
        rules=sc.norms.rules if sc.norms is not None else None,
        plan_year=sc.norms.plan_year if sc.norms is not None else None,
        tiles=sc.outputs.tiles, coordinates=sc.outputs.coordinates)
    return ReportMeta(
        assumptions=assumptions, inputs=R.input_rows(result.inputs),
        versions=package_versions(), steps=step_rows(result.steps, lang),
        warnings=list(result.warnings))


def _local_tiles(result: RunResult) -> Path | None:
    """The scenario's ``tiles`` when it names a local tile folder or .mbtiles file."""
    tiles = result.scenario.outputs.tiles
    if not tiles or "{" in tiles or "://" in tiles or tiles.lower() in M.TILE_PRESETS:
        return None
    path = result.scenario.resolve(tiles)
    if path is not None and (path.is_dir() or path.suffix.lower() == ".mbtiles"):
        return path
    return None


def local_base_map(result: RunResult) -> MapStyle | None:
    """Copy a local tile source's tiles over the study into ``tiles/`` beside ``map.html``.

    Stores (and returns) the map style that points at them, relative to the
    output folder, so ``map.html`` and ``report.html`` load them from
    ``file://`` with no server.  Without an output folder a tile folder is
    linked where it lies; an MBTiles file then gives no base map (a warning).
    """
    source = _local_tiles(result)
    if source is None:
        return None
    out = result.scenario.outputs
    datum = out.tiles_coord_system or "wgs84"
    if result.out_dir is None:
        if not source.is_dir():
            result.warn(f"outputs.tiles {source.name}: an MBTiles file is unpacked into the "
                        "output folder; this run has none, so the map has no base tiles.",
                        f"outputs.tiles {source.name}：MBTiles 文件需解压到输出文件夹，本次运行"
                        "没有输出文件夹，因此地图没有底图瓦片。")
            style = MapStyle(simplify_m=out.map_simplify_m)
        else:
            ext = next((e for e in ("png", "jpg", "jpeg", "webp")
                        if any(source.glob(f"*/*/*.{e}"))), "png")
            style = MapStyle(tiles=source.as_uri() + f"/{{z}}/{{x}}/{{y}}.{ext}",
                             tiles_coord_system=datum, tiles_attribution=out.tiles_attribution,
                             simplify_m=out.map_simplify_m)
    else:
        dest = result.out_dir / "tiles"
        info = M.export_tiles(source, dest, bounds=M.total_bounds(result.layers),
                              coord_system=datum)
        result.files.extend(sorted(p for p in dest.rglob("*") if p.is_file()))
        style = MapStyle(tiles=info["template"], tiles_coord_system=datum,
                         tiles_attribution=out.tiles_attribution or f"Tiles: {source.name}",
                         tiles_max_zoom=info["max_zoom"], simplify_m=out.map_simplify_m)
    result.artifacts["map_style"] = style
    return style


def write_map(result: RunResult) -> str | None:
    """Build the web map into ``result.artifacts["map"]`` and write ``map.html``."""
    if not result.scenario.outputs.map:
        return "outputs.map is false"
    if not result.layers:
        return "no layers to draw"
    local_base_map(result)
    m = M.web_map(study_of(result))
    result.artifacts["map"] = m
    page = M.to_html(m)
    result.artifacts["map_html"] = page
    result.write("map.html", lambda tmp: tmp.write_text(page, encoding="utf-8"))
    return None


def write_print_maps(result: RunResult, *, study: Study | None = None) -> dict[str, Path]:
    """Write every print map as PNG (300 dpi) and SVG; title -> PNG path."""
    out: dict[str, Path] = {}
    for name, (title, fig) in P.print_maps(study or study_of(result)).items():
        png = result.write(f"print_maps/{name}.png", lambda tmp, f=fig: P.save_figure(f, tmp))
        result.write(f"print_maps/{name}.svg", lambda tmp, f=fig: P.save_figure(f, tmp))
        if png is not None:
            out[title] = png
    return out


def html_report(result: RunResult, *, print_maps: dict[str, Path] | None = None,
                include_map: bool = True, static_map: bytes | None = None) -> str:
    """The run's ``report.html`` page (`planner.report.html_report` with the run's meta).

    Without print maps, the page's print version shows ``static_map`` (the
    coverage map drawn here when not given) in place of the interactive map.
    """
    return _html_page(result, study_of(result), report_meta(result), print_maps=print_maps,
                      include_map=include_map, static_map=static_map)


def _html_page(result: RunResult, study: Study, meta: ReportMeta, *,
               print_maps: dict[str, Path] | None, include_map: bool,
               static_map: bytes | None) -> str:
    page_map = None
    if include_map and result.layers:
        page_map = result.artifacts.get("map_html") or M.to_html(M.web_map(study))
    if not print_maps and static_map is None:
        static_map = R.coverage_figure_png(study, dpi=150)
    return R.html_report(study, meta=meta, print_maps=print_maps, map_html=page_map,
                         static_map=static_map)


def write_report(result: RunResult) -> str | None:
    """Write print maps, ``planner.xlsx``, ``report.html`` and ``report.docx`` (when on)."""
    if result.out_dir is None:
        return "no output folder (pass out_dir= or set `output:` in the scenario)"
    opts = result.scenario.outputs
    if not (opts.report or opts.excel or opts.print_maps or opts.docx):
        return "outputs.report, outputs.excel, outputs.docx and outputs.print_maps are all false"
    study = study_of(result)
    n = sum([opts.print_maps, opts.excel, opts.report, opts.docx])
    with bar(n, progress=result.bar_label("report"), label="report", unit="file") as shown:
        pngs = write_print_maps(result, study=study) if opts.print_maps else {}
        shown.update(opts.print_maps)
        meta = report_meta(result)  # after the print maps: their warnings are listed too
        if opts.excel:
            result.write("planner.xlsx", lambda tmp: R.excel_report(study, tmp, meta=meta))
            shown.update()
        # without print maps, the coverage map is drawn once, at print resolution, for both
        figure = None
        if not pngs and (opts.docx or opts.report):
            figure = R.coverage_figure_png(study, dpi=300 if opts.docx else 150)
        if opts.report:
            page = _html_page(result, study, meta, print_maps=pngs, include_map=opts.map,
                              static_map=figure)
            result.write("report.html", lambda tmp: tmp.write_text(page, encoding="utf-8"))
            shown.update()
        if opts.docx:
            figures = dict(pngs) if pngs else (
                {R.TEXT[study.lang]["map"]: figure} if figure is not None else {})
            result.write("report.docx",
                         lambda tmp: R.word_report(study, tmp, meta=meta, figures=figures))
            shown.update()
    return None
