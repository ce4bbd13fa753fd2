"""Each training option of the DuEE kit does what its config key says: optimisers, warmup and
decay, clipping, the soft-label loss, the gradient penalty, EMA, bf16 autocast, TensorBoard.

Runs use 16 sample sentences in one batch, so an epoch is one optimiser step."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import EVENT, ROOT, SAMPLE, TINY_ENCODER, event_heads, label_counts
from safetensors.torch import load_file
from torch.testing import assert_close

from gplinker import training
from gplinker.config import ModelConfig, load_config
from gplinker.data.collate import collate
from gplinker.losses import gradient_penalty
from gplinker.modeling.model import GPLinkerModel
from gplinker.training import build_optimizer, compute_loss, lr_factor, prepare_examples, train


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("data")
    for split, n in (("train", 16), ("dev", 8)):
        lines = (SAMPLE / f"{split}.json").read_text(encoding="utf-8").splitlines()[:n]
        (folder / f"{split}.json").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def tiny_config(data: Path, out: Path, *overrides: str):
    shape = ",".join(f"{k}: {v}" for k, v in TINY_ENCODER.items())
    return load_config(
        ROOT / "configs/sample.yaml",
        [
            f"data.train={data / 'train.json'}",
            f"data.dev={data / 'dev.json'}",
            f"output_dir={out}",
            "data.max_length=48",
            "model.head_size=8",
            f"model.encoder_overrides={{{shape}}}",
            "train.batch_size=16",
            "train.epochs=2",
            "train.warmup_steps=0",
            "train.schedule=constant",
            "train.tensorboard=false",
            *overrides,
        ],
    )


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


class StepSpy:
    """Wraps build_optimizer: records lr and gradient norm at every optimiser step."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.lrs: list[float] = []
        self.grad_norms: list[float] = []
        original = training.build_optimizer

        def build(model, config):
            opt = original(model, config)
            opt.register_step_pre_hook(self.record)
            return opt

        monkeypatch.setattr(training, "build_optimizer", build)

    def record(self, opt: torch.optim.Optimizer, _args: tuple, _kwargs: dict) -> None:
        grads = [p.grad for g in opt.param_groups for p in g["params"] if p.grad is not None]
        norms = torch.stack([torch.linalg.vector_norm(g) for g in grads])
        self.grad_norms.append(float(torch.linalg.vector_norm(norms)))
        self.lrs.append(opt.param_groups[0]["lr"])


@pytest.mark.parametrize(("name", "kind"), [("adax", "AdaX"), ("adamw", "AdamW"), ("adam", "Adam")])
def test_optimizer_key_picks_the_optimiser(name, kind) -> None:
    config = load_config(ROOT / "configs/sample.yaml", [f"train.optimizer={name}"])
    assert type(build_optimizer(torch.nn.Linear(2, 2), config)).__name__ == kind


def test_adam_weight_decay_is_l2_in_the_gradient_and_adamw_decays_apart() -> None:
    # with a zero loss gradient, AdamW only shrinks by lr·wd, while Adam normalises the L2
    # gradient wd·θ and moves by about lr
    moved = {}
    for name in ("adam", "adamw"):
        config = load_config(
            ROOT / "configs/sample.yaml",
            [f"train.optimizer={name}", "train.lr=0.1", "train.weight_decay=0.01"],
        )
        p = torch.nn.Parameter(torch.tensor([1.0]))
        opt = build_optimizer(torch.nn.ParameterList([p]), config)
        p.grad = torch.zeros(1)
        opt.step()
        moved[name] = 1.0 - p.item()
    assert moved["adamw"] == pytest.approx(0.1 * 0.01, rel=1e-4)
    assert moved["adam"] == pytest.approx(0.1, rel=1e-3)


def test_the_scheduler_sets_each_steps_lr_from_warmup_and_decay(tiny_data, tmp_path, monkeypatch):
    spy = StepSpy(monkeypatch)
    config = tiny_config(
        tiny_data, tmp_path, "train.epochs=6", "train.warmup_steps=2", "train.schedule=linear"
    )
    train(config)
    expected = [config.train.lr * lr_factor(s, 6, config) for s in range(6)]
    assert spy.lrs == pytest.approx(expected)
    assert spy.lrs[0] < spy.lrs[1] == pytest.approx(config.train.lr) and spy.lrs[-1] < spy.lrs[2]


