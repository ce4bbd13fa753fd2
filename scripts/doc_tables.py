"""A benchmark's generated table, written into docs/performance.md between its markers."""

from __future__ import annotations

from pathlib import Path

PERFORMANCE = Path(__file__).resolve().parents[1] / "docs" / "performance.md"


def write_section(table: str, begin: str, end: str, heading: str, doc: Path = PERFORMANCE) -> None:
    """Replace what lies between `begin` and `end` (the markers `table` starts and ends
    with), or add the table under a new `## heading` where the page has no markers yet."""
    text = doc.read_text(encoding="utf-8")
    if begin in text:
        text = text[: text.index(begin)] + table + text[text.index(end) + len(end) :]
    else:
        text += f"\n## {heading}\n\n{table}\n"
    doc.write_text(text, encoding="utf-8")
    print(table)
