"""tasks/entity.py: schema files, both line formats and every bad line, gold -> labels ->
perfect scores -> decode -> merge round trips over windows, hand-made decoder cases (-10
everywhere, +10 where an entity is meant), metrics worked out by hand, output rows."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch

from gplinker.data.alignment import Encoded
from gplinker.data.reader import EMPTY_SPAN, MISSING_FIELD, SPAN_MISMATCH, WRONG_TYPE
from gplinker.errors import InputError
from gplinker.metrics import PRF
from gplinker.modeling.global_pointer import Factored, PointerSpec
from gplinker.tasks import get
from gplinker.tasks.entity import (
    OUT_OF_RANGE,
    TASK,
    TWO_FORMATS,
    UNKNOWN_TYPE,
    Entity,
    EntityExample,
    EntitySchema,
)

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample-entity"
SHARED_DATA = ROOT.parent / "shared" / "data"
SCHEMA = EntitySchema(("per", "loc", "org", "pos", "com", "pro"))
NEG, POS = -10.0, 10.0
# char: 北0 京1 大2 学3 校4 长5 张6 伟7 在8 上9 海10 出11 席12 了13 华14 为15 手16 机17 发18 ...
TEXT = "北京大学校长张伟在上海出席了华为手机发布会"
GOLD = [
    Entity("loc", "北京", 0),
    Entity("org", "北京大学", 0),
    Entity("pos", "北京大学校长", 0),
    Entity("per", "张伟", 6),
    Entity("loc", "上海", 9),
    Entity("com", "华为", 14),
    Entity("pro", "华为手机", 14),
]


def window(text: str, a: int = 0, b: int | None = None) -> Encoded:
    """Chars [a, b) of the text as one window: [CLS], one token per character, [SEP]."""
    b = len(text) if b is None else b
    offsets = [(0, 0), *((i, i + 1) for i in range(a, b)), (0, 0)]
    return Encoded(list(range(len(offsets))), offsets, n_cut=len(text) - b, skipped=a)


def dense(cells: list[tuple[tuple[int, int, int], ...]], length: int, n: int = len(SCHEMA)):
    """[B, H, L, L] scores: POS on each sentence's cells, NEG elsewhere."""
    scores = torch.full((len(cells), n, length, length), NEG, dtype=torch.float64)
    for b, sentence in enumerate(cells):
        for label, h, t in sentence:
            scores[b, label, h, t] = POS
    return scores


def factored(cells: list[tuple[tuple[int, int, int], ...]], length: int) -> Factored:
    """The same cells as EGP parts: qk marks the (h, t) of any type, col[t, type] keeps the
    types that end at t (exact when no tail serves two types at other heads, as here)."""
    qk = torch.full((len(cells), length, length), -3 * POS, dtype=torch.float64)
    col = torch.full((len(cells), length, len(SCHEMA)), -3 * POS, dtype=torch.float64)
    for b, sentence in enumerate(cells):
        for label, h, t in sentence:
            qk[b, h, t], col[b, t, label] = POS, 0.0
    mask = torch.ones(length, length, dtype=torch.bool).triu().expand(len(cells), -1, -1)
    return Factored(qk, col, torch.zeros_like(col), mask)


def read(tmp_path: Path, *rows: dict | str, schema: EntitySchema | None = SCHEMA) -> dict:
    path = tmp_path / "data.json"
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return TASK.read_scored(path, schema)


def entities_row(*entities: Entity, text: str = TEXT) -> dict:
    return TASK.output_row(EntityExample("a", text), list(entities))


# ---- schema ------------------------------------------------------------------------------
def test_task_is_found_by_name_and_has_one_ordered_rope_head():
    assert get("entity") is TASK
    assert (TASK.name, TASK.main_metric, TASK.record_key) == ("entity", "entity", "entities")
    assert TASK.heads(SCHEMA) == [PointerSpec("entity", 6, rope=True, ordered=True)]


def test_schema_round_trips_through_a_model_folders_schema_json(tmp_path):
    SCHEMA.to_file(tmp_path / "schema.json")
    assert json.loads((tmp_path / "schema.json").read_text("utf-8")) == {
        "entity_types": list(SCHEMA.types)
    }
    back = EntitySchema.from_file(tmp_path / "schema.json")
    assert back == SCHEMA and hash(back) == hash(SCHEMA) and len(back) == 6
    assert back.type_id("org") == 2


