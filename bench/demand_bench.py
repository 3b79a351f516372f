"""Benchmark of demand from population grids and buildings (`planner.demand`).

A generated city: a 100 m population grid of N x N cells (2,000 x 2,000 in
full: 200 km x 200 km, a lake of no-data cells), S subdistricts (Voronoi
cells of random points, 1,000 in full) with census totals of residents
aged 60+, B residential buildings (1,000,000 in full, placed by the grid's
density, some straddling subdistrict borders, floors or only a height) and
Z compound polygons (a jittered tessellation, 100,000 in full).  Measured
in one run:

* **allocate**: `residential_buildings` (floor area) + `allocate_to_buildings`
  of the 60+ census totals over all buildings; checks that every
  subdistrict's integer total is its census total (``totals_exact``).
  Peer: the overlay-based dasymetric allocation (`planner.demand.allocate`,
  one ``geopandas.overlay``) on the buildings of a subset of subdistricts:
  time per building and the largest difference of the two answers.
* **zonal**: `zonal_sums` (exact, exactextract) for all Z polygons.  Peers
  on a subset of polygons: ``rasterstats.zonal_stats`` (cell-centre
  method, one rasterio window per polygon; a naive ``rasterio.mask`` loop
  where rasterstats is not installed) and the centroid method of
  `zonal_sums` over all polygons; the ratio of times and how far the
  centroid counts are from the exact ones.
* census over cells: `allocate_to_grid` of the 60+ totals over all cells
  into 200 m points (printed, not in the RESULT line).

Memory is the process's peak resident set size (psutil, sampled every 5 ms)
while the allocation runs, in GB, absolute (the generated city included).
The machine is shared: the load average is printed at the start and end,
and the allocation and zonal lines give the process's CPU time beside the
wall-clock time (on a busy machine the difference is time spent waiting).

Usage::

    python bench/demand_bench.py            # the full city (several minutes)
    python bench/demand_bench.py --quick    # a 600 x 600 grid, 100,000 buildings (< 2 min)

Ends with ``RESULT demand buildings=<n> allocate_s=<s> zonal_s=<s> peak_gb=<g>
totals_exact=<true|false>``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import geopandas as gpd  # noqa: E402
import pandas as pd  # noqa: E402
import pyproj  # noqa: E402
import shapely  # noqa: E402
from _peak import PeakRSS  # noqa: E402  (bench/ is on sys.path when run as a script)

from planner import demand  # noqa: E402
from planner._errors import PlannerWarning  # noqa: E402

CRS = "EPSG:32649"
X0, Y0 = 300_000.0, 4_000_000.0  # top-left corner of the grid
CELL = 100.0


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPUs"


# ----------------------------------------------------------------------------- the city
def make_grid(n: int, rng: np.random.Generator) -> tuple[np.ndarray, object]:
    """60+ residents per cell: city blobs over a rural floor, a lake of no data."""
    from rasterio.transform import from_origin

    yy, xx = np.mgrid[0:n, 0:n] / n
    dens = np.full((n, n), 0.3)
    for _ in range(12):
        cx, cy, s, h = rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.9), rng.uniform(0.02, 0.08), \
            rng.uniform(20, 120)
        dens += h * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * s * s))
    vals = dens * rng.gamma(2.0, 0.5, size=(n, n))
    lake = (xx - 0.3) ** 2 + (yy - 0.7) ** 2 < 0.05 ** 2
    vals[lake] = np.nan
    return vals, from_origin(X0, Y0, CELL, CELL)


def make_subdistricts(k: int, n: int, rng: np.random.Generator) -> gpd.GeoDataFrame:
    ext = shapely.box(X0, Y0 - n * CELL, X0 + n * CELL, Y0)
    pts = shapely.points(rng.uniform(X0, X0 + n * CELL, k), rng.uniform(Y0 - n * CELL, Y0, k))
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(pts), extend_to=ext))
    cells = shapely.intersection(cells, ext)
    return gpd.GeoDataFrame({"name": [f"街道{i:04d}" for i in range(len(cells))]},
                            geometry=cells, crs=CRS)


def make_compounds(z: int, n: int, rng: np.random.Generator) -> gpd.GeoDataFrame:
    """A jittered quadrilateral tessellation of the grid's extent with about z pieces."""
    ny = int(np.sqrt(z))
    nx = int(np.ceil(z / ny))
    w, h = n * CELL / nx, n * CELL / ny
    gx = X0 + np.arange(nx + 1) * w
    gy = Y0 - np.arange(ny + 1) * h
    jx = rng.uniform(-0.3, 0.3, (ny + 1, nx + 1)) * w
    jy = rng.uniform(-0.3, 0.3, (ny + 1, nx + 1)) * h
    jx[:, [0, -1]] = 0
    jy[[0, -1], :] = 0
    px, py = gx[None, :] + jx, gy[:, None] + jy
    i, j = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
    i, j = i.ravel(), j.ravel()
    ring = np.stack([np.stack([px[i, j], py[i, j]], -1), np.stack([px[i, j + 1], py[i, j + 1]], -1),
                     np.stack([px[i + 1, j + 1], py[i + 1, j + 1]], -1),
                     np.stack([px[i + 1, j], py[i + 1, j]], -1),
                     np.stack([px[i, j], py[i, j]], -1)], axis=1)
    return gpd.GeoDataFrame(geometry=shapely.polygons(ring), crs=CRS)


