"""The generated demo district: regeneration equals the committed files, and the
properties promised in `planner.demo`'s docstring hold, computed from the data."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import shapely

from planner import demo as D
from planner._validate import normalize_tier
from planner.coords import gcj02_to_wgs84

DATA = Path(D.__file__).parent / "data"
ROOT = Path(__file__).resolve().parents[1]
UTM = "EPSG:32649"
WALK_EXCLUDED = {"motorway", "motorway_link"}


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("demo")
    D.write_demo(folder, seed=0)
    return folder


@pytest.fixture(scope="module")
def layers() -> dict[str, gpd.GeoDataFrame]:
    return {name: gpd.read_file(DATA / "demo.gpkg", layer=name) for name in D.GPKG_LAYERS}


@pytest.fixture(scope="module")
def facilities() -> pd.DataFrame:
    return pd.read_csv(DATA / "demo_facilities.csv")


@pytest.fixture(scope="module")
def census() -> dict[int, pd.DataFrame]:
    return {y: pd.read_csv(DATA / f"demo_census_{y}.csv") for y in (2010, 2020)}


# --------------------------------------------------------------------------- regeneration
@pytest.mark.parametrize("layer", D.GPKG_LAYERS)
def test_regenerated_layer_equals_committed(regenerated, layers, layer):
    new = gpd.read_file(regenerated / "demo.gpkg", layer=layer)
    old = layers[layer]
    assert len(new) == len(old)
    assert bool(shapely.equals_exact(new.geometry.values, old.geometry.values, 0.0).all())
    pd.testing.assert_frame_equal(pd.DataFrame(new.drop(columns="geometry")),
                                  pd.DataFrame(old.drop(columns="geometry")))


@pytest.mark.parametrize("name", ["demo_facilities.csv", "demo_census_2010.csv",
                                  "demo_census_2020.csv", "demo.yaml"])
def test_regenerated_tables_equal_committed(regenerated, name):
    assert (regenerated / name).read_bytes() == (DATA / name).read_bytes()


def test_scenarios_demo_yaml_matches_packaged_one():
    assert (ROOT / "scenarios" / "demo.yaml").read_text(encoding="utf-8") == \
        D.demo_yaml("../planner/data/")
    assert (DATA / "demo.yaml").read_text(encoding="utf-8") == D.demo_yaml("")


def test_another_seed_gives_another_district():
    a, b = D.generate_demo(seed=1), D.generate_demo(seed=1)
    c = D.generate_demo(seed=0)
    assert a["communities"]["population"].tolist() == b["communities"]["population"].tolist()
    assert a["communities"]["population"].tolist() != c["communities"]["population"].tolist()


def test_package_data_is_small():
    total = sum(p.stat().st_size for p in DATA.iterdir() if p.is_file())
    assert total < 2_000_000


# --------------------------------------------------------------------------- boundaries, population
def test_boundaries_and_communities(layers):
    district, towns, comms = layers["district"], layers["townships"], layers["communities"]
    assert district["name"].tolist() == ["示范区"]
    assert sorted(towns["name"]) == sorted(D.TOWNSHIPS)
    assert 40 <= len(comms) <= 60
    assert comms["id"].is_unique
    assert (comms.geom_type == "Polygon").all() and comms.is_valid.all()
    assert comms["name"].str.endswith("社区").all()
    # size: about 6 km x 5 km
    minx, miny, maxx, maxy = district.to_crs(UTM).total_bounds
    assert 5000 < maxx - minx < 7000 and 4000 < maxy - miny < 6000
    # every community lies in the township it names, and townships tile the district
    t = towns.set_index("name").to_crs(UTM)
    for _, c in comms.to_crs(UTM).iterrows():
        assert c.geometry.difference(t.geometry[c["township"]]).area < 1.0
    assert abs(t.area.sum() - district.to_crs(UTM).area.sum()) < 1.0
    assert t.geometry.union_all().symmetric_difference(
        district.to_crs(UTM).geometry[0]).area < 1.0


def test_population_is_realistic(layers):
    c = layers["communities"]
    assert c["population"].between(2000, 12000).all()
    share = c["pop_60plus"] / c["population"]
    assert share.between(0.12, 0.30).all()
    size = c["population"] / c["households"]
    assert size.between(2.4, 2.9).all()
    assert ((c["pop_80plus"] <= c["pop_65plus"]) & (c["pop_65plus"] <= c["pop_60plus"])).all()
    by_town = c.groupby("township")[["pop_60plus", "population"]].sum()
    town_share = by_town["pop_60plus"] / by_town["population"]
    # one township markedly older
    assert town_share.idxmax() == "南山街道"
    assert town_share["南山街道"] > town_share.drop("南山街道").max() + 0.05


# --------------------------------------------------------------------------- census tables
def _band_sum(df: pd.DataFrame, bands: list[str]) -> pd.Series:
    return sum(df[f"{s}_{b}"] for b in bands for s in ("男", "女"))


@pytest.mark.parametrize("year", [2010, 2020])
def test_census_bands_sum_to_totals(census, year):
    df = census[year]
    assert len(df.columns) == 11 + 2 * 19
    assert list(df.columns[:5]) == ["区划代码", "省", "市", "区县", "人口数_合计"]
    assert list(df.columns[-2:]) == ["男_85岁以上", "女_85岁以上"]
    assert sorted(df["区县"]) == sorted(D.TOWNSHIPS)
    assert (_band_sum(df, D.BAND_NAMES) == df["人口数_合计"]).all()
    assert (_band_sum(df, D.BAND_NAMES[13:]) == df["pop_60plus"]).all()
    assert (_band_sum(df, D.BAND_NAMES[14:]) == df["pop_65plus"]).all()
    assert (_band_sum(df, D.BAND_NAMES[17:]) == df["pop_80plus"]).all()
    assert np.allclose(df["人口比重_65岁及以上"], 100 * df["pop_65plus"] / df["人口数_合计"],
                       atol=0.005)


def test_census_columns_match_xian_format(census, xian_dir):
    xian = pd.read_csv(xian_dir / "xian_core4_districts_census2020.csv", nrows=0)
    assert list(census[2020].columns) == list(xian.columns)


def test_census_2020_equals_community_sums(census, layers):
    c = layers["communities"].groupby("township")[
        ["population", "pop_60plus", "pop_65plus", "pop_80plus", "households"]].sum()
    t = census[2020].set_index("区县")
    for town in D.TOWNSHIPS:
        assert t.loc[town, "人口数_合计"] == c.loc[town, "population"]
        assert t.loc[town, "pop_60plus"] == c.loc[town, "pop_60plus"]
        assert t.loc[town, "pop_65plus"] == c.loc[town, "pop_65plus"]
        assert t.loc[town, "pop_80plus"] == c.loc[town, "pop_80plus"]
        assert t.loc[town, "家庭户数"] == c.loc[town, "households"]


def test_census_2010_gives_plausible_cohort_ratios(census):
    a, b = census[2010].set_index("区县"), census[2020].set_index("区县")
    for town in D.TOWNSHIPS:
        # 60-64 in 2010 -> 70-74 in 2020: survivors, fewer but most of them
        ratio = (b.loc[town, "男_70到74岁"] + b.loc[town, "女_70到74岁"]) / \
                (a.loc[town, "男_60到64岁"] + a.loc[town, "女_60到64岁"])
        assert 0.7 < ratio < 1.05
        assert b.loc[town, "pop_60plus"] > a.loc[town, "pop_60plus"]


# --------------------------------------------------------------------------- facilities
def test_facility_register_shape(facilities):
    for col in ("名称", "类型", "床位数", "护理型床位数", "建筑面积", "用地面积", "是否公办",
                "社工人数", "所属街道", "经度", "纬度"):
        assert col in facilities.columns
    assert set(facilities["类型"]) == {"养老院", "综合养老服务中心", "社区养老服务站",
                                      "日间照料中心", "互助幸福院"}
    tiers = facilities["类型"].map(normalize_tier)
    assert set(tiers) == {"district_home", "township_centre", "community_station",
                          "rural_point"}


def test_facilities_are_gcj02(facilities, layers):
    """Converted GCJ-02 → WGS-84, every facility lies in the community it names;
    read as WGS-84 (the trap), several do not."""
    comms = layers["communities"].set_index("name")
    lon, lat = gcj02_to_wgs84(facilities["经度"].to_numpy(), facilities["纬度"].to_numpy())
    wrong = 0
    for k, row in facilities.iterrows():
        poly = comms.geometry[row["所属社区"]]
        assert poly.contains(shapely.Point(lon[k], lat[k])), row["名称"]
        wrong += not poly.contains(shapely.Point(row["经度"], row["纬度"]))
    assert wrong >= 5


def test_facilities_fail_norms_as_documented(facilities, layers):
    f = facilities.assign(tier=facilities["类型"].map(normalize_tier))
    centres = f[f["tier"] == "township_centre"]
    stations = f[f["tier"] == "community_station"]
    homes = f[f["tier"] == "district_home"]
    # one centre per township: 南山街道 has none
    assert sorted(set(centres["所属街道"])) == ["东城街道", "西河街道"]
    # centre floor area >= 1500 m²: one fails (西河, 1280 m²); nursing share >= 70 % holds
    small = centres[centres["建筑面积"] < 1500]
    assert small["名称"].tolist() == ["西河街道综合养老服务中心"]
    assert small["建筑面积"].tolist() == [1280]
    assert ((centres["护理型床位数"] / centres["床位数"]) >= 0.70).all()
    # stations: 12-20, two below 300 m²; most communities without one
    assert 12 <= len(stations) <= 20
    assert sorted(stations.loc[stations["建筑面积"] < 300, "建筑面积"]) == [220, 260]
    n_comm = len(layers["communities"])
    assert n_comm == 46 and stations["所属社区"].nunique() == 16
    # public nursing-home beds below 1 % of the 60+ population
    public_beds = homes.loc[homes["是否公办"] == "是", "床位数"].sum()
    assert public_beds == 200
    assert public_beds < 0.01 * layers["communities"]["pop_60plus"].sum()
    # one rural mutual-aid point
    assert (f["tier"] == "rural_point").sum() == 1


def test_land_per_resident_by_township(facilities, layers):
    pop = layers["communities"].groupby("township")["population"].sum()
    land = facilities.groupby("所属街道")["用地面积"].sum()
    per_capita = (land / pop).reindex(pop.index).fillna(0.0)
    assert per_capita["西河街道"] >= 0.2
    assert per_capita["东城街道"] < 0.2
    assert per_capita["南山街道"] < 0.2
    # the figures documented in planner.demo's docstring
    assert land.to_dict() == {"东城街道": 10600, "南山街道": 600, "西河街道": 20500}
    assert pop.to_dict() == {"东城街道": 96875, "南山街道": 68125, "西河街道": 88750}


def test_community_floor_space_per_households(facilities, layers):
    """20 m² of community elderly-care floor space per 100 households: all three fail."""
    st = facilities[facilities["类型"].map(normalize_tier) == "community_station"]
    floor = st.groupby("所属街道")["建筑面积"].sum()
    need = layers["communities"].groupby("township")["households"].sum() / 100 * 20
    assert (floor.reindex(need.index) < need).all()
    assert floor.to_dict() == {"东城街道": 3110, "南山街道": 1430, "西河街道": 3210}
    assert need.round(1).to_dict() == {"东城街道": 7427.6, "南山街道": 5023.8,
                                      "西河街道": 6658.6}


# --------------------------------------------------------------------------- roads
def _utm(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    return gdf.to_crs(UTM)


def test_road_columns_and_classes(layers):
    roads = layers["roads"]
    for col in ("fclass", "name", "oneway", "bridge", "tunnel", "layer"):
        assert col in roads.columns
    classes = set(roads["fclass"])
    assert {"primary", "secondary", "trunk", "motorway", "motorway_link", "residential",
            "service", "footway", "path", "steps"} <= classes
    assert set(roads["oneway"]) == {"B", "F", "T"}
    assert set(roads["bridge"]) == {"T", "F"} and set(roads["tunnel"]) == {"T", "F"}
    assert (roads.geom_type == "LineString").all()
    assert "rail" not in classes  # the rail line is its own layer


def test_only_bridges_cross_the_river_and_they_are_not_noded(layers):
    roads, water = _utm(layers["roads"]), _utm(layers["water"]).geometry[0]
    crossing = roads[roads.intersects(water)]
    assert len(crossing) == 4
    assert (crossing["bridge"] == "T").all() and (crossing["layer"] == 1).all()
    banks = roads[roads["name"].isin(["滨河北路", "滨河南路"])]
    bank_vertices = {tuple(np.round(c, 6)) for g in layers["roads"].loc[banks.index].geometry
                     for c in g.coords}
    for idx, bridge in crossing.iterrows():
        assert banks.intersects(bridge.geometry).sum() >= 2  # passes over both banks
        coords = {tuple(np.round(c, 6)) for c in layers["roads"].geometry[idx].coords}
        assert not coords & bank_vertices  # ... without a shared vertex


def test_rail_is_crossed_by_two_underpasses(layers):
    roads, rail = _utm(layers["roads"]), _utm(layers["rail"]).geometry[0]
    crossing = roads[roads.intersects(rail)]
    assert len(crossing) == 2
    assert (crossing["tunnel"] == "T").all() and (crossing["layer"] == -1).all()


def _graph(roads: gpd.GeoDataFrame) -> nx.Graph:
    """Walk graph with nodes at exact shared line ends (an independent builder)."""
    g = nx.Graph()
    for geom in roads.geometry:
        a, b = tuple(np.round(geom.coords[0], 3)), tuple(np.round(geom.coords[-1], 3))
        w = geom.length
        if g.has_edge(a, b):
            w = min(w, g[a][b]["weight"])
        g.add_edge(a, b, weight=w)
    return g


def test_near_misses_and_disconnected_cluster(layers):
    roads = _utm(layers["roads"])
    ends = np.array([c for g in roads.geometry for c in (g.coords[0], g.coords[-1])])
    uniq = np.unique(np.round(ends, 3), axis=0)
    from scipy.spatial import cKDTree

    pairs = cKDTree(uniq).query_pairs(1.0, output_type="ndarray")
    gaps = np.linalg.norm(uniq[pairs[:, 0]] - uniq[pairs[:, 1]], axis=1)
    assert len(pairs) == 4 and (gaps > 0.3).all() and (gaps < 1.0).all()
    walk = roads[~roads["fclass"].isin(WALK_EXCLUDED)]
    comps = sorted((len(c) for c in nx.connected_components(_graph(walk))), reverse=True)
    # the near-miss ends are dead ends of the main network; the cluster of 3
    # service lanes (4 nodes) is the only separate component
    assert comps[1:] == [4]


def test_fifteen_minute_circle_has_gaps(layers, facilities):
    """At 1.0 m/s (900 m in 15 min), some communities have no station within reach."""
    roads = _utm(layers["roads"])
    walk = roads[~roads["fclass"].isin(WALK_EXCLUDED)]
    g = _graph(walk)
    nodes = np.array(list(g.nodes))
    from scipy.spatial import cKDTree

    tree = cKDTree(nodes)
    st = facilities[facilities["类型"].map(normalize_tier) == "community_station"]
    lon, lat = gcj02_to_wgs84(st["经度"].to_numpy(), st["纬度"].to_numpy())
    st_xy = gpd.GeoSeries(gpd.points_from_xy(lon, lat), crs="EPSG:4326").to_crs(UTM)
    d_st, i_st = tree.query(np.column_stack([st_xy.x, st_xy.y]))
    sources = {tuple(nodes[i]) for i in i_st}
    dist = nx.multi_source_dijkstra_path_length(g, sources, weight="weight")
    pts = _utm(layers["communities"]).representative_point()
    d_c, i_c = tree.query(np.column_stack([pts.x, pts.y]))
    walk_m = np.array([dist.get(tuple(nodes[i]), np.inf) for i in i_c]) + d_c
    beyond = walk_m > 900
    # the figures documented in planner.demo's docstring
    assert beyond.sum() == 22
    towns = layers["communities"]["township"][beyond].value_counts().to_dict()
    assert towns == {"南山街道": 9, "西河街道": 8, "东城街道": 5}
    assert layers["communities"]["pop_60plus"][beyond].sum() == 19916


# --------------------------------------------------------------------------- other layers
def test_candidates_gates_and_land_use(layers):
    cand, gates = layers["candidates"], layers["gates"]
    res = layers["residential"]
    assert 50 <= len(cand) <= 100 and cand["id"].is_unique
    assert set(cand["tier"].dropna()) == {"township_centre", "community_station"}
    assert cand["tier"].isna().any()
    assert (cand["land_area_m2"] > 0).all() and (cand["capacity"] > 0).all()
    in_res = cand.geometry.apply(lambda p: res.contains(p).any())
    vacant = cand["name"].str.contains("空地")
    assert in_res[~vacant].all() and not in_res[vacant].any() and vacant.sum() >= 3
    # gates lie on their compound's border, inside the community they name
    r = _utm(res).set_index("id")
    c = layers["communities"].set_index("id")
    g_utm = _utm(gates)
    for k, gate in gates.iterrows():
        assert r.geometry[gate["compound"]].exterior.distance(g_utm.geometry[k]) < 0.05
        assert c.geometry[gate["community"]].contains(gate.geometry)
    assert len(layers["parks"]) >= 5 and len(layers["water"]) == 1


def test_some_communities_have_no_candidate_in_reach(layers, facilities):
    """Documented: 5 communities have no station nor station-eligible candidate within 900 m."""
    from scipy.spatial import cKDTree

    roads = _utm(layers["roads"])
    g = _graph(roads[~roads["fclass"].isin(WALK_EXCLUDED | {"trunk"})])
    nodes = np.array(list(g.nodes))
    tree = cKDTree(nodes)
    st = facilities[facilities["类型"].map(normalize_tier) == "community_station"]
    lon, lat = gcj02_to_wgs84(st["经度"].to_numpy(), st["纬度"].to_numpy())
    st_xy = gpd.GeoSeries(gpd.points_from_xy(lon, lat), crs="EPSG:4326").to_crs(UTM)
    cand = _utm(layers["candidates"])
    cand = cand[cand["tier"].isna() | (cand["tier"] == "community_station")]
    sites = np.vstack([np.column_stack([st_xy.x, st_xy.y]),
                       np.column_stack([cand.geometry.x, cand.geometry.y])])
    _, idx = tree.query(sites)
    dist = nx.multi_source_dijkstra_path_length(g, {tuple(nodes[i]) for i in idx},
                                                weight="weight")
    pts = _utm(layers["communities"]).representative_point()
    d_c, i_c = tree.query(np.column_stack([pts.x, pts.y]))
    walk_m = np.array([dist.get(tuple(nodes[i]), np.inf) for i in i_c]) + d_c
    far = layers["communities"]["name"][walk_m > 900]
    assert sorted(far) == sorted(["和平社区", "团结社区", "长春社区", "春晖社区", "桃源社区"])


# --------------------------------------------------------------------------- buildings and grid
def test_regenerated_buildings_equal_committed(regenerated):
    new = gpd.read_parquet(regenerated / "demo_buildings.parquet")
    old = gpd.read_parquet(DATA / "demo_buildings.parquet")
    assert len(new) == len(old)
    assert bool(shapely.equals_exact(new.geometry.values, old.geometry.values, 0.0).all())
    pd.testing.assert_frame_equal(pd.DataFrame(new.drop(columns="geometry")),
                                  pd.DataFrame(old.drop(columns="geometry")))


def test_regenerated_grid_equals_committed(regenerated):
    import rasterio

    with rasterio.open(regenerated / "demo_grid_100m.tif") as a, \
            rasterio.open(DATA / "demo_grid_100m.tif") as b:
        assert (a.crs, a.transform, a.nodatavals, a.descriptions) == \
            (b.crs, b.transform, b.nodatavals, b.descriptions)
        # footprint-cell intersections are GEOS areas: equal up to float32 rounding
        np.testing.assert_allclose(a.read(), b.read(), rtol=1e-6, atol=1e-4)


def test_scenarios_demo_grid_yaml_matches_generator():
    assert (ROOT / "scenarios" / "demo_grid.yaml").read_text(encoding="utf-8") == \
        D.demo_grid_yaml("../planner/data/")


def test_grid_holds_every_resident_and_river_cells_are_no_data(layers):
    import rasterio

    with rasterio.open(DATA / "demo_grid_100m.tif") as ds:
        v = ds.read(masked=True)
        assert ds.descriptions == D.GRID_BANDS and ds.res == (100.0, 100.0)
        assert ds.crs.to_epsg() == 32649 and ds.nodata == D.GRID_NODATA
        transform, shape = ds.transform, ds.shape
    comms = layers["communities"]
    for k, g in enumerate(D.GRID_BANDS):
        assert float(v[k].sum()) == pytest.approx(comms[g].sum(), abs=0.5)
    # no data: at least half river, nobody there
    rows, cols = np.nonzero(v.mask[0])
    assert len(rows) > 20
    x0, y0 = transform.c, transform.f
    cells = shapely.box(x0 + cols * 100, y0 - (rows + 1) * 100, x0 + (cols + 1) * 100,
                        y0 - rows * 100)
    river = layers["water"].to_crs(UTM).geometry.iloc[0]
    assert (shapely.area(shapely.intersection(cells, river)) >= 5000 - 1e-6).all()
    assert shape == v.shape[1:]


def test_buildings_floors_height_and_functions(layers):
    from planner import demand

    b = gpd.read_parquet(DATA / "demo_buildings.parquet")
    assert set(b["function"]) == {"住宅", "商业", "办公", "教育"}
    res = b[b["function"] == "住宅"]
    only_h = res["floors"].isna()
    assert 0.2 < only_h.mean() < 0.3 and res["height_m"].notna()[only_h].all()
    both = res["floors"].notna() & res["height_m"].notna()
    # height / 3.0 m rounds back to the floors where both are given
    assert (np.floor(res.loc[both, "height_m"] / 3.0 + 0.5) == res.loc[both, "floors"]).all()
    kept = demand.residential_buildings(b.to_crs(UTM), function_column="function")
    assert len(kept) == len(res)
    # every community has residential floor area; the buildings lie inside compounds
    comp = layers["residential"].to_crs(UTM)
    hit = gpd.sjoin(kept[["geometry"]], comp[["geometry"]], predicate="within")
    assert hit.index.nunique() == len(kept)
    comms = layers["communities"].to_crs(UTM)
    per = gpd.sjoin(kept[["floor_area_m2", "geometry"]], comms[["id", "geometry"]],
                    predicate="within").groupby("id")["floor_area_m2"].sum()
    assert set(per.index) == set(comms["id"]) and (per > 0).all()


def test_demo_grid_scenario_puts_grid_and_buildings_beside_communities():
    from planner import demand
    from planner.pipeline import run

    res = run(ROOT / "scenarios" / "demo_grid.yaml", steps=["layers", "demand"])
    t = res.tables["demand_by_unit"]
    pop = res.layers["population"]
    assert len(t) == len(pop) == 46
    assert t["pop_60plus"].tolist() == pop["pop_60plus"].tolist()  # the given counts, kept
    # census by buildings: the communities tile the townships and hold every building, so
    # each township's census count comes back whole
    town = t.assign(township=pop["township"].to_numpy()).groupby("township")
    census = pd.read_csv(DATA / "demo_census_2020.csv").set_index("区县")["pop_60plus"]
    assert town["pop_60plus_census_buildings"].sum().to_dict() == pytest.approx(
        census.to_dict())
    # the grid's exact count per community, recomputed through the library
    grid = demand.read_population_raster(DATA / "demo_grid_100m.tif")
    z = demand.zonal_sums(grid, pop)
    assert t["pop_60plus_grid"].to_numpy() == pytest.approx(z["pop_60plus"].to_numpy())
    cols = res.tables["demand_columns"]
    assert set(cols.loc[cols["layer"] == "demand_by_unit", "column"]) >= {
        "pop_60plus_grid", "pop_60plus_census_grid", "pop_60plus_census_buildings"}
