"""The task of a batch: run one part of a study area, on whatever process Dask gives it.

A task carries only the scenario's settings, the part's id and the paths it
writes to (`PartTask`); the worker reads the whole area's inputs once and
keeps them in a module-level cache keyed by the scenario's layer settings
and the input files' size and modification time (`province`), so every
further part on that worker only cuts its share.  The part then runs the
ordinary pipeline (`planner.pipeline.run`) on its cut (`Preloaded`), and the
task returns a small `PartOutcome`: status, error text (the same text
`planner run` prints), seconds, and the peak memory of the worker process
while the part ran.

Parts on one worker process run one at a time (a lock): warnings are
captured per step and Matplotlib draws print maps through process-wide
state, so threads of one process would mix them.  Give workers one thread
each and use processes for parallelism (what `run_batch` starts).
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from planner.batch.parts import Cutter, Part, Reach, own_census

__all__ = ["PartOutcome", "PartTask", "Province", "clear_cache", "part_scenario", "province",
           "run_part"]

_CACHE: OrderedDict[str, Province] = OrderedDict()
#: Whole-area inputs kept per worker (several scenarios of a sweep may share one).
CACHE_SIZE = 2
_CACHE_LOCK = threading.Lock()
_RUN_LOCK = threading.Lock()


@dataclass
class PartTask:
    """Everything a worker needs to run one part: settings, ids and paths (no data)."""

    scenario: Any  # planner.pipeline.Scenario (small: settings only)
    by: str
    part: Part
    index: int  # row of the part in the boundary layer
    out_dir: Path
    reach: Reach
    input_hashes: dict[str, Any]
    record: dict[str, Any]
    variant: str = ""


@dataclass
class PartOutcome:
    """What a task returns: status, timings, memory, and the error text of a failed part."""

    part: str
    name: str
    folder: str
    variant: str = ""
    status: str = "done"  # "done" | "failed" | "reused"
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # CPU time of the worker process while the part ran (all threads)
    load_seconds: float = 0.0  # reading the whole area's inputs (first part on a worker)
    peak_rss_mb: float = 0.0
    rss_start_mb: float = 0.0
    error: str | None = None
    exit_code: int = 0
    warnings: list[str] = field(default_factory=list)
    input_warnings: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    steps: list[tuple[str, str, float]] = field(default_factory=list)
    worker: str = ""

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["steps"] = [list(s) for s in self.steps]
        return d


# --------------------------------------------------------------------------- the cache
@dataclass
class Province:
    """The whole area's inputs as read once on a worker, and the cutter of its parts."""

    layers: dict[str, Any]
    crs: Any
    cutter: Cutter
    lines: Any = None
    network: Any = None
    census: Any = None
    census_previous: Any = None
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _stamp(path: Path | None) -> list[Any] | None:
    if path is None:
        return None
    try:
        st = path.stat()
    except OSError:
        return [str(path), None]
    if path.is_dir():
        return [str(path), sorted((str(f), f.stat().st_size, f.stat().st_mtime_ns)
                                  for f in path.rglob("*") if f.is_file())]
    return [str(path), st.st_size, st.st_mtime_ns]


def _cache_key(scenario: Any, by: str) -> str:
    from planner.pipeline.scenario import input_paths

    net = scenario.network
    dem = scenario.demand
    key = {
        "layers": json.loads(scenario.layers.model_dump_json()), "crs": scenario.crs,
        "base_dir": str(scenario.base_dir), "by": by,
        "network": None if net is None else json.loads(net.model_dump_json(include={
            "source", "path", "layer", "coord_system", "place", "bbox", "profile", "speed_mps",
            "exclude_classes", "include_classes", "avoid_steps", "join_tolerance_m",
            "min_component_share", "crossing_delay_s", "class_column", "name_column"})),
        "demand": None if dem is None else json.loads(dem.model_dump_json(include={
            "census", "census_previous", "table_key", "trust", "area_layer", "area_key"})),
        "files": [_stamp(scenario.resolve(p)) for _, p in input_paths(scenario)],
    }
    return json.dumps(key, sort_keys=True, default=str)


def clear_cache() -> None:
    """Forget the whole-area inputs this process holds."""
    with _CACHE_LOCK:
        _CACHE.clear()


def province(scenario: Any, by: str) -> tuple[Province, bool]:
    """The whole area's inputs for ``scenario`` on this worker (read on first use).

    Returns the cached `Province` and whether this call read it.
    """
    key = _cache_key(scenario, by)
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key], False
        prov = _load(scenario, by)
        _CACHE[key] = prov
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
        return prov, True


