"""The output folder of a run: checking it, hashing inputs, writing layers, tables and run.json.

The output folder may not hold any input, must be empty unless
``overwrite``, and receives every file atomically (`RunResult.write`);
``run.json`` records the SHA-256 of every input, the settings, package
versions, step timings and warnings, also when a step fails.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from planner._errors import OutputError
from planner.pipeline.result import RunResult
from planner.pipeline.scenario import input_paths
from planner.pipeline.settings import Scenario

__all__ = ["hash_inputs", "package_versions", "plain_columns", "prepare_out_dir", "sha256_of",
           "write_layers_and_tables", "write_run_json"]


# --------------------------------------------------------------------------- output folder
def _input_files(scenario: Scenario) -> list[Path]:
    files = [scenario.resolve(p) for _, p in input_paths(scenario)]
    return [f for f in files if f is not None]


def prepare_out_dir(scenario: Scenario, out_dir: str | os.PathLike | None, *,
                    overwrite: bool = False) -> Path | None:
    """Check and create the output folder of a run.

    Rules: never write where an input file lies (the output folder may not
    contain any input file of the scenario, nor be a file); refuse a
    non-empty folder unless ``overwrite``; with ``overwrite``, files that a
    previous run listed in its ``run.json`` are removed first so that no
    stale output is mixed with the new ones.

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
        When the folder holds inputs, is a file, or is not empty.
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
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise OutputError(
                f"Output folder {out} is not empty. Pass --overwrite (overwrite=True) to "
                "replace its files, or choose another folder with -o/--out."
            )
        _remove_previous_outputs(out)
    out.mkdir(parents=True, exist_ok=True)
    return out


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
    for loc, p in pairs:
        resolved = scenario.resolve(p) if loc != ("scenario",) else Path(p).resolve()
        if resolved is None:
            continue
        key = ".".join(map(str, loc))
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
    if opts.gpkg:
        layers = {k: v for k, v in result.layers.items()
                  if v is not None and len(v) and hasattr(v, "geometry")}
        if layers:
            def write_gpkg(tmp: Path) -> None:
                for name, gdf in layers.items():
                    plain_columns(gdf).to_file(tmp, layer=name, driver="GPKG",
                                                engine="pyogrio")

            result.write("layers.gpkg", write_gpkg)
            written += 1
    if opts.csv:
        for name, df in result.tables.items():
            if df is None or not hasattr(df, "to_csv"):
                continue
            result.write(f"tables/{name}.csv",
                         lambda tmp, df=df: plain_columns(df).to_csv(
                             tmp, index=False, encoding="utf-8-sig"))
            written += 1
    if not written:
        return "nothing to write (no layers or tables, or gpkg/csv switched off)"
    return None


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


def package_versions() -> dict[str, str]:
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
        "settings": json.loads(result.scenario.model_dump_json()),
        "versions": package_versions(),
        "steps": [s.__dict__ for s in result.steps],
        "warnings": result.warnings,
        "files": sorted(str(p.relative_to(result.out_dir)) for p in result.files)
        + ["run.json"],
    }
    if result.preloaded is not None and result.preloaded.record:
        info.update({k: v for k, v in result.preloaded.record.items() if k not in info})
    text = json.dumps(info, ensure_ascii=False, indent=2, default=str)
    result.write("run.json", lambda tmp: tmp.write_text(text, encoding="utf-8"))


