"""`run_batch`: every part of a study area (and every scenario of a sweep) as Dask tasks."""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from planner._errors import OutputError, ScenarioError
from planner.batch import merge as MG
from planner.batch.parts import BY, Part, list_parts, reach_of
from planner.batch.progress import Progress
from planner.batch.sweep import Variant, variants
from planner.batch.worker import PartOutcome, PartTask, run_part

__all__ = ["BATCH_FORMAT", "BatchResult", "VariantResult", "run_batch"]

#: Version of the batch layout (a part made by another version is run again).
BATCH_FORMAT = 1


@dataclass
class VariantResult:
    """One scenario of a batch: its parts and the whole area merged from them."""

    label: str
    scenario: Any
    out_dir: Path
    parts: list[PartOutcome]
    values: dict[str, Any] = field(default_factory=dict)
    layers: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    summary: pd.DataFrame | None = None
    warnings: list[str] = field(default_factory=list)

    def part(self, part: str) -> PartOutcome:
        """The outcome of a part, by id or name."""
        for o in self.parts:
            if part in (o.part, o.name):
                return o
        raise KeyError(f"no part {part!r}; parts: {', '.join(o.part for o in self.parts)}")

    def part_dir(self, part: str) -> Path:
        """The output folder of a part (the same files as `planner run` writes)."""
        return self.out_dir / "parts" / self.part(part).folder

    def part_table(self, part: str, name: str) -> pd.DataFrame:
        """A table a part wrote (``tables/<name>.csv``)."""
        return pd.read_csv(self.part_dir(part) / "tables" / f"{name}.csv", encoding="utf-8-sig")

    def part_layer(self, part: str, name: str):
        """A layer a part wrote (``layers.gpkg``)."""
        import geopandas as gpd

        return gpd.read_file(self.part_dir(part) / "layers.gpkg", layer=name, engine="pyogrio")


@dataclass
class BatchResult:
    """What `run_batch` did: one `VariantResult` per scenario, and the comparison of a sweep.

    For a single scenario, ``parts``, ``layers``, ``tables`` and ``summary``
    are those of its only variant.
    """

    out_dir: Path
    by: str | None
    variants: list[VariantResult]
    scheduler: str
    workers: int
    seconds: float
    comparison: pd.DataFrame | None = None
    #: Wall seconds of each phase: ``plan`` (scenarios, parts, hashes, reuse checks),
    #: ``start`` (starting a LocalCluster), ``tasks`` (submitting to the last part
    #: finished), ``merge`` (merged files, map, report).
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def parts(self) -> list[PartOutcome]:
        return [o for v in self.variants for o in v.parts]

    @property
    def layers(self) -> dict[str, Any]:
        return self.variants[0].layers

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        return self.variants[0].tables

    @property
    def summary(self) -> pd.DataFrame | None:
        return self.variants[0].summary

    @property
    def failed(self) -> list[PartOutcome]:
        return [o for o in self.parts if o.status == "failed"]

    @property
    def ok(self) -> bool:
        return not self.failed

    def __repr__(self) -> str:
        n = len(self.parts)
        counts = {s: sum(o.status == s for o in self.parts) for s in ("done", "reused", "failed")}
        return (f"<BatchResult {n} part(s) by {self.by or 'whole area'} in {self.out_dir}: "
                + ", ".join(f"{k} {v}" for k, v in counts.items()) + ">")

    def _repr_html_(self) -> str:
        rows = pd.DataFrame([{"variant": o.variant, "part": o.part, "name": o.name,
                              "status": o.status, "seconds": round(o.seconds, 2),
                              "peak_rss_mb": o.peak_rss_mb, "error": o.error or ""}
                             for o in self.parts])
        return f"<p>{self!r}</p>" + rows.to_html(index=False, escape=True)


# --------------------------------------------------------------------------- helpers
def _sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _record(v: Variant, part: Part, by: str | None, reach: Any) -> dict[str, Any]:
    from planner import __version__

    return {"format": BATCH_FORMAT, "planner": __version__, "variant": v.label,
            "part": part.id, "name": part.name, "by": by,
            "reach_m": reach.as_dict() if reach is not None else None,
            "settings_sha256": _sha256_text(v.scenario.model_dump_json())}


