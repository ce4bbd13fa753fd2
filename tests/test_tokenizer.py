"""data/tokenizer.py: the trained WordPiece tokenizer's offsets, save/load, and load errors."""

from __future__ import annotations

import json
from pathlib import Path

import huggingface_hub.constants
import pytest
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from gplinker.data.tokenizer import SPECIAL_TOKENS, build_wordpiece_tokenizer, load_tokenizer
from gplinker.errors import GPLinkerError

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"


def sample_texts() -> list[str]:
    return [
        json.loads(line)["text"]
        for split in ("train", "dev")
        for line in (SAMPLE / f"{split}.json").read_text(encoding="utf-8").splitlines()
    ]


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return sample_texts()


@pytest.fixture(scope="module")
def tok(texts: list[str]) -> PreTrainedTokenizerFast:
    return build_wordpiece_tokenizer(texts)


def test_special_tokens_have_ids_0_to_4_and_wrap_every_text(tok: PreTrainedTokenizerFast) -> None:
    assert tok.convert_ids_to_tokens(list(range(5))) == list(SPECIAL_TOKENS)
    assert (tok.pad_token_id, tok.unk_token_id, tok.cls_token_id, tok.sep_token_id) == (0, 1, 2, 3)
    ids = tok("雀巢裁员")["input_ids"]
    assert (ids[0], ids[-1], len(ids)) == (2, 3, 6)


def test_offsets_map_every_token_back_to_its_characters(
    tok: PreTrainedTokenizerFast, texts: list[str]
) -> None:
    extra = ["Zoom以9亿美元收购Ωmega", "  前后 有空格\t的句子 ", "AT&T 2019年 ##x"]
    for text in [*texts, *extra]:
        enc = tok(text, return_offsets_mapping=True)
        tokens = tok.convert_ids_to_tokens(enc["input_ids"])
        assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
        assert enc["offset_mapping"][0] == enc["offset_mapping"][-1] == (0, 0)
        ends = 0
        for token, (s, e) in zip(tokens[1:-1], enc["offset_mapping"][1:-1], strict=True):
            assert ends <= s < e, (text, token, s, e)  # in order, never empty
            ends = e
            if token != "[UNK]":
                assert text[s:e] == token.removeprefix("##"), (text, token, s, e)


def test_chinese_characters_are_single_tokens_and_digits_latin_are_not(
    tok: PreTrainedTokenizerFast, texts: list[str]
) -> None:
    vocab = tok.get_vocab()
    chinese = [t for t in vocab if any("\u4e00" <= ch <= "\u9fff" for ch in t)]
    assert chinese and all(len(t.removeprefix("##")) == 1 for t in chinese)
    assert [t for t in vocab if t.isdigit() and len(t) > 1], "no multi-digit token"
    assert [t for t in vocab if t.isascii() and t.isalpha() and len(t) > 1]
    tokens = tok.tokenize("IBM以12亿美元收购Google，2019年3月裁员4000人")
    assert "12" in tokens and "2019" in tokens and "4000" in tokens
    assert tok.unk_token not in tok.tokenize("".join(texts[:50]))


def test_same_texts_same_vocabulary(tok: PreTrainedTokenizerFast, texts: list[str]) -> None:
    assert build_wordpiece_tokenizer(texts).get_vocab() == tok.get_vocab()
    full = tok.get_vocab()
    chars = [t for t in full if len(t.removeprefix("##")) == 1 or t in SPECIAL_TOKENS]
    small = build_wordpiece_tokenizer(texts, vocab_size=len(chars) + 3).get_vocab()
    assert len(small) == len(chars) + 3 and set(small) <= set(full)
    # below the alphabet's size every character is still kept
    assert set(build_wordpiece_tokenizer(texts, vocab_size=10).get_vocab()) == set(chars)


def test_save_then_load_gives_the_same_ids(
    tok: PreTrainedTokenizerFast, texts: list[str], tmp_path: Path
) -> None:
    tok.save_pretrained(tmp_path)
    for again in (AutoTokenizer.from_pretrained(tmp_path), load_tokenizer(tmp_path)):
        assert again.is_fast
        assert again.pad_token_id == 0 and again.cls_token_id == 2
        for text in texts[:100]:
            a = tok(text, return_offsets_mapping=True)
            b = again(text, return_offsets_mapping=True)
            assert (a["input_ids"], a["offset_mapping"]) == (b["input_ids"], b["offset_mapping"])


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    # huggingface_hub reads HF_HUB_OFFLINE once, at import; set both
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


