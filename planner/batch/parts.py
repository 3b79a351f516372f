"""Parts of a study area and what each part reads: its own rows and a buffer around them.

A part is one feature of a boundary layer (a district or a township).  Every
row of a layer belongs to exactly one part, decided as the norm checks
assign rows to areas: the part its own ``district`` / ``township`` column
names, else the part whose polygon covers the row's representative point
(the first in the boundary layer's order where polygons overlap), else the
nearest part (counted in the batch's warnings).  A part runs on

- its **own** population units, facilities, candidate sites and boundaries
  (counted, checked and reported by that part only);
- the facilities within `Reach.facilities_m` of its footprint
  (``facilities_nearby``: residents walk to them across the border), the
  population units within `Reach.population_m` (``population_nearby``:
  they share those facilities in 2SFCA) and the gates of all those units;
- the road lines within `Reach.network_m` (whole lines, in file order).

The footprint is the part polygon with its own units, their gates and its
own census areas (they may reach over a border where boundaries do not
nest).  Why these radii are enough for the part's numbers to equal those of
one run over the whole area is in `Reach`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import shapely

from planner._errors import LayerError, ScenarioError

__all__ = ["BY", "Cutter", "Part", "PartInputs", "Reach", "list_parts", "own_census", "owners",
           "reach_of"]

#: The boundary layers a study area can be split by.
BY = ("districts", "townships")


@dataclass(frozen=True)
class Reach:
    """How far around a part its inputs are taken (metres).

    ``walk_m`` is the farthest walk within the routing cut-off (or the widest
    threshold, if wider): ``minutes * 60 * speed``; ``snap_m`` the snap limit
    (``network.max_snap_m``); ``fca_m`` the 2SFCA catchment walk (0 without
    2SFCA).

    A resident of the part starts within ``snap_m`` of its footprint and
    walks at most ``walk_m``, so every facility it can reach snaps within
    ``walk_m + snap_m`` and lies within ``walk_m + 2 snap_m``
    (`facilities_m`); a facility there snaps to its nearest street, which
    lies within one more ``snap_m``, so the road lines are taken to
    `network_m`.  2SFCA divides a facility's supply among everyone within the
    catchment of it: residents up to ``2 fca_m + 2 snap_m`` away load the
    facilities the part's residents use (`population_m`).  Units or
    facilities farther than ``snap_m`` from every street (the far snaps the
    run warns about) are the exception: for them the cut can miss a street.
    """

    walk_m: float
    snap_m: float
    fca_m: float = 0.0

    @property
    def facilities_m(self) -> float:
        return max(self.walk_m, self.fca_m) + 2.0 * self.snap_m

    @property
    def population_m(self) -> float:
        return 2.0 * self.fca_m + 2.0 * self.snap_m if self.fca_m > 0 else 0.0

    @property
    def network_m(self) -> float:
        return max(self.facilities_m, self.population_m) + self.snap_m

    def as_dict(self) -> dict[str, float]:
        return {"walk_m": self.walk_m, "snap_m": self.snap_m, "fca_m": self.fca_m,
                "facilities_m": self.facilities_m, "population_m": self.population_m,
                "network_m": self.network_m}


def reach_of(scenario: Any) -> Reach:
    """The `Reach` of a scenario's settings (speed, cut-off, thresholds, snap limit, 2SFCA)."""
    from planner import defaults as D
    from planner.network import PROFILES

    net = scenario.network
    acc = scenario.access
    speed = None
    if net is not None:
        speed = net.speed_mps or PROFILES.get(net.profile, {}).get("speed_mps")
    speed = float(speed or max(p["speed_mps"] for p in PROFILES.values()))
    cutoff = acc.cutoff_min if acc is not None else D.CUTOFF_MIN
    thresholds = acc.thresholds_min if acc is not None else list(D.THRESHOLDS_MIN)
    loc = scenario.locate
    coverage = [m.coverage_min for m in (getattr(loc, "township_centre", None),
                                         getattr(loc, "community_station", None)) if m]
    minutes = max([cutoff, *thresholds, *coverage])
    fca = acc.fca.catchment_min if acc is not None and acc.fca is not None else 0.0
    snap = net.max_snap_m if net is not None else D.MAX_SNAP_M
    return Reach(walk_m=minutes * 60.0 * speed, snap_m=float(snap), fca_m=fca * 60.0 * speed)


