"""The output folder of a run: checking it, hashing inputs, writing layers, tables and run.json.

The output folder may not hold any input, must be empty unless
``overwrite``, and receives every file atomically (`RunResult.write`);
``run.json`` records the SHA-256 of every input, the settings, package
versions, step timings and warnings, also when a step fails.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import json
import os
import platform
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from planner import gis
from planner._errors import OutputError
from planner.pipeline.result import TEMP_NAME, RunResult
from planner.pipeline.scenario import input_paths
from planner.pipeline.settings import Scenario

__all__ = ["csv_safe", "hash_inputs", "package_versions", "plain_columns", "prepare_out_dir",
           "remove_temporary_files", "sha256_of", "write_layers_and_tables", "write_run_json"]


# --------------------------------------------------------------------------- output folder
def _input_files(scenario: Scenario) -> list[Path]:
    files = [scenario.resolve(p) for _, p in input_paths(scenario)]
    return [f for f in files if isinstance(f, Path)]  # not None, not a database URL


def prepare_out_dir(scenario: Scenario, out_dir: str | os.PathLike | None, *,
                    overwrite: bool = False) -> Path | None:
    """Check and create the output folder of a run.

    Rules: never write where an input file lies (the output folder may not
    contain any input file of the scenario, nor be a file); remove the
    temporary files a killed run left (`remove_temporary_files`); refuse a
    non-empty folder unless ``overwrite``; the folder must be writable
    (created, and a probe file written and deleted in it, here, before any
    analysis step); with ``overwrite``, files that a previous run listed in
    its ``run.json`` are removed first so that no stale output is mixed
    with the new ones.

    Parameters
    ----------
    scenario
        The validated scenario (its input files are protected).
    out_dir
        The folder; ``None`` uses the scenario's ``output:`` (relative to the
        scenario file), and ``None`` there too means no output folder.
    overwrite
        Allow a non-empty folder.

    Returns
    -------
    Path or None
        The absolute output folder, created, or ``None``.

    Raises
    ------
    OutputError
        When the folder holds inputs, is a file, lies under a file, is not
        empty, or cannot be written (permissions, a read-only file system).
    """
    if out_dir is None:
        out_dir = scenario.resolve(scenario.output) if scenario.output else None
    if out_dir is None:
        return None
    out = Path(out_dir).expanduser().resolve()
    inside = list(dict.fromkeys(f for f in _input_files(scenario)
                                if out == f or out in f.parents))  # each file once
    if inside:
        shown = ", ".join(str(f) for f in inside[:3]) + (" ..." if len(inside) > 3 else "")
        raise OutputError(
            f"Output folder {out} holds input files of the scenario ({shown}); refusing to "
            "write there. Choose another folder with -o/--out (or `output:` in the scenario)."
        )
    if out.exists() and not out.is_dir():
        raise OutputError(f"Output path {out} exists and is not a folder. Choose a folder "
                          "with -o/--out.")
    try:
        if out.is_dir():
            remove_temporary_files(out)
        filled = out.is_dir() and any(out.iterdir())
    except OSError as exc:
        raise _unwritable(out, exc) from None
    if filled and not overwrite:
        raise OutputError(
            f"Output folder {out} is not empty. Pass --overwrite (overwrite=True) to "
            "replace its files, or choose another folder with -o/--out."
        )
    _check_writable(out)
    if filled:
        _remove_previous_outputs(out)
    return out


def _check_writable(out: Path) -> None:
    """Create ``out`` and write and delete a probe file in it, before any analysis step,
    so that a folder the run cannot write fails now and not after every step."""
    above = next((p for p in out.parents if p.exists()), None)
    if above is not None and not above.is_dir():
        raise OutputError(
            f"Output folder {out} cannot be created: {above} is a file, not a folder. "
            "Choose another folder with -o/--out (or `output:` in the scenario)."
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".planner-probe-", dir=out)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise _unwritable(out, exc) from None


def _unwritable(out: Path, exc: OSError) -> OutputError:
    why = {errno.EROFS: "it is on a read-only file system",
           errno.EACCES: "permission denied", errno.EPERM: "permission denied",
           errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is used up",
           }.get(exc.errno or 0, exc.strerror or type(exc).__name__)
    return OutputError(
        f"Output folder {out} cannot be written: {why}. Nothing was run. Choose a folder "
        "you can write to with -o/--out (or `output:` in the scenario)."
    )
def remove_temporary_files(out: Path) -> list[Path]:
    """Delete the temporary files a killed run left in ``out`` (`TEMP_NAME`), and nothing else.

    `RunResult.write` removes its temporary file itself unless the process
    dies (SIGKILL, a power cut); the next run into the folder cleans up.
    Returns the files removed.
    """
    gone = []
    for f in sorted(out.rglob(".tmp-*")):
        if f.is_file() and TEMP_NAME.fullmatch(f.name):
            f.unlink()
            gone.append(f)
    return gone


def _remove_previous_outputs(out: Path) -> None:
    """Delete the files a previous run wrote (listed in its run.json), and nothing else."""
    info_path = out / "run.json"
    if not info_path.is_file():
        return
    try:
        files = json.loads(info_path.read_text(encoding="utf-8")).get("files", [])
    except (ValueError, OSError):
        return
    for rel in files:
        f = (out / str(rel)).resolve()
        if out in f.parents and f.is_file():
            f.unlink()
    info_path.unlink(missing_ok=True)


def sha256_of(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes (read in 1 MiB chunks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def hash_inputs(scenario: Scenario, scenario_file: Path | None) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    cache: dict[Path, str] = {}
    pairs = list(input_paths(scenario))
    if scenario_file is not None:
        pairs.insert(0, (("scenario",), scenario_file))
    from planner.postgis import is_database_url, redact

    for loc, p in pairs:
        key = ".".join(map(str, loc))
        if is_database_url(p):  # a database: where and what was read (no password)
            lay = getattr(scenario.layers, loc[1], None) if loc[0] == "layers" else None
            out[key] = {"database": redact(str(p)), "layer": getattr(lay, "layer", None),
                        "sql": getattr(lay, "sql", None)}
            continue
        resolved = scenario.resolve(p) if loc != ("scenario",) else Path(p).resolve()
        if resolved is None:
            continue
        if resolved.is_file():
            if resolved not in cache:
                cache[resolved] = sha256_of(resolved)
            out[key] = {"path": str(resolved), "sha256": cache[resolved],
                        "bytes": resolved.stat().st_size}
        elif resolved.is_dir():  # e.g. a Shapefile folder: hash every file in it
            files = sorted(f for f in resolved.rglob("*") if f.is_file())
            out[key] = {"path": str(resolved),
                        "files": {str(f.relative_to(resolved)): sha256_of(f) for f in files}}
    return out


# --------------------------------------------------------------------------- the outputs step
def write_layers_and_tables(result: RunResult) -> str | None:
    """The outputs step: write every layer (GeoPackage) and table (CSV) of the run.

    ``layers.gpkg`` gets one layer per GeoDataFrame of ``result.layers``
    (in the study's metric CRS); ``tables/<name>.csv`` one UTF-8 CSV with a
    byte-order mark (so Excel shows Chinese text) per table.  Every file is
    written atomically.  Returns why it skipped when the run has no output
    folder.
    """
    if result.out_dir is None:
        return "no output folder (pass out_dir= or set `output:` in the scenario)"
    opts = result.scenario.outputs
    written = 0
    layers = _output_layers(result)
    if opts.gpkg and layers:
        circle = result.scenario.access.circle_min if result.scenario.access else 15.0

        def write_gpkg(tmp: Path) -> None:
            for name, gdf in layers.items():
                plain_columns(gdf).to_file(tmp, layer=name, driver="GPKG", engine="pyogrio")
            if opts.gpkg_styles:
                gis.add_layer_styles(tmp, {name: gis.qgis_style(name, gdf, lang=result.lang,
                                                                circle_min=circle)
                                           for name, gdf in layers.items()})

        result.write("layers.gpkg", write_gpkg)
        written += 1
    if opts.postgis:
        written += _write_postgis(result, layers)
    if opts.shapefile and layers:
        for name, gdf in layers.items():
            files = gis.write_shapefile(gdf, result.out_dir / "shapefile", name,
                                        encoding=opts.shapefile_encoding, lang=result.lang)
            result.files.extend(f for f in files if f not in result.files)
            written += 1
    if opts.csv:
        for name, df in result.tables.items():
            if df is None or not hasattr(df, "to_csv"):
                continue
            result.write(f"tables/{name}.csv",
                         lambda tmp, df=df: csv_safe(plain_columns(df)).to_csv(
                             tmp, index=False, encoding="utf-8-sig"))
            written += 1
    if not written:
        return "nothing to write (no layers or tables, or gpkg/csv switched off)"
    return None


def _write_postgis(result: RunResult, layers: dict) -> int:
    """Every layer and table into ``outputs.postgis``, schema ``outputs.postgis_schema``."""
    from planner.postgis import write_postgis

    opts = result.scenario.outputs
    n = 0
    for name, gdf in layers.items():
        write_postgis(gdf, opts.postgis, f"{opts.postgis_schema}.{name}")
        n += 1
    for name, df in result.tables.items():
        if df is not None and hasattr(df, "columns") and len(df.columns):
            write_postgis(plain_columns(df), opts.postgis, f"{opts.postgis_schema}.{name}")
            n += 1
    return n


def _output_layers(result: RunResult) -> dict:
    """The run's layers with rows, in the output CRS (``outputs.crs``; default the study's)."""
    layers = {k: v for k, v in result.layers.items()
              if v is not None and len(v) and hasattr(v, "geometry")}
    value = result.scenario.outputs.crs
    if not layers or value is None or str(value).lower() in ("utm", "study"):
        return layers
    lon = None
    if str(value).lower().startswith("cgcs2000_gk3"):
        first = next(iter(layers.values()))
        lon = float(np.mean(first.to_crs(4326).total_bounds[[0, 2]]))
    crs = gis.output_crs(value, lon=lon)
    return {k: v.to_crs(crs) for k, v in layers.items()}


def plain_columns(df):
    """A copy where list/dict cells become JSON text (GeoPackage and CSV hold scalars)."""
    obj = [c for c in df.columns if df[c].dtype == object and c != getattr(df, "_geometry_column_name", None)]
    bad = [c for c in obj if df[c].map(lambda v: isinstance(v, (list, dict, tuple, set))).any()]
    if not bad:
        return df
    df = df.copy()
    for c in bad:
        df[c] = df[c].map(lambda v: json.dumps(sorted(v) if isinstance(v, set) else v,
                                               ensure_ascii=False, default=str)
                          if isinstance(v, (list, dict, tuple, set)) else v)
    return df


#: First characters that make a spreadsheet read a cell as a formula (OWASP "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?%?")


def _neutralise(value: Any) -> Any:
    """A text cell that a spreadsheet would run as a formula, with a leading ``'``."""
    if isinstance(value, str) and value.startswith(_FORMULA_START) \
            and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def csv_safe(df):
    """A copy whose text cells cannot run as spreadsheet formulas (numbers are left alone).

    A text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
    return gets a leading single quote, the usual defence against CSV
    injection (Excel and LibreOffice show the text, run nothing); a text that
    is a plain number (``-5``, ``+3.2``) is no formula and stays as it is,
    and numeric columns are never touched.
    """
    import pandas as pd

    geom = getattr(df, "_geometry_column_name", None)
    text = [c for c in df.columns if c != geom and (df[c].dtype == object
                                                     or isinstance(df[c].dtype, pd.StringDtype))]
    bad = [c for c in text if df[c].map(lambda v: _neutralise(v) is not v).any()]
    if not bad:
        return df
    df = df.copy()
    for c in bad:
        df[c] = df[c].map(_neutralise)
    return df


