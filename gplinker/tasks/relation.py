"""Relation (SPO triple) extraction: GPLinker proper (SPEC §12, bojone's duie_v1.py).

Three heads: "entity" marks subject (label 0) and object (label 1) spans; "head" and "tail"
link, per predicate, the subject's first token to the object's and its last token to the
object's, in either order (an object may come first). A triple is every (subject,
predicate, object) whose two links both score > 0.

DuIE 1.0 names strings without offsets: each is placed at its first occurrence in the text,
as the reference does, or case-insensitively when the exact string is absent (the Span then
holds the text's own characters). A string still absent keeps start None: gold for the
metric, never a label, counted as not_found. Triples carry their subject and object types
(from the line, else the schema), so that an output line needs nothing else.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from gplinker.data.alignment import Encoded, char_span_to_tokens, token_boundaries
from gplinker.data.labels import DropReport, HeadLabels
from gplinker.data.reader import (
    EMPTY_SPAN,
    MISSING_FIELD,
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
from gplinker.errors import ConfigError, InputError
from gplinker.metrics import PRF, exact_prf
from gplinker.modeling.global_pointer import Factored, PointerSpec
from gplinker.tasks.base import Label, Scores

UNKNOWN_PREDICATE = "unknown predicate"
EMPTY_PREDICATE = "empty predicate"
BAD_SCHEMA = "bad schema"
SUBJECT, OBJECT = 0, 1  # labels of the entity head


@dataclass(frozen=True, slots=True, order=True)
class Span:
    """A subject or object: its text and char offset in the full text (None: a gold string
    the text does not hold)."""

    text: str
    start: int | None

    @property
    def end(self) -> int | None:
        return None if self.start is None else self.start + len(self.text)


@dataclass(frozen=True, slots=True, order=True)
class Triple:
    subject: Span
    predicate: str
    object: Span
    subject_type: str = ""  # for the output line; the metric matches on `key` only
    object_type: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        """What the LIC2019 / GPLinker metric matches on: strings, not offsets."""
        return self.subject.text, self.predicate, self.object.text

    def to_json(self) -> dict:
        out = {
            "subject": self.subject.text,
            "subject_type": self.subject_type,
            "predicate": self.predicate,
            "object": self.object.text,
            "object_type": self.object_type,
        }
        for name, span in (("subject", self.subject), ("object", self.object)):
            if span.start is not None:
                out[f"{name}_start_index"] = span.start
        return out


@dataclass(frozen=True, slots=True)
class RelationExample:
    id: str
    text: str
    triples: tuple[Triple, ...]
    where: str = ""  # "train.json:17", for messages


class RelationSchema:
    """(predicate, subject_type, object_type) in file order; a predicate's index is its
    label in the head and tail links."""

    def __init__(self, predicates: Iterable[tuple[str, str, str]]):
        self.predicates: tuple[tuple[str, str, str], ...] = tuple(
            (p, s, o) for p, s, o in predicates
        )
        self._ids = {p: i for i, (p, _, _) in enumerate(self.predicates)}
        if len(self._ids) != len(self.predicates):
            raise ValueError("a predicate is listed twice")

    def __len__(self) -> int:
        return len(self.predicates)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RelationSchema) and self.predicates == other.predicates

    def __hash__(self) -> int:
        return hash(self.predicates)

    def has(self, predicate: str) -> bool:
        return predicate in self._ids

    def predicate_id(self, predicate: str) -> int:
        return self._ids[predicate]

    def types(self, predicate: str) -> tuple[str, str]:
        """(subject_type, object_type) of a predicate."""
        _, subject_type, object_type = self.predicates[self._ids[predicate]]
        return subject_type, object_type

    @classmethod
    def from_file(cls, path: str | Path) -> RelationSchema:
        """DuIE's all_50_schemas (one {"object_type", "predicate", "subject_type"} a line;
        DuIE 2.0's {"@value": ...} types too) or a schema.json written by `to_file`.

        A predicate listed again is one label, with its first types, as in the reference:
        DuIE 1.0 lists 成立日期 for 机构 and for 企业 (50 lines, 49 predicates)."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"cannot read schema: {e}", path) from e
        predicates: dict[str, tuple[str, str, str]] = {}
        for n, row in _schema_rows(text, path):
            p, s, o = (_schema_value(row, key, path, n) for key in _SCHEMA_KEYS)
            predicates.setdefault(p, (p, s, o))
        if not predicates:
            raise InputError("the schema lists no predicates", path, kind=BAD_SCHEMA)
        return cls(predicates.values())

    def to_json(self) -> dict:
        return {
            "predicates": [dict(zip(_SCHEMA_KEYS, row, strict=True)) for row in self.predicates]
        }

    def to_file(self, path: str | Path) -> None:
        Path(path).write_text(
            json.dumps(self.to_json(), ensure_ascii=False, indent=1), encoding="utf-8"
        )


