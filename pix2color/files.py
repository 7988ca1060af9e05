"""Writing files so that nothing is ever half-written: a temp file beside the target, then a rename."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


@contextlib.contextmanager
def atomic_write(path: str | Path) -> Iterator[BinaryIO]:
    """Open a fresh temp file beside ``path`` for binary writing; on success it replaces ``path``.

    On any error the temp file is removed and ``path`` keeps its previous content. Temp files for
    ``path`` left by writers that were killed (their process is gone) are removed after a success.

    Raises:
        OSError: from creating, writing, syncing or renaming the temp file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        # O_EXCL like mkstemp, but with the usual 0o666 & ~umask mode: mkstemp's 0o600 would survive
        # the rename and make the file unreadable to anyone but its writer.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    remove_orphaned_temps(path)


def remove_orphaned_temps(path: Path) -> None:
    """Delete ``.<name>.<pid>.<token>.tmp`` files beside ``path`` whose writing process no longer exists."""
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        pid = tmp.name[len(path.name) + 2 :].split(".")[0]
        if pid.isdigit() and not _process_exists(int(pid)):
            tmp.unlink(missing_ok=True)


def _process_exists(pid: int) -> bool:
    """Whether a process with this id is running (possibly another user's)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
