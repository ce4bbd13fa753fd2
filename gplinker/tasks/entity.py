"""Entities (NER) with one Efficient GlobalPointer head (SPEC §11).

A span (type, h, t) is an entity iff s_type(h, t) > 0, so nested and overlapping entities
come out of the same [H, L, L] matrix. Two line formats, told apart per line:
- CLUENER: ``{"text", "label": {TYPE: {MENTION: [[start, end], ...]}}}``, end INCLUSIVE;
- an ``entities`` list (CMeEE, doccano, our own predictions): ``{"text", "entities":
  [{"start_offset", "end_offset", "label", "entity"?}]}``, end EXCLUSIVE.
A line with neither has no gold (prediction input, test files); "id" may be an integer.
Metrics: exact match on (type, start, end) per text, overall, per type and on the nested
entities alone (`EntityTask.evaluate`).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from gplinker.data.alignment import Encoded, char_span_to_tokens, token_boundaries
from gplinker.data.labels import DropReport, HeadLabels
from gplinker.data.reader import (
    EMPTY_SPAN,
    SPAN_MISMATCH,
    WRONG_TYPE,
    Parse,
    check_unicode,
    example_id,
    field_of,
    json_object,
    kind_of,
    read_examples,
    text_field,
)
from gplinker.decoding import cells_above, top_k
from gplinker.errors import InputError
from gplinker.metrics import PRF, exact_prf
from gplinker.modeling.global_pointer import Factored, PointerSpec
from gplinker.tasks.base import Label, Scores

HEAD = "entity"
UNKNOWN_TYPE = "unknown type"
OUT_OF_RANGE = "span out of range"
TWO_FORMATS = "two formats"


@dataclass(frozen=True, slots=True, order=True)
class Entity:
    """One entity of a text; `GPLinker.extract` gives a text's list sorted by (start, end,
    type)."""

    type: str
    text: str
    start: int  # char offset in the full text

    @property
    def end(self) -> int:
        return self.start + len(self.text)


def _position(e: Entity) -> tuple[int, int, str]:
    return e.start, e.end, e.type


@dataclass(frozen=True, slots=True)
class EntityExample:
    id: str
    text: str
    entities: tuple[Entity, ...] = ()  # distinct, sorted by (start, end, type)
    where: str = ""  # "train.json:17", for messages


class EntitySchema:
    """The entity types, in label order (type_id)."""

    def __init__(self, types: Iterable[str]):
        self.types: tuple[str, ...] = tuple(types)
        self._ids = {t: i for i, t in enumerate(self.types)}
        if len(self._ids) != len(self.types):
            raise ValueError(f"entity types listed twice in {self.types}")

    def __len__(self) -> int:
        return len(self.types)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EntitySchema) and self.types == other.types

    def __hash__(self) -> int:
        return hash(self.types)

    def __repr__(self) -> str:
        return f"EntitySchema({self.types!r})"

    def has(self, entity_type: str) -> bool:
        return entity_type in self._ids

    def type_id(self, entity_type: str) -> int:
        return self._ids[entity_type]

    def to_json(self) -> dict:
        return {"entity_types": list(self.types)}

    def to_file(self, path: str | Path) -> None:
        Path(path).write_text(
            json.dumps(self.to_json(), ensure_ascii=False, indent=1), encoding="utf-8"
        )

    @classmethod
    def from_file(cls, path: str | Path) -> EntitySchema:
        """A model folder's schema.json ({"entity_types": [...]}), CMeEE's schema.json (code
        -> description: the codes in file order), or plain text with one type per line."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"cannot read schema: {e}", path) from e
        types = (
            _json_types(text, path) if text.lstrip().startswith("{") else _line_types(text, path)
        )
        if not types:
            raise InputError("the schema lists no entity types", path)
        return cls(types)


def _json_types(text: str, path: Path) -> list[str]:
    try:
        obj = json.loads(text, object_pairs_hook=list)  # pairs: a repeated key is not lost
    except json.JSONDecodeError as e:
        raise InputError(f"invalid JSON: {e.msg} at column {e.colno}", path, e.lineno) from e
    if len(obj) == 1 and obj[0][0] == "entity_types" and isinstance(obj[0][1], list):
        pairs = [(t, "") for t in obj[0][1]]
    else:
        pairs = obj
    types: list[str] = []
    for key, value in pairs:
        if not isinstance(key, str) or not key or not isinstance(value, str):
            raise InputError(
                'expected {"entity_types": [TYPE, ...]} or {TYPE: description, ...}, got '
                f"{kind_of(key)}: {kind_of(value)}",
                path,
                _line_of(text, key),
            )
        if key in types:
            raise InputError(f"entity type {key!r} is listed twice", path, _line_of(text, key, 2))
        types.append(key)
    return types


