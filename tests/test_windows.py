"""Long texts: overlapping windows cover every token, labels reach every gold span, and the
events found per window are merged back on the full text."""

from __future__ import annotations

import random

import pytest
from conftest import sample_texts, task_texts, tiny_model_folder

from gplinker.data.alignment import encode_windows
from gplinker.data.labels import build_labels, build_window_labels
from gplinker.decoding import merge_windows
from gplinker.predict import GPLinker
from gplinker.schema import TRIGGER, Argument, Event, Example

LONG = "".join(sample_texts()[:12])  # a few hundred characters of sample sentences


@pytest.mark.parametrize("max_length,overlap", [(16, 0), (16, 5), (32, 8), (40, 37)])
def test_windows_cover_every_token_in_order_sharing_the_overlap(
    tiny_tokenizer, max_length, overlap
) -> None:
    [windows] = encode_windows([LONG], tiny_tokenizer, max_length, overlap)
    [[cut]] = encode_windows([LONG], tiny_tokenizer, max_length)  # no overlap: cut
    everything = tiny_tokenizer(LONG, add_special_tokens=False, return_offsets_mapping=True)
    n = len(everything["input_ids"])
    assert len(windows) > 1 and cut.n_cut == n - (max_length - 2)
    seen: dict[int, tuple[int, int]] = {}
    for k, w in enumerate(windows):
        assert len(w) <= max_length
        assert w.input_ids[0] == tiny_tokenizer.cls_token_id
        assert w.input_ids[-1] == tiny_tokenizer.sep_token_id
        for pos, (tok, off) in enumerate(zip(w.input_ids[1:-1], w.offsets[1:-1], strict=True)):
            i = w.skipped + pos  # the token's index in the whole text
            assert tok == everything["input_ids"][i]
            assert off == tuple(everything["offset_mapping"][i])
            seen[i] = off
        assert w.skipped + len(w) - 2 + w.n_cut == n
        if k:
            prev = windows[k - 1]
            shared = prev.skipped + len(prev) - 2 - w.skipped
            assert shared >= overlap and w.skipped > prev.skipped
    assert sorted(seen) == list(range(n))  # every token, none lost
    assert windows[-1].n_cut == 0 and windows[0].skipped == 0


def test_a_short_text_is_one_window_and_a_bad_overlap_is_refused(tiny_tokenizer) -> None:
    [windows] = encode_windows(["雀巢裁员"], tiny_tokenizer, 16, 4)
    assert len(windows) == 1 and windows[0].skipped == windows[0].n_cut == 0
    with pytest.raises(ValueError, match="overlap"):
        encode_windows([LONG], tiny_tokenizer, 16, 14)


def event_at(text: str, event_type: str, pieces: list[tuple[str, str]]) -> Event:
    """An event whose arguments are the first occurrences of the given strings."""
    return Event(event_type, frozenset(Argument(r, t, text.index(t)) for r, t in pieces))


def test_window_labels_reach_spans_that_cutting_loses(tiny_tokenizer, schema) -> None:
    text = "某" * 70 + "雀巢裁员4000人" + "某" * 10
    ev = event_at(
        text, "组织关系-裁员", [(TRIGGER, "裁员"), ("裁员方", "雀巢"), ("裁员人数", "4000人")]
    )
    ex = Example("x", text, (ev,))
    [[cut]] = encode_windows([text], tiny_tokenizer, 32)
    [windows] = encode_windows([text], tiny_tokenizer, 32, 8)
    _, cut_report = build_labels(ex, cut, schema)
    labels, report = build_window_labels(ex, windows, schema)
    assert cut_report.truncated == 3 and report.truncated == report.off_boundary == 0
    # every span is labelled in a window that sees all three, with all their links
    full = [y for y in labels if len(y.argu) == 3]
    assert full and all(len(y.head_link) == len(y.tail_link) == 3 for y in full)
    for y, w in zip(labels, windows, strict=True):
        for label, h, t in y.argu:
            start, end = w.offsets[h][0], w.offsets[t][1]
            role = schema.labels[label][1]
            assert Argument(role, text[start:end], start) in ev.arguments


