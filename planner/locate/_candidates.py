"""Candidate sites generated where uncovered older residents live.

Weighted k-means (scikit-learn) over the representative points of the
population units left outside the walking circle, weighted by older
residents; each centre is moved to the nearest network point; a point in a
forbidden zone (water, parks, user polygons) moves to the network point of
its cluster's nearest population unit outside the zones, or is dropped.
"""

from __future__ import annotations

import numpy as np

from planner._errors import LocateError


def generate_candidates(
    population,
    network,
    n_sites: int,
    *,
    weight: str = "pop_60plus",
    uncovered=None,
    forbidden=None,
    seed: int = 0,
):
    """Generate up to ``n_sites`` candidate sites near uncovered older residents.

    Parameters
    ----------
    population
        Population units (GeoDataFrame, metric CRS) with the ``weight`` column.
    network
        `planner.network.WalkNetwork` in the same CRS; sites sit on its edges.
    n_sites
        Number of k-means centres (fewer when there are fewer units).
    weight
        Column of older residents used as k-means sample weights.
    uncovered
        Boolean mask of units to serve (default: all units).
    forbidden
        GeoDataFrames/GeoSeries of polygons (water, parks, no-build zones) in
        which no site may lie.
    seed
        k-means random state.

    Returns
    -------
    GeoDataFrame
        Points with ``id`` (``gen-1`` ...), ``name``, ``tier`` (empty) and
        ``generated`` = True, in the population's CRS.
    """
    import geopandas as gpd
    import shapely
    from sklearn.cluster import KMeans

    from planner.access import snap_points

    if weight not in population.columns:
        raise LocateError(f"Population layer has no `{weight}` column for candidate generation "
                          f"(columns: {list(population.columns)}).")
    mask = np.ones(len(population), bool) if uncovered is None else np.asarray(uncovered, bool)
    if mask.shape != (len(population),):
        raise LocateError(f"`uncovered` has shape {mask.shape} but the population layer has "
                          f"{len(population)} units; give one boolean per unit.")
    w = population[weight].fillna(0).to_numpy(dtype=float)
    mask &= w > 0
    pts = population.geometry[mask].representative_point()
    if len(pts) == 0 or n_sites <= 0:
        return gpd.GeoDataFrame({"id": [], "name": [], "tier": [], "generated": []},
                                geometry=[], crs=population.crs)
    xy = np.c_[pts.x.to_numpy(), pts.y.to_numpy()]
    k = int(min(n_sites, len(np.unique(xy, axis=0))))  # k-means needs k distinct points
    km = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(xy, sample_weight=w[mask])
    snapped = snap_points(network, km.cluster_centers_, warn=False, what="generated sites")
    geoms = shapely.points(snapped.x, snapped.y)
    zones = []
    for layer in forbidden or []:
        if layer is None or len(layer) == 0:
            continue
        zones.append(shapely.union_all(np.asarray(layer.to_crs(population.crs).geometry
                                                  if hasattr(layer, "to_crs") else layer)))
    keep = np.ones(k, bool)
    if zones:
        zone = shapely.union_all(zones)
        bad = shapely.intersects(zone, geoms)
        if bad.any():
            # a centre in a park or on water: move it to the network point of the cluster's
            # nearest residential unit outside the zones, else drop it
            on_net = snap_points(network, xy, warn=False, what="generated sites")
            unit_geoms = shapely.points(on_net.x, on_net.y)
            unit_ok = ~shapely.intersects(zone, unit_geoms)
            for j in np.flatnonzero(bad):
                members = np.flatnonzero((km.labels_ == j) & unit_ok)
                if members.size == 0:
                    keep[j] = False
                    continue
                d = np.hypot(*(xy[members] - km.cluster_centers_[j]).T)
                geoms[j] = unit_geoms[members[np.argmin(d)]]
    geoms = geoms[keep]
    ids = [f"gen-{i + 1}" for i in range(len(geoms))]
    return gpd.GeoDataFrame({"id": ids, "name": ids, "tier": [""] * len(ids),
                             "generated": [True] * len(ids)}, geometry=list(geoms),
                            crs=population.crs)
