"""Candidate sites generated where uncovered older residents live.

Weighted k-means (scikit-learn) over the representative points of the
population units left outside the walking circle, weighted by older
residents; each centre is moved to the nearest network point, and centres
inside forbidden zones (water, parks, user polygons) are dropped.
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

    from planner._snap import snap_points

    if weight not in population.columns:
        raise LocateError(f"Population layer has no `{weight}` column for candidate generation "
                          f"(columns: {list(population.columns)}).")
    mask = np.ones(len(population), bool) if uncovered is None else np.asarray(uncovered, bool)
    w = population[weight].fillna(0).to_numpy(dtype=float)
    mask &= w > 0
    pts = population.geometry[mask].representative_point()
    if len(pts) == 0 or n_sites <= 0:
        return gpd.GeoDataFrame({"id": [], "name": [], "tier": [], "generated": []},
                                geometry=[], crs=population.crs)
    xy = np.c_[pts.x.to_numpy(), pts.y.to_numpy()]
    k = int(min(n_sites, len(xy)))
    km = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(xy, sample_weight=w[mask])
    snapped = snap_points(network, km.cluster_centers_, warn=False, what="generated sites")
    geoms = shapely.points(snapped.x, snapped.y)
    keep = np.ones(k, bool)
    for layer in forbidden or []:
        if layer is None or len(layer) == 0:
            continue
        zone = shapely.union_all(np.asarray(layer.to_crs(population.crs).geometry
                                            if hasattr(layer, "to_crs") else layer))
        keep &= ~shapely.contains(zone, geoms)
    geoms = geoms[keep]
    ids = [f"gen-{i + 1}" for i in range(len(geoms))]
    return gpd.GeoDataFrame({"id": ids, "name": ids, "tier": [""] * len(ids),
                             "generated": [True] * len(ids)}, geometry=list(geoms),
                            crs=population.crs)
