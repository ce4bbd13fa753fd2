"""train(config): set-up, epochs of steps, dev evaluation, checkpoints, best/ and last/.

`train` reads as its steps (`setup`, `train_epoch`, `evaluate_dev`, `end_epoch`, `finish`),
each callable on its own; none knows which task runs (`gplinker.tasks.get(config.task)`).
A run folder holds: config.yaml (resolved), metrics.jsonl (one line per evaluation),
checkpoints/ (the latest, for `gplinker train --resume`), best/ (highest dev F1 of the
task's main metric) and last/ (end of training), each a GPLinker folder, and run.json (what
ran, how long).
"""

from __future__ import annotations

import json
import logging
import math
import random
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from accelerate.utils import broadcast, gather_object, set_seed
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from transformers import PreTrainedTokenizerFast

from gplinker import allocator, tasks
from gplinker.checkpoint import (
    CHECKPOINTS,
    TrainerState,
    latest_checkpoint,
    load_checkpoint,
    load_ema,
    restore_rng,
    save_checkpoint,
)
from gplinker.config import Config, DataConfig, ModelConfig, config_to_yaml
from gplinker.data.alignment import Encoded, encode_windows
from gplinker.data.collate import Batch, bucketed_batches, collate
from gplinker.data.labels import DropReport, HeadLabels
from gplinker.data.reader import load_examples, read_examples
from gplinker.data.tokenizer import (
    build_wordpiece_tokenizer,
    cut_vocabulary,
    load_tokenizer,
    with_split_digits,
)
from gplinker.errors import ConfigError, GPLinkerError
from gplinker.losses import (
    factored_soft_multilabel_ce,
    factored_sparse_multilabel_ce,
    gradient_penalty,
    sparse_multilabel_ce,
    sparse_soft_multilabel_ce,
)
from gplinker.metrics import PRF
from gplinker.modeling.global_pointer import Factored, PointerSpec, span_mask
from gplinker.modeling.model import GPLinkerModel, ModelOutput
from gplinker.optim import AdaX
from gplinker.predict import GPLinker
from gplinker.pretraining import pretrain_mlm
from gplinker.progress import progress_bar
from gplinker.tasks.base import Task, TextExample

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    best: dict[str, PRF]  # dev metrics of the best epoch (empty without dev data)
    best_epoch: int
    output_dir: Path
    best_dir: Path
    last_dir: Path


def compute_loss(
    out: ModelOutput,
    batch: Batch,
    heads: Sequence[PointerSpec],
    loss: str = "sparse",
    smoothing: float = 0.0,
) -> torch.Tensor:
    """SPEC §4: per head, sum the loss over labels and average over the batch; the heads'
    losses are added. `loss="soft"` is the soft-label form with targets 1 - ε on labels and
    ε on every other valid cell."""
    assert batch.labels is not None, "a training batch has labels"
    total = torch.zeros((), device=batch.input_ids.device)
    for head in heads:
        scores, pos = out[head.name], batch.labels[head.name]
        if isinstance(scores, Factored):
            parts = (scores.qk, scores.col, scores.row, scores.mask, pos)
            if loss == "soft":
                per_label = factored_soft_multilabel_ce(*parts, smoothing)
            else:
                per_label = factored_sparse_multilabel_ce(*parts)
        else:
            B, H, L, _ = scores.shape
            flat = scores.reshape(B, H, L * L)
            valid = span_mask(batch.attention_mask, head.ordered).reshape(B, 1, L * L)
            if loss == "soft":
                per_label = sparse_soft_multilabel_ce(flat, pos, valid, smoothing)
            else:
                per_label = sparse_multilabel_ce(flat, pos, valid)  # [B, H]
        total = total + per_label.sum(1).mean()
    return total


