"""Checks on the user's data (`planner.checks`): datum, study area, stacked geocodes.

Every case is built from the generated demo district or from generated
data with a known truth: the demo register (GCJ-02, as from AMap) read in
the wrong datum or shifted the wrong way, the register with copies 20 km
away (a city-wide register), a stacked cluster added to it, a sparse
street comb with a register on its streets.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely
from click.testing import CliRunner

import planner
from planner import checks as CK
from planner import coords, plots, report
from planner._errors import PlannerWarning
from planner.access import service_areas, snap_points
from planner.cli import cli
from planner.demo import demo_yaml
from planner.layers import read_layer
from planner.network import WalkNetwork
from planner.pipeline import demo_scenario_path, load_scenario

DATA = Path(planner.__file__).parent / "data"
REGISTER = DATA / "demo_facilities.csv"
UTM = "EPSG:32649"  # the demo district lies in UTM zone 49N
UNTIL_NORMS = ["layers", "demand", "network", "checks", "access", "norms"]


# ----------------------------------------------------------------------------- helpers
def _register() -> pd.DataFrame:
    return pd.read_csv(REGISTER, dtype={"编号": str})


def _scenario(tmp_path: Path, register: pd.DataFrame | None = None, *, lang: str = "en",
              **facility_settings):
    """The demo scenario, with another register (a CSV in ``tmp_path``) and settings."""
    sc = load_scenario(demo_scenario_path())
    sc.lang = lang
    if register is not None:
        path = tmp_path / f"register_{len(list(tmp_path.glob('register_*')))}.csv"
        register.to_csv(path, index=False)
        sc.layers.facilities.path = path
    for key, value in facility_settings.items():
        setattr(sc.layers.facilities, key, value)
    return sc


def _run(sc, steps=UNTIL_NORMS):
    """Run ``steps``; the warnings are on ``result.warnings`` (not raised here)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return planner.run(sc, steps=steps)


def _shift_m(lon: np.ndarray, lat: np.ndarray, dx_m: float, dy_m: float, *,
             datum: str = "gcj02") -> tuple[np.ndarray, np.ndarray]:
    """Move ``datum`` coordinates by metres on the ground (through WGS-84 and UTM)."""
    wx, wy = coords.convert(lon, lat, src=datum, dst="wgs84")
    fwd = pyproj.Transformer.from_crs(4326, UTM, always_xy=True)
    x, y = fwd.transform(wx, wy)
    bx, by = pyproj.Transformer.from_crs(UTM, 4326, always_xy=True).transform(
        np.asarray(x) + dx_m, np.asarray(y) + dy_m)
    return coords.convert(np.asarray(bx), np.asarray(by), src="wgs84", dst=datum)


def _messages(result, pattern: str) -> list[str]:
    return [w for w in result.warnings if re.search(pattern, w)]


def _in_named(points: gpd.GeoDataFrame, polygons: gpd.GeoDataFrame, column: str,
              key: str) -> int:
    """Rows within 10 m of the polygon their ``column`` names (an sjoin, not the checks' code)."""
    joined = gpd.sjoin(points[[column, "geometry"]].reset_index(),
                       polygons[[key, "geometry"]], how="left", predicate="dwithin",
                       distance=10.0)
    hit = joined[column].astype(str) == joined[key].astype(str)
    return int(hit.groupby(joined["index"]).any().sum())


@pytest.fixture(scope="module")
def demo_run():
    """The demo up to the norm checks, as shipped (no check should speak)."""
    sc = load_scenario(demo_scenario_path())
    sc.lang = "en"
    return _run(sc)


# ----------------------------------------------------------------------------- 1. datum
def test_no_check_speaks_on_the_demo(demo_run):
    assert demo_run.step("checks").status == "done"
    assert demo_run.warnings == []  # the demo is clean: datum, area, stacks, names
    fits = demo_run.artifacts["datum_fits"]
    assert set(fits) == {"townships", "districts", "population", "facilities", "candidates",
                         "gates"}
    assert all(f.suggested is None for f in fits.values())
    fac = demo_run.layers["facilities"]
    assert fac["in_study_area"].all() and (fac["excluded"] == "").all()
    assert (fac["stack_group"] == 0).all()