def make_buildings(b: int, vals: np.ndarray, rng: np.random.Generator) -> gpd.GeoDataFrame:
    n = vals.shape[0]
    p = np.nan_to_num(vals).ravel()
    cell = rng.choice(p.size, size=b, p=p / p.sum())
    r, c = np.divmod(cell, n)
    x = X0 + (c + rng.random(b)) * CELL
    y = Y0 - (r + rng.random(b)) * CELL
    length, depth = rng.uniform(12, 60, b), rng.uniform(10, 18, b)
    geoms = shapely.box(x - length / 2, y - depth / 2, x + length / 2, y + depth / 2)
    floors = rng.integers(1, 34, b).astype(float)
    height = np.round(floors * 3.0 + rng.uniform(-0.6, 0.6, b), 1)
    only_h = rng.random(b) < 0.25
    floors[only_h] = np.nan
    height[~only_h] = np.nan
    return gpd.GeoDataFrame({"id": np.char.add("b", np.arange(b).astype(str)),
                             "floors": floors, "height_m": height}, geometry=geoms, crs=CRS)


def make_census(subs: gpd.GeoDataFrame, raster, rng) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PlannerWarning)
        z = demand.zonal_sums(raster, subs)["pop_60plus"].to_numpy()
    p60 = np.round(z * rng.uniform(0.8, 1.2, len(z))).astype(np.int64) + 1
    return pd.DataFrame({"name": subs["name"], "pop_60plus": p60})


# ----------------------------------------------------------------------------- measures
def bench_allocation(subs, census, buildings) -> dict:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PlannerWarning)
        with PeakRSS(every_s=0.005) as mem:
            t, cpu = time.perf_counter(), time.process_time()
            res = demand.residential_buildings(buildings)
            out = demand.allocate_to_buildings(subs, census, res, columns=["pop_60plus"])
            secs, cpu = time.perf_counter() - t, time.process_time() - cpu
    got = out.groupby("area")["pop_60plus_int"].sum()
    want = census.set_index("name")["pop_60plus"]
    exact = bool((got.reindex(want.index).fillna(-1).astype(np.int64) == want).all())
    rep = out.attrs["demand_report"]
    print(f"allocate: {len(buildings):,} buildings -> {len(out):,} pieces "
          f"({rep['n_split']:,} split, {rep['n_outside']} outside) in {secs:.2f} s "
          f"({cpu:.2f} s CPU); "
          f"peak RSS {mem.peak_gb:.2f} GB (+{mem.added_gb:.2f} GB); totals exact: {exact}")
    for w in caught:
        print(f"  warning: {str(w.message)[:160]}")
    return {"secs": secs, "peak_gb": mem.peak_gb, "exact": exact, "res": res, "out": out}