def _line_of(text: str, key: object, nth: int = 1) -> int:
    """The line of the nth occurrence of `key` (as JSON) in the file, 1 if not found."""
    needle, at = json.dumps(key, ensure_ascii=False), -1
    for _ in range(nth):
        at = text.find(needle, at + 1)
    return text.count("\n", 0, at) + 1 if at >= 0 else 1


def _line_types(text: str, path: Path) -> list[str]:
    types: list[str] = []
    for n, line in enumerate(text.splitlines(), 1):
        name = line.strip()
        if not name:
            continue
        if len(name.split()) > 1:
            raise InputError(f"expected one entity type a line, got {name!r}", path, n)
        if name in types:
            raise InputError(f"entity type {name!r} is listed twice", path, n)
        types.append(name)
    return types


def _parse_line(
    line: str, path: str | Path, lineno: int, where: str, schema: EntitySchema | None
) -> EntityExample:
    def fail(message: str, kind: str) -> InputError:
        return InputError(message, path, lineno, kind=kind)

    row = json_object(line, fail)
    text = text_field(row, fail, required=True)
    if "label" in row and "entities" in row:
        raise fail('holds both "label" (CLUENER) and "entities"; give one', TWO_FORMATS)
    found = _cluener(row["label"], text, fail) if "label" in row else []
    found += _entity_list(row.get("entities", []), text, fail)
    for at, e in found:
        check_unicode(e.type, f"{at}: the type", fail)
        if schema is not None and not schema.has(e.type):
            raise fail(f"{at}: entity type {e.type!r} is not in the schema", UNKNOWN_TYPE)
    entities = tuple(sorted({e for _, e in found}, key=_position))
    return EntityExample(example_id(row, lineno, fail, numbers=True), text, entities, where)


def _cluener(label: object, text: str, fail: Any) -> list[tuple[str, Entity]]:
    """{TYPE: {MENTION: [[start, end], ...]}} with inclusive ends, each checked."""
    if not isinstance(label, dict):
        raise fail(f'"label" should be an object (CLUENER), got {kind_of(label)}', WRONG_TYPE)
    found = []
    for entity_type, mentions in label.items():
        if not isinstance(mentions, dict):
            raise fail(
                f"label[{entity_type!r}] should be an object, got {kind_of(mentions)}", WRONG_TYPE
            )
        for mention, spans in mentions.items():
            at = f"label[{entity_type!r}][{mention!r}]"
            if not isinstance(spans, list):
                raise fail(f"{at} should be a list, got {kind_of(spans)}", WRONG_TYPE)
            for k, pair in enumerate(spans):
                ok = isinstance(pair, list) and len(pair) == 2
                if not ok or any(not isinstance(x, int) or isinstance(x, bool) for x in pair):
                    raise fail(f"{at}[{k}] should be [start, end], two integers", WRONG_TYPE)
                start, end = pair[0], pair[1] + 1
                _check_span(start, end, text, f"{at}[{k}]", fail)
                if text[start:end] != mention:
                    raise fail(
                        f"{at}[{k}]: type {entity_type!r}, mention {mention!r} but "
                        f"text[{start}:{end}] (end inclusive: {end - 1}) is {text[start:end]!r}",
                        SPAN_MISMATCH,
                    )
                found.append((f"{at}[{k}]", Entity(entity_type, mention, start)))
    return found


def _entity_list(items: object, text: str, fail: Any) -> list[tuple[str, Entity]]:
    """[{"start_offset", "end_offset", "label", "entity"?}] with exclusive ends, checked."""
    if not isinstance(items, list):
        raise fail(f'"entities" should be a list, got {kind_of(items)}', WRONG_TYPE)
    found = []
    for k, item in enumerate(items):
        at = f"entities[{k}]"
        if not isinstance(item, dict):
            raise fail(f"{at} should be an object, got {kind_of(item)}", WRONG_TYPE)
        start = field_of(item, "start_offset", int, at, fail)
        end = field_of(item, "end_offset", int, at, fail)
        entity_type = field_of(item, "label", str, at, fail)
        _check_span(start, end, text, at, fail)
        if "entity" in item and field_of(item, "entity", str, at, fail) != text[start:end]:
            raise fail(
                f'{at}: type {entity_type!r}, "entity" is {item["entity"]!r} but '
                f"text[{start}:{end}] is {text[start:end]!r}",
                SPAN_MISMATCH,
            )
        found.append((at, Entity(entity_type, text[start:end], start)))
    return found


