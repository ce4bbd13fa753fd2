"""doccano's JSONL: its export into annotated texts, our rows into its import format.

Two line shapes, told apart per line:
- sequence labelling: ``{"id", "text", "label": [[start, end, type], ...]}`` (``labels``
  in older versions; ``data`` for the text is read too);
- relation labelling (a project with "Use relation labeling"): ``{"id", "text",
  "entities": [{"id", "start_offset", "end_offset", "label"}], "relations": [{"id",
  "from_id", "to_id", "type"}]}``; relations go from_id -> to_id.
Ends are exclusive. doccano counts offsets in UTF-16 code units, as the browser does
(doccano/doccano#2290: an emoji counts two), unless the project counts grapheme clusters
(not read here); `offsets="code-points"` reads exports that count code points (what
Python-made files and PaddleNLP's doccano.py assume). Lines with neither shape are texts
without annotations.

Back, `to_doccano` writes the sequence labelling shape for entities and the relation shape
for relations and events, our id kept as a key of its own: doccano keeps it as metadata,
and its export writes metadata over its own id, so the id comes back.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from gplinker.data.reader import (
    check_unicode,
    example_id,
    field_of,
    json_object,
    kind_of,
    read_examples,
)
from gplinker.errors import InputError
from gplinker.formats.mapping import (
    Annotated,
    Fail,
    Link,
    OffsetMap,
    Offsets,
    Span,
    Tally,
    describe,
    from_rows,
)

logger = logging.getLogger(__name__)
TWO_SHAPES = "two formats"


def read_export(
    path: str | Path, task: str, tally: Tally, *, offsets: Offsets = "utf-16"
) -> Iterator[Annotated]:
    """The annotated texts of a doccano export, one per non-blank line; InputError naming
    file:line at the first bad one (bad JSON, a mistyped field, a reused id, ...)."""

    def parse(line: str, p: str | Path, lineno: int, where: str, _: Any) -> Annotated:
        tally.read += 1
        return _parse_line(line, p, lineno, task, offsets)

    yield from read_examples(path, parse=parse)


def _parse_line(line: str, path: str | Path, lineno: int, task: str, units: Offsets) -> Annotated:
    def fail(message: str, kind: str = "bad annotation") -> InputError:
        return InputError(message, path, lineno, kind=kind)

    row = json_object(line, fail)
    key = "text" if "text" in row or "data" not in row else "data"
    text = field_of(row, key, str, "the line", fail)
    check_unicode(text, f'"{key}"', fail)
    ann = Annotated(example_id(row, lineno, fail, numbers=True), text, {}, [], fail)
    offsets = OffsetMap(text, units)
    sequence = [k for k in ("label", "labels") if k in row]
    if sequence and "entities" in row:
        raise fail(f'holds both "{sequence[0]}" and "entities": give one', TWO_SHAPES)
    if sequence:
        if task != "entity":
            raise fail(
                f'a sequence labelling line ("{sequence[0]}") has no relations for --task '
                f"{task}: export the project as JSONL(relation), with relation labelling on"
            )
        _sequence(row[sequence[0]], sequence[0], ann, offsets)
    elif "entities" in row:
        _entities(row["entities"], ann, offsets)
        _relations(row.get("relations", []), ann)
    return ann


def _list(value: object, at: str, fail: Fail) -> list:
    if not isinstance(value, list):
        raise fail(f"{at} should be a list, got {kind_of(value)}")
    return value


def _sequence(items: object, name: str, ann: Annotated, offsets: OffsetMap) -> None:
    for k, item in enumerate(_list(items, f'"{name}"', ann.fail)):
        at = f"{name}[{k}]"
        ok = isinstance(item, list) and len(item) == 3 and isinstance(item[2], str)
        if not ok or any(not isinstance(x, int) or isinstance(x, bool) for x in item[:2]):
            raise ann.fail(f"{at} should be [start, end, label], got {item!r:.60}")
        start, end = (offsets.to_text(x, at, ann.fail) for x in item[:2])
        ann.spans[at] = Span(start, end, item[2])


def _entities(items: object, ann: Annotated, offsets: OffsetMap) -> None:
    for k, item in enumerate(_list(items, '"entities"', ann.fail)):
        at = f"entities[{k}]"
        if not isinstance(item, dict):
            raise ann.fail(f"{at} should be an object, got {kind_of(item)}")
        start, end = (
            offsets.to_text(field_of(item, f, int, at, ann.fail), at, ann.fail)
            for f in ("start_offset", "end_offset")
        )
        label = field_of(item, "label", str, at, ann.fail)
        key = _id(item, "id", at, ann.fail) if "id" in item else at
        if key in ann.spans:
            raise ann.fail(f"{at}: entity id {key!r} is used twice in this line")
        ann.spans[key] = Span(start, end, label)


def _relations(items: object, ann: Annotated) -> None:
    for k, item in enumerate(_list(items, '"relations"', ann.fail)):
        at = f"relations[{k}]"
        if not isinstance(item, dict):
            raise ann.fail(f"{at} should be an object, got {kind_of(item)}")
        source, target = (_id(item, f, at, ann.fail) for f in ("from_id", "to_id"))
        ann.links.append(Link(source, target, field_of(item, "type", str, at, ann.fail)))


def _id(item: dict, key: str, at: str, fail: Fail) -> str:
    """An entity id (doccano's are integers; a string is taken too) as a string."""
    if key not in item:
        raise fail(f'{at}: "{key}" is missing')
    value = item[key]
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise fail(f'{at}: "{key}" should be an integer, got {kind_of(value)}')
    return str(value)


# ---- back ------------------------------------------------------------------------------------
def to_doccano(rows: Iterable[dict], task: str, *, offsets: Offsets = "utf-16") -> Iterator[dict]:
    """Our rows as lines doccano imports (pre-annotations). doccano refuses an empty text,
    so such rows are left out; what is left out is logged with its count."""
    left_out: Counter[str] = Counter()
    for m in from_rows(rows, task, left_out):
        if not m.text:
            left_out["empty texts (doccano refuses them)"] += 1
            continue
        units = OffsetMap(m.text, offsets)
        if task == "entity":
            label = [[units.to_units(s.start), units.to_units(s.end), s.label] for s in m.spans]
            yield {"id": m.id, "text": m.text, "label": label}
            continue
        entities = [
            {
                "id": i,
                "label": s.label,
                "start_offset": units.to_units(s.start),
                "end_offset": units.to_units(s.end),
            }
            for i, s in enumerate(m.spans)
        ]
        relations = [
            {"id": j, "from_id": s, "to_id": t, "type": label}
            for j, (s, t, label) in enumerate(m.links)
        ]
        yield {"id": m.id, "text": m.text, "entities": entities, "relations": relations}
    if left_out:
        logger.warning("left out of the doccano file: %s", describe(left_out.most_common()))
