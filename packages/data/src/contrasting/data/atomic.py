"""Atomic file writes: readers see the old file or the new one, never half of one, even after a crash.

``atomic_output(path)`` gives a temporary path in the same directory to write the new file at, by any means (a
memory map, a library's writer); on a clean exit it fsyncs the file, ``os.replace``-s it over ``path`` and fsyncs
the directory, so that the rename itself survives a power cut. ``atomic_write_bytes(path, data)`` is that for
bytes in memory. A failure removes the temporary file and leaves ``path`` as it was; a process killed mid-write
leaves it behind, named ``.<name>.<8 random characters>.tmp`` (``TEMP_NAME``): ``remove_stale_temps`` removes
those on the next start. ``fsync_path`` is the one fsync of a file or directory (for writers that commit whole
folders, such as checkpoints).
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

TEMP_NAME = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp")


def fsync_path(path: str | os.PathLike) -> None:
    """fsync a file's data, or a directory's entries (skipped where directories cannot be opened for fsync)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        if os.path.isdir(path):
            return
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not os.path.isdir(path):
            raise
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``path`` to write the new file at; committed to ``path`` on a clean exit (fsync,
    ``os.replace``, fsync of the directory), removed on an error (``path`` then stays as it was)."""
    path = Path(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        fsync_path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_path(path.parent)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see the module docstring); returns the path."""
    path = Path(path)
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """``atomic_write_bytes`` of ``text`` encoded as UTF-8."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def remove_stale_temps(folder: str | os.PathLike, names: tuple[str, ...] | None = None) -> list[Path]:
    """Remove the temporary files an interrupted ``atomic_output`` left directly in ``folder`` (``TEMP_NAME``;
    only those of the targets ``names`` when given); returns what was removed. Nothing else is touched."""
    folder, removed = Path(folder), []
    for path in folder.glob(".*.tmp") if folder.is_dir() else ():
        target = path.name[1:-len(".xxxxxxxx.tmp")]
        if TEMP_NAME.fullmatch(path.name) and path.is_file() and (names is None or target in names):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
    return removed
