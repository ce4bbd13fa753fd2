"""model.vocab_min_count: a tokenizer cut to the tokens of the training texts keeps
tokens, offsets and special tokens right, and trains a model with a smaller embedding."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import SAMPLE, SHARED, TINY_ENCODER, sample_texts
from hypothesis import given, settings
from hypothesis import strategies as st

from gplinker.config import load_config
from gplinker.data.alignment import encode_windows
from gplinker.data.tokenizer import cut_vocabulary, load_tokenizer
from gplinker.errors import ConfigError
from gplinker.predict import GPLinker
from gplinker.training import train

BERT = SHARED / "models" / "bert-base-chinese-tokenizer"


@pytest.fixture(scope="module")
def full():
    if not BERT.is_dir():
        pytest.skip("needs ../shared/models/bert-base-chinese-tokenizer")
    return load_tokenizer(BERT)


@pytest.fixture(scope="module")
def cut(full):
    return cut_vocabulary(full, sample_texts())


def tokens_and_offsets(tokenizer, text: str) -> list[tuple[str, tuple[int, int]]]:
    enc = tokenizer(text, return_offsets_mapping=True)
    tokens = tokenizer.convert_ids_to_tokens(enc["input_ids"])
    return list(zip(tokens, enc["offset_mapping"], strict=True))


def test_a_text_of_kept_tokens_tokenizes_exactly_as_before(full, cut) -> None:
    for text in sample_texts("train")[:200]:  # every token of these was counted
        assert tokens_and_offsets(cut, text) == tokens_and_offsets(full, text)
    assert len(cut) < len(full) / 3


def test_the_cut_keeps_exactly_the_tokens_seen_and_the_special_ones(full, cut) -> None:
    seen = {t for text in sample_texts() for t in full.tokenize(text)}
    assert set(cut.get_vocab()) == seen | set(full.all_special_tokens)
    assert sorted(cut.get_vocab().values()) == list(range(len(cut)))  # renumbered, no gaps


def test_special_tokens_keep_their_roles_with_new_ids(cut) -> None:
    ids = cut("雀巢")["input_ids"]
    assert ids[0] == cut.cls_token_id and ids[-1] == cut.sep_token_id
    for name in ("pad", "unk", "cls", "sep", "mask"):
        token = getattr(cut, f"{name}_token")
        assert cut.convert_tokens_to_ids(token) == getattr(cut, f"{name}_token_id") < len(cut)


def test_an_unseen_character_is_unk_at_its_own_offsets(cut) -> None:
    text = "雀巢裁员鼹鼠4000人"  # 鼹鼠 (mole) is in bert-base-chinese, not in the sample texts
    pairs = tokens_and_offsets(cut, text)
    unk = [(s, e) for t, (s, e) in pairs if t == "[UNK]"]
    assert [text[s:e] for s, e in unk] == ["鼹", "鼠"]
    assert pairs[-2] == ("人", (10, 11))  # the offsets after the [UNK]s are unchanged


def test_min_count_drops_rare_tokens(full) -> None:
    texts = ["雀巢裁员", "雀巢收购", "雀巢"]
    twice = cut_vocabulary(full, texts, min_count=2)
    assert {"雀", "巢"} <= set(twice.get_vocab())
    assert not {"裁", "员", "收", "购"} & set(twice.get_vocab())


@settings(max_examples=60, deadline=None)
@given(
    st.text(st.sampled_from("雀巢裁员苹果收购鼹鼠😀𠀀 AT&T Google 2019年\u200b。，"), max_size=80)
)
def test_windows_of_the_cut_tokenizer_keep_offsets_into_the_text(cut, text) -> None:
    (windows,) = encode_windows([text], cut, max_length=16, overlap=4)
    for window in windows:
        tokens = cut.convert_ids_to_tokens(window.input_ids)
        for token, (s, e) in zip(tokens, window.offsets, strict=True):
            if s == e:
                assert token in cut.all_special_tokens
            elif token != "[UNK]":  # the normalizer drops zero-width spaces inside a token
                assert text[s:e].replace("\u200b", "") == token.removeprefix("##")


def test_save_and_load_keep_the_cut(tmp_path: Path, cut) -> None:
    cut.save_pretrained(tmp_path)
    again = load_tokenizer(tmp_path)
    text = "雀巢裁员鼹鼠4000人"
    assert tokens_and_offsets(again, text) == tokens_and_offsets(cut, text)
    assert len(again) == len(cut)


def test_training_with_a_cut_sizes_the_embedding_to_it(tmp_path: Path, full) -> None:
    config = load_config(
        SAMPLE.parent.parent / "configs" / "sample.yaml",
        [
            f"model.tokenizer={BERT}",
            "model.vocab_min_count=2",
            f"model.encoder_overrides={TINY_ENCODER}",
            "train.epochs=1",
            "train.tensorboard=false",
            f"output_dir={tmp_path}",
        ],
    )
    result = train(config)
    model = GPLinker.from_pretrained(result.best_dir, device="cpu")
    rows = model.model.encoder.get_input_embeddings().num_embeddings
    assert rows == len(model.tokenizer) < len(full) / 3
    assert len(model.extract(["雀巢裁员4000人"])) == 1


def test_a_cut_with_pretrained_weights_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="vocab_min_count needs pretrained: false"):
        load_config(SAMPLE.parent.parent / "configs" / "duee.yaml", ["model.vocab_min_count=2"])