@functools.cache
def _versions() -> tuple[tuple[str, str], ...]:
    return tuple(_package_versions().items())


def package_versions() -> dict[str, str]:
    """Python, platform and the versions of the main packages (looked up once per process)."""
    return dict(_versions())


def _package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version(), "platform": platform.platform()}
    for pkg in ("planner", "numpy", "scipy", "pandas", "geopandas", "shapely", "pyogrio",
                "pyproj", "osmnx", "networkx", "highspy", "folium", "openpyxl", "pydantic"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    try:
        import shapely

        out["geos"] = shapely.geos_version_string
    except (ImportError, AttributeError):
        pass
    return out


def _redacted(value: Any) -> Any:
    """Settings with every database URL's password hidden (run.json is shared)."""
    from planner.postgis import is_database_url, redact

    if isinstance(value, dict):
        return {k: _redacted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    return redact(value) if is_database_url(value) else value


def write_run_json(result: RunResult, *, started: str, seconds: float, status: str,
                    error: str | None = None) -> None:
    info = {
        "planner_run": 1,
        "scenario": result.scenario.name,
        "status": status,
        "error": error,
        "started": started,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seconds": round(seconds, 3),
        "inputs": result.inputs,
        "settings": _redacted(json.loads(result.scenario.model_dump_json())),
        "versions": package_versions(),
        "steps": [s.__dict__ for s in result.steps],
        "warnings": result.warnings,
        "files": sorted(str(p.relative_to(result.out_dir)) for p in result.files
                        if p != result.out_dir / "run.json") + ["run.json"],
    }
    if result.preloaded is not None and result.preloaded.record:
        info.update({k: v for k, v in result.preloaded.record.items() if k not in info})
    text = json.dumps(info, ensure_ascii=False, indent=2, default=str)
    result.write("run.json", lambda tmp: tmp.write_text(text, encoding="utf-8"))


