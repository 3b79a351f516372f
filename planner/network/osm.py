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

from planner._errors import NetworkError, PlannerWarning
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

#: Tag that pieces of a way cut by the extract's edge carry: the id of the way they come from.
_PIECE_TAG = "planner:way"
_OSM_EXTRA_TAGS = ("foot", "sidewalk", "layer", "service", "access", "area", "bridge", "tunnel",
                   _PIECE_TAG)


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


def _way_key(d: dict[str, Any]) -> str:
    """The OSM way an edge comes from (pieces of a clipped way carry their way's id)."""
    return str(d.get(_PIECE_TAG) or d.get("osmid"))


def _first_of_way_and_segment(edges: list) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the first edge of each OSM way, and of each segment of a way once.

    An unsimplified OSMnx graph holds one edge per segment between two nodes
    of a way, in both directions for two-way streets: counting every edge
    would report a 3-way trunk road as dozens of "trunk" items.
    """
    ways: set = set()
    segments: set = set()
    way = np.zeros(len(edges), dtype=bool)
    segment = np.zeros(len(edges), dtype=bool)
    for i, (u, v, _, d) in enumerate(edges):
        w = _way_key(d)
        way[i] = w not in ways
        ways.add(w)
        key = (w, min(u, v), max(u, v))
        segment[i] = key not in segments
        segments.add(key)
    return way, segment


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
    way, segment = _first_of_way_and_segment(edges)
    not_road = classes == "not_a_road"
    report["n_ways_in"] = int((way & ~not_road).sum())
    report["non_highway_ways"] = int((not_road & way).sum())
    keep = class_filter(classes, lengths, include_classes=include_classes,
                        exclude_classes=exclude_classes, avoid_steps=avoid_steps, report=report,
                        count=way & ~not_road, measure=segment & ~not_road, unit="ways")
    dropped = ~keep & segment & ~not_road
    report["excluded_segments"] = {
        str(k): int(v) for k, v in zip(*np.unique(classes[dropped].astype(str),
                                                   return_counts=True), strict=True)}
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
            no_access += int(way[i])
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


def _way_pieces(refs: list[int], present: Any) -> list[list[int]]:
    """Runs of at least two consecutive node refs that are in the file (``present``)."""
    pieces: list[list[int]] = []
    run: list[int] = []
    for r in refs:
        if r in present:
            run.append(r)
            continue
        if len(run) >= 2:
            pieces.append(run)
        run = []
    if len(run) >= 2:
        pieces.append(run)
    return pieces


def _write_walk_xml(src: Path, xml: Path, *, highways_only: bool) -> dict[str, int]:
    """Write an extract's ways (only ``highway`` ones if asked) and their nodes to .osm XML.

    A PBF or XML cut by a bounding box has ways that reference nodes missing
    from the file (OSMnx then fails with "Some edges missing nodes, possibly
    due to input data clipping issue").  Here each such way is cut at its
    missing nodes and the runs of two or more nodes that are in the file are
    kept as pieces (never joined across a gap: a straight line over the
    missing part would invent a street); pieces after the first get new
    negative ids and carry the way's id in the ``planner:way`` tag so the
    report counts ways as ways.  Three passes with pyosmium: the ways' node
    references, the nodes, the ways.

    Returns counts of highway ways: ``ways_clipped`` (cut, pieces kept),
    ``clip_pieces`` (pieces written for them), ``ways_clipped_dropped``
    (fewer than two of their nodes in the file) and ``node_refs_missing``.
    """
    import osmium

    def ways():
        fp = osmium.FileProcessor(str(src), osmium.osm.WAY)
        return fp.with_filter(osmium.filter.KeyFilter("highway")) if highways_only else fp

    needed = osmium.index.IdSet()
    for w in ways():
        for n in w.nodes:
            needed.set(n.ref)
    present = osmium.index.IdSet()
    stats = {"ways_clipped": 0, "clip_pieces": 0, "ways_clipped_dropped": 0,
             "node_refs_missing": 0}
    new_id = 0
    with osmium.SimpleWriter(str(xml), overwrite=True) as writer:
        for node in osmium.FileProcessor(str(src), osmium.osm.NODE):
            if node.id in needed:
                present.set(node.id)
                writer.add(node)
        for w in ways():
            refs = [n.ref for n in w.nodes]
            missing = sum(r not in present for r in refs)
            if not missing:
                writer.add(w)
                continue
            pieces = _way_pieces(refs, present)
            highway = "highway" in w.tags
            if highway:
                stats["node_refs_missing"] += missing
                stats["ways_clipped" if pieces else "ways_clipped_dropped"] += 1
                stats["clip_pieces"] += len(pieces)
            tags = dict(w.tags)
            for k, piece in enumerate(pieces):
                if k == 0:
                    writer.add(w.replace(nodes=piece))
                else:
                    new_id -= 1
                    writer.add(w.replace(id=new_id, nodes=piece,
                                         tags={**tags, _PIECE_TAG: str(w.id)}))
    return stats


def _warn_clipped(path: Path, stats: dict[str, int]) -> None:
    """Say that an extract was cut by a bounding box, and what was kept."""
    if not stats["ways_clipped"] and not stats["ways_clipped_dropped"]:
        return
    n = stats["ways_clipped"] + stats["ways_clipped_dropped"]
    warnings.warn(PlannerWarning(
        f"OSM file {path.name} is clipped: {n} street way(s) reference "
        f"{stats['node_refs_missing']} node(s) that are not in the file (cut at the edge of "
        f"the extract). {stats['ways_clipped']} way(s) were cut into the {stats['clip_pieces']} "
        f"piece(s) inside the file, which are kept; {stats['ways_clipped_dropped']} way(s) with "
        "fewer than two nodes inside were dropped. Streets stop at the extract's edge, so walks "
        "near it may be longer than on the ground: use an extract that covers the study area "
        "plus a margin of at least the walking cut-off (e.g. `osmium extract --strategy "
        "complete_ways`, or a larger Geofabrik/BBBike extract).",
        f"OSM 文件 {path.name} 被裁切过：{n} 条道路引用了文件中没有的 "
        f"{stats['node_refs_missing']} 个节点（在数据范围边缘被截断）。其中 {stats['ways_clipped']} "
        f"条道路已切成文件内的 {stats['clip_pieces']} 段并保留；{stats['ways_clipped_dropped']} "
        "条在文件内不足两个节点的道路已删除。道路在数据范围边缘中断，边缘附近的步行路程可能比实际更长："
        "请使用覆盖整个研究范围、并外扩至少一个步行时间上限距离的数据（如 `osmium extract "
        "--strategy complete_ways`，或更大范围的 Geofabrik/BBBike 数据）。"),
        stacklevel=3,
    )


def from_osm_file(
    path: str | os.PathLike,
    *,
    options: NetworkOptions | None = None,
    **overrides: Unpack[NetworkOptionFields],
) -> WalkNetwork:
    """Build a walk network from an OSM extract (.osm XML or .osm.pbf), offline.

    The file is rewritten with pyosmium (a PBF reduced to its ``highway``
    ways and their nodes) and read with OSMnx (``graph_from_xml``).  An
    extract cut by a bounding box (ways that reference nodes missing from
    the file) is read too: such ways are cut at their missing nodes and the
    pieces inside are kept, with a `PlannerWarning` and the counts in the
    report (``ways_clipped``, ``clip_pieces``, ``ways_clipped_dropped``).  Ways are filtered by
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
    pbf = name.endswith(".pbf")
    if not pbf and not name.endswith((".osm", ".xml", ".osm.xml")):
        raise NetworkError(
            f"{path.name} is not an OSM extract. Give a .osm (XML) or .osm.pbf file, or use "
            "`source: lines` for a road centre-line layer."
        )
    with tempfile.TemporaryDirectory() as tmp:
        xml = Path(tmp) / "ways.osm"
        try:
            # a PBF is reduced to its highways; XML keeps every way, as OSMnx reads it
            stats = _write_walk_xml(path, xml, highways_only=pbf)
        except RuntimeError as exc:
            raise NetworkError(f"Cannot read OSM file {path}: {exc}") from None
        if stats["ways_clipped"] or stats["ways_clipped_dropped"]:
            report.update(ways_clipped=stats["ways_clipped"], clip_pieces=stats["clip_pieces"],
                          ways_clipped_dropped=stats["ways_clipped_dropped"])
            _warn_clipped(path, stats)
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
