"""train(config): the Accelerate loop, dev evaluation every epoch, checkpoints, best/last.

A run folder holds: config.yaml (resolved), metrics.jsonl (one line per evaluation),
checkpoints/ (the latest, for `gplinker train --resume`), best/ (highest dev event F1) and
last/ (end of training), each a GPLinker folder, and run.json (what ran, how long).
"""

from __future__ import annotations

import json
import logging
import math
import random
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from accelerate.utils import broadcast, gather_object, set_seed
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerFast

from gplinker.checkpoint import (
    CHECKPOINTS,
    TrainerState,
    latest_checkpoint,
    load_checkpoint,
    load_ema,
    restore_rng,
    save_checkpoint,
)
from gplinker.config import Config, DataConfig, config_to_yaml
from gplinker.data.alignment import Encoded, encode_windows
from gplinker.data.collate import Batch, bucketed_batches, collate
from gplinker.data.labels import DropReport, SparseLabels, build_window_labels
from gplinker.data.reader import BadLine, load_examples, read_lines
from gplinker.data.tokenizer import build_wordpiece_tokenizer, cut_vocabulary, load_tokenizer
from gplinker.errors import ConfigError, GPLinkerError
from gplinker.losses import (
    factored_soft_multilabel_ce,
    factored_sparse_multilabel_ce,
    gradient_penalty,
    sparse_multilabel_ce,
    sparse_soft_multilabel_ce,
)
from gplinker.metrics import PRF, evaluate
from gplinker.modeling.global_pointer import Factored, span_mask
from gplinker.modeling.model import GPLinkerModel, GPLinkerOutput
from gplinker.optim import AdaX
from gplinker.predict import GPLinker
from gplinker.pretraining import pretrain_mlm
from gplinker.schema import Example, Schema

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    best: dict[str, PRF]  # dev metrics of the best epoch (empty without dev data)
    best_epoch: int
    output_dir: Path
    best_dir: Path
    last_dir: Path


def compute_loss(
    out: GPLinkerOutput, batch: Batch, loss: str = "sparse", smoothing: float = 0.0
) -> torch.Tensor:
    """SPEC §4: per pointer, sum the loss over labels and average over the batch; the three
    pointers' losses are added. `loss="soft"` is the soft-label form with targets 1 - ε on
    labels and ε on every other valid cell."""
    total = torch.zeros((), device=batch.input_ids.device)
    for scores, pos in (
        (out.argu, batch.argu),
        (out.head_link, batch.head_link),
        (out.tail_link, batch.tail_link),
    ):
        if isinstance(scores, Factored):
            parts = (scores.qk, scores.col, scores.row, scores.mask, pos)
            if loss == "soft":
                per_label = factored_soft_multilabel_ce(*parts, smoothing)
            else:
                per_label = factored_sparse_multilabel_ce(*parts)
        else:
            B, H, L, _ = scores.shape
            flat = scores.reshape(B, H, L * L)
            valid = span_mask(batch.attention_mask).reshape(B, 1, L * L)
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
    examples: list[Example],
    tokenizer: PreTrainedTokenizerFast,
    schema: Schema,
    max_length: int,
    overlap: int | None = None,
) -> tuple[list[list[Encoded]], list[tuple[Encoded, SparseLabels]], DropReport]:
    """Windows per text (one, cut, when overlap is None) and (window, labels) pairs."""
    windows = encode_windows([ex.text for ex in examples], tokenizer, max_length, overlap)
    items: list[tuple[Encoded, SparseLabels]] = []
    report = DropReport()
    for ex, ws in zip(examples, windows, strict=True):
        labels, r = build_window_labels(ex, ws, schema)
        items.extend(zip(ws, labels, strict=True))
        report.add(r)
    return windows, items, report


