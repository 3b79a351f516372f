"""Reading and validating the input layers of a study area.

`read_layer` reads one file of any supported format into a GeoDataFrame
with canonical column names (`planner._schema`), WGS-84-corrected
coordinates and a metric CRS; the pipeline's layers step calls it for
every layer of a scenario.

Formats: GeoPackage, Shapefile (``.shp``, or zipped), GeoJSON, GeoParquet,
KML/KMZ (read by `planner._kml.read_kml`), and CSV/XLSX tables with
longitude/latitude columns (经度/纬度, lng/lat, lon/lat, x/y are found
automatically) or a WKT ``geometry`` column.

Layer kinds and the geometries they accept:

=============  ==========================================================
population     polygons (communities, compounds) or points
facilities     points (polygons become a representative point, warned)
boundaries     polygons (districts, townships/subdistricts)
candidates     points or polygons (candidate sites)
gates          points (compound gates / entrances)
points         points
residential    polygons (residential land use)
context        any geometry (water, parks)
lines          lines (road centre-lines)
=============  ==========================================================

Validation collects every problem of a layer and raises one `LayerError`
naming the file, column and rows (1-based data rows, with the feature's
name where it has one) and how to fix each.  Repairs are `PlannerWarning`s.
Choices made here:

* empty geometries are an error for population, facilities, boundaries,
  candidates and gates (a missing location is a data error the user must
  see), and dropped with a warning for residential, context and lines
  layers (an empty polygon carries no land and no road);
* invalid polygons are repaired with `shapely.make_valid` when the repair
  keeps a polygon (e.g. a bow-tie becomes two triangles), with a warning;
* a layer without an ``id`` column gets ``id`` = 1, 2, 3 … in file order;
* a table's coordinate columns (经度/纬度 …) are kept under their own names
  with the values of the file (its ``coord_system``); the geometry holds
  the converted location;
* counts that are all whole numbers stay integers, otherwise floats (NaN
  where a cell is empty);
* counts that cannot be true are errors naming the rows: more persons (or
  households, beds) than China's population in one row, a part larger than
  its whole (60+ > population, 80+ > 65+ > 60+, households > population,
  nursing beds > beds); a population polygon denser than
  `planner.defaults.MAX_DENSITY_PER_KM2` residents per km² is a warning.
"""

from __future__ import annotations

import codecs
import os
import re
import warnings
from pathlib import Path
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from planner import _validate as V
from planner import coords
from planner._errors import LayerError, PlannerWarning, collect, reworded
from planner._schema import NOT_FOR_LINES, SYNONYMS, UNIT_SUFFIXES
from planner._validate import normalize_tier
from planner._where import WhereError, where_mask
from planner.defaults import MAX_DENSITY_PER_KM2, REGION

__all__ = ["EXCEL_SUFFIXES", "KINDS", "LAYER_KINDS", "as_crs", "normalize_tier", "read_layer",
           "read_spreadsheet"]

Kind = Literal["population", "facilities", "boundaries", "candidates", "gates", "points",
               "residential", "context", "lines"]
#: The layer kinds `read_layer` understands.
KINDS: tuple[str, ...] = tuple(V.KIND_GEOMETRY)
#: Scenario layer name → kind, in loading order.
LAYER_KINDS: dict[str, str] = {
    "population": "population",
    "facilities": "facilities",
    "townships": "boundaries",
    "districts": "boundaries",
    "candidates": "candidates",
    "gates": "gates",
    "residential": "residential",
    "water": "context",
    "parks": "context",
    "facilities_nearby": "facilities",
    "population_nearby": "population",
}

_TABLE_SUFFIXES = {".csv", ".txt", ".tsv", ".xlsx", ".xlsm", ".xls"}
_PARQUET_SUFFIXES = {".parquet", ".geoparquet", ".pq"}
_KML_SUFFIXES = {".kml", ".kmz"}
# Mojibake: GBK/UTF-8 bytes decoded as Latin-1 give runs of these characters.
_MOJIBAKE = re.compile(r"[\u0080-\u00ff]{2,}|锟斤拷|\ufffd")
_CJK = re.compile(r"[\u4e00-\u9fff]")
_FALLBACK_ENCODINGS = ("utf-8", "gbk", "gb18030")


# =============================================================================== reading
def _text_values(df: pd.DataFrame, limit: int = 2000) -> list[str]:
    """Column names and text cells (a sample) of a frame."""
    values = [str(c) for c in df.columns]
    for col in df.columns:
        if col == "geometry" or not (pd.api.types.is_object_dtype(df[col])
                                     or pd.api.types.is_string_dtype(df[col])):
            continue
        values.extend(v for v in df[col].dropna().head(limit) if isinstance(v, str))
    return values


def _mojibake(values: list[str]) -> list[str]:
    """The values that look like mis-decoded Chinese text."""
    return [v for v in values if _MOJIBAKE.search(v)]