def test_schema_reads_cmeee_codes_in_file_order_and_plain_lines(tmp_path):
    (tmp_path / "cmeee.json").write_text('{\n "sym": "临床表现",\n "dis": "疾病"\n}', "utf-8")
    (tmp_path / "types.txt").write_text("name\n\n address \n", "utf-8")
    assert EntitySchema.from_file(tmp_path / "cmeee.json").types == ("sym", "dis")
    assert EntitySchema.from_file(tmp_path / "types.txt").types == ("name", "address")


@pytest.mark.parametrize(
    ("content", "line", "fragment"),
    [
        ('{\n "dis": "疾病",\n "sym": 临床\n}', 3, "invalid JSON"),
        ('{\n "dis": "疾病",\n "dis": "又一个"\n}', 3, "'dis' is listed twice"),
        ('{\n "dis": "疾病",\n "sym": ["临床"]\n}', 3, "expected"),
        ('{"entity_types": ["a", 3]}', 1, "expected"),
        ("name\naddress\nname\n", 3, "'name' is listed twice"),
        ("name\ndis 疾病\n", 2, "one entity type a line"),
    ],
)
def test_a_bad_schema_file_names_file_and_line(tmp_path, content, line, fragment):
    path = tmp_path / "schema.json"
    path.write_text(content, "utf-8")
    with pytest.raises(InputError, match=fragment) as e:
        EntitySchema.from_file(path)
    assert str(e.value).startswith(f"{path}:{line}: ")


def test_an_empty_or_missing_schema_file_is_an_input_error(tmp_path):
    (tmp_path / "empty.txt").write_text("\n\n", "utf-8")
    with pytest.raises(InputError, match="no entity types"):
        EntitySchema.from_file(tmp_path / "empty.txt")
    with pytest.raises(InputError, match="cannot read schema"):
        EntitySchema.from_file(tmp_path / "absent.json")


def test_read_schema_without_a_file_collects_the_sorted_types_of_train(tmp_path):
    train = tmp_path / "train.json"
    rows = [entities_row(GOLD[4], GOLD[3]), {"text": "无", "label": {"name": {"无": [[0, 0]]}}}]
    train.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), "utf-8")
    assert TASK.read_schema(None, train) == EntitySchema(("loc", "name", "per"))
    SCHEMA.to_file(tmp_path / "schema.json")
    assert TASK.read_schema(tmp_path / "schema.json", train) == SCHEMA
    with pytest.raises(InputError, match="no train file"):
        TASK.read_schema(None, None)
    train.write_text('{"text": "没有实体"}\n', "utf-8")
    with pytest.raises(InputError, match="holds no entity"):
        TASK.read_schema(None, train)


# ---- parsing -----------------------------------------------------------------------------
def test_cluener_lines_have_inclusive_ends_and_integer_ids(tmp_path):
    row = {"id": 7, "text": TEXT, "label": {"loc": {"北京": [[0, 1]], "上海": [[9, 10]]}}}
    assert read(tmp_path, row) == {"7": [Entity("loc", "北京", 0), Entity("loc", "上海", 9)]}


def test_entities_lines_have_exclusive_ends_and_an_optional_entity_text(tmp_path):
    row = entities_row(*GOLD)
    del row["entities"][0]["entity"]
    assert read(tmp_path, row) == {"a": GOLD}


def test_a_line_without_gold_and_duplicated_gold_entities(tmp_path):
    twice = {"text": TEXT, "label": {"loc": {"北京": [[0, 1], [0, 1]]}}}
    doubled = entities_row(GOLD[1], GOLD[1], GOLD[0])
    doubled["id"] = "b"
    assert read(tmp_path, {"text": TEXT}, twice, doubled) == {
        "line-1": [],
        "line-2": [GOLD[0]],
        "b": [GOLD[0], GOLD[1]],
    }


def test_parse_returns_examples_with_where_and_sorted_entities(tmp_path):
    line = json.dumps(entities_row(GOLD[6], GOLD[0]), ensure_ascii=False)
    ex = TASK.parse(SCHEMA)(line, tmp_path / "d.json", 4, "d.json:4", None)
    assert ex == EntityExample("a", TEXT, (GOLD[0], GOLD[6]), "d.json:4")
    assert TASK.gold(ex) == [GOLD[0], GOLD[6]]


