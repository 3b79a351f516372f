"""Layers from and results to a PostGIS database (a bureau's spatial data platform).

`read_postgis` reads a table or an SQL query (which may carry its own
spatial filter, e.g. ``WHERE ST_Intersects(geom, ST_MakeEnvelope(...))``),
optionally cut to a lon/lat box, so a province batch reads only what each
part needs; `write_postgis` writes a layer (or a plain table) into a table,
replacing it.  Both talk to the database through ``psycopg`` with the
geometry as (E)WKB: the GDAL build inside pyogrio has no PostgreSQL driver,
and geopandas' own PostGIS I/O needs SQLAlchemy and GeoAlchemy2 on top.

A layer read here goes through the same checks as a file
(`planner.layers.read_layer` accepts a ``postgresql://`` URL).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import pandas as pd

from planner._errors import LayerError, OutputError

__all__ = ["is_database_url", "read_postgis", "redact", "write_postgis"]

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")


def is_database_url(value: Any) -> bool:
    """Whether a layer path is a PostgreSQL/PostGIS connection URL."""
    return isinstance(value, str) and value.strip().lower().startswith(
        ("postgresql://", "postgres://"))


def redact(url: str) -> str:
    """The URL without its password (for run.json, reports and messages)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    user = f"{parts.username}:***@" if parts.username else ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit((parts.scheme, f"{user}{host}{port}", parts.path, parts.query,
                       parts.fragment))


def _connect(url: str, *, what: str, error: type = LayerError) -> Any:
    try:
        import psycopg
    except ImportError:
        raise error(f"{what}: PostGIS needs psycopg (`pip install 'psycopg[binary]'`)."
                    ) from None
    try:
        return psycopg.connect(url, connect_timeout=10)
    except psycopg.Error as exc:
        raise error(f"{what}: cannot connect to {redact(url)} "
                         f"({str(exc).strip().splitlines()[0]}). Check host, port, database, "
                         "user and password (or ~/.pgpass).") from None


def _quote(name: str) -> str:
    """A schema-qualified identifier, quoted (``schema.table`` → ``"schema"."table"``)."""
    parts = str(name).split(".")
    if len(parts) > 2 or not all(parts):
        raise LayerError(f"Table name {name!r} is not `table` or `schema.table`.")
    return ".".join('"' + p.replace('"', '""') + '"' for p in parts)


def _geometry_oid(cur: Any) -> int:
    cur.execute("SELECT 'geometry'::regtype::oid")
    return int(cur.fetchone()[0])


def read_postgis(
    url: str,
    *,
    table: str | None = None,
    sql: str | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    geometry_column: str | None = None,
) -> Any:
    """Read a PostGIS table or query into a GeoDataFrame in the column's own CRS.

    Parameters
    ----------
    url
        ``postgresql://user:password@host:port/database`` (libpq's URL form;
        ``?host=/path/to/socket`` for a local socket).
    table
        ``table`` or ``schema.table``.
    sql
        A ``SELECT`` instead of a table (its own ``WHERE`` may filter in
        space); exactly one of ``table`` and ``sql``.
    bbox
        (minx, miny, maxx, maxy) in WGS-84 lon/lat: only rows whose geometry
        meets the box (an index-backed ``&&`` test in the database).
    geometry_column
        Which geometry column, when the result has several.

    Raises
    ------
    LayerError
        Naming the database (password hidden), the table or query, and the fix.
    """
    import geopandas as gpd
    import shapely

    what = f"PostGIS {redact(url)} ({table or 'sql'})"
    if (table is None) == (sql is None):
        raise LayerError(f"{what}: give a table (`layer: schema.table`) or a query "
                         "(`sql: SELECT ...`), not both or neither.")
    source = _quote(table) if table is not None else f"({sql.strip().rstrip(';')})"
    with _connect(url, what=what) as con, con.cursor() as cur:
        try:
            goid = _geometry_oid(cur)
            cur.execute(f"SELECT * FROM {source} AS q LIMIT 0")
        except Exception as exc:  # psycopg.Error: no such table, bad SQL, no PostGIS
            raise LayerError(f"{what}: {str(exc).strip().splitlines()[0]}. Check the table "
                             "name (`schema.table`) or the query.") from None
        columns = [d.name for d in cur.description]
        geoms = [d.name for d in cur.description if d.type_code == goid]
        if geometry_column is not None:
            geoms = [g for g in geoms if g == geometry_column]
        if len(geoms) != 1:
            raise LayerError(f"{what}: {'no' if not geoms else len(geoms)} geometry column(s) "
                             f"among {columns}; "
                             + ("give a table or query with one." if not geoms else
                                "say which with geometry_column."))
        g = '"' + geoms[0].replace('"', '""') + '"'
        where, params = "", []
        if bbox is not None:
            where = (f" WHERE q.{g} && ST_Transform(ST_MakeEnvelope(%s, %s, %s, %s, 4326), "
                     f"(SELECT ST_SRID(q2.{g}) FROM {source} AS q2 WHERE q2.{g} IS NOT NULL "
                     "LIMIT 1))")
            params = [float(v) for v in bbox]
        others = [c for c in columns if c != geoms[0]]
        sel = ", ".join(f'q."{c}"' for c in others)
        cur.execute(f"SELECT {sel}{', ' if sel else ''}ST_AsBinary(q.{g}), ST_SRID(q.{g}) "
                    f"FROM {source} AS q{where}", params)
        rows = cur.fetchall()
    data = pd.DataFrame([r[:-2] for r in rows], columns=others)
    wkb = [bytes(r[-2]) if r[-2] is not None else None for r in rows]
    srids = {r[-1] for r in rows if r[-1]}
    if len(srids) > 1:
        raise LayerError(f"{what}: geometries in several SRIDs {sorted(srids)}; transform them "
                         "to one in the query (ST_Transform).")
    crs = f"EPSG:{srids.pop()}" if srids else None
    return gpd.GeoDataFrame(data, geometry=shapely.from_wkb(wkb), crs=crs)


