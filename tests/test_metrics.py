"""Metrics (SPEC §8) on hand-made predictions whose answers are worked out in the comments."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gplinker.errors import InputError
from gplinker.metrics import (
    PRF,
    argument_f1,
    evaluate,
    evaluate_files,
    event_f1,
    format_metrics,
    official_f1,
    trigger_f1,
)
from gplinker.schema import TRIGGER, Argument, Event, Schema

LAYOFF, DEAL = "组织关系-裁员", "财经/交易-出售/收购"
SCHEMA = Schema({LAYOFF: ["裁员方", "裁员人数"], DEAL: ["出售方", "收购方"]})


def ev(event_type: str, *args: tuple[str, str, int]) -> Event:
    return Event(event_type, frozenset(Argument(*a) for a in args))


def prf(precision: float, recall: float, f1: float, n_pred: int, n_gold: int) -> PRF:
    return PRF(pytest.approx(precision), pytest.approx(recall), pytest.approx(f1), n_pred, n_gold)


TEXTS = {"a": "雀巢裁员4000人", "b": "苹果收购英特尔", "c": "雀巢和苹果各裁员100人"}
E1 = ev(LAYOFF, (TRIGGER, "裁员", 2), ("裁员方", "雀巢", 0), ("裁员人数", "4000人", 4))
E2 = ev(DEAL, (TRIGGER, "收购", 2), ("收购方", "苹果", 0), ("出售方", "英特尔", 4))
E3 = ev(LAYOFF, (TRIGGER, "裁员", 6), ("裁员方", "雀巢", 0), ("裁员人数", "100人", 8))
E4 = ev(LAYOFF, (TRIGGER, "裁员", 6), ("裁员方", "苹果", 3), ("裁员人数", "100人", 8))
GOLD = {"a": [E1], "b": [E2], "c": [E3, E4]}
P2 = ev(DEAL, (TRIGGER, "收购", 2), ("收购方", "苹果", 0), ("出售方", "英特", 4))  # cut short
P4 = ev(LAYOFF, (TRIGGER, "裁员", 0), ("裁员方", "谷歌", 2))  # an id gold doesn't have
PRED = {"a": [E1], "b": [P2], "c": [E3, E3], "x": [P4]}  # E3 twice, E4 missed


def test_all_four_metrics_on_a_mixed_batch_with_a_duplicate_a_miss_and_an_unknown_id():
    # event: pred {E1, P2, E3, P4} (E3 once), gold {E1, E2, E3, E4}; TP = E1, E3 -> 2/4, 2/4
    assert event_f1(PRED, GOLD) == prf(0.5, 0.5, 0.5, 4, 4)
    # argument: pred a:雀巢,4000人 b:苹果,英特 c:雀巢,100人 x:谷歌 = 7
    # gold a:雀巢,4000人 b:苹果,英特尔 c:雀巢,苹果,100人 (100人@8 shared, counted once) = 7
    # TP = 2 + 1 + 2 = 5
    assert argument_f1(PRED, GOLD) == prf(5 / 7, 5 / 7, 5 / 7, 7, 7)
    # trigger: pred a:裁员@2 b:收购@2 c:裁员@6 x:裁员@0 = 4; gold a, b, c (shared) = 3; TP = 3
    # F1 = 2*3 / (4 + 3) = 6/7
    assert trigger_f1(PRED, GOLD) == prf(3 / 4, 1.0, 6 / 7, 4, 3)
    # official: a 1 + 1; b 苹果 1 + 英特 vs 英特尔 (p 1, r 2/3, f 4/5); c 雀巢 1 + 100人 1;
    # x 谷歌 0 -> 5.8 over 7 pred and 7 gold
    assert official_f1(PRED, GOLD) == prf(5.8 / 7, 5.8 / 7, 5.8 / 7, 7, 7)
    assert evaluate(PRED, GOLD) == {
        "event": event_f1(PRED, GOLD),
        "argument": argument_f1(PRED, GOLD),
        "trigger": trigger_f1(PRED, GOLD),
        "official": official_f1(PRED, GOLD),
    }


def test_duplicate_predictions_count_once_in_every_metric():
    once = {"a": [E1], "b": [P2]}
    twice = {"a": [E1, E1], "b": [P2, P2, P2]}
    assert evaluate(twice, GOLD) == evaluate(once, GOLD)
    assert evaluate(twice, GOLD)["event"].n_pred == 2


def test_an_id_missing_from_pred_counts_as_an_empty_prediction():
    gold = {"a": [E1], "b": [E2]}
    # event: pred {E1}, gold {E1, E2}: P 1, R 1/2, F1 2/3; official: 2 args of 4 scored 1
    results = evaluate({"a": [E1]}, gold)
    assert results["event"] == prf(1.0, 0.5, 2 / 3, 1, 2)
    assert results["official"] == prf(1.0, 0.5, 2 / 3, 2, 4)


def test_empty_pred_and_empty_gold_give_zeros_not_errors():
    zero = PRF(0.0, 0.0, 0.0, 0, 0)
    assert evaluate({}, {}) == dict.fromkeys(("event", "argument", "trigger", "official"), zero)
    assert evaluate({"a": []}, {"a": []})["official"] == zero
    no_pred = evaluate({}, GOLD)
    assert no_pred["event"] == PRF(0.0, 0.0, 0.0, 0, 4)
    assert no_pred["official"] == PRF(0.0, 0.0, 0.0, 0, 7)
    no_gold = evaluate(GOLD, {})
    assert no_gold["trigger"] == PRF(0.0, 0.0, 0.0, 3, 0)
    assert no_gold["argument"] == PRF(0.0, 0.0, 0.0, 7, 0)


def test_official_scores_partial_character_overlap():
    gold = {"a": [ev(LAYOFF, (TRIGGER, "裁员", 4), ("裁员方", "雀巢公司", 0))]}
    # '雀巢' vs '雀巢公司': 2 common, p = 1, r = 1/2, f = 2/3; offsets play no part
    pred = {"a": [ev(LAYOFF, (TRIGGER, "裁", 4), ("裁员方", "雀巢", 1))]}
    assert official_f1(pred, gold) == prf(2 / 3, 2 / 3, 2 / 3, 1, 1)
    assert argument_f1(pred, gold).f1 == 0.0


def test_official_counts_a_repeated_character_only_as_often_as_gold_has_it():
    gold = {"a": [ev(LAYOFF, (TRIGGER, "裁员", 0), ("裁员人数", "百", 2))]}
    # '百百' vs '百': common = min(2, 1) = 1, p = 1/2, r = 1, f = 2/3
    pred = {"a": [ev(LAYOFF, (TRIGGER, "裁员", 0), ("裁员人数", "百百", 2))]}
    assert official_f1(pred, gold).f1 == pytest.approx(2 / 3)


def test_official_role_or_type_mismatch_scores_zero():
    gold = {"b": [ev(DEAL, (TRIGGER, "收购", 2), ("出售方", "苹果", 0))]}
    wrong_role = {"b": [ev(DEAL, (TRIGGER, "收购", 2), ("收购方", "苹果", 0))]}
    wrong_type = {"b": [ev(LAYOFF, (TRIGGER, "收购", 2), ("出售方", "苹果", 0))]}
    assert official_f1(wrong_role, gold) == PRF(0.0, 0.0, 0.0, 1, 1)
    assert official_f1(wrong_type, gold) == PRF(0.0, 0.0, 0.0, 1, 1)


def test_official_takes_the_best_gold_match_and_ignores_triggers():
    # gold 雀巢公司 and 雀巢 for the same role: pred 雀巢 matches the second fully
    gold = {
        "a": [ev(LAYOFF, (TRIGGER, "裁员", 9), ("裁员方", "雀巢公司", 0), ("裁员方", "雀巢", 5))]
    }
    pred = {"a": [ev(LAYOFF, (TRIGGER, "别的", 1), ("裁员方", "雀巢", 0))]}
    # 1 pred scores 1; 2 gold -> P 1, R 1/2
    assert official_f1(pred, gold) == prf(1.0, 0.5, 2 / 3, 1, 2)


CHARS = st.text(alphabet="雀巢苹果裁员收购百人", min_size=1, max_size=4)
ROLES = {LAYOFF: ["裁员方", "裁员人数"], DEAL: ["出售方", "收购方"]}


@st.composite
def events(draw: st.DrawFn) -> Event:
    event_type = draw(st.sampled_from(sorted(ROLES)))
    args = [Argument(TRIGGER, draw(CHARS), draw(st.integers(0, 20)))]
    for _ in range(draw(st.integers(1, 3))):
        role = draw(st.sampled_from(ROLES[event_type]))
        args.append(Argument(role, draw(CHARS), draw(st.integers(0, 20))))
    return Event(event_type, frozenset(args))


@given(
    st.dictionaries(st.sampled_from("abcdef"), st.lists(events(), max_size=3), min_size=1).filter(
        lambda gold: any(gold.values())
    )
)
def test_gold_against_itself_scores_one_everywhere(gold):
    for name, m in evaluate(gold, gold).items():
        assert m.f1 == pytest.approx(1.0), name
        assert m.precision == pytest.approx(1.0) and m.recall == pytest.approx(1.0), name


def test_format_metrics_is_an_aligned_table_of_all_four():
    table = format_metrics(evaluate(PRED, GOLD))
    lines = table.splitlines()
    assert [line.split()[0] for line in lines] == [
        "metric",
        "event",
        "argument",
        "trigger",
        "official",
    ]
    assert lines[0].split()[1:] == ["P", "R", "F1", "n_pred", "n_gold"]
    assert lines[1].split()[1:] == ["0.5000", "0.5000", "0.5000", "4", "4"]
    assert len({len(line) for line in lines}) == 1


def _write(path, rows) -> None:
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )


def _row(example_id: str, events_: list[Event]) -> dict:
    return {
        "id": example_id,
        "text": TEXTS.get(example_id, "裁员谷歌"),
        "event_list": [e.to_json() for e in events_],
    }


def test_evaluate_files_reads_duee_jsonl_and_matches_evaluate(tmp_path):
    gold_path, pred_path = tmp_path / "gold.jsonl", tmp_path / "pred.jsonl"
    _write(gold_path, [_row(i, evs) for i, evs in GOLD.items()])
    _write(pred_path, [_row(i, evs) for i, evs in PRED.items()])
    assert evaluate_files(gold_path, pred_path, SCHEMA) == evaluate(PRED, GOLD)


def test_evaluate_files_with_a_schema_rejects_an_unknown_event_type(tmp_path):
    gold_path, pred_path = tmp_path / "gold.jsonl", tmp_path / "pred.jsonl"
    _write(gold_path, [_row("a", [E1])])
    _write(pred_path, [_row("a", [ev("人生-出生", (TRIGGER, "裁员", 2))])])
    assert evaluate_files(gold_path, pred_path)["event"].f1 == 0.0
    with pytest.raises(InputError, match=r"pred\.jsonl:1"):
        evaluate_files(gold_path, pred_path, SCHEMA)