def spans(*items: dict) -> dict:
    return {"text": "北京大学", "entities": list(items)}


def span(start: object = 0, end: object = 2, label: object = "loc", **more: object) -> dict:
    return {"start_offset": start, "end_offset": end, "label": label, **more}


@pytest.mark.parametrize(
    ("row", "kind", "fragment"),
    [
        ("[1, 2]", "not a JSON object", "expected a JSON object"),
        ({"entities": []}, MISSING_FIELD, '"text" is missing'),
        ({"text": "北京", "label": {}, "entities": []}, TWO_FORMATS, "both"),
        ({"text": "北京", "label": [[0, 1, "loc"]]}, WRONG_TYPE, "should be an object"),
        ({"text": "北京", "label": {"loc": ["北京"]}}, WRONG_TYPE, "should be an object"),
        ({"text": "北京", "label": {"loc": {"北京": [0, 1]}}}, WRONG_TYPE, "two integers"),
        ({"text": "北京", "label": {"loc": {"北京": [[0, 1.0]]}}}, WRONG_TYPE, "two integers"),
        (
            {"text": "北京", "label": {"loc": {"北": [[0, 1]]}}},
            SPAN_MISMATCH,
            "'loc', mention '北'",
        ),
        ({"text": "北京", "label": {"loc": {"北京": [[1, 0]]}}}, EMPTY_SPAN, "empty span"),
        ({"text": "北京", "label": {"loc": {"北京": [[1, 2]]}}}, OUT_OF_RANGE, "outside the text"),
        ({"text": "北京", "label": {"city": {"北京": [[0, 1]]}}}, UNKNOWN_TYPE, "'city'"),
        ({"text": "北京", "entities": {}}, WRONG_TYPE, '"entities" should be a list'),
        (spans("北京"), WRONG_TYPE, "entities[0] should be an object"),
        (spans(span(end=None)), WRONG_TYPE, '"end_offset" should be an integer'),
        (spans(span(start="0")), WRONG_TYPE, '"start_offset" should be an integer'),
        (spans(span(start=True)), WRONG_TYPE, '"start_offset" should be an integer'),
        (spans({"start_offset": 0, "label": "loc"}), MISSING_FIELD, '"end_offset" is missing'),
        (spans(span(label=None)), WRONG_TYPE, '"label" should be a string'),
        (spans(span(start=2, end=2)), EMPTY_SPAN, "empty span [2, 2)"),
        (spans(span(start=-1)), OUT_OF_RANGE, "[-1, 2) outside"),
        (spans(span(end=5)), OUT_OF_RANGE, "outside the text of 4 chars"),
        (spans(span(entity="大学")), SPAN_MISMATCH, "text[0:2] is '北京'"),
        (spans(span(entity=3)), WRONG_TYPE, '"entity" should be a string'),
        (spans(span(label="city")), UNKNOWN_TYPE, "entity type 'city' is not in the schema"),
        (
            '{"text": "北京", "entities": [{"start_offset": 0, "end_offset": 2, '
            '"label": "\\ud800"}]}',
            "lone surrogate",
            "the type holds a lone surrogate",
        ),
        ({"id": 1.5, "text": "北京"}, WRONG_TYPE, '"id" should be a string'),
    ],
)
def test_every_bad_line_is_an_input_error_naming_file_and_line(tmp_path, row, kind, fragment):
    with pytest.raises(InputError) as e:
        read(tmp_path, {"id": "ok", "text": "好"}, row)
    assert e.value.kind == kind
    assert str(e.value).startswith(f"{tmp_path / 'data.json'}:2: ")
    assert fragment in str(e.value)


def test_without_a_schema_any_type_is_read(tmp_path):
    row = {"text": "北京", "label": {"city": {"北京": [[0, 1]]}}}
    assert read(tmp_path, row, schema=None) == {"line-1": [Entity("city", "北京", 0)]}


