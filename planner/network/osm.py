"""Walk networks from OpenStreetMap: an OSMnx graph, an extract file or a download.

`from_osmnx_graph` filters a graph by road class and foot access and
assembles it; `from_osm_file` reads a .osm / .osm.pbf extract offline (a PBF
is reduced to its highways with pyosmium first); `download_osm` fetches a
place or bounding box through OSMnx.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyproj

from planner._errors import NetworkError
from planner.network.assemble import assemble
from planner.network.graph import WalkNetwork
from planner.network.noding import drawn_from_v
from planner.network.options import NetworkOptions, resolve_options
from planner.network.profiles import (
    class_filter,
    normalise_classes,
    resolve_profile,
    walkable_set,
)

if TYPE_CHECKING:
    import networkx as nx
    from typing_extensions import Unpack

    from planner.network.options import NetworkOptionFields

__all__ = ["download_osm", "from_osm_file", "from_osmnx_graph"]

_OSM_EXTRA_TAGS = ("foot", "sidewalk", "layer", "service", "access", "area", "bridge", "tunnel")


class _OsmTags:
    """Context manager that makes OSMnx keep the way tags the walk filter needs."""

    def __enter__(self) -> _OsmTags:
        import osmnx as ox

        self._saved = list(ox.settings.useful_tags_way)
        ox.settings.useful_tags_way = list(dict.fromkeys(self._saved + list(_OSM_EXTRA_TAGS)))
        return self

    def __exit__(self, *exc: object) -> bool:
        import osmnx as ox

        ox.settings.useful_tags_way = self._saved
        return False


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) and value else value


def _filter_osm_graph(G: nx.MultiDiGraph, *, include_classes: Collection[str] | None,
                      exclude_classes: Collection[str] | None, avoid_steps: bool,
                      report: dict[str, Any]) -> nx.MultiDiGraph:
    """Remove edges people cannot walk on (road class, foot=no, private access, areas)."""
    edges = list(G.edges(keys=True, data=True))
    if not edges:
        raise NetworkError("The OSM data has no ways (no `highway` lines) to build a network from.")
    hw = [d.get("highway") for _, _, _, d in edges]
    classes = normalise_classes([_first(h) if h is not None else "not_a_road" for h in hw])
    lengths = np.array([float(d.get("length", 0.0)) for _, _, _, d in edges])
    mixed = [isinstance(h, list) for h in hw]
    # count each way's segment once, whichever directions the graph holds
    seen: set = set()
    count = np.zeros(len(edges), dtype=bool)
    for i, (u, v, _, d) in enumerate(edges):
        key = (str(d.get("osmid")), min(u, v), max(u, v))
        count[i] = key not in seen
        seen.add(key)
    not_road = classes == "not_a_road"
    report["non_highway_ways"] = int((not_road & count).sum())
    count &= ~not_road
    keep = class_filter(classes, lengths, include_classes=include_classes,
                        exclude_classes=exclude_classes, avoid_steps=avoid_steps, report=report,
                        count=count)
    walk = walkable_set(include_classes, exclude_classes, avoid_steps)
    no_access = 0
    for i, (_, _, _, d) in enumerate(edges):
        if not keep[i]:
            continue
        if mixed[i] and not set(normalise_classes(hw[i])) <= walk:
            keep[i] = False
            continue
        foot = str(_first(d.get("foot", ""))).lower()
        access = str(_first(d.get("access", ""))).lower()
        if (foot in ("no", "private") or str(_first(d.get("area", ""))).lower() == "yes"
                or (access in ("no", "private") and foot not in ("yes", "designated", "permissive"))
                or str(_first(d.get("service", ""))).lower() == "private"):
            keep[i] = False
            no_access += int(count[i])
    report["excluded_no_foot_access"] = no_access
    H = G.copy()
    H.remove_edges_from([(u, v, k) for (u, v, k, _), ok in zip(edges, keep, strict=False)
                         if not ok])
    H.remove_nodes_from([n for n, deg in dict(H.degree()).items() if deg == 0])
    if H.number_of_edges() == 0:
        raise NetworkError(
            "No walkable way is left in the OSM data after the road-class filter. Check "
            "`network.include_classes` / `exclude_classes`."
        )
    return H


def from_osmnx_graph(
    G: nx.MultiDiGraph,
    *,
    options: NetworkOptions | None = None,
    _report: dict[str, Any] | None = None,
    **overrides: Unpack[NetworkOptionFields],
) -> WalkNetwork:
    """Build a walk network from an OSMnx graph (projected or not).

    The graph is filtered by road class (see `from_lines`) and foot access,
    projected to ``crs`` (default: the local UTM zone), made undirected
    (one-way streets are walked both ways) and stored as arrays.  Node
    ``elevation`` attributes, when present, give a Tobler slope penalty.

    Parameters
    ----------
    G
        A `networkx.MultiDiGraph` as OSMnx builds it (nodes with ``x``/``y``,
        edges with ``highway`` and optional ``geometry``).
    options
        How to build it (see `NetworkOptions`; default ``NetworkOptions()``).
        Its ``crs`` is the metric CRS of the result (default the graph's own
        if projected, else the local UTM zone).
    **overrides
        Fields of `NetworkOptions` as keywords; they override ``options``.

    Returns
    -------
    WalkNetwork
        With ``node_id`` holding the OSM node ids.
    """
    import osmnx as ox
    import shapely

    opts = resolve_options(options, overrides, caller="from_osmnx_graph")
    profile, speed, avoid = resolve_profile(opts.profile, opts.speed_mps, opts.avoid_steps)
    report: dict[str, Any] = dict(_report or {"source": "osmnx"})
    if G.number_of_nodes() == 0:
        raise NetworkError("The OSMnx graph is empty.")
    G = _filter_osm_graph(G, include_classes=opts.include_classes,
                          exclude_classes=opts.exclude_classes, avoid_steps=avoid, report=report)
    if not G.graph.get("simplified", False):
        # after filtering, so a simplified edge never mixes a walkable and an excluded way
        G = ox.simplify_graph(G, edge_attrs_differ=["highway"])
    graph_crs = pyproj.CRS.from_user_input(G.graph.get("crs", "EPSG:4326"))
    crs = opts.crs
    if crs is None:
        if graph_crs.is_geographic:
            from planner.coords import metric_crs

            xs = [d["x"] for _, d in G.nodes(data=True)]
            ys = [d["y"] for _, d in G.nodes(data=True)]
            crs = metric_crs([min(xs), max(xs)], [min(ys), max(ys)])
        else:
            crs = graph_crs
    crs = pyproj.CRS.from_user_input(crs)
    if crs != graph_crs:
        G = ox.project_graph(G, to_crs=crs)
    if G.is_directed():
        G = ox.convert.to_undirected(G)
    nodes, edges = ox.graph_to_gdfs(G, fill_edge_geometry=True)
    ids = nodes.index.to_numpy()
    pos = {k: i for i, k in enumerate(ids.tolist())}
    uu = np.array([pos[k] for k in edges.index.get_level_values(0).tolist()], dtype=np.int64)
    vv = np.array([pos[k] for k in edges.index.get_level_values(1).tolist()], dtype=np.int64)
    node_xy = np.c_[nodes["x"].to_numpy(float), nodes["y"].to_numpy(float)]
    geoms = np.asarray(edges.geometry.values, dtype=object)
    flip = drawn_from_v(geoms, node_xy, uu, vv)
    geoms[flip] = shapely.reverse(geoms[flip])
    hw = edges["highway"] if "highway" in edges else [None] * len(edges)
    fclass = normalise_classes([_first(h) for h in hw])
    names = np.array(["" if (n is None or (isinstance(n, float) and np.isnan(n)))
                      else str(_first(n)) for n in (edges["name"] if "name" in edges
                                                     else [None] * len(edges))], dtype=object)
    node_z = nodes["elevation"].to_numpy(float) if "elevation" in nodes else None
    return assemble(node_xy, uu, vv, geoms, {"fclass": fclass, "name": names}, crs=crs,
                    speed_mps=speed, profile=profile,
                    min_component_share=opts.min_component_share,
                    crossing_delay_s=opts.crossing_delay_s, report=report, node_z=node_z,
                    node_id=ids)


def _pbf_to_xml(pbf: Path, xml: Path) -> None:
    """Write the highway ways of a .osm.pbf, with their nodes, to an .osm XML file (pyosmium)."""
    import osmium

    with osmium.BackReferenceWriter(str(xml), ref_src=str(pbf), overwrite=True) as writer:
        for obj in osmium.FileProcessor(str(pbf), osmium.osm.WAY).with_filter(
                osmium.filter.KeyFilter("highway")):
            writer.add(obj)


def from_osm_file(
    path: str | os.PathLike,
    *,
    options: NetworkOptions | None = None,
    **overrides: Unpack[NetworkOptionFields],
) -> WalkNetwork:
    """Build a walk network from an OSM extract (.osm XML or .osm.pbf), offline.

    XML is read with OSMnx (``graph_from_xml``); a PBF is first reduced with
    pyosmium to its ``highway`` ways and their nodes.  Ways are filtered by
    class and foot access before OSMnx simplifies the graph (so a simplified
    edge never mixes a walkable and an excluded way).

    Parameters
    ----------
    path
        The ``.osm`` / ``.xml`` / ``.osm.pbf`` file (e.g. a Geofabrik extract).
    options, **overrides
        How to build it (see `NetworkOptions`), as in `from_osmnx_graph`.
    """
    import tempfile

    import osmnx as ox

    opts = resolve_options(options, overrides, caller="from_osm_file")
    path = Path(path)
    if not path.is_file():
        raise NetworkError(f"OSM file {path} does not exist. Check `network.path`.")
    name = path.name.lower()
    resolve_profile(opts.profile, opts.speed_mps, opts.avoid_steps)  # fail early if bad
    report: dict[str, Any] = {"source": "osm_file", "path": str(path)}
    with tempfile.TemporaryDirectory() as tmp:
        xml = path
        if name.endswith(".pbf"):
            xml = Path(tmp) / "highways.osm"
            try:
                _pbf_to_xml(path, xml)
            except RuntimeError as exc:
                raise NetworkError(f"Cannot read OSM PBF file {path}: {exc}") from None
        elif not name.endswith((".osm", ".xml", ".osm.xml")):
            raise NetworkError(
                f"{path.name} is not an OSM extract. Give a .osm (XML) or .osm.pbf file, or use "
                "`source: lines` for a road centre-line layer."
            )
        try:
            with _OsmTags(), warnings.catch_warnings():
                warnings.filterwarnings("ignore", category=UserWarning, module="osmnx")
                G = ox.graph_from_xml(xml, bidirectional=True, simplify=False, retain_all=True)
        except Exception as exc:  # OSMnx raises plain exceptions on bad XML / no data
            raise NetworkError(f"Cannot build a graph from OSM file {path}: {exc}") from None
    return from_osmnx_graph(G, options=opts, _report=report)


def download_osm(
    *,
    options: NetworkOptions | None = None,
    place: str | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    **overrides: Unpack[NetworkOptionFields],
) -> WalkNetwork:
    """Download the walk network of a place or bounding box through OSMnx (needs internet).

    Parameters
    ----------
    place
        A place name OSMnx can geocode (e.g. ``"碑林区, 西安市, 陕西省, 中国"``).
    bbox
        ``(minx, miny, maxx, maxy)`` in WGS-84 degrees (lon/lat).
    options, **overrides
        How to build it (see `NetworkOptions`), as in `from_osmnx_graph`.

    Raises
    ------
    NetworkError
        Offline, or when the place cannot be found.  Without internet use an
        extract file (`from_osm_file`) instead.
    """
    import osmnx as ox

    opts = resolve_options(options, overrides, caller="download_osm")
    if (place is None) == (bbox is None):
        raise NetworkError("Give exactly one of `place` or `bbox` to download OSM data.")
    if bbox is not None:
        bbox = tuple(float(v) for v in bbox)
        if len(bbox) != 4 or not (bbox[0] < bbox[2] and bbox[1] < bbox[3]):
            raise NetworkError(
                f"bbox {bbox!r} must be (minx, miny, maxx, maxy) = (west lon, south lat, east "
                "lon, north lat) with min < max."
            )
    resolve_profile(opts.profile, opts.speed_mps, opts.avoid_steps)  # fail early if bad
    report: dict[str, Any] = {"source": "osmnx_download", "place": place,
                              "bbox": list(bbox) if bbox else None}
    try:
        with _OsmTags():
            if place is not None:
                G = ox.graph_from_place(place, network_type="all", simplify=False,
                                        retain_all=True)
            else:
                G = ox.graph_from_bbox(bbox, network_type="all", simplify=False,
                                       retain_all=True)
    except Exception as exc:  # requests / OSMnx errors: say what to do instead
        raise NetworkError(
            f"Could not download OSM data for {place or bbox!r} ({type(exc).__name__}: {exc}). "
            "This needs internet access to Overpass/Nominatim. Offline, download an extract "
            "(.osm.pbf, e.g. from Geofabrik) elsewhere and use `source: osm` with its path."
        ) from None
    return from_osmnx_graph(G, options=opts, _report=report)