def build_optimizer(model: torch.nn.Module, config: Config) -> torch.optim.Optimizer:
    t = config.train
    match t.optimizer:
        case "adax":
            return AdaX(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
        case "adamw":
            return torch.optim.AdamW(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
        case "adam":  # L2 added to the gradient, as in the Keras reference
            return torch.optim.Adam(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)


def lr_factor(step: int, total: int, config: Config) -> float:
    """Multiplier of train.lr at a step: linear warmup, then constant/linear/cosine to 0."""
    t = config.train
    if step < t.warmup_steps:
        return (step + 1) / t.warmup_steps
    progress = min(1.0, (step - t.warmup_steps) / max(1, total - t.warmup_steps))
    match t.schedule:
        case "constant":
            return 1.0
        case "linear":
            return 1.0 - progress
        case "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * progress))


def prepare_examples(
    examples: Sequence[TextExample],
    tokenizer: PreTrainedTokenizerFast,
    task: Task,
    schema: Any,
    max_length: int,
    overlap: int | None = None,
) -> tuple[list[list[Encoded]], list[tuple[Encoded, HeadLabels]], DropReport]:
    """Windows per text (one, cut, when overlap is None) and (window, labels) pairs."""
    windows = encode_windows([ex.text for ex in examples], tokenizer, max_length, overlap)
    items: list[tuple[Encoded, HeadLabels]] = []
    report = DropReport()
    for ex, ws in zip(examples, windows, strict=True):
        labels, r = task.labels(ex, ws, schema)
        items.extend(zip(ws, labels, strict=True))
        report.add(r)
    return windows, items, report


@dataclass
class Run:
    """One training run, set up by `setup` and advanced one epoch at a time by
    `train_epoch`; `state` is what a checkpoint saves."""

    config: Config
    task: Task
    accelerator: Accelerator
    model: torch.nn.Module  # prepared: DDP-wrapped under several processes
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    ema: AveragedModel | None
    predictor: GPLinker  # the weights dev is scored with (the EMA's when on)
    items: list[tuple[Encoded, HeadLabels]]  # training windows and their labels
    dev: list[TextExample]
    dev_windows: list[list[Encoded]]
    state: TrainerState
    started: float  # time.monotonic() the run began at, earlier runs of a resume included
    info: dict[str, Any]  # for run.json: commit, parameters, pretraining
    embedded: dict[str, torch.Tensor] | None  # input embeddings, for the gradient penalty

    @property
    def out_dir(self) -> Path:
        return Path(self.config.output_dir)

    @property
    def main(self) -> bool:
        return self.accelerator.is_main_process


def train(config: Config, *, resume: bool = False) -> TrainResult:
    """Train, score dev after every epoch, keep the best folder by the task's main metric.

    `resume=True` goes on from the last checkpoint in config.output_dir: same weights,
    optimizer, schedule, RNG streams and place in the epoch, so the run ends as if never
    stopped. Under `accelerate launch` (DDP) every batch is split over the processes and
    the loss weighted so that the gradient is the one-process gradient.
    """
    run = setup(config, resume=resume)
    epochs = config.train.epochs
    epoch = min(run.state.epoch, epochs)
    for epoch in range(run.state.epoch, epochs + 1):
        row, out_of_time = train_epoch(run, epoch)
        if run.dev:
            row.update(evaluate_dev(run, epoch))
        end_epoch(run, row, whole=not out_of_time)
        if out_of_time:
            logger.info("stopping: the %.1f-minute budget is spent", config.train.max_minutes)
            break
    return finish(run, epoch)


def setup(config: Config, *, resume: bool = False) -> Run:
    """Everything before the first step, in an order that keeps a resumed run bit-exact:
    seed, data, tokenizer, model, pretraining, optimizer, checkpoint, devices, RNG."""
    if config.data.train is None:
        raise ConfigError("training needs a file", key="data.train")
    started, commit = time.monotonic(), _git_commit()  # the code that runs, not a later HEAD
    set_seed(config.train.seed)
    out_dir = Path(config.output_dir)
    checkpoint = latest_checkpoint(out_dir) if resume else None
    if resume and checkpoint is None:
        raise GPLinkerError(f"{out_dir}: no checkpoint to resume from (nothing in {CHECKPOINTS}/)")
    accelerator = _accelerator(config)
    if accelerator.is_main_process:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "config.yaml").write_text(config_to_yaml(config), encoding="utf-8")

    task = tasks.get(config.task)
    schema = task.read_schema(config.data.schema_file, config.data.train)
    train_examples, dev_examples = _read_data(config, task, schema)
    # a resumed run keeps its vocabulary (a built one could differ if the data changed)
    tokenizer = (
        load_tokenizer(checkpoint) if checkpoint else build_tokenizer(config.model, train_examples)
    )
    heads = task.heads(schema)
    model = GPLinkerModel.from_encoder(config.model, heads, len(tokenizer), task.name)
    n_params = sum(p.numel() for p in model.parameters())
    logger.info(
        "%s: %d train / %d dev texts, heads %s, %.2fM parameters, device %s, %d process(es), "
        "%s malloc",
        task.name,
        len(train_examples),
        len(dev_examples),
        ", ".join(f"{h.name}({h.num_labels})" for h in heads),
        n_params / 1e6,
        accelerator.device,
        accelerator.num_processes,
        allocator.active(),
    )
    items, dev_windows = _encode(config, task, schema, tokenizer, train_examples, dev_examples)
    mlm = {}
    if config.pretrain.minutes and checkpoint is None:  # a resumed run has its weights
        mlm = _pretrain(config, task, model, tokenizer, train_examples, dev_examples, accelerator)

    optimizer = build_optimizer(model, config)
    steps_per_epoch = len(_epoch_batches([len(enc) for enc, _ in items], config, 1))
    # not passed to prepare(): Accelerate would step it once per process per step
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, steps_per_epoch * config.train.epochs, config)
    )
    state = TrainerState()
    if checkpoint is not None:
        state = load_checkpoint(checkpoint, model, optimizer, scheduler)
        logger.info("resuming from %s: epoch %d, batch %d", checkpoint, state.epoch, state.batch)
    model, optimizer, ema = _on_devices(accelerator, model, optimizer, config, checkpoint)
    t = config.train
    embedded = _capture_input_embeddings(model) if t.gradient_penalty else None
    if t.tensorboard:
        accelerator.init_trackers("tb")
    predictor = GPLinker(
        ema.module if ema is not None else accelerator.unwrap_model(model),
        tokenizer,
        schema,
        task=task,
        max_length=config.data.max_length,
        max_candidates=t.max_candidates,
        window_overlap=_overlap(config),
        device=accelerator.device,
    )
    if accelerator.is_main_process:  # rows of epochs after the checkpoint would be written again
        _keep_metrics_before(out_dir / "metrics.jsonl", state.epoch)
    rank = accelerator.process_index
    if checkpoint is not None and not restore_rng(checkpoint, rank):
        logger.warning("%s has no RNG state for process %d: dropout will differ", checkpoint, rank)
    if rank != 0:  # the checkpoint holds the loss summed over processes: counted once
        state.loss_sum = 0.0
    info = {"git_commit": commit, "n_params": n_params, "pretraining": mlm}
    return Run(
        config,
        task,
        accelerator,
        model,
        optimizer,
        scheduler,
        ema,
        predictor,
        items,
        dev_examples,
        dev_windows,
        state,
        started - state.elapsed,  # the time budget counts the runs before the resume too
        info,
        embedded,
    )