# ---- labels <-> decode round trips -------------------------------------------------------
def round_trip(windows: list[Encoded], scores: str = "dense") -> tuple[list[Entity], object]:
    ex = EntityExample("a", TEXT, tuple(GOLD), "t.json:1")
    labels, report = TASK.labels(ex, windows, SCHEMA)
    cells = [y["entity"] for y in labels]
    length = max(len(w) for w in windows)
    head = dense(cells, length) if scores == "dense" else factored(cells, length)
    offsets = [w.offsets for w in windows]
    parts = TASK.decode({"entity": head}, offsets, [TEXT] * len(windows), SCHEMA)
    return TASK.records(TASK.merge(parts, windows)), report


@pytest.mark.parametrize("scores", ["dense", "factored"])
def test_gold_decodes_back_from_perfect_scores_of_one_window(scores):
    found, report = round_trip([window(TEXT)], scores)
    assert found == GOLD
    assert (report.spans, report.dropped) == (7, 0)


def test_labels_are_type_id_and_token_cells():
    labels, _ = TASK.labels(EntityExample("a", TEXT, tuple(GOLD[:3])), [window(TEXT)], SCHEMA)
    assert labels == [{"entity": ((1, 1, 2), (2, 1, 4), (3, 1, 6))}]  # [CLS] is token 0


@pytest.mark.parametrize("scores", ["dense", "factored"])
def test_gold_decodes_back_over_two_overlapping_windows(scores):
    windows = [window(TEXT, 0, 13), window(TEXT, 8)]  # chars 8..12 in both
    labels, _ = TASK.labels(EntityExample("a", TEXT, tuple(GOLD)), windows, SCHEMA)
    assert (1, 10, 11) in labels[0]["entity"]  # 上海 (loc) is labelled in both windows
    assert (1, 2, 3) in labels[1]["entity"]
    found, report = round_trip(windows, scores)
    assert found == GOLD
    assert (report.spans, report.dropped) == (7, 0)


def test_a_span_cut_by_the_window_edge_is_counted_as_truncated():
    found, report = round_trip([window(TEXT, 0, 13)])  # 华为, 华为手机 lie past the window
    assert found == GOLD[:5]
    assert (report.spans, report.truncated, report.off_boundary) == (7, 2, 0)
    assert report.examples == ["t.json:1 com='华为'@14", "t.json:1 pro='华为手机'@14"]


def test_a_span_ending_inside_a_token_is_counted_as_off_boundary():
    text = "苹果iPhone13发布"
    offsets = [(0, 0), (0, 1), (1, 2), (2, 10), (10, 11), (11, 12), (0, 0)]
    gold = (Entity("com", "苹果", 0), Entity("pro", "iPhone", 2))
    labels, report = TASK.labels(
        EntityExample("a", text, gold), [Encoded([0] * 7, offsets)], SCHEMA
    )
    assert labels == [{"entity": ((4, 1, 2),)}]
    assert (report.spans, report.off_boundary, report.truncated) == (2, 1, 0)


def test_a_type_outside_the_schema_is_an_input_error_when_labelling():
    ex = EntityExample("a", "北京", (Entity("city", "北京", 0),), "t.json:3")
    with pytest.raises(InputError, match=r"^t\.json:3: entity type 'city'"):
        TASK.labels(ex, [window("北京")], SCHEMA)


# ---- decoder cases -------------------------------------------------------------------------
def decode_cells(text: str, *cells: tuple[str, int, int], pad: int = 0, **kwargs) -> list[Entity]:
    """Decode one sentence with POS on each (type, h, t) token cell."""
    enc = window(text)
    ids = tuple((SCHEMA.type_id(t), h, tail) for t, h, tail in cells)
    scores = dense([ids], len(enc) + pad)
    return TASK.decode({"entity": scores}, [enc.offsets], [text], SCHEMA, **kwargs)[0]


def test_two_nested_entities_of_two_types_both_come_out():
    #            肺 is char 4, token 5; 肺内病变 is tokens 5..8
    found = decode_cells("研究证实肺内病变程度", ("loc", 5, 5), ("pro", 5, 8))
    assert found == [Entity("loc", "肺", 4), Entity("pro", "肺内病变", 4)]


def test_overlapping_and_nested_entities_of_one_type_all_come_out():
    text = "南京市长江大桥"  # 南京市长 (pos) overlaps 长江大桥 (loc); 南京 inside 南京市 (loc)
    found = decode_cells(text, ("pos", 1, 4), ("loc", 4, 7), ("loc", 1, 2), ("loc", 1, 3))
    assert found == [
        Entity("loc", "南京", 0),
        Entity("loc", "南京市", 0),
        Entity("pos", "南京市长", 0),
        Entity("loc", "长江大桥", 3),
    ]


