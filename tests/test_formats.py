"""Annotation tools' files: doccano and Label Studio exports -> our JSONL (read back by each
task's own reader, offsets exact), our rows -> the tools' import formats -> back (equal),
every refusal naming its line or task, every leftover counted, and `predict --format` on a
tiny random model re-imported by the converter.

The exports are written here by hand, in each tool's shape, with an emoji before the spans:
doccano counts it as two UTF-16 units, Label Studio as one code point.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import SAMPLES, task_texts, tiny_model_folder
from typer.testing import CliRunner

from gplinker import tasks
from gplinker.cli import app
from gplinker.data.reader import read_examples, write_jsonl
from gplinker.errors import InputError
from gplinker.formats import convert_file, doccano, label_studio
from gplinker.schema import TRIGGER, Argument, Event
from gplinker.tasks.entity import Entity
from gplinker.tasks.relation import Span, Triple

runner = CliRunner()
EMOJI = "😀"  # U+1F600: one code point, two UTF-16 units
T_ENT = EMOJI + "张三在北京大学工作"  # 张三 [1, 3), 北京 [4, 6) inside 北京大学 [4, 8)
T_REL = EMOJI + "张三出生于北京。"  # 张三 [1, 3), 出生 [3, 5), 北京 [6, 8)
T_EVT = EMOJI + "昨日四川发生5级地震"  # 昨日 [1, 3), 四川 [3, 5), 5级 [7, 9), 地震 [9, 11)


def u16(text: str, start: int) -> int:
    """A code point offset in UTF-16 units, worked out the plain way: encode and count."""
    return len(text[:start].encode("utf-16-le")) // 2


def dump_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def dump_json(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1), "utf-8")
    return path


def convert(path: Path, tool: str, task: str, **kw) -> tuple[list[dict], str]:
    out = path.with_name(path.name + ".ours.jsonl")
    summary = convert_file(path, out, tool=tool, task=task, **kw)
    rows = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    assert summary.written == len(rows)
    return rows, str(summary)


def parsed(task: str, rows: list[dict], tmp_path: Path) -> dict:
    """The rows as the task's own reader (training's) reads them: id -> example."""
    path = dump_jsonl(tmp_path / f"{task}-reread.jsonl", rows)
    return {ex.id: ex for ex in read_examples(path, parse=tasks.get(task).parse(None))}


# ---- doccano exports ---------------------------------------------------------------------------
def d_spans(text: str, *spans: tuple[int, int, str]) -> list[list]:
    """doccano's [start, end, label] in UTF-16 units, from code point offsets."""
    return [[u16(text, s), u16(text, e), label] for s, e, label in spans]


def d_entities(text: str, *spans: tuple[int, int, int, str]) -> list[dict]:
    return [
        {"id": i, "start_offset": u16(text, s), "end_offset": u16(text, e), "label": label}
        for i, s, e, label in spans
    ]


def test_doccano_sequence_labelling_reads_as_nested_entities_at_code_points(
    tmp_path: Path,
) -> None:
    export = dump_jsonl(
        tmp_path / "seq.jsonl",
        [
            {"id": 7, "text": T_ENT, "label": d_spans(T_ENT, (1, 3, "PER"), (4, 8, "ORG"),
                                                      (4, 6, "LOC"), (4, 6, "LOC"))},
            {"id": 8, "text": "", "label": []},
            {"text": "没有标注"},  # no id, no labels: line-3, no entities
            {"id": 9, "text": "李四", "labels": [[0, 2, "PER"]], "Comments": []},  # older key
        ],
    )  # fmt: skip
    assert d_spans(T_ENT, (1, 3, "PER"))[0][:2] == [2, 4]  # the emoji counts two in doccano
    rows, summary = convert(export, "doccano", "entity")
    examples = parsed("entity", rows, tmp_path)
    assert list(examples) == ["7", "8", "line-3", "9"]
    assert set(examples["7"].entities) == {
        Entity("PER", "张三", 1),
        Entity("ORG", "北京大学", 4),
        Entity("LOC", "北京", 4),
    }
    assert examples["8"].entities == examples["line-3"].entities == ()
    assert examples["9"].entities == (Entity("PER", "李四", 0),)
    assert summary == (
        "converted 4 lines into 4 texts, 4 entities; left out: duplicate spans (the same "
        "offsets and label again: kept once): 1"
    )

    # the same export counted in code points reads the same with --offsets code-points
    cp = [{**r, "label": [[s - 1, e - 1, t] for s, e, t in r["label"]]} if r.get("id") == 7
          else r for r in map(json.loads, export.read_text("utf-8").splitlines())]  # fmt: skip
    same, _ = convert(dump_jsonl(tmp_path / "cp.jsonl", cp), "doccano", "entity",
                      offsets="code-points")  # fmt: skip
    assert same == rows