def _check_span(start: int, end: int, text: str, at: str, fail: Any) -> None:
    if end <= start:
        raise fail(f"{at}: empty span [{start}, {end})", EMPTY_SPAN)
    if start < 0 or end > len(text):
        raise fail(
            f"{at}: span [{start}, {end}) outside the text of {len(text)} chars", OUT_OF_RANGE
        )


def _nested(items: set[tuple[str, str, int, int]]) -> set[tuple[str, str, int, int]]:
    """The (id, type, start, end) items whose span strictly contains, or lies strictly
    inside, another span of the same id; by two sorted sweeps, not all pairs."""
    spans = sorted({(i, s, e) for i, _, s, e in items})
    inner: set[tuple[str, int, int]] = set()
    reach: dict[str, int] = {}  # furthest end of the spans so far (start <= this start)
    for i, s, e in sorted(spans, key=lambda x: (x[0], x[1], -x[2])):
        if reach.get(i, -1) >= e:
            inner.add((i, s, e))
        reach[i] = max(reach.get(i, -1), e)
    outer: set[tuple[str, int, int]] = set()
    first: dict[str, int] = {}  # latest start of the spans so far (end <= this end)
    for i, s, e in sorted(spans, key=lambda x: (x[0], x[2], -x[1])):
        if first.get(i, -1) >= s:
            outer.add((i, s, e))
        first[i] = max(first.get(i, -1), s)
    return {x for x in items if (x[0], x[2], x[3]) in inner | outer}


class EntityTask:
    name = "entity"
    main_metric = "entity"
    record_key = "entities"

    def read_schema(self, path: Path | None, train: Path | None) -> EntitySchema:
        """The schema file; without one (CLUENER ships none) the sorted types of `train`."""
        if path is not None:
            return EntitySchema.from_file(path)
        if train is None:
            raise InputError("no data.schema_file, and no train file to collect entity types from")
        types = {e.type for ex in self.read_scored(train, None).values() for e in ex}
        if not types:
            raise InputError("holds no entity to collect types from: give data.schema_file", train)
        return EntitySchema(sorted(types))

    def heads(self, schema: EntitySchema) -> list[PointerSpec]:
        return [PointerSpec(HEAD, len(schema), rope=True, ordered=True)]

    def parse(self, schema: EntitySchema | None) -> Parse:
        def parse_line(
            line: str, path: str | Path, lineno: int, where: str, given: Any
        ) -> EntityExample:
            return _parse_line(line, path, lineno, where, schema if schema is not None else given)

        return parse_line

    def labels(
        self, example: EntityExample, windows: Sequence[Encoded], schema: EntitySchema
    ) -> tuple[list[HeadLabels], DropReport]:
        """A span is labelled in every window that sees it whole; the report counts each
        gold entity once: truncated if no window sees it whole, off-boundary if one does
        but its ends fall inside tokens."""
        report = DropReport()
        per_window = [(enc, token_boundaries(enc), set()) for enc in windows]
        for e in example.entities:
            if not schema.has(e.type):
                raise InputError(f"entity type {e.type!r} is not in the schema", example.where)
            report.spans += 1
            seen = labelled = False
            for enc, boundaries, cells in per_window:
                if not enc.sees(e.start, e.end):
                    continue
                seen = True
                span = char_span_to_tokens(enc, e.start, e.end, boundaries)
                if span is not None:
                    labelled = True
                    cells.add((schema.type_id(e.type), *span))
            if not labelled:
                report.off_boundary += seen
                report.truncated += not seen
                if len(report.examples) < 5:
                    report.examples.append(f"{example.where} {e.type}={e.text!r}@{e.start}")
        return [{HEAD: tuple(sorted(cells))} for _, _, cells in per_window], report

    def decode(
        self,
        scores: Scores,
        offsets: Sequence[Sequence[tuple[int, int]]],
        texts: Sequence[str],
        schema: EntitySchema,
        *,
        max_candidates: int = 256,
    ) -> list[list[Entity]]:
        """Per sentence, the cells scored > 0 on real tokens with h <= t, at most
        `max_candidates` (the highest), as entities sorted by (start, end, type)."""
        if max_candidates < 1:
            raise ValueError("max_candidates should be at least 1")
        head = scores[HEAD]
        n_labels = head.col.shape[2] if isinstance(head, Factored) else head.shape[1]
        if n_labels != len(schema):
            raise ValueError(f"{n_labels} entity scores per cell for {len(schema)} types")
        found = cells_above(head)
        return [
            _entities(cand, cell_scores, offs, text, schema, max_candidates)
            for (cand, cell_scores), offs, text in zip(found, offsets, texts, strict=True)
        ]

    def merge(self, parts: Sequence[list[Entity]], windows: Sequence[Encoded]) -> list[Entity]:
        """Offsets are absolute: the union of the windows' entities."""
        return sorted({e for part in parts for e in part}, key=_position)

    def records(self, found: list[Entity]) -> list[Entity]:
        return found

    def gold(self, example: EntityExample) -> list[Entity]:
        return list(example.entities)

    def evaluate(
        self, pred: Mapping[str, Sequence[Entity]], gold: Mapping[str, Sequence[Entity]]
    ) -> dict[str, PRF]:
        """Exact match on (id, type, start, end), duplicates removed: "entity", then
        "entity/TYPE" for every type in gold or pred, then "nested": only the entities that
        strictly contain, or lie strictly inside, another of the same side and text (gold
        among gold, predicted among predicted; one span under two types is not nested)."""

        def items(side: Mapping[str, Sequence[Entity]]) -> set[tuple[str, str, int, int]]:
            return {(i, e.type, e.start, e.end) for i, found in side.items() for e in found}

        p, g = items(pred), items(gold)
        out = {"entity": exact_prf(p, g)}
        for t in sorted({x[1] for x in p | g}):
            out[f"entity/{t}"] = exact_prf({x for x in p if x[1] == t}, {x for x in g if x[1] == t})
        out["nested"] = exact_prf(_nested(p), _nested(g))
        return out

    def unscored(self, pred: Mapping[str, Any]) -> dict[str, str]:
        """Every metric applies to any file this task reads."""
        return {}

    def output_row(self, example: EntityExample, found: Sequence[Entity]) -> dict:
        """The `entities` format with exclusive ends, so a prediction file reads as gold."""
        return {
            "id": example.id,
            "text": example.text,
            "entities": [
                {"entity": e.text, "label": e.type, "start_offset": e.start, "end_offset": e.end}
                for e in found
            ],
        }

    def read_scored(self, path: Path, schema: EntitySchema | None) -> dict[str, list[Entity]]:
        """A gold or prediction file in either format, by id; InputError on a bad line."""
        return {ex.id: list(ex.entities) for ex in read_examples(path, parse=self.parse(schema))}

    def spans(self, example: EntityExample) -> list[tuple[Label, str, int | None]]:
        return [((e.type,), e.text, e.start) for e in example.entities]

    def schema_labels(self, schema: EntitySchema) -> list[Label]:
        return [(t,) for t in schema.types]

    def collect_schema(
        self, examples: Sequence[EntityExample]
    ) -> tuple[EntitySchema, list[tuple[Label, int]]]:
        """The sorted types, as `read_schema` collects them without a file."""
        counts = Counter(e.type for ex in examples for e in ex.entities)
        return EntitySchema(sorted(counts)), [((t,), counts[t]) for t in sorted(counts)]