def bench_allocation_peer(subs, census, res, out, n_buildings: int) -> None:
    """The overlay-based dasymetric allocation on the buildings of the busiest subdistricts
    (about ``n_buildings`` buildings)."""
    busiest = out["area"].value_counts()
    names = busiest.index[:int(np.searchsorted(busiest.cumsum().to_numpy(), n_buildings)) + 1]
    part = subs[subs["name"].isin(names)]
    n_subs = len(part)
    tree = shapely.STRtree(part.geometry.values)
    idx = np.unique(tree.query(res.geometry.values, predicate="intersects")[0])
    sub_b = res.iloc[idx]
    sub_c = census[census["name"].isin(part["name"])]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PlannerWarning)
        t = time.perf_counter()
        mine = demand.allocate_to_buildings(part, sub_c, sub_b, columns=["pop_60plus"])
        t_mine = time.perf_counter() - t
        t = time.perf_counter()
        peer = demand.allocate(part, sub_c, sub_b, columns=["pop_60plus"],
                               weight="floor_area_m2")
        t_peer = time.perf_counter() - t
    a = mine.set_index("id")["pop_60plus"]
    b = peer.set_index("id")["pop_60plus"].reindex(a.index)
    diff = float(np.nanmax(np.abs(a.to_numpy() - b.to_numpy())))
    print(f"allocate peer (geopandas overlay, planner.demand.allocate) on {len(sub_b):,} "
          f"buildings of {n_subs} subdistricts: {t_peer:.2f} s vs {t_mine:.2f} s here "
          f"(x{t_peer / t_mine:.1f}); largest difference {diff:.2e} persons")


def bench_zonal(raster, compounds) -> dict:
    t, cpu = time.perf_counter(), time.process_time()
    exact = demand.zonal_sums(raster, compounds, groups=["pop_60plus"])
    secs, cpu = time.perf_counter() - t, time.process_time() - cpu
    t = time.perf_counter()
    naive = demand.zonal_sums(raster, compounds, groups=["pop_60plus"], method="centroid")
    t_naive = time.perf_counter() - t
    e, c = exact["pop_60plus"].to_numpy(), naive["pop_60plus"].to_numpy()
    rel = np.abs(c - e) / np.maximum(e, 1e-9)
    total = float(np.nansum(raster.values["pop_60plus"]))
    print(f"zonal: {len(compounds):,} polygons exact in {secs:.2f} s ({cpu:.2f} s CPU, "
          f"{1e6 * secs / len(compounds):.0f} µs each); sum {e.sum():,.1f} of the grid's "
          f"{total:,.1f} (the tessellation covers it)")
    print(f"zonal, cell-centroid method on the same polygons: {t_naive:.2f} s; per polygon it "
          f"is off the exact count by {np.median(rel):.1%} (median), {np.percentile(rel, 95):.1%} "
          f"(95th percentile), {np.abs(c - e).sum():,.0f} persons misplaced in all")
    return {"secs": secs, "exact": exact}


