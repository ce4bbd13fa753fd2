"""One long line must not stall prediction (issue 12, part 4): merging the events of a
text's windows used to compare every event with every other (a 10,000-character line of
`裁员` repeated took 308 s in `gplinker predict`). The work is counted here, not timed:
comparisons per event stay flat as the text grows, and the result is the one the plain
quadratic merge gives. scripts/bench_long_text.py times it."""

from __future__ import annotations

import logging

import pytest

from gplinker import decoding
from gplinker.data.alignment import encode_windows
from gplinker.decoding import merge_windows
from gplinker.schema import TRIGGER, Argument, Event

LAYOFF = "组织关系-裁员"


def quadratic_merge(events, windows):
    """The merge as it was: every part against every merged event, then every event
    against every other for the subset drop. The oracle for the indexed one."""
    if len(windows) == 1:
        return list(events[0])
    merged = []
    for window, found in zip(windows, events, strict=True):
        for ev in found:
            for k, (other, seen_by) in enumerate(merged):
                if decoding._same_event(other, seen_by, ev, window):
                    merged[k] = (
                        Event(ev.event_type, other.arguments | ev.arguments),
                        [*seen_by, window],
                    )
                    break
            else:
                merged.append((ev, [window]))
    unique = {ev for ev, _ in merged}
    kept = [
        e
        for e in unique
        if not any(o.event_type == e.event_type and e.arguments < o.arguments for o in unique)
    ]
    return sorted(kept, key=lambda ev: (ev.event_type, sorted(ev.arguments)))


def repeated_text_events(text: str, windows):
    """What a model finds in `裁员` repeated: in each window, one event per trigger it sees
    whole, with the next `裁员` as its 裁员方 when the window sees that too, and the
    trigger alone (a part: a subset of the full event) where it does not."""
    found = []
    for w in windows:
        events = []
        first = min(s for s, e in w.offsets if e > s)
        for start in range(first + first % 2, w.covered_chars - 1, 2):  # the window's text
            if not w.sees(start, start + 2):
                continue
            trigger = Argument(TRIGGER, "裁员", start)
            args = {trigger}
            if start + 4 <= len(text) and w.sees(start + 2, start + 4):
                args.add(Argument("裁员方", "裁员", start + 2))
            events.append(Event(LAYOFF, frozenset(args)))
        found.append(events)
    return found


@pytest.fixture
def count_comparisons(monkeypatch):
    calls = {"same_event": 0}
    original = decoding._same_event

    def counted(*args):
        calls["same_event"] += 1
        return original(*args)

    monkeypatch.setattr(decoding, "_same_event", counted)
    return calls


@pytest.mark.parametrize("chars", [200, 2_000])
def test_the_indexed_merge_gives_what_the_quadratic_merge_gives(chars, tiny_tokenizer):
    text = "裁员" * (chars // 2)
    [windows] = encode_windows([text], tiny_tokenizer, 40, 12)
    found = repeated_text_events(text, windows)
    assert len(windows) > 5 and any(len(e) > 1 for e in found)
    assert merge_windows(found, windows) == quadratic_merge(found, windows)


def test_merge_work_per_event_stays_flat_from_1k_to_100k_characters(
    count_comparisons, tiny_tokenizer
):
    per_event = {}
    for chars in (1_000, 10_000, 100_000):
        text = "裁员" * (chars // 2)
        [windows] = encode_windows([text], tiny_tokenizer, 128, 32)
        found = repeated_text_events(text, windows)
        count_comparisons["same_event"] = 0
        merged = merge_windows(found, windows)
        parts = sum(map(len, found))
        per_event[chars] = count_comparisons["same_event"] / parts
        assert len(merged) == min(chars // 2, decoding.MAX_EVENTS_PER_TEXT)  # one a trigger
    # the quadratic merge made about (parts / 2) comparisons per part: 10^4 at 100k chars
    assert max(per_event.values()) <= 2.0, per_event


def test_a_text_yields_at_most_max_events_in_text_order_and_says_so(tiny_tokenizer, caplog):
    text = "裁员" * 400
    [windows] = encode_windows([text], tiny_tokenizer, 64, 16)
    found = repeated_text_events(text, windows)
    with caplog.at_level(logging.WARNING, logger="gplinker.decoding"):
        merged = merge_windows(found, windows, max_events=50)
    assert len(merged) == 50
    assert sorted(ev.trigger.start for ev in merged) == list(range(0, 100, 2))
    assert "kept the first 50" in caplog.text