def _overlap(config: Config) -> int | None:
    return config.data.window_overlap if config.data.windows else None


def _encode(
    config: Config,
    task: Task,
    schema: Any,
    tokenizer: PreTrainedTokenizerFast,
    train_examples: list[TextExample],
    dev_examples: list[TextExample],
) -> tuple[list[tuple[Encoded, HeadLabels]], list[list[Encoded]]]:
    """Training windows with their labels, and the dev texts' windows (tokenized once per
    run); what cannot be a label is logged."""
    d = config.data
    _, items, report = prepare_examples(
        train_examples, tokenizer, task, schema, d.max_length, _overlap(config)
    )
    _log_drops(f"train ({len(items)} windows)", report, d)
    if not dev_examples:
        return items, []
    dev_windows, _, dev_report = prepare_examples(
        dev_examples, tokenizer, task, schema, d.max_length, _overlap(config)
    )
    _log_drops("dev (still counted as gold by the metrics)", dev_report, d)
    return items, dev_windows


def _on_devices(
    accelerator: Accelerator,
    model: GPLinkerModel,
    optimizer: torch.optim.Optimizer,
    config: Config,
    checkpoint: Path | None,
) -> tuple[torch.nn.Module, torch.optim.Optimizer, AveragedModel | None]:
    """Model and optimizer prepared by Accelerate, and the EMA of the weights when on."""
    model, optimizer = accelerator.prepare(model, optimizer)
    # prepare() also wraps the model's forward in autocast; the training step has its own
    # accelerator.autocast(), and without the wrapper dev evaluation runs in fp32, as
    # `gplinker predict` does, so best/ scores there what it scored here
    accelerator.unwrap_model(model, keep_fp32_wrapper=False)
    if not config.train.ema_decay:
        return model, optimizer, None
    ema = AveragedModel(  # evaluated and saved instead of the raw weights
        accelerator.unwrap_model(model),
        multi_avg_fn=get_ema_multi_avg_fn(config.train.ema_decay),
        use_buffers=True,
    )
    if checkpoint is not None:
        load_ema(checkpoint, ema)
    return model, optimizer, ema


