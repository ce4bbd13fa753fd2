"""Event, argument and trigger F1 (GPLinker's, exact match) and the official LIC2020 metric
(SPEC §8). Predictions and gold are `Events`: example id -> that sentence's events."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from gplinker.data.reader import read_examples
from gplinker.schema import TRIGGER, Event, Schema

Events = Mapping[str, Sequence[Event]]


@dataclass(frozen=True, slots=True)
class PRF:
    precision: float
    recall: float
    f1: float
    n_pred: int
    n_gold: int


def event_f1(pred: Events, gold: Events) -> PRF:
    """An event is (id, event_type, all its (role, text, start) incl. the trigger); exact match."""

    def items(events: Events) -> set:
        return {
            (i, ev.event_type, frozenset((a.role, a.text, a.start) for a in ev.arguments))
            for i, evs in events.items()
            for ev in evs
        }

    return _exact(items(pred), items(gold))


def argument_f1(pred: Events, gold: Events) -> PRF:
    """(id, event_type, role, text, start) of every non-trigger argument; exact match."""

    def items(events: Events) -> set:
        return {
            (i, ev.event_type, a.role, a.text, a.start)
            for i, evs in events.items()
            for ev in evs
            for a in ev.arguments
            if a.role != TRIGGER
        }

    return _exact(items(pred), items(gold))


def trigger_f1(pred: Events, gold: Events) -> PRF:
    """(id, event_type, text, start) of every trigger; exact match."""

    def items(events: Events) -> set:
        return {
            (i, ev.event_type, a.text, a.start)
            for i, evs in events.items()
            for ev in evs
            for a in ev.arguments
            if a.role == TRIGGER
        }

    return _exact(items(pred), items(gold))


def official_f1(pred: Events, gold: Events) -> PRF:
    """The LIC2020 / DuEE leaderboard metric, as defined in SPEC §8.

    Per sentence, predicted and gold arguments are deduplicated as (event_type, role, text);
    triggers and character offsets play no part. Each predicted argument scores the best
    character-level F1 against the gold arguments of the same event type and role (0 when
    there are none); P = Σscore / #pred, R = Σscore / #gold, F1 = 2PR / (P + R).
    """
    total, n_pred, n_gold = 0.0, 0, 0
    for i in sorted(pred.keys() | gold.keys()):  # sorted: same sums, same float bits
        pred_args, gold_args = _loose_arguments(pred.get(i, ())), _loose_arguments(gold.get(i, ()))
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


def evaluate(pred: Events, gold: Events) -> dict[str, PRF]:
    """All four metrics, keyed "event", "argument", "trigger", "official"."""
    return {
        "event": event_f1(pred, gold),
        "argument": argument_f1(pred, gold),
        "trigger": trigger_f1(pred, gold),
        "official": official_f1(pred, gold),
    }


def evaluate_files(gold: Path, pred: Path, schema: Schema | None = None) -> dict[str, PRF]:
    """evaluate() on two DuEE JSONL files; raises InputError on a bad line."""
    gold_events = {ex.id: ex.events for ex in read_examples(gold, schema)}
    pred_events = {ex.id: ex.events for ex in read_examples(pred, schema)}
    return evaluate(pred_events, gold_events)


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


def _exact(pred: set, gold: set) -> PRF:
    tp = len(pred & gold)
    return PRF(
        precision=tp / len(pred) if pred else 0.0,
        recall=tp / len(gold) if gold else 0.0,
        f1=2 * tp / (len(pred) + len(gold)) if pred or gold else 0.0,
        n_pred=len(pred),
        n_gold=len(gold),
    )


def _loose_arguments(events: Sequence[Event]) -> set[tuple[str, str, str]]:
    return {
        (ev.event_type, a.role, a.text) for ev in events for a in ev.arguments if a.role != TRIGGER
    }


def _char_f1(pred: str, gold: str) -> float:
    common = sum((Counter(pred) & Counter(gold)).values())
    if common == 0:
        return 0.0
    p, r = common / len(pred), common / len(gold)
    return 2 * p * r / (p + r)