def _reusable(folder: Path, record: dict[str, Any], hashes: dict[str, Any]) -> bool:
    """Whether a part's folder holds a finished run of the same inputs and settings."""
    info_path = folder / "run.json"
    if not info_path.is_file():
        return False
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
    except (ValueError, OSError):
        return False
    if info.get("status") != "done" or info.get("batch") != record:
        return False
    if info.get("inputs") != json.loads(json.dumps(hashes, default=str)):
        return False
    return all((folder / f).is_file() for f in info.get("files", []))


def _check_out_dir(out: Path, scenario: Any, *, overwrite: bool) -> Path:
    from planner.pipeline import outputs as O

    out = Path(out).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise OutputError(f"Output path {out} exists and is not a folder. Choose a folder with "
                          "-o/--out.")
    if out.is_dir() and any(out.iterdir()) and not (out / "batch.json").is_file() \
            and not overwrite:
        raise OutputError(
            f"Output folder {out} is not empty and holds no earlier batch (batch.json). Pass "
            "--overwrite (overwrite=True) to write there anyway, or choose another folder.")
    O.prepare_out_dir(scenario, out, overwrite=True)  # refuses a folder holding inputs
    return out


def _boundaries(scenario: Any, by: str):
    from planner.pipeline.steps import load_layer

    settings = getattr(scenario.layers, by, None)
    if settings is None:
        raise ScenarioError(f"Splitting by {by} needs a `layers: {by}:` boundary layer in "
                            f"scenario {scenario.name!r}.")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the workers read it again and report its repairs
        return load_layer(settings, kind="boundaries", scenario=scenario, target_crs=None,
                          name=by)


def _check_split(scenario: Any, by: str) -> None:
    dem = scenario.demand
    if (by == "townships" and scenario.layers.population is None and dem is not None
            and dem.census is not None and dem.area_layer == "districts"):
        raise ScenarioError(
            "Population is estimated from a census table by district, which a township part "
            "cannot spread over its share alone. Split by districts (--by districts), or give "
            "a census table by township (demand.area_layer: townships).")


