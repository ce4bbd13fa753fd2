"""build_labels (SPEC §2) against label sets written out by hand, and DropReport counts."""

from __future__ import annotations

import pytest

from gplinker.data.alignment import encode
from gplinker.data.labels import DropReport, SparseLabels, build_labels
from gplinker.schema import TRIGGER, Argument, Event, Example

LAYOFF, DEAL = "组织关系-裁员", "财经/交易-出售/收购"
#        char: 0 1 2 3 4 5 6789 10 11 12 13 14 15 16 17
TEXT = "3月雀巢裁员4000人，雀巢收购腾讯"
#       token: [CLS]=0, 3=1 月=2 雀=3 巢=4 裁=5 员=6 4000=7 人=8 ，=9 雀=10 巢=11 收=12 购=13
#              腾=14 讯=15 [SEP]=16


def event(event_type: str, *args: tuple[str, str, int]) -> Event:
    return Event(event_type, frozenset(Argument(r, t, s) for r, t, s in args))


LAYOFF_EVENT = event(
    LAYOFF,
    (TRIGGER, "裁员", 4),
    ("裁员方", "雀巢", 2),
    ("裁员人数", "4000人", 6),
    ("时间", "3月", 0),
)
DEAL_EVENT = event(
    DEAL, (TRIGGER, "收购", 14), ("收购方", "雀巢", 12), ("出售方", "腾讯", 16), ("时间", "3月", 0)
)


@pytest.fixture
def enc(tiny_tokenizer):
    enc = encode(TEXT, tiny_tokenizer, 64)
    toks = tiny_tokenizer.convert_ids_to_tokens(enc.input_ids)
    assert toks[7] == "4000" and toks[14] == "腾" and len(enc) == 17  # the map above holds
    return enc


def test_label_ids_put_trigger_first_per_type(schema):
    assert [schema.label_id(LAYOFF, r) for r in (TRIGGER, "时间", "裁员方", "裁员人数")] == [
        0,
        1,
        2,
        3,
    ]
    assert schema.label_id(DEAL, TRIGGER) == 4
    assert [schema.label_id(DEAL, r) for r in ("时间", "出售方", "收购方")] == [5, 6, 9]


def test_two_events_sharing_an_argument_give_exact_hand_written_labels(schema, enc):
    ex = Example("x", TEXT, (LAYOFF_EVENT, DEAL_EVENT), "hand:1")
    labels, report = build_labels(ex, enc, schema)
    assert set(labels.argu) == {
        (0, 5, 6), (2, 3, 4), (3, 7, 8), (1, 1, 2),  # 裁员 event; 3月 as (1, 1, 2)
        (4, 12, 13), (9, 10, 11), (6, 14, 15), (5, 1, 2),  # 收购 event; 3月 again as (5, 1, 2)
    }  # fmt: skip
    # heads of the 裁员 event {5, 3, 7, 1}, of the 收购 event {12, 10, 14, 1}: pairs within
    # each event only (never e.g. (5, 12) across events), min first.
    assert set(labels.head_link) == {
        (3, 5), (5, 7), (1, 5), (3, 7), (1, 3), (1, 7),
        (10, 12), (12, 14), (1, 12), (10, 14), (1, 10), (1, 14),
    }  # fmt: skip
    # tails {6, 4, 8, 2} and {13, 11, 15, 2}
    assert set(labels.tail_link) == {
        (4, 6), (6, 8), (2, 6), (4, 8), (2, 4), (2, 8),
        (11, 13), (13, 15), (2, 13), (11, 15), (2, 11), (2, 15),
    }  # fmt: skip
    assert len(labels.argu) == 8 and len(labels.head_link) == 12 and len(labels.tail_link) == 12
    assert (report.spans, report.off_boundary, report.truncated, report.dropped) == (8, 0, 0, 0)
    assert report.examples == []


def test_labels_are_sorted_tuples_and_deterministic(schema, enc):
    ex = Example("x", TEXT, (DEAL_EVENT, LAYOFF_EVENT))
    labels, _ = build_labels(ex, enc, schema)
    again, _ = build_labels(Example("x", TEXT, (LAYOFF_EVENT, DEAL_EVENT)), enc, schema)
    assert isinstance(labels, SparseLabels) and labels == again
    assert list(labels.argu) == sorted(labels.argu)
    assert list(labels.head_link) == sorted(labels.head_link)


def test_off_boundary_span_inside_multichar_token_4000_is_counted(schema, enc):
    ev = event(LAYOFF, (TRIGGER, "裁员", 4), ("裁员人数", "00", 8))
    labels, report = build_labels(Example("x", TEXT, (ev,), "hand:2"), enc, schema)
    assert labels.argu == ((0, 5, 6),)
    assert labels.head_link == () and labels.tail_link == ()  # the dropped span links nothing
    assert (report.spans, report.off_boundary, report.truncated) == (2, 1, 0)
    assert (
        len(report.examples) == 1
        and "hand:2" in report.examples[0]
        and "'00'" in report.examples[0]
    )


def test_span_beyond_max_length_is_counted_truncated_not_off_boundary(schema, tiny_tokenizer):
    enc = encode(TEXT, tiny_tokenizer, 12)  # keeps tokens 1..10: "3月雀巢裁员4000人，雀"
    assert enc.n_cut == 5
    labels, report = build_labels(Example("x", TEXT, (DEAL_EVENT,), "hand:3"), enc, schema)
    # only 时间 "3月" survives; 收购, 雀巢@12 (half cut), 腾讯 are beyond the cut
    assert labels.argu == ((5, 1, 2),)
    assert labels.head_link == ()
    assert (report.spans, report.off_boundary, report.truncated) == (4, 0, 3)
    assert report.dropped == 3


def test_gold_argument_with_leading_space_is_counted_off_boundary_not_crash(schema, tiny_tokenizer):
    text = "据悉 雀巢裁员"
    enc = encode(text, tiny_tokenizer, 64)
    ev = event(LAYOFF, (TRIGGER, "裁员", 5), ("裁员方", " 雀巢", 2))
    labels, report = build_labels(Example("x", text, (ev,)), enc, schema)
    assert labels.argu == ((0, 5, 6),)  # [CLS] 据 悉 雀 巢 裁 员: the space is no token
    assert (report.off_boundary, report.truncated) == (1, 0)


def test_example_without_events_gives_empty_labels(schema, enc):
    labels, report = build_labels(Example("x", TEXT), enc, schema)
    assert labels == SparseLabels((), (), ())
    assert report == DropReport()


def test_drop_report_add_accumulates_and_keeps_five_examples():
    total = DropReport()
    for n in range(4):
        total.add(DropReport(spans=3, off_boundary=1, truncated=n % 2, examples=[f"a{n}", f"b{n}"]))
    assert (total.spans, total.off_boundary, total.truncated, total.dropped) == (12, 4, 2, 6)
    assert total.examples == ["a0", "b0", "a1", "b1", "a2"]
