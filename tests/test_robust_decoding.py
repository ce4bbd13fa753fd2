"""Robust decoding (issue 4): hypothesis properties of the decoder, of char <-> token
alignment and of the JSONL reader on random input.

1. decode / decode_batch / merge_windows on random score maps (NaN, inf, ties, odd offsets):
   no crash, every event is built from kept candidates only, and the work is bounded by
   max_candidates and max_events_per_type (see `WorkCounter`), also for an untrained model
   and for dense "flood" score maps (SPEC §10).
2. encode_windows on random Unicode (CJK incl. extension planes, emoji, combining marks,
   zero-width and control characters, whitespace, Latin, digits), both tokenizers.
3. read_lines / read_examples / load_examples on random bytes and on mixes of good and bad
   lines.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import tempfile
import time
from pathlib import Path

import pytest
import torch
from conftest import event_heads
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor

from gplinker import decoding
from gplinker.config import ModelConfig
from gplinker.data import reader
from gplinker.data.alignment import Encoded, char_span_to_tokens, encode_windows
from gplinker.data.reader import EMPTY_LINE, BadLine, load_examples, read_examples, read_lines
from gplinker.decoding import decode, decode_batch, merge_windows
from gplinker.errors import InputError
from gplinker.modeling.model import GPLinkerModel
from gplinker.schema import TRIGGER, Argument, Event, Example, Schema

try:
    from conftest import SHARED, TINY_ENCODER
except ImportError:  # pragma: no cover
    from tests.conftest import SHARED, TINY_ENCODER

REAL_TOKENIZER = SHARED / "models" / "bert-base-chinese-tokenizer"
LAYOFF, DEAL = "组织关系-裁员", "财经/交易-出售/收购"
SCHEMA = Schema({LAYOFF: ["裁员方", "裁员人数"], DEAL: ["出售方", "收购方"]})  # H = 6
FLOOD_MANY = Schema({f"T{k}": [f"r{j}" for j in range(5)] for k in range(47)})  # H = 282, DuEE
FLOOD_ONE = Schema({"T": [f"r{j}" for j in range(5)]})  # every candidate in one graph
SPECIAL_SCORES = [math.nan, math.inf, -math.inf, 0.0, -0.0, 1.0, 1e30, -1e30, 1e-30]


# ---------------------------------------------------------------------------------------
# 1. decoding


def random_map(g: torch.Generator, shape: tuple[int, ...], p_pos: float, ties: bool) -> Tensor:
    """float32 scores, a fraction p_pos of them > 0; `ties` draws from a few values only."""
    if ties:
        values = torch.tensor([-2.0, -1.0, 1.0, 2.0])
        pos = torch.rand(shape, generator=g) < p_pos
        pick = torch.randint(0, 2, shape, generator=g)
        return torch.where(pos, values[2 + pick], values[pick])
    return torch.rand(shape, generator=g) - (1.0 - p_pos)


def sprinkle(g: torch.Generator, scores: Tensor, n: int) -> Tensor:
    """Put n special values (NaN, +-inf, +-0, huge, tiny) at random cells."""
    flat = scores.flatten().clone()
    for _ in range(n):
        i = int(torch.randint(0, flat.numel(), (1,), generator=g))
        flat[i] = SPECIAL_SCORES[int(torch.randint(0, len(SPECIAL_SCORES), (1,), generator=g))]
    return flat.reshape(scores.shape)


@st.composite
def sentences(draw, max_len: int = 9, schema: Schema = SCHEMA):
    """(argu [H, L, L], head [L, L], tail [L, L], offsets, text) with random offsets: usually
    one token per character, sometimes arbitrary (overlapping, backwards, out of the text)."""
    text = draw(st.text(max_size=10))
    seq_len = draw(st.integers(1, max_len))
    n_off = draw(st.integers(0, seq_len))
    if draw(st.booleans()):
        inner = [(i, i + 1) for i in range(len(text))][: max(0, n_off - 2)]
        offsets = [(0, 0), *inner, (0, 0)][:n_off]
    else:
        pos = st.integers(-2, len(text) + 2)
        offsets = draw(st.lists(st.tuples(pos, pos), min_size=n_off, max_size=n_off))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**32 - 1)))
    ties = draw(st.booleans())
    argu = random_map(g, (len(schema.labels), seq_len, seq_len), draw(st.floats(0, 1)), ties)
    p_link = draw(st.floats(0, 1))
    head, tail = (random_map(g, (seq_len, seq_len), p_link, ties) for _ in range(2))
    n_special = draw(st.integers(0, 6))
    argu, head, tail = (sprinkle(g, x, n_special) for x in (argu, head, tail))
    return argu, head, tail, offsets, text


def kept_candidates(
    argu: Tensor,
    offsets: list[tuple[int, int]],
    text: str,
    schema: Schema,
    threshold: float,
    max_candidates: int,
) -> set[tuple[str, Argument]]:
    """Plain-loop reference: (event type, Argument) of the max_candidates best spans scored
    above threshold on real tokens (start < end), h <= t, inside the text; ties in
    (label, h, t) order."""
    seq_len = argu.shape[-1]
    spans = [tuple(offsets[i]) if i < len(offsets) else (0, 0) for i in range(seq_len)]
    found = []
    for lab, h, t in itertools.product(range(len(schema.labels)), range(seq_len), range(seq_len)):
        score = float(argu[lab, h, t])
        (hs, he), (ts, te) = spans[h], spans[t]
        if h <= t and score > threshold and hs < he and ts < te and 0 <= hs < te <= len(text):
            found.append((-score, lab, h, t))
    found.sort()
    out = set()
    for _, lab, h, t in found[:max_candidates]:
        event_type, role = schema.labels[lab]
        start, end = spans[h][0], spans[t][1]
        out.add((event_type, Argument(role, text[start:end], start)))
    return out


class Warnings(logging.Handler):
    """The decoder's warnings while inside the `with` block."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())

    def __enter__(self) -> list[str]:
        logging.getLogger("gplinker.decoding").addHandler(self)
        return self.messages

    def __exit__(self, *exc) -> None:
        logging.getLogger("gplinker.decoding").removeHandler(self)