def _load(scenario: Any, by: str) -> Province:
    """Read the whole area's layers (the pipeline's layers step), road lines and census."""
    from planner import demand as DM
    from planner import layers as L
    from planner.pipeline import Preloaded, run

    t0 = time.perf_counter()
    whole = scenario.model_copy(update={"output": None})
    net = scenario.network
    steps = ["layers"]
    if net is not None and net.source != "lines":
        steps.append("network")  # OSM / GraphML sources: built once, shared by every part
    res = run(whole, out_dir=None, steps=steps, preloaded=Preloaded(input_hashes={}))
    crs = res.crs
    lines = None
    if net is not None and net.source == "lines" and net.path is not None:
        path = scenario.resolve(net.path)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            lines = L.read_layer(path, kind="lines", layer=net.layer,
                                 coord_system=net.coord_system, target_crs=crs,
                                 name=f"network ({path.name})")
        res.warnings.extend(str(w.message) for w in caught)
    dem = scenario.demand
    census = previous = None
    if dem is not None and dem.census is not None:
        census = DM.read_census(scenario.resolve(dem.census), key=dem.table_key, trust=dem.trust)
        if dem.census_previous is not None:
            previous = DM.read_census(scenario.resolve(dem.census_previous),
                                      key=dem.table_key, trust=dem.trust)
    cutter = Cutter(res.layers, by=by, lines=lines,
                    area_layer=dem.area_layer if dem is not None else None)
    return Province(layers=res.layers, crs=crs, cutter=cutter, lines=lines,
                    network=res.artifacts.get("network"), census=census,
                    census_previous=previous, warnings=list(res.warnings) + cutter.notes(),
                    seconds=time.perf_counter() - t0)


# --------------------------------------------------------------------------- one part
def part_scenario(scenario: Any, part: Part, crs: Any = None) -> Any:
    """The scenario a part runs: named after the part, the study CRS fixed, tables written."""
    update: dict[str, Any] = {"name": f"{scenario.name} · {part.name}", "output": None}
    if crs is not None:
        update["crs"] = crs.to_string() if hasattr(crs, "to_string") else str(crs)
    outputs = scenario.outputs.model_copy(update={"gpkg": True, "csv": True})
    update["outputs"] = outputs
    return scenario.model_copy(update=update)


def _preloaded(prov: Province, task: PartTask):
    from planner.pipeline import Preloaded

    inputs = prov.cutter.part(task.index, task.reach)
    dem = task.scenario.demand
    tables = {}
    if prov.census is not None:
        areas = inputs.layers.get(dem.area_layer)
        tables["census"] = own_census(prov.census, areas, area_key=dem.area_key)
        if prov.census_previous is not None:
            tables["census_previous"] = own_census(prov.census_previous, areas,
                                                   area_key=dem.area_key)
    record = {"batch": dict(task.record), "batch_counts": inputs.counts}
    network = prov.network if prov.network is not None else inputs.lines
    return Preloaded(layers=inputs.layers, crs=prov.crs, network=network, tables=tables,
                     input_hashes=task.input_hashes, record=record), inputs.counts


class _PeakMemory:
    """The largest resident memory of this process while a part runs (sampled)."""

    def __init__(self, interval_s: float = 0.02) -> None:
        import psutil

        self._proc = psutil.Process()
        self.start_mb = self.peak_mb = self._proc.memory_info().rss / 2**20
        self._stop = threading.Event()
        self._interval = interval_s
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(self._interval):
            self.peak_mb = max(self.peak_mb, self._proc.memory_info().rss / 2**20)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, self._proc.memory_info().rss / 2**20)
        return self.peak_mb


def run_part(task: PartTask) -> PartOutcome:
    """Run one part; never raises for the part's own errors (they are returned)."""
    from planner._errors import error_text
    from planner.pipeline import run

    out = PartOutcome(part=task.part.id, name=task.part.name, folder=task.part.folder,
                      variant=task.variant, worker=f"{socket.gethostname()}:{os.getpid()}")
    with _RUN_LOCK:
        mem = _PeakMemory()
        t0, c0 = time.perf_counter(), time.process_time()
        result = None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # collected on the result instead
                if task.by:
                    prov, loaded = province(task.scenario, task.by)
                    out.input_warnings = list(prov.warnings)
                    if loaded:
                        out.load_seconds = prov.seconds
                    pre, out.counts = _preloaded(prov, task)
                    scen = part_scenario(task.scenario, task.part, prov.crs)
                else:  # the whole area as one part: an ordinary run
                    from planner.pipeline import Preloaded

                    pre = Preloaded(input_hashes=task.input_hashes,
                                    record={"batch": dict(task.record)})
                    scen = part_scenario(task.scenario, task.part)
                    scen = scen.model_copy(update={"name": task.scenario.name})
                result = run(scen, out_dir=task.out_dir, overwrite=True, preloaded=pre)
        except Exception as exc:  # noqa: BLE001 - a failed part is reported, the others go on
            out.status = "failed"
            out.error, out.exit_code = error_text(exc)
        finally:
            out.seconds = time.perf_counter() - t0
            out.cpu_seconds = round(time.process_time() - c0, 3)
            out.peak_rss_mb = round(mem.stop(), 1)
            out.rss_start_mb = round(mem.start_mb, 1)
        if result is not None:
            out.warnings = list(result.warnings)
            out.steps = [(s.name, s.status, round(s.seconds, 3)) for s in result.steps]
    return out
