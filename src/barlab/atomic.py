"""Writes that a crash or a kill at any moment never leaves half-done.

A file is written under a temporary name in its own directory, flushed and fsynced, then
renamed over its destination, and the directory is fsynced so the rename itself survives a
power cut; a folder (a saved run) is filled under a temporary name and renamed the same way.
Readers see the old content or the new, never a mix. (The bar cache's Parquet files follow
the same steps in :mod:`barlab.data.store`, through pyarrow's writer.)
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def fsync(path: Path) -> None:
    """Flush a file's or a directory's entry to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_text(path: Path, text: str, *, mode: int | None = None) -> None:
    """Replace ``path`` with ``text`` (UTF-8) atomically; ``mode`` e.g. ``0o644`` (the
    temporary file is created ``0o600``, which stays when ``mode`` is None)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync(path.parent)


def publish_folder(tmp: Path, dest: Path) -> None:
    """Make the finished folder ``tmp`` appear as ``dest`` (same parent): its files are
    fsynced, then it is renamed, then the parent is fsynced."""
    for f in tmp.iterdir():
        fsync(f)
    os.replace(tmp, dest)
    fsync(dest.parent)