def _read_vector(path: Path, *, layer: str | int | None, encoding: str | None,
                 where: str | None = None, label: str | None = None) -> gpd.GeoDataFrame:
    kwargs: dict[str, Any] = {"engine": "pyogrio"}
    if layer is not None:
        kwargs["layer"] = layer
    if encoding:
        kwargs["encoding"] = encoding
    if where is not None:
        kwargs["where"] = where
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return gpd.read_file(path, **kwargs)
    except LookupError as exc:
        raise LayerError(
            f"Layer {path}: unknown encoding {encoding!r} ({exc}). Use e.g. `encoding: gbk`, "
            "`encoding: gb18030` or `encoding: utf-8`."
        ) from None
    except Exception as exc:  # pyogrio.errors.DataSourceError / DataLayerError ...
        if where is not None and ("SQL" in str(exc) or isinstance(exc, ValueError)):
            raise LayerError(_where_problem(path, label, where, exc, _fields(path, layer))
                             ) from None
        raise LayerError(
            f"Layer {path} cannot be read ({type(exc).__name__}: {exc}). Check that the file is "
            "complete (a Shapefile needs its .shp, .shx and .dbf) and in a supported format "
            "(GeoPackage, Shapefile, ArcGIS file geodatabase .gdb, GeoJSON, GeoParquet, KML, "
            "CSV, XLSX)."
        ) from None


def _fields(path: Path, layer: Any) -> list[str]:
    """The attribute columns of a vector file's layer (empty if GDAL cannot say)."""
    import pyogrio

    try:
        return [str(f) for f in pyogrio.read_info(path, layer=layer)["fields"]]
    except Exception:
        return []


def _where_problem(path: Path, label: str | None, where: str, exc: Exception,
                   columns: list[str]) -> str:
    """The message for a `where:` filter that cannot be applied to a layer."""
    return (
        f"Layer `{label or path.name}` ({path}): the filter `where: {where}` cannot be applied "
        f"({exc}). It is an SQL condition on the file's own column names"
        f"{' (' + ', '.join(columns) + ')' if columns else ''}, e.g. "
        "`where: \"landuse = 'residential' AND name NOT LIKE '%大学%'\"`: text in single "
        "quotes, column names with Chinese characters or spaces in double quotes; AND, OR, "
        "NOT, IN, LIKE '%…%', IS NULL, BETWEEN and <, <=, =, !=, >=, > work for every format."
    )


def _filter_table(df: pd.DataFrame, where: str | None, *, path: Path,
                  label: str | None) -> pd.DataFrame:
    """Rows of a table (CSV, Excel, KML, GeoParquet) that satisfy ``where`` (`planner._where`)."""
    if where is None:
        return df
    try:
        return df[where_mask(df, where)]
    except WhereError as exc:
        cols = [str(c) for c in df.columns if c != "geometry"]
        raise LayerError(_where_problem(path, label, where, exc, cols)) from None


def _check_layers(path: Path, layer: str | int | None, label: str | None = None) -> None:
    """A multi-layer file needs ``layer=``; a named layer must exist."""
    import pyogrio

    try:
        listed = pyogrio.list_layers(path)
    except Exception:
        return  # let the reader report the problem
    names = [str(n) for n in listed[:, 0]]
    which = f"Layer `{label}`: " if label else ""
    if layer is None and len(names) > 1:
        raise LayerError(
            f"{which}{'the' if label else 'Layer'} file {path} holds {len(names)} layers "
            f"({', '.join(names)}); say which one "
            f"with `layer:` in the scenario (or layer= in read_layer), e.g. `layer: {names[0]}`."
        )
    if isinstance(layer, str) and layer not in names:
        import difflib

        close = difflib.get_close_matches(layer, names, n=1)
        hint = f"; did you mean `layer: {close[0]}`?" if close else ""
        raise LayerError(
            f"{which}{'layer' if label else 'Layer'} {layer!r} is not in {path}{hint}; "
            f"it holds: {', '.join(names)}. Fix `layer:`."
        )


#: Suffixes of the files `read_layer` reads (a folder of Shapefiles is read too).
LAYER_SUFFIXES = (".gpkg", ".sqlite", ".shp", ".zip", ".geojson", ".json", ".parquet",
                  ".geoparquet", ".kml", ".kmz", ".csv", ".txt", ".tsv", ".xlsx", ".xlsm",
                  ".xls", ".gml", ".fgb")


def _check_folder(path: Path, label: str) -> None:
    """A folder is a layer only as a folder of Shapefiles (GDAL reads those) or an ArcGIS file
    geodatabase (``.gdb``); else name its files."""
    if path.suffix.lower() == ".gdb" or any(p.suffix.lower() == ".shp" for p in path.iterdir()):
        return
    files = sorted(p.name for p in path.iterdir()
                   if p.is_file() and p.suffix.lower() in LAYER_SUFFIXES)
    found = (f"it holds {', '.join(files[:10])}{' …' if len(files) > 10 else ''}" if files
             else "it holds no layer file")
    example = f" (e.g. {path / files[0]})" if files else ""
    raise LayerError(
        f"Layer {label}: {path} is a folder, not a layer file; {found}. Give the path of the "
        f"file itself{example}, or a folder that holds Shapefiles (.shp)."
    )