def test_gcj02_register_read_as_wgs84_is_caught(tmp_path, demo_run):
    # the case: an AMap register loaded without `coord_system: gcj02`
    sc = _scenario(tmp_path, coord_system="wgs84")
    result = _run(sc, ["layers", "demand", "network", "checks"])
    found = _messages(result, r"^Layer `facilities` is declared as WGS-84")
    assert len(found) == 1
    msg = found[0]
    assert "add `coord_system: gcj02` to layers.facilities" in msg
    assert "The data were not changed" in msg
    # the figures, recomputed by a spatial join on the layers as loaded both ways
    pop = demo_run.layers["population"]
    towns = demo_run.layers["townships"]
    wrong, right = result.layers["facilities"], demo_run.layers["facilities"]
    n = len(right)
    w_comm, r_comm = (_in_named(f, pop, "community", "name") for f in (wrong, right))
    w_town, r_town = (_in_named(f, towns, "township", "name") for f in (wrong, right))
    assert (r_comm, r_town) == (n, n)
    assert w_comm <= n // 2 and w_town < n
    assert f"{w_comm} of {n} rows lie in the community their `community` column names as " \
           f"wgs84 vs {r_comm} as gcj02" in msg
    assert f"{w_town} of {n} rows lie in the township their `township` column names as " \
           f"wgs84 vs {r_town} as gcj02" in msg
    # the data were not moved: the layer is the register read as WGS-84
    raw = _register()
    xy = wrong.to_crs(4326).get_coordinates().to_numpy()
    np.testing.assert_allclose(xy, raw[["经度", "纬度"]].to_numpy(), atol=1e-9)


def test_register_shifted_the_wrong_way_is_caught(tmp_path):
    # the register converted GCJ-02 -> WGS-84 by someone, still declared gcj02:
    # read, it lies one GCJ-02 offset (about 580 m) south-west of the truth
    reg = _register()
    reg["经度"], reg["纬度"] = coords.gcj02_to_wgs84(reg["经度"].to_numpy(),
                                                 reg["纬度"].to_numpy())
    result = _run(_scenario(tmp_path, reg), ["layers", "demand", "network", "checks"])
    fit = result.artifacts["datum_fits"]["facilities"]
    assert fit.declared == "gcj02" and fit.suggested == "wgs84"
    n = len(reg)
    assert fit.named[("community", "wgs84")] == (n, n)
    assert fit.named[("community", "gcj02")][0] <= n // 2
    assert "add `coord_system: wgs84` to layers.facilities" in fit.message
    assert fit.message in result.warnings


def test_baidu_register_read_as_wgs84_suggests_bd09(tmp_path):
    reg = _register()
    reg["经度"], reg["纬度"] = coords.gcj02_to_bd09(reg["经度"].to_numpy(), reg["纬度"].to_numpy())
    result = _run(_scenario(tmp_path, reg, coord_system="wgs84", lang="zh"),
                  ["layers", "demand", "network", "checks"])
    fit = result.artifacts["datum_fits"]["facilities"]
    assert fit.suggested == "bd09"
    assert fit.named[("community", "bd09")] == (len(reg), len(reg))
    assert "请在情景文件的 layers.facilities 下加一行 `coord_system: bd09`" in fit.message
    assert "百度地图（BD-09）" in fit.message


def _comb() -> tuple[WalkNetwork, np.ndarray]:
    """A sparse street comb near Xi'an (4 streets north-south 1.2 km apart, 2 east-west)."""
    fwd = pyproj.Transformer.from_crs(4326, UTM, always_xy=True)
    x0, y0 = fwd.transform(108.90, 34.20)
    xs = x0 + np.array([0.0, 1200.0, 2400.0, 3600.0])
    nodes = [(x, y0) for x in xs] + [(x, y0 + 3000.0) for x in xs]
    u = [0, 1, 2, 0, 1, 2, 3, 4, 5, 6]
    v = [1, 2, 3, 4, 5, 6, 7, 5, 6, 7]
    nx_, ny_ = np.array(nodes).T
    net = WalkNetwork.from_edges(nx_, ny_, u, v, crs=UTM, speed_mps=1.0)
    # twelve homes 12 m east of the two middle streets, 0.6-2.4 km up them
    rng = np.random.default_rng(7)
    ys = y0 + rng.uniform(600.0, 2400.0, 12)
    pts = np.column_stack([np.where(np.arange(12) % 2, xs[1], xs[2]) + 12.0, ys])
    return net, pts