@pytest.mark.usefixtures("offline")
def test_unknown_name_offline_says_give_a_local_folder() -> None:
    with pytest.raises(GPLinkerError) as info:
        load_tokenizer("no-such-org/no-such-tokenizer")
    assert str(info.value) == (
        "tokenizer 'no-such-org/no-such-tokenizer' is not on this machine and the hub is "
        "unreachable; give a local folder"
    )


@pytest.mark.usefixtures("offline")
def test_folder_without_tokenizer_files_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(GPLinkerError, match="cannot load tokenizer from"):
        load_tokenizer(tmp_path)


# ---- split_digits: letters and digits that touch become two words ---------------------------
TOUCHING = "Oracle2019年3月裁员，AT&T2020年"


def _tokens_and_offsets(tokenizer: PreTrainedTokenizerFast, text: str) -> list[tuple[str, str]]:
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    tokens = tokenizer.convert_ids_to_tokens(enc["input_ids"])
    return [(t, text[s:e]) for t, (s, e) in zip(tokens, enc["offset_mapping"], strict=True)]


def test_split_digits_makes_a_boundary_between_letters_and_digits(tmp_path: Path) -> None:
    plain = build_wordpiece_tokenizer([TOUCHING])
    split = build_wordpiece_tokenizer([TOUCHING], split_digits=True)
    assert ("Oracle2019", "Oracle2019") in _tokens_and_offsets(plain, TOUCHING)
    pieces = _tokens_and_offsets(split, TOUCHING)
    assert pieces[:3] == [("Oracle", "Oracle"), ("2019", "2019"), ("年", "年")]
    assert ("T", "T") in pieces and ("2020", "2020") in pieces
    split.save_pretrained(tmp_path)
    assert _tokens_and_offsets(load_tokenizer(tmp_path), TOUCHING) == pieces


def test_split_digits_on_a_bert_folder_survives_save_and_load(tmp_path: Path) -> None:
    """A BertTokenizer folder rebuilds BERT's own pre-tokenizer when it is loaded: the split
    must be saved as a plain tokenizer.json, or a model would predict unlike it trained."""
    from transformers import BertTokenizerFast

    from gplinker.data.tokenizer import with_split_digits

    words = [*SPECIAL_TOKENS, "oracle", "2019", "年", "3", "月"]
    BertTokenizerFast(vocab={w: i for i, w in enumerate(words)}).save_pretrained(tmp_path / "bert")
    bert = load_tokenizer(tmp_path / "bert")
    text = "Oracle2019年3月"
    assert [t for t, _ in _tokens_and_offsets(bert, text)] == ["[UNK]", "年", "3", "月"]
    split = with_split_digits(bert)
    expected = [("oracle", "Oracle"), ("2019", "2019"), ("年", "年"), ("3", "3"), ("月", "月")]
    assert _tokens_and_offsets(split, text) == expected
    assert split("年")["input_ids"] == bert("年")["input_ids"]  # same ids, [CLS] ... [SEP]
    split.save_pretrained(tmp_path / "saved")
    assert _tokens_and_offsets(load_tokenizer(tmp_path / "saved"), text) == expected


@pytest.mark.parametrize(
    ("pretrained", "option", "splits"),
    [(False, None, True), (True, None, False), (False, False, False), (True, True, True)],
)
def test_split_digits_is_the_default_for_random_init_encoders(
    pretrained: bool, option: bool | None, splits: bool
) -> None:
    from gplinker.config import Config
    from gplinker.training import build_tokenizer

    config = Config.model_validate(
        {
            "task": "entity",
            "data": {"train": "t.json"},
            "model": {"pretrained": pretrained, "tokenizer": "wordpiece", "split_digits": option},
        }
    )
    example = type("Example", (), {"text": TOUCHING})()
    tokens = [t for t, _ in _tokens_and_offsets(build_tokenizer(config.model, [example]), TOUCHING)]
    assert ("2019" in tokens) is splits
