"""The four metrics on perturbed copies of gold, against figures worked out by hand, and
the ways they follow the official definition and the reference (issue 12, part 3):
case-insensitive official F1, DuEE submissions (no triggers, no offsets), an event that
lists an argument twice counted as a miss, and the reference's argument F1 over every
clique."""

from __future__ import annotations

import json

import pytest
from test_decoding import SCHEMA as DECODE_SCHEMA
from test_decoding import Scores
from typer.testing import CliRunner

from gplinker.cli import app
from gplinker.decoding import decode_sentences
from gplinker.metrics import PRF, evaluate, evaluate_files
from gplinker.schema import TRIGGER, EventRecord

LAYOFF, DEAL = "组织关系-裁员", "财经/交易-出售/收购"
TEXTS = {"a": "Apple裁员4000人", "b": "苹果收购英特尔", "c": "雀巢和苹果各裁员100人"}


def rec(event_type: str, *elements: tuple) -> EventRecord:
    return EventRecord.of(event_type, elements)


E1 = rec(LAYOFF, (TRIGGER, "裁员", 5), ("裁员方", "Apple", 0), ("裁员人数", "4000人", 7))
E2 = rec(DEAL, (TRIGGER, "收购", 2), ("收购方", "苹果", 0), ("出售方", "英特尔", 4))
E3 = rec(LAYOFF, (TRIGGER, "裁员", 6), ("裁员方", "雀巢", 0), ("裁员人数", "100人", 8))
E4 = rec(LAYOFF, (TRIGGER, "裁员", 6), ("裁员方", "苹果", 3), ("裁员人数", "100人", 8))
GOLD = {"a": [E1], "b": [E2], "c": [E3, E4]}
# gold: 4 events; 7 arguments (100人@8 is shared in c); 3 triggers (c's is shared);
# 7 official arguments (type, role, lower-cased text)


def with_element(event: EventRecord, old: tuple, new: tuple | None, *, twice: bool = False):
    elements = [e for e in event.elements if e != old]
    if new is not None:
        elements.append(new)
    if twice:
        elements.append(old)
        elements.append(old)
    return EventRecord.of(event.event_type, elements)


def f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def prf(p: float, r: float, n_pred: int, n_gold: int) -> PRF:
    return PRF(pytest.approx(p), pytest.approx(r), pytest.approx(f1(p, r)), n_pred, n_gold)


