"""One run at a time per result: an advisory lock beside ``OUT/<name>.ome.zarr``.

A second run on the same result is refused at once (rather than computing every batch a
second time). The lock is ``fcntl.flock`` on ``OUT/.<name>.ome.zarr.lock``: the operating
system releases it when the process ends, however it ends (kill -9 included), so a lock is
never stale; the file is removed when the run ends normally. Where ``fcntl`` does not exist
(Windows) runs are not locked.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import OptionError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]


class ResultLock:
    """Held while a process writes the result at ``zarr_path`` (a context manager)."""

    def __init__(self, zarr_path: str | os.PathLike) -> None:
        zarr_path = Path(zarr_path)
        self.path = zarr_path.with_name(f".{zarr_path.name}.lock")
        self.result = zarr_path
        self._handle: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise if another process holds it."""
        if fcntl is None or self._handle is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            handle = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(handle)
                raise OptionError(
                    f"another run is writing {self.result} (lock {self.path}); wait for it to "
                    "finish or choose another output folder",
                    "out_dir",
                ) from None
            # The holder before us may have removed the file after we opened it: then this
            # lock guards nothing, and we lock the file now at the path instead.
            if self._same_file(handle):
                break
            os.close(handle)
        os.ftruncate(handle, 0)
        os.write(handle, f"{os.getpid()}\n".encode())
        self._handle = handle

    def _same_file(self, handle: int) -> bool:
        try:
            return os.stat(self.path).st_ino == os.fstat(handle).st_ino
        except FileNotFoundError:
            return False

    def release(self) -> None:
        if self._handle is None:
            return
        self.path.unlink(missing_ok=True)  # while still held: no one locks a removed file
        os.close(self._handle)
        self._handle = None

    def __enter__(self) -> ResultLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