def _read_shapefile(path: Path, *, layer: Any, encoding: str | None, where: str | None = None,
                    label: str | None = None) -> gpd.GeoDataFrame:
    """Read a Shapefile honouring .cpg / ``encoding`` and detecting mojibake.

    Without a .cpg (or LDID byte) GDAL decodes the .dbf as ISO-8859-1, so
    GBK names come out as 'Î÷¹ØÉçÇø'.  When text looks like that, the file
    is re-read as UTF-8, GBK and GB18030 in turn; the first clean reading
    that has Chinese text is kept, with a warning naming the encoding.
    """
    try:
        gdf = _read_vector(path, layer=layer, encoding=encoding, where=where, label=label)
    except LayerError as exc:
        if "Decode" not in str(exc):
            raise
        gdf, bad = None, ["(bytes that are not valid in the declared encoding)"]
    else:
        bad = _mojibake(_text_values(gdf))
        if not bad:
            return gdf
    sample = ", ".join(repr(b) for b in bad[:3])
    if any("锟斤拷" in b for b in bad):
        raise LayerError(
            f"Shapefile {path}: text is already corrupted in the file (values like {sample}; "
            "'锟斤拷' comes from text that was converted between encodings twice). Re-export "
            "the layer from its original source with UTF-8 or GBK text."
        )
    if encoding is None:
        for enc in _FALLBACK_ENCODINGS:
            try:
                again = _read_vector(path, layer=layer, encoding=enc, where=where, label=label)
            except LayerError:
                continue
            text = _text_values(again)
            if not _mojibake(text) and any(_CJK.search(t) for t in text):
                cpg = [p for p in path.parent.glob(path.stem + ".*")
                       if p.suffix.lower() == ".cpg"]
                why = ("its .cpg file names the wrong encoding" if cpg
                       else "it has no .cpg file")
                why_zh = ("其 .cpg 文件写的编码不对" if cpg else "它没有 .cpg 文件")
                V.warn(
                    f"Shapefile {path.name}: {why} and its text did not decode cleanly "
                    f"(e.g. {bad[0][:60]!r}); it was read as {enc.upper()}. Set "
                    f"`encoding: {enc}` for this layer in the scenario (or fix the .cpg file).",
                    f"Shapefile {path.name}：{why_zh}，文字未能正确解码（如 {bad[0][:60]!r}），"
                    f"已按 {enc.upper()} 读取。请在情景文件中为该图层设置 `encoding: {enc}`"
                    "（或修正 .cpg 文件）。"
                )
                return again
    given = f" with encoding {encoding!r}" if encoding else ""
    raise LayerError(
        f"Shapefile {path}: text columns read{given} look garbled (e.g. {sample}). The .dbf is "
        "probably GBK-encoded (usual for Chinese bureau data) without a .cpg file: set "
        "`encoding: gbk` for this layer in the scenario (read_layer(..., encoding='gbk')), or "
        "add a .cpg file containing GBK next to the .shp."
    )


#: Suffixes of the spreadsheets `read_spreadsheet` reads.
EXCEL_SUFFIXES = (".xlsx", ".xlsm", ".xls")


def _sheet_summary(name: str, df: pd.DataFrame) -> str:
    cols = [str(c) for c in df.columns if not str(c).startswith("Unnamed:")]
    shown = ", ".join(cols[:6]) + (" …" if len(cols) > 6 else "")
    n = len(df.dropna(how="all"))
    return f"{name!r} ({n} row{'' if n == 1 else 's'}; columns: {shown or '-'})"


def read_spreadsheet(path: str | os.PathLike, *, sheet: str | int | None = None,
                     error: type[Exception] = LayerError, key: str = "sheet") -> pd.DataFrame:
    """Read the data sheet(s) of an Excel workbook, never silently only the first.

    Parameters
    ----------
    path
        An ``.xlsx`` / ``.xlsm`` / ``.xls`` file.
    sheet
        ``None``: the one sheet holding data (an error listing the sheets when
        several do, e.g. a notes sheet and a data sheet, or data split over
        sheets); a sheet name; a 0-based sheet number; or ``"all"``: every
        sheet with data, stacked (they must have the same columns; a
        ``source_sheet`` column says where each row came from).
    error
        The `PlannerError` class raised (`LayerError`, `DemandError` ...).
    key
        The setting named in messages (``sheet`` of a layer, ``demand.sheet``).

    Raises
    ------
    error
        Naming the sheets (rows and columns of each) when the choice is
        ambiguous or wrong, and the sheet whose columns differ for ``"all"``.
    """
    path = Path(path)
    with pd.ExcelFile(path) as book:  # closed at once, not left to the GC
        names = [str(n) for n in book.sheet_names]
        frames = {n: book.parse(n) for n in names}
    full = [n for n in names if len(frames[n].dropna(how="all"))]
    listing = "; ".join(_sheet_summary(n, frames[n]) for n in names)
    how = (f"set `{key}:` to a sheet name, a 0-based sheet number, or `all` to stack sheets "
           "that have the same columns")
    if sheet is None:
        if len(full) > 1:
            raise error(f"Spreadsheet {path} has data on {len(full)} sheets: {listing}. Say "
                        f"which to read: {how}.")
        return frames[full[0] if full else names[0]]
    if isinstance(sheet, str) and sheet.strip().lower() == "all":
        return _stack_sheets(path, {n: frames[n] for n in full} or {names[0]: frames[names[0]]},
                             error=error, key=key)
    if isinstance(sheet, int) and not isinstance(sheet, bool):
        if not -len(names) <= sheet < len(names):
            raise error(f"Spreadsheet {path}: there is no sheet number {sheet} (0-based); its "
                        f"{len(names)} sheet(s): {listing}. {how[0].upper()}{how[1:]}.")
        return frames[names[sheet]]
    if str(sheet) in frames:
        return frames[str(sheet)]
    raise error(f"Spreadsheet {path}: no sheet named {sheet!r}; its sheets: {listing}. "
                f"{how[0].upper()}{how[1:]}.")