def train_epoch(run: Run, epoch: int) -> tuple[dict[str, Any], bool]:
    """The steps of one epoch (from where a resumed run stands in it), with checkpoints
    every train.checkpoint_every steps; the epoch's metrics row so far, and whether the
    time budget ran out."""
    t, state, accelerator = run.config.train, run.state, run.accelerator
    rank, world = accelerator.process_index, accelerator.num_processes
    run.model.train()
    batches = _epoch_batches([len(enc) for enc, _ in run.items], run.config, epoch)
    if epoch != state.epoch:  # a new epoch (not the one a resume lands in)
        _start_epoch(state, epoch)
    bar = progress_bar(
        batches[state.batch :],
        desc=f"epoch {epoch}/{t.epochs}",
        leave=False,
        disable=not accelerator.is_local_main_process,
        initial=state.batch,
        total=len(batches),
    )
    num_labels = {h.name: h.num_labels for h in run.predictor.model.heads}
    epoch_start, epoch_samples, out_of_time = time.monotonic(), 0, False
    for idx in bar:
        mine, weight = _shard(idx, rank, world)
        batch = collate([run.items[i] for i in mine], num_labels).to(accelerator.device)
        loss = _step(run, batch, weight)
        state.step += 1
        state.batch += 1
        state.loss_sum += loss * (weight if world > 1 else 1.0)
        state.loss_steps += 1
        state.samples += len(idx)
        epoch_samples += len(idx)
        if state.step % t.log_every == 0:
            mean = state.loss_sum / state.loss_steps  # this process's share under DDP
            bar.set_postfix(loss=f"{mean:.3f}")
            logger.info("epoch %d step %d loss %.4f", epoch, state.step, mean)
            accelerator.log(
                {"train/loss": mean, "train/lr": run.scheduler.get_last_lr()[0]}, step=state.step
            )
        out_of_time = _out_of_time(run.started, t.max_minutes, accelerator)
        if out_of_time:
            break
        if (
            t.checkpoint_every
            and state.step % t.checkpoint_every == 0
            and state.batch < len(batches)
        ):
            save_state(run)
    bar.close()
    row = {
        "epoch": epoch,
        "step": state.step,
        "train_loss": _sum_over_processes(state.loss_sum, accelerator) / max(state.loss_steps, 1),
        "train_samples_per_s": epoch_samples / (time.monotonic() - epoch_start),
    }
    return row, out_of_time


def _step(run: Run, batch: Batch, weight: float) -> float:
    """One optimizer step on this process's share of a batch; its loss."""
    t, accelerator = run.config.train, run.accelerator
    with accelerator.autocast():
        out = run.model(batch.input_ids, batch.attention_mask, factored=True)
    loss = compute_loss(out, batch, run.predictor.model.heads, t.loss, t.label_smoothing)
    objective = loss
    if run.embedded is not None:  # SPEC §6: ε/2 ‖∇_x loss‖² over the input embeddings
        objective = loss + 0.5 * t.gradient_penalty * gradient_penalty(loss, run.embedded["output"])
    if accelerator.num_processes > 1:  # DDP averages gradients over processes: weight by share
        objective = objective * (weight * accelerator.num_processes)
    accelerator.backward(objective)
    if t.max_grad_norm > 0:
        accelerator.clip_grad_norm_(run.model.parameters(), t.max_grad_norm)
    run.optimizer.step()
    run.scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)
    if run.ema is not None:
        run.ema.update_parameters(accelerator.unwrap_model(run.model))
    return loss.item()


