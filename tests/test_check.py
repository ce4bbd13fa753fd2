"""gplinker check and gplinker schema --from: hand-made files of every task holding one of
each problem, and the exact report on them (counts and file:line); the counts against
training's own DropReport; split_digits picked up from a recipe; exit codes, --json, and
the schema a file implies read back by its task."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from conftest import SAMPLES
from typer.testing import CliRunner

from gplinker import tasks
from gplinker.check import KINDS, CheckReport, check_config, check_data
from gplinker.cli import app
from gplinker.config import load_config
from gplinker.data.labels import DropReport
from gplinker.data.reader import load_examples
from gplinker.schema import TRIGGER, Schema
from gplinker.tasks.relation import RelationSchema
from gplinker.training import build_tokenizer, prepare_examples

runner = CliRunner()

# the texts every task's files share; chars: 张0 三1 在2 Oracle3-9 2019 9-13 年13 入14 职15
T1 = "张三在Oracle2019年入职"
T2 = "李四 说过"  # 李0 四1 " "2 说3 过4: a span ending on the space ends inside no token
T5 = "一二三四五六七八九十" * 2 + "王五来了"  # 24 chars: 王五 at 20, past 14 tokens
T6 = "春夏秋冬" * 4 + "之歌"  # a 16-char span: more than a window of 14 tokens holds
T7 = "Oracle公司"  # "Orac" ends inside the token "Oracle"
LONG = T6[:16]
BAD = '{"id": "t4", "text": '
WINDOWS = ["--max-length", "16", "--window-overlap", "4"]  # 14 tokens a window


def _entity(i: str, text: str, *spans: tuple[str, str, int]) -> dict:
    return {
        "id": i,
        "text": text,
        "entities": [
            {"label": label, "start_offset": s, "end_offset": s + len(t)} for label, t, s in spans
        ],
    }


def _relation(i: str, text: str, *triples: tuple[str, str, int, str, int]) -> dict:
    rows = [
        {
            "predicate": p,
            "subject": s,
            "subject_start_index": si,
            "subject_type": "人物",
            "object": o,
            "object_start_index": oi,
            "object_type": "企业",
        }
        for p, s, si, o, oi in triples
    ]
    return {"id": i, "text": text, "spo_list": rows}


def _event(i: str, text: str, *events: tuple[str, str, int, list[tuple[str, str, int]]]) -> dict:
    rows = [
        {
            "event_type": t,
            "trigger": trig,
            "trigger_start_index": ts,
            "arguments": [
                {"role": r, "argument": a, "argument_start_index": s} for r, a, s in args
            ],
        }
        for t, trig, ts, args in events
    ]
    return {"id": i, "text": text, "event_list": rows}


JOIN = "组织关系-入职"
# per task: train rows (line 4 is the bad one), dev rows, the schema file's text
FILES: dict[str, tuple[list[dict], list[dict], str]] = {
    "entity": (
        [
            _entity("t1", T1, ("per", "张三", 0), ("org", "Oracle", 3)),
            _entity("t2", T2, ("per", "李四 ", 0)),
            _entity("t2", "重复"),
            _entity("t5", T5, ("per", "王五", 20)),
            _entity("t6", T6, ("org", LONG, 0)),
            _entity("t7", T7, ("org", "Orac", 0)),
        ],
        [_entity("d1", T1, ("per", "张三", 0)), _entity("d2", "赵六来了", ("loc", "赵六", 0))],
        '{"entity_types": ["per", "org", "pos"]}',
    ),
    "relation": (
        [
            _relation("t1", T1, ("就职", "张三", 0, "Oracle", 3)),
            _relation("t2", T2, ("就职", "李四 ", 0, "说过", 3)),
            _relation("t2", "重复"),
            _relation("t5", T5, ("就职", "王五", 20, "一二", 0)),
            _relation("t6", T6, ("就职", LONG, 0, "春夏", 0)),
            _relation("t7", T7, ("就职", "Orac", 0, "公司", 6)),
        ],
        [
            _relation("d1", T1, ("就职", "张三", 0, "入职", 14)),
            _relation("d2", "赵六来了", ("朋友", "赵六", 0, "来了", 2)),
        ],
        '{"predicate": "就职", "subject_type": "人物", "object_type": "企业"}\n'
        '{"predicate": "创始人", "subject_type": "企业", "object_type": "人物"}\n',
    ),
    "event": (
        [
            _event(
                "t1", T1, (JOIN, "入职", 14, [("入职者", "张三", 0), ("入职单位", "Oracle", 3)])
            ),
            _event("t2", T2, (JOIN, "说", 3, [("入职者", "李四 ", 0)])),
            _event("t2", "重复"),
            _event("t5", T5, (JOIN, "一二", 0, [("入职者", "王五", 20)])),
            _event("t6", T6, (JOIN, "春夏", 0, [("入职单位", LONG, 0)])),
            _event("t7", T7, (JOIN, "公司", 6, [("入职单位", "Orac", 0)])),
        ],
        [
            _event("d1", T1, (JOIN, "入职", 14, [("入职者", "张三", 0)])),
            _event("d2", "赵六来了", ("组织关系-辞职", "来了", 2, [])),
        ],
        '{"event_type": "组织关系-入职", "role_list": [{"role": "入职者"}, {"role": "入职单位"}]}\n'
        '{"event_type": "组织关系-裁员", "role_list": [{"role": "裁员方"}]}\n',
    ),
}
# per task: how the spans of the problem lines are named in the report
NAMES = {
    "entity": {
        "李四": "per '李四 '",
        "long": f"org {LONG!r}",
        "Orac": "org 'Orac'",
        "Oracle": "org 'Oracle'",
        "王五": "per '王五'",
        "unknown": ["dev.json:2: loc '赵六': not in the schema"],
        "unseen": ["train.json: pos"],
    },
    "relation": {
        "李四": "就职 subject '李四 '",
        "long": f"就职 subject {LONG!r}",
        "Orac": "就职 subject 'Orac'",
        "Oracle": "就职 object 'Oracle'",
        "王五": "就职 subject '王五'",
        "unknown": [
            "dev.json:2: 朋友 subject '赵六': not in the schema",
            "dev.json:2: 朋友 object '来了': not in the schema",
        ],
        "unseen": ["train.json: 创始人 subject", "train.json: 创始人 object"],
    },
    "event": {
        "李四": f"{JOIN} 入职者 '李四 '",
        "long": f"{JOIN} 入职单位 {LONG!r}",
        "Orac": f"{JOIN} 入职单位 'Orac'",
        "Oracle": f"{JOIN} 入职单位 'Oracle'",
        "王五": f"{JOIN} 入职者 '王五'",
        "unknown": [f"dev.json:2: 组织关系-辞职 {TRIGGER} '来了': not in the schema"],
        "unseen": [f"train.json: 组织关系-裁员 {TRIGGER}", "train.json: 组织关系-裁员 裁员方"],
    },
}


def _write(folder: Path, task: str) -> tuple[Path, Path, Path, Path]:
    train_rows, dev_rows, schema_text = FILES[task]
    lines = [json.dumps(r, ensure_ascii=False) for r in train_rows]
    lines.insert(3, BAD)
    train, dev, empty, schema = (folder / n for n in ("train.json", "dev.json", "e.json", "s"))
    train.write_text("\n".join(lines) + "\n", encoding="utf-8")
    dev.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in dev_rows), "utf-8")
    empty.write_text("", encoding="utf-8")
    schema.write_text(schema_text, encoding="utf-8")
    return train, dev, empty, schema


def _found(report: CheckReport | dict) -> dict[str, tuple[int, list[str]]]:
    out = report if isinstance(report, dict) else report.to_json()
    return {k: (f["count"], f["examples"]) for k, f in out["findings"].items()}


def _expected(task: str, empty: Path, *, split: bool, windows: bool) -> dict:
    n = NAMES[task]
    off = [
        f"train.json:2: {n['李四']} [0, 3): tokens «李 | 四» | 说 | 过",
        f"train.json:7: {n['Orac']} [0, 4): tokens «Oracle» | 公 | 司",
    ]
    if not split:  # Oracle2019 is one word
        off.insert(
            0, f"train.json:1: {n['Oracle']} [3, 9): tokens 三 | 在 | «Oracle2019» | 年 | 入"
        )
    reason = "no window of 14 tokens (overlapping by 4) holds it whole"
    cut = [f"train.json:6: {n['long']} [0, 16): {reason}"]
    if not windows:
        reason = "past the 14 tokens kept without windows (data.windows: false)"
        cut = [
            f"train.json:5: {n['王五']} [20, 22): {reason}",
            f"train.json:6: {n['long']} [0, 16): {reason}",
        ]
    return {
        "bad_line": (1, ["train.json:4: invalid JSON: Expecting value at column 22"]),
        "duplicate_id": (1, ["train.json:3: id 't2' already used on line 2"]),
        "empty_file": (1, [str(empty)]),
        "unknown_label": (len(n["unknown"]), n["unknown"]),
        "off_boundary": (len(off), off),
        "cut": (len(cut), cut),
        "not_found": (0, []),
        "whitespace": (1, [f"train.json:2: {n['李四']}"]),
        "leakage": (1, [f"dev.json:1: the text of train.json:1: {T1!r}"]),
        "unseen_label": (len(n["unseen"]), n["unseen"]),
    }


@pytest.mark.parametrize("task", ["entity", "relation", "event"])
@pytest.mark.parametrize(("split", "windows"), [(True, True), (False, True), (True, False)])
def test_check_reports_each_problem_once_with_its_file_and_line(
    tmp_path: Path, task: str, split: bool, windows: bool
) -> None:
    train, dev, empty, schema = _write(tmp_path, task)
    report = check_data(
        [train, dev, empty],
        task,
        schema_file=schema,
        split_digits=split,
        max_length=16,
        windows=windows,
        window_overlap=4,
    )
    assert _found(report) == _expected(task, empty, split=split, windows=windows)
    assert report.exit_code == 1
    lines = [(f["path"], f["lines"], f["examples"]) for f in report.files]
    assert lines == [(str(train), 7, 5), (str(dev), 2, 2), (str(empty), 0, 0)]
    per_file = [{k: n for k, n in f["findings"].items() if n} for f in report.files]
    expected = _expected(task, empty, split=split, windows=windows)
    in_train = ("bad_line", "duplicate_id", "off_boundary", "cut", "whitespace")
    in_dev = {"unknown_label": len(NAMES[task]["unknown"]), "leakage": 1}
    assert per_file == [{k: expected[k][0] for k in in_train}, in_dev, {"empty_file": 1}]


def test_entity_label_table_counts_spans_per_file_and_what_is_lost(tmp_path: Path) -> None:
    train, dev, _, schema = _write(tmp_path, "entity")
    report = check_data([train, dev], "entity", schema_file=schema, max_length=16, window_overlap=4)
    table = {
        label: (c["spans"], c["off_boundary"], c["cut"], c["in_schema"])
        for c in report.to_json()["labels"]
        for label in [tuple(c["label"])]
    }
    t, d = str(train), str(dev)
    assert table == {
        ("per",): ({t: 3, d: 1}, 1, 0, True),
        ("org",): ({t: 3}, 1, 1, True),
        ("pos",): ({}, 0, 0, True),
        ("loc",): ({d: 1}, 0, 0, False),  # after the schema's labels
    }


def test_no_schema_file_takes_the_first_files_labels(tmp_path: Path) -> None:
    train, dev, _, _ = _write(tmp_path, "event")
    report = check_data([train, dev], "event", max_length=16, window_overlap=4)
    assert report.schema == f"collected from {train} (no schema file)"
    assert _found(report)["unknown_label"] == (1, [NAMES["event"]["unknown"][0]])
    assert _found(report)["unseen_label"] == (0, [])


def test_leakage_is_across_files_only_and_examples_are_bounded(tmp_path: Path) -> None:
    rows = [_entity(f"a{i}", "同一句话", ("per", "同一", 0)) for i in range(4)]
    train, dev = tmp_path / "train.json", tmp_path / "dev.json"
    train.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    dev.write_text(train.read_text("utf-8").replace('"a', '"b'), "utf-8")
    report = check_data([train, dev], "entity", max_shown=2)
    assert _found(report)["leakage"] == (
        4,
        [f"dev.json:{i}: the text of train.json:1: '同一句话'" for i in (1, 2)],
    )
    assert report.exit_code == 0  # warnings only


def _drops(config_path: Path, overrides: list[str]) -> DropReport:
    """What training itself counts: its tokenizer, its windows, its labels."""
    conf = load_config(config_path, overrides)
    task = tasks.get(conf.task)
    schema = task.read_schema(conf.data.schema_file, conf.data.train)
    files = [conf.data.train, conf.data.dev]
    examples = [load_examples(f, schema, parse=task.parse(schema)) for f in files]
    tokenizer = build_tokenizer(conf.model, examples[0])
    overlap = conf.data.window_overlap if conf.data.windows else None
    total = DropReport()
    for exs in examples:
        total.add(prepare_examples(exs, tokenizer, task, schema, conf.data.max_length, overlap)[2])
    return total


@pytest.mark.parametrize("task", ["entity", "event"])  # a relation's DropReport counts triples
@pytest.mark.parametrize(
    "overrides",
    [
        ["model.split_digits=false"],
        [
            "model.split_digits=false",
            "data.max_length=24",
            "data.windows=false",
            "data.window_overlap=4",
        ],
        ["model.split_digits=true", "data.max_length=24", "data.window_overlap=4"],
    ],
)
def test_counts_equal_what_training_drops_on_the_samples(task: str, overrides: list[str]) -> None:
    config = SAMPLES[task][3]
    report = check_config(load_config(config, overrides))
    drops = _drops(config, overrides)
    found = _found(report)
    assert (found["off_boundary"][0], found["cut"][0]) == (drops.off_boundary, drops.truncated)
    assert sum(f["spans"] for f in report.files) == drops.spans


def test_check_builds_the_recipes_tokenizer_split_digits_included() -> None:
    """The issue's 44 spans of the event sample, all recovered by split_digits."""
    config = SAMPLES["event"][3]
    off = {
        split: _found(check_config(load_config(config, [f"model.split_digits={split}"])))
        for split in ("false", "true")
    }
    assert off["false"]["off_boundary"][0] == 44
    assert off["true"]["off_boundary"][0] == 0
    assert off["false"]["off_boundary"][1][0].endswith(
        "tokens «Oracle2019 | 年 | 3 | 月» | 裁 | 员"
    )


