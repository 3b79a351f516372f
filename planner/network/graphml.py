"""Saving and loading networks as GraphML (planner files and OSMnx files).

`to_graphml` writes a network with OSMnx-compatible attribute names;
`from_graphml` restores it exactly, or re-times / re-filters it
(`_refilter_saved`) and reprojects it (`_reproject`); an OSMnx GraphML goes
through `from_osmnx_graph`.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyproj

from planner._errors import NetworkError
from planner.network.assemble import assemble
from planner.network.graph import WalkNetwork
from planner.network.noding import drawn_from_v
from planner.network.options import NetworkOptions, resolve_options
from planner.network.osm import from_osmnx_graph
from planner.network.profiles import class_filter, resolve_profile

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from planner.network.options import NetworkOptionFields

__all__ = ["GRAPHML_DEFAULTS", "from_graphml", "to_graphml"]

#: `from_graphml`'s own defaults: keep the saved profile, components and crossing delays.
GRAPHML_DEFAULTS = NetworkOptions(profile=None, min_component_share=0.0, crossing_delay_s=None)

def to_graphml(net: WalkNetwork, path: str | os.PathLike) -> Path:
    """Save a network as GraphML (OSMnx-compatible attribute names).

    Nodes carry ``x``, ``y`` (and ``elevation``, ``osmid`` when known); edges
    carry ``length`` (m), ``time_s``, ``highway``, ``name`` and ``geometry``
    (WKT); the graph carries ``crs``, ``speed_mps``, ``profile`` and the build
    report, so `from_graphml` restores the network exactly.
    """
    import json

    import networkx as nx
    import shapely

    path = Path(path)
    g = nx.MultiGraph(
        crs=net.crs.to_wkt(), created_by="planner", speed_mps=float(net.speed_mps),
        profile=net.profile or "", report=json.dumps(net.report, default=str, ensure_ascii=False),
    )
    for i in range(net.n_nodes):
        attrs: dict[str, Any] = {"x": float(net.node_x[i]), "y": float(net.node_y[i])}
        if net.node_z is not None:
            attrs["elevation"] = float(net.node_z[i])
        if net.node_id is not None:
            attrs["osmid"] = str(net.node_id[i])
        g.add_node(i, **attrs)
    edges = net.edges
    wkt = shapely.to_wkt(np.asarray(edges.geometry.values), rounding_precision=-1) if (
        edges is not None) else [""] * net.n_edges
    fclass = edges["fclass"].astype(str).tolist() if edges is not None and "fclass" in edges \
        else [""] * net.n_edges
    name = edges["name"].fillna("").astype(str).tolist() if edges is not None and "name" in edges \
        else [""] * net.n_edges
    delay = net.edge_delay_s if net.edge_delay_s is not None else np.zeros(net.n_edges)
    for i in range(net.n_edges):
        g.add_edge(int(net.edge_u[i]), int(net.edge_v[i]), key=i, edge_index=i,
                   length=float(net.edge_length_m[i]), time_s=float(net.edge_time_s[i]),
                   delay_s=float(delay[i]), highway=fclass[i], name=name[i], geometry=wkt[i])
    nx.write_graphml(g, path)
    return path


def from_graphml(
    path: str | os.PathLike,
    *,
    options: NetworkOptions | None = None,
    **overrides: Unpack[NetworkOptionFields],
) -> WalkNetwork:
    """Load a network saved with `to_graphml`, or an OSMnx GraphML (``ox.save_graphml``).

    A planner file is restored as saved (times included); ``speed_mps`` or
    ``profile`` re-time it.  A profile that avoids steps (``frail``,
    ``wheelchair``, or ``avoid_steps=True``) removes the saved ``steps``
    edges, and explicit ``include_classes`` / ``exclude_classes`` filter the
    saved edges as in `from_lines`; the network is then re-assembled
    (components, times) and the report says what was dropped.  An OSMnx
    file goes through `from_osmnx_graph` (default profile ``older_adult``).

    Parameters
    ----------
    path
        The ``.graphml`` file.
    options
        See `NetworkOptions`; default `GRAPHML_DEFAULTS`, i.e. ``profile=None``
        (``speed_mps`` or ``profile`` re-time the network),
        ``min_component_share=0.0`` (used when edges are removed) and
        ``crossing_delay_s=None`` (keep a planner file's saved delays).  ``crs``
        reprojects to this metric CRS.
    **overrides
        Fields of `NetworkOptions` as keywords; they override ``options``.
    """
    import json

    import geopandas as gpd
    import networkx as nx
    import shapely

    opts = resolve_options(options, overrides, GRAPHML_DEFAULTS, caller="from_graphml")
    profile, speed_mps, crs = opts.profile, opts.speed_mps, opts.crs
    path = Path(path)
    if not path.is_file():
        raise NetworkError(f"GraphML file {path} does not exist. Check `network.path`.")
    try:
        g = nx.read_graphml(path)
    except Exception as exc:  # malformed XML / not GraphML
        raise NetworkError(f"{path} is not a readable GraphML file: {exc}") from None
    if g.graph.get("created_by") != "planner":
        import osmnx as ox

        G = ox.load_graphml(path)
        return from_osmnx_graph(G, options=opts.replace(
            profile=profile or "older_adult", crossing_delay_s=opts.crossing_delay_s or 0.0))
    n = g.number_of_nodes()
    node_x = np.empty(n)
    node_y = np.empty(n)
    z = np.empty(n) if n and "elevation" in next(iter(g.nodes.values())) else None
    osmid = [None] * n
    for k, d in g.nodes(data=True):
        i = int(k)
        node_x[i], node_y[i] = float(d["x"]), float(d["y"])
        if z is not None:
            z[i] = float(d["elevation"])
        osmid[i] = d.get("osmid")
    rows = sorted(((int(d["edge_index"]), int(a), int(b), d)
                   for a, b, d in g.edges(data=True)), key=lambda r: r[0])
    eu = np.array([r[1] for r in rows], dtype=np.int64)
    ev = np.array([r[2] for r in rows], dtype=np.int64)
    length = np.array([float(r[3]["length"]) for r in rows])
    time_s = np.array([float(r[3]["time_s"]) for r in rows])
    delay = np.array([float(r[3].get("delay_s", 0.0)) for r in rows])
    geoms = shapely.from_wkt([r[3].get("geometry") or None for r in rows])
    # an undirected reader may return (v, u): keep u as the geometry's start
    flip = drawn_from_v(geoms, np.c_[node_x, node_y], eu, ev)
    eu[flip], ev[flip] = ev[flip], eu[flip].copy()
    graph_crs = pyproj.CRS.from_user_input(g.graph["crs"])
    edges = gpd.GeoDataFrame(
        {"u": eu, "v": ev, "length_m": length,
         "fclass": [r[3].get("highway", "") for r in rows],
         "name": [r[3].get("name", "") for r in rows]},
        geometry=geoms, crs=graph_crs)
    net = WalkNetwork(
        crs=graph_crs, node_x=node_x, node_y=node_y, edge_u=eu, edge_v=ev,
        edge_length_m=length, edge_time_s=time_s, speed_mps=float(g.graph["speed_mps"]),
        edges=edges, report=json.loads(g.graph.get("report", "{}")),
        edge_delay_s=delay if delay.any() else None, node_z=z,
        node_id=_ids(osmid),
        profile=g.graph.get("profile") or None,
    )
    if crs is not None and pyproj.CRS.from_user_input(crs) != graph_crs:
        net = _reproject(net, crs)
    prof, speed, avoid = resolve_profile(profile or net.profile, speed_mps, opts.avoid_steps)
    filtered = _refilter_saved(net, include_classes=opts.include_classes,
                               exclude_classes=opts.exclude_classes, avoid_steps=avoid,
                               speed_mps=speed, profile=prof,
                               min_component_share=opts.min_component_share,
                               crossing_delay_s=opts.crossing_delay_s)
    if filtered is not None:
        return filtered
    if profile is not None or speed_mps is not None:
        net = replace(net.with_speed(speed), profile=prof)
        net.report = dict(net.report, speed_mps=speed, profile=prof)
    return net


def _refilter_saved(net: WalkNetwork, *, include_classes: Collection[str] | None,
                    exclude_classes: Collection[str] | None, avoid_steps: bool,
                    speed_mps: float, profile: str | None, min_component_share: float,
                    crossing_delay_s: float | None) -> WalkNetwork | None:
    """A saved network with edges removed by class / steps, re-assembled; None if unchanged."""
    saved_delay = float(net.report.get("crossing_delay_s", 0.0) or 0.0)
    new_delay = saved_delay if crossing_delay_s is None else float(crossing_delay_s)
    classes = (net.edges["fclass"].astype(str).to_numpy(dtype=object) if net.edges is not None
               and "fclass" in net.edges else np.full(net.n_edges, "unknown", dtype=object))
    report = dict(net.report)
    if include_classes is not None or exclude_classes is not None:
        keep = class_filter(classes, net.edge_length_m, include_classes=include_classes,
                            exclude_classes=exclude_classes, avoid_steps=avoid_steps,
                            report=report, unit="edges")
    else:  # classes chosen when the file was built: only steps may be removed now
        keep = ~((classes == "steps") & avoid_steps)
        report["steps_avoided_edges"] = int((~keep).sum())
    if keep.all() and new_delay == saved_delay:
        return None
    if not keep.any():
        raise NetworkError(
            "No walkable edge is left in the saved network after the road-class filter. Check "
            "`network.include_classes` / `exclude_classes` / `avoid_steps`."
        )
    eu, ev = net.edge_u[keep], net.edge_v[keep]
    used = np.zeros(net.n_nodes, dtype=bool)
    used[eu] = used[ev] = True
    new_id = np.cumsum(used) - 1
    attrs = {k: net.edges[k].to_numpy(dtype=object)[keep] for k in ("fclass", "name")
             if net.edges is not None and k in net.edges}
    return assemble(
        np.c_[net.node_x, net.node_y][used], new_id[eu], new_id[ev],
        np.asarray(net.edges.geometry.values, dtype=object)[keep], attrs, crs=net.crs,
        speed_mps=speed_mps, profile=profile, min_component_share=min_component_share,
        crossing_delay_s=new_delay, report=report,
        node_z=None if net.node_z is None else net.node_z[used],
        node_id=None if net.node_id is None else net.node_id[used],
    )


def _ids(values: list[Any]) -> np.ndarray | None:
    """Saved node ids back as integers where they all are, else as strings."""
    if all(v is None for v in values):
        return None
    try:
        return np.array([int(v) for v in values], dtype=np.int64)
    except (TypeError, ValueError):
        return np.array(values, dtype=object)


def _reproject(net: WalkNetwork, crs: Any) -> WalkNetwork:
    """The same network in another CRS (lengths and times are kept)."""
    crs = pyproj.CRS.from_user_input(crs)
    tr = pyproj.Transformer.from_crs(net.crs, crs, always_xy=True)
    x, y = tr.transform(net.node_x, net.node_y)
    edges = net.edges.to_crs(crs) if net.edges is not None else None
    return replace(net, crs=crs, node_x=np.asarray(x), node_y=np.asarray(y), edges=edges)