def train(config: Config, *, resume: bool = False) -> TrainResult:
    """Train, score dev after every epoch, keep the best folder by dev event F1.

    `resume=True` goes on from the last checkpoint in config.output_dir: same weights,
    optimizer, schedule, RNG streams and place in the epoch, so the run ends as if never
    stopped. Under `accelerate launch` (DDP) every batch is split over the processes and
    the loss weighted so that the gradient is the one-process gradient.
    """
    if config.data.train is None:
        raise ConfigError("training needs a file", key="data.train")
    started, commit = time.monotonic(), _git_commit()  # the code that runs, not a later HEAD
    t = config.train
    set_seed(t.seed)
    out_dir = Path(config.output_dir)
    checkpoint = latest_checkpoint(out_dir) if resume else None
    if resume and checkpoint is None:
        raise GPLinkerError(f"{out_dir}: no checkpoint to resume from (nothing in {CHECKPOINTS}/)")
    # Accelerate keeps one state per process; a second train() in the same process (a sweep,
    # a notebook) may ask for another precision. The process group (PartialState) is kept.
    AcceleratorState._reset_state(reset_partial_state=False)
    try:
        accelerator = Accelerator(
            mixed_precision=t.mixed_precision,
            log_with="tensorboard" if t.tensorboard else None,
            project_dir=out_dir,
        )
    except ValueError as e:  # a precision this device lacks: Accelerate says which
        raise ConfigError(str(e), key="train.mixed_precision") from e
    if t.mixed_precision == "fp16" and accelerator.device.type == "cpu":  # Accelerate ignores it
        raise ConfigError(
            "fp16 autocast needs a GPU; on a CPU use bf16 or no", key="train.mixed_precision"
        )
    rank, world, main = (
        accelerator.process_index,
        accelerator.num_processes,
        accelerator.is_main_process,
    )
    best_dir, last_dir = out_dir / "best", out_dir / "last"
    if main:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "config.yaml").write_text(config_to_yaml(config), encoding="utf-8")

    schema = Schema.from_file(config.data.schema_file)
    skip = config.data.skip_invalid  # every line is checked first; bad ones are reported
    train_examples = load_examples(config.data.train, schema, skip_invalid=skip)
    dev_examples = (
        load_examples(config.data.dev, schema, skip_invalid=skip) if config.data.dev else []
    )
    # a resumed run keeps its vocabulary (a built one could differ if the data changed)
    tokenizer = load_tokenizer(checkpoint) if checkpoint else _tokenizer(config, train_examples)
    model = GPLinkerModel.from_encoder(config.model, len(schema), len(tokenizer))
    n_params = sum(p.numel() for p in model.parameters())
    logger.info(
        "%d train / %d dev texts, %d labels, %.2fM parameters, device %s, %d process(es)",
        len(train_examples),
        len(dev_examples),
        len(schema),
        n_params / 1e6,
        accelerator.device,
        world,
    )

    overlap = config.data.window_overlap if config.data.windows else None
    _, items, report = prepare_examples(
        train_examples, tokenizer, schema, config.data.max_length, overlap
    )
    _log_drops(f"train ({len(items)} windows)", report, config.data)
    dev_windows: list[list[Encoded]] = []
    if dev_examples:
        dev_windows, _, dev_report = prepare_examples(
            dev_examples, tokenizer, schema, config.data.max_length, overlap
        )
        _log_drops("dev (still counted as gold by the metrics)", dev_report, config.data)

    mlm = {}
    if config.pretrain.minutes and checkpoint is None:  # a resumed run has its weights
        if world > 1:
            raise ConfigError("masked-LM pretraining runs in one process", key="pretrain.minutes")
        texts = _pretraining_texts(config, train_examples, dev_examples)
        mlm = pretrain_mlm(
            model.encoder.to(accelerator.device),
            tokenizer,
            texts,
            minutes=config.pretrain.minutes,
            max_length=config.data.max_length,
            batch_size=config.pretrain.batch_size,
            lr=config.pretrain.lr,
            mask_prob=config.pretrain.mask_prob,
            seed=t.seed,
            device=accelerator.device,
        )

    optimizer = build_optimizer(model, config)
    lengths = [len(enc) for enc, _ in items]
    steps_per_epoch = len(_epoch_batches(lengths, config, 1))
    # not passed to prepare(): Accelerate would step it once per process per step
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, steps_per_epoch * t.epochs, config)
    )
    state = TrainerState()
    if checkpoint is not None:
        state = load_checkpoint(checkpoint, model, optimizer, scheduler)
        logger.info("resuming from %s: epoch %d, batch %d", checkpoint, state.epoch, state.batch)
    model, optimizer = accelerator.prepare(model, optimizer)
    # prepare() also wraps the model's forward in autocast; the training step has its own
    # accelerator.autocast(), and without the wrapper dev evaluation runs in fp32, as
    # `gplinker predict` does, so best/ scores there what it scored here
    accelerator.unwrap_model(model, keep_fp32_wrapper=False)
    ema = None
    if t.ema_decay:  # evaluated and saved instead of the raw weights
        ema = AveragedModel(
            accelerator.unwrap_model(model),
            multi_avg_fn=get_ema_multi_avg_fn(t.ema_decay),
            use_buffers=True,
        )
        if checkpoint is not None:
            load_ema(checkpoint, ema)
    embedded = _capture_input_embeddings(model) if t.gradient_penalty else None
    if t.tensorboard:
        accelerator.init_trackers("tb")
    predictor = GPLinker(
        ema.module if ema is not None else accelerator.unwrap_model(model),
        tokenizer,
        schema,
        max_length=config.data.max_length,
        max_candidates=t.max_candidates,
        window_overlap=overlap,
        device=accelerator.device,
    )
    if main:  # rows of epochs after the checkpoint would be written again
        _keep_metrics_before(out_dir / "metrics.jsonl", state.epoch)
    if checkpoint is not None and not restore_rng(checkpoint, rank):
        logger.warning("%s has no RNG state for process %d: dropout will differ", checkpoint, rank)
    started -= state.elapsed  # the time budget counts the runs before the resume too

    if rank != 0:  # the checkpoint holds the loss summed over processes: counted once
        state.loss_sum = 0.0

    def save_state() -> None:
        state.elapsed = time.monotonic() - started
        saved = replace(state, loss_sum=_sum_over_processes(state.loss_sum, accelerator))
        unwrapped = accelerator.unwrap_model(model)
        save_checkpoint(
            accelerator, out_dir, saved, unwrapped, optimizer, scheduler, ema, tokenizer
        )

    out_of_time, epoch = False, min(state.epoch, t.epochs)
    for epoch in range(state.epoch, t.epochs + 1):
        model.train()
        batches = _epoch_batches(lengths, config, epoch)
        if epoch != state.epoch:  # a new epoch (not the one a resume lands in)
            state.epoch, state.batch, state.loss_sum, state.loss_steps, state.samples = (
                epoch,
                0,
                0.0,
                0,
                0,
            )
        bar = tqdm(
            batches[state.batch :],
            desc=f"epoch {epoch}/{t.epochs}",
            leave=False,
            disable=not accelerator.is_local_main_process,
            initial=state.batch,
            total=len(batches),
        )
        epoch_start, epoch_samples = time.monotonic(), 0
        for idx in bar:
            mine, weight = _shard(idx, rank, world)
            batch = collate([items[i] for i in mine], len(schema)).to(accelerator.device)
            with accelerator.autocast():
                out = model(batch.input_ids, batch.attention_mask, factored=True)
            loss = compute_loss(out, batch, t.loss, t.label_smoothing)
            objective = loss
            if embedded is not None:  # SPEC §6: ε/2 ‖∇_x loss‖² over the input embeddings
                penalty = gradient_penalty(loss, embedded["output"])
                objective = loss + 0.5 * t.gradient_penalty * penalty
            if world > 1:  # DDP averages gradients over processes: weight by batch share
                objective = objective * (weight * world)
            accelerator.backward(objective)
            if t.max_grad_norm > 0:
                accelerator.clip_grad_norm_(model.parameters(), t.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            if ema is not None:
                ema.update_parameters(accelerator.unwrap_model(model))
            state.step += 1
            state.batch += 1
            state.loss_sum += loss.item() * (weight if world > 1 else 1.0)
            state.loss_steps += 1
            state.samples += len(idx)
            epoch_samples += len(idx)
            if state.step % t.log_every == 0:
                mean = state.loss_sum / state.loss_steps  # this process's share under DDP
                bar.set_postfix(loss=f"{mean:.3f}")
                logger.info("epoch %d step %d loss %.4f", epoch, state.step, mean)
                accelerator.log(
                    {"train/loss": mean, "train/lr": scheduler.get_last_lr()[0]}, step=state.step
                )
            out_of_time = _out_of_time(started, t.max_minutes, accelerator)
            if out_of_time:
                break
            if (
                t.checkpoint_every
                and state.step % t.checkpoint_every == 0
                and state.batch < len(batches)
            ):
                save_state()
        bar.close()
        loss_sum = _sum_over_processes(state.loss_sum, accelerator)
        row = {
            "epoch": epoch,
            "step": state.step,
            "train_loss": loss_sum / max(state.loss_steps, 1),
            "train_samples_per_s": epoch_samples / (time.monotonic() - epoch_start),
        }
        if dev_examples:
            eval_start = time.monotonic()
            metrics = _evaluate(
                predictor, dev_examples, dev_windows, t.eval_batch_size, accelerator
            )
            row["eval_seconds"] = time.monotonic() - eval_start
            row.update({k: _prf_json(v) for k, v in metrics.items()})
            if not state.best or metrics["event"].f1 > state.best["event"]["f1"]:
                state.best = {k: _prf_json(v) for k, v in metrics.items()}
                state.best_epoch = epoch
                if main:
                    predictor.save_pretrained(best_dir)
            logger.info(
                "epoch %d dev: event F1 %.4f argument F1 %.4f trigger F1 %.4f official F1 %.4f"
                " (argument F1 the reference's way, every clique: %.4f)",
                epoch,
                metrics["event"].f1,
                metrics["argument"].f1,
                metrics["trigger"].f1,
                metrics["official"].f1,
                metrics["argument_reference"].f1,
            )
        row["minutes"] = (time.monotonic() - started) / 60  # wall clock since training began
        accelerator.log(_scalars(row), step=state.step)
        if main:
            with (out_dir / "metrics.jsonl").open("a", encoding="utf-8") as f:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        if not out_of_time:  # the epoch is whole: the next one starts from its first batch
            state.epoch, state.batch, state.loss_sum, state.loss_steps, state.samples = (
                epoch + 1,
                0,
                0.0,
                0,
                0,
            )
        save_state()
        if out_of_time:
            logger.info("stopping: the %.1f-minute budget is spent", t.max_minutes)
            break
    if main:
        predictor.save_pretrained(last_dir)
        if not dev_examples:
            predictor.save_pretrained(best_dir)
        run = {
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
            "git_commit": commit,
            "device": str(accelerator.device),
            "processes": world,
            "torch_threads": torch.get_num_threads(),
            "n_params": n_params,
            "epochs": epoch,
            "wall_minutes": (time.monotonic() - started) / 60,
            "steps": state.step,
            "best_epoch": state.best_epoch,
            "best": state.best,
            "pretraining": mlm,
        }
        (out_dir / "run.json").write_text(json.dumps(run, indent=1), encoding="utf-8")
    accelerator.end_training()
    best = {k: PRF(**v) for k, v in state.best.items()}
    return TrainResult(best, state.best_epoch, out_dir, best_dir, last_dir)


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
    for name in ("event", "argument", "trigger", "official", "argument_reference"):
        if name in row:
            out.update({f"dev/{name}_{k}": row[name][k] for k in ("precision", "recall", "f1")})
    return out


def _evaluate(
    predictor: GPLinker,
    examples: list[Example],
    windows: list[list[Encoded]],
    batch_size: int,
    accelerator: Accelerator,
) -> dict[str, PRF]:
    """Dev metrics; the dev texts are tokenized once per run, not once per evaluation.
    Under DDP each process predicts every N-th text and all gather the predictions."""
    rank, world = accelerator.process_index, accelerator.num_processes
    mine = range(rank, len(examples), world)
    preds = predictor.decode_encoded(
        [windows[i] for i in mine],
        [examples[i].text for i in mine],
        batch_size=batch_size,
        progress=accelerator.is_local_main_process,
    )
    found = {i: (d.events, d.clique_arguments) for i, d in zip(mine, preds, strict=True)}
    if world > 1:
        found = dict(gather_object(list(found.items())))
    return evaluate(
        {ex.id: found[i][0] for i, ex in enumerate(examples)},
        {ex.id: ex.events for ex in examples},
        clique_arguments={ex.id: found[i][1] for i, ex in enumerate(examples)},
    )


def _pretraining_texts(
    config: Config, train_examples: list[Example], dev_examples: list[Example]
) -> list[str]:
    """data.train's texts and those of pretrain.texts, without any dev text."""
    texts = [ex.text for ex in train_examples]
    for path in config.pretrain.texts:
        for item in read_lines(path, blank_lines="skip"):
            if isinstance(item, BadLine):
                raise item.error
            texts.append(item.text)
    dev = {ex.text for ex in dev_examples}
    kept = list(dict.fromkeys(t for t in texts if t.strip() and t not in dev))
    logger.info(
        "masked LM on %d texts (%d left out: dev or repeated)", len(kept), len(texts) - len(kept)
    )
    return kept


def _tokenizer(config: Config, train_examples: list[Example]) -> PreTrainedTokenizerFast:
    m = config.model
    if m.tokenizer == "wordpiece":
        return build_wordpiece_tokenizer((ex.text for ex in train_examples), m.tokenizer_vocab_size)
    name = m.tokenizer or m.encoder
    if name is None:
        raise ConfigError("set model.tokenizer (a folder, or 'wordpiece')", key="model.tokenizer")
    tokenizer = load_tokenizer(name)
    if m.vocab_min_count:
        tokenizer = cut_vocabulary(tokenizer, (ex.text for ex in train_examples), m.vocab_min_count)
        logger.info("vocabulary cut to the %d tokens of data.train", len(tokenizer))
    return tokenizer


def _log_drops(name: str, report: DropReport, data: DataConfig) -> None:
    how = f"windows overlapping by {data.window_overlap}" if data.windows else "no windows"
    logger.info(
        "%s: %d of %d gold spans cannot be labels: %d off token boundaries, %d cut by "
        "max_length=%d (%s)%s",
        name,
        report.dropped,
        report.spans,
        report.off_boundary,
        report.truncated,
        data.max_length,
        how,
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