_SCHEMA_KEYS = ("predicate", "subject_type", "object_type")


def _schema_rows(text: str, path: Path) -> list[tuple[int | None, Any]]:
    """(line number, row) per line of a DuIE schema; (None, row) per entry of our
    schema.json, whose rows have no line of their own."""
    stripped, n = text.lstrip(), None
    try:
        if stripped.startswith("{") and '"predicates"' in stripped[:200]:
            rows = json.loads(text)["predicates"]
            return [(None, row) for row in rows] if isinstance(rows, list) else [(None, rows)]
        found = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                found.append((n, json.loads(line)))
        return found
    except json.JSONDecodeError as e:
        raise InputError(f"invalid JSON: {e.msg}", path, n or e.lineno, kind=BAD_SCHEMA) from e


def _schema_value(row: Any, key: str, path: Path, n: int | None) -> str:
    value = row.get(key) if isinstance(row, dict) else None
    if isinstance(value, dict):  # DuIE 2.0: {"@value": "人物", "inWork": ...}
        value = value.get("@value")
    if isinstance(value, str) and value:
        return value
    got = kind_of(value) if isinstance(row, dict) and key in row else "missing"
    raise InputError(
        f'expected {{"predicate", "subject_type", "object_type"}}, each a non-empty string; '
        f'"{key}" is {got}',
        path,
        n,
        kind=BAD_SCHEMA,
    )


