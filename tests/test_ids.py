"""data/ids.py: a reused id is caught exactly, with the first line that used it, whether the
table is still in memory or has moved to its temporary file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gplinker.data import ids
from gplinker.data.ids import IdTable
from gplinker.data.reader import BadLine, read_lines


def test_in_memory_the_first_use_is_remembered() -> None:
    table = IdTable()
    assert table.first_use("a", 1) is None and table.first_use("b", 2) is None
    assert table.first_use("a", 3) == 1 and not table.on_disk
    table.close()


def test_past_the_limit_the_table_moves_to_disk_and_stays_exact() -> None:
    table = IdTable(in_memory=10)
    for line in range(1, 1001):
        assert table.first_use(f"id-{line}", line) is None
    assert table.on_disk and table._dict is None  # nothing left growing in memory
    folder = Path(table._folder.name)
    assert table.first_use("id-3", 1001) == 3  # used before the move
    assert table.first_use("id-999", 1002) == 999  # and after it
    assert table.first_use("id-1001", 1003) is None
    assert table.first_use("id-1001", 1004) == 1003
    table.close()
    assert not folder.exists()


def test_read_lines_catches_a_reuse_across_the_move(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(ids, "IN_MEMORY", 5)
    path = tmp_path / "in.jsonl"
    rows = [{"id": f"x{i}", "text": "雀巢裁员"} for i in range(1, 41)] + [
        {"id": "x2", "text": "再"}
    ]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    items = list(read_lines(path, blank_lines="error"))
    bad = [x for x in items if isinstance(x, BadLine)]
    assert len(items) == 41 and [b.line for b in bad] == [41]
    assert "id 'x2' already used on line 2" in str(bad[0].error)


@pytest.mark.parametrize("limit", [0, 1])
def test_tiny_limits_still_work(limit: int) -> None:
    table = IdTable(in_memory=limit)
    assert [table.first_use(i, n) for n, i in enumerate("abca", 1)] == [None, None, None, 1]
    table.close()