def check_events(events: list[Event], text: str, allowed: set[tuple[str, Argument]]) -> None:
    """Each event: from allowed candidates only, spans equal to their text slice, a
    trigger; no duplicates, no event a proper subset of another of its type; sorted."""
    assert events == sorted(events, key=lambda e: (e.event_type, sorted(e.arguments)))
    assert len(set(events)) == len(events)
    for e in events:
        assert any(a.role == TRIGGER for a in e.arguments), e
        for a in e.arguments:
            assert (e.event_type, a) in allowed, (e.event_type, a)
            assert 0 <= a.start < a.end <= len(text) and text[a.start : a.end] == a.text
        assert not any(o.event_type == e.event_type and e.arguments < o.arguments for o in events)


@settings(max_examples=120, deadline=None)
@given(
    sentence=sentences(),
    threshold=st.sampled_from([0.0, 0.0, 0.5, -0.5]),
    max_candidates=st.integers(1, 40),
    max_events_per_type=st.integers(1, 8),
)
def test_decode_on_random_scores_builds_events_only_from_kept_candidates(
    sentence, threshold, max_candidates, max_events_per_type
) -> None:
    argu, head, tail, offsets, text = sentence
    kwargs = {
        "threshold": threshold,
        "max_candidates": max_candidates,
        "max_events_per_type": max_events_per_type,
    }
    with Warnings() as warnings:
        events = decode(argu, head, tail, offsets, text, SCHEMA, **kwargs)
    allowed = kept_candidates(argu, offsets, text, SCHEMA, threshold, max_candidates)
    check_events(events, text, allowed)
    types_with_trigger = {t for t, a in allowed if a.role == TRIGGER}
    assert len(events) <= len(types_with_trigger) * max_events_per_type
    # every kept trigger is in some event, unless the clique search of its type was cut
    capped = " ".join(w for w in warnings if "cliques for event types" in w)
    for event_type, a in allowed:
        if a.role == TRIGGER and repr(event_type) not in capped:
            assert any(e.event_type == event_type and a in e.arguments for e in events)
    # same input, same output; [1, L, L] links and float64 scores (cast to float32) too
    assert decode(argu, head[None], tail[None], offsets, text, SCHEMA, **kwargs) == events
    assert decode(argu.double(), head, tail, offsets, text, SCHEMA, **kwargs) == events


@settings(max_examples=40, deadline=None)
@given(batch=st.lists(sentences(max_len=7), min_size=1, max_size=4), seed=st.integers(0, 2**16))
def test_decode_batch_with_random_padding_equals_decode_per_sentence(batch, seed) -> None:
    """Padding positions (past each sentence's L) hold random, often positive, scores."""
    seq_len = max(s[0].shape[-1] for s in batch)
    g = torch.Generator().manual_seed(seed)
    n_labels = len(SCHEMA.labels)
    argu = random_map(g, (len(batch), n_labels, seq_len, seq_len), 0.7, False)
    head, tail = (random_map(g, (len(batch), 1, seq_len, seq_len), 0.7, False) for _ in range(2))
    for b, (a, h, t, _, _) in enumerate(batch):
        n = a.shape[-1]
        argu[b, :, :n, :n], head[b, 0, :n, :n], tail[b, 0, :n, :n] = a, h, t
    out = decode_batch(
        argu, head, tail, [s[3] for s in batch], [s[4] for s in batch], SCHEMA, max_candidates=30
    )
    assert out == [decode(a, h, t, o, x, SCHEMA, max_candidates=30) for a, h, t, o, x in batch]


