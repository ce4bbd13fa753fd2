"""tasks/relation.py: schema files, DuIE lines and their errors, labels -> perfect scores ->
triples (the round trip, windows included), hand-made decoder cases, the triple metric."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch

from gplinker.data.alignment import Encoded
from gplinker.data.labels import HeadLabels
from gplinker.data.reader import BadLine, read_lines
from gplinker.errors import ConfigError, InputError
from gplinker.modeling.global_pointer import Factored, span_mask
from gplinker.tasks import get
from gplinker.tasks.relation import TASK, RelationExample, RelationSchema, Span, Triple

ROOT = Path(__file__).resolve().parents[1]
DUIE = ROOT.parent / "shared" / "data" / "duie"
SCHEMA = RelationSchema(
    [
        ("作者", "图书作品", "人物"),
        ("主演", "影视作品", "人物"),
        ("导演", "影视作品", "人物"),
        ("出生地", "人物", "地点"),
        ("父亲", "人物", "人物"),
    ]
)
NEG, POS = -10.0, 10.0


def char_offsets(text: str) -> list[tuple[int, int]]:
    """[CLS], one token per character, [SEP]."""
    return [(0, 0), *((i, i + 1) for i in range(len(text))), (0, 0)]


def window(text: str, start: int = 0, stop: int | None = None) -> Encoded:
    """The one-token-per-character window over chars [start, stop) of the text."""
    stop = len(text) if stop is None else stop
    offsets = [(0, 0), *((i, i + 1) for i in range(start, stop)), (0, 0)]
    return Encoded(list(range(len(offsets))), offsets, n_cut=len(text) - stop, skipped=start)


def tri(text: str, subject: str, predicate: str, obj: str) -> Triple:
    """The triple with each string at its first occurrence, types from SCHEMA."""
    spans = (Span(subject, text.index(subject)), Span(obj, text.index(obj)))
    return Triple(spans[0], predicate, spans[1], *SCHEMA.types(predicate))


def perfect_scores(labels: list[HeadLabels], length: int) -> dict[str, torch.Tensor]:
    """[B, H, L, L] per head: POS on every labelled cell, NEG elsewhere."""
    out = {}
    for spec in TASK.heads(SCHEMA):
        x = torch.full((len(labels), spec.num_labels, length, length), NEG, dtype=torch.float64)
        for b, window_labels in enumerate(labels):
            for label, h, t in window_labels[spec.name]:
                x[b, label, h, t] = POS
        out[spec.name] = x
    return out


class Maps:
    """Score maps of one sentence (one token per character), NEG until switched on."""

    def __init__(self, text: str):
        self.text, self.offsets = text, char_offsets(text)
        n, p = len(self.offsets), len(SCHEMA)
        self.scores = {
            "entity": torch.full((1, 2, n, n), NEG, dtype=torch.float64),
            "head": torch.full((1, p, n, n), NEG, dtype=torch.float64),
            "tail": torch.full((1, p, n, n), NEG, dtype=torch.float64),
        }

    def tokens(self, piece: str, start: int | None = None) -> tuple[int, int]:
        start = self.text.index(piece) if start is None else start
        return start + 1, start + len(piece)  # [CLS] is token 0

    def triple(self, subject: str, predicate: str, obj: str, *, tail: bool = True) -> None:
        (sh, st), (oh, ot) = self.tokens(subject), self.tokens(obj)
        p = SCHEMA.predicate_id(predicate)
        self.scores["entity"][0, 0, sh, st] = self.scores["entity"][0, 1, oh, ot] = POS
        self.scores["head"][0, p, sh, oh] = POS
        if tail:
            self.scores["tail"][0, p, st, ot] = POS

    def decode(self, **kwargs: int) -> list[Triple]:
        return TASK.decode(self.scores, [self.offsets], [self.text], SCHEMA, **kwargs)[0]


# ---- the task and its schema -------------------------------------------------------------------
def test_the_registry_gives_the_relation_task_with_its_heads_in_order():
    assert get("relation") is TASK
    assert (TASK.name, TASK.main_metric, TASK.record_key) == ("relation", "triple", "spo_list")
    heads = TASK.heads(SCHEMA)
    assert [(h.name, h.num_labels, h.rope, h.ordered) for h in heads] == [
        ("entity", 2, True, True),
        ("head", 5, False, False),
        ("tail", 5, False, False),
    ]


def test_duie_schema_lines_and_schema_json_round_trip(tmp_path):
    lines = [
        {"object_type": "人物", "predicate": "作者", "subject_type": "图书作品"},
        {"object_type": {"@value": "人物"}, "predicate": "主演", "subject_type": "影视作品"},
        {"object_type": "人物", "predicate": "主演", "subject_type": "电视综艺"},  # again: one
    ]
    path = tmp_path / "all_schemas"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in lines) + "\n\n")
    schema = RelationSchema.from_file(path)
    assert schema.predicates == (("作者", "图书作品", "人物"), ("主演", "影视作品", "人物"))
    assert (len(schema), schema.predicate_id("主演"), schema.types("作者")) == (
        2,
        1,
        ("图书作品", "人物"),
    )
    SCHEMA.to_file(tmp_path / "schema.json")
    again = RelationSchema.from_file(tmp_path / "schema.json")
    assert again == SCHEMA and hash(again) == hash(SCHEMA) and again != schema


@pytest.mark.skipif(not DUIE.exists(), reason="needs ../shared/data/duie")
def test_duie_all_50_schemas_has_49_predicates_as_the_reference_counts():
    schema = RelationSchema.from_file(DUIE / "all_50_schemas")
    assert len(schema) == 49 and schema.types("成立日期") == ("机构", "Date")


ROW = '{"predicate": "作者", "subject_type": "书", "object_type": "人"}'


@pytest.mark.parametrize(
    ("content", "line", "says"),
    [
        (ROW + '\n{"predicate": ', 2, "invalid JSON"),
        (ROW + "\n\n[1]\n", 3, '"predicate" is missing'),
        (ROW.replace('"书"', "3"), 1, '"subject_type" is a number'),
        (ROW.replace('"作者"', '""'), 1, '"predicate" is a string'),
        ('{"predicates": [{"predicate": "作者"}]}', None, '"subject_type" is missing'),
        ('{"predicates": [\n{"predicate": "作者",}]}', 2, "invalid JSON"),
        ("\n\n", None, "lists no predicates"),
    ],
)
def test_a_bad_schema_file_names_file_and_line(tmp_path, content, line, says):
    path = tmp_path / "all_schemas"
    path.write_text(content)
    with pytest.raises(InputError, match=says) as e:
        RelationSchema.from_file(path)
    assert str(e.value).startswith(f"{path}:{line}:" if line else f"{path}: ")


def test_a_relation_schema_file_is_required():
    with pytest.raises(ConfigError, match=r"data\.schema_file"):
        TASK.read_schema(None, Path("train.json"))


# ---- reading lines -----------------------------------------------------------------------------
TEXT = "《三体》是刘慈欣创作的科幻小说，刘慈欣出生于北京"


def spo(subject: str = "三体", predicate: str = "作者", obj: object = "刘慈欣", **more) -> dict:
    return {"predicate": predicate, "subject": subject, "object": obj, **more}


def parse(row: dict, schema: RelationSchema | None = SCHEMA) -> RelationExample:
    line = json.dumps(row, ensure_ascii=False)
    return TASK.parse(schema)(line, "train.json", 7, "train.json:7", None)


def test_duie_1_strings_are_placed_at_their_first_occurrence_with_types_from_line_or_schema():
    ex = parse(
        {
            "text": TEXT,
            "spo_list": [
                spo(subject_type="书", object_type="作家"),
                spo("刘慈欣", "出生地", "北京"),
                spo(),  # listed twice (types from the schema): one triple
                spo("刘慈欣", "出生地", "北京"),
            ],
        }
    )
    assert (ex.id, ex.text, ex.where) == ("line-7", TEXT, "train.json:7")
    assert ex.triples == (
        Triple(Span("三体", 1), "作者", Span("刘慈欣", 5), "书", "作家"),
        Triple(Span("刘慈欣", 5), "出生地", Span("北京", 22), "人物", "地点"),
        Triple(Span("三体", 1), "作者", Span("刘慈欣", 5), "图书作品", "人物"),
    )
    assert TASK.gold(ex) == list(ex.triples)


def test_given_starts_duie_2_values_and_integer_ids_are_read():
    row = {
        "id": 12,
        "text": TEXT,
        "spo_list": [
            spo("刘慈欣", "出生地", {"@value": "北京"}, subject_start_index=16),
            spo(object={"@value": "刘慈欣"}, object_type={"@value": "人物"}),
        ],
    }
    ex = parse(row)
    assert ex.id == "12"
    assert ex.triples == (
        Triple(Span("刘慈欣", 16), "出生地", Span("北京", 22), "人物", "地点"),
        Triple(Span("三体", 1), "作者", Span("刘慈欣", 5), "图书作品", "人物"),
    )


def test_a_string_absent_from_the_text_is_found_ignoring_case_or_kept_unplaced():
    ex = parse(
        {
            "text": "《Java程序设计教程》作者是张三",
            "spo_list": [spo("java程序设计教程", obj="张三"), spo(obj="李四")],
        }
    )
    assert [(t.subject, t.object) for t in ex.triples] == [
        (Span("Java程序设计教程", 1), Span("张三", 15)),
        (Span("三体", None), Span("李四", None)),
    ]
    assert Span("三体", None).end is None and Span("Java", 1).end == 5


def test_without_spo_list_or_schema_a_line_still_reads():
    assert parse({"id": "p1", "text": TEXT}).triples == ()
    ex = parse({"text": TEXT, "spo_list": [spo(predicate="不在表中")]}, schema=None)
    assert ex.triples == (Triple(Span("三体", 1), "不在表中", Span("刘慈欣", 5)),)


GOOD = {"id": "a", "text": TEXT, "spo_list": [spo()]}


def spos(*items: object) -> dict:
    return {"text": TEXT, "spo_list": list(items)}


@pytest.mark.parametrize(
    ("line", "kind", "says"),
    [
        ("{not json", "invalid JSON", "invalid JSON"),
        ("[1]", "not a JSON object", "expected a JSON object"),
        ({"spo_list": []}, "missing field", '"text" is missing'),
        ({"text": 5}, "wrong type", '"text" should be a string'),
        ({"id": 1.5, "text": TEXT}, "wrong type", '"id" should be a string'),
        ({"id": True, "text": TEXT}, "wrong type", '"id" should be a string'),
        ({"text": TEXT, "spo_list": {}}, "wrong type", '"spo_list" should be a list'),
        (spos(5), "wrong type", r"spo_list\[0\] should be an object"),
        (spos({"subject": "三体", "object": "刘慈欣"}), "missing field", '"predicate" is missing'),
        (spos(spo(predicate=3)), "wrong type", '"predicate" should be a string'),
        (spos(spo(predicate="")), "empty predicate", '"predicate" is empty'),
        (spos(spo(), spo(predicate="妻子")), "unknown predicate", r"\[1\]: predicate '妻子'"),
        (spos({"predicate": "作者", "object": "刘慈欣"}), "missing field", '"subject" is missing'),
        (spos(spo(obj=["刘慈欣"])), "wrong type", '"object" should be a string'),
        (spos(spo(obj={"@value": 3})), "wrong type", r'\.object: "@value" should be a string'),
        (spos(spo(obj={"value": "刘慈欣"})), "missing field", '"@value" is missing'),
        (spos(spo(subject="")), "empty span", '"subject" is empty'),
        (spos(spo(subject="\ud800")), "lone surrogate", "lone surrogate"),
        (spos(spo(subject_type=5)), "wrong type", '"subject_type" should be a string'),
        (spos(spo(subject_start_index="1")), "wrong type", "should be an integer"),
        (spos(spo(object_start_index=True)), "wrong type", "should be an integer"),
        (spos(spo(subject_start_index=0)), "span mismatch", r"text\[0:2\] is '《三'"),
        (spos(spo(object_start_index=-1)), "span mismatch", '"object" is'),
        (GOOD, "duplicate id", "already used on line 1"),
    ],
)
def test_each_kind_of_bad_line_names_file_and_line(tmp_path, line, kind, says):
    path = tmp_path / "train.json"
    bad = line if isinstance(line, str) else json.dumps(line)  # \u escapes: a lone surrogate too
    path.write_text(json.dumps(GOOD, ensure_ascii=False) + "\n" + bad + "\n", encoding="utf-8")
    good, item = read_lines(path, parse=TASK.parse(SCHEMA))
    assert isinstance(good, RelationExample) and isinstance(item, BadLine)
    assert str(item.error).startswith(f"{path}:2: ")
    assert item.error.kind == kind
    with pytest.raises(InputError, match=says):
        TASK.read_scored(path, SCHEMA)


# ---- labels and the round trip ------------------------------------------------------------------
ROUND = "周星驰自导自演的《功夫》里，元秋的父亲是元华，元华出生于上海"


def round_trip_gold() -> list[Triple]:
    return [
        tri(ROUND, "功夫", "导演", "周星驰"),  # two predicates on one pair, the object first
        tri(ROUND, "功夫", "主演", "周星驰"),
        tri(ROUND, "功夫", "主演", "元秋"),  # one subject, two objects
        tri(ROUND, "元秋", "父亲", "元华"),
        tri(ROUND, "元华", "出生地", "上海"),
    ]


def test_labels_of_one_window_are_the_hand_written_cells():
    ex = RelationExample(
        "r", ROUND, (tri(ROUND, "功夫", "导演", "周星驰"), tri(ROUND, "元秋", "父亲", "元华"))
    )
    (labels,), report = TASK.labels(ex, [window(ROUND)], SCHEMA)
    # tokens (char + 1): 周星驰 1-3, 功夫 10-11, 元秋 15-16, 元华 21-22 (its first occurrence)
    assert labels == {
        "entity": ((0, 10, 11), (0, 15, 16), (1, 1, 3), (1, 21, 22)),
        "head": ((2, 10, 1), (4, 15, 21)),  # 导演 = 2 links 功 to 周, an object before it
        "tail": ((2, 11, 3), (4, 16, 22)),
    }
    assert (report.spans, report.dropped) == (2, 0)


def test_gold_labels_as_perfect_scores_decode_back_to_the_gold_triples():
    gold = round_trip_gold()
    ex = RelationExample("r", ROUND, tuple(gold))
    (labels,), report = TASK.labels(ex, [window(ROUND)], SCHEMA)
    assert (report.spans, report.dropped) == (5, 0)
    scores = perfect_scores([labels], len(window(ROUND)))
    found = TASK.decode(scores, [char_offsets(ROUND)], [ROUND], SCHEMA)
    assert TASK.records(TASK.merge(found, [window(ROUND)])) == sorted(gold)


def test_a_text_over_two_windows_gives_its_triples_once_and_counts_the_unseen():
    text = "元秋的父亲是元华，梁朝伟出生于上海，周星驰出生于香港"
    gold = [
        tri(text, "元秋", "父亲", "元华"),  # window 1 only
        tri(text, "梁朝伟", "出生地", "上海"),  # both windows
        tri(text, "周星驰", "出生地", "香港"),  # window 2 only
        tri(text, "元秋", "出生地", "香港"),  # no window sees both: truncated
    ]
    windows = [window(text, 0, 18), window(text, 9, len(text))]
    assert windows[0].n_cut == 8 and windows[1].skipped == 9
    labels, report = TASK.labels(
        RelationExample("w", text, tuple(gold), "dev.json:3"), windows, SCHEMA
    )
    assert (report.spans, report.truncated, report.off_boundary, report.not_found) == (4, 1, 0, 0)
    assert report.examples == ["dev.json:3 元秋|出生地|香港"]
    scores = perfect_scores(labels, max(map(len, windows)))
    offsets = [w.offsets for w in windows]  # the second is one shorter: padding
    parts = TASK.decode(scores, offsets, [text, text], SCHEMA)
    assert parts[0] == sorted(gold[:2]) and parts[1] == sorted(gold[1:3])
    assert TASK.merge(parts, windows) == sorted(gold[:3])


def test_a_span_cut_by_the_window_edge_inside_a_token_or_absent_is_counted_not_labelled():
    text = "张三丰出生于武当山，李四出生于北京"
    one = window(text, 0, 11)  # sees 张三丰出生于武当山，李, not 四 or 北京
    # 张三丰 as one token: "张三" ends inside it
    one = Encoded(one.input_ids[:-2], [(0, 0), (0, 3), *one.offsets[4:]], one.n_cut)
    gold = (
        tri(text, "张三丰", "出生地", "武当山"),
        tri(text, "张三", "出生地", "武当山"),  # off boundary
        tri(text, "李四", "出生地", "北京"),  # truncated
        Triple(Span("王五", None), "出生地", Span("北京", 15)),  # not found
    )
    (labels,), report = TASK.labels(RelationExample("c", text, gold, "x:1"), [one], SCHEMA)
    assert labels["entity"] == ((0, 1, 1), (1, 5, 7)) and labels["head"] == ((3, 1, 5),)
    assert (report.spans, report.off_boundary, report.truncated, report.not_found) == (4, 1, 1, 1)
    assert report.dropped == 3 and len(report.examples) == 3


# ---- decoder cases on hand-made scores ----------------------------------------------------------
def test_a_subject_with_two_objects_gives_two_triples():
    m = Maps("《功夫》由周星驰和元秋主演")
    m.triple("功夫", "主演", "周星驰")
    m.triple("功夫", "主演", "元秋")
    assert m.decode() == sorted(
        [tri(m.text, "功夫", "主演", "周星驰"), tri(m.text, "功夫", "主演", "元秋")]
    )


def test_two_predicates_on_one_pair_give_two_triples():
    m = Maps("《功夫》由周星驰自导自演")
    m.triple("功夫", "导演", "周星驰")
    m.triple("功夫", "主演", "周星驰")
    assert m.decode() == [
        tri(m.text, "功夫", "主演", "周星驰"),
        tri(m.text, "功夫", "导演", "周星驰"),
    ]


def test_an_object_before_its_subject_is_linked_below_the_diagonal():
    m = Maps("刘慈欣写了《三体》")
    m.triple("三体", "作者", "刘慈欣")
    assert m.scores["head"][0, 0, 7, 1] == POS  # (p, sh, oh) with oh < sh
    assert m.decode() == [Triple(Span("三体", 6), "作者", Span("刘慈欣", 0), "图书作品", "人物")]


def test_a_head_link_without_its_tail_link_gives_nothing():
    m = Maps("刘慈欣写了《三体》")
    m.triple("三体", "作者", "刘慈欣", tail=False)
    assert m.decode() == []


def test_one_span_may_be_subject_and_object_of_a_triple():
    m = Maps("阿凡达上映")
    m.triple("阿凡达", "导演", "阿凡达")
    assert m.decode() == [Triple(Span("阿凡达", 0), "导演", Span("阿凡达", 0), "影视作品", "人物")]


def test_special_tokens_and_reversed_spans_are_no_candidates():
    m = Maps("刘慈欣写了《三体》")
    m.triple("三体", "作者", "刘慈欣")
    n = len(m.offsets)
    for x in m.scores.values():
        x[0, :, 0, :] = x[0, :, :, 0] = x[0, :, n - 1, :] = x[0, :, :, n - 1] = POS  # [CLS], [SEP]
    m.scores["entity"][0, :, 3, 1] = POS  # t < h
    assert m.decode() == [tri(m.text, "三体", "作者", "刘慈欣")]


def test_a_flood_of_positive_cells_stays_bounded_and_warns(caplog):
    m = Maps("周星驰自导自演的《功夫》里，元秋的父亲是元华")
    for x in m.scores.values():
        x.fill_(POS)
    with caplog.at_level(logging.WARNING):
        found = m.decode(max_candidates=8)
    assert 0 < len(found) <= 8
    for what in ("candidate subjects", "candidate objects", "candidate triples"):
        assert what in caplog.text


def test_factored_scores_decode_as_their_dense_form_without_building_it(monkeypatch):
    g = torch.Generator().manual_seed(2)  # seeds 0 and 1 leave the second sentence empty
    texts = ["刘慈欣写了", "三体"]
    offsets = [char_offsets(t) for t in texts]
    attention = torch.tensor([[1] * 7, [1] * 4 + [0] * 3])

    def parts(h: int, ordered: bool) -> Factored:
        def draw(*shape: int) -> torch.Tensor:  # integers: both sums are exact
            return torch.randint(-2, 4, shape, generator=g).double()

        return Factored(
            draw(2, 7, 7), draw(2, 7, h), draw(2, 7, h), span_mask(attention, ordered)[:, 0]
        )

    factored = {"entity": parts(2, True), "head": parts(5, False), "tail": parts(5, False)}
    dense = {name: f.dense() for name, f in factored.items()}
    expected = TASK.decode(dense, offsets, texts, SCHEMA, max_candidates=10**6)
    monkeypatch.setattr(Factored, "dense", lambda self: pytest.fail("built [B, H, L, L]"))
    assert TASK.decode(factored, offsets, texts, SCHEMA, max_candidates=10**6) == expected
    assert expected[0] and expected[1]


# ---- metrics and files ------------------------------------------------------------------------
def test_triple_metric_matches_strings_not_offsets_over_every_id():
    a, b = tri(TEXT, "三体", "作者", "刘慈欣"), tri(TEXT, "刘慈欣", "出生地", "北京")
    moved = Triple(Span("刘慈欣", 16), "出生地", Span("北京", 22))  # b's strings elsewhere
    pred = {"1": [a, b, moved], "2": [a]}
    gold = {"1": [b], "3": [a, b]}
    out = TASK.evaluate(pred, gold)
    assert list(out) == ["triple", "triple/作者", "triple/出生地"]
    # pred {1:a, 1:b, 2:a}; gold {1:b, 3:a, 3:b}: one hit
    assert (out["triple"].n_pred, out["triple"].n_gold, out["triple"].f1) == (3, 3, 1 / 3)
    assert (out["triple/作者"].precision, out["triple/作者"].recall) == (0.0, 0.0)
    birth = out["triple/出生地"]
    assert (birth.precision, birth.recall, birth.f1, birth.n_pred, birth.n_gold) == (
        1.0,
        0.5,
        2 / 3,
        1,
        2,
    )


def test_output_rows_read_back_as_the_same_triples(tmp_path):
    ex = parse({"id": "o1", "text": TEXT})
    found = [
        tri(TEXT, "三体", "作者", "刘慈欣"),
        Triple(Span("刘慈欣", 16), "出生地", Span("北京", 22), "人物", "地点"),
    ]
    row = TASK.output_row(ex, found)
    assert row["spo_list"][1] == {
        "subject": "刘慈欣", "subject_type": "人物", "predicate": "出生地", "object": "北京",
        "object_type": "地点", "subject_start_index": 16, "object_start_index": 22,
    }  # fmt: skip
    path = tmp_path / "pred.json"
    path.write_text(json.dumps(row, ensure_ascii=False) + "\n", encoding="utf-8")
    assert TASK.read_scored(path, SCHEMA) == {"o1": tuple(found)}


def test_read_scored_reads_the_official_gold_format(tmp_path):
    official = {"predicate": "作者", "object_type": "人物", "subject_type": "图书作品"}
    rows = [
        {"text": TEXT, "spo_list": [{**official, "object": "刘慈欣", "subject": "三体"}]},
        {"text": "周星驰出生于香港", "spo_list": []},
    ]
    path = tmp_path / "dev.json"
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )
    gold = TASK.read_scored(path, SCHEMA)
    assert gold == {"line-1": (tri(TEXT, "三体", "作者", "刘慈欣"),), "line-2": ()}
    assert TASK.evaluate(gold, gold)["triple"].f1 == 1.0


@pytest.mark.skipif(not DUIE.exists(), reason="needs ../shared/data/duie")
def test_duie_dev_reads_whole_with_every_string_placed():
    gold = TASK.read_scored(DUIE / "dev.json", RelationSchema.from_file(DUIE / "all_50_schemas"))
    triples = [t for ts in gold.values() for t in ts]
    assert (len(gold), len(triples)) == (1191, 2500)
    assert all(t.subject.start is not None and t.object.start is not None for t in triples)


def test_the_relation_sample_reads_whole_and_every_triple_is_a_label():
    sample = ROOT / "data" / "sample-relation"
    schema = TASK.read_schema(sample / "all_schemas", None)
    assert len(schema) == 7
    for split, n_lines in (("train", 800), ("dev", 150)):
        examples = list(read_lines(sample / f"{split}.json", parse=TASK.parse(schema)))
        assert len(examples) == n_lines and all(isinstance(ex, RelationExample) for ex in examples)
        for ex in examples:
            _, report = TASK.labels(ex, [window(ex.text)], schema)
            assert report.dropped == 0, report.examples
