"""The table of ids seen in one input file, to catch a reused id, in bounded memory.

The first `in_memory` ids are kept in a dict (the usual file never leaves it). Past that,
they move to a temporary SQLite file (the standard library's; deleted when the table is
closed) whose page cache is capped, so memory stays flat at any number of lines while the
guarantee stays exact: every reused id is caught, with the line that used it first. The
cost is on disk, about 60 bytes a line past `in_memory`, and about 2 µs a line.
"""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

IN_MEMORY = 200_000  # ids held in a dict before the table moves to disk (~25 MB of RSS)
CACHE_KIB = 8 * 1024  # SQLite's page cache once on disk


class IdTable:
    """id -> the line it was first used on."""

    def __init__(self, in_memory: int | None = None):
        self.in_memory = IN_MEMORY if in_memory is None else in_memory
        self._dict: dict[str, int] | None = {}
        self._db: sqlite3.Connection | None = None
        self._folder: tempfile.TemporaryDirectory | None = None

    def first_use(self, id: str, line: int) -> int | None:
        """Record `id` as used on `line`; the line it was used on before, if any."""
        if self._dict is not None:
            if id in self._dict:
                return self._dict[id]
            self._dict[id] = line
            if len(self._dict) > self.in_memory:
                self._spill()
            return None
        assert self._db is not None
        cur = self._db.execute("INSERT OR IGNORE INTO ids VALUES (?, ?)", (id, line))
        if cur.rowcount:
            return None
        return self._db.execute("SELECT line FROM ids WHERE id = ?", (id,)).fetchone()[0]

    @property
    def on_disk(self) -> bool:
        return self._db is not None

    def _spill(self) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="gplinker-ids-")
        db = sqlite3.connect(Path(self._folder.name) / "ids.sqlite", isolation_level=None)
        db.execute("PRAGMA journal_mode = OFF")  # a scratch table: nothing to recover
        db.execute("PRAGMA synchronous = OFF")
        db.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        db.execute("CREATE TABLE ids (id TEXT PRIMARY KEY, line INTEGER) WITHOUT ROWID")
        db.execute("BEGIN")  # one transaction for the whole file: no commit per line
        assert self._dict is not None
        db.executemany("INSERT INTO ids VALUES (?, ?)", self._dict.items())
        self._db, self._dict = db, None

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None
