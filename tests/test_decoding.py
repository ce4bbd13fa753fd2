"""decode(): hand-made score maps (-10 everywhere, +10 where a span or link is meant) -> events."""

from __future__ import annotations

import itertools
import logging

import torch
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from gplinker.decoding import decode, decode_batch
from gplinker.schema import TRIGGER, Argument, Event, Schema

LAYOFF, DEAL = "组织关系-裁员", "财经/交易-出售/收购"
SCHEMA = Schema({LAYOFF: ["裁员方", "裁员人数"], DEAL: ["出售方", "收购方"]})
NEG, POS = -10.0, 10.0


def char_offsets(text: str) -> list[tuple[int, int]]:
    """[CLS], one token per character except runs of digits ('4000' is one token), [SEP]."""
    offsets, i = [(0, 0)], 0
    while i < len(text):
        j = i + 1
        while text[i].isdigit() and j < len(text) and text[j].isdigit():
            j += 1
        offsets.append((i, j))
        i = j
    return [*offsets, (0, 0)]


class Scores:
    """Score maps for one sentence, all NEG until spans and their links are switched on."""

    def __init__(self, text: str, offsets: list[tuple[int, int]] | None = None, pad: int = 0):
        self.text = text
        self.offsets = offsets if offsets is not None else char_offsets(text)
        n = len(self.offsets) + pad  # L, with `pad` padding positions past the offsets
        self.argu = torch.full((len(SCHEMA.labels), n, n), NEG, dtype=torch.float64)
        self.head = torch.full((n, n), NEG, dtype=torch.float64)
        self.tail = torch.full((n, n), NEG, dtype=torch.float64)

    def span(self, piece: str, start: int | None = None) -> tuple[int, int]:
        start = self.text.index(piece) if start is None else start
        end = start + len(piece)
        h = next(i for i, (s, e) in enumerate(self.offsets) if s == start and s < e)
        t = next(i for i, (s, e) in enumerate(self.offsets) if e == end and s < e)
        return h, t

    def event(self, event_type: str, *args: tuple[str, str] | tuple[str, int, int]) -> None:
        """Switch on each (role, piece) or (role, h, t) and the links between all of them."""
        cells = []
        for role, *where in args:
            h, t = self.span(where[0]) if len(where) == 1 else where
            self.argu[SCHEMA.label_id(event_type, role), h, t] = POS
            cells.append((h, t))
        for (h1, t1), (h2, t2) in itertools.combinations(cells, 2):
            self.head[min(h1, h2), max(h1, h2)] = POS
            self.tail[min(t1, t2), max(t1, t2)] = POS

    def decode(self, **kwargs) -> list[Event]:
        return decode(self.argu, self.head, self.tail, self.offsets, self.text, SCHEMA, **kwargs)


def ev(event_type: str, *args: tuple[str, str, int]) -> Event:
    return Event(event_type, frozenset(Argument(*a) for a in args))


def test_two_events_of_one_type_sharing_an_argument_give_two_events():
    s = Scores("雀巢和苹果各裁员100人")
    s.event(LAYOFF, (TRIGGER, "裁员"), ("裁员方", "雀巢"), ("裁员人数", "100人"))
    s.event(LAYOFF, (TRIGGER, "裁员"), ("裁员方", "苹果"), ("裁员人数", "100人"))
    trigger, number = (TRIGGER, "裁员", 6), ("裁员人数", "100人", 8)
    assert s.decode() == [
        ev(LAYOFF, trigger, ("裁员方", "苹果", 3), number),
        ev(LAYOFF, trigger, ("裁员方", "雀巢", 0), number),
    ]


def test_a_head_link_without_its_tail_link_does_not_join_two_spans():
    s = Scores("雀巢和苹果各裁员100人")
    s.event(LAYOFF, (TRIGGER, "裁员"), ("裁员方", "雀巢"), ("裁员人数", "100人"))
    s.event(LAYOFF, (TRIGGER, "裁员"), ("裁员方", "苹果"), ("裁员人数", "100人"))
    (h1, _), (h2, _) = s.span("雀巢"), s.span("苹果")
    s.head[h1, h2] = POS  # heads of 雀巢 and 苹果 linked, tails not: still two events
    assert len(s.decode()) == 2
    s.tail[h1 + 1, h2 + 1] = POS  # both links: one event with both firms
    assert s.decode() == [
        ev(
            LAYOFF,
            (TRIGGER, "裁员", 6),
            ("裁员方", "雀巢", 0),
            ("裁员方", "苹果", 3),
            ("裁员人数", "100人", 8),
        )
    ]