def test_links_join_only_spans_that_share_a_window(tiny_tokenizer, schema) -> None:
    # the trigger and the far argument never share a 16-token window
    text = "雀巢裁员" + "某" * 30 + "4000人"
    ev = event_at(
        text, "组织关系-裁员", [(TRIGGER, "裁员"), ("裁员方", "雀巢"), ("裁员人数", "4000人")]
    )
    [windows] = encode_windows([text], tiny_tokenizer, 16, 4)
    labels, report = build_window_labels(Example("x", text, (ev,)), windows, schema)
    assert report.dropped == 0
    assert sum(len(y.argu) for y in labels) == 3  # each span once: no window repeats them
    assert sum(len(y.head_link) for y in labels) == 1  # only 雀巢-裁员 share a window


class _Window:
    """Stands in for an Encoded window that sees chars [lo, hi)."""

    def __init__(self, lo: int, hi: int):
        self.lo, self.hi = lo, hi

    def sees(self, start: int, end: int) -> bool:
        return self.lo <= start and end <= self.hi


def arg(role: str, text: str, start: int) -> Argument:
    return Argument(role, text, start)


TRIG = arg(TRIGGER, "裁员", 50)
WHO, HOW_MANY, WHEN = (
    arg("裁员方", "雀巢", 20),
    arg("裁员人数", "4000人", 90),
    arg("时间", "3月", 55),
)


def test_an_event_cut_by_a_window_edge_is_merged_whole() -> None:
    windows = [_Window(0, 70), _Window(40, 120)]  # overlap [40, 70) holds the trigger, WHEN
    left = Event("组织关系-裁员", frozenset({TRIG, WHO, WHEN}))
    right = Event("组织关系-裁员", frozenset({TRIG, WHEN, HOW_MANY}))
    merged = merge_windows([[left], [right]], windows)
    assert merged == [Event("组织关系-裁员", frozenset({TRIG, WHO, WHEN, HOW_MANY}))]


def test_windows_that_disagree_on_the_overlap_keep_two_events() -> None:
    windows = [_Window(0, 70), _Window(40, 120)]
    left = Event("组织关系-裁员", frozenset({TRIG, WHO, WHEN}))  # WHEN is in the overlap
    right = Event("组织关系-裁员", frozenset({TRIG, HOW_MANY}))  # ... but right lacks it
    merged = merge_windows([[left], [right]], windows)
    assert set(merged) == {left, right} and len(merged) == 2


def test_an_event_seen_whole_by_two_windows_is_kept_once() -> None:
    windows = [_Window(0, 100), _Window(10, 130)]
    ev = Event("组织关系-裁员", frozenset({TRIG, WHO, HOW_MANY}))
    other = Event("组织关系-裁员", frozenset({arg(TRIGGER, "裁员", 110), WHO}))
    assert merge_windows([[ev], [ev, other]], windows) == sorted(
        [ev, other], key=lambda e: (e.event_type, sorted(e.arguments))
    )
    assert merge_windows([[ev, other]], windows[:1]) == [ev, other]  # one window: as decoded


def _spans(record: object) -> list[tuple[str, int]]:
    """(text, start) of the spans of any task's record."""
    if hasattr(record, "arguments"):  # an Event
        return [(a.text, a.start) for a in record.arguments]
    if hasattr(record, "subject"):  # a Triple
        return [
            (record.subject.text, record.subject.start),
            (record.object.text, record.object.start),
        ]
    return [(record.text, record.start)]  # an Entity


@pytest.mark.parametrize("task", ["event", "entity", "relation"])
def test_extract_on_a_long_text_returns_spans_of_the_whole_text(tmp_path, task: str) -> None:
    """Any task reads a long text through its windows: spans past the first window, each
    at its offset in the whole text; cut at max_length instead, none past it."""
    folder = tiny_model_folder(task, tmp_path / "m", shift=None if task == "relation" else 0.0)
    model = GPLinker.from_pretrained(folder, device="cpu")
    text = "".join(random.Random(0).sample(task_texts(task), 8))
    model.max_length, model.window_overlap = 24, 6
    [found] = model.extract([text])
    model.window_overlap = None
    [cut] = model.extract([text])
    [[first]] = encode_windows([text], model.tokenizer, 24)
    spans = [span for record in found for span in _spans(record)]
    # an untrained model marks spans everywhere: windows reach past the first window
    assert max(start for _, start in spans) >= first.covered_chars
    assert all(start < first.covered_chars for r in cut for _, start in _spans(r))
    assert all(text[start : start + len(span)] == span for span, start in spans)