def test_doccano_relation_export_reads_as_triples_and_counts_spans_in_no_relation(
    tmp_path: Path,
) -> None:
    line = {
        "id": 38,
        "text": T_REL,
        "entities": d_entities(T_REL, (51, 1, 3, "人物"), (53, 6, 8, "地点"), (54, 3, 5, "动作")),
        "relations": [{"id": 20, "from_id": 51, "to_id": 53, "type": "出生地"}],
    }
    rows, summary = convert(dump_jsonl(tmp_path / "rel.jsonl", [line]), "doccano", "relation")
    (ex,) = parsed("relation", rows, tmp_path).values()
    assert ex.id == "38"
    assert ex.triples == (Triple(Span("张三", 1), "出生地", Span("北京", 6), "人物", "地点"),)
    assert summary == (
        "converted 1 lines into 1 texts, 2 entities, 1 relations; left out: entities in no "
        "relation (the relation format has no place for them): 1"
    )
    # the same export as entities: three spans, the relation counted as left out
    rows, summary = convert(dump_jsonl(tmp_path / "rel2.jsonl", [line]), "doccano", "entity")
    assert len(rows[0]["entities"]) == 3
    assert summary.endswith("left out: relations (--task entity keeps the spans alone): 1")


def test_doccano_event_export_reads_by_the_uie_mapping_trigger_then_role_relations(
    tmp_path: Path,
) -> None:
    # PaddleNLP UIE's example: trigger label 地震触发词, argument labels free (等级), the
    # relation's label is the role (震级)
    line = {
        "id": 1,
        "text": T_EVT,
        "entities": d_entities(
            T_EVT, (1, 9, 11, "地震" + TRIGGER), (2, 1, 3, "时间"), (3, 7, 9, "等级"),
            (4, 3, 5, "地点"),
        ),
        "relations": [
            {"id": 1, "from_id": 1, "to_id": 2, "type": "时间"},
            {"id": 2, "from_id": 1, "to_id": 3, "type": "震级"},
            {"id": 3, "from_id": 4, "to_id": 2, "type": "时间"},  # not from a trigger
        ],
    }  # fmt: skip
    rows, summary = convert(dump_jsonl(tmp_path / "evt.jsonl", [line]), "doccano", "event")
    (ex,) = parsed("event", rows, tmp_path).values()
    expected = Event(
        "地震",
        frozenset(
            {Argument(TRIGGER, "地震", 9), Argument("时间", "昨日", 1), Argument("震级", "5级", 7)}
        ),
    )
    assert ex.events == (expected,)
    assert "1 events, 2 arguments" in summary
    assert "relations not from a trigger (an event's roles go from its trigger): 1" in summary
    assert "entities neither a trigger nor an argument: 1" in summary  # 四川


# ---- Label Studio exports ----------------------------------------------------------------------
def ls_span(rid: str, text: str, start: int, end: int, *labels: str) -> dict:
    return {
        "id": rid, "from_name": "label", "to_name": "text", "type": "labels",
        "value": {"start": start, "end": end, "text": text[start:end], "labels": list(labels)},
    }  # fmt: skip


def ls_link(source: str, target: str, *labels: str, direction: str = "right") -> dict:
    return {"from_id": source, "to_id": target, "type": "relation", "direction": direction,
            "labels": list(labels)}  # fmt: skip


def ls_task(tid: int, text: str, *annotations: list[dict], cancelled: int = 0) -> dict:
    done = [{"id": 100 + tid, "was_cancelled": False, "result": r} for r in annotations]
    junk = [{"id": 99, "was_cancelled": True, "result": [{"type": "labels", "value": {}}]}]
    return {"id": tid, "data": {"text": text}, "annotations": junk * cancelled + done}