@settings(max_examples=40, deadline=None)
@given(
    text=st.text(st.sampled_from("雀巢裁员苹果收购4000人，Google 𠀀😀"), max_size=40),
    max_length=st.integers(4, 12),
    overlap_frac=st.floats(0, 0.99),
    seed=st.integers(0, 2**32 - 1),
    p_pos=st.floats(0, 1),
)
def test_merge_windows_on_random_window_events(
    text, max_length, overlap_frac, seed, p_pos, tiny_tokenizer
) -> None:
    """Events decoded per window from random scores, merged: every merged event checks as
    decode() output does, is the union of window events that each see it as it is seen from
    their window, and every window event lies inside some merged event."""
    overlap = int(overlap_frac * (max_length - 2))
    [windows] = encode_windows([text], tiny_tokenizer, max_length, overlap)
    g = torch.Generator().manual_seed(seed)
    found = []
    for w in windows:
        n = len(w)
        argu = random_map(g, (len(SCHEMA.labels), n, n), p_pos, True)
        head, tail = (random_map(g, (n, n), 0.6, True) for _ in range(2))
        found.append(decode(argu, head, tail, w.offsets, text, SCHEMA, max_candidates=12))
    merged = merge_windows(found, windows)
    allowed = {(e.event_type, a) for evs in found for e in evs for a in e.arguments}
    if len(windows) == 1:
        assert merged == found[0]
    check_events(merged, text, allowed)
    assert len(merged) <= sum(len(evs) for evs in found)
    for ev in (e for evs in found for e in evs):  # nothing lost: each inside a merged one
        assert any(m.event_type == ev.event_type and ev.arguments <= m.arguments for m in merged)
    for m in merged:
        # nothing added: each is the union of window events, each exactly what the merged
        # event looks like from its window (windows agree on what they share)
        parts = [
            e.arguments
            for w, evs in zip(windows, found, strict=True)
            for e in evs
            if e.event_type == m.event_type
            and e.arguments == {a for a in m.arguments if w.sees(a.start, a.end)}
        ]
        assert frozenset().union(*parts) == m.arguments


