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
