"""Benchmark of province-scale batches: serial vs a two-worker Dask LocalCluster.

Generates a province of demo-size districts (`planner.demo_province`: 100
copies of the demo district 示范区 on a 10 x 10 grid, 253,750 residents
each, about 25 million in all; ``--quick``: 10 districts, 5 x 2) and runs
``planner batch --by districts`` on it twice, in the same process and on
the same files:

* **serial**: ``scheduler="sync"``, the parts one after another in this
  process (no Dask) — the peer;
* **dask**: a ``LocalCluster`` of 2 worker processes (1 thread each) that
  this script starts and times separately, the parts as Dask tasks.

The scenario is the province's own (walking times to 30 min, 2SFCA, norms,
location models) without service areas, per-part maps, reports and
workbooks, so a part's time is its analysis and its GeoPackage/CSV files.

Printed: wall times, speed-up (serial tasks wall / dask tasks wall),
scheduler overhead (``tasks wall x workers - sum of task times``, per task
and as a share of the task time, also the idle gaps between tasks on each
worker from Dask's task stream), peak resident memory per worker (sampled
in each task), whether the merged tables are byte-identical to the serial
run's, and a projection from the per-task times of a 2,800-county national
run on 64 cores (one worker per core, counties the size of a demo
district; the serial run's mean part time, without the input read, is a
part's time on a core of its own).  The machine the reference numbers come
from is shared by other users: a speed-up measured under load understates
what 2 idle cores give.

Usage::

    python bench/batch_bench.py --quick            # 10 districts (a few minutes)
    python bench/batch_bench.py                    # 100 districts
    python bench/batch_bench.py --quick --readme   # also write the figures into README.md

Last line: ``RESULT batch parts=<n> speedup=<x> overhead_pct=<p> identical=<true|false>``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from planner.batch import run_batch  # noqa: E402
from planner.demo_province import province_yaml, write_province  # noqa: E402

NATIONAL_COUNTIES = 2800
NATIONAL_CORES = 64
README_START = "<!-- batch-bench:start -->"
README_END = "<!-- batch-bench:end -->"


def _scenario(folder: Path, n: int) -> Path:
    text = province_yaml(n_districts=n)
    text = text.replace("  cutoff_min: 30\n", "  cutoff_min: 30\n  service_areas: false\n")
    for key in ("map", "excel", "report"):
        text = text.replace(f"  {key}: true\n", f"  {key}: false\n")
    path = folder / "bench.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _identical(a: Path, b: Path) -> bool:
    names = sorted(p.relative_to(a) for p in a.glob("tables/*.csv")) + [Path("summary.csv")]
    other = sorted(p.relative_to(b) for p in b.glob("tables/*.csv")) + [Path("summary.csv")]
    return names == other and all((a / n).read_bytes() == (b / n).read_bytes() for n in names)


def _gaps(stream: list[dict]) -> tuple[float, int]:
    """Idle seconds between consecutive tasks on each worker (Dask task stream)."""
    by_worker: dict[str, list[tuple[float, float]]] = {}
    for t in stream:
        spans = [s for s in t.get("startstops", []) if s.get("action") == "compute"]
        if spans:
            by_worker.setdefault(t["worker"], []).append((spans[0]["start"], spans[-1]["stop"]))
    idle, n = 0.0, 0
    for spans in by_worker.values():
        spans.sort()
        for (_, stop), (start, _) in zip(spans, spans[1:]):
            idle += max(0.0, start - stop)
            n += 1
    return idle, n


def _run(args) -> tuple[str, list[str]]:
    import logging

    from distributed import Client, LocalCluster, get_task_stream

    logging.getLogger("distributed.nanny").setLevel(logging.ERROR)  # slow worker exits

    cols, rows = (5, 2) if args.quick else (10, 10)
    n = cols * rows
    work = Path(tempfile.mkdtemp(prefix="batch-bench-"))
    lines: list[str] = []

    def say(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    try:
        t0 = time.perf_counter()
        write_province(work / "data", cols, rows)
        scen = _scenario(work / "data", n)
        say(f"province: {n} demo districts ({cols} x {rows}), {n * 253750:,} residents, "
            f"generated in {time.perf_counter() - t0:.1f} s; {os.cpu_count()} CPU cores, "
            f"load average {os.getloadavg()[0]:.1f} at start")
        serial = run_batch(scen, by="districts", out_dir=work / "serial", scheduler="sync",
                           progress=False, whole_area_outputs=False)
        assert serial.ok, [o.error for o in serial.failed]
        t1 = time.perf_counter()
        with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            start_s = time.perf_counter() - t1
            with get_task_stream(client=client) as ts:
                dask = run_batch(scen, by="districts", out_dir=work / "dask", client=client,
                                 progress=False, whole_area_outputs=False)
            stream = ts.data
        assert dask.ok, [o.error for o in dask.failed]
        identical = _identical(serial.out_dir, dask.out_dir)
        tasks = [o.seconds for o in dask.parts]
        loads = [o.load_seconds for o in dask.parts if o.load_seconds]
        serial_tasks = [o.seconds for o in serial.parts]
        wall_s, wall_d = serial.timings["tasks"], dask.timings["tasks"]
        speedup = wall_s / wall_d
        busy = sum(tasks)
        overhead = wall_d * args.workers - busy
        overhead_pct = 100.0 * overhead / busy
        idle, n_gaps = _gaps(stream)
        per_worker: dict[str, float] = {}
        for o in dask.parts:
            per_worker[o.worker] = max(per_worker.get(o.worker, 0.0), o.peak_rss_mb)
        # one part per core: the serial run's times (no second worker sharing the cores)
        steady = [o.seconds - o.load_seconds for o in serial.parts]
        mean_task = statistics.fmean(steady)
        load = statistics.fmean(loads) if loads else 0.0
        national_s = (NATIONAL_COUNTIES * mean_task / NATIONAL_CORES) * (1 + overhead_pct / 100)
        national_s += load
        say(f"serial (sync, one process): tasks {wall_s:.1f} s wall, {sum(serial_tasks):.1f} s "
            f"of task time, merge {serial.timings['merge']:.1f} s")
        say(f"dask ({args.workers} workers): cluster start {start_s:.1f} s, tasks {wall_d:.1f} s "
            f"wall, {busy:.1f} s of task time, merge {dask.timings['merge']:.1f} s")
        say(f"speed-up (tasks wall, serial / dask): {speedup:.2f}x on {args.workers} workers")
        say(f"scheduler overhead: {overhead:.1f} s in all = {overhead / len(tasks):.2f} s per "
            f"task = {overhead_pct:.1f} % of task time (tasks wall x workers - task time); "
            f"idle gaps between tasks on a worker (task stream): {idle:.2f} s over {n_gaps} gaps")
        say(f"task time on dask: mean {statistics.fmean(tasks):.2f} s, median "
            f"{statistics.median(tasks):.2f} s, max {max(tasks):.2f} s; serial: mean "
            f"{statistics.fmean(serial_tasks):.2f} s; whole-province input read once per "
            f"worker: {load:.1f} s")
        cpu_s = sum(o.cpu_seconds for o in serial.parts)
        cpu_d = sum(o.cpu_seconds for o in dask.parts)
        firsts = [o.seconds for o in dask.parts if o.load_seconds]
        say(f"CPU time of the tasks: serial {cpu_s:.1f} s ({100 * cpu_s / sum(serial_tasks):.0f} % "
            f"of their wall time), dask {cpu_d:.1f} s ({100 * cpu_d / busy:.0f} %); a worker's "
            f"first task (imports, input read): {statistics.fmean(firsts):.2f} s vs "
            f"{statistics.fmean([t for o, t in zip(dask.parts, tasks) if not o.load_seconds] or [0]):.2f} s "
            "for the others")
        say("peak resident memory per worker: " + ", ".join(
            f"{w.split(':')[-1]} {mb:.0f} MB" for w, mb in sorted(per_worker.items())))
        say(f"merged tables identical to the serial run: {identical}")
        say(f"projection: {NATIONAL_COUNTIES:,} demo-size counties on {NATIONAL_CORES} cores: "
            f"{NATIONAL_COUNTIES} x {mean_task:.2f} s / {NATIONAL_CORES} x "
            f"(1 + {overhead_pct:.1f} %) + {load:.1f} s input read = "
            f"{national_s / 60:.1f} min, {NATIONAL_CORES} x {max(per_worker.values()):.0f} MB "
            "of memory")
        result = (f"RESULT batch parts={n} speedup={speedup:.2f} "
                  f"overhead_pct={overhead_pct:.1f} identical={str(identical).lower()}")
        return result, lines
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"outputs kept in {work}")


def _write_readme(lines: list[str], result: str, quick: bool) -> None:
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    cmd = "python bench/batch_bench.py" + (" --quick" if quick else "")
    block = (f"{README_START}\n`{cmd}` ({time.strftime('%Y-%m-%d')}):\n\n```\n"
             + "\n".join(lines) + f"\n{result}\n```\n{README_END}")
    if README_START in text:
        text = re.sub(re.escape(README_START) + ".*?" + re.escape(README_END), block, text,
                      flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    readme.write_text(text, encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10 districts instead of 100")
    ap.add_argument("--workers", type=int, default=2, help="LocalCluster workers (default 2)")
    ap.add_argument("--readme", action="store_true",
                    help="write the figures into README.md (between the batch-bench markers)")
    ap.add_argument("--keep", action="store_true", help="keep the generated files and outputs")
    args = ap.parse_args()
    result, lines = _run(args)
    if args.readme:
        _write_readme(lines, result, args.quick)
    print(result)


if __name__ == "__main__":
    main()