class WorkCounter:
    """Counts the decoder's work by wrapping what it calls: the Arguments it builds (one per
    kept candidate) and the clique search (`_cliques_through`: each event type's link graph
    and trigger nodes, and every maximal clique it yields).

    The bound, with k = max_candidates, c = max_events_per_type, T = event types:

    - candidates kept (Arguments built; graph nodes over all types) <= k: the scores above
      the threshold are cut to the k best before any graph is built;
    - link pairs looked at = sum over types of n_type**2 <= k**2 (the n_type add up to at
      most k), so graph edges <= k * (k - 1) / 2 and trigger nodes searched <= k;
    - cliques yielded <= min(T, k) * c: the search yields each maximal clique once and
      stops at c of them per event type, and only types with a kept trigger are searched;
      cliques looked at (with a trigger or not) <= 16 * c per type;
    - events returned <= min(T, k) * c, and distinct arguments in them <= k.

    None of these depends on L or H, which only enter the vectorised candidate scan.
    """

    def __init__(self, mp: pytest.MonkeyPatch):
        self.arguments = 0
        self.graphs: list[tuple[int, int, int]] = []  # (nodes, edges, trigger nodes)
        self.cliques = 0
        self.limits: list[int] = []
        counter = self
        search = decoding._cliques_through

        def argument(*args):
            counter.arguments += 1
            return Argument(*args)

        def cliques_through(adj, through, limit):
            edges = sum(len(a) for a in adj)
            assert edges % 2 == 0 and all(i not in a for i, a in enumerate(adj))
            counter.graphs.append((len(adj), edges // 2, len(through)))
            counter.limits.append(limit)
            found = set()
            for clique in search(adj, through, limit):
                assert clique not in found  # each clique once
                found.add(clique)
                counter.cliques += 1
                yield clique

        mp.setattr(decoding, "Argument", argument)
        mp.setattr(decoding, "_cliques_through", cliques_through)

    def check(self, events: list[Event], schema: Schema, k: int, c: int) -> None:
        nodes = sum(n for n, _, _ in self.graphs)
        assert self.arguments <= k
        assert nodes <= self.arguments
        assert sum(e for _, e, _ in self.graphs) <= k * (k - 1) // 2
        assert sum(t for _, _, t in self.graphs) <= nodes
        assert len(self.graphs) <= min(len(schema.event_types), k)
        assert self.cliques <= min(len(schema.event_types), k) * c
        assert all(limit == decoding.SEARCHED_PER_EVENT * c for limit in self.limits)
        assert len(events) <= min(len(schema.event_types), k) * c
        assert len({a for e in events for a in e.arguments}) <= k


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(0, 10),
    p=st.floats(0, 1),
    seed=st.integers(0, 2**32 - 1),
    limit=st.integers(1, 50),
    data=st.data(),
)
def test_cliques_through_are_the_maximal_cliques_with_one_of_the_nodes_each_once(
    n, p, seed, limit, data
) -> None:
    """The clique search against a brute-force list of maximal cliques on random graphs:
    each clique holding a node of `through` once, and no more than `limit` looked at."""
    g = torch.Generator().manual_seed(seed)
    linked = (torch.rand(n, n, generator=g) < p).triu(1)
    adj: list[set[int]] = [set() for _ in range(n)]
    for i, j in linked.nonzero().tolist():
        adj[i].add(j)
        adj[j].add(i)
    through = data.draw(st.lists(st.integers(0, n - 1), unique=True) if n else st.just([]))
    found = list(decoding._cliques_through(adj, through, limit))
    assert len(set(found)) == len(found)

    def clique(nodes: frozenset[int]) -> bool:
        return all(j in adj[i] for i in nodes for j in nodes if i != j)

    subsets = (frozenset(i for i in range(n) if m >> i & 1) for m in range(1, 2**n))
    cliques = [c for c in subsets if clique(c)]
    maximal = {c for c in cliques if not any(c < d for d in cliques)}
    expected = {c for c in maximal if c & set(through)}
    assert set(found) <= expected
    if len(maximal) <= limit:
        assert set(found) == expected


def test_regression_one_clique_of_many_triggers_is_searched_once() -> None:
    """One event type, 384 candidates (61 of them triggers), every link positive: one clique.
    A networkx search per trigger node redid ~n^3 work for each: 28 s here; one search of
    the whole graph takes 0.3 s."""
    schema = FLOOD_ONE
    text = "".join(chr(0x4E00 + i) for i in range(62))
    offsets = [(0, 0), *((i, i + 1) for i in range(62)), (0, 0)]
    argu = torch.rand(len(schema.labels), 64, 64, generator=torch.Generator().manual_seed(0))
    links = torch.ones(64, 64)
    start = time.perf_counter()
    events = decode(argu, links, links, offsets, text, schema, max_candidates=384)
    elapsed = time.perf_counter() - start
    assert len(events) == 1 and len(events[0].arguments) == 384
    assert elapsed < 5.0


@pytest.fixture(scope="module")
def untrained(schema, tiny_tokenizer) -> GPLinkerModel:
    torch.manual_seed(0)
    config = ModelConfig(pretrained=False, encoder_overrides=TINY_ENCODER, head_size=16)
    return GPLinkerModel.from_encoder(config, event_heads(schema), len(tiny_tokenizer)).eval()


UNTRAINED_MAX_LENGTH = 64


@settings(max_examples=12, deadline=None)
@given(
    texts=st.lists(
        st.text(
            st.sampled_from("雀巢裁员苹果收购华为夺冠入狱4000人，。Google 2019年"), max_size=90
        ),
        min_size=1,
        max_size=3,
    ),
    k=st.integers(1, 300),
    c=st.integers(1, 64),
)
def test_untrained_model_scores_decode_within_the_bound(
    texts, k, c, untrained, schema, tiny_tokenizer
) -> None:
    """An untrained model marks thousands of spans positive; decoding stays within the
    WorkCounter bound for texts of up to max_length tokens."""
    windows = [ws[0] for ws in encode_windows(texts, tiny_tokenizer, UNTRAINED_MAX_LENGTH)]
    seq_len = max(len(w) for w in windows)
    assert seq_len <= UNTRAINED_MAX_LENGTH
    ids = torch.zeros(len(windows), seq_len, dtype=torch.long)
    mask = torch.zeros(len(windows), seq_len, dtype=torch.long)
    for b, w in enumerate(windows):
        ids[b, : len(w)], mask[b, : len(w)] = torch.tensor(w.input_ids), 1
    with torch.no_grad():
        out = untrained(ids, mask)
    for b, (w, text) in enumerate(zip(windows, texts, strict=True)):
        with pytest.MonkeyPatch.context() as mp:
            counter = WorkCounter(mp)
            start = time.perf_counter()
            [events] = decode_batch(
                out["argu"][b : b + 1],
                out["head_link"][b : b + 1],
                out["tail_link"][b : b + 1],
                [w.offsets],
                [text],
                schema,
                max_candidates=k,
                max_events_per_type=c,
            )
            elapsed = time.perf_counter() - start
        counter.check(events, schema, k, c)
        assert elapsed < 5.0
        allowed = kept_candidates(
            out["argu"][b, :, : len(w), : len(w)], w.offsets, text, schema, 0, k
        )
        check_events(events, text, allowed)


def test_the_untrained_model_does_flood(untrained, schema, tiny_tokenizer) -> None:
    """The bound above is not vacuous: the untrained model's positives exceed the cap."""
    text = "雀巢裁员4000人，苹果收购华为，Google 2019年夺冠"
    [[w]] = encode_windows([text], tiny_tokenizer, UNTRAINED_MAX_LENGTH)
    with torch.no_grad():
        out = untrained(torch.tensor([w.input_ids]), torch.ones(1, len(w), dtype=torch.long))
    assert (out["argu"] > 0).sum() > 256
    with pytest.MonkeyPatch.context() as mp:
        counter = WorkCounter(mp)
        decode(out["argu"][0], out["head_link"][0], out["tail_link"][0], w.offsets, text, schema)
    assert counter.arguments == 256


@settings(max_examples=8, deadline=None)
@given(
    schema=st.sampled_from([FLOOD_MANY, FLOOD_ONE]),
    seq_len=st.integers(32, 64),
    p_pos=st.floats(0.5, 1.0),
    p_link=st.floats(0.3, 1.0),
    k=st.integers(1, 512),
    c=st.integers(1, 64),
    seed=st.integers(0, 2**32 - 1),
)
def test_flood_of_positive_scores_finishes_within_the_bound(
    schema, seq_len, p_pos, p_link, k, c, seed
) -> None:
    """Dense random scores, most cells positive (SPEC §10): capped, bounded, fast."""
    g = torch.Generator().manual_seed(seed)
    n_real = seq_len - 2
    text = "".join(chr(0x4E00 + i) for i in range(n_real))
    offsets = [(0, 0), *((i, i + 1) for i in range(n_real)), (0, 0)]
    argu = random_map(g, (len(schema.labels), seq_len, seq_len), p_pos, False)
    head, tail = (random_map(g, (seq_len, seq_len), p_link, False) for _ in range(2))
    with pytest.MonkeyPatch.context() as mp:
        counter = WorkCounter(mp)
        start = time.perf_counter()
        events = decode(
            argu, head, tail, offsets, text, schema, max_candidates=k, max_events_per_type=c
        )
        elapsed = time.perf_counter() - start
    counter.check(events, schema, k, c)
    assert counter.arguments == k  # p_pos >= 0.5 gives far more than 512 positives
    assert elapsed < 5.0
    assert all(text[a.start : a.end] == a.text for e in events for a in e.arguments)


# ---------------------------------------------------------------------------------------
# 2. char <-> token alignment

UNICODE = st.one_of(
    st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF),  # CJK
    st.characters(min_codepoint=0x3400, max_codepoint=0x4DBF),  # CJK extension A
    st.characters(min_codepoint=0x20000, max_codepoint=0x2FA1F),  # CJK extensions B-F, plane 2
    st.characters(min_codepoint=0x30000, max_codepoint=0x323AF),  # CJK extensions G-H, plane 3
    st.characters(min_codepoint=0x1F300, max_codepoint=0x1FAFF),  # emoji
    st.sampled_from(["\u200d", "\ufe0f", "🏽", "🇨", "🇳"]),  # ZWJ, VS16, skin tone, flag halves
    st.characters(min_codepoint=0x0300, max_codepoint=0x036F),  # combining marks
    st.characters(min_codepoint=0x20D0, max_codepoint=0x20FF),  # combining marks for symbols
    st.sampled_from(list("\u200b\u200c\u2060\ufeff\u00ad\u202e\u2066")),  # zero-width, bidi
    st.characters(min_codepoint=0x00, max_codepoint=0x1F),  # C0 controls
    st.characters(min_codepoint=0x7F, max_codepoint=0x9F),  # DEL, C1 controls
    st.sampled_from(list(" \t\n\r\x0b\x0c\u3000\xa0\u2028\u2029\u1680\u2003\u202f\u205f\x85")),
    st.characters(min_codepoint=0x20, max_codepoint=0x7E),  # ASCII
    st.characters(min_codepoint=0xC0, max_codepoint=0x24F),  # Latin-1, Latin Extended
    st.sampled_from(list("İßﬁǅÅ０１２٠١٢")),  # case/compat oddities, full-width and Arabic digits
    st.characters(codec="utf-8"),  # anything but surrogates
)
SEQUENCES = st.sampled_from(
    ["👨\u200d👩\u200d👧", "🇨🇳", "👍🏽", "❤\ufe0f", "e\u0301", "\r\n", "##", "x" * 101]
) | st.sampled_from(["[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]"])  # special tokens as text