APPLE, FOUR_K = ("裁员方", "Apple", 0), ("裁员人数", "4000人", 7)
INTEL = ("出售方", "英特尔", 4)
CASES = {
    "identity": (
        GOLD,
        {"event": (1, 1, 4, 4), "argument": (1, 1, 7, 7), "trigger": (1, 1, 3, 3)},
        (1, 1, 7, 7),
    ),
    # E4 dropped: 3 of 4 events, 6 of 7 arguments (苹果@3 gone), triggers all there
    "dropped event": (
        {"a": [E1], "b": [E2], "c": [E3]},
        {"event": (1, 3 / 4, 3, 4), "argument": (1, 6 / 7, 6, 7), "trigger": (1, 1, 3, 3)},
        (1, 6 / 7, 6, 7),
    ),
    # 英特尔 as 收购方: E2 missed, that argument wrong; official: 英特尔 vs 苹果 shares nothing
    "changed role": (
        {"a": [E1], "b": [with_element(E2, INTEL, ("收购方", "英特尔", 4))], "c": [E3, E4]},
        {"event": (3 / 4, 3 / 4, 4, 4), "argument": (6 / 7, 6 / 7, 7, 7), "trigger": (1, 1, 3, 3)},
        (6 / 7, 6 / 7, 7, 7),
    ),
    # 4000人 at 8 instead of 7: exact matches miss it, the official metric ignores offsets
    "shifted offset": (
        {"a": [with_element(E1, FOUR_K, ("裁员人数", "4000人", 8))], "b": [E2], "c": [E3, E4]},
        {"event": (3 / 4, 3 / 4, 4, 4), "argument": (6 / 7, 6 / 7, 7, 7), "trigger": (1, 1, 3, 3)},
        (1, 1, 7, 7),
    ),
    # 英特 for 英特尔: char P 1, R 2/3, F1 0.8 -> official 6.8 / 7
    "truncated argument": (
        {"a": [E1], "b": [with_element(E2, INTEL, ("出售方", "英特", 4))], "c": [E3, E4]},
        {"event": (3 / 4, 3 / 4, 4, 4), "argument": (6 / 7, 6 / 7, 7, 7), "trigger": (1, 1, 3, 3)},
        (6.8 / 7, 6.8 / 7, 7, 7),
    ),
    # an event predicted twice counts once everywhere
    "duplicated event": (
        {"a": [E1, E1], "b": [E2], "c": [E3, E4]},
        {"event": (1, 1, 4, 4), "argument": (1, 1, 7, 7), "trigger": (1, 1, 3, 3)},
        (1, 1, 7, 7),
    ),
    # Apple listed twice inside E1: that event is a miss (as in the reference); arguments,
    # triggers and the official metric deduplicate, so they are untouched
    "duplicated argument": (
        {"a": [with_element(E1, APPLE, None, twice=True)], "b": [E2], "c": [E3, E4]},
        {"event": (3 / 4, 3 / 4, 4, 4), "argument": (1, 1, 7, 7), "trigger": (1, 1, 3, 3)},
        (1, 1, 7, 7),
    ),
    # apple for Apple: a different string for exact match, the same for the official metric
    # (case-insensitive; it used to score 0.8)
    "case change": (
        {"a": [with_element(E1, APPLE, ("裁员方", "apple", 0))], "b": [E2], "c": [E3, E4]},
        {"event": (3 / 4, 3 / 4, 4, 4), "argument": (6 / 7, 6 / 7, 7, 7), "trigger": (1, 1, 3, 3)},
        (1, 1, 7, 7),
    ),
    # E4 dropped, 英特 for 英特尔, Apple twice in E1: events: only E3 of 3 predicted, of 4;
    # arguments 5 of 6 predicted, of 7; official 1+1 + 1+0.8 + 1+1 = 5.8 over 6 and 7
    "a mix": (
        {
            "a": [with_element(E1, APPLE, None, twice=True)],
            "b": [with_element(E2, INTEL, ("出售方", "英特", 4))],
            "c": [E3],
        },
        {"event": (1 / 3, 1 / 4, 3, 4), "argument": (5 / 6, 5 / 7, 6, 7), "trigger": (1, 1, 3, 3)},
        (5.8 / 6, 5.8 / 7, 6, 7),
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_metrics_on_a_perturbed_copy_of_gold(case):
    pred, exact, official = CASES[case]
    got = evaluate(pred, GOLD)
    assert got["official"] == prf(*official)
    for name, want in exact.items():
        assert got[name] == prf(*want), name


def submission_line(i: str, events: list[EventRecord], *, offsets: bool, text: bool) -> dict:
    """A prediction line as written by predict (offsets) or by the reference's
    predict_to_file (no trigger, no offsets, no text)."""
    out = []
    for ev in events:
        item: dict = {"event_type": ev.event_type, "arguments": []}
        for role, span, start in ev.elements:
            if role == TRIGGER:
                if offsets:
                    item.update(trigger=span, trigger_start_index=start)
                continue
            arg = {"role": role, "argument": span}
            if offsets:
                arg["argument_start_index"] = start
            item["arguments"].append(arg)
        out.append(item)
    line: dict = {"id": i, "event_list": out}
    if text:
        line["text"] = TEXTS[i]
    return line


def write(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def gold_and_mix(tmp_path, *, offsets: bool, text: bool):
    """gold.json (with offsets) and pred.json holding the "a mix" case as told."""
    gold = [submission_line(i, GOLD[i], offsets=True, text=True) for i in GOLD]
    mix = CASES["a mix"][0]
    pred = [submission_line(i, mix[i], offsets=offsets, text=text) for i in mix]
    return write(tmp_path / "gold.json", gold), write(tmp_path / "pred.json", pred)


@pytest.mark.parametrize("text", [True, False])
def test_a_duee_submission_is_scored_on_the_official_metric_and_says_what_it_left_out(
    tmp_path, text
):
    gold, pred = gold_and_mix(tmp_path, offsets=False, text=text)
    results = evaluate_files(gold, pred)
    assert set(results) == {"official"}
    assert results["official"] == prf(5.8 / 6, 5.8 / 7, 6, 7)

    out = CliRunner().invoke(app, ["evaluate", "--gold", str(gold), "--pred", str(pred)])
    assert out.exit_code == 0, out.output
    assert "official" in out.output
    for name in ("event", "argument", "trigger"):
        assert f"not scored: {name} F1" in out.output
    js = CliRunner().invoke(app, ["evaluate", "--gold", str(gold), "--pred", str(pred), "--json"])
    scores = json.loads(js.output)
    assert set(scores) == {"official", "unscored"}
    assert set(scores["unscored"]) == {"event", "argument", "trigger"}


def test_a_prediction_file_with_offsets_gets_every_metric_and_keeps_a_repeated_argument(
    tmp_path,
):
    gold, pred = gold_and_mix(tmp_path, offsets=True, text=True)
    results = evaluate_files(gold, pred)
    _, exact, official = CASES["a mix"]
    assert results["official"] == prf(*official)
    for name, want in exact.items():
        assert results[name] == prf(*want), name


def test_a_submission_span_that_is_not_at_its_start_is_a_bad_line(tmp_path):
    gold = write(tmp_path / "gold.json", [submission_line("b", GOLD["b"], offsets=True, text=True)])
    line = submission_line("b", GOLD["b"], offsets=True, text=True)
    line["event_list"][0]["arguments"][0]["argument_start_index"] = 3
    pred = write(tmp_path / "pred.json", [line])
    out = CliRunner().invoke(app, ["evaluate", "--gold", str(gold), "--pred", str(pred)])
    assert out.exit_code == 2 and "pred.json:1" in out.output


def test_argument_reference_counts_the_arguments_of_trigger_less_cliques():
    """A 裁员方 span with no link to the trigger is its own trigger-less clique: our events
    drop it, the reference's argument F1 counts it."""
    s = Scores("雀巢和苹果各裁员100人")
    s.event(LAYOFF, (TRIGGER, "裁员"), ("裁员方", "雀巢"), ("裁员人数", "100人"))
    s.event(LAYOFF, ("裁员方", "苹果"))  # a span, no links
    [decoded] = decode_sentences(  # a batch of one
        s.argu[None], s.head[None, None], s.tail[None, None], [s.offsets], [s.text], DECODE_SCHEMA
    )
    gold = {"c": [E3, E4]}
    got = evaluate({"c": decoded.events}, gold, clique_arguments={"c": decoded.clique_arguments})
    # ours: 雀巢@0, 100人@8 of gold's 3; the reference's: 苹果@3 as well
    assert got["argument"] == prf(1, 2 / 3, 2, 3)
    assert got["argument_reference"] == prf(1, 1, 3, 3)
    assert got["event"] == prf(1, 1 / 2, 1, 2)