def _stack_sheets(path: Path, frames: dict[str, pd.DataFrame], *, error: type[Exception],
                  key: str) -> pd.DataFrame:
    """``sheet: all``: the sheets one below the other, each row tagged with its sheet."""
    def cols(df: pd.DataFrame) -> list[str]:
        return [str(c).strip() for c in df.columns]

    first, *rest = frames
    want = cols(frames[first])
    for name in rest:
        got = cols(frames[name])
        if sorted(got) != sorted(want):
            missing = [c for c in want if c not in got]
            extra = [c for c in got if c not in want]
            raise error(
                f"Spreadsheet {path}: `{key}: all` stacks sheets with the same columns, but "
                f"sheet {name!r} differs from sheet {first!r}"
                + (f": it lacks {', '.join(missing)}" if missing else "")
                + (f"{';' if missing else ':'} it adds {', '.join(extra)}" if extra else "")
                + f". Make its header row the same, or choose one sheet with `{key}:`."
            )
    parts = []
    for name, df in frames.items():
        df = df.copy()
        df.columns = cols(df)
        parts.append(df.dropna(how="all").assign(source_sheet=name))
    return pd.concat(parts, ignore_index=True)


def _read_table(path: Path, *, encoding: str | None, sheet: str | int | None,
                label: str | None = None) -> pd.DataFrame:
    suffix = path.suffix.lower()
    if suffix in EXCEL_SUFFIXES:
        return read_spreadsheet(path, sheet=sheet)
    sep = "\t" if suffix == ".tsv" else ","
    tried = [encoding] if encoding else ["utf-8-sig", "gb18030"]
    for enc in tried:
        try:
            df = pd.read_csv(path, sep=sep, encoding=enc)
            if df.shape[1] == 1:  # another separator (Excel's ';' or a tab)?
                header = str(df.columns[0])
                other = next((s for s in ("\t", ";", "|") if s in header), None)
                if other is not None:
                    df = pd.read_csv(path, sep=other, encoding=enc)
        except UnicodeDecodeError:
            continue
        except LookupError:
            raise LayerError(f"Table {path}: unknown encoding {encoding!r}; use e.g. gbk or "
                             "utf-8.") from None
        except pd.errors.EmptyDataError:
            raise LayerError(f"{f'Layer `{label}`: table' if label else 'Table'} {path} has no "
                             "header row and no data (only blank lines). Export it again with "
                             "its column names in the first row.") from None
        if enc == "gb18030":
            V.warn(f"Table {path.name} is not UTF-8; it was read as GB18030 (GBK). "
                   "Set `encoding: gbk` to say so, or save it as UTF-8.",
                   f"表格 {path.name} 不是 UTF-8 编码，已按 GB18030（GBK）读取。请设置 "
                   "`encoding: gbk` 予以说明，或另存为 UTF-8。")
        return df
    raise LayerError(
        f"Table {path} cannot be decoded with {', '.join(tried)}. Save it as UTF-8 CSV, or set "
        "`encoding:` for this layer (e.g. gbk)."
    )


def _norm_name(col: Any) -> str:
    return re.sub(r"\s+", "", str(col))


def _synonym(col: Any, kind: str | None = None) -> str | None:
    """The canonical name of a column (whitespace and a "(人)" unit suffix ignored), or None."""
    key = _norm_name(col)
    for suffix in UNIT_SUFFIXES:
        if key.lower().endswith(suffix) and len(key) > len(suffix):
            key = key[: -len(suffix)]
            break
    if kind == "lines" and key.lower() in NOT_FOR_LINES:
        return None
    return SYNONYMS.get(key) or SYNONYMS.get(key.lower())


def _find_coord_column(df: pd.DataFrame, which: str, given: str | None,
                       columns: dict[str, str]) -> str | None:
    if given is not None:
        return given
    for col, target in columns.items():
        if target == which:
            return col
    for col in df.columns:
        if _synonym(col) == which:
            return col
    hint = "经度" if which == "lon" else "纬度"
    for col in df.columns:
        if hint in str(col):
            return col
    return None