# --------------------------------------------------------------------------- running tasks
class _Runner:
    """Runs tasks serially (``scheduler="sync"``) or on a Dask client, with progress."""

    def __init__(self, client: Any, scheduler: str | None, workers: int | None,
                 memory_limit: Any, n_tasks: int) -> None:
        self.own_cluster = self.own_client = None
        self.client = client
        self.sync = scheduler == "sync" and client is None
        if self.sync:
            self.description, self.n_workers = "sync (one part after another, in-process)", 1
            return
        from distributed import Client, LocalCluster

        if client is None and scheduler:
            self.client = self.own_client = Client(scheduler)
        elif client is None:
            n = workers or min(os.cpu_count() or 1, max(n_tasks, 1))
            self.own_cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                            memory_limit=memory_limit, dashboard_address=None)
            self.client = self.own_client = Client(self.own_cluster)
        info = self.client.scheduler_info()
        self.n_workers = len(info.get("workers", {})) or (workers or 1)
        limits = sorted({w.get("memory_limit") for w in info.get("workers", {}).values()})
        kind = "LocalCluster" if self.own_cluster is not None else "cluster"
        self.description = (f"{kind} {self.client.scheduler.address} ({self.n_workers} workers"
                            + (f", memory limit {limits[0] / 2**30:.1f} GiB each)"
                               if limits and limits[0] else ")"))

    def close(self) -> None:
        import logging

        quiet = [logging.getLogger(n) for n in ("distributed.nanny", "distributed.worker")]
        levels = [lg.level for lg in quiet]
        for lg in quiet:  # a busy machine takes a few seconds to stop workers: not news
            lg.setLevel(logging.ERROR)
        try:
            if self.own_client is not None:
                self.own_client.close()
            if self.own_cluster is not None:
                self.own_cluster.close()
        finally:
            for lg, level in zip(quiet, levels, strict=True):
                lg.setLevel(level)

    def run(self, tasks: list[PartTask], progress: Progress) -> dict[int, PartOutcome]:
        if self.sync:
            out = {}
            for k, t in enumerate(tasks):
                progress.running(1)
                out[k] = run_part(t)
                progress.finished(out[k])
            return out
        return self._run_dask(tasks, progress)

    def _run_dask(self, tasks: list[PartTask], progress: Progress) -> dict[int, PartOutcome]:
        import uuid

        from distributed import wait

        stamp = uuid.uuid4().hex[:8]
        futures = {self.client.submit(run_part, t, key=f"planner-part-{stamp}-{k}", pure=False,
                                      retries=0): k for k, t in enumerate(tasks)}
        keys = {f.key for f in futures}
        out: dict[int, PartOutcome] = {}
        pending = set(futures)
        while pending:
            try:
                done = wait(pending, timeout=1.0, return_when="FIRST_COMPLETED").done
            except TimeoutError:
                done = set()
            for f in done:
                pending.discard(f)
                k = futures[f]
                out[k] = self._outcome(f, tasks[k])
                progress.finished(out[k])
            try:
                busy = self.client.processing()
                progress.running(sum(1 for ks in busy.values() for key in ks if key in keys))
            except Exception:  # noqa: BLE001 - the count is cosmetic
                pass
        return out

    def _outcome(self, future: Any, task: PartTask) -> PartOutcome:
        try:
            return future.result()
        except Exception as exc:  # noqa: BLE001 - a lost worker fails its part, not the batch
            from distributed import KilledWorker

            if isinstance(exc, KilledWorker):
                text = ("the workers running this part died, most likely over their memory "
                        "limit (Dask restarts a worker that passes 95 % of it); give workers "
                        "more memory (--memory-limit) or split by townships")
            else:
                text = f"the task failed: {type(exc).__name__}: {exc}"
            return PartOutcome(part=task.part.id, name=task.part.name, folder=task.part.folder,
                               variant=task.variant, status="failed", error=text, exit_code=1)


# --------------------------------------------------------------------------- run_batch
def _plan(v: Variant, by: str | None, only: list[str] | None) -> list[Part]:
    if by is None:
        return [Part("all", v.scenario.name, "all")]
    if by not in BY:
        raise ScenarioError(f"--by must be one of {', '.join(BY)}, not {by!r}.")
    _check_split(v.scenario, by)
    return list_parts(_boundaries(v.scenario, by), by=by, only=only)


