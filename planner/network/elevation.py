"""Slopes: Tobler's hiking function as a walking-time factor, and elevations on a network."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from numpy.typing import ArrayLike

from planner._errors import NetworkError
from planner.network.graph import WalkNetwork

__all__ = ["slope_factor", "tobler_factor", "with_elevation"]


def tobler_factor(grade: ArrayLike) -> np.ndarray:
    """Walking-time factor of a slope, undirected, 1.0 on flat ground.

    Tobler's hiking function ``v = 6 exp(-3.5 |s + 0.05|)`` km/h, scaled so
    that flat ground gives the profile's speed.  An edge is walked both ways,
    so the factor is the mean of the time factors up and down:
    ``(1/f(s) + 1/f(-s)) / 2`` with ``f(s) = exp(-3.5 (|s + 0.05| - 0.05))``.

    Parameters
    ----------
    grade
        Rise over run (0.1 = 10 %), any shape.
    """
    s = np.asarray(grade, dtype=float)

    def f(x):
        return np.exp(-3.5 * (np.abs(x + 0.05) - 0.05))

    return 0.5 * (1.0 / f(s) + 1.0 / f(-s))


def slope_factor(z: np.ndarray, u: np.ndarray, v: np.ndarray, length: np.ndarray) -> np.ndarray:
    """`tobler_factor` of each edge's grade (zero-length edges count as flat)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        grade = np.where(length > 0, (z[v] - z[u]) / length, 0.0)
    return tobler_factor(grade)


def with_elevation(net: WalkNetwork, node_elevation_m: ArrayLike) -> WalkNetwork:
    """The same network with node elevations and Tobler slope-penalised times.

    Parameters
    ----------
    net
        A network without a slope penalty yet (``net.node_z`` is None).
    node_elevation_m
        Elevation of every node in metres, shape ``(net.n_nodes,)`` (e.g.
        sampled from a DEM at ``net.node_x, net.node_y``).

    Returns
    -------
    WalkNetwork
        Times ``length / speed * tobler_factor(grade) + delay``; lengths unchanged.
    """
    z = np.asarray(node_elevation_m, dtype=float)
    if z.shape != (net.n_nodes,) or not np.isfinite(z).all():
        raise NetworkError(
            f"node_elevation_m must hold one finite elevation (m) per node: expected shape "
            f"({net.n_nodes},), got {z.shape} with {int((~np.isfinite(z)).sum())} missing."
        )
    if net.node_z is not None:
        raise NetworkError("This network already has elevations (net.node_z); build it anew.")
    delay = net.edge_delay_s if net.edge_delay_s is not None else 0.0
    factor = slope_factor(z, net.edge_u, net.edge_v, net.edge_length_m)
    times = (net.edge_time_s - delay) * factor + delay
    return replace(net, node_z=z, edge_time_s=times, report=dict(net.report, slope_penalty=True))