def unicode_text(max_size: int) -> st.SearchStrategy[str]:
    """Characters of UNICODE and multi-character sequences (ZWJ emoji, flags, ...)."""
    return st.lists(UNICODE | SEQUENCES, max_size=max_size).map("".join)


@pytest.fixture(scope="module")
def real_tokenizer():
    if not REAL_TOKENIZER.exists():
        pytest.skip("../shared/models/bert-base-chinese-tokenizer is absent")
    from gplinker.data.tokenizer import load_tokenizer

    return load_tokenizer(REAL_TOKENIZER)


def check_windows(
    text: str, windows: list[Encoded], tokenizer, max_length: int, overlap: int | None
) -> None:
    full = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offs = full["input_ids"], [tuple(o) for o in full["offset_mapping"]]
    n, keep = len(ids), max_length - 2
    pieces = tokenizer.convert_ids_to_tokens(ids)
    normalizer = tokenizer.backend_tokenizer.normalizer

    # offsets: inside the text, non-empty, in order; each slice is what the tokenizer read
    for (s, e), piece in zip(offs, pieces, strict=True):
        assert 0 <= s < e <= len(text), (s, e)
        read = "".join(normalizer.normalize_str(text[s:e]).split())
        assert read, (s, e, text[s:e])  # never a token on blank or dropped characters
        if piece != tokenizer.unk_token:
            assert piece.removeprefix("##") == read, (piece, text[s:e])
    assert [s for s, _ in offs] == sorted(s for s, _ in offs)
    assert [e for _, e in offs] == sorted(e for _, e in offs)

    # windows: [CLS] a contiguous run of the text's tokens [SEP], counted exactly
    assert windows and windows[0].skipped == 0
    seen: set[int] = set()
    for k, w in enumerate(windows):
        assert len(w) == len(w.input_ids) == len(w.offsets) <= max_length
        assert w.input_ids[0] == tokenizer.cls_token_id and w.offsets[0] == (0, 0)
        assert w.input_ids[-1] == tokenizer.sep_token_id and w.offsets[-1] == (0, 0)
        kept = len(w) - 2
        assert kept == min(n, keep) and w.skipped + kept + w.n_cut == n
        assert w.input_ids[1:-1] == ids[w.skipped : w.skipped + kept]
        assert w.offsets[1:-1] == offs[w.skipped : w.skipped + kept]
        if k:
            prev = windows[k - 1]
            assert w.skipped > prev.skipped
            assert prev.skipped + len(prev) - 2 - w.skipped >= (overlap or 0)
        seen.update(range(w.skipped, w.skipped + kept))
    if overlap is None:
        assert len(windows) == 1 and seen == set(range(min(n, keep)))
    else:
        assert seen == set(range(n)) and windows[-1].n_cut == 0

    # every token of a window is seen whole by it; a window that says it sees a token's
    # chars holds tokens spanning exactly them; with windows every token is seen whole
    for i, (s, e) in enumerate(offs):
        for w in windows:
            if w.skipped <= i < w.skipped + len(w) - 2:
                assert w.sees(s, e), (i, s, e)
                h, t = char_span_to_tokens(w, s, e) or (None, None)
                assert h is not None and w.offsets[h][0] == s and w.offsets[t][1] == e
            elif w.sees(s, e):
                assert char_span_to_tokens(w, s, e) is not None, (i, s, e, w.skipped)
        if overlap is not None:
            assert any(w.sees(s, e) and char_span_to_tokens(w, s, e) for w in windows)


