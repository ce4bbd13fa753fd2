"""bf16 and fp16 autocast, on the CPU (issue 12, part 2): the encoder runs in the low
precision, the pointers, their scores and masks and the loss stay fp32, and a model trained
so can take a step, be evaluated, predict, and be saved and loaded.

fp16 used to crash: its masks (-1e12) do not fit in half precision. Under bf16 the
pointers' Linear layers and einsum gave bf16 scores although the docs said fp32.
"""

from __future__ import annotations

import json

import pytest
import torch
from conftest import EVENT, ROOT, SAMPLE, TINY_ENCODER, event_heads, label_counts, sample_texts

from gplinker import training
from gplinker.config import ModelConfig, load_config
from gplinker.data.alignment import encode_windows
from gplinker.data.collate import collate
from gplinker.data.reader import read_examples
from gplinker.metrics import evaluate
from gplinker.modeling.global_pointer import NEG, Factored
from gplinker.modeling.model import GPLinkerModel
from gplinker.optim import AdaX
from gplinker.predict import GPLinker
from gplinker.training import compute_loss, prepare_examples, train

LOW = [torch.float16, torch.bfloat16]
POINTERS = ["efficient", "original"]


def model_for(schema, tokenizer, pointer: str) -> GPLinkerModel:
    torch.manual_seed(0)
    config = ModelConfig(
        pretrained=False, encoder_overrides=TINY_ENCODER, pointer=pointer, head_size=8
    )
    return GPLinkerModel.from_encoder(config, event_heads(schema), len(tokenizer))


def record_dtypes(model: GPLinkerModel) -> dict[str, set[torch.dtype]]:
    """Output dtypes of one encoder Linear and of every pointer Linear, per forward."""
    seen: dict[str, set[torch.dtype]] = {"encoder": set(), "pointers": set()}
    encoder_linear = next(m for m in model.encoder.modules() if isinstance(m, torch.nn.Linear))
    encoder_linear.register_forward_hook(lambda _m, _i, out: seen["encoder"].add(out.dtype))
    for pointer in (model.argu, model.head_link, model.tail_link):
        for layer in pointer.modules():
            if isinstance(layer, torch.nn.Linear):
                layer.register_forward_hook(lambda _m, _i, out: seen["pointers"].add(out.dtype))
    return seen


def a_batch(sample_examples, tiny_tokenizer, schema):
    _, items, _ = prepare_examples(sample_examples[:6], tiny_tokenizer, EVENT, schema, 48)
    return collate(items, label_counts(schema))


@pytest.mark.parametrize("pointer", POINTERS)
@pytest.mark.parametrize("dtype", LOW)
def test_pointers_scores_and_masks_stay_fp32_under_autocast(
    dtype, pointer, sample_examples, tiny_tokenizer, schema
):
    model = model_for(schema, tiny_tokenizer, pointer).eval()
    seen = record_dtypes(model)
    batch = a_batch(sample_examples, tiny_tokenizer, schema)
    with torch.no_grad(), torch.autocast("cpu", dtype=dtype):
        outs = [model(batch.input_ids, batch.attention_mask, factored=f) for f in (True, False)]
    assert seen["encoder"] == {dtype}  # autocast is really on for the encoder
    assert seen["pointers"] == {torch.float32}
    for out in outs:
        for scores in (out["argu"], out["head_link"], out["tail_link"]):
            if isinstance(scores, Factored):
                assert {scores.qk.dtype, scores.col.dtype, scores.row.dtype} == {torch.float32}
                scores = scores.dense()
            assert scores.dtype == torch.float32
            # the lower triangle holds the mask value itself, not -inf and not a clipped one
            assert (scores[:, :, 2, 1] == NEG).all()


