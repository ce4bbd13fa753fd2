"""Bad input (docs/reliability.md): every kind of bad line in `gplinker predict`, in fail and
record mode; unusual but valid texts predicted with exact offsets; stdin/stdout; the atomic
output; whole-file checks of training data with an explicit skip option."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from conftest import EVENT, SAMPLE, sample_texts, tiny_model_folder
from typer.testing import CliRunner

from gplinker import tasks
from gplinker.cli import app
from gplinker.data.reader import (
    DUPLICATE_ID,
    INVALID_JSON,
    SPAN_MISMATCH,
    UNKNOWN_EVENT_TYPE,
    UNKNOWN_ROLE,
    check_examples,
    load_examples,
)
from gplinker.data.tokenizer import build_wordpiece_tokenizer
from gplinker.errors import InputError
from gplinker.predict import GPLinker, predict_file
from gplinker.schema import TRIGGER, Schema

runner = CliRunner()
LAYOFF = "组织关系-裁员"


def jl(row: object) -> bytes:
    return json.dumps(row, ensure_ascii=False).encode()


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module", params=["event", "entity", "relation"])
def model_dir(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    """A random tiny model folder of each task, as `gplinker train` writes one: every
    prediction test runs for every task (the input lines are the same for all)."""
    shift = None if request.param == "relation" else 0.0  # relations: raised to find some
    return tiny_model_folder(request.param, tmp_path_factory.mktemp("model") / "m", shift=shift)


def task_of(model_dir: Path) -> str:
    return json.loads((model_dir / "config.json").read_text(encoding="utf-8"))["task"]


def spans_of(row: dict, task: str) -> list[tuple[str, int]]:
    """(text, start) of every span an output row holds, whatever the task."""
    if task == "entity":
        return [(e["entity"], e["start_offset"]) for e in row["entities"]]
    if task == "relation":
        return [
            (t[side], t[f"{side}_start_index"])
            for t in row["spo_list"]
            for side in ("subject", "object")
        ]
    spans = []
    for ev in row["event_list"]:
        spans.append((ev["trigger"], ev["trigger_start_index"]))
        spans += [(a["argument"], a["argument_start_index"]) for a in ev["arguments"]]
    return spans


def invoke_predict(model: Path, src: str, dst: str, *extra: str, stdin: bytes | None = None):
    args = ["predict", "--model", str(model), "--input", src, "--output", dst, *extra]
    return runner.invoke(app, args, input=stdin)


# ---------------------------------------------------------------- predict: bad lines

GOOD_1 = jl({"id": "a1", "text": "雀巢裁员4000人"})
GOOD_3 = jl({"id": "a3", "text": "华为收购了一家公司"})

# kind -> (line 2, how its message starts, the id its error record carries)
BAD_LINES: dict[str, tuple[bytes, str, str | None]] = {
    "invalid_json": (b'{"id": "x", "text": ', "invalid JSON: Expecting value at column 21", None),
    "invalid_utf8": (b'{"id": "x", "text": "\xff\xfe"}', "invalid UTF-8 at byte 21", None),
    "nested_too_deep": (b"[" * 100_000 + b"]" * 100_000, "invalid JSON: nested too deeply", None),
    "not_an_object_list": (b"[1, 2]", "expected a JSON object, got a list", None),
    "not_an_object_string": (b'"just text"', "expected a JSON object, got a string", None),
    "not_an_object_null": (b"null", "expected a JSON object, got null", None),
    "text_missing": (jl({"id": "x", "title": "雀巢"}), '"text" is missing', "x"),
    "text_number": (jl({"id": "x", "text": 5}), '"text" should be a string, got a number', "x"),
    "text_null": (jl({"id": "x", "text": None}), '"text" should be a string, got null', "x"),
    "text_list": (jl({"id": "x", "text": ["雀巢"]}), '"text" should be a string, got a list', "x"),
    "text_lone_surrogate": (
        b'{"id": "x", "text": "ab\\ud800c"}',
        "\"text\" holds a lone surrogate '\\ud800' at character 2",
        "x",
    ),
    "id_number": (jl({"id": 7, "text": "雀巢"}), '"id" should be a string, got a number (7)', None),
    "duplicate_id": (jl({"id": "a1", "text": "又裁员"}), "id 'a1' already used on line 1", "a1"),
    "blank_line": (b"   ", "empty line (expected a JSON object)", None),
    "empty_line": (b"", "empty line (expected a JSON object)", None),
}


def three_lines(folder: Path, bad: bytes) -> Path:
    path = folder / "in.jsonl"
    path.write_bytes(GOOD_1 + b"\n" + bad + b"\n" + GOOD_3 + b"\n")
    return path


@pytest.mark.parametrize("kind", sorted(BAD_LINES))
def test_fail_mode_stops_at_the_bad_line_naming_file_and_line_and_writes_nothing(
    tmp_path: Path, model_dir: Path, kind: str
) -> None:
    bad, reason, _ = BAD_LINES[kind]
    if kind == "id_number" and task_of(model_dir) != "event":
        pytest.skip("CLUENER's and DuIE's formats admit integer ids")
    src, out = three_lines(tmp_path, bad), tmp_path / "out.jsonl"
    result = invoke_predict(model_dir, str(src), str(out))
    assert result.exit_code == 2, result.output
    *_, error, hint = result.stderr.splitlines()
    assert error.startswith(f"error: {src}:2: {reason}"), result.stderr
    assert hint.startswith("(--on-error record")
    assert "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]  # no output, no temp


@pytest.mark.parametrize("kind", sorted(BAD_LINES))
def test_record_mode_writes_an_error_record_in_place_and_goes_on(
    tmp_path: Path, model_dir: Path, kind: str
) -> None:
    bad, reason, record_id = BAD_LINES[kind]
    if kind == "id_number" and task_of(model_dir) != "event":
        pytest.skip("CLUENER's and DuIE's formats admit integer ids")
    src, out = three_lines(tmp_path, bad), tmp_path / "out.jsonl"
    result = invoke_predict(model_dir, str(src), str(out), "--on-error", "record")
    assert result.exit_code == 0, result.output
    rows = read_rows(out)
    assert [r["id"] for r in rows] == ["a1", record_id, "a3"]
    assert rows[1] == {"id": record_id, "line": 2, "error": rows[1]["error"]}
    assert rows[1]["error"].startswith(reason)
    assert [r["text"] for r in (rows[0], rows[2])] == ["雀巢裁员4000人", "华为收购了一家公司"]
    assert result.stderr.splitlines()[-1] == "read 3 lines, wrote 3, 1 in error"
    assert f"{src}:2: {reason}" in result.stderr  # logged as well
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "out.jsonl"]


def test_record_mode_counts_many_errors_and_keeps_the_order(tmp_path: Path, model_dir: Path):
    lines = [GOOD_1, b"{", b"[]", jl({"text": "无编号"}), b"", GOOD_3, b"\xff", GOOD_1]
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_bytes(b"\n".join(lines) + b"\n")
    result = invoke_predict(model_dir, str(src), str(out), "--on-error", "record")
    assert result.exit_code == 0, result.output
    rows = read_rows(out)
    assert [r["id"] for r in rows] == ["a1", None, None, "line-4", None, "a3", None, "a1"]
    assert [r.get("line") for r in rows] == [None, 2, 3, None, 5, None, 7, 8]
    assert rows[7]["error"] == "id 'a1' already used on line 1"
    assert result.stderr.splitlines()[-1] == "read 8 lines, wrote 8, 5 in error"


def test_a_line_without_id_gets_its_line_number_in_both_modes(tmp_path: Path, model_dir: Path):
    src = tmp_path / "in.jsonl"
    src.write_bytes(GOOD_1 + b"\n" + jl({"text": "没有编号的一行"}) + b"\n")
    for mode in ("fail", "record"):
        out = tmp_path / f"{mode}.jsonl"
        result = invoke_predict(model_dir, str(src), str(out), "--on-error", mode)
        assert result.exit_code == 0, result.output
        rows = read_rows(out)
        assert [r["id"] for r in rows] == ["a1", "line-2"]
        assert rows[1]["text"] == "没有编号的一行"
        assert result.stderr.splitlines()[-1] == "read 2 lines, wrote 2, 0 in error"


@pytest.mark.parametrize("text", ["", " ", "\u3000\t \u200b"])
def test_an_empty_or_blank_text_gets_an_empty_list_not_an_error(
    tmp_path: Path, model_dir: Path, text: str
) -> None:
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_bytes(GOOD_1 + b"\n" + jl({"id": "e", "text": text}) + b"\n")
    result = invoke_predict(model_dir, str(src), str(out))
    assert result.exit_code == 0, result.output
    key = tasks.get(task_of(model_dir)).record_key
    assert read_rows(out)[1] == {"id": "e", "text": text, key: []}


# ---------------------------------------------------------------- unusual but valid texts


class Oracle(torch.nn.Module):
    """The scores a trained model would give: 裁员 is the trigger of 组织关系-裁员 and 雀巢 its
    裁员方 wherever their two characters are consecutive tokens, all linked; nothing else.
    So the right answer for any text is known exactly, offsets included."""

    def __init__(self, tokenizer, schema: Schema):
        super().__init__()
        self.folder_config = SimpleNamespace(task="event")
        self.heads = tuple(EVENT.heads(schema))
        self.anchor = torch.nn.Parameter(torch.zeros(()))
        vocab = tokenizer.get_vocab()
        self.pairs = {
            (vocab["裁"], vocab["员"]): schema.label_id(LAYOFF, TRIGGER),
            (vocab["雀"], vocab["巢"]): schema.label_id(LAYOFF, "裁员方"),
        }
        self.n_labels = len(schema)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, factored: bool = False
    ) -> dict[str, torch.Tensor]:  # dense scores either way, as the original GlobalPointer
        B, L = input_ids.shape
        argu = torch.full((B, self.n_labels, L, L), -10.0)
        heads = torch.zeros(B, L, dtype=torch.bool)
        tails = torch.zeros(B, L, dtype=torch.bool)
        for (a, b), label in self.pairs.items():
            hit = (input_ids[:, :-1] == a) & (input_ids[:, 1:] == b)  # [B, L-1]
            bi, i = hit.nonzero(as_tuple=True)
            argu[bi, label, i, i + 1] = 10.0
            heads[bi, i], tails[bi, i + 1] = True, True

        def link(x: torch.Tensor) -> torch.Tensor:  # [B, 1, L, L]
            return torch.where(x[:, :, None] & x[:, None, :], 10.0, -10.0)[:, None]

        return {"argu": argu, "head_link": link(heads), "tail_link": link(tails)}


@pytest.fixture(scope="module")
def oracle(schema: Schema) -> GPLinker:
    tokenizer = build_wordpiece_tokenizer(sample_texts(), 2000)
    model = Oracle(tokenizer, schema)
    return GPLinker(model, tokenizer, schema, max_length=64, window_overlap=16, device="cpu")


def long_text() -> str:
    """100k characters, emoji and CJK extension B among them, 雀巢 ... 裁员 near the end."""
    filler = "今天天气很好，我们去公园😀散步𠀀看花。"
    body = (filler * (100_000 // len(filler) + 1))[: 100_000 - 40]
    return body + "据报道雀巢宣布裁员4000人" + "。" * 26


UNUSUAL = {
    "plain": "雀巢裁员4000人",
    "control_chars": "\x00\x07雀巢\x1b裁员\t4000人\x7f\r",
    "zero_width_inside_spans": "\u200b\ufeff雀\u200b巢\u200d裁\u2060员",
    "emoji": "😀👨\u200d👩\u200d👧雀巢🇨🇳裁员🎉",
    "cjk_extensions": "𠀀𪚥雀巢𫝀裁员𰀀",  # ext B, B, D, G: two UTF-16 units each
    "combining_marks": "e\u0301雀巢裁员",
    "long_100k": long_text(),
}


def expected_event(text: str) -> dict:
    trig, arg = text.index("裁"), text.index("雀")
    return {
        "event_type": LAYOFF,
        "trigger": text[trig : text.index("员", trig) + 1],
        "trigger_start_index": trig,
        "arguments": [
            {
                "role": "裁员方",
                "argument": text[arg : text.index("巢", arg) + 1],
                "argument_start_index": arg,
            }
        ],
    }


def test_unusual_but_valid_texts_are_predicted_with_exact_offsets(
    tmp_path: Path, oracle: GPLinker
) -> None:
    assert len(UNUSUAL["long_100k"]) == 100_000
    names = sorted(UNUSUAL)
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_bytes(b"\n".join(jl({"id": n, "text": UNUSUAL[n]}) for n in names) + b"\n")
    summary = predict_file(oracle, src, out, batch_size=64, progress=False)
    assert (summary.read, summary.written, summary.errors) == (len(names), len(names), 0)
    rows = read_rows(out)
    assert [r["id"] for r in rows] == names
    for name, row in zip(names, rows, strict=True):
        text = UNUSUAL[name]
        assert row["text"] == text, name  # the user's text, not a normalised one
        assert row["event_list"] == [expected_event(text)], name
        for ev in row["event_list"]:
            s = ev["trigger_start_index"]
            assert text[s : s + len(ev["trigger"])] == ev["trigger"]
            for a in ev["arguments"]:
                s = a["argument_start_index"]
                assert text[s : s + len(a["argument"])] == a["argument"]
    assert rows[names.index("long_100k")]["event_list"][0]["trigger_start_index"] > 99_900


def test_unusual_texts_through_a_real_model_keep_offsets_inside_the_text(
    tmp_path: Path, model_dir: Path
) -> None:
    """A random model marks spans everywhere: each must be a piece of the user's text that
    starts and ends on a character some token covers."""
    short = {k: v for k, v in UNUSUAL.items() if k != "long_100k"}
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_bytes(b"\n".join(jl({"id": k, "text": v}) for k, v in short.items()) + b"\n")
    result = invoke_predict(model_dir, str(src), str(out))
    assert result.exit_code == 0, result.output
    n = len(short)
    assert result.stderr.splitlines()[-1] == f"read {n} lines, wrote {n}, 0 in error"
    uncovered = set("\x00\x07\x1b\t\x7f\r\u200b\ufeff\u200d\u2060")  # no token covers them
    n_spans = 0
    for row in read_rows(out):
        text = short[row["id"]]
        assert row["text"] == text
        for span, s in spans_of(row, task_of(model_dir)):
            n_spans += 1
            assert span and text[s : s + len(span)] == span
            assert span[0] not in uncovered and span[-1] not in uncovered, (row["id"], span)
    assert n_spans > 0  # the checks above saw spans


# ---------------------------------------------------------------- stdin / stdout


def test_dash_reads_stdin_and_writes_stdout(model_dir: Path) -> None:
    stdin = GOOD_1 + b"\n{oops\n" + GOOD_3 + b"\n"
    result = invoke_predict(model_dir, "-", "-", "--on-error", "record", stdin=stdin)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["id"] for r in rows] == ["a1", None, "a3"]
    assert rows[1]["line"] == 2 and rows[1]["error"].startswith("invalid JSON")
    assert rows[0]["text"] == "雀巢裁员4000人"
    assert result.stderr.splitlines()[-1] == "read 3 lines, wrote 3, 1 in error"


def test_dash_in_fail_mode_names_stdin_and_the_line(model_dir: Path) -> None:
    result = invoke_predict(model_dir, "-", "-", stdin=GOOD_1 + b"\n[]\n" + GOOD_3 + b"\n")
    assert result.exit_code == 2
    assert "error: <stdin>:2: expected a JSON object, got a list" in result.stderr
    # what came before the bad line was already streamed out; nothing after it
    assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == ["a1"]


# ---------------------------------------------------------------- atomic output


@pytest.mark.parametrize("exc", [RuntimeError("boom"), KeyboardInterrupt()])
def test_an_exception_midway_leaves_no_output_and_no_temp_file(
    tmp_path: Path, oracle: GPLinker, monkeypatch: pytest.MonkeyPatch, exc: BaseException
) -> None:
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_bytes(b"\n".join(jl({"id": str(i), "text": "雀巢裁员"}) for i in range(6)) + b"\n")
    seen: list[list[str]] = []  # the folder at each call of the decoder
    decode = GPLinker.decode_encoded

    def failing(self: GPLinker, windows, texts, **kwargs):
        seen.append(sorted(p.name for p in tmp_path.iterdir()))
        if len(seen) == 3:
            raise exc
        return decode(self, windows, texts, **kwargs)

    monkeypatch.setattr(GPLinker, "decode_encoded", failing)
    with pytest.raises(type(exc)):
        predict_file(oracle, src, out, chunk_size=2, progress=False)
    # midway, rows went to a temporary file beside the target, not to the target
    temp, *rest = seen[2]
    assert temp.startswith(".out.jsonl.") and temp.endswith(".tmp") and rest == ["in.jsonl"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]


def test_unwritable_output_or_missing_input_fails_before_any_work(tmp_path: Path, model_dir):
    src = three_lines(tmp_path, GOOD_3.replace(b"a3", b"a2"))
    result = invoke_predict(model_dir, str(src), str(tmp_path / "no" / "out.jsonl"))
    assert result.exit_code == 2
    assert f"error: {tmp_path / 'no' / 'out.jsonl'}: cannot write: no folder" in result.stderr
    result = invoke_predict(model_dir, str(src), str(tmp_path))
    assert result.exit_code == 2 and "cannot write: it is a folder" in result.stderr
    result = invoke_predict(model_dir, str(tmp_path / "nope.jsonl"), str(tmp_path / "o"))
    assert result.exit_code == 2 and "nope.jsonl: cannot read" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]


# ---------------------------------------------------------------- training data


def gold(ex_id: str, **event_changes: object) -> bytes:
    ev = {
        "event_type": LAYOFF,
        "trigger": "裁员",
        "trigger_start_index": 2,
        "arguments": [{"role": "裁员方", "argument": "雀巢", "argument_start_index": 0}],
    }
    ev.update(event_changes)
    return jl({"id": ex_id, "text": "雀巢裁员4000人", "event_list": [ev]})


def arguments(role: str, start: int) -> list[dict]:
    return [{"role": role, "argument": "雀巢", "argument_start_index": start}]


TRAIN_LINES = [
    gold("g1"),
    gold("b2", trigger_start_index=3),  # trigger text is not the text at its start
    gold("b3", arguments=arguments("裁员方", 1)),  # nor is this argument's
    gold("b4", event_type="人生-离婚"),
    gold("b5", arguments=arguments("收购方", 0)),
    gold("g1"),
    b"",  # a blank line holds no data: passed over, not reported
    b'{"id": "b8", "text": ',
    gold("g9"),
]
REASONS = {
    2: "event_list[0]: \"trigger\" is '裁员' but text[3:5] is '员4'",
    3: "event_list[0].arguments[0]: \"argument\" is '雀巢' but text[1:3] is '巢裁'",
    4: "event_list[0]: event type '人生-离婚' is not in the schema",
    5: f"event_list[0].arguments[0]: role '收购方' is not in the schema for '{LAYOFF}'",
    6: "id 'g1' already used on line 1",
    8: "invalid JSON: Expecting value at column 22",
}
COUNTS = {
    SPAN_MISMATCH: 2,
    UNKNOWN_EVENT_TYPE: 1,
    UNKNOWN_ROLE: 1,
    DUPLICATE_ID: 1,
    INVALID_JSON: 1,
}


@pytest.fixture
def train_file(tmp_path: Path) -> Path:
    path = tmp_path / "train.json"
    path.write_bytes(b"\n".join(TRAIN_LINES) + b"\n")
    return path


def test_training_data_check_reports_every_problem_with_file_line_and_counts(
    train_file: Path, schema: Schema
) -> None:
    checked = check_examples(train_file, schema)
    assert [ex.id for ex in checked.examples] == ["g1", "g9"]
    assert [b.line for b in checked.bad] == sorted(REASONS)
    assert checked.counts == COUNTS
    with pytest.raises(InputError) as info:
        load_examples(train_file, schema)
    lines = str(info.value).splitlines()
    assert lines[0].startswith(f"{train_file}: 6 of 8 lines are invalid (")
    assert all(f"{kind}: {n}" in lines[0] for kind, n in COUNTS.items())
    assert lines[1:7] == [f"  {train_file}:{n}: {reason}" for n, reason in REASONS.items()]
    assert "skip_invalid" in lines[7]


def test_training_data_report_shows_the_first_ten_and_counts_all(tmp_path: Path, schema: Schema):
    path = tmp_path / "train.json"
    bad = [gold(f"x{i}", trigger_start_index=3 + i % 2) for i in range(25)]
    path.write_bytes(b"\n".join([gold("ok"), *bad]) + b"\n")
    with pytest.raises(InputError) as info:
        load_examples(path, schema)
    lines = str(info.value).splitlines()
    assert lines[0] == f"{path}: 25 of 26 lines are invalid (span mismatch: 25); the first 10:"
    assert [line.split(":")[1] for line in lines[1:11]] == [str(n) for n in range(2, 12)]
    assert lines[11] == "  ... and 15 more"


def test_skip_invalid_drops_exactly_the_bad_lines_and_says_how_many(
    train_file: Path, schema: Schema
) -> None:
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append  # type: ignore[method-assign]
    reader_log = logging.getLogger("gplinker.data.reader")
    reader_log.addHandler(handler)
    try:
        examples = load_examples(train_file, schema, skip_invalid=True)
    finally:
        reader_log.removeHandler(handler)
    assert [ex.id for ex in examples] == ["g1", "g9"]
    assert [ex.where for ex in examples] == ["train.json:1", "train.json:9"]
    (record,) = records
    message = record.getMessage()
    assert message.startswith(f"{train_file}: skipped 6 invalid lines, kept 2: 6 of 8 lines")
    assert all(f"{train_file}:{n}: " in message for n in REASONS)


def test_a_clean_training_file_loads_whole(schema: Schema) -> None:
    examples = load_examples(SAMPLE / "train.json", schema)
    assert len(examples) == len(sample_texts("train"))
