"""Atomic file writes: readers see the old file or the new one, never half of one, even after a crash.

``atomic_write_bytes(path, data)``: write ``data`` to a temporary file in the same directory, flush and fsync
it, ``os.replace`` it over ``path`` and fsync the directory, so that the rename itself survives a power cut.
A failure removes the temporary file and leaves ``path`` as it was; a process killed mid-write leaves it
behind, named ``.<name>.<8 random characters>.tmp`` (``TEMP_NAME``): ``remove_stale_temps`` removes those on the
next start.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path

TEMP_NAME = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp")


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see the module docstring); returns the path."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # directories cannot be opened for fsync on every platform
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """``atomic_write_bytes`` of ``text`` encoded as UTF-8."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def remove_stale_temps(folder: str | os.PathLike, names: tuple[str, ...] | None = None) -> list[Path]:
    """Remove the temporary files an interrupted ``atomic_write_bytes`` left directly in ``folder`` (``TEMP_NAME``;
    only those of the targets ``names`` when given); returns what was removed. Nothing else is touched."""
    folder, removed = Path(folder), []
    for path in folder.glob(".*.tmp") if folder.is_dir() else ():
        target = path.name[1:-len(".xxxxxxxx.tmp")]
        if TEMP_NAME.fullmatch(path.name) and path.is_file() and (names is None or target in names):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
    return removed
