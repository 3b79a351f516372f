"""Faces of the network's plane embedding, and the service areas built on them."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

from planner import access
from planner.access import areas, routing, snap_points
from planner.access import faces as _faces
from planner.network import WalkNetwork
from tests.test_access import CRS, _reference_service_area, assert_same_area, random_net


def grid(nx_: int, ny: int, *, step: float = 100.0, jitter: float = 0.0, drop: float = 0.0,
         seed: int = 0) -> WalkNetwork:
    """Nodes ``i * ny + j`` at (i, j) * step (+ jitter); edges to the right and up."""
    rng = np.random.default_rng(seed)
    ii, jj = np.meshgrid(np.arange(nx_), np.arange(ny), indexing="ij")
    x = (ii * step + rng.uniform(-jitter, jitter, ii.shape)).ravel()
    y = (jj * step + rng.uniform(-jitter, jitter, ii.shape)).ravel()
    idx = ii * ny + jj
    u = np.concatenate([idx[:-1, :].ravel(), idx[:, :-1].ravel()])
    v = np.concatenate([idx[1:, :].ravel(), idx[:, 1:].ravel()])
    keep = rng.random(u.size) >= drop
    return WalkNetwork.from_edges(x, y, u[keep], v[keep], crs=CRS)


def add_edges(net: WalkNetwork, xy_new, uv_new, lines=None) -> WalkNetwork:
    """``net`` with extra nodes ``xy_new`` (numbered after the old ones) and edges."""
    x = np.r_[net.node_x, [p[0] for p in xy_new]]
    y = np.r_[net.node_y, [p[1] for p in xy_new]]
    u = np.r_[net.edge_u, [a for a, _ in uv_new]]
    v = np.r_[net.edge_v, [b for _, b in uv_new]]
    if lines is None:
        return WalkNetwork.from_edges(x, y, u, v, crs=CRS)
    geom = list(net.edges.geometry.values) + list(lines)
    length = shapely.length(np.array(geom, dtype=object))
    edges = gpd.GeoDataFrame({"u": u, "v": v, "length_m": length}, geometry=geom, crs=CRS)
    return WalkNetwork.from_edges(x, y, u, v, crs=CRS, edge_length_m=length, edges=edges)


def face_of(faces, x: float, y: float) -> int:
    """The clean face whose polygon contains the point, or -1."""
    for f in np.flatnonzero(faces.clean):
        if shapely.contains_xy(faces.polygon[f], x, y):
            return int(f)
    return -1


def edge_between(net, a: int, b: int) -> int:
    hit = np.flatnonzero(((net.edge_u == a) & (net.edge_v == b))
                         | ((net.edge_u == b) & (net.edge_v == a)))
    return int(hit[0])


# ----------------------------------------------------------------------------- faces
def test_faces_of_a_grid_are_its_squares():
    net = grid(4, 3)  # 3 x 2 squares of 100 m
    faces = _faces.planar_faces(net)
    assert faces.n_faces == 7  # six squares and the outside
    assert faces.clean.sum() == 6
    polys = faces.polygon[faces.clean]
    assert np.allclose(shapely.area(polys), 10_000.0)
    want = [shapely.box(i * 100, j * 100, i * 100 + 100, j * 100 + 100)
            for i in range(3) for j in range(2)]
    for w in want:
        assert sum(shapely.equals(p, w) for p in polys) == 1
    # each inner edge separates two squares, each border edge a square and the outside
    ef = faces.edge_face
    outside = np.flatnonzero(~faces.clean)[0]
    border = (ef == outside).any(1)
    assert border.sum() == 10 and (ef[~border, 0] != ef[~border, 1]).all()
    # the square left of 0 -> 3 (x from 0 to 100 at y = 0) is the one above it
    e = edge_between(net, 0, 3)
    side = 0 if net.edge_u[e] == 0 else 1
    assert shapely.equals(faces.polygon[ef[e, side]], shapely.box(0, 0, 100, 100))
    assert ef[e, 1 - side] == outside
    assert faces.size[outside] == 10


def test_faces_match_shapely_polygonize_on_a_random_planar_net():
    net = random_net(3, n=400, keep=0.6)
    faces = _faces.planar_faces(net)
    lines = net.edges.geometry.values
    ref = shapely.get_parts(shapely.polygonize(lines))
    mine = faces.polygon[faces.clean]
    # every clean face is one of polygonize's polygons, exactly
    tree = shapely.STRtree(ref)
    i, j = tree.query(shapely.point_on_surface(mine), predicate="within")
    assert len(i) == len(mine)
    assert shapely.equals(mine[i], ref[j]).all()
    # and the faces polygonize finds that are not clean hold a dead end (an edge
    # met twice on the cycle), which polygonize drops from the ring
    rest = np.setdiff1d(np.arange(len(ref)), j)
    twice = faces.edge_face[:, 0] == faces.edge_face[:, 1]
    dangles = shapely.STRtree(ref[rest]).query(lines[twice], predicate="intersects")
    assert set(dangles[1]) == set(range(len(rest)))


def test_a_dead_end_inside_a_block_keeps_it_out():
    base = grid(3, 3)  # node 4 at (100, 100) is the centre
    net = add_edges(base, [(150.0, 150.0)], [(4, 9)])
    faces = _faces.planar_faces(net)
    assert face_of(faces, 150, 120) == -1  # the square with the dead end
    assert face_of(faces, 50, 50) >= 0 and face_of(faces, 150, 50) >= 0
    assert faces.clean.sum() == 3


def test_a_street_crossing_without_a_node_keeps_out_the_blocks_it_crosses():
    base = grid(3, 2)  # two squares side by side, the middle street x = 100
    net = add_edges(base, [(50.0, 50.0), (150.0, 60.0)], [(6, 7)])  # a bridge over x = 100
    faces = _faces.planar_faces(net)
    assert faces.clean.sum() == 0
    # the same bridge drawn so that it stays in one square keeps the other clean
    net = add_edges(base, [(20.0, 50.0), (80.0, 60.0)], [(6, 7)])
    faces = _faces.planar_faces(net)
    assert face_of(faces, 150, 50) >= 0
    # the island is a face of its own; the square around it is clean (islands are
    # not reached from the square's streets, see the service-area test below)
    assert faces.clean.sum() == 2


def test_a_loop_hanging_into_a_block_keeps_it_out():
    base = grid(3, 3)
    loop = shapely.LineString([(100, 100), (160, 130), (130, 160), (100, 100)])
    net = add_edges(base, [], [(4, 4)], lines=[loop])
    faces = _faces.planar_faces(net)
    assert face_of(faces, 180, 110) == -1  # the pinched square
    assert face_of(faces, 50, 50) >= 0
    # the loop's own inside is a clean block, and so are the other squares
    assert face_of(faces, 130, 130) >= 0
    assert faces.clean.sum() == 4


def test_a_polyline_crossing_a_neighbour_at_a_shared_node_is_found():
    base = grid(3, 2)
    # from node 0 (0, 0) a street that bends over the street 0 -> 2 (x = 0 .. 100, y = 0)
    bent = shapely.LineString([(0, 0), (60, 40), (60, -30), (200, -30)])
    net = add_edges(base, [(200.0, -30.0)], [(0, 6)], lines=[bent])
    faces = _faces.planar_faces(net)
    assert face_of(faces, 50, 50) == -1  # the square the bent street enters
    assert face_of(faces, 150, 50) >= 0


def test_edge_ends_off_their_nodes_are_not_taken():
    base = grid(3, 2)
    geom = list(base.edges.geometry.values)
    e = edge_between(base, 1, 3)  # (0, 100) - (100, 100)
    geom[e] = shapely.LineString([(0, 100), (100.5, 100)])
    edges = base.edges.set_geometry(gpd.GeoSeries(geom, crs=CRS))
    net = WalkNetwork.from_edges(base.node_x, base.node_y, base.edge_u, base.edge_v, crs=CRS,
                                 edges=edges)
    faces = _faces.planar_faces(net)
    assert face_of(faces, 50, 50) == -1
    assert face_of(faces, 150, 50) >= 0


def test_faces_built_in_threads_equal_one_thread(monkeypatch):
    # large networks split the STRtree query and the ring building in halves
    net = grid(12, 12, step=50.0, jitter=10.0, drop=0.15, seed=4)
    one = _faces.planar_faces(net)
    net2 = grid(12, 12, step=50.0, jitter=10.0, drop=0.15, seed=4)
    monkeypatch.setattr(_faces, "_THREAD_MIN", 1)
    two = _faces.planar_faces(net2)
    assert np.array_equal(one.edge_face, two.edge_face)
    assert np.array_equal(one.clean, two.clean) and one.clean.sum() > 50
    ok = np.flatnonzero(one.clean)
    assert shapely.equals_exact(one.polygon[ok], two.polygon[ok]).all()


def test_eroded_cores_are_cached_and_empty_for_narrow_blocks():
    net = grid(3, 2, step=100.0)
    faces = _faces.planar_faces(net)
    which = np.flatnonzero(faces.clean)
    h = _faces.eroded(net, faces, which, 30.0, 4)
    # the blocks are the squares [0, 100] x [0, 100] and [100, 200] x [0, 100]; 30 m in
    # from every side leaves the squares [30, 70] x [30, 70] and [130, 170] x [30, 70]
    want = [shapely.box(30, 30, 70, 70), shapely.box(130, 30, 170, 70)]
    assert len(h) == 2 and not shapely.equals(h[0], h[1])
    for f, g in zip(which, h, strict=True):  # one core per block, each inside its own block
        assert sum(bool(shapely.equals(g, w)) for w in want) == 1
        assert shapely.contains(faces.polygon[f], g)
    assert np.allclose(shapely.area(h), 40.0 * 40.0)
    assert _faces.eroded(net, faces, which, 30.0, 4)[0] is h[0]  # cached
    assert all(g is None for g in _faces.eroded(net, faces, which, 50.0, 4))


# ----------------------------------------------------------------------------- service areas
def _check_against_reference(net, fac, minutes, buffer_m, quad_segs=16, **kw):
    sa = access.service_areas(net, fac, minutes=minutes, buffer_m=buffer_m,
                              quad_segs=quad_segs, **kw)
    for i in range(len(fac)):
        for j, m in enumerate(minutes):
            got = sa.geometry.iloc[len(minutes) * i + j]
            ref = _reference_service_area(net, fac, i, m * 60.0, buffer_m, quad_segs)
            assert shapely.is_valid(got)
            assert_same_area(got, ref, buffer_m, quad_segs)
    return sa


@pytest.mark.parametrize("blocks", [True, False])
def test_service_areas_on_a_dense_jittered_grid_equal_the_band_union(monkeypatch, blocks):
    # blocks of 30-70 m with 25 m bands: many tiny eroded cores to punch; without
    # blocks (few polygons on a large network) every street is banded
    monkeypatch.setattr(areas, "_BLOCKS_MIN_SHARE", 0.0 if blocks else 1e9)
    net = grid(16, 16, step=50.0, jitter=10.0, drop=0.1, seed=2)
    rng = np.random.default_rng(1)
    fac = snap_points(net, rng.uniform(100, 650, (4, 2)), max_snap_m=1e9)
    sa = _check_against_reference(net, fac, (3.0, 6.0, 10.0), 25.0)
    assert sum(shapely.get_num_interior_rings(sa.geometry.values)) > 10
    assert ("planar_faces" in net.__dict__.get("_planner_cache", {})) == blocks


def test_clipper_offset_union_of_separate_parts_and_an_island_equals_geos():
    # a block ring with a 100 m hole, a street far away and one inside the hole:
    # three parts, one of them an island in the grown ring's hole
    base = shapely.Polygon([(0, 0), (300, 0), (300, 300), (0, 300)],
                           [[(100, 100), (200, 100), (200, 200), (100, 200)]])
    lines = [shapely.LineString([(1000, 0), (1100, 5), (1150, 60)]),
             shapely.LineString([(140, 150), (160, 150)])]
    xy, idx = shapely.get_coordinates(lines, return_index=True)
    got = areas._offset_union(base, xy, idx, 10.0, 16)
    ref = shapely.union_all([shapely.buffer(base, 10.0, quad_segs=16),
                             *shapely.buffer(lines, 10.0, quad_segs=16)])
    assert got.geom_type == "MultiPolygon" and len(got.geoms) == 3 and shapely.is_valid(got)
    assert_same_area(got, ref, 10.0, 16)
    # the rim streets alone, and nothing at all
    alone = areas._offset_union(None, xy, idx, 10.0, 16)
    assert_same_area(alone, shapely.union_all(shapely.buffer(lines, 10.0, quad_segs=16)), 10.0, 16)
    assert areas._offset_union(None, np.zeros((0, 2)), np.zeros(0, np.int64), 10.0, 16).is_empty


def test_service_areas_route_chunks_of_nearby_facilities_on_a_part_of_the_network(monkeypatch):
    # chunks of two facilities: each routes on the nodes within reach of its pair
    monkeypatch.setattr(routing, "_MEMORY_BYTES", 8 * 2 * 1000)
    net = grid(30, 30, step=60.0, jitter=12.0, drop=0.1, seed=5)
    rng = np.random.default_rng(6)
    fac = snap_points(net, rng.uniform(0, 1700, (6, 2)), max_snap_m=1e9)
    calls = []
    real = areas._subgraph
    monkeypatch.setattr(areas, "_subgraph",
                        lambda a, keep: calls.append(keep.size) or real(a, keep))
    _check_against_reference(net, fac, (2.0, 5.0), 25.0, workers=1)
    assert calls and max(calls) < net.n_nodes


def test_service_areas_around_a_bridge_and_an_island_equal_the_band_union():
    base = grid(6, 6, step=100.0, jitter=5.0, seed=4)
    n = base.n_nodes
    # a bridge over two blocks (no node where it crosses), and an island street
    # loop inside another block
    net = add_edges(base, [(30.0, 150.0), (270.0, 160.0), (320, 320), (380, 320), (350, 380)],
                    [(n, n + 1), (n + 2, n + 3), (n + 3, n + 4), (n + 4, n + 2), (n, 0)])
    fac = snap_points(net, np.array([[120.0, 140.0], [350.0, 330.0], [250.0, 260.0]]),
                      max_snap_m=1e9)
    _check_against_reference(net, fac, (2.0, 5.0, 9.0), 30.0)


def test_service_areas_from_threads_equal_the_single_thread_result(monkeypatch):
    import threading

    net = grid(20, 20, step=60.0, jitter=12.0, drop=0.1, seed=8)
    rng = np.random.default_rng(3)
    fac = snap_points(net, rng.uniform(0, 1100, (9, 2)), max_snap_m=1e9)
    one = access.service_areas(net, fac, workers=1)
    # chunks of two facilities, so that the pool has work for both threads
    monkeypatch.setattr(routing, "_MEMORY_BYTES", 8 * 2 * 2 * (net.n_nodes + 9))
    seen = set()
    real = areas._assemble
    monkeypatch.setattr(areas, "_assemble",
                        lambda *a, **k: seen.add(threading.get_ident()) or real(*a, **k))
    two = access.service_areas(net, fac, workers=2)
    assert len(seen) >= 2
    for g1, g2 in zip(one.geometry.values, two.geometry.values, strict=True):
        assert shapely.symmetric_difference(g1, g2).area < 1e-9 * g1.area
    with pytest.raises(ValueError, match="workers"):
        access.service_areas(net, fac, workers=0)


def test_service_areas_with_clipper_in_worker_processes_equal_one_thread(monkeypatch):
    net = grid(20, 20, step=60.0, jitter=12.0, drop=0.1, seed=8)
    rng = np.random.default_rng(3)
    fac = snap_points(net, rng.uniform(0, 1100, (9, 2)), max_snap_m=1e9)
    one = access.service_areas(net, fac, workers=1)
    # from 1 polygon on (2,000 by default), with chunks of two facilities
    monkeypatch.setattr(areas, "_PROCESS_MIN_POLYGONS", 1)
    monkeypatch.setattr(routing, "_MEMORY_BYTES", 8 * 2 * 2 * (net.n_nodes + 9))
    pools = []
    real = areas._clip_pool

    def spy(n):
        pools.append(n)
        return real(n)

    monkeypatch.setattr(areas, "_clip_pool", spy)
    here = []  # Clipper jobs run in this process (none: all went to the workers)
    clip = areas._clip_groups
    monkeypatch.setattr(areas, "_clip_groups", lambda job: here.append(1) or clip(job))
    two = access.service_areas(net, fac, workers=2)
    assert pools == [2] and not here
    # the same Clipper code on the same integer input: the very same polygons
    assert shapely.to_wkb(one.geometry.values).tolist() == shapely.to_wkb(
        two.geometry.values).tolist()


# ----------------------------------------------------------------------------- Xi'an
@pytest.fixture(scope="module")
def xian_net(xian_dir):
    from planner import network
    from planner.layers import read_layer

    return network.from_lines(read_layer(xian_dir / "xian_road.kml", kind="lines"))


@pytest.mark.xian
def test_xian_clean_blocks_have_no_street_inside(xian_net):
    """Independent check with GEOS predicates: no street runs into a block taken whole."""
    faces = _faces.planar_faces(xian_net)
    lines = xian_net.edges.geometry.values
    clean = faces.polygon[faces.clean]
    assert len(clean) > 2000
    inside = shapely.STRtree(clean).query(lines, predicate="within")
    crossing = shapely.STRtree(clean).query(lines, predicate="crosses")
    assert inside.shape[1] == 0 and crossing.shape[1] == 0
    # the bridges and tunnels over blocks keep some blocks out
    bounded = shapely.get_parts(shapely.polygonize(lines))
    assert len(clean) < len(bounded)


@pytest.mark.xian
def test_xian_service_areas_equal_the_band_union(xian_net):
    rng = np.random.default_rng(12)
    i = rng.choice(xian_net.n_nodes, 3, replace=False)
    xy = np.c_[xian_net.node_x[i], xian_net.node_y[i]] + rng.uniform(-40, 40, (3, 2))
    fac = snap_points(xian_net, xy, max_snap_m=1e9)
    sa = _check_against_reference(xian_net, fac, (5.0, 15.0), 25.0)
    assert "planar_faces" in xian_net.__dict__.get("_planner_cache", {})
    assert sa.geometry.area.min() > 0
