"""HiGHS's run clock adds up over the runs of one object; `set_deadline` accounts for it.

A cut loop or a branch-and-bound tree re-solves one LP many times.  With
``time_limit`` set to the time left, HiGHS stopped once the summed LP time
passed the time left (the exact p-median stopped at 21 s under a 40 s limit).
"""

from __future__ import annotations

import time

import highspy
import numpy as np

from planner.locate._highs import set_deadline


def lp(n=400, rows=4000, seed=0):
    """A dense-ish random packing LP that takes HiGHS a measurable time."""
    rng = np.random.default_rng(seed)
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    h.addVars(n, np.zeros(n), np.ones(n))
    h.changeColsCost(n, np.arange(n, dtype=np.int32), -rng.random(n))
    k = 40
    idx = np.concatenate([rng.choice(n, k, replace=False) for _ in range(rows)]).astype(np.int32)
    h.addRows(rows, np.full(rows, -highspy.kHighsInf), np.full(rows, 5.0), rows * k,
              np.arange(0, rows * k, k, dtype=np.int32), idx, rng.random(rows * k))
    return h


def test_the_run_clock_adds_up_and_set_deadline_allows_for_it():
    h = lp()
    h.run()
    assert h.getModelStatus() == highspy.HighsModelStatus.kOptimal
    spent = h.getRunTime()
    assert spent > 0.02, "the first LP was too quick to show the clock"
    # a changed LP (as after adding cuts) re-solved from its basis: a few iterations;
    # give it half the time spent so far
    h.changeColCost(0, -3.0)
    h.setOptionValue("time_limit", spent / 2)  # what the solver used to do
    h.run()
    assert h.getModelStatus() == highspy.HighsModelStatus.kTimeLimit  # HiGHS's clock adds up
    h.changeColCost(1, -3.0)
    set_deadline(h, time.perf_counter() + 1.0)  # a second left: plenty for a few iterations
    h.run()
    assert h.getModelStatus() == highspy.HighsModelStatus.kOptimal
    assert h.getOptionValue("time_limit")[1] > spent  # the clock's reading plus the time left
