"""Writing files so that nothing is ever half-written: a temp file beside the target, then a rename."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


@contextlib.contextmanager
def atomic_write(path: str | Path) -> Iterator[BinaryIO]:
    """Open a fresh temp file beside ``path`` for binary writing; on success it replaces ``path``.

    On any error the temp file is removed and ``path`` keeps its previous content.

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


def remove_orphaned_temps(path: str | Path) -> None:
    """Delete the temp files for ``path`` that :func:`atomic_write` left when its process was killed.

    Those are ``.<name>.<pid>.<8 hex>.tmp`` beside ``path`` whose pid is not running here. It lists the
    folder, so call it for a few large files (checkpoints), not for every file of a big folder; on a
    folder shared between machines another machine's live writer would look dead here.
    """
    path = Path(path)
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(\d+)\.[0-9a-f]{{8}}\.tmp")
    with os.scandir(path.parent) as entries:
        for entry in entries:
            match = pattern.fullmatch(entry.name)
            if match and not _process_exists(int(match.group(1))):
                Path(entry.path).unlink(missing_ok=True)


def _process_exists(pid: int) -> bool:
    """Whether a process with this id is running (possibly another user's)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