def evaluate_dev(run: Run, epoch: int) -> dict[str, Any]:
    """Dev metrics of this epoch (and how long they took) for its row; a new best by the
    task's main metric is saved to best/."""
    eval_start = time.monotonic()
    metrics = _evaluate(run)
    main = run.task.main_metric
    state = run.state
    if not state.best or metrics[main].f1 > state.best[main]["f1"]:
        state.best = {k: _prf_json(v) for k, v in metrics.items()}
        state.best_epoch = epoch
        if run.main:
            run.predictor.save_pretrained(run.out_dir / "best")
    shown = [k for k in metrics if "/" not in k]  # per-type rows go to metrics.jsonl only
    logger.info("epoch %d dev: %s", epoch, ", ".join(f"{k} F1 {metrics[k].f1:.4f}" for k in shown))
    return {"eval_seconds": time.monotonic() - eval_start} | {
        k: _prf_json(v) for k, v in metrics.items()
    }


def end_epoch(run: Run, row: dict[str, Any], *, whole: bool) -> None:
    """Write the epoch's metrics row and a checkpoint; after a whole epoch the next one
    starts from its first batch."""
    row["minutes"] = (time.monotonic() - run.started) / 60  # wall clock since training began
    run.accelerator.log(_scalars(row), step=run.state.step)
    if run.main:
        with (run.out_dir / "metrics.jsonl").open("a", encoding="utf-8") as f:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    if whole:
        _start_epoch(run.state, row["epoch"] + 1)
    save_state(run)


def save_state(run: Run) -> None:
    """A checkpoint of where the run stands (every process takes part)."""
    state = run.state
    state.elapsed = time.monotonic() - run.started
    saved = replace(state, loss_sum=_sum_over_processes(state.loss_sum, run.accelerator))
    save_checkpoint(
        run.accelerator,
        run.out_dir,
        saved,
        run.accelerator.unwrap_model(run.model),
        run.optimizer,
        run.scheduler,
        run.ema,
        run.predictor.tokenizer,
    )


def finish(run: Run, epoch: int) -> TrainResult:
    """last/ (and best/ when there is no dev set), run.json, trackers closed."""
    out_dir, state = run.out_dir, run.state
    if run.main:
        run.predictor.save_pretrained(out_dir / "last")
        if not run.dev:
            run.predictor.save_pretrained(out_dir / "best")
        info = {
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
            "task": run.task.name,
            "git_commit": run.info["git_commit"],
            "device": str(run.accelerator.device),
            "processes": run.accelerator.num_processes,
            "torch_threads": torch.get_num_threads(),
            "n_params": run.info["n_params"],
            "epochs": epoch,
            "wall_minutes": (time.monotonic() - run.started) / 60,
            "steps": state.step,
            "best_epoch": state.best_epoch,
            "best": state.best,
            "pretraining": run.info["pretraining"],
        }
        (out_dir / "run.json").write_text(json.dumps(info, indent=1), encoding="utf-8")
    run.accelerator.end_training()
    best = {k: PRF(**v) for k, v in state.best.items()}
    return TrainResult(best, state.best_epoch, out_dir, out_dir / "best", out_dir / "last")


def _start_epoch(state: TrainerState, epoch: int) -> None:
    state.epoch, state.batch, state.loss_sum, state.loss_steps, state.samples = epoch, 0, 0.0, 0, 0