def test_street_fit_catches_a_datum_without_name_columns(tmp_path):
    net, pts = _comb()
    lon, lat = pyproj.Transformer.from_crs(UTM, 4326, always_xy=True).transform(
        pts[:, 0], pts[:, 1])
    glon, glat = coords.wgs84_to_gcj02(np.asarray(lon), np.asarray(lat))
    path = tmp_path / "homes.csv"
    pd.DataFrame({"名称": [f"养老院{i}" for i in range(12)], "类型": "养老院", "经度": glon,
                  "纬度": glat}).to_csv(path, index=False)
    wrong = read_layer(path, kind="facilities", target_crs=UTM)  # declared wgs84
    right = read_layer(path, kind="facilities", coord_system="gcj02", target_crs=UTM)
    streets = shapely.union_all(shapely.linestrings(np.stack(
        [np.c_[net.node_x[net.edge_u], net.node_y[net.edge_u]],
         np.c_[net.node_x[net.edge_v], net.node_y[net.edge_v]]], 1)))
    m_wrong = float(np.median(shapely.distance(wrong.geometry.values, streets)))
    m_right = float(np.median(shapely.distance(right.geometry.values, streets)))
    assert m_right == pytest.approx(12.0, abs=0.5) and m_wrong > 200
    with pytest.warns(PlannerWarning, match="coord_system: gcj02") as rec:
        fit = CK.check_datum(wrong, layer="facilities", network=net, lang="en")
    assert fit.suggested == "gcj02" and fit.named == {}
    assert fit.pair_median_m["gcj02"] == pytest.approx((m_wrong, m_right), rel=1e-6)
    assert (f"median distance to the nearest street {m_wrong:.0f} m as wgs84 vs "
            f"{m_right:.0f} m as gcj02 (12 points)") in str(rec[0].message)
    # read right, nothing is said
    with warnings.catch_warnings():
        warnings.simplefilter("error", PlannerWarning)
        assert CK.check_datum(right, layer="facilities", declared="gcj02",
                              network=net).suggested is None


def test_datum_of_real_gcj02_district_boundaries(xian_dir):
    # central Xi'an: DataV district boundaries (GCJ-02) against the OSM streets
    from planner.network import from_lines

    net = from_lines(xian_dir / "xian_road.kml")
    path = xian_dir / "xian_districts_datav_gcj02.json"
    wrong = read_layer(path, kind="boundaries", target_crs=net.crs)
    with pytest.warns(PlannerWarning, match="add `coord_system: gcj02` to layers.districts"):
        fit = CK.check_datum(wrong, layer="districts", network=net, lang="en")
    m_wrong, m_right = fit.pair_median_m["gcj02"]
    assert m_right * CK.datum.MIN_RATIO <= m_wrong and m_wrong - m_right >= 30
    right = read_layer(path, kind="boundaries", coord_system="gcj02", target_crs=net.crs)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PlannerWarning)
        assert CK.check_datum(right, layer="districts", network=net).suggested is None


def _demo_yaml(tmp_path: Path, facilities_line: str) -> Path:
    text = demo_yaml(f"{DATA.as_posix()}/")
    text = re.sub(r"  facilities: .*\n", f"  facilities: {facilities_line}\n", text)
    path = tmp_path / "s.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("no_network", [False, True])
def test_validate_reports_the_datum(tmp_path, no_network):
    path = _demo_yaml(tmp_path, f"{{path: {REGISTER.as_posix()}, coord_system: wgs84}}")
    args = ["validate", str(path)] + (["--no-network"] if no_network else [])
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    # Chinese by default; the township/community names decide even without a network
    assert "图层 `facilities` 声明的坐标系为 WGS-84" in res.output
    assert "`coord_system: gcj02`" in res.output
    assert "study_area" in res.output  # the study area is listed with the layers