def test_two_event_types_in_one_sentence_with_cross_type_links_stay_apart():
    s = Scores("雀巢裁员后被苹果收购")
    s.event(LAYOFF, (TRIGGER, "裁员"), ("裁员方", "雀巢"))
    s.event(DEAL, (TRIGGER, "收购"), ("出售方", "雀巢"), ("收购方", "苹果"))
    assert s.decode() == [
        ev(LAYOFF, (TRIGGER, "裁员", 2), ("裁员方", "雀巢", 0)),
        ev(DEAL, (TRIGGER, "收购", 8), ("出售方", "雀巢", 0), ("收购方", "苹果", 6)),
    ]


def test_a_lone_trigger_is_an_event_with_only_the_trigger():
    s = Scores("雀巢裁员")
    s.event(LAYOFF, (TRIGGER, "裁员"))
    assert s.decode() == [ev(LAYOFF, (TRIGGER, "裁员", 2))]


def test_an_event_without_a_trigger_is_dropped():
    s = Scores("雀巢裁员4000人，苹果收购英特尔")
    s.event(LAYOFF, (TRIGGER, "裁员"), ("裁员方", "雀巢"))
    s.event(LAYOFF, ("裁员人数", "4000人"))  # linked to nothing, no trigger
    s.event(DEAL, ("出售方", "英特尔"), ("收购方", "苹果"))  # a clique of its own, no trigger
    assert s.decode() == [ev(LAYOFF, (TRIGGER, "裁员", 2), ("裁员方", "雀巢", 0))]


def test_an_event_mapping_to_a_subset_of_another_is_dropped_when_two_tokens_share_a_char():
    # the tokenizer split '员' into two pieces with the same offsets, so token spans (3, 4)
    # and (3, 5) are both the text '裁员': the clique through (3, 5) maps to a proper subset
    text = "雀巢裁员"
    offsets = [(0, 0), (0, 1), (1, 2), (2, 3), (3, 4), (3, 4), (0, 0)]
    s = Scores(text, offsets)
    s.event(LAYOFF, (TRIGGER, 3, 4), ("裁员方", 1, 2))
    s.event(LAYOFF, (TRIGGER, 3, 5))
    assert s.decode() == [ev(LAYOFF, (TRIGGER, "裁员", 2), ("裁员方", "雀巢", 0))]


def test_cls_sep_and_padding_rows_and_columns_are_never_spans():
    s = Scores("雀巢裁员", pad=2)  # L = 6 tokens + 2 padding positions
    s.event(LAYOFF, (TRIGGER, "裁员"), ("裁员方", "雀巢"))
    cls, sep, pad = 0, 5, 7
    trig = SCHEMA.label_id(LAYOFF, TRIGGER)
    role = SCHEMA.label_id(LAYOFF, "裁员方")
    s.argu[:, cls, :] = POS
    s.argu[:, :, sep] = POS
    s.argu[:, pad, pad] = POS
    s.argu[:, 6, 7] = POS
    s.argu[SCHEMA.label_id(DEAL, TRIGGER), cls, cls] = POS
    s.head[:] = s.tail[:] = POS  # links everywhere: only the spans can keep things apart
    assert s.argu[trig, 3, 4] == s.argu[role, 1, 2] == POS
    assert s.decode() == [ev(LAYOFF, (TRIGGER, "裁员", 2), ("裁员方", "雀巢", 0))]


def test_a_multi_character_token_maps_to_its_characters():
    s = Scores("雀巢裁4000人")
    assert s.offsets[4] == (3, 7)
    s.event(LAYOFF, (TRIGGER, "裁"), ("裁员人数", 4, 4), ("裁员方", "雀巢"))
    assert s.decode() == [
        ev(LAYOFF, (TRIGGER, "裁", 2), ("裁员人数", "4000", 3), ("裁员方", "雀巢", 0))
    ]


