"""pretrain.*: BERT's masking rule, the tied head, and masked-LM pretraining inside train()."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import EVENT, ROOT, SAMPLE, TINY_ENCODER

from gplinker.config import load_config
from gplinker.errors import ConfigError
from gplinker.pretraining import IGNORE, MLMHead, mask_tokens
from gplinker.training import _pretraining_texts, train

MASK, VOCAB = 4, 1000


def masked(seed: int = 0, p: float = 0.15):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, VOCAB, (400, 100), generator=g)
    never = torch.rand(ids.shape, generator=g) < 0.2  # special tokens and padding
    g = torch.Generator().manual_seed(seed + 10_000)  # a stream apart from the data's
    inputs, labels = mask_tokens(ids, never, MASK, VOCAB, p, g)
    return ids, never, inputs, labels


def test_tokens_in_never_are_never_chosen_and_others_keep_their_input() -> None:
    ids, never, inputs, labels = masked()
    chosen = labels != IGNORE
    assert not (chosen & never).any()
    assert torch.equal(inputs[~chosen], ids[~chosen])
    assert torch.equal(labels[chosen], ids[chosen])  # the label is the original token


@pytest.mark.parametrize("p", [0.15, 0.4])
def test_about_p_of_the_eligible_tokens_are_chosen(p: float) -> None:
    _, never, _, labels = masked(p=p)
    eligible = int((~never).sum())  # ~32 000
    chosen = int((labels != IGNORE).sum())
    sd = (eligible * p * (1 - p)) ** 0.5
    assert abs(chosen - eligible * p) < 4 * sd


def test_chosen_tokens_are_80_percent_mask_10_random_10_kept() -> None:
    ids, _, inputs, labels = masked(p=0.5)
    chosen = labels != IGNORE
    n = int(chosen.sum())  # ~16 000
    to_mask = int((inputs[chosen] == MASK).sum())
    kept = int((inputs[chosen] == ids[chosen]).sum())
    other = n - to_mask - kept
    for count, share in ((to_mask, 0.8), (kept, 0.1), (other, 0.1)):
        sd = (n * share * (1 - share)) ** 0.5
        assert abs(count - n * share) < 4 * sd, (count, share, n)
    swapped = inputs[chosen & (inputs != MASK) & (inputs != ids)]
    assert swapped.min() >= 0 and swapped.max() < VOCAB
    assert len(swapped.unique()) > 0.5 * min(len(swapped), VOCAB)  # spread over the vocab


def test_the_same_generator_seed_masks_the_same_way() -> None:
    assert all(torch.equal(a, b) for a, b in zip(masked(3), masked(3), strict=True))
    assert not torch.equal(masked(3)[2], masked(4)[2])


def test_the_head_is_tied_to_the_input_embedding() -> None:
    embedding = torch.nn.Embedding(50, 8)
    head = MLMHead(embedding, 8)
    logits = head(torch.randn(3, 8))
    assert logits.shape == (3, 50)
    logits.sum().backward()
    assert embedding.weight.grad is not None and embedding.weight.grad.abs().sum() > 0
    assert head.embedding.weight is embedding.weight  # one matrix, not a copy


def recipe(tmp_path: Path, *extra: str):
    return load_config(
        ROOT / "configs" / "sample.yaml",
        [
            f"model.encoder_overrides={TINY_ENCODER}",
            "train.epochs=1",
            "train.tensorboard=false",
            f"output_dir={tmp_path}",
            *extra,
        ],
    )


def test_pretraining_texts_are_train_and_extra_texts_without_dev(tmp_path: Path) -> None:
    from gplinker.data.reader import read_examples
    from gplinker.schema import Schema

    schema = Schema.from_file(SAMPLE / "duee_event_schema.json")
    train_ex = list(read_examples(SAMPLE / "train.json", schema))
    dev_ex = list(read_examples(SAMPLE / "dev.json", schema))
    extra = tmp_path / "unlabeled.json"
    lines = [{"text": "一段没有标注的新闻"}, {"text": dev_ex[0].text}, {"text": train_ex[0].text}]
    extra.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines), "utf-8")
    config = recipe(tmp_path, f"pretrain.texts=[{extra}]")
    texts = _pretraining_texts(config, EVENT, train_ex, dev_ex)
    assert "一段没有标注的新闻" in texts
    assert not {ex.text for ex in dev_ex} & set(texts)
    assert len(texts) == len(set(texts))


def test_train_pretrains_first_and_records_it(tmp_path: Path) -> None:
    result = train(recipe(tmp_path, "pretrain.minutes=0.05", "pretrain.batch_size=16"))
    run = json.loads((result.output_dir / "run.json").read_text())
    mlm = run["pretraining"]
    assert mlm["steps"] > 0 and mlm["texts_seen"] >= 16 * mlm["steps"] - 16
    assert 0.04 < mlm["minutes"] < 0.5 and mlm["loss"] > 0
    assert run["wall_minutes"] > mlm["minutes"]  # pretraining is inside the run's time


def test_pretraining_a_pretrained_encoder_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"pretrain\.minutes is for random-init encoders"):
        load_config(ROOT / "configs" / "duee.yaml", ["pretrain.minutes=5"])