def test_cls_sep_and_padding_positions_are_never_a_head_or_tail():
    text = "上海很大"  # tokens: [CLS]=0, 上海很大 = 1..4, [SEP]=5, padding 6, 7
    cells = [("loc", 0, 0), ("loc", 0, 2), ("loc", 2, 5), ("loc", 5, 5), ("loc", 6, 7)]
    found = decode_cells(text, *cells, ("loc", 1, 2), ("per", 3, 6), pad=2)
    assert found == [Entity("loc", "上海", 0)]


def test_a_cell_with_head_after_tail_is_ignored():
    assert decode_cells("上海很大", ("loc", 2, 1), ("per", 4, 3)) == []
    offsets = [(0, 0), (0, 1), (0, 1), (1, 2), (0, 0)]  # 上 as two tokens (bytes, say)
    scores = dense([((1, 2, 1), (1, 1, 3))], 5)
    found = TASK.decode({"entity": scores}, [offsets], ["上海"], SCHEMA)
    assert found == [[Entity("loc", "上海", 0)]]


def test_a_flood_of_positive_cells_keeps_the_highest_max_candidates(caplog):
    text = "一" * 30
    enc = window(text)
    scores = torch.ones(1, len(SCHEMA), len(enc), len(enc))  # 6 * 465 real cells > 0
    scores[0, 2, 3, 5] = scores[0, 0, 1, 1] = 5.0
    with caplog.at_level(logging.WARNING):
        found = TASK.decode({"entity": scores}, [enc.offsets], [text], SCHEMA, max_candidates=10)
    assert len(found[0]) == 10
    assert {Entity("org", "一一一", 2), Entity("per", "一", 0)} <= set(found[0])
    assert "candidate entities scored above the threshold" in caplog.text
    again = TASK.decode({"entity": scores}, [enc.offsets], [text], SCHEMA, max_candidates=10)
    assert again == found  # same scores, same entities


def test_scores_for_another_number_of_types_are_refused():
    enc = window("上海")
    with pytest.raises(ValueError, match="3 entity scores per cell for 6 types"):
        TASK.decode({"entity": dense([()], len(enc), n=3)}, [enc.offsets], ["上海"], SCHEMA)


# ---- metrics --------------------------------------------------------------------------------
def test_metrics_by_hand_with_types_and_nested_entities():
    # gold: a = 北京 ⊂ 北京大学, 上海; b = 张伟.  pred: a = 北京 (right), 北京大学 as loc
    # (wrong type), 上海 twice (right, once counted); b = 张伟 (right), 伟 (wrong, inside 张伟)
    gold = {"a": [GOLD[0], GOLD[1], GOLD[4]], "b": [Entity("per", "张伟", 0)]}
    pred = {
        "a": [GOLD[0], Entity("loc", "北京大学", 0), GOLD[4], GOLD[4]],
        "b": [Entity("per", "张伟", 0), Entity("per", "伟", 1)],
    }
    m = TASK.evaluate(pred, gold)
    assert list(m) == ["entity", "entity/loc", "entity/org", "entity/per", "nested"]
    assert m["entity"] == PRF(3 / 5, 3 / 4, 2 * 3 / 9, 5, 4)
    assert m["entity/loc"] == PRF(2 / 3, 1.0, 0.8, 3, 2)
    assert m["entity/org"] == PRF(0.0, 0.0, 0.0, 0, 1)
    assert m["entity/per"] == PRF(0.5, 1.0, 2 / 3, 2, 1)
    # nested gold: 北京, 北京大学; nested pred: 北京, 北京大学 (loc), 张伟, 伟: one right
    assert m["nested"] == PRF(1 / 4, 1 / 2, 2 / 6, 4, 2)


def test_one_span_under_two_types_is_not_nested():
    same = {"a": [Entity("loc", "北京", 0), Entity("org", "北京", 0)]}
    assert TASK.evaluate(same, same)["nested"] == PRF(0.0, 0.0, 0.0, 0, 0)


