"""Char <-> token alignment (data/alignment.py) on tricky texts, both tokenizers."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gplinker.data.alignment import (
    Encoded,
    char_span_to_tokens,
    encode,
    encode_batch,
    tokens_to_char_span,
)

try:
    from conftest import SHARED
except ImportError:  # pragma: no cover
    from tests.conftest import SHARED

REAL_TOKENIZER = SHARED / "models" / "bert-base-chinese-tokenizer"

TRICKY = [
    "雀巢裁员4000人",
    "AT&T在2019年",
    "：，ｈｅｌｌｏ",
    " 雀巢 裁员 ",
    "\u3000雀巢\u3000裁员\u3000",
    "😀裁员😀，🎉",
    "2019年3月15日，Google以87.5亿美元收购 Fitbit！",
    "a\tb\n c  ",
    "",
    "   ",
]


@pytest.fixture(scope="module")
def real_tokenizer():
    if not REAL_TOKENIZER.exists():
        pytest.skip("../shared/models/bert-base-chinese-tokenizer is absent")
    from gplinker.data.tokenizer import load_tokenizer

    return load_tokenizer(REAL_TOKENIZER)


@pytest.fixture(params=["tiny", "real"])
def tokenizer(request, tiny_tokenizer):
    return tiny_tokenizer if request.param == "tiny" else request.getfixturevalue("real_tokenizer")


def check_alignment(text: str, enc: Encoded, tokenizer) -> None:
    """Every kept token maps to a non-blank char span that maps back to it; spans grow."""
    assert enc.input_ids[0] == tokenizer.cls_token_id and enc.offsets[0] == (0, 0)
    assert enc.input_ids[-1] == tokenizer.sep_token_id and enc.offsets[-1] == (0, 0)
    assert len(enc.input_ids) == len(enc.offsets) == len(enc)
    prev_end = 0
    for i in range(1, len(enc) - 1):
        s, e = enc.offsets[i]
        assert 0 <= s < e <= len(text), (i, s, e)
        assert text[s:e].strip(), (i, text[s:e])
        assert s >= prev_end, "spans overlap or go backwards"
        prev_end = e
        assert char_span_to_tokens(enc, s, e) == (i, i)
        assert tokens_to_char_span(enc, i, i) == (s, e)


@pytest.mark.parametrize("text", TRICKY)
def test_round_trip_on_tricky_texts_digits_latin_fullwidth_spaces_emoji(text: str, tokenizer):
    check_alignment(text, encode(text, tokenizer, 64), tokenizer)


def test_multi_token_spans_round_trip_on_mixed_text(tokenizer):
    text = "2019年3月15日，Google以87.5亿美元收购 Fitbit！"
    enc = encode(text, tokenizer, 64)
    real = [i for i in range(1, len(enc) - 1)]
    for a in real:
        for b in real[a - 1 :]:
            s, e = tokens_to_char_span(enc, a, b)
            assert char_span_to_tokens(enc, s, e) == (a, b)


def test_digit_run_is_one_token_and_inner_span_is_off_boundary(tokenizer):
    text = "雀巢裁员4000人"
    enc = encode(text, tokenizer, 64)
    assert char_span_to_tokens(enc, 4, 8) is not None  # "4000"
    assert char_span_to_tokens(enc, 6, 8) is None  # "00" starts inside the token
    assert char_span_to_tokens(enc, 4, 6) is None  # "40" ends inside it


def test_spans_on_dropped_whitespace_are_not_tokens(tokenizer):
    text = " 雀巢 裁员 "
    enc = encode(text, tokenizer, 64)
    assert char_span_to_tokens(enc, 1, 3) == (1, 2)  # "雀巢"
    assert char_span_to_tokens(enc, 0, 3) is None  # " 雀巢": leading space is no token
    assert char_span_to_tokens(enc, 1, 4) is None  # "雀巢 ": trailing space
    assert char_span_to_tokens(enc, 4, 6) == (3, 4)  # "裁员"


def test_empty_and_blank_text_give_only_cls_sep(tokenizer):
    for text in ("", "   ", "\u3000"):
        enc = encode(text, tokenizer, 16)
        assert enc.offsets == [(0, 0), (0, 0)] and enc.n_cut == 0
        assert enc.covered_chars == 0


@pytest.mark.parametrize("max_length", [2, 3, 8])
def test_max_length_cut_keeps_exactly_max_length_and_counts_the_rest(max_length, tokenizer):
    text = "雀巢裁员4000人，阿里巴巴宣布收购腾讯电视业务"
    full = encode(text, tokenizer, 512)
    n_real = len(full) - 2
    assert n_real > 8
    enc = encode(text, tokenizer, max_length)
    assert len(enc) == max_length
    assert enc.n_cut == n_real - (max_length - 2)
    assert enc.input_ids[:-1] == full.input_ids[: max_length - 1]
    assert enc.input_ids[-1] == tokenizer.sep_token_id
    check_alignment(text, enc, tokenizer)
    # a span wholly beyond the cut no longer maps to tokens
    s, e = full.offsets[-2]
    assert char_span_to_tokens(enc, s, e) is None
    assert enc.covered_chars == (full.offsets[max_length - 2][1] if max_length > 2 else 0)


def test_no_cut_when_text_fits_exactly(tokenizer):
    text = "雀巢裁员"
    enc = encode(text, tokenizer, 6)
    assert len(enc) == 6 and enc.n_cut == 0


def test_encode_batch_equals_encode_one_by_one(tokenizer):
    encs = encode_batch(TRICKY, tokenizer, 10)
    assert encs == [encode(t, tokenizer, 10) for t in TRICKY]
    assert encode_batch([], tokenizer, 10) == []


ALPHABET = st.one_of(
    st.characters(min_codepoint=0x4E00, max_codepoint=0x4E80),  # CJK
    st.characters(min_codepoint=0x20, max_codepoint=0x7E),  # printable ASCII
    st.sampled_from(list(" \t\n\u3000\xa0，。：；！？（）《》“”、ｈｅｌｏ０１２😀🎉")),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(ALPHABET, max_size=40), max_length=st.integers(2, 30))
def test_property_every_kept_token_maps_back_to_itself_random_strings(
    text: str, max_length: int, tiny_tokenizer
):
    enc = encode(text, tiny_tokenizer, max_length)
    assert len(enc) <= max_length
    check_alignment(text, enc, tiny_tokenizer)


@pytest.mark.skipif(not REAL_TOKENIZER.exists(), reason="../shared tokenizer absent")
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(ALPHABET, max_size=40), max_length=st.integers(2, 30))
def test_property_real_tokenizer_every_kept_token_maps_back_random_strings(
    text: str, max_length: int, real_tokenizer
):
    enc = encode(text, real_tokenizer, max_length)
    assert len(enc) <= max_length
    check_alignment(text, enc, real_tokenizer)