def test_an_untrained_flood_is_cut_to_max_candidates_and_logged(caplog):
    # H = 282 as on DuEE (47 types x (trigger + 5 roles)), L = 64, every score and link positive
    schema = Schema({f"T{k}": [f"r{j}" for j in range(5)] for k in range(47)})
    assert len(schema.labels) == 282
    text = "".join(chr(0x4E00 + i) for i in range(62))
    offsets = [(0, 0), *((i, i + 1) for i in range(62)), (0, 0)]
    g = torch.Generator().manual_seed(0)
    argu = torch.rand(282, 64, 64, generator=g) + 0.1
    head, tail = torch.rand(64, 64, generator=g) + 0.1, torch.rand(64, 64, generator=g) + 0.1
    # reference: the 256 best (label, h, t) with h <= t on the 62 real tokens
    h_idx, t_idx = torch.triu_indices(62, 62) + 1  # [2, 1953]
    best = argu[:, h_idx, t_idx].flatten().topk(256).indices  # over [282 * 1953]
    labs, cells = (best // len(h_idx)).tolist(), (best % len(h_idx)).tolist()
    allowed = {
        (schema.labels[lab][0], Argument(schema.labels[lab][1], text[h - 1 : t], h - 1))
        for lab, h, t in zip(labs, h_idx[cells].tolist(), t_idx[cells].tolist(), strict=True)
    }
    n_positive = 282 * len(h_idx)
    with caplog.at_level(logging.WARNING, logger="gplinker.decoding"):
        events = decode(argu, head, tail, offsets, text, schema, max_candidates=256)
    assert events
    assert all((e.event_type, a) in allowed for e in events for a in e.arguments)
    assert f"dropped {n_positive - 256}" in caplog.text
    assert len(caplog.records) == 1


def test_max_events_per_type_caps_a_clique_explosion_and_logs(caplog):
    # one trigger linked to everything, two roles of 6 spans each, no link inside a role:
    # 6 x 6 = 36 maximal cliques, cut to 5
    s = Scores("裁" + "甲乙丙丁戊己" + "子丑寅卯辰巳")
    trig = s.span("裁")
    firms, numbers = [s.span(c) for c in "甲乙丙丁戊己"], [s.span(c) for c in "子丑寅卯辰巳"]
    for f, n in itertools.product(firms, numbers):
        s.event(LAYOFF, (TRIGGER, *trig), ("裁员方", *f), ("裁员人数", *n))
    assert len(s.decode()) == 36
    with caplog.at_level(logging.WARNING, logger="gplinker.decoding"):
        events = s.decode(max_events_per_type=5)
    assert len(events) == 5
    assert all(len(e.arguments) == 3 for e in events)
    assert "stopped at 5 cliques" in caplog.text


def test_same_scores_give_the_same_output_even_with_tied_scores_under_the_cap():
    g = torch.Generator().manual_seed(1)
    s = Scores("雀巢和苹果各裁员100人")
    s.argu = torch.where(torch.rand(s.argu.shape, generator=g) < 0.2, 1.0, -1.0).double()
    s.head = torch.where(torch.rand(s.head.shape, generator=g) < 0.5, 1.0, -1.0).double()
    s.tail = torch.where(torch.rand(s.tail.shape, generator=g) < 0.5, 1.0, -1.0).double()
    first = s.decode(max_candidates=20)
    assert first
    assert s.decode(max_candidates=20) == first
    assert first == sorted(first, key=lambda e: (e.event_type, sorted(e.arguments)))


def test_decode_batch_with_padding_and_half_precision_matches_decode_per_sentence():
    a = Scores("雀巢裁员后被苹果收购")
    a.event(LAYOFF, (TRIGGER, "裁员"), ("裁员方", "雀巢"))
    a.event(DEAL, (TRIGGER, "收购"), ("出售方", "雀巢"), ("收购方", "苹果"))
    b = Scores("苹果裁员", pad=len(a.offsets) - 6)
    b.event(LAYOFF, (TRIGGER, "裁员"), ("裁员方", "苹果"))
    b.argu[:, 6:, 6:] = POS  # padding scores must not matter
    argu = torch.stack([a.argu, b.argu]).half()  # [B, H, L, L]
    head = torch.stack([a.head, b.head])[:, None].half()  # [B, 1, L, L]
    tail = torch.stack([a.tail, b.tail])[:, None].half()
    out = decode_batch(argu, head, tail, [a.offsets, b.offsets], [a.text, b.text], SCHEMA)
    assert out == [a.decode(), b.decode()]
    assert out[1] == [ev(LAYOFF, (TRIGGER, "裁员", 2), ("裁员方", "苹果", 0))]


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(2, 5), st.floats(0.05, 0.5), st.floats(0.3, 0.9))
@example(seed=100000000, n_chars=5, p_span=0.5, p_link=0.75)  # reaches the clique cap
def test_random_scores_give_exactly_the_maximal_linked_sets_through_a_trigger(
    seed, n_chars, p_span, p_link
):
    g = torch.Generator().manual_seed(seed)
    text = "雀巢裁员苹果"[:n_chars]
    s = Scores(text)
    n = len(s.offsets)
    s.argu = torch.where(torch.rand(s.argu.shape, generator=g) < p_span, 1.0, -1.0).double()
    s.head = torch.where(torch.rand(n, n, generator=g) < p_link, 1.0, -1.0).double()
    s.tail = torch.where(torch.rand(n, n, generator=g) < p_link, 1.0, -1.0).double()
    # no clique cap: the property holds only when every maximal clique is kept (the cap
    # has its own tests; hypothesis found 5 characters with p_link 0.75 that reach it)
    events = s.decode(max_events_per_type=1_000_000)

    # plain reference: candidates by loops over labels and real tokens 1..n_chars (h <= t)
    cands = {
        (lab, h, t)
        for lab in range(len(SCHEMA.labels))
        for h in range(1, n_chars + 1)
        for t in range(h, n_chars + 1)
        if s.argu[lab, h, t] > 0
    }

    def node(event_type: str, a: Argument) -> tuple[int, int, int]:
        return SCHEMA.label_id(event_type, a.role), a.start + 1, a.start + len(a.text)

    def linked(x: tuple[int, int, int], y: tuple[int, int, int]) -> bool:
        return bool(
            s.head[min(x[1], y[1]), max(x[1], y[1])] > 0
            and s.tail[min(x[2], y[2]), max(x[2], y[2])] > 0
        )

    assert len(set(events)) == len(events)
    for e in events:
        nodes = {node(e.event_type, a) for a in e.arguments}
        assert nodes <= cands
        assert any(a.role == TRIGGER for a in e.arguments)
        assert all(linked(x, y) for x, y in itertools.combinations(nodes, 2))
        same_type = {c for c in cands - nodes if SCHEMA.labels[c[0]][0] == e.event_type}
        assert not any(all(linked(c, x) for x in nodes) for c in same_type)  # maximal
    # every trigger candidate ends up in some event
    for lab, h, t in cands:
        event_type, role = SCHEMA.labels[lab]
        if role == TRIGGER:
            trig = Argument(TRIGGER, text[h - 1 : t], h - 1)
            assert any(e.event_type == event_type and trig in e.arguments for e in events)


