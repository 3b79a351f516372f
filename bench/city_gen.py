"""A generated city for the city-scale benchmark (`bench/city_bench.py`).

* Walk network: a jittered street grid (50 m blocks) with some irregularity:
  10 % of the street segments missing, parks (discs without streets), a river
  crossed only by bridges every 1 km, and diagonal avenues.
* Older residents: a density of several centres (Gaussian bumps) over a
  low base; demand units (residential compounds) are drawn from it, each
  with its older residents.
* Candidate sites: 70 % near residents, 30 % anywhere; existing facilities
  in the old centres.
* Demand points for the covering models: points on the streets (addresses),
  more where the density is higher, each with 1 + a Poisson count of older
  residents.

Everything is reproducible from a seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CRS = "EPSG:32649"
SPACING_M = 50.0


@dataclass
class City:
    net: object  # WalkNetwork
    units_xy: np.ndarray  # (n_units, 2)
    units_w: np.ndarray  # older residents per unit
    cand_xy: np.ndarray  # candidate sites (n_candidates, 2)
    exist_xy: np.ndarray  # existing facilities (n_existing, 2)
    centres: np.ndarray  # (k, 3): x, y, sigma of the density bumps


def _density(x: np.ndarray, y: np.ndarray, centres: np.ndarray) -> np.ndarray:
    d = np.full(x.shape, 0.15)
    for cx, cy, s in centres:
        d += np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * s * s))
    return d


def city_network(n_nodes: int, rng: np.random.Generator):
    """A grid-like walk network of about ``n_nodes`` nodes (before parks are cut out)."""
    from planner.network import WalkNetwork

    side = int(round(np.sqrt(n_nodes)))
    ext = (side - 1) * SPACING_M
    ii, jj = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
    x = (ii * SPACING_M + rng.uniform(-12, 12, ii.shape)).ravel()
    y = (jj * SPACING_M + rng.uniform(-12, 12, ii.shape)).ravel()
    idx = ii * side + jj
    u = [idx[:-1, :].ravel(), idx[:, :-1].ravel()]
    v = [idx[1:, :].ravel(), idx[:, 1:].ravel()]
    # diagonal avenues every ~4 km, both ways
    for k in range(0, side, max(side // 12, 8)):
        a = np.arange(side - 1 - k)
        u.append(idx[a + k, a])
        v.append(idx[a + k + 1, a + 1])
        u.append(idx[a, side - 1 - (a + k)])
        v.append(idx[a + 1, side - 2 - (a + k)])
    u, v = np.concatenate(u), np.concatenate(v)
    keep = rng.random(u.size) > 0.10
    # parks: discs of 150-600 m radius without streets inside
    n_parks = max(1, int(ext * ext / 4e6))
    px, py = rng.uniform(0, ext, n_parks), rng.uniform(0, ext, n_parks)
    pr = rng.uniform(150, 600, n_parks)
    mx, my = (x[u] + x[v]) / 2, (y[u] + y[v]) / 2
    for cx, cy, r in zip(px, py, pr):
        keep &= (mx - cx) ** 2 + (my - cy) ** 2 > r * r
    # a river across the city along a sine; bridges every 1 km
    ry = ext * 0.45 + 0.08 * ext * np.sin(mx / ext * 2 * np.pi)
    crosses = (y[u] - ry) * (y[v] - ry) < 0
    bridge = (np.round(mx / 1000.0) * 1000.0 - mx) ** 2 < (SPACING_M * 0.6) ** 2
    keep &= ~crosses | bridge
    return WalkNetwork.from_edges(x, y, u[keep], v[keep], crs=CRS, speed_mps=1.0)


def make_city(n_nodes: int, n_units: int, n_candidates: int, n_existing: int, *,
              seed: int = 0) -> City:
    rng = np.random.default_rng(seed)
    net = city_network(n_nodes, rng)
    ext = float(net.node_x.max())
    k = 12
    centres = np.c_[rng.uniform(0.1, 0.9, (k, 2)) * ext, rng.uniform(0.04, 0.12, k) * ext]

    def sample(n: int, near: float) -> np.ndarray:
        """n points: ``near`` of them from the density (rejection), the rest uniform."""
        out = []
        m = int(round(n * near))
        top = _density(centres[:, 0], centres[:, 1], centres).max() + 0.15
        while sum(len(o) for o in out) < m:
            p = rng.uniform(0, ext, (2 * m + 100, 2))
            acc = rng.random(len(p)) * top < _density(p[:, 0], p[:, 1], centres)
            out.append(p[acc])
        pts = np.concatenate(out)[:m] if m else np.zeros((0, 2))
        return np.r_[pts, rng.uniform(0, ext, (n - m, 2))]

    units = sample(n_units, 0.9)
    w = np.maximum(1, np.round(rng.lognormal(3.2, 0.7, n_units)))  # ~30 older residents
    cands = sample(n_candidates, 0.7)
    big = centres[np.argsort(-centres[:, 2])[:4]]
    ex = big[rng.integers(0, len(big), n_existing), :2] + rng.normal(
        0, 1, (n_existing, 2)) * big[rng.integers(0, len(big), n_existing), 2:3]
    ex = np.clip(ex, 0, ext)
    return City(net, units, w, cands, ex, centres)


def street_points(city: City, n: int, rng: np.random.Generator):
    """``n`` demand points on the streets (addresses), more where the density is higher.

    Returns a `planner.access.Snapped` (each point on its edge, no snap walk)
    and the older residents at each point (1 + Poisson(2 x density)).
    """
    from planner.access import Snapped

    net = city.net
    mx = (net.node_x[net.edge_u] + net.node_x[net.edge_v]) / 2
    my = (net.node_y[net.edge_u] + net.node_y[net.edge_v]) / 2
    dens = _density(mx, my, city.centres)
    edge = rng.choice(net.n_edges, n, p=dens / dens.sum())
    frac = rng.random(n)
    x = net.node_x[net.edge_u[edge]] * (1 - frac) + net.node_x[net.edge_v[edge]] * frac
    y = net.node_y[net.edge_u[edge]] * (1 - frac) + net.node_y[net.edge_v[edge]] * frac
    s = Snapped(edge=edge, fraction=frac, x=x, y=y, dist_m=np.zeros(n), far=np.zeros(n, bool),
                point_x=x, point_y=y, ids=np.arange(n))
    w = 1.0 + rng.poisson(2.0 * _density(x, y, city.centres))
    return s, w