def bench_zonal_peer(raster, compounds, exact, n: int) -> None:
    from rasterio.io import MemoryFile

    sub = compounds.iloc[:n]
    vals = raster.values["pop_60plus"]
    nodata = -1.0
    arr = np.where(np.isnan(vals), nodata, vals).astype("float64")
    try:
        from rasterstats import zonal_stats

        name = "rasterstats.zonal_stats (cell centres)"
        t = time.perf_counter()
        stats = zonal_stats(list(sub.geometry.values), arr, affine=raster.transform,
                            nodata=nodata, stats=["sum"])
        peer = np.array([s["sum"] or 0.0 for s in stats])
        secs = time.perf_counter() - t
    except ImportError:
        import rasterio.mask

        name = "rasterio.mask loop (cell centres)"
        with MemoryFile() as mf, mf.open(driver="GTiff", width=arr.shape[1],
                                         height=arr.shape[0], count=1, dtype="float64",
                                         crs=CRS, transform=raster.transform,
                                         nodata=nodata) as ds:
            ds.write(arr, 1)
            t = time.perf_counter()
            sums = []
            for g in sub.geometry.values:
                m = rasterio.mask.mask(ds, [g], crop=True, filled=True)[0][0]
                sums.append(float(m[m != nodata].sum()))
            peer = np.array(sums)
            secs = time.perf_counter() - t
    t = time.perf_counter()
    demand.zonal_sums(raster, sub, groups=["pop_60plus"])
    mine = time.perf_counter() - t
    e = exact["pop_60plus"].to_numpy()[:n]
    print(f"zonal peer {name} on {n:,} polygons: {secs:.2f} s vs {mine:.2f} s here "
          f"(x{secs / mine:.1f} per polygon); its counts are off the exact ones by "
          f"{np.median(np.abs(peer - e) / np.maximum(e, 1e-9)):.1%} (median)")


def bench_grid_allocation(subs, census, raster) -> None:
    """Census totals over all cells, as 200 m points (the scenario default)."""
    with warnings.catch_warnings(), PeakRSS(every_s=0.005) as mem:
        warnings.simplefilter("ignore", PlannerWarning)
        t = time.perf_counter()
        out = demand.allocate_to_grid(subs, census, raster, columns=["pop_60plus"], cell_m=200)
        secs = time.perf_counter() - t
    ok = (out.groupby("area")["pop_60plus_int"].sum()
          == census.set_index("name")["pop_60plus"]).all()
    print(f"census over cells: {raster.shape[0] * raster.shape[1]:,} cells -> {len(out):,} "
          f"points of 200 m in {secs:.2f} s; peak RSS {mem.peak_gb:.2f} GB; totals exact: "
          f"{bool(ok)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small city (< 2 minutes)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    n, k, b, z = (600, 100, 100_000, 20_000) if args.quick else (2000, 1000, 1_000_000, 100_000)
    print(f"demand bench ({'quick' if args.quick else 'full'}): grid {n} x {n} cells of 100 m, "
          f"{k} subdistricts, {b:,} buildings, {z:,} polygons; {load()}")
    rng = np.random.default_rng(args.seed)
    t = time.perf_counter()
    vals, transform = make_grid(n, rng)
    raster = demand.PopulationRaster(values={"pop_60plus": vals}, transform=transform,
                                     crs=pyproj.CRS(CRS), source="generated")
    subs = make_subdistricts(k, n, rng)
    compounds = make_compounds(z, n, rng)
    buildings = make_buildings(b, vals, rng)
    census = make_census(subs, raster, rng)
    print(f"generated in {time.perf_counter() - t:.1f} s: {int(census['pop_60plus'].sum()):,} "
          "residents aged 60+")
    alloc = bench_allocation(subs, census, buildings)
    bench_allocation_peer(subs, census, alloc["res"], alloc["out"],
                          20_000 if args.quick else 50_000)
    del alloc["out"]
    zonal = bench_zonal(raster, compounds)
    bench_zonal_peer(raster, compounds, zonal["exact"], 1000 if args.quick else 2000)
    bench_grid_allocation(subs, census, raster)
    print(f"end: {load()}")
    print(f"RESULT demand buildings={b} allocate_s={alloc['secs']:.2f} "
          f"zonal_s={zonal['secs']:.2f} peak_gb={alloc['peak_gb']:.2f} "
          f"totals_exact={'true' if alloc['exact'] else 'false'}")


if __name__ == "__main__":
    main()
