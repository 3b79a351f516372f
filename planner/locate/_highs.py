"""HiGHS set up for the solvers: quiet, seeded, and its time limit as a deadline."""

from __future__ import annotations

import time

import highspy


def set_deadline(h: highspy.Highs, deadline: float) -> None:
    """Make ``h.run()`` stop at ``deadline`` (a `time.perf_counter` value).

    HiGHS compares its ``time_limit`` option with its run clock, and that clock
    adds up over every ``run()`` of the same object: it is not reset per run.
    A cut loop or a tree re-solving one LP hundreds of times would otherwise
    stop once the LP time summed over all its runs passed the time *left*,
    often at half the caller's limit, and how soon would depend on the limit.
    The limit is therefore the clock's reading plus the time left.
    """
    h.setOptionValue("time_limit", h.getRunTime() + max(0.01, deadline - time.perf_counter()))


class _QuietHighs(highspy.Highs):
    """A `highspy.Highs` that prints nothing, not even HiGHS's banner.

    highspy's constructor registers its callbacks (``enableCallbacks``), and
    that first call prints "Running HiGHS ... Copyright ..." while
    ``output_flag`` still has its default (true); setting the option after
    construction is too late.  Here it is switched off just before.
    """

    def enableCallbacks(self) -> None:  # highspy's name
        self.setOptionValue("output_flag", False)
        super().enableCallbacks()


def new_highs(*, time_limit: float, seed: int, threads: int) -> highspy.Highs:
    h = _QuietHighs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("random_seed", int(seed))
    h.setOptionValue("threads", int(threads))
    h.setOptionValue("time_limit", max(0.01, float(time_limit)))
    return h
