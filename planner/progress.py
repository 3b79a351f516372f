"""Feedback during long work: progress bars and solver progress, in a terminal and in Jupyter.

Library functions that can run for minutes (`planner.access.service_areas`,
the exact location solvers, the report) take a ``progress`` option:
``False`` (default) is silent, ``True`` shows a bar, a string shows a bar
with that label.  Bars are `tqdm`'s: text on stderr in a terminal, a widget
in Jupyter when ``ipywidgets`` is installed (text otherwise, never a
warning).  `SolveProgress` is what the exact solvers report as they go
(incumbent, bound, gap); `solver_printer` turns it into lines.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Progress", "SolveProgress", "bar", "in_notebook", "solver_printer", "write"]

#: What a ``progress=`` option accepts: off, on, or on with a label.
Progress = bool | str


def in_notebook() -> bool:
    """Whether code runs in a Jupyter kernel (not a terminal IPython, not a script)."""
    ip = sys.modules.get("IPython")
    if ip is None:
        return False
    try:
        shell = ip.get_ipython()
    except AttributeError:  # pragma: no cover - a stub IPython module
        return False
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def _tqdm_class() -> Any:
    if in_notebook():
        try:
            import ipywidgets  # noqa: F401
            from tqdm.notebook import tqdm

            return tqdm
        except ImportError:  # no widgets: text bars work in a notebook too
            pass
    from tqdm import tqdm

    return tqdm


class _NoBar:
    """A bar that shows nothing (``progress=False``)."""

    def update(self, n: int = 1) -> None:  # noqa: D401 - tqdm's interface
        pass

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass


def bar(total: int | None, *, progress: Progress, label: str, unit: str = "it") -> Any:
    """A progress bar of ``total`` steps (a no-op when ``progress`` is false).

    ``progress`` may be a string: the bar's label (e.g. in the run's
    language); otherwise ``label`` is used.  Use as a context manager and
    call ``.update(n)``; safe to update from threads.
    """
    if not progress:
        return _NoBar()
    desc = progress if isinstance(progress, str) else label
    return _tqdm_class()(total=total, desc=desc, unit=unit, leave=False, file=sys.stderr,
                         dynamic_ncols=True, mininterval=0.2)


def write(text: str, *, file: Any = None) -> None:
    """Print a line without breaking a progress bar that is showing."""
    from tqdm import tqdm

    tqdm.write(text, file=file if file is not None else sys.stdout)


@dataclass(frozen=True)
class SolveProgress:
    """One report of an exact solve: where it is and how good the answer is so far.

    ``incumbent`` is the best objective found (upper bound for a
    minimisation), ``bound`` the proven bound (``-inf`` until the first LP),
    ``gap`` their relative difference (``inf`` when unknown), ``phase``
    what the solver is doing (``heuristic``, ``lp``, ``fixing``, ``branch``,
    ``mip``, ``done``), ``nodes`` the branch-and-cut nodes so far and
    ``seconds`` the time since the solve started.
    """

    phase: str
    incumbent: float
    bound: float
    gap: float
    seconds: float
    nodes: int = 0

    def text(self) -> str:
        gap = "–" if not math.isfinite(self.gap) else f"{100 * self.gap:.2f}%"
        bound = "–" if not math.isfinite(self.bound) else f"{self.bound:,.6g}"
        nodes = f", nodes {self.nodes}" if self.nodes else ""
        return (f"{self.phase}: incumbent {self.incumbent:,.6g}, bound {bound}, gap {gap}"
                f"{nodes} ({self.seconds:.1f} s)")


def solver_printer(*, label: str = "", every_s: float = 1.0,
                   file: Any = None) -> Callable[[SolveProgress], None]:
    """A ``progress=`` callback for the exact solvers that prints a line per change.

    Lines come when the incumbent or bound changes, at most one per
    ``every_s`` seconds (the final ``done`` line always), prefixed by ``label``.
    """
    state = {"t": -math.inf, "last": None}

    def show(p: SolveProgress) -> None:
        now = time.perf_counter()
        key = (p.incumbent, p.bound)
        if p.phase != "done" and (key == state["last"] or now - state["t"] < every_s):
            return
        state["t"], state["last"] = now, key
        write(f"{label}{p.text()}", file=file if file is not None else sys.stderr)

    return show