# ----------------------------------------------------------------------------- 2. study area
@pytest.fixture(scope="module")
def city_wide(tmp_path_factory):
    """The demo register plus a copy of every row 20 km east (a city-wide register)."""
    reg = _register()
    far = reg.copy()
    far["编号"] = "X" + far["编号"].str[1:]
    far["名称"] = far["名称"] + "（城东）"
    far["所属街道"], far["所属社区"] = "城东街道", "城东社区"
    far["经度"], far["纬度"] = _shift_m(far["经度"].to_numpy(), far["纬度"].to_numpy(),
                                    20_000.0, 0.0)
    tmp = tmp_path_factory.mktemp("city_wide")
    sc = _scenario(tmp, pd.concat([reg, far], ignore_index=True))
    return _run(sc)


def test_city_wide_register_outside_rows_are_listed_and_flagged(city_wide):
    fac = city_wide.layers["facilities"]
    assert len(fac) == 42
    far = fac["id"].str.startswith("X").to_numpy()
    assert (fac["in_study_area"].to_numpy() == ~far).all()
    assert (fac.loc[far, "excluded"] == "outside_study_area").all()
    assert (fac.loc[~far, "excluded"] == "").all()
    found = _messages(city_wide, r"^facilities: 21 row\(s\) lie outside the study area")
    assert len(found) == 1
    assert "the union of the townships and districts layers" in found[0]
    assert "60-minute cut-off" in found[0]
    # every copy is named (12 shown), with its distance from the district
    assert "X01 示范区社会福利院（城东）" in found[0] and "… and 9 more" in found[0]
    assert re.search(r"\((1[5-9]|20)\.\d km\)", found[0])


def test_city_wide_register_changes_no_number(city_wide, demo_run):
    # walking access, service areas and norms are those of the district's own register
    cols = [c for c in demo_run.layers["population_access"].columns if c.startswith("time_min")]
    pd.testing.assert_frame_equal(city_wide.layers["population_access"][cols],
                                  demo_run.layers["population_access"][cols])
    sa = city_wide.layers["service_areas"]
    assert set(sa["facility_id"]) == set(demo_run.layers["facilities"]["id"])
    pd.testing.assert_frame_equal(city_wide.tables["norm_checks"],
                                  demo_run.tables["norm_checks"])
    pd.testing.assert_frame_equal(city_wide.tables["fca"], demo_run.tables["fca"])


def test_city_wide_register_counts_and_map_extent(city_wide, demo_run):
    study = city_wide.study()
    ind = report.indicators(study, lang="en").set_index("indicator")["value"]
    base = report.indicators(demo_run.study(), lang="en").set_index("indicator")["value"]
    assert ind["Existing facilities"] == base["Existing facilities"] == 21
    assert ind["  Register rows not counted (outside the study area or doubtful geocodes; see "
               "the warnings)"] == 21
    fig = plots.coverage_map(study, lang="en")
    x0, x1 = fig.axes[0].get_xlim()
    minx, _, maxx, _ = city_wide.layers["districts"].total_bounds
    assert x1 - x0 < 1.5 * (maxx - minx)  # not stretched 20 km east
    assert x1 < maxx + 2000


def test_facility_just_outside_the_border_still_serves(tmp_path):
    # a station 150 m south of the district's southern tip: outside, but within reach
    reg = _register()
    towns = read_layer(DATA / "demo.gpkg", kind="boundaries", layer="district", target_crs=UTM)
    minx, miny, maxx, maxy = towns.total_bounds
    tip = shapely.get_coordinates(towns.geometry.iloc[0].exterior)
    sx, sy = tip[np.argmin(tip[:, 1])]
    lon, lat = pyproj.Transformer.from_crs(UTM, 4326, always_xy=True).transform(sx, sy - 150)
    glon, glat = coords.wgs84_to_gcj02(lon, lat)
    row = reg.iloc[[4]].copy()
    row["编号"], row["名称"], row["经度"], row["纬度"] = "B01", "边界外养老服务站", glon, glat
    result = _run(_scenario(tmp_path, pd.concat([reg, row], ignore_index=True)))
    fac = result.layers["facilities"].set_index("id")
    assert not fac.loc["B01", "in_study_area"] and fac.loc["B01", "excluded"] == ""
    assert len(_messages(result, r"^facilities: 1 row\(s\) lie just outside the study area "
                                 r".*B01 边界外养老服务站")) == 1
    assert "B01" in set(result.layers["service_areas"]["facility_id"])  # in walking access
    ind = report.indicators(result.study(), lang="en").set_index("indicator")["value"]
    assert ind["Existing facilities"] == 21  # but not counted


