"""One process per output folder: a non-blocking lock on a run folder (or a judge's output folder).

``folder_lock(folder)`` takes ``folder/.harness.lock`` (``filelock``, released by the OS when the holder dies,
so a ``kill -9`` leaves no stale lock) and writes the holder's PID and command into ``folder/.harness.lock.pid``.
A second process on the same folder gets one ``HarnessError`` line naming the lock file and the holder's PID
instead of doing the same work and overwriting the first one's artifacts.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from filelock import FileLock, Timeout

from harness.core.errors import HarnessError

LOCK_NAME = ".harness.lock"


def holder_of(lock_file: Path) -> str:
    """'PID 1234 on host (harness run ...)' from the sidecar, or 'an unknown process' when it is unreadable."""
    try:
        info = json.loads(Path(f"{lock_file}.pid").read_text(encoding="utf-8"))
        return f"PID {info['pid']} on {info.get('host', '?')} ({info.get('command', '')[:120]})"
    except (OSError, ValueError, KeyError, TypeError):
        return "an unknown process"


@contextmanager
def folder_lock(folder: str | Path, enabled: bool = True) -> Iterator[Path | None]:
    """Hold the folder's lock for the ``with`` body; on contention raise at once (no waiting)."""
    if not enabled:
        yield None
        return
    folder = Path(folder)
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    lock_file = folder / LOCK_NAME
    lock = FileLock(str(lock_file), timeout=0, thread_local=False)
    try:
        lock.acquire()
    except Timeout:
        raise HarnessError(f"{folder} is in use by {holder_of(lock_file)} (lock {lock_file}); wait for it to "
                           "finish or stop it, then run again") from None
    sidecar = Path(f"{lock_file}.pid")
    try:
        sidecar.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                       "command": " ".join(sys.argv)}) + "\n", encoding="utf-8")
        yield lock_file
    finally:
        sidecar.unlink(missing_ok=True)
        lock.release()
        if created and not any(p.name != LOCK_NAME for p in folder.iterdir()):
            lock_file.unlink(missing_ok=True)  # the body failed before writing anything: leave no empty folder
            try:
                folder.rmdir()
            except OSError:
                pass