@pytest.mark.parametrize("clip", [0.0, 1e-3])
def test_gradients_are_clipped_to_max_grad_norm(tiny_data, tmp_path, monkeypatch, clip) -> None:
    spy = StepSpy(monkeypatch)
    train(tiny_config(tiny_data, tmp_path, f"train.max_grad_norm={clip}"))
    if clip:
        assert max(spy.grad_norms) <= clip * 1.001
    else:
        assert min(spy.grad_norms) > 1.0  # the untrained loss has large gradients


@pytest.fixture(scope="module")
def batch_and_models(sample_examples, tiny_tokenizer, schema):
    _, items, _ = prepare_examples(sample_examples[:6], tiny_tokenizer, EVENT, schema, 64)
    batch = collate(items, label_counts(schema))
    models = {}
    for pointer in ("efficient", "original"):
        torch.manual_seed(0)
        config = ModelConfig(
            pretrained=False, encoder_overrides=TINY_ENCODER, head_size=16, pointer=pointer
        )
        models[pointer] = GPLinkerModel.from_encoder(
            config, event_heads(schema), len(tiny_tokenizer)
        )
    return batch, models


@pytest.mark.parametrize("pointer", ["efficient", "original"])
def test_soft_loss_without_smoothing_is_the_sparse_loss(batch_and_models, pointer) -> None:
    batch, models = batch_and_models
    out = models[pointer](batch.input_ids, batch.attention_mask, factored=True)
    heads = models[pointer].heads
    hard = compute_loss(out, batch, heads)
    assert_close(compute_loss(out, batch, heads, "soft", 0.0), hard, rtol=1e-5, atol=1e-4)
    assert compute_loss(out, batch, heads, "soft", 0.1) > hard + 1.0  # ε on ~10^4 negative cells


def test_label_smoothing_needs_the_soft_loss() -> None:
    from gplinker.errors import ConfigError

    with pytest.raises(ConfigError, match="label_smoothing needs loss: soft"):
        load_config(ROOT / "configs/sample.yaml", ["train.label_smoothing=0.1"])


def test_the_penalised_input_is_the_embedding_the_loss_reads(batch_and_models) -> None:
    """‖∇_x loss‖² from the captured embeddings matches finite differences along ∇."""
    batch, models = batch_and_models
    model = models["efficient"].eval()
    captured = training._capture_input_embeddings(model)
    out = model(batch.input_ids, batch.attention_mask, factored=True)
    loss = compute_loss(out, batch, model.heads)
    penalty = gradient_penalty(loss, captured["output"])
    (grad,) = torch.autograd.grad(loss, captured["output"], retain_graph=True)
    assert_close(penalty, grad.square().sum())
    direction, h = grad / grad.norm(), 1e-3
    shifted = []
    for sign in (1, -1):  # shift the embedding output itself through a second hook
        handle = model.encoder.get_input_embeddings().register_forward_hook(
            lambda _m, _i, out, s=sign: out + s * h * direction
        )
        with torch.no_grad():
            out = model(batch.input_ids, batch.attention_mask, factored=True)
            shifted.append(compute_loss(out, batch, model.heads))
        handle.remove()
    slope = (shifted[0] - shifted[1]) / (2 * h)  # = ∇·d = ‖∇‖
    assert slope.item() == pytest.approx(penalty.sqrt().item(), rel=2e-2)


def test_gradient_penalty_changes_the_update(tiny_data, tmp_path) -> None:
    plain = train(tiny_config(tiny_data, tmp_path / "plain", "train.epochs=1"))
    penal = train(
        tiny_config(tiny_data, tmp_path / "gp", "train.epochs=1", "train.gradient_penalty=1.0")
    )
    a, b = weights(plain.last_dir), weights(penal.last_dir)
    assert not torch.equal(a["argu.dense.weight"], b["argu.dense.weight"])


