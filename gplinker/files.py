"""Writing files and folders so that a kill at any moment leaves the old one or the new one
whole.

A model folder is written into a hidden temporary sibling, flushed to disk, then moved in:
a new folder by one rename; an existing one file by file with `os.replace`, weights last.
Within a training run only the weights of `best/` change between saves, so every file of
the folder stays consistent with the others whichever moment the process dies.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO


@contextmanager
def atomic_file(path: Path) -> Iterator[TextIO]:
    """Yields a UTF-8 text file to fill; once the block ends without error it replaces
    `path` whole: written to a temporary sibling, flushed to disk, given the target's mode
    (or the usual 0644: mkstemp makes 0600), renamed over it. On any error or Ctrl-C the
    sibling is removed and `path` is as it was. OSError as it comes."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, path.stat().st_mode & 0o7777 if path.exists() else 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def atomic_folder(directory: str | Path, last: str | None = None) -> Iterator[Path]:
    """Yields a temporary folder to fill; on success it becomes `directory`. `last` names
    the file moved in last (the weights) when `directory` already exists. On an error
    the temporary folder is removed and `directory` is untouched."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = directory.parent / f".{directory.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        names = sorted(p.name for p in tmp.iterdir())
        fsync_tree(tmp)
        if not directory.exists():
            tmp.rename(directory)
        else:
            if last in names:
                names.remove(last)
                names.append(last)
            for name in names:
                if (directory / name).is_dir():  # a sub-folder is replaced as a whole
                    shutil.rmtree(directory / name)
                os.replace(tmp / name, directory / name)
            tmp.rmdir()
            fsync_tree(directory, recursive=False)
        fsync_tree(directory.parent, recursive=False)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def fsync_tree(root: Path, recursive: bool = True) -> None:
    """Flush a folder's files and entries to disk: a rename is durable only after this."""
    for path in [*(root.rglob("*") if recursive else ()), root]:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