def test_label_studio_export_reads_as_entities_at_code_points(tmp_path: Path) -> None:
    first = [
        ls_span("a", T_ENT, 1, 3, "PER"),
        ls_span("b", T_ENT, 4, 8, "ORG"),
        ls_span("c", T_ENT, 4, 6, "LOC", "GPE"),  # two labels: two entities
        {"id": "d", "type": "choices", "value": {"choices": ["news"]}},
    ]
    export = dump_json(
        tmp_path / "ls.json",
        [
            ls_task(1, T_ENT, first, [ls_span("z", T_ENT, 0, 1, "EMOJI")], cancelled=1),
            ls_task(2, ""),  # no annotation: left out, counted
            ls_task(3, "", []),  # annotated, nothing found: an empty row
        ],
    )
    rows, summary = convert(export, "label-studio", "entity")
    examples = parsed("entity", rows, tmp_path)
    assert list(examples) == ["1", "3"]
    assert set(examples["1"].entities) == {
        Entity("PER", "张三", 1),
        Entity("ORG", "北京大学", 4),
        Entity("LOC", "北京", 4),
        Entity("GPE", "北京", 4),
    }
    assert examples["3"].entities == ()
    assert summary.startswith("converted 3 tasks into 2 texts, 4 entities; left out: ")
    for why in (
        "cancelled annotations: 1",
        "further annotations of a task (its first one is read): 1",
        "tasks with no annotation (left out: not a text without records): 1",
        "results of type 'choices' (neither span nor relation): 1",
    ):
        assert why in summary


def test_label_studio_relations_follow_their_direction_and_events_map_as_doccano(
    tmp_path: Path,
) -> None:
    rel = [
        ls_span("s", T_REL, 1, 3, "人物"),
        ls_span("o", T_REL, 6, 8, "地点"),
        ls_link("o", "s", "出生地", direction="left"),  # drawn from the object: s -> o
    ]
    evt = [
        ls_span("t", T_EVT, 9, 11, "地震" + TRIGGER),
        ls_span("a1", T_EVT, 1, 3, "时间"),
        ls_span("a2", T_EVT, 7, 9, "等级"),
        ls_link("t", "a1", "时间"),
        ls_link("t", "a2", "震级"),
        ls_link("t", "a2", "震级"),  # twice: kept once, counted
    ]
    export = dump_json(tmp_path / "ls.json", [ls_task(5, T_REL, rel), ls_task(6, T_EVT, evt)])
    rows, _ = convert(export, "label-studio", "relation")
    ex = parsed("relation", rows[:1], tmp_path)["5"]
    assert ex.triples == (Triple(Span("张三", 1), "出生地", Span("北京", 6), "人物", "地点"),)
    rows, summary = convert(export, "label-studio", "event")
    ex = parsed("event", rows[1:], tmp_path)["6"]
    assert ex.events == (
        Event("地震", frozenset({Argument(TRIGGER, "地震", 9), Argument("时间", "昨日", 1),
                                 Argument("震级", "5级", 7)})),
    )  # fmt: skip
    assert "duplicate relations (the same spans and label again: kept once): 1" in summary


# ---- round trips: our rows -> the tool's import format -> back -----------------------------
ROWS = {
    "entity": [
        {"id": "e1", "text": T_ENT, "entities": [
            {"entity": "张三", "label": "PER", "start_offset": 1, "end_offset": 3},
            {"entity": "北京", "label": "LOC", "start_offset": 4, "end_offset": 6},
            {"entity": "北京大学", "label": "ORG", "start_offset": 4, "end_offset": 8}]},
        {"id": "e2", "text": "没有实体", "entities": []},
    ],
    "relation": [
        {"id": "r1", "text": T_REL, "spo_list": [
            {"subject": "张三", "subject_type": "人物", "predicate": "出生地", "object": "北京",
             "object_type": "地点", "subject_start_index": 1, "object_start_index": 6},
            {"subject": "张三", "subject_type": "人物", "predicate": "籍贯", "object": "北京",
             "object_type": "地点", "subject_start_index": 1, "object_start_index": 6}]},
    ],
    "event": [
        {"id": "v1", "text": T_EVT + "，四川地震", "event_list": [
            {"event_type": "地震", "trigger": "地震", "trigger_start_index": 9, "arguments": [
                {"role": "时间", "argument": "昨日", "argument_start_index": 1},
                {"role": "震级", "argument": "5级", "argument_start_index": 7}]},
            {"event_type": "地震", "trigger": "地震", "trigger_start_index": 14, "arguments": [
                {"role": "震中", "argument": "四川", "argument_start_index": 12}]}]},
    ],
}  # fmt: skip


def accepted(tasks_: list[dict]) -> list[dict]:
    """What Label Studio exports once an annotator submits each pre-annotated task as it
    is: the prediction's result becomes the annotation's."""
    return [
        {"id": 40 + i, "data": t["data"], "annotations": [{"result": p[0]["result"]}]}
        for i, (t, p) in enumerate((t, t["predictions"]) for t in tasks_)
    ]