def _entities(
    cand: Tensor,
    cell_scores: Tensor,
    offsets: Sequence[tuple[int, int]],
    text: str,
    schema: EntitySchema,
    max_candidates: int,
) -> list[Entity]:
    """One sentence's (label, h, t) cells [N, 3] -> entities; positions past the offsets
    are padding, and a token with start == end ([CLS], [SEP]) is never a head or tail."""
    seq_len = int(cand[:, 1:].max()) + 1 if len(cand) else 0
    spans = torch.zeros(max(seq_len, len(offsets)), 2, dtype=torch.long)  # [L, 2]
    if offsets:
        spans[: len(offsets)] = torch.tensor([tuple(o) for o in offsets], dtype=torch.long)
    heads, tails = cand[:, 1], cand[:, 2]
    char_start, char_end = spans[heads, 0], spans[tails, 1]  # [N]
    ok = (spans[heads, 0] < spans[heads, 1]) & (spans[tails, 0] < spans[tails, 1])
    ok &= (heads <= tails) & (char_start < char_end) & (char_start >= 0)
    ok &= char_end <= len(text)
    cand, char_start, char_end = cand[ok], char_start[ok], char_end[ok]
    if len(cand) > max_candidates:
        keep = top_k(cell_scores[ok], max_candidates, what="candidate entities")
        cand, char_start, char_end = cand[keep], char_start[keep], char_end[keep]
    found = {
        Entity(schema.types[label], text[s:e], s)
        for label, s, e in zip(
            cand[:, 0].tolist(), char_start.tolist(), char_end.tolist(), strict=True
        )
    }
    return sorted(found, key=_position)


TASK = EntityTask()