def _table_to_points(df: pd.DataFrame, *, path: Path, lon_column: str | None,
                     lat_column: str | None, columns: dict[str, str], crs: Any) -> gpd.GeoDataFrame:
    """Build point geometries from lon/lat columns (or a WKT ``geometry`` column)."""
    df = df.copy()
    df.columns = [str(c).strip() for c in df.columns]
    for given in (lon_column, lat_column):
        if given is not None and given not in df.columns:
            raise LayerError(
                f"Table {path}: column {given!r} (lon_column/lat_column) is not in the file; "
                f"its columns are: {', '.join(df.columns)}."
            )
    xcol = _find_coord_column(df, "lon", lon_column, columns)
    ycol = _find_coord_column(df, "lat", lat_column, columns)
    if xcol is None or ycol is None:
        wkt = next((c for c in df.columns if c.lower() in ("geometry", "wkt", "geom")), None)
        if wkt is not None:
            geoms = shapely.from_wkt(df[wkt].astype(str).to_numpy(), on_invalid="ignore")
            return gpd.GeoDataFrame(df.drop(columns=[wkt]), geometry=geoms,
                                    crs=crs or "EPSG:4326")
        raise LayerError(
            f"Table {path}: no longitude/latitude columns found (looked for 经度/纬度, lng/lat, "
            f"lon/lat, x/y, longitude/latitude). Its columns are: {', '.join(df.columns)}. Set "
            "`lon_column:` and `lat_column:` for this layer in the scenario."
        )
    name_col = next((c for c in df.columns if columns.get(c) == "name"), None) or next(
        (c for c in df.columns if _synonym(c) == "name"), None)
    labels = pd.DataFrame({"name": df[name_col]}) if name_col is not None else df
    problems = []
    xy = {}
    for col in (xcol, ycol):
        raw = df[col]
        if pd.api.types.is_numeric_dtype(raw):
            val = raw.astype(float)
        else:
            val = pd.to_numeric(raw.astype(str).str.strip().where(raw.notna(), None),
                                errors="coerce")
        bad = np.flatnonzero(val.isna().to_numpy())
        if len(bad):
            vals = ", ".join(repr(str(raw.iloc[p])) for p in bad[:5])
            problems.append(f"column `{col}`: missing or non-numeric coordinate(s) {vals} in "
                            f"{V.rows_text(labels, bad)}. Fill in the coordinates or drop these "
                            "rows.")
        xy[col] = val.to_numpy(dtype=float)
    collect(problems, header=f"Table {path} has bad coordinates:", error=LayerError)
    geoms = shapely.points(xy[xcol], xy[ycol])
    return gpd.GeoDataFrame(df, geometry=geoms, crs=crs or "EPSG:4326")


def _read_any(path: Path, *, kind: str, layer: Any, encoding: str | None, sheet: Any,
              lon_column: str | None, lat_column: str | None, columns: dict[str, str],
              crs: Any, label: str | None = None, where: str | None = None
              ) -> tuple[gpd.GeoDataFrame, bool]:
    """Read ``path`` into a GeoDataFrame (rows satisfying ``where``); also say if it was a table.

    Vector files are filtered by GDAL as they are read; tables, KML and
    GeoParquet by `planner._where` (the same SQL subset).
    """
    if path.is_file() and path.stat().st_size == 0:
        raise LayerError(
            f"Layer {f'`{label}` ({path})' if label else path}: the file is empty (0 bytes), "
            "so it has no columns and no rows; it was probably not saved or copied "
            "completely. Export it again, or fix the layer's `path:`."
        )
    suffix = path.suffix.lower()
    if suffix in _TABLE_SUFFIXES:
        df = _filter_table(_read_table(path, encoding=encoding, sheet=sheet, label=label), where,
                           path=path, label=label)
        return _table_to_points(df, path=path, lon_column=lon_column, lat_column=lat_column,
                                columns=columns, crs=crs), True
    if suffix in _KML_SUFFIXES:
        from planner._kml import read_kml

        return _filter_table(read_kml(path), where, path=path, label=label), False
    if suffix in _PARQUET_SUFFIXES:
        try:
            gdf = gpd.read_parquet(path)
        except Exception as exc:
            raise LayerError(f"GeoParquet {path} cannot be read ({exc}); re-export it with "
                             "geopandas `to_parquet`.") from None
        return _filter_table(gdf, where, path=path, label=label), False
    if suffix in {".gpkg", ".sqlite", ".gdb"} or path.is_dir():  # .gdb: ArcGIS file geodatabase
        _check_layers(path, layer, label)
    if suffix in {".shp", ".dbf", ".zip"}:
        return _read_shapefile(path, layer=layer, encoding=encoding, where=where,
                               label=label), False
    return _read_vector(path, layer=layer, encoding=encoding, where=where, label=label), False