def _accelerator(config: Config) -> Accelerator:
    t = config.train
    # Accelerate keeps one state per process; a second train() in the same process (a sweep,
    # a notebook) may ask for another precision. The process group (PartialState) is kept.
    AcceleratorState._reset_state(reset_partial_state=False)
    try:
        accelerator = Accelerator(
            mixed_precision=t.mixed_precision,
            log_with="tensorboard" if t.tensorboard else None,
            project_dir=config.output_dir,
        )
    except ValueError as e:  # a precision this device lacks: Accelerate says which
        raise ConfigError(str(e), key="train.mixed_precision") from e
    if t.mixed_precision == "fp16" and accelerator.device.type == "cpu":  # Accelerate ignores it
        raise ConfigError(
            "fp16 autocast needs a GPU; on a CPU use bf16 or no", key="train.mixed_precision"
        )
    return accelerator


def _read_data(
    config: Config, task: Task, schema: Any
) -> tuple[list[TextExample], list[TextExample]]:
    skip = config.data.skip_invalid  # every line is checked first; bad ones are reported
    parse = task.parse(schema)
    assert config.data.train is not None
    train_examples = load_examples(config.data.train, schema, skip_invalid=skip, parse=parse)
    dev_examples = (
        load_examples(config.data.dev, schema, skip_invalid=skip, parse=parse)
        if config.data.dev
        else []
    )
    return train_examples, dev_examples


def _pretrain(
    config: Config,
    task: Task,
    model: GPLinkerModel,
    tokenizer: PreTrainedTokenizerFast,
    train_examples: list[TextExample],
    dev_examples: list[TextExample],
    accelerator: Accelerator,
) -> dict[str, Any]:
    if accelerator.num_processes > 1:
        raise ConfigError("masked-LM pretraining runs in one process", key="pretrain.minutes")
    p = config.pretrain
    return pretrain_mlm(
        model.encoder.to(accelerator.device),
        tokenizer,
        _pretraining_texts(config, task, train_examples, dev_examples),
        minutes=p.minutes,
        max_length=config.data.max_length,
        batch_size=p.batch_size,
        lr=p.lr,
        mask_prob=p.mask_prob,
        seed=config.train.seed,
        device=accelerator.device,
    )


def _epoch_batches(lengths: list[int], config: Config, epoch: int) -> list[list[int]]:
    """The batches of one epoch: a function of (seed, epoch) alone, so a resumed run and
    every DDP process see the same ones without sharing any state."""
    rng = random.Random(f"{config.train.seed}/{epoch}")
    return list(bucketed_batches(lengths, config.train.batch_size, config.train.bucket_size, rng))


def _shard(idx: list[int], rank: int, world: int) -> tuple[list[int], float]:
    """This process's part of a batch and its share of the batch. A batch smaller than the
    number of processes leaves some with nothing: they run one example at weight 0, since
    every DDP process must take part in each step."""
    mine = idx[rank::world]
    return (mine, len(mine) / len(idx)) if mine else (idx[:1], 0.0)


def _out_of_time(started: float, max_minutes: float | None, accelerator: Accelerator) -> bool:
    """Past the budget? Under DDP the main process decides for all, or they would hang."""
    if max_minutes is None:
        return False
    late = time.monotonic() - started > 60 * max_minutes
    if accelerator.num_processes == 1:
        return late
    flag = torch.tensor([float(late)], device=accelerator.device)
    return bool(broadcast(flag, from_process=0).item())


def _sum_over_processes(value: float, accelerator: Accelerator) -> float:
    if accelerator.num_processes == 1:
        return value
    return accelerator.reduce(torch.tensor([value], device=accelerator.device), "sum").item()


def _keep_metrics_before(path: Path, epoch: int) -> None:
    """metrics.jsonl keeps the rows of epochs before `epoch` (all of them on a fresh run:
    none). A resumed run would otherwise repeat the rows written after its checkpoint."""
    rows = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    kept = [r for r in rows if r.strip() and json.loads(r)["epoch"] < epoch]
    path.write_text("".join(r + "\n" for r in kept), encoding="utf-8")