@pytest.mark.parametrize("task", ["entity", "relation", "event"])
@pytest.mark.parametrize("tool", ["doccano", "label-studio"])
def test_our_rows_go_to_the_tool_and_back_equal(tool: str, task: str, tmp_path: Path) -> None:
    rows = ROWS[task]
    if tool == "doccano":
        exported = list(doccano.to_doccano(rows, task))
        path = tmp_path / "tool.jsonl"
        write_jsonl(path, exported)
        spans = exported[0]["label"] if task == "entity" else exported[0]["entities"]
        first = spans[0] if task == "entity" else [spans[0]["start_offset"]]
        first_start = {"entity": 1, "relation": 1, "event": 9}[task]  # code points, after 😀
        assert first[0] == u16(rows[0]["text"], first_start) == first_start + 1  # UTF-16
    else:
        path = tmp_path / "tool.json"
        label_studio.write_tasks(path, label_studio.to_tasks(rows, task))
        written = json.loads(path.read_text("utf-8"))
        assert [t["predictions"][0]["model_version"] for t in written] == ["gplinker"] * len(rows)
        dump_json(path, accepted(written))
    back, summary = convert(path, tool, task)
    assert back == rows, summary
    assert "left out" not in summary


def test_doccano_leaves_empty_texts_out_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    rows = [{"id": "a", "text": "", "entities": []}, *ROWS["entity"]]
    assert [r["id"] for r in doccano.to_doccano(rows, "entity")] == ["e1", "e2"]
    assert "empty texts (doccano refuses them): 1" in caplog.text


def test_label_studio_file_appears_whole_or_not_at_all(tmp_path: Path) -> None:
    path = tmp_path / "tasks.json"

    def tasks_then_failure():
        yield {"data": {"text": "a"}}
        raise InputError("stopped midway")

    with pytest.raises(InputError, match="stopped midway"):
        label_studio.write_tasks(path, tasks_then_failure())
    assert list(tmp_path.iterdir()) == []
    assert label_studio.write_tasks(path, iter([])) == 0
    assert json.loads(path.read_text()) == []


# ---- refusals, each naming its line or task ------------------------------------------------
REL_LINE = {
    "id": 1,
    "text": T_REL,
    "entities": d_entities(T_REL, (1, 1, 3, "人物"), (2, 6, 8, "地点")),
    "relations": [{"id": 1, "from_id": 1, "to_id": 2, "type": "出生地"}],
}
DOCCANO_ERRORS = {
    "relation to a missing id": (
        "relation",
        {**REL_LINE, "relations": [{"id": 1, "from_id": 1, "to_id": 99, "type": "出生地"}]},
        "the relation '出生地' from '1' to '99' points to '99', which is no span of this text",
    ),
    "offset inside the emoji": (
        "entity",
        {"id": 2, "text": T_ENT, "label": [[1, 4, "PER"]]},
        "label[0]: offset 1 falls inside a character",
    ),
    "span past the end": (
        "entity",
        {"id": 2, "text": "张三", "label": [[0, 9, "PER"]]},
        "span 'label[0]': [0, 9) is outside the text of 2 characters",
    ),
    "empty span": (
        "entity",
        {"id": 2, "text": "张三", "label": [[1, 1, "PER"]]},
        "span 'label[0]': empty span [1, 1)",
    ),
    "malformed span": (
        "entity",
        {"id": 2, "text": "张三", "label": [[0, "2", "PER"]]},
        "label[0] should be [start, end, label]",
    ),
    "sequence labels for relations": (
        "relation",
        {"id": 2, "text": "张三", "label": [[0, 2, "PER"]]},
        'a sequence labelling line ("label") has no relations for --task relation',
    ),
    "two shapes": (
        "entity",
        {"id": 2, "text": "张三", "label": [], "entities": []},
        'holds both "label" and "entities"',
    ),
    "entity id twice": (
        "relation",
        {**REL_LINE, "entities": d_entities(T_REL, (1, 1, 3, "人物"), (1, 6, 8, "地点"))},
        "entities[1]: entity id '1' is used twice in this line",
    ),
    "relation without a type": (
        "relation",
        {**REL_LINE, "relations": [{"id": 1, "from_id": 1, "to_id": 2, "type": ""}]},
        "the relation from '1' to '2' has no label",
    ),
    "trigger label without an event type": (
        "event",
        {**REL_LINE, "entities": d_entities(T_REL, (1, 1, 3, TRIGGER), (2, 6, 8, "地点"))},
        f"span '1' is labelled {TRIGGER!r} alone",
    ),
    "line id used before": ("entity", {"id": 0, "text": "张三"}, "id '0' already used on line 1"),
    "not JSON": ("entity", "{not json", "invalid JSON"),
}