# ---- output rows and scored files ---------------------------------------------------------
def test_an_output_row_reads_back_as_the_same_entities(tmp_path):
    ex = EntityExample("x1", TEXT, ())
    row = TASK.output_row(ex, GOLD)
    assert row["entities"][1] == {
        "entity": "北京大学",
        "label": "org",
        "start_offset": 0,
        "end_offset": 4,
    }
    assert read(tmp_path, row) == {"x1": GOLD}
    assert TASK.evaluate(read(tmp_path, row), {"x1": GOLD})["entity"].f1 == 1.0


def test_read_scored_reads_both_official_gold_formats(tmp_path):
    cluener = (
        '{"text": "浙商银行企业信贷部叶老桂博士", "label": {"name": {"叶老桂": [[9, 11]]}, '
        '"company": {"浙商银行": [[0, 3]]}}}'
    )
    cmeee = (
        '{"text": "研究证实肺内病变", "entities": [{"entity": "肺", "start_offset": 4, '
        '"end_offset": 5, "label": "bod"}, {"entity": "肺内病变", "start_offset": 4, '
        '"end_offset": 8, "label": "sym"}]}'
    )
    assert read(tmp_path, cluener, cmeee, schema=None) == {
        "line-1": [Entity("company", "浙商银行", 0), Entity("name", "叶老桂", 9)],
        "line-2": [Entity("bod", "肺", 4), Entity("sym", "肺内病变", 4)],
    }


@pytest.mark.skipif(not SHARED_DATA.exists(), reason="no ../shared/data")
@pytest.mark.parametrize(
    ("name", "schema", "n"), [("cluener", None, 3072), ("cmeee", "schema.json", 4017)]
)
def test_the_real_dev_files_read_whole(name, schema, n):
    folder = SHARED_DATA / name
    s = TASK.read_schema(folder / schema if schema else None, folder / "train.json")
    gold = TASK.read_scored(folder / "dev.json", s)
    assert sum(map(len, gold.values())) == n


# ---- the sample --------------------------------------------------------------------------------
def test_the_sample_reads_with_its_schema_and_train_covers_dev_characters():
    schema = TASK.read_schema(SAMPLE / "schema.json", None)
    train = TASK.read_scored(SAMPLE / "train.json", schema)
    dev = TASK.read_scored(SAMPLE / "dev.json", schema)
    assert len(train) >= 700 and len(dev) >= 100
    m = TASK.evaluate(train, train)
    assert m["nested"].n_gold > 100 and len(m) == 2 + len(schema)
    texts = [(SAMPLE / f"{s}.json").read_text("utf-8") for s in ("train", "dev")]
    chars = [{c for line in t.splitlines() for c in json.loads(line)["text"]} for t in texts]
    assert chars[1] <= chars[0]


def test_every_sample_dev_line_decodes_back_through_real_windows():
    """A char WordPiece tokenizer from the sample, windows of 16 tokens sharing 4: perfect
    scores per window give back every entity some window sees whole; the rest are counted."""
    from gplinker.data.alignment import encode_windows
    from gplinker.data.tokenizer import build_wordpiece_tokenizer

    schema = TASK.read_schema(SAMPLE / "schema.json", None)
    parse = TASK.parse(schema)
    train, dev = ((SAMPLE / f"{s}.json").read_text("utf-8").splitlines() for s in ("train", "dev"))
    tokenizer = build_wordpiece_tokenizer(json.loads(line)["text"] for line in train)
    examples = [parse(line, "dev.json", n, f"dev.json:{n}", None) for n, line in enumerate(dev, 1)]
    all_windows = encode_windows([ex.text for ex in examples], tokenizer, 16, 4)
    truncated = 0
    for ex, windows in zip(examples, all_windows, strict=True):
        labels, report = TASK.labels(ex, windows, schema)
        scores = dense([y["entity"] for y in labels], max(map(len, windows)))
        offsets, texts = [w.offsets for w in windows], [ex.text] * len(windows)
        parts = TASK.decode({"entity": scores}, offsets, texts, schema)
        whole = [e for e in ex.entities if any(w.sees(e.start, e.end) for w in windows)]
        assert TASK.merge(parts, windows) == whole
        assert report.spans == len(ex.entities) and report.off_boundary == 0
        assert report.truncated == len(ex.entities) - len(whole)
        truncated += report.truncated
    assert truncated > 0  # some entities are cut by every window that holds part of them