def run_batch(
    scenario: Any,
    *,
    by: str | None = None,
    out_dir: str | os.PathLike | None = None,
    sweep: Any = None,
    parts: list[str] | None = None,
    client: Any = None,
    scheduler: str | None = None,
    workers: int | None = None,
    memory_limit: Any = "auto",
    overwrite: bool = False,
    progress: bool = True,
    whole_area_outputs: bool = True,
) -> BatchResult:
    """Run a study area part by part (and a sweep of scenarios) as Dask tasks.

    Parameters
    ----------
    scenario
        A scenario file, a `Scenario`, or a list of them (compared as a sweep).
    by
        ``"districts"`` or ``"townships"``: one part per feature of that
        boundary layer, each run on its own rows and a buffer of neighbours
        (`planner.batch.parts`); ``None`` runs each scenario whole.
    out_dir
        Output folder (default: the first scenario's ``output:``).  It gets
        ``parts/<id>/`` (the files `planner run` writes) and the whole area's
        ``layers.gpkg``, ``tables/*.csv`` (with a ``part`` column),
        ``summary.csv``, map, report and ``batch.json``; with several
        scenarios one such folder per scenario and ``comparison.csv`` /
        ``comparison.html``.
    sweep
        ``["network.speed_mps=0.8,1.0", "norms.plan_year=2025,2030"]`` or
        ``{"network.speed_mps": [0.8, 1.0]}``: every combination is a scenario.
    parts
        Run only these parts (ids or names).
    client
        A ``distributed.Client``; none starts a ``LocalCluster`` (one
        single-threaded worker process per core, at most one per part) and
        closes it afterwards.
    scheduler
        A scheduler address (``tcp://host:8786``) instead of ``client``, or
        ``"sync"``: the parts one after another in this process (no Dask).
    workers, memory_limit
        Size of the ``LocalCluster`` (workers default: the cores); the memory
        limit per worker is Dask's (``"auto"`` shares the machine's memory;
        ``"4GB"``); a worker over it is restarted by Dask and its part fails.
    overwrite
        Run every part again and write into a non-empty folder; without it,
        parts whose ``run.json`` records the same inputs (SHA-256), settings
        and part are reused.
    progress
        Show a progress bar (terminal or Jupyter) of parts done, failed,
        running and the time left.
    whole_area_outputs
        Write the whole area's map and report (``False`` for benchmarks).

    Returns
    -------
    BatchResult
        Failed parts are reported in it (``result.failed``), never raised.

    Raises
    ------
    ScenarioError, OutputError, LayerError
        Before any part runs: a bad scenario, sweep, boundary layer or
        output folder.
    """
    from planner.pipeline import outputs as O

    t0 = time.perf_counter()
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    vars_ = variants(scenario if isinstance(scenario, (list, tuple)) else [scenario], sweep)
    first = vars_[0].scenario
    if out_dir is None:
        out_dir = first.resolve(first.output) if first.output else None
    if out_dir is None:
        raise OutputError("A batch needs an output folder: pass -o/--out (out_dir=) or set "
                          "`output:` in the scenario.")
    root = _check_out_dir(Path(out_dir), first, overwrite=overwrite)
    single = len(vars_) == 1
    plans, tasks, reused = [], [], []
    hashes_cache: dict[str, dict] = {}
    for v in vars_:
        vdir = root if single else root / v.label
        if not single:
            O.prepare_out_dir(v.scenario, vdir, overwrite=True)
        vparts = _plan(v, by, parts)
        reach = reach_of(v.scenario) if by is not None else None
        hkey = f"{v.scenario_file}|{json.dumps(json.loads(v.scenario.layers.model_dump_json()))}"
        if hkey not in hashes_cache:
            hashes_cache[hkey] = O.hash_inputs(v.scenario, v.scenario_file)
        hashes = hashes_cache[hkey]
        slots = []
        for p in vparts:
            record = _record(v, p, by, reach)
            folder = vdir / "parts" / p.folder
            if not overwrite and _reusable(folder, record, hashes):
                slots.append(("reused", _reused_outcome(folder, p, v.label)))
                reused.append(slots[-1][1])
                continue
            tasks.append(PartTask(scenario=v.scenario, by=by or "", part=p, index=p.row,
                                  out_dir=folder, reach=reach, input_hashes=hashes,
                                  record=record, variant=v.label))
            slots.append(("task", len(tasks) - 1))
        plans.append((v, vdir, vparts, slots, hashes))
    timings = {"plan": time.perf_counter() - t0}
    bar = Progress(len(tasks), reused=len(reused), enabled=progress)
    runner = None
    try:
        t1 = time.perf_counter()
        runner = _Runner(client, scheduler, workers, memory_limit, len(tasks)) if tasks else None
        t2 = time.perf_counter()
        outcomes = runner.run(tasks, bar) if runner is not None else {}
        timings.update(start=t2 - t1, tasks=time.perf_counter() - t2)
    finally:
        bar.close()
        if runner is not None:
            runner.close()
    description = runner.description if runner is not None else "none (every part reused)"
    n_workers = runner.n_workers if runner is not None else 0
    t3 = time.perf_counter()
    results = []
    for v, vdir, vparts, slots, hashes in plans:
        pairs = [(p, s[1] if s[0] == "reused" else outcomes[s[1]])
                 for p, s in zip(vparts, slots, strict=True)]
        results.append(_finish_variant(v, vdir, by, pairs, hashes, started=started,
                                       scheduler=description, workers=n_workers,
                                       whole_area_outputs=whole_area_outputs))
    comparison = None
    if not single:
        from planner.batch.compare import write_comparison

        comparison = write_comparison(root, results, by=by)
    timings["merge"] = time.perf_counter() - t3
    return BatchResult(out_dir=root, by=by, variants=results, scheduler=description,
                       workers=n_workers, seconds=time.perf_counter() - t0,
                       comparison=comparison, timings=timings)