@dataclass(frozen=True)
class Part:
    """One part: the boundary feature's ``id``, ``name``, output folder name and row."""

    id: str
    name: str
    folder: str
    row: int = 0


def _folder_name(value: str) -> str:
    name = re.sub(r"[^\w.\-]+", "_", value, flags=re.UNICODE).strip("._")
    return name or "part"


def list_parts(boundaries: pd.DataFrame, *, by: str, only: list[str] | None = None) -> list[Part]:
    """The parts of a boundary layer, in its order (optionally only those named in ``only``).

    Raises
    ------
    LayerError
        When ids repeat (each part needs its own id).
    ScenarioError
        When ``only`` names a part that does not exist.
    """
    ids = boundaries["id"].astype(str).to_numpy() if "id" in boundaries.columns \
        else np.array([str(i) for i in range(len(boundaries))])
    names = (boundaries["name"].astype(str).to_numpy() if "name" in boundaries.columns
             else ids)
    dup = sorted({i for i in ids if (ids == i).sum() > 1})
    if dup:
        raise LayerError(
            f"The {by} layer has repeated ids ({', '.join(dup[:10])}); every part of a batch "
            f"needs its own id. Give the {by} layer a unique `id` column.")
    folders: dict[str, int] = {}
    parts = []
    for row, (i, n) in enumerate(zip(ids, names, strict=True)):
        f = _folder_name(i)
        folders[f] = folders.get(f, 0) + 1
        parts.append(Part(i, n, f if folders[f] == 1 else f"{f}_{folders[f]}", row))
    if only:
        wanted = [str(w) for w in only]
        known = {p.id: p for p in parts} | {p.name: p for p in parts}
        missing = [w for w in wanted if w not in known]
        if missing:
            shown = ", ".join(f"{p.id} ({p.name})" for p in parts[:20])
            raise ScenarioError(f"No part {', '.join(missing)} in the {by} layer; its parts are: "
                                f"{shown}{' ...' if len(parts) > 20 else ''}.")
        keep = {known[w].id for w in wanted}
        parts = [p for p in parts if p.id in keep]
    return parts


def _points(gdf: Any) -> np.ndarray:
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    out = geoms.copy()
    ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    not_point = ok & (shapely.get_type_id(geoms) != 0)
    out[not_point] = shapely.point_on_surface(geoms[not_point])
    out[~ok] = None
    return out


def _by_column(values: pd.Series, parts: pd.DataFrame) -> np.ndarray:
    """Part index of each value naming a part (its name, else its id; -1: none or ambiguous)."""

    def key(v: Any) -> str | None:
        return None if pd.isna(v) or str(v).strip() == "" else re.sub(r"\s+", "", str(v))

    lookup: dict[str, int] = {}
    seen: dict[str, int] = {}
    if "name" in parts.columns:
        for i, n in enumerate(parts["name"]):
            k = key(n)
            if k is not None:
                seen[k] = seen.get(k, 0) + 1
                lookup[k] = i
        lookup = {k: i for k, i in lookup.items() if seen[k] == 1}  # repeated names: no
    if "id" in parts.columns:
        for i, v in enumerate(parts["id"]):
            k = key(v)
            if k is not None:
                lookup.setdefault(k, i)
    return np.array([lookup.get(key(v), -1) if key(v) is not None else -1 for v in values],
                    dtype=np.int64)


def owners(gdf: Any, polygons: np.ndarray, *, parts: pd.DataFrame | None = None,
           column: str | None = None, nearest: bool = False) -> np.ndarray:
    """The part of each row (-1: none), decided as the norm checks assign rows to areas.

    First the row's own ``column`` (``district`` / ``township``) naming a
    part (by name, else id, as in ``parts``); else the polygon covering the
    row's representative point (points on a shared edge: the first); with
    ``nearest``, rows still without a part go to the nearest polygon.
    """
    n = 0 if gdf is None else len(gdf)
    out = np.full(n, -1, dtype=np.int64)
    if not n:
        return out
    if column is not None and parts is not None and column in gdf.columns:
        out = _by_column(gdf[column], parts)
    pts = _points(gdf)
    has = pts != None  # noqa: E711 - element-wise on an object array
    todo = np.flatnonzero((out < 0) & has)
    tree = shapely.STRtree(polygons)
    if todo.size:
        i, j = tree.query(pts[todo], predicate="intersects")  # covered: border points count
        order = np.lexsort((j, i))
        i, j = i[order], j[order]
        first = np.ones(i.size, dtype=bool)
        first[1:] = i[1:] != i[:-1]
        out[todo[i[first]]] = j[first]
    todo = np.flatnonzero((out < 0) & has)
    if nearest and todo.size:
        i, j = tree.query_nearest(pts[todo], all_matches=False)
        out[todo[i]] = j
    return out


