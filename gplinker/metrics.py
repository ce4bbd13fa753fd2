"""Event, argument and trigger F1 (GPLinker's, exact match) and the official LIC2020 metric
(SPEC §8). Predictions and gold map example id -> that sentence's events, as `Event`s (the
decoder's) or `EventRecord`s (a file's, which may lack triggers or offsets).

Where these follow the reference (bojone/GPLinker `duee_v1.py`, `evaluate`) and where not:
- event F1: an event is its sorted (role, text, start) elements, trigger included, repeats
  kept, so an event listing an argument twice is a miss, as there; equal events count once.
  The reference's `evaluate` keeps an event that is a subset of another of the same type,
  which its `predict_to_file` and our decoder drop: our event F1 scores what is written.
- argument F1: the (event_type, role, text, start) of the arguments of the events, triggers
  excluded. The reference takes the arguments of every clique, trigger-less ones too, which
  is every argument span scored > 0 (each node of a graph lies in some maximal clique):
  that is "argument_reference", reported when the caller gives those spans.
- official: case-insensitive character F1, as the LIC2020/DuEE task defines it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from gplinker.data.reader import read_scored
from gplinker.schema import TRIGGER, Event, EventRecord, Schema

Events = Mapping[str, Sequence[Event | EventRecord]]


@dataclass(frozen=True, slots=True)
class PRF:
    precision: float
    recall: float
    f1: float
    n_pred: int
    n_gold: int


def event_f1(pred: Events, gold: Events) -> PRF:
    """An event is (id, event_type, its sorted elements incl. the trigger, repeats kept)."""

    def items(events: Events) -> set:
        return {(i, ev.event_type, ev.elements) for i, ev in _records(events)}

    return exact_prf(items(pred), items(gold))


def argument_f1(pred: Events, gold: Events) -> PRF:
    """(id, event_type, role, text, start) of every non-trigger argument; exact match."""

    def items(events: Events) -> set:
        return {
            (i, ev.event_type, role, text, start)
            for i, ev in _records(events)
            for role, text, start in ev.elements
            if role != TRIGGER
        }

    return exact_prf(items(pred), items(gold))


def trigger_f1(pred: Events, gold: Events) -> PRF:
    """(id, event_type, text, start) of every trigger; exact match."""

    def items(events: Events) -> set:
        return {
            (i, ev.event_type, text, start)
            for i, ev in _records(events)
            for role, text, start in ev.elements
            if role == TRIGGER
        }

    return exact_prf(items(pred), items(gold))


def official_f1(pred: Events, gold: Events) -> PRF:
    """The LIC2020 / DuEE leaderboard metric, as defined in SPEC §8.

    Per sentence, predicted and gold arguments are deduplicated as (event_type, role,
    lower-cased text); triggers and character offsets play no part, and case does not
    count ("不区分大小写"). Each predicted argument scores the best character-level F1
    against the gold arguments of the same event type and role (0 when there are none);
    P = Σscore / #pred, R = Σscore / #gold, F1 = 2PR / (P + R).
    """
    pred_by_id, gold_by_id = _by_id(pred), _by_id(gold)
    total, n_pred, n_gold = 0.0, 0, 0
    for i in sorted(pred_by_id.keys() | gold_by_id.keys()):  # sorted: same sums, same bits
        pred_args = _loose_arguments(pred_by_id.get(i, ()))
        gold_args = _loose_arguments(gold_by_id.get(i, ()))
        n_pred, n_gold = n_pred + len(pred_args), n_gold + len(gold_args)
        for event_type, role, text in sorted(pred_args):
            total += max(
                (
                    _char_f1(text, g_text)
                    for g_type, g_role, g_text in gold_args
                    if (g_type, g_role) == (event_type, role)
                ),
                default=0.0,
            )
    precision = total / n_pred if n_pred else 0.0
    recall = total / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return PRF(precision, recall, f1, n_pred, n_gold)


def evaluate(
    pred: Events, gold: Events, *, clique_arguments: Events | None = None
) -> dict[str, PRF]:
    """Every metric the predictions allow: "official" always; "event", "argument" and
    "trigger" when they carry what those match on (`unscored` says why not); with
    `clique_arguments` (per id, the argument spans of every clique) "argument_reference"."""
    skipped = unscored(pred)
    results = {
        "event": event_f1,
        "argument": argument_f1,
        "trigger": trigger_f1,
        "official": official_f1,
    }
    out = {name: fn(pred, gold) for name, fn in results.items() if name not in skipped}
    if clique_arguments is not None:
        out["argument_reference"] = argument_f1(clique_arguments, gold)
    return out


def unscored(pred: Events) -> dict[str, str]:
    """The exact-match metrics the predictions cannot be scored on, with the reason:
    argument F1 needs every argument's start index, trigger F1 every event's trigger with
    its start, event F1 both (a DuEE submission has neither; the official metric needs
    neither)."""
    records = [ev for _, ev in _records(pred)]
    no_start = any(s is None for ev in records for r, _, s in ev.elements if r != TRIGGER)
    triggers = [[s for r, _, s in ev.elements if r == TRIGGER] for ev in records]
    no_trigger = any(not t or None in t for t in triggers)
    why = {}
    if no_start:
        why["argument"] = "some arguments have no argument_start_index"
    if no_trigger:
        why["trigger"] = "some events have no trigger or trigger_start_index"
    if no_start or no_trigger:
        why["event"] = "; ".join(why.values())
    return why


def evaluate_files(gold: Path, pred: Path, schema: Schema | None = None) -> dict[str, PRF]:
    """evaluate() on two JSONL files (a prediction may be a DuEE submission, without
    triggers or offsets); raises InputError on a bad line."""
    return evaluate(read_scored_file(pred, schema), read_scored_file(gold, schema))


def read_scored_file(
    path: Path, schema: Schema | None = None
) -> dict[str, tuple[EventRecord, ...]]:
    """A file's events for scoring, by id (`gplinker.data.reader.read_scored`)."""
    return {line.id: line.events for line in read_scored(path, schema)}


