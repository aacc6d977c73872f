"""One live run per output folder: ``OUT/.domadapt.lock``, held with ``fcntl.flock``.

The operating system releases a ``flock`` when its process ends, however it ends, so a
killed run never leaves the folder locked; the file's text (pid, host) only names the
holder in the error. Two drivers writing one folder would interleave their result files.
The lock is re-entrant within a process (the recipe command takes it before it loads any
data, the experiment it runs takes it again). On a network file system it holds where the
file system supports ``flock`` (NFS on Linux does, through byte-range locks).
"""

from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path

from domadapt.errors import DomadaptError

LOCK_NAME = ".domadapt.lock"

# lock file -> [descriptor, depth] of the locks this process holds
_HELD: dict[Path, list[int]] = {}


class OutDirLock:
    """``with OutDirLock(out_dir):`` holds ``out_dir`` for this process, or raises a one-line
    DomadaptError when another live process holds it."""

    def __init__(self, out_dir: Path) -> None:
        self.path = (Path(out_dir) / LOCK_NAME).resolve()

    def __enter__(self) -> "OutDirLock":
        if self.path in _HELD:
            _HELD[self.path][1] += 1
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise DomadaptError(
                f"{self.path.parent}: a live domadapt run ({holder}) is writing here; wait for it or choose another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode(), 0)
        _HELD[self.path] = [fd, 1]
        return self

    def __exit__(self, *exc: object) -> None:
        held = _HELD[self.path]
        held[1] -= 1
        if held[1] == 0:
            del _HELD[self.path]
            os.close(held[0])  # closing the descriptor releases the flock
