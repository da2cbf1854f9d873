"""Writing an export to disk whole or not at all, with progress on the terminal.

Chunks go to a temporary file in the destination's directory (so the final rename stays on
one filesystem and is atomic); only a complete stream is renamed to the destination. A failed
or interrupted export (an error, Ctrl-C) removes the temporary file and leaves the destination
as it was.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Protocol


class Progress(Protocol):
    def update(self, byte_count: int) -> None: ...

    def close(self) -> None: ...


class _NoProgress:
    def update(self, byte_count: int) -> None:
        pass

    def close(self) -> None:
        pass


class _StderrCounter:
    """A bytes counter rewritten in place on stderr, for when tqdm is not installed."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.total = 0

    def update(self, byte_count: int) -> None:
        self.total += byte_count
        sys.stderr.write(f"\r{self.label}: {self.total:,} bytes")
        sys.stderr.flush()

    def close(self) -> None:
        sys.stderr.write("\n")
        sys.stderr.flush()


class _TqdmProgress:
    def __init__(self, bar: Any) -> None:
        self.bar = bar

    def update(self, byte_count: int) -> None:
        self.bar.update(byte_count)

    def close(self) -> None:
        self.bar.close()


def make_progress(enabled: bool, label: str) -> Progress:
    """tqdm's byte bar when the `progress` extra is installed, else a plain stderr counter."""
    if not enabled:
        return _NoProgress()
    try:
        from tqdm import tqdm  # the optional `progress` extra
    except ImportError:
        return _StderrCounter(label)
    return _TqdmProgress(tqdm(desc=label, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr))


class AtomicFile:
    """`with AtomicFile(path) as out: out.write(...)`: `path` appears only if the block succeeds."""

    def __init__(self, path: str | os.PathLike[str], progress: Progress | None = None) -> None:
        self.path = Path(path)
        self.progress = progress or _NoProgress()
        self.bytes_written = 0
        self._file: IO[bytes] | None = None

    def __enter__(self) -> AtomicFile:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".part", dir=self.path.parent)
        self._file = os.fdopen(handle, "wb")
        self._temp_path = Path(name)
        return self

    def write(self, data: bytes) -> None:
        assert self._file is not None, "use AtomicFile in a with block"
        self._file.write(data)
        self.bytes_written += len(data)
        self.progress.update(len(data))

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._file is not None
        self.progress.close()
        try:
            if exc_type is None:
                self._file.flush()
                os.fsync(self._file.fileno())
            self._file.close()
            if exc_type is None:
                # mkstemp makes the file private (0600); an export is an ordinary file.
                os.chmod(self._temp_path, 0o644)
                os.replace(self._temp_path, self.path)
        finally:
            self._temp_path.unlink(missing_ok=True)