@pytest.mark.parametrize("pointer", POINTERS)
@pytest.mark.parametrize("dtype", LOW)
def test_a_training_step_under_autocast_is_finite_and_moves_the_weights(
    dtype, pointer, sample_examples, tiny_tokenizer, schema
):
    model = model_for(schema, tiny_tokenizer, pointer).train()
    optimizer = AdaX(model.parameters(), lr=1e-3)
    batch = a_batch(sample_examples, tiny_tokenizer, schema)
    before = model.argu.dense.weight.detach().clone()
    with torch.autocast("cpu", dtype=dtype):
        out = model(batch.input_ids, batch.attention_mask, factored=True)
    loss = compute_loss(out, batch, model.heads)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    optimizer.step()
    assert not torch.equal(before, model.argu.dense.weight)


@pytest.mark.parametrize("dtype", LOW)
def test_predict_under_autocast_then_save_and_load(dtype, tmp_path, tiny_tokenizer, schema):
    torch.manual_seed(0)
    model = model_for(schema, tiny_tokenizer, "efficient").eval()
    linker = GPLinker(model, tiny_tokenizer, schema, max_length=48, max_candidates=32)
    texts = sample_texts("dev")[:8]
    with torch.autocast("cpu", dtype=dtype):
        low = linker.extract(texts)
    assert len(low) == len(texts)
    linker.save_pretrained(tmp_path / "model")
    loaded = GPLinker.from_pretrained(tmp_path / "model", device="cpu", max_candidates=32)
    assert loaded.extract(texts) == linker.extract(texts)  # fp32, bit for bit the same model
    with torch.autocast("cpu", dtype=dtype):
        assert loaded.extract(texts) == low


def test_bf16_training_evaluates_dev_in_fp32_as_predict_does(tmp_path, monkeypatch):
    """The step runs under autocast, dev evaluation does not: the best epoch's dev figures
    are those `gplinker predict` + `evaluate` give for best/."""
    autocast_in: dict[bool, set[bool]] = {True: set(), False: set()}  # training? -> autocast?
    original = GPLinkerModel.from_encoder

    def from_encoder(*args, **kwargs):
        model = original(*args, **kwargs)

        def hook(module, _inputs, _out):
            autocast_in[module.training].add(torch.is_autocast_enabled("cpu"))

        model.encoder.register_forward_hook(hook)
        return model

    monkeypatch.setattr(training.GPLinkerModel, "from_encoder", from_encoder)
    for split, n in (("train", 32), ("dev", 16)):  # two steps an epoch
        lines = (SAMPLE / f"{split}.json").read_text(encoding="utf-8").splitlines()[:n]
        (tmp_path / f"{split}.json").write_text("\n".join(lines) + "\n", encoding="utf-8")
    shape = ",".join(f"{k}: {v}" for k, v in TINY_ENCODER.items())
    config = load_config(
        ROOT / "configs/sample.yaml",
        [
            f"data.train={tmp_path / 'train.json'}",
            f"data.dev={tmp_path / 'dev.json'}",
            f"output_dir={tmp_path / 'run'}",
            f"model.encoder_overrides={{{shape}}}",
            "model.head_size=8",
            "train.epochs=2",
            "train.eval_batch_size=32",  # the batches of extract(): the same padding, floats
            "train.tensorboard=false",
            "train.mixed_precision=bf16",
        ],
    )
    result = train(config)
    assert autocast_in == {True: {True}, False: {False}}
    # best/ as `gplinker predict` loads it (fp32, its own batches), scored in memory
    dev = list(read_examples(tmp_path / "dev.json"))
    loaded = GPLinker.from_pretrained(result.best_dir, device="cpu")
    texts = [ex.text for ex in dev]
    windows = encode_windows(texts, loaded.tokenizer, loaded.max_length, loaded.window_overlap)
    found = loaded.decode_encoded(windows, texts)
    scored = evaluate(
        {ex.id: d.events for ex, d in zip(dev, found, strict=True)},
        {ex.id: ex.events for ex in dev},
        clique_arguments={ex.id: d.clique_arguments for ex, d in zip(dev, found, strict=True)},
    )
    assert scored == result.best
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(torch.isfinite(torch.tensor(r["train_loss"])) for r in rows)
