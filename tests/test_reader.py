"""data/reader.py: every bad line names file:line; round trips; the atomic writer; sample data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gplinker.data.reader import example_to_json, read_examples, write_jsonl
from gplinker.errors import InputError
from gplinker.schema import TRIGGER, Argument, Event, Example, Schema

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"
SHARED_DUEE = ROOT.parent / "shared" / "data" / "duee"

TEXT = "雀巢裁员4000人：时代抛弃你时，连招呼都不会打！"
GOOD = {
    "id": "a1",
    "text": TEXT,
    "event_list": [
        {
            "event_type": "组织关系-裁员",
            "trigger": "裁员",
            "trigger_start_index": 2,
            "arguments": [
                {"role": "裁员方", "argument": "雀巢", "argument_start_index": 0},
                {"role": "裁员人数", "argument": "4000人", "argument_start_index": 4},
            ],
        }
    ],
}
SCHEMA = Schema({"组织关系-裁员": ["时间", "裁员方", "裁员人数"]})


def line(**changes: object) -> str:
    row = json.loads(json.dumps(GOOD))
    for key, value in changes.items():
        row[key] = value
    return json.dumps(row, ensure_ascii=False)


def event(**changes: object) -> dict:
    ev = json.loads(json.dumps(GOOD["event_list"][0]))
    for key, value in changes.items():
        if value is None:
            del ev[key]
        else:
            ev[key] = value
    return ev


def argument(**changes: object) -> dict:
    arg = dict(GOOD["event_list"][0]["arguments"][0])
    for key, value in changes.items():
        if value is None:
            del arg[key]
        else:
            arg[key] = value
    return arg


def write_lines(path: Path, bad: str | bytes) -> Path:
    """A good line, a blank line, then the bad one: the bad line is line 3."""
    good = line(id="ok").encode()
    bad_bytes = bad if isinstance(bad, bytes) else bad.encode()
    path.write_bytes(good + b"\n\n" + bad_bytes + b"\n")
    return path


BAD_LINES = {
    "invalid_json": ('{"id": "x", "text": ', "invalid JSON"),
    "not_an_object": ("[1, 2]", "expected a JSON object, got a list"),
    "text_missing": (json.dumps({"id": "x"}), '"text" is missing'),
    "text_not_string": (line(text=5), '"text" should be a string, got a number (5)'),
    "id_not_string": (line(id=7), '"id" should be a string'),
    "event_list_not_list": (line(event_list={"a": 1}), '"event_list" should be a list'),
    "event_not_object": (line(event_list=["裁员"]), "event_list[0] should be an object"),
    "event_type_missing": (line(event_list=[event(event_type=None)]), '"event_type" is missing'),
    "trigger_missing": (line(event_list=[event(trigger=None)]), '"trigger" is missing'),
    "trigger_start_missing": (
        line(event_list=[event(trigger_start_index=None)]),
        '"trigger_start_index" is missing',
    ),
    "trigger_start_string": (
        line(event_list=[event(trigger_start_index="2")]),
        '"trigger_start_index" should be an integer',
    ),
    "trigger_start_bool": (
        line(event_list=[event(trigger_start_index=True)]),
        '"trigger_start_index" should be an integer, got a boolean',
    ),
    "trigger_mismatch": (
        line(event_list=[event(trigger_start_index=3)]),
        "\"trigger\" is '裁员' but text[3:5] is '员4'",
    ),
    "trigger_negative_start": (
        line(event_list=[event(trigger_start_index=-2)]),
        "\"trigger\" is '裁员' but text[-2:0] is ''",
    ),
    "trigger_empty": (line(event_list=[event(trigger="")]), '"trigger" is empty'),
    "arguments_not_list": (
        line(event_list=[event(arguments="雀巢")]),
        '"arguments" should be a list',
    ),
    "argument_not_object": (
        line(event_list=[event(arguments=[3])]),
        "event_list[0].arguments[0] should be an object",
    ),
    "role_missing": (
        line(event_list=[event(arguments=[argument(role=None)])]),
        'event_list[0].arguments[0]: "role" is missing',
    ),
    "argument_missing": (
        line(event_list=[event(arguments=[argument(argument=None)])]),
        '"argument" is missing',
    ),
    "argument_start_missing": (
        line(event_list=[event(arguments=[argument(argument_start_index=None)])]),
        '"argument_start_index" is missing',
    ),
    "argument_not_string": (
        line(event_list=[event(arguments=[argument(argument=["雀巢"])])]),
        '"argument" should be a string, got a list',
    ),
    "argument_mismatch": (
        line(event_list=[event(arguments=[argument(argument_start_index=1)])]),
        "\"argument\" is '雀巢' but text[1:3] is '巢裁'",
    ),
    "argument_past_the_end": (
        line(event_list=[event(arguments=[argument(argument_start_index=99)])]),
        "text[99:101] is ''",
    ),
    "role_is_trigger": (
        line(event_list=[event(arguments=[argument(role=TRIGGER)])]),
        "reserved for the trigger",
    ),
    "invalid_utf8": (line(id="x").encode()[:-3] + b'\xff\xfe"}', "invalid UTF-8"),
}


@pytest.mark.parametrize("kind", sorted(BAD_LINES))
def test_bad_line_raises_input_error_naming_file_and_line(tmp_path: Path, kind: str) -> None:
    bad, reason = BAD_LINES[kind]
    path = write_lines(tmp_path / "bad.json", bad)
    with pytest.raises(InputError) as info:
        list(read_examples(path))
    assert str(info.value).startswith(f"{path}:3: "), str(info.value)
    assert reason in str(info.value)
    assert (info.value.path, info.value.line) == (path, 3)


def test_bad_line_after_good_ones_still_yields_the_good_ones_first(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "bad.json", "{")
    examples = read_examples(path)
    assert next(examples).id == "ok"
    with pytest.raises(InputError, match=r"bad\.json:3: invalid JSON"):
        next(examples)


def test_duplicate_id_names_both_lines(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "dup.json", line(id="ok"))
    with pytest.raises(InputError, match=r"dup\.json:3: id 'ok' already used on line 1"):
        list(read_examples(path))


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nope\.json: cannot read"):
        list(read_examples(tmp_path / "nope.json"))


def test_a_folder_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        list(read_examples(tmp_path))


def test_schema_rejects_unknown_event_type_and_role(tmp_path: Path) -> None:
    unknown_type = line(event_list=[event(event_type="人生-结婚")])
    with pytest.raises(InputError, match=r":3: .*event type '人生-结婚' is not in the schema"):
        list(read_examples(write_lines(tmp_path / "t.json", unknown_type), SCHEMA))
    unknown_role = line(event_list=[event(arguments=[argument(role="收购方")])])
    with pytest.raises(InputError, match=r":3: .*role '收购方' is not in the schema for"):
        list(read_examples(write_lines(tmp_path / "r.json", unknown_role), SCHEMA))
    # without a schema both read
    assert len(list(read_examples(tmp_path / "r.json"))) == 2


def test_good_line_becomes_example_with_trigger_argument(tmp_path: Path) -> None:
    path = tmp_path / "good.json"
    path.write_text("\n" + line() + "\n", encoding="utf-8")
    (ex,) = read_examples(path, SCHEMA)
    assert ex == Example(
        id="a1",
        text=TEXT,
        events=(
            Event(
                "组织关系-裁员",
                frozenset(
                    {
                        Argument(TRIGGER, "裁员", 2),
                        Argument("裁员方", "雀巢", 0),
                        Argument("裁员人数", "4000人", 4),
                    }
                ),
            ),
        ),
        where="good.json:2",
    )


def test_test_file_lines_without_event_list_or_id(tmp_path: Path) -> None:
    path = tmp_path / "test.json"
    rows = [{"id": "t1", "text": "无事发生"}, {"text": "也没有编号"}, {"text": "第三行", "x": 1}]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    examples = list(read_examples(path))
    assert [e.id for e in examples] == ["t1", "line-2", "line-3"]
    assert all(e.events == () for e in examples)


def test_bom_and_crlf_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "win.json"
    path.write_bytes(b"\xef\xbb\xbf" + line().encode() + b"\r\n" + line(id="b").encode() + b"\r\n")
    assert [e.id for e in read_examples(path)] == ["a1", "b"]


def test_stdin_is_read_with_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import sys

    fake = io.TextIOWrapper(io.BytesIO((line() + "\n{\n").encode()), encoding="utf-8")
    monkeypatch.setattr(sys, "stdin", fake)
    examples = read_examples("-")
    assert next(examples).where == "<stdin>:1"
    with pytest.raises(InputError, match=r"^<stdin>:2: invalid JSON"):
        next(examples)


def test_round_trip_through_writer_and_reader(tmp_path: Path) -> None:
    two = {
        "id": "b2",
        "text": "IBM裁员300人，同时收购华为",
        "event_list": [
            {
                "event_type": "组织关系-裁员",
                "trigger": "裁员",
                "trigger_start_index": 3,
                "arguments": [
                    {"role": "裁员方", "argument": "IBM", "argument_start_index": 0},
                    {"role": "裁员人数", "argument": "300人", "argument_start_index": 5},
                ],
            },
            {
                "event_type": "财经/交易-出售/收购",
                "trigger": "收购",
                "trigger_start_index": 12,
                "arguments": [
                    {"role": "收购方", "argument": "IBM", "argument_start_index": 0},
                    {"role": "交易物", "argument": "华为", "argument_start_index": 14},
                ],
            },
        ],
    }
    src = tmp_path / "src.json"
    src.write_text(line() + "\n" + json.dumps(two, ensure_ascii=False) + "\n", encoding="utf-8")
    first = list(read_examples(src))
    out = tmp_path / "out.json"
    assert write_jsonl(out, (example_to_json(e) for e in first)) == 2
    second = list(read_examples(out))
    assert [(e.id, e.text, e.events) for e in first] == [(e.id, e.text, e.events) for e in second]
    assert [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()] == [GOOD, two]
    assert "雀巢" in out.read_text(encoding="utf-8")  # ensure_ascii=False


spans = st.tuples(
    st.sampled_from(["裁员方", "裁员人数", "时间"]), st.integers(0, 11), st.integers(1, 4)
)


@settings(max_examples=50, deadline=None)
@given(
    text=st.text(min_size=12, max_size=20), picks=st.lists(st.lists(spans, max_size=3), max_size=3)
)
def test_round_trip_property(
    tmp_path_factory: pytest.TempPathFactory, text: str, picks: list
) -> None:
    events = tuple(
        Event(
            "组织关系-裁员",
            frozenset(
                [Argument(TRIGGER, text[0:2], 0)]
                + [Argument(r, text[s : s + n], s) for r, s, n in args]
            ),
        )
        for args in picks
    )
    ex = Example("p", text, events)
    path = tmp_path_factory.mktemp("rt") / "p.json"
    write_jsonl(path, [example_to_json(ex)])
    (back,) = read_examples(path, SCHEMA)
    assert (back.id, back.text, back.events) == (ex.id, ex.text, ex.events)


def test_write_jsonl_leaves_no_temp_file_and_returns_count(tmp_path: Path) -> None:
    assert write_jsonl(tmp_path / "a.json", ({"i": i} for i in range(3))) == 3
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
    assert (tmp_path / "a.json").read_text() == '{"i": 0}\n{"i": 1}\n{"i": 2}\n'


def test_write_jsonl_keeps_target_when_rows_fail_midway(tmp_path: Path) -> None:
    target = tmp_path / "a.json"
    target.write_text("old\n")

    def rows():
        yield {"i": 0}
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        write_jsonl(target, rows())
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_write_jsonl_dash_writes_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert write_jsonl("-", [{"t": "雀巢"}]) == 1
    assert capsys.readouterr().out == '{"t": "雀巢"}\n'


def shared_spans(examples: list[Example]) -> int:
    """Arguments (same role-free text and start) that belong to two events of one sentence."""
    n = 0
    for ex in examples:
        for i, a in enumerate(ex.events):
            for b in ex.events[i + 1 :]:
                n += len(
                    {(x.text, x.start) for x in a.arguments}
                    & {(x.text, x.start) for x in b.arguments}
                )
    return n


@pytest.mark.parametrize("split", ["train", "dev"])
def test_sample_data_reads_cleanly_and_has_hard_cases(split: str) -> None:
    schema = Schema.from_file(SAMPLE / "duee_event_schema.json")
    examples = list(read_examples(SAMPLE / f"{split}.json", schema))
    assert len(examples) >= 100
    assert sum(len(e.events) >= 2 for e in examples) > 0
    assert sum(len({ev.event_type for ev in e.events}) < len(e.events) for e in examples) > 0
    assert shared_spans(examples) > 0
    assert sum(not e.events for e in examples) > 0
    nested = sum(
        1
        for e in examples
        for ev in e.events
        for a in ev.arguments
        for b in ev.arguments
        if a != b and a.start <= b.start and b.end <= a.end
    )
    assert nested > 0
    assert all(10 <= len(e.text) <= 60 for e in examples)


@pytest.mark.skipif(not SHARED_DUEE.exists(), reason="needs ../shared/data/duee")
def test_duee_dev_reads_cleanly_against_its_schema() -> None:
    schema = Schema.from_file(SHARED_DUEE / "duee_event_schema.json")
    examples = list(read_examples(SHARED_DUEE / "duee_dev.json", schema))
    assert (len(examples), sum(len(e.events) for e in examples)) == (1492, 1783)