def test_candidates_outside_the_area_are_flagged(demo_run):
    from planner.access import snap_units

    lay, net = demo_run.layers, demo_run.artifacts["network"]
    cands = lay["candidates"]
    far = cands.copy()
    far["id"] = "far-" + far["id"].astype(str)
    far["geometry"] = far.geometry.translate(0.0, -20_000.0)  # 20 km south
    both = pd.concat([cands, far], ignore_index=True)
    area = demo_run.artifacts["study_area"]
    residents = snap_units(net, lay["population"], gates=lay["gates"], warn=False)
    with pytest.warns(PlannerWarning) as rec:
        out = CK.flag_study_area(both, area, network=net, residents=residents,
                                 what="candidates")
    n = len(cands)
    assert list(out["in_study_area"]) == [True] * n + [False] * n
    assert list(out["excluded"]) == [""] * n + ["outside_study_area"] * n
    assert [str(r.message)[:59] for r in rec] == [
        f"candidates: {n} row(s) lie outside the study area (the union"]
    assert list(CK.in_use(out)) == [True] * n + [False] * n


def test_study_area_without_boundaries_is_the_network_extent_plus_buffer():
    net, _ = _comb()
    area = CK.study_area({"townships": None}, network=net, buffer_m=300.0)
    assert area.from_network and area.source == ("network",)
    # the comb's hull is a 3.6 km x 3 km rectangle; grown by 300 m with round corners
    expected = 3600 * 3000 + 2 * 300 * (3600 + 3000) + np.pi * 300**2
    assert area.geometry.area == pytest.approx(expected, rel=2e-3)
    assert "plus 300 m" in area.describe("en") and "外扩 300 米" in area.describe("zh")
    assert CK.study_area(None, network=None) is None


def test_overlap_names_the_layer_of_another_city(demo_run):
    lay = demo_run.layers
    net = demo_run.artifacts["network"]
    moved = lay["facilities"].copy()
    moved["geometry"] = moved.geometry.translate(300_000.0, 0.0)  # 300 km east
    layers = {"population": lay["population"], "facilities": moved,
              "townships": lay["townships"]}
    area = CK.study_area({"townships": lay["townships"]})
    with pytest.warns(PlannerWarning) as rec:
        found = CK.check_overlap(layers, network=net, area=area, lang="en")
    assert len(found) == 1 and [str(r.message) for r in rec] == found
    gap = shapely.distance(CK.network_extent(net), shapely.union_all(moved.geometry.values))
    assert found[0].startswith("Layer `facilities` does not overlap the walk network: its "
                               f"nearest feature lies {gap / 1000:.1f} km")
    # a network of another province: the network misses the study area
    far_net = WalkNetwork.from_edges(net.node_x + 500_000.0, net.node_y, net.edge_u,
                                     net.edge_v, crs=net.crs)
    with pytest.warns(PlannerWarning):
        found = CK.check_overlap({"townships": lay["townships"]}, network=far_net, area=area,
                                 lang="en")
    assert found == [f"The walk network does not overlap the study area (the townships "
                     f"layer): it lies "
                     f"{shapely.distance(area.geometry, CK.network_extent(far_net)) / 1000:.1f}"
                     f" km from it (a network of another region?). Check `network.path`."]


def test_far_facility_gets_no_service_area_ray():
    # a street along y = 0; one home on it, one 420 m north of it
    net = WalkNetwork.from_edges([0.0, 400.0, 800.0], [0.0, 0.0, 0.0], [0, 1], [1, 2],
                                 crs=UTM)
    fac = gpd.GeoDataFrame({"id": ["near", "far"]},
                           geometry=shapely.points([[300.0, 10.0], [500.0, 420.0]]), crs=UTM)
    snapped = snap_points(net, fac, max_snap_m=300.0, warn=False)
    with pytest.warns(PlannerWarning) as rec:
        sa = service_areas(net, snapped, minutes=(5.0,), buffer_m=10.0, lang="en")
    assert list(sa["facility_id"]) == ["near"]
    assert [str(r.message) for r in rec] == [
        "1 facilities lie more than 300 m from the nearest walkable street and get no "
        "service-area polygon (a straight line to the street is no service area): far (420 m). "
        "Check their coordinates (a datum offset?) or add the missing streets."]