# ---- the command line ------------------------------------------------------------------------
def test_cli_exit_code_one_on_errors_with_the_text_report(tmp_path: Path) -> None:
    train, dev, empty, schema = _write(tmp_path, "entity")
    args = ["check", str(train), str(dev), str(empty), "--task", "entity", "--schema", str(schema)]
    result = runner.invoke(app, [*args, *WINDOWS, "--examples", "1"])
    assert result.exit_code == 1, result.output
    out = result.stdout
    assert "train.json:4: invalid JSON: Expecting value at column 22" in out
    assert "off boundary: 2 (spans starting or ending inside a token; never a label)" in out
    assert "    ... and 1 more" in out  # the second off-boundary span is counted, not shown
    assert "4 errors, 6 warnings (exit code 1)" in out
    assert "     0         1       0             0       0          0  loc  (not in schema)" in out


def test_cli_exit_code_zero_on_warnings_only_and_json_keeps_every_kind(tmp_path: Path) -> None:
    train = tmp_path / "train.json"
    train.write_text(json.dumps(_entity("a", T2, ("per", "李四 ", 0)), ensure_ascii=False))
    result = runner.invoke(app, ["check", str(train), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert list(out["findings"]) == list(KINDS)
    assert {k: f["count"] for k, f in out["findings"].items() if f["count"]} == {
        "off_boundary": 1,
        "whitespace": 1,
    }
    assert (out["errors"], out["warnings"], out["exit_code"]) == (0, 2, 0)
    assert out["task"] == "entity"  # told by the file's keys
    assert (out["max_length"], out["window_overlap"]) == (128, 32)


def test_cli_config_mode_takes_overrides_and_refuses_file_options() -> None:
    config = str(SAMPLES["event"][3])
    result = runner.invoke(app, ["check", "--config", config, "model.split_digits=false", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["findings"]["off_boundary"]["count"] == 44
    result = runner.invoke(app, ["check", "--config", config, "--max-length", "64"])
    assert result.exit_code == 2
    assert "error: --max-length: for files only; with --config give KEY=VALUE" in result.stderr


def test_cli_check_without_files_or_config_is_a_usage_error() -> None:
    result = runner.invoke(app, ["check"])
    assert result.exit_code == 2
    assert "error: give the files to check, or --config RECIPE" in result.stderr


# ---- gplinker schema --from ------------------------------------------------------------------
def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def _reference(task: str, train: Path) -> Any:
    """The schema a training file implies, by plain loops over its JSON (entity: what a
    training run collects without a schema file)."""
    if task == "entity":
        return tasks.get("entity").read_schema(None, train)
    if task == "event":
        roles: dict[str, set[str]] = {}
        for row in _rows(train):
            for ev in row["event_list"]:
                roles.setdefault(ev["event_type"], set())
                roles[ev["event_type"]].update(a["role"] for a in ev["arguments"])
        return Schema({t: sorted(roles[t]) for t in sorted(roles)})
    pairs: dict[str, Counter] = {}
    for row in _rows(train):
        for spo in {json.dumps(s, sort_keys=True) for s in row["spo_list"]}:  # one per triple
            s = json.loads(spo)
            pairs.setdefault(s["predicate"], Counter())[s["subject_type"], s["object_type"]] += 1
    best = {p: max(sorted(c), key=lambda k, c=c: c[k]) for p, c in pairs.items()}
    return RelationSchema((p, *best[p]) for p in sorted(best))


@pytest.mark.parametrize("task", ["entity", "relation", "event"])
def test_schema_from_reads_back_as_the_schema_the_file_implies(tmp_path: Path, task: str) -> None:
    train = SAMPLES[task][0]
    out = tmp_path / "schema.json"
    result = runner.invoke(app, ["schema", "--from", str(train), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert tasks.get(task).read_schema(out, None) == _reference(task, train)
    assert f"wrote {out}" in result.stderr
    table = result.stderr.splitlines()[1:-1]
    assert sum(int(line.split()[0]) for line in table) > 0


def test_schema_from_counts_every_pair_and_keeps_the_most_frequent(tmp_path: Path) -> None:
    train = tmp_path / "train.json"
    rows = [_relation(f"r{i}", "张三在Oracle", ("就职", "张三", 0, "Oracle", 3)) for i in range(2)]
    odd = _relation("r9", "王五在华为", ("就职", "王五", 0, "华为", 3))
    odd["spo_list"][0]["object_type"] = "机构"
    train.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in [*rows, odd]))
    result = runner.invoke(app, ["schema", "--from", str(train), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["schema"] == {
        "predicates": [{"predicate": "就职", "subject_type": "人物", "object_type": "企业"}]
    }
    assert out["counts"] == [
        {"label": ["就职", "人物", "企业"], "count": 2},
        {"label": ["就职", "人物", "机构"], "count": 1},
    ]


def test_schema_from_stops_at_a_bad_line_naming_it(tmp_path: Path) -> None:
    train = tmp_path / "train.json"
    train.write_text(json.dumps(_entity("a", "张三", ("per", "张三", 0))) + "\n" + BAD + "\n")
    result = runner.invoke(app, ["schema", "--from", str(train)])
    assert result.exit_code == 2
    assert f"error: {train}:2: invalid JSON" in result.stderr
