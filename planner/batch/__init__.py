"""Province-scale runs: a study area split into parts, run as Dask tasks, merged exactly.

``planner batch SCENARIO.yaml --by districts -o out`` (or `run_batch`) runs
one task per district (or township) on a Dask cluster: a ``LocalCluster``
sized to the machine by default, any ``distributed.Client`` or scheduler
address, or ``scheduler="sync"`` for the parts one after another.  Each
part runs the ordinary pipeline on its own population units, facilities
and boundaries plus the neighbours within reach (`parts.Reach`: the
farthest walk within the cut-off plus the snap limit), so residents near a
border reach facilities across it, and each resident is counted by exactly
one part: the one their unit's ``district`` / ``township`` column names, else
the one its representative point lies in (`parts.owners`).  Per-unit
walking times, coverage tables and norm checks equal one run over the whole
area.

Layout:

- `parts` — which rows a part owns and what it reads around them;
- `worker` — the task (`run_part`), the worker-local cache of the whole
  area's inputs, peak memory per task;
- `merge` — merged tables and layers, the summary, the whole-area map and
  report;
- `sweep` / `compare` — scenario variants and their comparison;
- `progress` — the progress bar;
- `run` — `run_batch` and its results.

What a part does not count toward: facilities across the border serve its
residents (walking times, 2SFCA supply) but not its norm checks, service
areas or location models' existing-site counts; its norm checks cover its
own communities, townships and facilities (and its district when split by
districts; split by townships, district rows are checked once over the
merged whole).
"""

from __future__ import annotations

from planner.batch.parts import Part, Reach, reach_of
from planner.batch.run import BatchResult, VariantResult, run_batch
from planner.batch.worker import PartOutcome

__all__ = ["BatchResult", "Part", "PartOutcome", "Reach", "VariantResult", "reach_of",
           "run_batch"]