@pytest.mark.parametrize("case", DOCCANO_ERRORS, ids=list(DOCCANO_ERRORS))
def test_doccano_refusals_name_file_and_line(case: str, tmp_path: Path) -> None:
    task, bad, message = DOCCANO_ERRORS[case]
    path = tmp_path / "export.jsonl"
    good = json.dumps({"id": 0, "text": "张三", "entities": []}, ensure_ascii=False)
    path.write_text(good + "\n" + (bad if isinstance(bad, str) else json.dumps(bad)) + "\n")
    with pytest.raises(InputError) as err:
        convert_file(path, tmp_path / "out.jsonl", tool="doccano", task=task)
    assert str(err.value).startswith(f"{path}:2: "), err.value
    assert message in str(err.value)
    assert not (tmp_path / "out.jsonl").exists()  # nothing half-written


def _shifted(span: dict, by: int) -> dict:
    value = span["value"]
    return {**span, "value": {**value, "start": value["start"] + by, "end": value["end"] + by}}


LS_ERRORS = {
    "text not at the offsets (UTF-16 offsets read as code points)": (
        "entity",
        [_shifted(ls_span("a", T_ENT, 1, 3, "PER"), 1)],
        "result[0]: value.text is '张三' but the text at [2, 4) is '三在' (counted in UTF-16 "
        "units, they would match: give --offsets utf-16)",
    ),
    "relation to a missing region": (
        "relation",
        [ls_span("s", T_REL, 1, 3, "人物"), ls_link("s", "zz", "出生地")],
        "the relation '出生地' from 's' to 'zz' points to 'zz', which is no span of this text",
    ),
    "relation both ways": (
        "relation",
        [ls_span("s", T_REL, 1, 3, "人物"), ls_span("o", T_REL, 6, 8, "地点"),
         ls_link("s", "o", "出生地", direction="bi")],
        "result[2]: a relation of direction 'bi' has no subject",
    ),
    "two labels on a relation's end": (
        "relation",
        [ls_span("s", T_REL, 1, 3, "人物", "地点")],
        "result[0]: a span with 2 labels ['人物', '地点'] is ambiguous",
    ),
    "relation without a label": (
        "event",
        [ls_span("t", T_EVT, 9, 11, "地震" + TRIGGER), ls_span("a", T_EVT, 1, 3, "时间"),
         ls_link("t", "a")],
        "the relation from 't' to 'a' has no label: the role is the relation's label",
    ),
    "region without labels": (
        "entity",
        [{**ls_span("a", T_ENT, 1, 3), "value": {"start": 1, "end": 3}}],
        "result[0]: value.labels should be a list of one label or more",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", LS_ERRORS, ids=list(LS_ERRORS))
def test_label_studio_refusals_name_file_and_task(case: str, tmp_path: Path) -> None:
    task, result, message = LS_ERRORS[case]
    text = {"entity": T_ENT, "relation": T_REL, "event": T_EVT}[task]
    path = dump_json(tmp_path / "export.json", [ls_task(3, "张三", []), ls_task(17, text, result)])
    with pytest.raises(InputError) as err:
        convert_file(path, tmp_path / "out.jsonl", tool="label-studio", task=task)
    assert str(err.value).startswith(f"{path}: task 2 (id 17): "), err.value
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"data": {"text": "a"}}', "expected a list of tasks (Label Studio's JSON export)"),
        ("[\n{}\n{}]", ":3: invalid JSON: Expecting ',' delimiter at column 1"),
        ('[{"id": 4, "data": {"sentence": "a"}}]', 'task 1 (id 4): "data" should hold the text'),
        ('[{"data": {"text": "a"}, "annotations": [{"result": []}]}, '
         '{"data": {"text": "b", "id": "task-1"}, "annotations": [{"result": []}]}]',
         "task 2: id 'task-1' already used by task 1"),
    ],
)  # fmt: skip
def test_label_studio_files_that_are_no_export(content: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / "export.json"
    path.write_text(content, "utf-8")
    with pytest.raises(InputError, match="^" + str(path)) as err:
        convert_file(path, tmp_path / "out.jsonl", tool="label-studio", task="entity")
    assert message in str(err.value)


# ---- the command line ----------------------------------------------------------------------
def test_convert_command_writes_our_jsonl_and_prints_the_summary(tmp_path: Path) -> None:
    export = dump_jsonl(tmp_path / "rel.jsonl", [REL_LINE])
    out = tmp_path / "train.json"
    args = ["convert", str(export), "-o", str(out), "--from", "doccano", "--task", "relation"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert result.stderr.strip() == "converted 1 lines into 1 texts, 2 entities, 1 relations"
    assert len(parsed("relation", [json.loads(out.read_text("utf-8"))], tmp_path)) == 1

    result = runner.invoke(app, [*args[:-1], "event"])  # no trigger: nothing of it is an event
    assert result.exit_code == 0, result.output
    assert "left out: entities neither a trigger nor an argument: 2" in result.stderr

    bad = dump_jsonl(tmp_path / "bad.jsonl", [{**REL_LINE, "relations": [{"from_id": 1}]}])
    result = runner.invoke(app, ["convert", str(bad), *args[2:]])
    assert result.exit_code == 2
    assert result.stderr.startswith(f'error: {bad}:1: relations[0]: "to_id" is missing')


# ---- predict --format on a tiny random model ------------------------------------------------
@pytest.fixture(scope="module")
def predict_input(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Per task, a few of its sample's dev texts, every other one behind emoji, and an
    empty one."""
    made = {}
    for task in ("entity", "relation", "event"):
        texts = task_texts(task, "dev")[:16]
        lines = [{"id": f"{i}", "text": EMOJI * (i % 2) + t} for i, t in enumerate(texts)]
        lines.append({"id": "empty", "text": ""})
        made[task] = dump_jsonl(tmp_path_factory.mktemp(task) / "in.jsonl", lines)
    return made


@pytest.mark.parametrize("task", ["entity", "relation", "event"])
def test_predict_format_files_reimport_to_the_predicted_records(
    task: str, predict_input: dict[str, Path], tmp_path: Path
) -> None:
    assert SAMPLES[task][2].exists()
    model = tiny_model_folder(task, tmp_path / "model")
    scorer = tasks.get(task)
    plain = tmp_path / "pred.jsonl"
    base = ["predict", "-m", str(model), "-i", str(predict_input[task])]
    assert runner.invoke(app, [*base, "-o", str(plain)]).exit_code == 0
    predicted = scorer.read_scored(plain, None)
    behind_emoji = [r for i, records in predicted.items() if i != "empty" and int(i) % 2
                    for r in records]  # fmt: skip
    assert behind_emoji, "a vacuous test: the random model found nothing behind an emoji"

    for tool, name in (("doccano", "pred.doccano.jsonl"), ("label-studio", "pred.ls.json")):
        out = tmp_path / name
        result = runner.invoke(app, [*base, "-o", str(out), "--format", tool])
        assert result.exit_code == 0, result.output
        if tool == "label-studio":
            dump_json(out, accepted(json.loads(out.read_text("utf-8"))))
        back = tmp_path / f"back-{tool}.jsonl"
        convert_file(out, back, tool=tool, task=task)
        reimported = scorer.read_scored(back, None)
        expected = {i: r for i, r in predicted.items() if tool != "doccano" or i != "empty"}
        assert {i: set(r) for i, r in reimported.items()} == {
            i: set(r) for i, r in expected.items()
        }, tool


def test_two_processes_write_the_same_tool_file_as_one(tmp_path: Path) -> None:
    """Sharded, the shards stay JSONL and process 0 converts once it has merged them: a
    bad line's error record left out of one shard cannot shift the others' lines."""
    from test_distributed import launch, one_process_predict

    model = tiny_model_folder("event", tmp_path / "model")
    texts = task_texts("event", "dev")[:5]
    lines = [json.dumps({"id": str(i), "text": t}, ensure_ascii=False) for i, t in enumerate(texts)]
    lines.insert(2, '{"id": "bad", "text": ')  # process 0 reads it as its 2nd line
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(lines) + "\n", "utf-8")
    common = ["--model", str(model), "--input", str(src), "--batch-size", "1",
              "--on-error", "record", "--format", "label-studio"]  # fmt: skip
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    one_process_predict(*common, "--output", str(one))
    result = launch(["-q", "predict", *common, "--output", str(two)])
    assert result.returncode == 0, result.stderr
    assert two.read_bytes() == one.read_bytes()
    assert [t["data"]["id"] for t in json.loads(two.read_text("utf-8"))] == list("01234")
