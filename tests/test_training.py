"""training.py: the loss the loop optimises, the learning-rate schedule, both pointer kinds."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from conftest import EVENT, ROOT, TINY_ENCODER, event_heads, label_counts
from torch.testing import assert_close

from gplinker.config import ModelConfig, load_config
from gplinker.data.collate import collate
from gplinker.modeling.model import GPLinkerModel
from gplinker.training import compute_loss, lr_factor, prepare_examples, train


@pytest.fixture(scope="module")
def batch_and_model(sample_examples, tiny_tokenizer, schema):
    _, items, _ = prepare_examples(sample_examples[:6], tiny_tokenizer, EVENT, schema, 64)
    batch = collate(items, label_counts(schema))
    torch.manual_seed(0)
    config = ModelConfig(pretrained=False, encoder_overrides=TINY_ENCODER, head_size=16)
    model = GPLinkerModel.from_encoder(config, event_heads(schema), len(tiny_tokenizer)).eval()
    return batch, model


def test_factored_training_loss_equals_the_loss_on_dense_scores(batch_and_model) -> None:
    batch, model = batch_and_model
    dense = compute_loss(model(batch.input_ids, batch.attention_mask), batch, model.heads)
    factored = compute_loss(
        model(batch.input_ids, batch.attention_mask, factored=True), batch, model.heads
    )
    assert_close(factored, dense, rtol=1e-5, atol=1e-4)


def test_factored_training_loss_has_the_dense_gradient(batch_and_model) -> None:
    batch, model = batch_and_model
    grads = []
    for factored in (False, True):
        model.zero_grad()
        compute_loss(
            model(batch.input_ids, batch.attention_mask, factored=factored), batch, model.heads
        ).backward()
        grads.append(model.argu.dense.weight.grad.clone())
    assert_close(grads[1], grads[0], rtol=1e-4, atol=1e-5)


def test_loss_is_summed_over_labels_and_averaged_over_the_batch(batch_and_model) -> None:
    batch, model = batch_and_model
    one = collate_first(batch)
    per_text = [compute_loss(model(*x), y, model.heads) for x, y in one]
    whole = compute_loss(model(batch.input_ids, batch.attention_mask), batch, model.heads)
    # texts padded to the batch length: the same scores on real cells, so the mean matches
    assert_close(whole, torch.stack(per_text).mean(), rtol=1e-4, atol=1e-3)


def collate_first(batch):
    """Each text of the batch as a batch of one (same padding, same labels)."""
    from gplinker.data.collate import Batch

    for b in range(batch.input_ids.shape[0]):
        sl = slice(b, b + 1)
        yield (
            (batch.input_ids[sl], batch.attention_mask[sl]),
            Batch(
                batch.input_ids[sl],
                batch.attention_mask[sl],
                {name: y[sl] for name, y in batch.labels.items()},
            ),
        )


@pytest.mark.parametrize(
    ("schedule", "step", "expected"),
    [
        ("constant", 0, 0.1),  # warmup: (0 + 1) / 10
        ("constant", 9, 1.0),
        ("constant", 60, 1.0),
        ("linear", 10, 1.0),
        ("linear", 60, 0.5),  # halfway through the 100 steps after warmup
        ("linear", 110, 0.0),
        ("cosine", 60, 0.5),
        ("cosine", 35, 0.5 * (1 + math.cos(math.pi * 0.25))),
    ],
)
def test_lr_factor_warms_up_then_follows_its_schedule(schedule, step, expected) -> None:
    config = load_config(
        ROOT / "configs/sample.yaml", [f"train.schedule={schedule}", "train.warmup_steps=10"]
    )
    assert lr_factor(step, 110, config) == pytest.approx(expected)


def test_train_with_the_original_global_pointer_writes_loadable_folders(tmp_path: Path) -> None:
    shape = ",".join(f"{k}: {v}" for k, v in TINY_ENCODER.items())
    config = load_config(
        ROOT / "configs/sample.yaml",
        [
            f"output_dir={tmp_path}",
            "train.epochs=1",
            "data.max_length=48",
            "model.pointer=original",
            "model.head_size=8",
            f"model.encoder_overrides={{{shape}}}",
        ],
    )
    result = train(config)
    assert set(result.best) == {"event", "argument", "trigger", "official", "argument_reference"}
    folder = json.loads((result.best_dir / "config.json").read_text())
    assert folder["pointer"] == "original"
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["steps"] > 0 and run["best_epoch"] == 1
    from gplinker.predict import GPLinker

    events = GPLinker.from_pretrained(result.best_dir, device="cpu").extract(["雀巢裁员4000人"])
    assert len(events) == 1