def _records(events: Events) -> Iterable[tuple[str, EventRecord]]:
    for i, evs in events.items():
        for ev in evs:
            yield i, ev if isinstance(ev, EventRecord) else EventRecord.from_event(ev)


def _by_id(events: Events) -> dict[str, list[EventRecord]]:
    out: dict[str, list[EventRecord]] = {}
    for i, ev in _records(events):
        out.setdefault(i, []).append(ev)
    return out


def format_metrics(results: dict[str, PRF]) -> str:
    """An aligned text table: metric, P, R, F1, n_pred, n_gold (one row per metric)."""
    name_width = max([len("metric"), *map(len, results)])
    lines = [
        f"{'metric':<{name_width}}  {'P':>6}  {'R':>6}  {'F1':>6}  {'n_pred':>7}  {'n_gold':>7}"
    ]
    for name, m in results.items():
        lines.append(
            f"{name:<{name_width}}  {m.precision:>6.4f}  {m.recall:>6.4f}  {m.f1:>6.4f}"
            f"  {m.n_pred:>7d}  {m.n_gold:>7d}"
        )
    return "\n".join(lines)


def exact_prf(pred: set, gold: set) -> PRF:
    tp = len(pred & gold)
    return PRF(
        precision=tp / len(pred) if pred else 0.0,
        recall=tp / len(gold) if gold else 0.0,
        f1=2 * tp / (len(pred) + len(gold)) if pred or gold else 0.0,
        n_pred=len(pred),
        n_gold=len(gold),
    )


def _loose_arguments(events: Sequence[EventRecord]) -> set[tuple[str, str, str]]:
    return {
        (ev.event_type, role, text.lower())
        for ev in events
        for role, text, _ in ev.elements
        if role != TRIGGER
    }


def _char_f1(pred: str, gold: str) -> float:
    common = sum((Counter(pred) & Counter(gold)).values())
    if common == 0:
        return 0.0
    p, r = common / len(pred), common / len(gold)
    return 2 * p * r / (p + r)