window_args = {
    "text": unicode_text(60),
    "max_length": st.integers(3, 24),
    "overlap_frac": st.one_of(st.none(), st.floats(0, 0.99)),
}


def run_windows(text, max_length, overlap_frac, tokenizer) -> None:
    keep = max_length - 2
    overlap = None if overlap_frac is None else int(overlap_frac * keep)
    [windows] = encode_windows([text], tokenizer, max_length, overlap)
    check_windows(text, windows, tokenizer, max_length, overlap)


@settings(max_examples=150, deadline=None)
@given(**window_args)
def test_windows_on_random_unicode_tiny_tokenizer(
    text, max_length, overlap_frac, tiny_tokenizer
) -> None:
    run_windows(text, max_length, overlap_frac, tiny_tokenizer)


@pytest.mark.skipif(not REAL_TOKENIZER.exists(), reason="../shared tokenizer absent")
@settings(max_examples=150, deadline=None)
@given(**window_args)
def test_windows_on_random_unicode_real_tokenizer(
    text, max_length, overlap_frac, real_tokenizer
) -> None:
    run_windows(text, max_length, overlap_frac, real_tokenizer)


@settings(max_examples=40, deadline=None)
@given(texts=st.lists(unicode_text(30), max_size=5), max_length=st.integers(3, 12))
def test_encode_windows_of_a_batch_equals_one_text_at_a_time(
    texts, max_length, tiny_tokenizer
) -> None:
    overlap = (max_length - 2) // 2
    batch = encode_windows(texts, tiny_tokenizer, max_length, overlap)
    assert batch == [encode_windows([t], tiny_tokenizer, max_length, overlap)[0] for t in texts]


