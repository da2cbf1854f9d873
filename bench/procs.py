"""Measuring processes from outside: a process tree's pids, CPU seconds and resident memory
(sampled from /proc, Linux only)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


def descendants(pid: int) -> list[int]:
    """`pid` and every live process below it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        found.append(current)
        stack.extend(children.get(current, ()))
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE_BYTES
    except OSError:
        return 0


class CpuMeter:
    """CPU seconds the given processes spent between `start()` and `stop()`."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self._start: dict[int, float] = {}
        self.seconds = 0.0

    def start(self) -> CpuMeter:
        self._start = {pid: cpu_seconds(pid) for pid in self.pids}
        return self

    def stop(self) -> float:
        self.seconds = sum(cpu_seconds(pid) - before for pid, before in self._start.items())
        return self.seconds


class RssSampler:
    """Samples the resident memory of some processes every `interval` seconds in a thread;
    `peak_bytes` is the largest single-process value seen, `baseline_bytes` the largest at start."""

    def __init__(self, pids: list[int], interval: float = 0.02) -> None:
        self.pids = pids
        self.interval = interval
        self.baseline_bytes = 0
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _sample(self) -> int:
        return max((rss_bytes(pid) for pid in self.pids), default=0)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_bytes = max(self.peak_bytes, self._sample())
            time.sleep(self.interval)

    def __enter__(self) -> RssSampler:
        self.baseline_bytes = self.peak_bytes = self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_bytes = max(self.peak_bytes, self._sample())