# ----------------------------------------------------------------------------- 3. stacked
def _square(reg: pd.DataFrame) -> tuple[float, float]:
    """The district's central point in GCJ-02 (a geocoder's fallback 'city centre')."""
    d = read_layer(DATA / "demo.gpkg", kind="boundaries", layer="district").to_crs(4326)
    c = d.geometry.iloc[0].representative_point()
    return coords.wgs84_to_gcj02(c.x, c.y)


def _with_cluster(n: int = 9) -> pd.DataFrame:
    """The demo register plus ``n`` copies of rows 5.. (other names) on one point."""
    reg = _register()
    cluster = reg.iloc[4:4 + n].copy()
    cluster["编号"] = [f"S{i + 1:02d}" for i in range(n)]
    cluster["名称"] = cluster["名称"].str.replace("养老服务站", "老年之家").str.replace(
        "日间照料中心", "老年之家") + "（二部）"
    lon, lat = _square(reg)
    jitter = np.linspace(0.0, 2e-5, n)  # up to about 2 m apart
    cluster["经度"], cluster["纬度"] = lon + jitter, lat
    return pd.concat([reg, cluster], ignore_index=True)


def test_stacked_cluster_is_listed_and_kept_out(tmp_path, demo_run):
    result = _run(_scenario(tmp_path, _with_cluster()))
    fac = result.layers["facilities"]
    s = fac["id"].str.startswith("S").to_numpy()
    assert (fac.loc[s, "stack_group"] == 1).all() and (fac.loc[~s, "stack_group"] == 0).all()
    assert fac.loc[s, "geocode_fallback"].all()
    assert (fac.loc[s, "excluded"] == "stacked_geocode").all()
    found = _messages(result, r"^facilities: 9 rows share 1 point\(s\) \(within 5 m of one "
                              r"another\) and look like failed geocodes")
    assert len(found) == 1
    for name in fac.loc[s, "name"]:
        assert name in found[0]
    assert "9 rows on one point" in found[0]
    assert "different townships or communities stated" in found[0]
    assert "set `accept_stacked: true` for layers.facilities" in found[0]
    # out of access and norms: the numbers are the district's own
    cols = [c for c in demo_run.layers["population_access"].columns if c.startswith("time_min")]
    pd.testing.assert_frame_equal(result.layers["population_access"][cols],
                                  demo_run.layers["population_access"][cols])
    pd.testing.assert_frame_equal(result.tables["norm_checks"], demo_run.tables["norm_checks"])


def test_accepted_stack_is_used(tmp_path):
    result = _run(_scenario(tmp_path, _with_cluster(), accept_stacked=True),
                  ["layers", "demand", "network", "checks", "access"])
    fac = result.layers["facilities"]
    assert (fac["excluded"] == "").all() and fac["geocode_fallback"].sum() == 9
    assert len(_messages(result, r"^facilities: 9 rows share 1 point\(s\) .* are kept in the "
                                 r"analysis: .*accepted")) == 1
    assert len(result.artifacts["snap_facilities"]) == 30


def test_accept_column_keeps_single_rows(tmp_path):
    reg = _with_cluster()
    reg["accept_stacked"] = ""
    reg.loc[reg["编号"].isin(["S01", "S02"]), "accept_stacked"] = "是"
    result = _run(_scenario(tmp_path, reg), ["layers", "demand", "network", "checks"])
    fac = result.layers["facilities"].set_index("id")
    assert (fac.loc[["S01", "S02"], "excluded"] == "").all()
    assert (fac.loc[[f"S{i:02d}" for i in range(3, 10)], "excluded"] == "stacked_geocode").all()
    assert len(_messages(result, r"^facilities: 7 rows share 1 point")) == 1
    assert len(_messages(result, r"^facilities: 2 rows share 1 point.*kept")) == 1


def test_stack_groups_by_hand():
    # a-b 3 m apart; c 20 m from b; d-e-f a chain of 4 m steps; g alone
    xy = [[0, 0], [3, 0], [23, 0], [100, 0], [104, 0], [108, 0], [300, 0]]
    gdf = gpd.GeoDataFrame(geometry=shapely.points(np.array(xy, float)), crs=UTM)
    assert list(CK.stack_groups(gdf, tolerance_m=5.0)) == [2, 2, 0, 1, 1, 1, 0]
    assert list(CK.stack_groups(gdf, tolerance_m=1.0)) == [0] * 7