# =============================================================================== columns
def _rename(gdf: gpd.GeoDataFrame, *, columns: dict[str, str], id_column: str | None,
            path: Path, label: str | None = None, kind: str | None = None) -> gpd.GeoDataFrame:
    """Canonical column names: the user's map first, then the built-in synonyms."""
    geom = gdf.geometry.name
    present = [c for c in gdf.columns if c != geom]
    missing = [c for c in columns if c not in present]
    if id_column is not None and id_column not in present:
        missing.append(id_column)
    if missing:
        raise LayerError(
            f"Layer {f'`{label}` ({path})' if label else path}: column(s) "
            f"{', '.join(map(repr, missing))} named in the scenario "
            f"(`columns:` / `id_column:`) are not in the file. Its columns are: "
            f"{', '.join(map(str, present))}."
        )
    mapping: dict[Any, str] = {}
    taken: set[str] = set()
    if id_column is not None:
        mapping[id_column] = "id"
        taken.add("id")
    for src, dst in columns.items():
        if src not in mapping:
            mapping[src] = dst
            taken.add(dst)
    # columns already carrying a canonical name keep it
    for col in present:
        if col not in mapping and col in taken:
            mapping[col] = f"{col}_source"  # displaced by the user's choice
        elif col not in mapping and _synonym(col, kind) == col:
            mapping[col] = col
            taken.add(col)
    skipped = []
    for col in present:
        if col in mapping:
            continue
        target = _synonym(col, kind)
        if target is None or target in ("lon", "lat"):
            continue  # coordinate columns keep their names (values as in the file)
        if target in taken:
            skipped.append((col, target))
            continue
        mapping[col] = target
        taken.add(target)
    if skipped:
        V.warn(
            f"Layer {path.name}: column(s) "
            + ", ".join(f"{c!r} (also means `{t}`)" for c, t in skipped)
            + " kept under their own names because another column already gives that field. "
            "Choose explicitly with `columns: {<column>: <field>}` in the scenario.",
            f"图层 {path.name}：列 "
            + "、".join(f"{c!r}（也表示 `{t}`）" for c, t in skipped)
            + " 保留原名，因为已有另一列给出该字段。请在情景文件中用 "
            "`columns: {<列名>: <字段>}` 明确指定。"
        )
    renamed = gdf.rename(columns={k: v for k, v in mapping.items() if k != v})
    return renamed


# =============================================================================== main
def as_crs(value: Any, *, what: str) -> pyproj.CRS:
    """``value`` as a `pyproj.CRS`; a `LayerError` naming ``what`` when PROJ cannot read it."""
    try:
        return pyproj.CRS.from_user_input(value)
    except pyproj.exceptions.CRSError:
        raise LayerError(
            f"{what} {value!r} is not a CRS PROJ understands. Use an EPSG code such as "
            "`EPSG:4326` (longitude/latitude) or `EPSG:32649` (UTM 49N, metres)."
        ) from None