def random_factored(seed: int, batch: int = 3, length: int = 12, shift: float = -1.5):
    """EGP parts of random scores; `shift` lowers the per-label biases so that some cells
    pass and most do not. Sentence b has `length - b` real tokens (the rest is padding)."""
    from gplinker.modeling.global_pointer import Factored, span_mask

    g = torch.Generator().manual_seed(seed)
    H = len(SCHEMA.labels)
    attention = torch.ones(batch, length, dtype=torch.long)
    for b in range(batch):
        attention[b, length - b :] = 0
    mask = span_mask(attention)[:, 0]

    def parts(labels: int, lift: float) -> Factored:
        qk = torch.randn(batch, length, length, generator=g)
        col = torch.randn(batch, length, labels, generator=g) + lift
        row = torch.randn(batch, length, labels, generator=g)
        return Factored(qk, col, row, mask)

    return parts(H, shift), parts(1, 0.5), parts(1, 0.5), attention


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), shift=st.floats(-4, 1), threshold=st.floats(-1, 1))
def test_factored_candidates_are_the_dense_cells_above_the_threshold(seed, shift, threshold):
    """Same cells, same order, same scores as nonzero() on the dense [H, L, L] scores: the
    bound only skips cells that cannot pass."""
    from gplinker.decoding import factored_candidates

    argu, _, _, _ = random_factored(seed, shift=shift)
    dense = argu.dense()
    for b, (cand, scores) in enumerate(factored_candidates(argu, threshold)):
        expected = (dense[b] > threshold).nonzero()
        assert torch.equal(cand, expected)
        assert torch.equal(scores, dense[b][expected.unbind(1)])


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31), shift=st.floats(-3, 0))
def test_decode_batch_on_factored_scores_gives_the_dense_events(seed, shift) -> None:
    argu, head, tail, attention = random_factored(seed, shift=shift)
    text = "雀巢裁员4000人苹果收购华为子公司"
    offsets = [[(0, 0), *((i, i + 1) for i in range(int(n) - 2)), (0, 0)] for n in attention.sum(1)]
    texts = [text] * len(offsets)
    dense = decode_batch(argu.dense(), head.dense(), tail.dense(), offsets, texts, SCHEMA)
    factored = decode_batch(argu, head, tail, offsets, texts, SCHEMA)
    assume(any(dense))  # only inputs with events to compare count
    assert factored == dense
