"""What doccano and Label Studio both annotate, labelled spans and labelled links between
them, and how those map onto our three tasks' JSONL rows and back. The mappings live here
once; `doccano.py` and `label_studio.py` only read and write each tool's file shapes.

- entity: every span is an entity (its label the type); links are not used (counted).
- relation: a link is a triple: subject = its source span, object = its target span,
  predicate = the link's label, subject and object types = the spans' labels. Spans in no
  link have no place in the format (counted).
- event (PaddleNLP UIE's doccano.py mapping): a span labelled `{event_type}触发词` is the
  trigger of one event of that type; each link from it is an argument, the role being the
  link's label and the argument the link's target span (whose own label is free: we write
  the role). Links from a span that is no trigger, and spans neither a trigger nor an
  argument, are counted.

Everything a text holds ends in the row or in a count (`Tally.skipped`), never nowhere.
Offsets here are code points (Python's str indices), end exclusive; `OffsetMap` converts
from and to the UTF-16 code units a browser counts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

from gplinker.errors import InputError
from gplinker.schema import TRIGGER

Offsets = Literal["utf-16", "code-points"]
Fail = Callable[[str], InputError]  # message -> an InputError naming the line or task


@dataclass(frozen=True, slots=True, order=True)
class Span:
    start: int  # code points, end exclusive
    end: int
    label: str


@dataclass(frozen=True, slots=True)
class Link:
    source: str  # span keys (the tool's ids)
    target: str
    label: str


@dataclass
class Annotated:
    """One text as a tool annotates it: spans by key, links between keys."""

    id: str
    text: str
    spans: dict[str, Span]
    links: list[Link]
    fail: Fail


# the records each task's summary counts, in the order they are shown
RECORDS = {
    "entity": ("entities",),
    "relation": ("entities", "relations"),
    "event": ("events", "arguments"),
}


@dataclass
class Tally:
    """What a conversion kept and what it left out, with why."""

    task: str
    read: int = 0  # lines or tasks of the export
    records: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)  # why -> how many

    def __post_init__(self) -> None:
        self.records.update(dict.fromkeys(RECORDS[self.task], 0))  # shown even when none


class OffsetMap:
    """A text's offsets counted in `units`, to and from code points. UTF-16 counts a
    character beyond U+FFFF (an emoji, a CJK extension B ideograph) as two."""

    def __init__(self, text: str, units: Offsets):
        self.length = len(text)
        wide = units == "utf-16" and any(ord(c) > 0xFFFF for c in text)
        self._to_units: list[int] | None = None
        self._to_text: dict[int, int] = {}
        if wide:
            pos = [0]
            for c in text:
                pos.append(pos[-1] + (2 if ord(c) > 0xFFFF else 1))
            self._to_units = pos
            self._to_text = {u: i for i, u in enumerate(pos)}

    def to_text(self, offset: int, at: str, fail: Fail) -> int:
        """A tool's offset as a code point index; one inside a character is an error."""
        if self._to_units is None:
            return offset
        end = self._to_units[-1]
        if offset < 0 or offset > end:  # outside: the range check words it
            return offset if offset < 0 else self.length + offset - end
        if offset not in self._to_text:
            raise fail(
                f"{at}: offset {offset} falls inside a character (the second half of a UTF-16 "
                "surrogate pair): if this export counts code points, give --offsets code-points"
            )
        return self._to_text[offset]

    def to_units(self, offset: int) -> int:
        return offset if self._to_units is None else self._to_units[offset]


def to_row(task: str, ann: Annotated, tally: Tally) -> dict:
    """Our JSONL row of `task` for one annotated text; spans and links are checked first."""
    for key, span in ann.spans.items():
        _check_span(key, span, ann)
    canon = _distinct_spans(ann, tally)
    links = _distinct_links(ann, canon, tally)
    if task == "entity":
        return _entity_row(ann, set(canon.values()), links, tally)
    for link in links:
        if not link.label:
            raise ann.fail(
                f"the relation from {link.source!r} to {link.target!r} has no label: the "
                f"{'predicate' if task == 'relation' else 'role'} is the relation's label"
            )
    if task == "relation":
        return _relation_row(ann, set(canon.values()), links, tally)
    return _event_row(ann, set(canon.values()), links, tally)


def _check_span(key: str, span: Span, ann: Annotated) -> None:
    if span.end <= span.start:
        raise ann.fail(f"span {key!r}: empty span [{span.start}, {span.end})")
    if span.start < 0 or span.end > len(ann.text):
        raise ann.fail(
            f"span {key!r}: [{span.start}, {span.end}) is outside the text of "
            f"{len(ann.text)} characters"
        )
    if not span.label:
        raise ann.fail(f"span {key!r} has no label")


def _distinct_spans(ann: Annotated, tally: Tally) -> dict[str, str]:
    """Each span's key -> the key of the first span with its offsets and label."""
    first: dict[Span, str] = {}
    canon = {}
    for key, span in ann.spans.items():
        if span in first:
            tally.skipped["duplicate spans (the same offsets and label again: kept once)"] += 1
        canon[key] = first.setdefault(span, key)
    return canon


def _distinct_links(ann: Annotated, canon: dict[str, str], tally: Tally) -> list[Link]:
    out: dict[Link, None] = {}
    for link in ann.links:
        for end in (link.source, link.target):
            if end not in canon:
                raise ann.fail(
                    f"the relation {link.label!r} from {link.source!r} to {link.target!r} "
                    f"points to {end!r}, which is no span of this text"
                )
        resolved = Link(canon[link.source], canon[link.target], link.label)
        if resolved in out:
            tally.skipped["duplicate relations (the same spans and label again: kept once)"] += 1
        out[resolved] = None
    return list(out)