def _town(x0: float) -> shapely.Polygon:
    return shapely.box(x0, -500.0, x0 + 1000.0, 500.0)


def test_which_stacks_look_like_fallbacks():
    towns = gpd.GeoDataFrame({"name": ["东城街道", "西河街道"]},
                             geometry=[_town(0.0), _town(1000.0)], crs=UTM)
    rows = [  # name, township, community, x, y, accept
        ("阳光养老院", "东城街道", "朝阳社区", 200, 0, ""),
        ("阳光日间照料中心", "东城", "朝阳社区", 201, 0, ""),     # same building: kept
        ("甲站", "东城街道", "甲社区", 500, 100, ""),
        ("乙站", "东城街道", "乙社区", 500, 101, ""),             # two communities on a point
        ("丙站", "西河街道", "丙社区", 700, -200, "1"),
        ("丁站", "西河街道", "丙社区", 702, -200, ""),            # 300 m outside 西河街道
        ("戊站", "东城街道", "戊社区", 900, 0, ""),
    ]
    gdf = gpd.GeoDataFrame(
        {"name": [r[0] for r in rows], "township": [r[1] for r in rows],
         "community": [r[2] for r in rows], "accept_stacked": [r[5] for r in rows]},
        geometry=shapely.points([[r[3], r[4]] for r in rows]), crs=UTM)
    with pytest.warns(PlannerWarning) as rec:
        out = CK.check_stacked(gdf, townships=towns)
    assert list(out["stack_group"]) == [1, 1, 2, 2, 3, 3, 0]
    assert list(out["geocode_fallback"]) == [False, False, True, True, True, True, False]
    assert list(out["excluded"]) == ["", "", "stacked_geocode", "stacked_geocode", "",
                                     "stacked_geocode", ""]
    texts = [str(r.message) for r in rec]
    assert len(texts) == 2
    assert texts[0].startswith("facilities: 3 rows share 2 point(s)")
    assert "different townships or communities stated" in texts[0]
    assert "outside the township stated" in texts[0]
    assert texts[1].startswith("facilities: 3 rows share 2 point(s) (within 5 m of one "
                               "another) and are kept")
    assert "阳光养老院, 阳光日间照料中心]" in texts[1] and "丙站; outside the township stated; " \
           "accepted]" in texts[1]


# ----------------------------------------------------------------------------- township names
def test_township_mismatch_lists_the_rows(demo_run):
    fac = demo_run.layers["facilities"].copy()
    towns = demo_run.layers["townships"]
    west = towns.loc[towns["name"] == "西河街道"].geometry.iloc[0]
    i = int(np.flatnonzero(fac["id"] == "F05")[0])  # 兴隆社区养老服务站, 东城街道
    fac.loc[i, "geometry"] = west.representative_point()
    with pytest.warns(PlannerWarning) as rec:
        table = CK.township_mismatch(fac, towns)
    assert list(table["id"]) == ["F05"] and list(table["lies_in"]) == ["西河街道"]
    east = towns.loc[towns["name"] == "东城街道"].geometry.iloc[0]
    d = shapely.distance(west.representative_point(), east)
    assert table["outside_m"].iloc[0] == pytest.approx(d)
    assert len(rec) == 1
    assert str(rec[0].message).startswith(
        "facilities: 1 row(s) lie in another township than their `township` column names (more "
        f"than 100 m outside it): F05 兴隆社区养老服务站 (says 东城街道, lies in 西河街道, {d:.0f} m "
        "outside it).")
    assert rec[0].message.zh.startswith(  # the Chinese text, for a run in Chinese
        "facilities：1 条记录所在位置与其“街道/乡镇”列登记的不符（在登记街道之外超过 100 米）："
        f"F05 兴隆社区养老服务站（登记为东城街道，实际位于西河街道，距登记街道 {d:.0f} 米）。")


def test_township_names_agree_on_the_demo(demo_run):
    lay = demo_run.layers
    with warnings.catch_warnings():
        warnings.simplefilter("error", PlannerWarning)
        for key in ("facilities", "population"):
            assert CK.township_mismatch(lay[key], lay["townships"]).empty