class RelationTask:
    name = "relation"
    main_metric = "triple"
    record_key = "spo_list"

    def read_schema(self, path: Path | None, train: Path | None) -> RelationSchema:
        """Predicates are not collected from the data: their types come from the schema."""
        if path is None:
            raise ConfigError(
                "the relation task needs a schema file (DuIE's all_50_schemas, or a model "
                "folder's schema.json)",
                key="data.schema_file",
            )
        return RelationSchema.from_file(path)

    def heads(self, schema: RelationSchema) -> list[PointerSpec]:
        # SPEC §12: links have no RoPE and no triangle mask (an object may come first)
        n = len(schema)
        return [
            PointerSpec("entity", 2, rope=True, ordered=True),
            PointerSpec("head", n, rope=False, ordered=False),
            PointerSpec("tail", n, rope=False, ordered=False),
        ]

    def parse(self, schema: RelationSchema | None) -> Parse:
        """The line parser; this schema, else the one `read_lines` passes, is checked."""

        def parse_line(
            line: str, path: str | Path, lineno: int, where: str, given: Any = None
        ) -> RelationExample:
            return _parse_line(line, path, lineno, where, schema if schema is not None else given)

        return parse_line

    def labels(
        self, example: RelationExample, windows: Sequence[Encoded], schema: RelationSchema
    ) -> tuple[list[HeadLabels], DropReport]:
        """A triple is labelled in every window that sees its subject and object whole, on
        token boundaries; the report counts each triple once."""
        report = DropReport()
        per_window = [(enc, token_boundaries(enc), set(), set(), set()) for enc in windows]
        for tr in example.triples:
            report.spans += 1
            s, o = tr.subject, tr.object
            seen = labelled = False
            if s.start is not None and o.start is not None:
                p = schema.predicate_id(tr.predicate)
                for enc, bounds, entity, head, tail in per_window:
                    if not (enc.sees(s.start, s.end) and enc.sees(o.start, o.end)):
                        continue
                    seen = True
                    sub = char_span_to_tokens(enc, s.start, s.end, bounds)
                    obj = char_span_to_tokens(enc, o.start, o.end, bounds)
                    if sub is None or obj is None:
                        continue
                    labelled = True
                    entity.update({(SUBJECT, *sub), (OBJECT, *obj)})
                    head.add((p, sub[0], obj[0]))
                    tail.add((p, sub[1], obj[1]))
            if labelled:
                continue
            if s.start is None or o.start is None:
                report.not_found += 1
            elif seen:
                report.off_boundary += 1
            else:
                report.truncated += 1
            if len(report.examples) < 5:
                report.examples.append(f"{example.where} {s.text}|{tr.predicate}|{o.text}")
        labels = [
            {"entity": tuple(sorted(e)), "head": tuple(sorted(h)), "tail": tuple(sorted(t))}
            for _, _, e, h, t in per_window
        ]
        return labels, report

    def decode(
        self,
        scores: Scores,
        offsets: Sequence[Sequence[tuple[int, int]]],
        texts: Sequence[str],
        schema: RelationSchema,
        *,
        max_candidates: int = 256,
    ) -> list[list[Triple]]:
        """SPEC §12: per sentence, subjects x objects x predicates with both links > 0.
        At most max_candidates subjects, objects and triples per sentence (logged)."""
        entity = cells_above(scores["entity"])
        if not len(entity) == len(offsets) == len(texts):
            raise ValueError(
                f"batch of {len(entity)} score maps, {len(offsets)} offset lists, "
                f"{len(texts)} texts"
            )
        seq_len = _seq_len(scores["entity"])
        return [
            _decode_sentence(
                cells, b, scores, _char_spans(offsets[b], seq_len), texts[b], schema, max_candidates
            )
            for b, cells in enumerate(entity)
        ]

    def merge(self, parts: Sequence[list[Triple]], windows: Sequence[Encoded]) -> list[Triple]:
        """Offsets are absolute, so a triple seen by two windows is the same record."""
        return sorted(set(chain.from_iterable(parts)))

    def records(self, found: list[Triple]) -> list[Triple]:
        return found

    def gold(self, example: RelationExample) -> list[Triple]:
        return list(example.triples)

    def evaluate(
        self, pred: Mapping[str, Sequence[Triple]], gold: Mapping[str, Sequence[Triple]]
    ) -> dict[str, PRF]:
        """Exact match on (id, subject, predicate, object) strings, duplicates removed;
        "triple/P" per predicate P seen in either side."""
        pred_items, gold_items = _items(pred), _items(gold)
        out = {"triple": exact_prf(pred_items, gold_items)}
        for p in sorted({item[2] for item in pred_items | gold_items}):
            out[f"triple/{p}"] = exact_prf(
                {x for x in pred_items if x[2] == p}, {x for x in gold_items if x[2] == p}
            )
        return out

    def unscored(self, pred: Mapping[str, Any]) -> dict[str, str]:
        """Every metric applies to any file this task reads."""
        return {}

    def output_row(self, example: RelationExample, found: Sequence[Triple]) -> dict:
        return {"id": example.id, "text": example.text, "spo_list": [t.to_json() for t in found]}

    def read_scored(
        self, path: Path, schema: RelationSchema | None
    ) -> dict[str, tuple[Triple, ...]]:
        return {ex.id: ex.triples for ex in read_examples(path, parse=self.parse(schema))}

    def spans(self, example: RelationExample) -> list[tuple[Label, str, int | None]]:
        """Each triple's subject and object, under (predicate, "subject" | "object")."""
        return [
            ((tr.predicate, part), span.text, span.start)
            for tr in example.triples
            for part, span in (("subject", tr.subject), ("object", tr.object))
        ]

    def schema_labels(self, schema: RelationSchema) -> list[Label]:
        return [(p, part) for p, _, _ in schema.predicates for part in ("subject", "object")]

    def collect_schema(
        self, examples: Sequence[RelationExample]
    ) -> tuple[RelationSchema, list[tuple[Label, int]]]:
        """Sorted predicates, each with its most frequent (subject_type, object_type);
        rows: triples per (predicate, subject_type, object_type), every pair seen."""
        counts: Counter[tuple[str, str, str]] = Counter()
        for ex in examples:
            for tr in ex.triples:
                if not (tr.subject_type and tr.object_type):
                    raise InputError(
                        f"a {tr.predicate!r} triple has no subject_type or object_type: a "
                        "relation schema needs both",
                        ex.where,
                    )
                counts[tr.predicate, tr.subject_type, tr.object_type] += 1
        best: dict[str, tuple[str, str, str]] = {}
        for row, n in sorted(counts.items()):  # sorted: of equal counts the first pair wins
            if row[0] not in best or n > counts[best[row[0]]]:
                best[row[0]] = row
        schema = RelationSchema(best[p] for p in sorted(best))
        return schema, [(row, counts[row]) for row in sorted(counts)]