_PG_TYPES = {"b": "boolean", "i": "bigint", "u": "bigint", "f": "double precision",
             "M": "timestamp"}


def write_postgis(
    frame: Any,
    url: str,
    table: str,
    *,
    if_exists: str = "replace",
) -> int:
    """Write a GeoDataFrame (or a plain DataFrame) into ``table``; returns the rows written.

    The geometry column is ``geom`` typed ``geometry(<type>, <SRID>)`` with a
    GiST index; numbers stay numbers (NaN and infinity become NULL), text is
    text, list cells JSON text.  ``if_exists``: ``"replace"`` (drop and
    create, default) or ``"fail"``.  The whole write is one transaction.
    """
    import json

    import shapely

    what = f"PostGIS output {redact(url)} ({table})"
    if if_exists not in ("replace", "fail"):
        raise OutputError(f"{what}: if_exists must be 'replace' or 'fail'.")
    geo = hasattr(frame, "geometry") and getattr(frame, "crs", None) is not None
    df = pd.DataFrame(frame.drop(columns=frame.geometry.name)) if geo else pd.DataFrame(frame)
    names = list(df.columns)
    if len(set(map(str.lower, map(str, names)))) != len(names):
        raise OutputError(f"{what}: column names differ only in case: {names}.")
    cols, values = [], []
    for c in names:
        s = df[c]
        kind = s.dtype.kind
        if kind in "biuf":
            arr = s.to_numpy(dtype=float if kind == "f" else None)
            if kind == "f":
                arr = np.where(np.isfinite(arr), arr, np.nan)
            values.append([None if (kind == "f" and np.isnan(v)) else v.item()
                           if hasattr(v, "item") else v for v in arr])
        else:
            values.append([None if v is None or (isinstance(v, float) and np.isnan(v)) else
                           json.dumps(v, ensure_ascii=False, default=str)
                           if isinstance(v, (list, tuple, dict, set)) else str(v) for v in s])
        cols.append(f'"{str(c)}" {_PG_TYPES.get(kind, "text")}')
    rows = list(zip(*values)) if values else [()] * len(df)
    srid = 0
    if geo:
        srid = int(frame.crs.to_epsg() or 0)
        if not srid:
            raise OutputError(f"{what}: the layer's CRS has no EPSG code; write it in one "
                              "that has (outputs.crs).")
        gtypes = set(frame.geom_type.dropna())
        gtype = gtypes.pop().upper() if len(gtypes) == 1 else "GEOMETRY"
        cols.append(f'"geom" geometry({gtype}, {srid})')
        ewkb = shapely.to_wkb(shapely.set_srid(frame.geometry.values, srid), hex=True,
                              include_srid=True)
        rows = [(*r, g) for r, g in zip(rows, ewkb)] if names else [(g,) for g in ewkb]
    target = _quote(table)
    with _connect(url, what=what, error=OutputError) as con, con.cursor() as cur:
        try:
            if "." in table:
                cur.execute(f'CREATE SCHEMA IF NOT EXISTS {_quote(table.split(".")[0])}')
            if if_exists == "replace":
                cur.execute(f"DROP TABLE IF EXISTS {target}")
            cur.execute(f"CREATE TABLE {target} ({', '.join(cols)})")
            names_sql = ", ".join([f'"{c}"' for c in names] + (['"geom"'] if geo else []))
            with cur.copy(f"COPY {target} ({names_sql}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            if geo:
                cur.execute(f'CREATE INDEX ON {target} USING GIST ("geom")')
        except Exception as exc:  # psycopg.Error
            raise OutputError(f"{what}: {str(exc).strip().splitlines()[0]}.") from None
    return len(rows)