def test_ema_weights_are_what_is_evaluated_and_saved(tiny_data, tmp_path) -> None:
    """With decay ≈ 1 the average stays at the first step's weights: the saved model after
    three steps equals a one-step run's, not a three-step run's."""
    lr = "train.lr=0.01"  # steps large enough to tell apart
    one = train(tiny_config(tiny_data, tmp_path / "one", lr, "train.epochs=1"))
    three = train(tiny_config(tiny_data, tmp_path / "three", lr, "train.epochs=3"))
    ema = train(
        tiny_config(tiny_data, tmp_path / "ema", lr, "train.epochs=3", "train.ema_decay=0.9999999")
    )
    w1, w3, we = weights(one.last_dir), weights(three.last_dir), weights(ema.last_dir)
    key = "argu.dense.weight"
    assert_close(we[key], w1[key], rtol=0, atol=1e-5)
    assert (we[key] - w3[key]).abs().max() > 1e-3
    assert ema.best == one.best  # dev metrics were computed with the averaged weights


def test_bf16_autocast_runs_the_encoder_in_bf16(tiny_data, tmp_path, monkeypatch) -> None:
    dtypes: set[torch.dtype] = set()
    original = GPLinkerModel.from_encoder

    def from_encoder(*args, **kwargs):
        model = original(*args, **kwargs)
        # a Linear: autocast runs it in bf16 (a LayerNorm it keeps in fp32)
        linear = next(m for m in model.encoder.encoder.modules() if isinstance(m, torch.nn.Linear))
        linear.register_forward_hook(lambda _m, _i, out: dtypes.add(out.dtype))
        return model

    monkeypatch.setattr(training.GPLinkerModel, "from_encoder", from_encoder)
    result = train(tiny_config(tiny_data, tmp_path, "train.mixed_precision=bf16"))
    assert torch.bfloat16 in dtypes
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert all(torch.isfinite(torch.tensor(r["train_loss"])) for r in rows) and result.best


def test_tensorboard_gets_the_per_epoch_metrics(tiny_data, tmp_path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(tiny_config(tiny_data, tmp_path, "train.tensorboard=true", "train.log_every=1"))
    [events] = list((tmp_path / "tb").rglob("events.out.tfevents.*"))
    acc = EventAccumulator(str(events.parent))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"dev/event_f1", "dev/argument_f1", "dev/official_f1", "train/loss"} <= tags
    assert [e.step for e in acc.Scalars("dev/event_f1")] == [1, 2]  # one per epoch


@pytest.mark.skipif(torch.cuda.is_available(), reason="fp16 works where a GPU is")
def test_fp16_on_a_cpu_is_a_config_error_naming_the_key(tiny_data, tmp_path) -> None:
    from gplinker.errors import ConfigError

    with pytest.raises(ConfigError, match=r"train\.mixed_precision.*fp16"):
        train(tiny_config(tiny_data, tmp_path, "train.mixed_precision=fp16"))


def test_bad_training_lines_fail_the_run_or_are_skipped_and_counted(tiny_data, tmp_path, caplog):
    from gplinker.errors import InputError

    lines = (tiny_data / "train.json").read_text(encoding="utf-8").splitlines()
    bad = tmp_path / "train.json"
    bad.write_text("\n".join([*lines, lines[0], "not json"]) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"train\.json:18"):
        train(tiny_config(tiny_data, tmp_path / "fail", f"data.train={bad}"))
    run = tmp_path / "skip"
    train(tiny_config(tiny_data, run, f"data.train={bad}", "data.skip_invalid=true"))
    assert "2 of 18 lines are invalid" in caplog.text


@pytest.mark.parametrize("world", [1, 2, 3])
def test_each_epoch_trains_every_example_exactly_once_over_all_processes(world) -> None:
    """The batches `train()` runs (length buckets, split over DDP processes) cover each
    example once per epoch; epochs differ in order; a (seed, epoch) always gives the same."""
    config = load_config(ROOT / "configs/sample.yaml", ["train.batch_size=8"])
    lengths = [(7 * i) % 61 + 1 for i in range(203)]
    orders = []
    for epoch in (1, 2):
        batches = training._epoch_batches(lengths, config, epoch)
        assert batches == training._epoch_batches(lengths, config, epoch)
        seen, shares = [], []
        for idx in batches:
            parts = [training._shard(idx, rank, world) for rank in range(world)]
            seen += [i for mine, weight in parts if weight > 0 for i in mine]
            shares.append(sum(weight for _, weight in parts))
        assert sorted(seen) == list(range(len(lengths)))
        assert shares == pytest.approx([1.0] * len(batches))  # the gradients add up to one batch
        orders.append(seen)
    assert orders[0] != orders[1]