def _items(by_id: Mapping[str, Sequence[Triple]]) -> set[tuple[str, str, str, str]]:
    return {(i, *t.key) for i, triples in by_id.items() for t in triples}


# ---- reading ---------------------------------------------------------------------------------
def _parse_line(
    line: str, path: str | Path, lineno: int, where: str, schema: RelationSchema | None
) -> RelationExample:
    def fail(message: str, kind: str) -> InputError:
        return InputError(message, path, lineno, kind=kind)

    row = json_object(line, fail)
    text = text_field(row, fail, required=True)
    spo_list = row.get("spo_list", [])  # absent: prediction input, no gold
    if not isinstance(spo_list, list):
        raise fail(f'"spo_list" should be a list, got {kind_of(spo_list)}', WRONG_TYPE)
    triples = [_triple(spo, f"spo_list[{i}]", text, schema, fail) for i, spo in enumerate(spo_list)]
    ex_id = example_id(row, lineno, fail, numbers=True)
    return RelationExample(ex_id, text, tuple(dict.fromkeys(triples)), where)


def _triple(spo: Any, at: str, text: str, schema: RelationSchema | None, fail: Any) -> Triple:
    if not isinstance(spo, dict):
        raise fail(f"{at} should be an object, got {kind_of(spo)}", WRONG_TYPE)
    predicate = field_of(spo, "predicate", str, at, fail)
    check_unicode(predicate, f'{at}: "predicate"', fail)
    if not predicate:
        raise fail(f'{at}: "predicate" is empty', EMPTY_PREDICATE)
    if schema is not None and not schema.has(predicate):
        raise fail(f"{at}: predicate {predicate!r} is not in the schema", UNKNOWN_PREDICATE)
    subject_type, object_type = schema.types(predicate) if schema is not None else ("", "")
    return Triple(
        _span(spo, "subject", text, at, fail),
        predicate,
        _span(spo, "object", text, at, fail),
        _string(spo, "subject_type", at, fail, default=subject_type),
        _string(spo, "object_type", at, fail, default=object_type),
    )


def _string(obj: dict, key: str, at: str, fail: Any, *, default: str | None = None) -> str:
    """A string field, or DuIE 2.0's {"@value": string}; `default` when absent, if given."""
    if key not in obj:
        if default is not None:
            return default
        raise fail(f'{at}: "{key}" is missing', MISSING_FIELD)
    value = obj[key]
    if isinstance(value, dict):
        value = field_of(value, "@value", str, f"{at}.{key}", fail)
    elif not isinstance(value, str):
        raise fail(f'{at}: "{key}" should be a string, got {kind_of(value)}', WRONG_TYPE)
    check_unicode(value, f'{at}: "{key}"', fail)
    return value


def _span(spo: dict, key: str, text: str, at: str, fail: Any) -> Span:
    """The given start is checked against the text; without one, the string is placed."""
    value = _string(spo, key, at, fail)
    if not value:
        raise fail(f'{at}: "{key}" is empty', EMPTY_SPAN)
    start_key = f"{key}_start_index"
    if start_key not in spo:
        return _place(value, text)
    start = field_of(spo, start_key, int, at, fail)
    found = text[start : start + len(value)] if start >= 0 else ""
    if found != value:
        raise fail(
            f'{at}: "{key}" is {value!r} but text[{start}:{start + len(value)}] is {found!r}',
            SPAN_MISMATCH,
        )
    return Span(value, start)