# ---------------------------------------------------------------------------------------
# 3. the JSONL reader

KINDS = {
    reader.INVALID_UTF8,
    reader.INVALID_JSON,
    reader.NOT_AN_OBJECT,
    reader.EMPTY_LINE,
    reader.MISSING_FIELD,
    reader.WRONG_TYPE,
    reader.LONE_SURROGATE,
    reader.EMPTY_SPAN,
    reader.SPAN_MISMATCH,
    reader.RESERVED_ROLE,
    reader.UNKNOWN_EVENT_TYPE,
    reader.UNKNOWN_ROLE,
    reader.DUPLICATE_ID,
}


def split_lines(data: bytes) -> list[bytes]:
    """The lines a binary file iterates over: split after each b"\\n", none after the last."""
    lines = data.split(b"\n")
    return lines[:-1] if lines[-1] == b"" else lines


def lineno(item: Example | BadLine) -> int:
    return item.line if isinstance(item, BadLine) else int(item.where.rsplit(":", 1)[1])


def key(item: Example | BadLine) -> Example | tuple:
    """Comparable: exceptions compare by identity, so a BadLine by what it says."""
    if isinstance(item, BadLine):
        return item.line, item.id, item.error.kind, str(item.error)
    return item


def check_file(data: bytes, schema: Schema | None) -> list[Example | BadLine]:
    """Read `data` every way; check the properties every input must have; return the items
    of read_lines(blank_lines="error")."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "in.jsonl"
        path.write_bytes(data)
        lines = split_lines(data)
        items = list(read_lines(path, schema, blank_lines="error"))
        # one item per line, numbered 1..N in order
        assert [lineno(x) for x in items] == list(range(1, len(lines) + 1))
        for item, raw in zip(items, lines, strict=True):
            if isinstance(item, BadLine):
                err = item.error
                assert isinstance(err, InputError) and err.kind in KINDS
                assert err.line == item.line and str(err).startswith(f"{path}:{item.line}: ")
            else:  # a good line: its JSON text, exactly
                row = json.loads(raw.decode("utf-8").removeprefix("\ufeff"))
                assert item.text == row["text"] and item.id == row.get("id", f"line-{lineno(item)}")
        skipped = list(read_lines(path, schema))
        assert [key(x) for x in skipped] == [
            key(x) for x in items if not (isinstance(x, BadLine) and x.error.kind == EMPTY_LINE)
        ]
        bad = [x for x in skipped if isinstance(x, BadLine)]
        good = [x for x in skipped if not isinstance(x, BadLine)]
        try:
            streamed = list(read_examples(path, schema))
        except InputError as e:
            assert bad and e.line == bad[0].line
        else:
            assert not bad and streamed == good
        try:
            loaded = load_examples(path, schema)
        except InputError as e:
            assert bad and str(e).startswith(f"{path}: {len(bad)} of ")
        else:
            assert not bad and loaded == good
        assert load_examples(path, schema, skip_invalid=True) == good
    return items


@settings(max_examples=150, deadline=None)
@given(data=st.binary(max_size=300), with_schema=st.booleans())
def test_reader_on_random_bytes(data: bytes, with_schema: bool) -> None:
    check_file(data, SCHEMA if with_schema else None)


@settings(max_examples=60, deadline=None)
@given(
    data=st.lists(
        st.sampled_from([b"{", b"}", b'"text"', b":", b",", b'"', b"\\", b"\\u", b"d800", b"\n"])
        | st.binary(max_size=4),
        max_size=30,
    )
)
def test_reader_on_random_json_like_bytes(data: list[bytes]) -> None:
    check_file(b"".join(data), None)


def good_line(draw, i: int) -> tuple[bytes, str, str | None]:
    """A valid line (text and, sometimes, an id and a trigger span of the text)."""
    text = draw(unicode_text(30) | st.text(max_size=30))
    row: dict = {"text": text}
    ex_id = draw(st.none() | st.sampled_from(["a", "b", "c"]) | st.just(f"u{i}"))
    if ex_id is not None:
        row["id"] = ex_id
    if text and draw(st.booleans()):
        start = draw(st.integers(0, len(text) - 1))
        end = draw(st.integers(start + 1, len(text)))
        trigger = {"trigger": text[start:end], "trigger_start_index": start}
        row["event_list"] = [{"event_type": LAYOFF, **trigger, "arguments": []}]
    raw = json.dumps(row, ensure_ascii=draw(st.booleans())).encode()
    raw = draw(st.sampled_from([b"", b"\xef\xbb\xbf"])) + raw + draw(st.sampled_from([b"", b"\r"]))
    return raw, text, ex_id


BAD_LINES = {
    reader.INVALID_UTF8: st.tuples(
        st.binary(max_size=10), st.sampled_from([b"\xff", b"\xc3(", b"\xed\xa0\x80"])
    ).map(lambda t: t[0].replace(b"\n", b"") + t[1]),
    reader.INVALID_JSON: st.one_of(
        st.text(max_size=20)
        .filter(lambda s: "\n" not in s and s.strip())
        .filter(lambda s: not _is_json(s))
        .map(str.encode),
        st.integers(4301, 6000).map(lambda n: b'{"text": "a", "n": ' + b"7" * n + b"}"),
        st.just(b"[" * 100_000),
    ),
    reader.NOT_AN_OBJECT: st.sampled_from([b"[]", b"1", b'"text"', b"null", b"[{}]", b"1e999"]),
    reader.MISSING_FIELD: st.sampled_from([b"{}", b'{"id": "z"}', b'{"Text": "a"}']),
    reader.WRONG_TYPE: st.sampled_from(
        [
            b'{"text": 1}',
            b'{"text": null}',
            b'{"text": "a", "id": 3}',
            b'{"text": "", "event_list": {}}',
        ]
    ),
    reader.LONE_SURROGATE: st.sampled_from([b'{"text": "\\ud800"}', b'{"text": "a\\udfffb"}']),
    reader.SPAN_MISMATCH: st.just(
        b'{"text": "ab", "event_list": [{"event_type": "'
        + LAYOFF.encode()
        + b'", "trigger": "b", "trigger_start_index": 0}]}'
    ),
    reader.EMPTY_LINE: st.sampled_from([b"", b" ", b"\r", b"\t \x0c", "\u3000".encode()]),
}


def _is_json(s: str) -> bool:
    try:
        json.loads(s.removeprefix("\ufeff").rstrip("\r\n"))
    except (ValueError, RecursionError):
        return False
    return True


@st.composite
def mixed_files(draw) -> tuple[bytes, list[tuple[str, str | None, str | None]]]:
    """Lines of every kind; per line (kind, text, id) with kind "good" or a BadLine kind."""
    lines, expected = [], []
    for i in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from(["good", "good", *BAD_LINES]))
        if kind == "good":
            raw, text, ex_id = good_line(draw, i)
        else:
            raw, text, ex_id = draw(BAD_LINES[kind]), None, None
        lines.append(raw)
        expected.append((kind, text, ex_id))
    ending = draw(st.sampled_from([b"\n", b""])) if lines and lines[-1] else b"\n"
    return b"\n".join(lines) + (ending if lines else b""), expected


@settings(max_examples=150, deadline=None)
@given(file=mixed_files())
def test_reader_on_mixed_lines_gives_each_line_its_expected_outcome(file) -> None:
    data, expected = file
    items = check_file(data, SCHEMA)
    assert len(items) == len(expected)
    seen_ids: set[str] = set()
    for n, (item, (kind, text, ex_id)) in enumerate(zip(items, expected, strict=True), 1):
        if kind == "good":
            ex_id = ex_id or f"line-{n}"
            if ex_id in seen_ids:
                assert isinstance(item, BadLine) and item.error.kind == reader.DUPLICATE_ID
                assert item.id == ex_id
                continue
            seen_ids.add(ex_id)
            assert isinstance(item, Example), item
            assert (item.id, item.text) == (ex_id, text)  # the text round-trips exactly
        else:
            assert isinstance(item, BadLine) and item.error.kind == kind, (kind, item)


def test_regression_an_integer_of_over_4300_digits_is_a_bad_line_not_a_crash(
    tmp_path: Path,
) -> None:
    """json.loads raises a plain ValueError (Python's int max str digits), not a
    JSONDecodeError: read_lines used to let it escape, ending a whole prediction run."""
    path = tmp_path / "big.jsonl"
    big = b'{"text": "a", "n": ' + b"1" * 5000 + b"}"
    path.write_bytes(b'{"text": "ok"}\n' + big + b'\n{"text": "b"}\n')
    items = list(read_lines(path))
    assert [type(x) for x in items] == [Example, BadLine, Example]
    assert items[1].error.kind == reader.INVALID_JSON and items[1].line == 2
    assert str(items[1].error).startswith(f"{path}:2: invalid JSON")
    with pytest.raises(InputError, match=":2: invalid JSON"):
        list(read_examples(path))
