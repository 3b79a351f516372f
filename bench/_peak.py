"""Peak resident memory of this process while a block runs, sampled in a thread (benchmarks)."""

from __future__ import annotations

import gc
import threading
import time


class PeakRSS:
    """``with PeakRSS() as m: ...`` then ``m.peak_mb`` (increase over entry, MiB),
    ``m.peak_gb`` (absolute peak, GB) or ``m.added_gb`` (increase, GB)."""

    def __init__(self, every_s: float = 0.002):
        import psutil

        self.proc, self.every_s = psutil.Process(), every_s
        self.peak_mb = 0.0

    def __enter__(self):
        gc.collect()
        self.base = self.top = self.proc.memory_info().rss
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.top = max(self.top, self.proc.memory_info().rss)
            time.sleep(self.every_s)

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.top = max(self.top, self.proc.memory_info().rss)
        self.peak_mb = (self.top - self.base) / 2**20

    @property
    def peak_gb(self) -> float:
        return self.top / 1e9

    @property
    def added_gb(self) -> float:
        return (self.top - self.base) / 1e9