def _place(value: str, text: str) -> Span:
    """First occurrence, as the reference; else case-insensitive (where lower-casing keeps
    the lengths, so offsets stay the text's); else not found (start None)."""
    start = text.find(value)
    if start >= 0:
        return Span(value, start)
    lowered = text.lower()
    if len(lowered) == len(text) and len(value.lower()) == len(value):
        start = lowered.find(value.lower())
        if start >= 0:
            return Span(text[start : start + len(value)], start)
    return Span(value, None)


# ---- decoding --------------------------------------------------------------------------------
def _seq_len(scores: Tensor | Factored) -> int:
    return scores.qk.shape[-1] if isinstance(scores, Factored) else scores.shape[-1]


def _char_spans(offsets: Sequence[tuple[int, int]], seq_len: int) -> Tensor:
    """[L, 2] char (start, end) per token position; padding past the offsets is (0, 0)."""
    if len(offsets) > seq_len:
        raise ValueError(f"{len(offsets)} offsets for {seq_len} token positions")
    spans = torch.zeros(seq_len, 2, dtype=torch.long)
    if offsets:
        spans[: len(offsets)] = torch.tensor([tuple(o) for o in offsets], dtype=torch.long)
    return spans


def _decode_sentence(
    cells: tuple[Tensor, Tensor],
    b: int,
    scores: Scores,
    spans: Tensor,
    text: str,
    schema: RelationSchema,
    max_candidates: int,
) -> list[Triple]:
    cand, cand_scores = cells
    h, t = cand[:, 1], cand[:, 2]
    start, end = spans[h, 0], spans[t, 1]
    real = spans[:, 0] < spans[:, 1]  # [L]: [CLS], [SEP] and padding are (0, 0)
    ok = real[h] & real[t] & (h <= t) & (start < end) & (start >= 0) & (end <= len(text))
    sub = _bounded(cand, cand_scores, ok & (cand[:, 0] == SUBJECT), max_candidates, "subjects")
    obj = _bounded(cand, cand_scores, ok & (cand[:, 0] == OBJECT), max_candidates, "objects")
    if not len(sub) or not len(obj):
        return []
    head = _pair_scores(scores["head"], b, sub[:, 1], obj[:, 1])  # [S, O, P]
    tail = _pair_scores(scores["tail"], b, sub[:, 2], obj[:, 2])  # [S, O, P]
    i, j, p = ((head > 0) & (tail > 0)).nonzero().unbind(1)
    if len(i) > max_candidates:
        keep = top_k(head[i, j, p] + tail[i, j, p], max_candidates, what="candidate triples")
        i, j, p = i[keep], j[keep], p[keep]

    def span(token: Tensor) -> Span:
        s, e = spans[token[1], 0].item(), spans[token[2], 1].item()
        return Span(text[s:e], s)

    triples = set()
    for si, oi, pi in zip(i.tolist(), j.tolist(), p.tolist(), strict=True):
        predicate = schema.predicates[pi][0]
        triples.add(Triple(span(sub[si]), predicate, span(obj[oi]), *schema.types(predicate)))
    return sorted(triples)


def _bounded(cand: Tensor, scores: Tensor, keep: Tensor, k: int, what: str) -> Tensor:
    """The (label, h, t) rows where `keep`, at most the k best (logged)."""
    cand, scores = cand[keep], scores[keep]
    return cand[top_k(scores, k, what=f"candidate {what}")]


def _pair_scores(scores: Tensor | Factored, b: int, rows: Tensor, cols: Tensor) -> Tensor:
    """[S, O, P] link scores of sentence b between tokens rows [S] and cols [O]. From
    Factored parts only those cells are computed, never the [P, L, L] map."""
    if isinstance(scores, Factored):
        r, c = rows.to(scores.qk.device), cols.to(scores.qk.device)
        cell = scores.qk[b, r[:, None], c[None, :]]  # [S, O]
        out = cell[:, :, None] + scores.col[b, c][None] + scores.row[b, r][:, None]  # [S, O, P]
        out = out.masked_fill(~scores.mask[b, r[:, None], c[None, :]][:, :, None], float("-inf"))
    else:
        r, c = rows.to(scores.device), cols.to(scores.device)
        out = scores[b][:, r[:, None], c[None, :]].permute(1, 2, 0)  # [P, S, O] -> [S, O, P]
    return out.detach().to("cpu", torch.float32)


TASK = RelationTask()