def _reused_outcome(folder: Path, part: Part, variant: str) -> PartOutcome:
    info = json.loads((folder / "run.json").read_text(encoding="utf-8"))
    return PartOutcome(part=part.id, name=part.name, folder=part.folder, variant=variant,
                       status="reused", seconds=float(info.get("seconds") or 0.0),
                       warnings=list(info.get("warnings") or []),
                       counts=dict(info.get("batch_counts") or {}),
                       steps=[(s["name"], s["status"], s["seconds"])
                              for s in info.get("steps", [])])


def _finish_variant(v: Variant, vdir: Path, by: str | None,
                    pairs: list[tuple[Part, PartOutcome]], hashes: dict, *, started: str,
                    scheduler: str, workers: int, whole_area_outputs: bool) -> VariantResult:
    """Merge the parts of one scenario and write its whole-area files and batch.json."""
    lang = v.scenario.lang
    acc = v.scenario.access
    thresholds = list(acc.thresholds_min) if acc is not None else [5.0, 10.0, 15.0]
    tables = MG.merge_tables(vdir, pairs)
    layers = MG.merge_layers(vdir, pairs)
    if by == "townships" and len(tables.get("norm_checks", ())):
        tables["norm_checks"] = _norms_by_township(v.scenario, layers, tables["norm_checks"],
                                                   lang=lang)
    typed_tables = {k: MG.typed(t) for k, t in tables.items()}
    cov = MG.whole_coverage(layers, tables, thresholds_min=thresholds, lang=lang)
    if cov is not None:
        tables["coverage"] = typed_tables["coverage"] = cov
    for name, table in tables.items():
        MG.write_csv(table, vdir / "tables" / f"{name}.csv")
    summary = MG.province_summary(layers, typed_tables, pairs, thresholds_min=thresholds,
                                  lang=lang)
    MG.write_csv(summary, vdir / "summary.csv")
    crs = next((g.crs for g in layers.values() if getattr(g, "crs", None) is not None), None)
    input_warnings = list(dict.fromkeys(w for _, o in pairs for w in o.input_warnings))
    if layers:
        MG.write_whole_area(vdir, v.scenario, layers, typed_tables, pairs, inputs=hashes,
                            crs=crs, make_map=whole_area_outputs,
                            make_report=whole_area_outputs)
    info = {
        "planner_batch": BATCH_FORMAT, "scenario": v.scenario.name, "variant": v.label,
        "values": v.values, "by": by, "started": started,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "scheduler": scheduler,
        "workers": workers,
        "parts": [{"id": p.id, "name": p.name, "folder": f"parts/{p.folder}",
                   **{k: val for k, val in o.as_dict().items()
                      if k not in ("part", "name", "folder", "warnings", "input_warnings")},
                   "n_warnings": len(o.warnings)} for p, o in pairs],
        "failed": sum(o.status == "failed" for _, o in pairs),
        "input_warnings": input_warnings,
        "inputs": hashes,
    }
    MG.write_json(vdir / "batch.json", info)
    return VariantResult(label=v.label, scenario=v.scenario, out_dir=vdir,
                         parts=[o for _, o in pairs], values=v.values, layers=layers,
                         tables=typed_tables, summary=summary, warnings=input_warnings)


def _norms_by_township(scenario: Any, layers: dict, table: pd.DataFrame, *,
                       lang: str) -> pd.DataFrame:
    """Township parts' norm rows, with district rows checked again over the whole area."""
    keep = table[table["scope"] != "district"]
    whole = MG.district_norms(scenario, layers, lang=lang)
    if whole is None or not len(whole):
        return keep.reset_index(drop=True)
    from planner.pipeline.outputs import plain_columns

    whole = plain_columns(whole).astype(object).where(whole.notna(), "")
    whole = whole.astype(str).replace({"nan": "", "None": ""})
    whole.insert(0, "part", "")
    return pd.concat([keep, whole[keep.columns]], ignore_index=True)