def _capture_input_embeddings(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Keeps the word-embedding output of the latest forward, the x of SPEC §6."""
    captured: dict[str, torch.Tensor] = {}

    def hook(_module: torch.nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        captured["output"] = output

    encoder = getattr(model, "module", model).encoder  # DDP wraps the model
    encoder.get_input_embeddings().register_forward_hook(hook)
    return captured


def _scalars(row: dict) -> dict[str, float]:
    """A metrics.jsonl row as TensorBoard scalars: dev/event_f1, train/loss, ..."""
    out = {f"train/{k.removeprefix('train_')}": v for k, v in row.items() if k.startswith("train_")}
    for name, value in row.items():
        if isinstance(value, dict) and "f1" in value:
            out.update({f"dev/{name}_{k}": value[k] for k in ("precision", "recall", "f1")})
    return out


def _evaluate(run: Run) -> dict[str, PRF]:
    """Dev metrics; the dev texts are tokenized once per run, not once per evaluation.
    Under DDP each process predicts every N-th text and all gather the predictions."""
    accelerator, examples = run.accelerator, run.dev
    rank, world = accelerator.process_index, accelerator.num_processes
    mine = range(rank, len(examples), world)
    preds = run.predictor.decode_encoded(
        [run.dev_windows[i] for i in mine],
        [examples[i].text for i in mine],
        batch_size=run.config.train.eval_batch_size,
        progress=accelerator.is_local_main_process,
    )
    found = dict(zip(mine, preds, strict=True))
    if world > 1:
        found = dict(gather_object(list(found.items())))
    return run.task.evaluate(
        {ex.id: found[i] for i, ex in enumerate(examples)},
        {ex.id: run.task.gold(ex) for ex in examples},
    )


def _pretraining_texts(
    config: Config, task: Task, train_examples: list[TextExample], dev_examples: list[TextExample]
) -> list[str]:
    """data.train's texts and those of pretrain.texts (JSONL with "text", in the task's
    format), without any dev text."""
    texts = [ex.text for ex in train_examples]
    for path in config.pretrain.texts:
        texts += [ex.text for ex in read_examples(path, parse=task.parse(None))]
    dev = {ex.text for ex in dev_examples}
    kept = list(dict.fromkeys(t for t in texts if t.strip() and t not in dev))
    logger.info(
        "masked LM on %d texts (%d left out: dev or repeated)", len(kept), len(texts) - len(kept)
    )
    return kept


def build_tokenizer(
    m: ModelConfig, train_examples: Sequence[TextExample]
) -> PreTrainedTokenizerFast:
    """The tokenizer a run of this model config trains with (built from, or cut to, the
    train texts); public so that `gplinker check` sees the very same tokens."""
    split = m.split_digits if m.split_digits is not None else not m.pretrained
    if m.tokenizer == "wordpiece":
        texts = (ex.text for ex in train_examples)
        return build_wordpiece_tokenizer(texts, m.tokenizer_vocab_size, split_digits=split)
    name = m.tokenizer or m.encoder
    if name is None:
        raise ConfigError("set model.tokenizer (a folder, or 'wordpiece')", key="model.tokenizer")
    tokenizer = load_tokenizer(name)
    if split:
        tokenizer = with_split_digits(tokenizer)
    if m.vocab_min_count:
        tokenizer = cut_vocabulary(tokenizer, (ex.text for ex in train_examples), m.vocab_min_count)
        logger.info("vocabulary cut to the %d tokens of data.train", len(tokenizer))
    return tokenizer


def _log_drops(name: str, report: DropReport, data: DataConfig) -> None:
    how = f"windows overlapping by {data.window_overlap}" if data.windows else "no windows"
    logger.info(
        "%s: %d of %d gold spans cannot be labels: %d off token boundaries, %d cut by "
        "max_length=%d (%s)%s%s",
        name,
        report.dropped,
        report.spans,
        report.off_boundary,
        report.truncated,
        data.max_length,
        how,
        f", {report.not_found} not found in their text" if report.not_found else "",
        f" (e.g. {'; '.join(report.examples[:3])})" if report.examples else "",
    )


def _git_commit() -> str | None:
    """The commit of the code that ran, when it runs from a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _prf_json(p: PRF) -> dict:
    return {
        "precision": p.precision,
        "recall": p.recall,
        "f1": p.f1,
        "n_pred": p.n_pred,
        "n_gold": p.n_gold,
    }