def read_layer(
    path: str | os.PathLike,
    *,
    kind: Kind,
    columns: dict[str, str] | None = None,
    coord_system: coords.CoordSystem = "wgs84",
    encoding: str | None = None,
    crs: Any = None,
    layer: str | int | None = None,
    id_column: str | None = None,
    lon_column: str | None = None,
    lat_column: str | None = None,
    sheet: str | int | None = None,
    target_crs: Any = None,
    name: str | None = None,
    tiers: dict[str, str] | None = None,
    region: Literal["china", "any"] = REGION,
    where: str | None = None,
    sql: str | None = None,
) -> gpd.GeoDataFrame:
    """Read, check and project one layer.

    Parameters
    ----------
    path
        GeoPackage, Shapefile, ArcGIS file geodatabase (``.gdb`` folder, with
        ``layer``), GeoJSON, GeoParquet, KML/KMZ, CSV or XLSX file; or a
        ``postgresql://`` URL of a PostGIS database (``layer`` names the
        table, or ``sql`` gives a query), checked the same way.
    kind
        What the layer holds, which fixes the geometry it must have:
        ``population``, ``facilities``, ``boundaries``, ``candidates``,
        ``gates``, ``points``, ``residential``, ``context`` or ``lines``.
    columns
        The file's column names → canonical names (``{"社区名称": "name"}``),
        applied before (and winning over) the built-in synonyms
        (`planner._schema.SYNONYMS`).  Unmapped columns are kept as they are.
    coord_system
        Datum of the coordinates: ``"wgs84"``, ``"gcj02"`` (AMap, Tencent,
        DataV) or ``"bd09"`` (Baidu).  GCJ-02/BD-09 are converted to WGS-84
        (`planner.coords`) before projecting; they need a geographic CRS.
    encoding
        Text encoding of a Shapefile's .dbf or of a CSV (e.g. ``"gbk"``).
        By default a .cpg is honoured and garbled text triggers a retry
        with UTF-8/GBK/GB18030 (with a warning).
    crs
        The file's CRS when it has none (or has a wrong one; a warning says
        so).  Tables with lon/lat default to EPSG:4326.
    layer
        Layer of a multi-layer file (GeoPackage).
    id_column
        The column holding unique ids (renamed ``id``).  Without one and no
        id-like column, ``id`` = 1, 2, … in file order.
    lon_column, lat_column
        Coordinate columns of a CSV/XLSX table (found automatically otherwise).
    sheet
        Sheet of an XLSX file: a name, a 0-based number, or ``"all"`` to stack
        sheets with the same columns.  By default the one sheet with data; a
        workbook with data on several sheets is an error listing them
        (`read_spreadsheet`).
    target_crs
        The metric CRS to project to; by default the UTM zone of the
        layer's centre (`planner.coords.metric_crs`).
    name
        Name of the layer in messages (default: the file name).
    tiers
        Extra facility-tier mapping of values (``{"老年食堂": "other"}``).
    region
        ``"china"`` (default): features outside China are an error (usually
        a wrong coordinate column or CRS).  ``"any"``: the data may lie
        anywhere; GCJ-02/BD-09 ``coord_system`` is then refused, since those
        offsets exist only inside China.
    where
        Keep only the rows satisfying this SQL condition on the file's own
        column names (``"landuse = 'residential'"``; names with Chinese
        characters or spaces in double quotes).  Vector files are filtered by
        GDAL as they are read (OGR SQL, or SQLite's for a GeoPackage); CSV,
        Excel, KML and GeoParquet by `planner._where`, which reads the common
        subset: comparisons, IN, LIKE, IS NULL, BETWEEN, AND, OR, NOT.  Text
        equality follows the reader: GDAL's OGR SQL (GeoJSON, Shapefile)
        ignores case, SQLite (GeoPackage) and the table reader do not.  A
        filter that cannot be applied is a `LayerError` naming the layer.
    sql
        With a PostGIS ``path``: a ``SELECT`` to read instead of a table (it
        may filter in space, so a batch reads only its part).

    Returns
    -------
    geopandas.GeoDataFrame
        Canonical columns (``id`` and ``name`` first), in ``target_crs``;
        ``attrs`` holds ``source``, ``kind``, ``coord_system`` and ``source_crs``
        (the file's CRS before projecting).

    Raises
    ------
    LayerError
        Listing every problem at once (file, column, rows, how to fix).

    Examples
    --------
    >>> fac = read_layer("fac.xlsx", kind="facilities", coord_system="gcj02")  # doctest: +SKIP
    >>> fac[["id", "name", "tier", "beds"]].head()  # doctest: +SKIP
    """
    from planner.postgis import is_database_url, read_postgis, redact

    database = is_database_url(path)
    url = str(path)
    path = Path(redact(url)) if database else Path(path)
    label = name or (str(layer or "sql") if database else path.name)
    if kind not in V.KIND_GEOMETRY:
        raise LayerError(f"Unknown layer kind {kind!r} for {label}; use one of {', '.join(KINDS)}.")
    if not database and not path.exists():
        raise LayerError(f"Layer {label}: file {path} does not exist. Check the path (in a "
                         "scenario, paths are relative to the scenario file).")
    if path.is_dir():
        _check_folder(path, label)
    columns = dict(columns or {})
    system, file_crs, target = _check_arguments(label=label, coord_system=coord_system,
                                                encoding=encoding, crs=crs, target_crs=target_crs,
                                                region=region)
    if database:  # the same checks follow as for a file
        gdf, is_table = read_postgis(url, table=None if sql else str(layer), sql=sql), False
    else:
        gdf, is_table = _read_any(path, kind=kind, layer=layer, encoding=encoding, sheet=sheet,
                                  lon_column=lon_column, lat_column=lat_column, columns=columns,
                                  crs=file_crs, label=name, where=where)
    header = f"Layer `{label}` ({path}{f', layer {layer}' if layer is not None else ''}) " \
             "cannot be used:"
    if len(gdf) == 0:
        if where is not None:
            raise LayerError(f"{header}\n  - no row satisfies `where: {where}`. Check the filter "
                             "(the values are compared as written in the file).")
        raise LayerError(f"{header}\n  - it has no rows. Check the file, `layer:` or `sheet:`.")
    gdf = _set_file_crs(gdf, file_crs=file_crs, is_table=is_table, system=system, label=label,
                        header=header)
    gdf = _rename(gdf, columns=columns, id_column=id_column, path=path, label=name, kind=kind)
    gdf, problems = _check_content(gdf, kind=kind, tiers=tiers, label=label, region=region)
    collect(problems, header=header, error=LayerError)
    gdf = _project(gdf, system=system, target=target, path=path, kind=kind)
    if kind in ("population", "boundaries"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", PlannerWarning)
            V.warn_density(gdf, max_per_km2=MAX_DENSITY_PER_KM2)
        for w in caught:
            _warn_caller(reworded(w.message, en=lambda t: f"Layer {label}: {t}",
                                  zh=lambda t: f"图层 {label}：{t}"), stacklevel=3)
    return gdf


def _warn_caller(message: PlannerWarning, *, stacklevel: int = 4) -> None:
    """`planner._validate.warn` from a helper of `read_layer`: points at read_layer's caller."""
    warnings.warn(message, stacklevel=stacklevel)


def _check_arguments(*, label: str, coord_system: coords.CoordSystem, encoding: str | None,
                     crs: Any, target_crs: Any, region: str = REGION
                     ) -> tuple[str, pyproj.CRS | None, pyproj.CRS | None]:
    """Check `read_layer`'s datum, encoding and CRS arguments: (system, file CRS, target CRS)."""
    system = coords._check_system(coord_system, "coord_system")
    coords.check_region(region, system, what=f"Layer {label}")
    if encoding is not None:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise LayerError(
                f"Layer {label}: unknown encoding {encoding!r}. Use e.g. `encoding: gbk`, "
                "`encoding: gb18030` or `encoding: utf-8`."
            ) from None
    file_crs = as_crs(crs, what=f"Layer {label}: crs") if crs is not None else None
    target = None if target_crs is None else as_crs(target_crs, what="target_crs")
    if target is not None and target.is_geographic:
        raise LayerError(
            f"target_crs {target.to_string()} is geographic (degrees); distances need a "
            "metric CRS. Use a projected CRS such as EPSG:32649, or leave it to 'auto'."
        )
    return system, file_crs, target


def _set_file_crs(gdf: gpd.GeoDataFrame, *, file_crs: pyproj.CRS | None, is_table: bool,
                  system: str, label: str, header: str) -> gpd.GeoDataFrame:
    """Apply the scenario's ``crs`` to a file; the layer must end up with a usable CRS."""
    if file_crs is not None and not is_table:
        if gdf.crs is not None and not gdf.crs.equals(file_crs):
            _warn_caller(PlannerWarning(
                f"Layer {label}: the file says CRS {gdf.crs.to_string()} but the "
                f"scenario sets crs {file_crs.to_string()}; using the scenario's.",
                f"图层 {label}：文件的坐标系是 {gdf.crs.to_string()}，而情景文件设为 "
                f"{file_crs.to_string()}；采用情景文件的设置。"))
        gdf = gdf.set_crs(file_crs, allow_override=True)
    if gdf.crs is None:
        raise LayerError(
            f"{header}\n  - it has no CRS. Set `crs:` for this layer in the scenario (e.g. "
            "`crs: EPSG:4326` for longitude/latitude, `crs: EPSG:4547` for CGCS2000 / 3-degree "
            "Gauss-Kruger), or call gdf.set_crs(...) before using it."
        )
    if system != "wgs84" and not gdf.crs.is_geographic:
        raise LayerError(
            f"{header}\n  - coord_system is {system} but the layer's CRS "
            f"{gdf.crs.to_string()} is projected; GCJ-02/BD-09 offsets apply to longitude/"
            "latitude only. Give the layer in degrees, or set `coord_system: wgs84`."
        )
    return gdf


def _check_content(gdf: gpd.GeoDataFrame, *, kind: Kind, tiers: dict[str, str] | None,
                   label: str, region: str = REGION) -> tuple[gpd.GeoDataFrame, list[str]]:
    """Check (and repair) geometry and attributes: the layer and every problem found."""
    problems: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PlannerWarning)
        gdf, geom_problems = V.check_geometry(gdf, kind=kind)
    for w in caught:
        _warn_caller(reworded(w.message, en=lambda t: f"Layer {label}: {t}",
                              zh=lambda t: f"图层 {label}：{t}"))
    problems.extend(geom_problems)
    if not geom_problems:
        problems.extend(_check_location(gdf, region=region))
    if kind in V.TIER_KINDS:
        problems.extend(V.check_tiers(gdf, kind=kind, tiers=tiers))
        if kind == "facilities" and "tier" not in gdf.columns:
            problems.append(
                "no tier column (looked for 类型, 等级, 设施类型, 机构类型, tier). Every facility "
                "needs a tier; map your column with `columns: {<column>: tier}`."
            )
    problems.extend(V.check_counts(gdf))
    problems.extend(V.check_public(gdf))
    problems.extend(V.check_ids(gdf))
    return gdf, problems