def _entity_row(ann: Annotated, keys: set[str], links: list[Link], tally: Tally) -> dict:
    spans = sorted(ann.spans[k] for k in keys)
    tally.records["entities"] += len(spans)
    if links:
        tally.skipped["relations (--task entity keeps the spans alone)"] += len(links)
    entities = [
        {
            "entity": ann.text[s.start : s.end],
            "label": s.label,
            "start_offset": s.start,
            "end_offset": s.end,
        }
        for s in spans
    ]
    return {"id": ann.id, "text": ann.text, "entities": entities}


def _relation_row(ann: Annotated, keys: set[str], links: list[Link], tally: Tally) -> dict:
    def spo(link: Link) -> dict:
        s, o = ann.spans[link.source], ann.spans[link.target]
        return {
            "subject": ann.text[s.start : s.end],
            "subject_type": s.label,
            "predicate": link.label,
            "object": ann.text[o.start : o.end],
            "object_type": o.label,
            "subject_start_index": s.start,
            "object_start_index": o.start,
        }

    used = {k for link in links for k in (link.source, link.target)}
    if keys - used:
        tally.skipped["entities in no relation (the relation format has no place for them)"] += len(
            keys - used
        )
    tally.records["entities"] += len(used)
    tally.records["relations"] += len(links)
    order = sorted(links, key=lambda x: (ann.spans[x.source], ann.spans[x.target], x.label))
    return {"id": ann.id, "text": ann.text, "spo_list": [spo(x) for x in order]}


def _event_row(ann: Annotated, keys: set[str], links: list[Link], tally: Tally) -> dict:
    triggers = {k for k in keys if ann.spans[k].label.endswith(TRIGGER)}
    for k in triggers:
        if ann.spans[k].label == TRIGGER:
            raise ann.fail(
                f"span {k!r} is labelled {TRIGGER!r} alone: a trigger's label is the event "
                f"type followed by {TRIGGER!r}, e.g. '地震{TRIGGER}'"
            )
    events = []
    for k in sorted(triggers, key=lambda k: ann.spans[k]):
        t = ann.spans[k]
        arguments = []
        for link in links:
            if link.source != k:
                continue
            if link.label == TRIGGER:
                raise ann.fail(f"the relation from {k!r}: role {TRIGGER!r} is the trigger's own")
            a = ann.spans[link.target]
            arguments.append((a.start, link.label, ann.text[a.start : a.end]))
        events.append(
            {
                "event_type": t.label[: -len(TRIGGER)],
                "trigger": ann.text[t.start : t.end],
                "trigger_start_index": t.start,
                "arguments": [
                    {"role": role, "argument": arg, "argument_start_index": start}
                    for start, role, arg in sorted(arguments)
                ],
            }
        )
        tally.records["arguments"] += len(arguments)
    tally.records["events"] += len(events)
    stray = [x for x in links if x.source not in triggers]
    if stray:
        tally.skipped["relations not from a trigger (an event's roles go from its trigger)"] += len(
            stray
        )
    loose = keys - triggers - {x.target for x in links if x.source in triggers}
    if loose:
        tally.skipped["entities neither a trigger nor an argument"] += len(loose)
    return {"id": ann.id, "text": ann.text, "event_list": events}


# ---- back: our rows -> spans and links --------------------------------------------------------
@dataclass
class Marked:
    """One row as spans (by index) and links (source index, target index, label)."""

    id: str
    text: str
    spans: list[Span]
    links: list[tuple[int, int, str]]


def from_rows(rows: Iterable[dict], task: str, left_out: Counter[str]) -> Iterator[Marked]:
    """Our JSONL rows (what `predict` writes) as spans and links; error records of
    `--on-error record` and events without a trigger are counted in `left_out`."""
    for row in rows:
        if "error" in row and "text" not in row:
            left_out["error records (bad input lines)"] += 1
            continue
        yield _marked(row, task, left_out)


def _marked(row: dict, task: str, left_out: Counter[str]) -> Marked:
    spans: dict[Span, int] = {}
    links: dict[tuple[int, int, str], None] = {}
    where = f"the row of id {row.get('id')!r}"

    def add(start: int | None, text: str, label: str) -> int:
        if start is None or not label:
            raise InputError(f"{where}: {text!r} has no start offset or no label")
        return spans.setdefault(Span(start, start + len(text), label), len(spans))

    if task == "entity":
        for e in row.get("entities", []):
            add(e["start_offset"], row["text"][e["start_offset"] : e["end_offset"]], e["label"])
    elif task == "relation":
        for t in row.get("spo_list", []):
            s = add(t.get("subject_start_index"), t["subject"], t.get("subject_type", ""))
            o = add(t.get("object_start_index"), t["object"], t.get("object_type", ""))
            links[s, o, t["predicate"]] = None
    else:
        for ev in row.get("event_list", []):
            if "trigger" not in ev:
                left_out["events without a trigger (the tool's format needs one)"] += 1
                continue
            t = add(ev.get("trigger_start_index"), ev["trigger"], ev["event_type"] + TRIGGER)
            for a in ev.get("arguments", []):
                target = add(a.get("argument_start_index"), a["argument"], a["role"])
                links[t, target, a["role"]] = None
    return Marked(str(row.get("id", "")), row["text"], list(spans), list(links))


def describe(counts: Sequence[tuple[str, int]]) -> str:
    return "; ".join(f"{why}: {n}" for why, n in counts)