@dataclass
class PartInputs:
    """What one part runs on: layers (own rows and neighbours), road lines, counts."""

    layers: dict[str, Any]
    lines: Any = None
    counts: dict[str, int] = field(default_factory=dict)


def _within(tree: shapely.STRtree, area: shapely.Geometry, n: int) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    mask[tree.query(area, predicate="intersects")] = True
    return mask


class Cutter:
    """Cuts every part's inputs out of the whole area's layers (built once per worker).

    Parameters
    ----------
    layers
        The whole area's layers as the layers step reads them (one metric CRS).
    by
        ``districts`` or ``townships``: the layer whose features are the parts.
    lines
        The whole area's road lines (same CRS), or ``None``.
    area_layer
        The demand step's census areas (``townships``/``districts``), or ``None``.
    """

    def __init__(self, layers: dict[str, Any], *, by: str, lines: Any = None,
                 area_layer: str | None = None) -> None:
        if by not in layers:
            raise ScenarioError(f"Splitting by {by} needs a `layers: {by}:` boundary layer in "
                                "the scenario.")
        self.layers, self.by, self.lines = layers, by, lines
        self.area_layer = area_layer
        self.polygons = np.asarray(layers[by].geometry.values, dtype=object)
        column = "district" if by == "districts" else "township"
        self.owner, self.outside = {}, {}
        for key in ("population", "facilities", "candidates", "townships", "districts"):
            if key in layers and key != by:
                plain = owners(layers[key], self.polygons, parts=layers[by], column=column)
                self.owner[key] = owners(layers[key], self.polygons, parts=layers[by],
                                         column=column, nearest=True)
                self.outside[key] = int(((plain < 0) & (self.owner[key] >= 0)).sum())
        self.owner[by] = np.arange(len(self.polygons))
        pop, gates = layers.get("population"), layers.get("gates")
        self.gate_unit = None
        if gates is not None and len(gates) and pop is not None and len(pop):
            from planner.access import gate_units

            self.gate_unit = gate_units(pop, gates)
        self._trees: dict[str, shapely.STRtree] = {}

    def _tree(self, key: str) -> shapely.STRtree:
        if key not in self._trees:
            gdf = self.lines if key == "lines" else self.layers[key]
            self._trees[key] = shapely.STRtree(np.asarray(gdf.geometry.values, dtype=object))
        return self._trees[key]

    def notes(self) -> list[str]:
        """What the assignment of rows to parts had to decide (for the batch's warnings)."""
        out = []
        for key, n in self.outside.items():
            if n:
                out.append(f"batch: {n} row(s) of the {key} layer lie in no {self.by[:-1]} "
                           f"polygon and name none; each is counted by the nearest {self.by[:-1]}.")
        for key, v in self.owner.items():
            if (v < 0).any():
                out.append(f"batch: {int((v < 0).sum())} row(s) of the {key} layer have no "
                           "geometry and belong to no part.")
        return out

    def own_areas(self, i: int) -> dict[str, np.ndarray]:
        """Masks of the part's own townships and districts."""
        out = {}
        for key in ("townships", "districts"):
            if key not in self.layers:
                continue
            if key == self.by:
                mask = np.zeros(len(self.polygons), dtype=bool)
                mask[i] = True
            elif key == "districts":  # splitting by townships: the district each lies in
                mask = self._districts_of(i)
            else:
                mask = self.owner[key] == i
            out[key] = mask
        return out

    def _districts_of(self, i: int) -> np.ndarray:
        """The district a township part lies in (its ``district`` column, else its polygon)."""
        d = self.layers["districts"]
        if not hasattr(self, "_town_district"):
            self._town_district = owners(
                self.layers["townships"], np.asarray(d.geometry.values, dtype=object),
                parts=d, column="district", nearest=True)
        return np.arange(len(d)) == self._town_district[i]

    def footprint(self, i: int, own: dict[str, np.ndarray]) -> shapely.Geometry:
        """The part polygon with its own units, their gates, its own facilities and
        candidate sites, and (splitting districts) its own townships when they are
        the census areas population is estimated over."""
        geoms = [self.polygons[i]]
        keys = ["population", "gates", "facilities", "candidates"]
        if self.by == "districts" and self.area_layer == "townships":
            keys.append("townships")
        for key in keys:
            if key in own and key in self.layers:
                geoms.extend(self.layers[key].geometry.values[own[key]])
        geoms = [g for g in geoms if g is not None and not shapely.is_empty(g)]
        return shapely.union_all(shapely.make_valid(np.asarray(geoms, dtype=object)))

    def part(self, i: int, reach: Reach) -> PartInputs:
        """The inputs of part ``i`` (its row in the boundary layer)."""
        lay = self.layers
        own = self.own_areas(i)
        if "population" in lay:
            own["population"] = self.owner["population"] == i
        if self.gate_unit is not None:
            own["gates"] = np.isin(self.gate_unit, np.flatnonzero(own["population"]))
        for key in ("facilities", "candidates"):
            if key in lay:
                own[key] = self.owner[key] == i
        foot = self.footprint(i, own)
        cut = PartInputs({})
        for key, mask in own.items():
            if key != "gates":
                self._take(cut, key, mask)
        self._neighbours(cut, i, own, foot, reach)
        if "residential" in lay:
            self._take(cut, "residential",
                       _within(self._tree("residential"), foot, len(lay["residential"])))
        context = shapely.buffer(foot, reach.snap_m)
        for key in ("water", "parks"):
            if key in lay:
                self._take(cut, key, _within(self._tree(key), context, len(lay[key])))
        if self.lines is not None:
            mask = _within(self._tree("lines"), shapely.buffer(foot, reach.network_m),
                           len(self.lines))
            cut.lines = self.lines[mask].reset_index(drop=True)
            cut.counts["road_lines"] = int(mask.sum())
        return cut

    def _take(self, cut: PartInputs, key: str, mask: np.ndarray, name: str | None = None) -> None:
        name = name or key
        cut.layers[name] = self.layers[key][mask].reset_index(drop=True)
        cut.counts[name] = int(mask.sum())

    def _neighbours(self, cut: PartInputs, i: int, own: dict[str, np.ndarray],
                    foot: shapely.Geometry, reach: Reach) -> None:
        """Facilities and population units around the part, and the gates of all units."""
        lay = self.layers
        if "facilities" in lay:
            near = _within(self._tree("facilities"), shapely.buffer(foot, reach.facilities_m),
                           len(lay["facilities"])) & (self.owner["facilities"] != i)
            self._take(cut, "facilities", near, "facilities_nearby")
        units = own.get("population")
        if units is not None and reach.population_m > 0:
            near = self._nearby_units(shapely.buffer(foot, reach.population_m)) & ~units
            self._take(cut, "population", near, "population_nearby")
            units = units | near
        if self.gate_unit is not None and units is not None:
            self._take(cut, "gates", np.isin(self.gate_unit, np.flatnonzero(units)))

    def _nearby_units(self, area: shapely.Geometry) -> np.ndarray:
        pop = self.layers["population"]
        mask = _within(self._tree("population"), area, len(pop))
        if self.gate_unit is not None:
            gates_in = _within(self._tree("gates"), area, len(self.layers["gates"]))
            hit = self.gate_unit[gates_in]
            mask[hit[hit >= 0]] = True
        return mask


def own_census(census: pd.DataFrame | None, areas: Any, *, area_key: str) -> pd.DataFrame | None:
    """The census rows of a part's own areas (names compared without whitespace).

    The whole table where some own area has no row: the demand step then
    stops with the same message as a run over the whole area.
    """
    if census is None or areas is None or area_key not in getattr(areas, "columns", []):
        return census

    def clean(v: Any) -> str:
        return re.sub(r"\s+", "", str(v))

    names = {clean(v) for v in areas[area_key] if pd.notna(v)}
    mask = census["name"].map(clean).isin(names)
    if not names or len(set(census.loc[mask, "name"].map(clean))) < len(names):
        return census
    return census[mask].reset_index(drop=True)