def _check_location(gdf: gpd.GeoDataFrame, *, region: str = REGION) -> list[str]:
    """Problems of the features' locations (centres of their envelopes, in lon/lat)."""
    centres = shapely.centroid(shapely.envelope(np.asarray(gdf.geometry.values)))
    if gdf.crs.is_geographic:
        x, y = shapely.get_x(centres), shapely.get_y(centres)
    else:
        x, y = pyproj.Transformer.from_crs(gdf.crs, 4326, always_xy=True).transform(
            shapely.get_x(centres), shapely.get_y(centres))
        x, y = np.asarray(x), np.asarray(y)
    return V.check_lonlat(x, y, gdf, what="coordinates", region=region)


def _project(gdf: gpd.GeoDataFrame, *, system: str, target: pyproj.CRS | None, path: Path,
             kind: Kind) -> gpd.GeoDataFrame:
    """WGS-84 datum, the metric CRS, ``id`` and ``name`` first, and the ``attrs``."""
    source_crs = gdf.crs.to_string()
    if system != "wgs84":
        gdf = coords.to_wgs84(gdf, coord_system=system)
    if target is None:
        geo = gdf.to_crs(4326) if not gdf.crs.is_geographic else gdf
        minx, miny, maxx, maxy = geo.total_bounds
        target = coords.metric_crs([minx, maxx], [miny, maxy])
    gdf = gdf.to_crs(target)
    if "id" not in gdf.columns:
        gdf.insert(0, "id", np.arange(1, len(gdf) + 1))
    order = [c for c in ("id", "name") if c in gdf.columns]
    gdf = gdf[order + [c for c in gdf.columns if c not in order]]
    gdf = gdf.reset_index(drop=True)
    gdf.attrs.update({"source": str(path), "kind": kind, "coord_system": system,
                      "source_crs": source_crs})
    return gdf
