"""Event extraction (DuEE): arguments with the trigger as one more role, head and tail links,
maximal cliques (SPEC §1–§8). The rooms it wires together predate the task interface and
stay where they are: `schema.py` (labels), `data/reader.py` (DuEE lines), `data/labels.py`,
`decoding.py` (cliques, window merge) and `metrics.py` (event / argument / trigger /
official F1)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from gplinker.data.alignment import Encoded
from gplinker.data.labels import DropReport, HeadLabels, build_window_labels
from gplinker.data.reader import Parse, parse_event_line
from gplinker.decoding import Decoded, decode_sentences, merge_windows
from gplinker.errors import ConfigError
from gplinker.metrics import PRF, evaluate, read_scored_file, unscored
from gplinker.modeling.global_pointer import PointerSpec
from gplinker.schema import TRIGGER, Argument, Event, EventRecord, Example, Schema
from gplinker.tasks.base import Label, Scores


class EventTask:
    name = "event"
    main_metric = "event"
    record_key = "event_list"

    def read_schema(self, path: Path | None, train: Path | None) -> Schema:
        if path is None:
            raise ConfigError(
                "event extraction needs the DuEE event schema", key="data.schema_file"
            )
        return Schema.from_file(path)

    def heads(self, schema: Schema) -> list[PointerSpec]:
        """Arguments (trigger included) as spans; head and tail links of one label, stored
        as (min, max) cells so they are ordered too."""
        return [
            PointerSpec("argu", len(schema), rope=True),
            PointerSpec("head_link", 1, rope=False),
            PointerSpec("tail_link", 1, rope=False),
        ]

    def parse(self, schema: Schema | None) -> Parse:
        return parse_event_line

    def labels(
        self, example: Example, windows: Sequence[Encoded], schema: Schema
    ) -> tuple[list[HeadLabels], DropReport]:
        labels, report = build_window_labels(example, windows, schema)
        return [y.by_head() for y in labels], report

    def decode(
        self,
        scores: Scores,
        offsets: Sequence[Sequence[tuple[int, int]]],
        texts: Sequence[str],
        schema: Schema,
        *,
        max_candidates: int = 256,
    ) -> list[Decoded]:
        return decode_sentences(
            scores["argu"],
            scores["head_link"],
            scores["tail_link"],
            offsets,
            texts,
            schema,
            max_candidates=max_candidates,
        )

    def merge(self, parts: Sequence[Decoded], windows: Sequence[Encoded]) -> Decoded:
        events = merge_windows([d.events for d in parts], windows)
        return Decoded(events, _union_by_type(d.clique_arguments for d in parts))

    def records(self, found: Decoded) -> list[Event]:
        return found.events

    def gold(self, example: Example) -> tuple[Event, ...]:
        return example.events

    def evaluate(self, pred: Mapping[str, object], gold: Mapping[str, object]) -> dict[str, PRF]:
        """Every metric the predictions allow; decoded predictions (training's dev
        evaluation) add the reference's argument F1 over every clique."""
        decoded = {i: p for i, p in pred.items() if isinstance(p, Decoded)}
        if not decoded:
            return evaluate(pred, gold)  # type: ignore[arg-type]
        return evaluate(
            {i: d.events for i, d in decoded.items()},
            gold,  # type: ignore[arg-type]
            clique_arguments={i: d.clique_arguments for i, d in decoded.items()},
        )

    def unscored(self, pred: Mapping[str, object]) -> dict[str, str]:
        return unscored(pred)  # type: ignore[arg-type]

    def output_row(self, example: Example, found: Decoded) -> dict:
        """DuEE submission format plus offsets, and the text."""
        return {
            "id": example.id,
            "text": example.text,
            "event_list": [e.to_json() for e in found.events],
        }

    def read_scored(self, path: Path, schema: Schema | None) -> dict[str, tuple[EventRecord, ...]]:
        return read_scored_file(path, schema)

    def spans(self, example: Example) -> list[tuple[Label, str, int | None]]:
        """The trigger under (event_type, TRIGGER), each argument under its role."""
        return [
            ((ev.event_type, a.role), a.text, a.start)
            for ev in example.events
            for a in sorted(ev.arguments)
        ]

    def schema_labels(self, schema: Schema) -> list[Label]:
        return list(schema.labels)

    def collect_schema(self, examples: Sequence[Example]) -> tuple[Schema, list[tuple[Label, int]]]:
        """Sorted event types with their sorted roles; rows: events per type, then
        arguments per (type, role)."""
        events = Counter(ev.event_type for ex in examples for ev in ex.events)
        roles = Counter(
            (ev.event_type, a.role)
            for ex in examples
            for ev in ex.events
            for a in ev.arguments
            if a.role != TRIGGER
        )
        schema = Schema({t: sorted(r for u, r in roles if u == t) for t in sorted(events)})
        rows = [((t,), events[t]) for t in schema.event_types]
        return schema, rows + [(label, roles[label]) for label in sorted(roles)]


def _union_by_type(per_window: Iterable[Sequence[Event]]) -> list[Event]:
    """One trigger-less Event per event type with the arguments every window found."""
    found: dict[str, set[Argument]] = {}
    for events in per_window:
        for ev in events:
            found.setdefault(ev.event_type, set()).update(ev.arguments)
    return [Event(t, frozenset(args)) for t, args in sorted(found.items())]


TASK = EventTask()
