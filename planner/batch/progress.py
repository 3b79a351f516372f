"""The progress bar of a batch: parts done, failed and running, and the time left.

`tqdm.auto` draws a text bar in a terminal and a widget in Jupyter; the
estimate of the time left is tqdm's, from the rate parts finish at.  Parts
reused from an earlier run are not counted in the bar (they take no time)
but shown beside it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Progress"]


class Progress:
    """A bar over the parts that run (``total``), with done/failed/running counts."""

    def __init__(self, total: int, *, reused: int = 0, enabled: bool = True,
                 desc: str = "parts") -> None:
        from tqdm.auto import tqdm

        self.done = self.failed = self.n_running = 0
        self.reused = reused
        self.bar = tqdm(total=total, desc=desc, unit="part", disable=not enabled or total == 0,
                        dynamic_ncols=True, leave=True)
        self._show()

    def _show(self) -> None:
        post: dict[str, Any] = {"done": self.done, "failed": self.failed,
                                "running": self.n_running}
        if self.reused:
            post["reused"] = self.reused
        self.bar.set_postfix(post, refresh=True)

    def running(self, n: int) -> None:
        """Set how many parts are running now."""
        if n != self.n_running:
            self.n_running = n
            self._show()

    def finished(self, outcome: Any) -> None:
        """Count a finished part (``outcome.status``: ``done`` or ``failed``)."""
        if outcome.status == "failed":
            self.failed += 1
        else:
            self.done += 1
        self.n_running = max(0, self.n_running - 1)
        self.bar.update(1)
        self._show()

    def close(self) -> None:
        self.bar.close()
