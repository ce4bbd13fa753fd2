"""train(config): the Accelerate loop, dev evaluation every epoch, best/last model folders.

A run folder holds: config.yaml (resolved), metrics.jsonl (one line per evaluation),
best/ (highest dev event F1) and last/ (end of training), each a GPLinker folder.
"""

from __future__ import annotations

import json
import logging
import math
import random
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from accelerate.utils import set_seed
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerFast

from gplinker.config import Config, DataConfig, config_to_yaml
from gplinker.data.alignment import Encoded, encode_windows
from gplinker.data.collate import Batch, bucketed_batches, collate
from gplinker.data.labels import DropReport, SparseLabels, build_window_labels
from gplinker.data.reader import load_examples
from gplinker.data.tokenizer import build_wordpiece_tokenizer, load_tokenizer
from gplinker.errors import ConfigError
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
            if loss == "soft":
                valid = span_mask(batch.attention_mask).reshape(B, 1, L * L)
                per_label = sparse_soft_multilabel_ce(flat, pos, valid, smoothing)
            else:
                per_label = sparse_multilabel_ce(flat, pos)  # [B, H]
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


def train(config: Config) -> TrainResult:
    """Train, score dev after every epoch, keep the best folder by dev event F1."""
    if config.data.train is None:
        raise ConfigError("training needs a file", key="data.train")
    started, commit = time.monotonic(), _git_commit()  # the code that runs, not a later HEAD
    t = config.train
    set_seed(t.seed)
    out_dir = Path(config.output_dir)
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
    best_dir, last_dir = out_dir / "best", out_dir / "last"
    if accelerator.is_main_process:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "config.yaml").write_text(config_to_yaml(config), encoding="utf-8")
        (out_dir / "metrics.jsonl").write_text("")

    schema = Schema.from_file(config.data.schema_file)
    skip = config.data.skip_invalid  # every line is checked first; bad ones are reported
    train_examples = load_examples(config.data.train, schema, skip_invalid=skip)
    dev_examples = (
        load_examples(config.data.dev, schema, skip_invalid=skip) if config.data.dev else []
    )
    tokenizer = _tokenizer(config, train_examples)
    model = GPLinkerModel.from_encoder(config.model, len(schema), len(tokenizer))
    n_params = sum(p.numel() for p in model.parameters())
    logger.info(
        "%d train / %d dev texts, %d labels, %.2fM parameters, device %s",
        len(train_examples),
        len(dev_examples),
        len(schema),
        n_params / 1e6,
        accelerator.device,
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

    optimizer = build_optimizer(model, config)
    steps_per_epoch = math.ceil(len(items) / t.batch_size)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, steps_per_epoch * t.epochs, config)
    )
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    ema = None
    if t.ema_decay:  # evaluated and saved instead of the raw weights
        ema = AveragedModel(
            accelerator.unwrap_model(model),
            multi_avg_fn=get_ema_multi_avg_fn(t.ema_decay),
            use_buffers=True,
        )
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
    rng = random.Random(t.seed)
    lengths = [len(enc) for enc, _ in items]
    best: dict[str, PRF] = {}
    best_epoch, step, out_of_time = 0, 0, False
    for epoch in range(1, t.epochs + 1):
        model.train()
        batches = list(bucketed_batches(lengths, t.batch_size, t.bucket_size, rng))
        bar = tqdm(
            batches,
            desc=f"epoch {epoch}/{t.epochs}",
            leave=False,
            disable=not accelerator.is_local_main_process,
            total=steps_per_epoch,
        )
        running, seen, samples, epoch_start = 0.0, 0, 0, time.monotonic()
        for idx in bar:
            batch = collate([items[i] for i in idx], len(schema)).to(accelerator.device)
            with accelerator.autocast():
                out = model(batch.input_ids, batch.attention_mask, factored=True)
            loss = compute_loss(out, batch, t.loss, t.label_smoothing)
            objective = loss
            if embedded is not None:  # SPEC §6: ε/2 ‖∇_x loss‖² over the input embeddings
                penalty = gradient_penalty(loss, embedded["output"])
                objective = loss + 0.5 * t.gradient_penalty * penalty
            accelerator.backward(objective)
            if t.max_grad_norm > 0:
                accelerator.clip_grad_norm_(model.parameters(), t.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            if ema is not None:
                ema.update_parameters(accelerator.unwrap_model(model))
            step += 1
            running, seen, samples = running + loss.item(), seen + 1, samples + len(idx)
            if step % t.log_every == 0:
                bar.set_postfix(loss=f"{running / seen:.3f}")
                logger.info("epoch %d step %d loss %.4f", epoch, step, running / seen)
                accelerator.log(
                    {"train/loss": running / seen, "train/lr": scheduler.get_last_lr()[0]},
                    step=step,
                )
            if t.max_minutes is not None and time.monotonic() - started > 60 * t.max_minutes:
                out_of_time = True
                break
        bar.close()
        row = {
            "epoch": epoch,
            "step": step,
            "train_loss": running / max(seen, 1),
            "train_samples_per_s": samples / (time.monotonic() - epoch_start),
        }
        if dev_examples:
            eval_start = time.monotonic()
            metrics = _evaluate(predictor, dev_examples, dev_windows, t.eval_batch_size)
            row["eval_seconds"] = time.monotonic() - eval_start
            row.update({k: _prf_json(v) for k, v in metrics.items()})
            if not best or metrics["event"].f1 > best["event"].f1:
                best, best_epoch = metrics, epoch
                if accelerator.is_main_process:
                    predictor.save_pretrained(best_dir)
            logger.info(
                "epoch %d dev: event F1 %.4f argument F1 %.4f trigger F1 %.4f official F1 %.4f",
                epoch,
                metrics["event"].f1,
                metrics["argument"].f1,
                metrics["trigger"].f1,
                metrics["official"].f1,
            )
        row["minutes"] = (time.monotonic() - started) / 60  # wall clock since train() began
        accelerator.log(_scalars(row), step=step)
        if accelerator.is_main_process:
            with (out_dir / "metrics.jsonl").open("a", encoding="utf-8") as f:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        if out_of_time:
            logger.info("stopping: the %.1f-minute budget is spent", t.max_minutes)
            break
    if accelerator.is_main_process:
        predictor.save_pretrained(last_dir)
        if not dev_examples:
            predictor.save_pretrained(best_dir)
        run = {
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
            "git_commit": commit,
            "device": str(accelerator.device),
            "torch_threads": torch.get_num_threads(),
            "n_params": n_params,
            "epochs": epoch,
            "wall_minutes": (time.monotonic() - started) / 60,
            "steps": step,
            "best_epoch": best_epoch,
            "best": {k: _prf_json(v) for k, v in best.items()},
        }
        (out_dir / "run.json").write_text(json.dumps(run, indent=1), encoding="utf-8")
    accelerator.end_training()
    return TrainResult(best, best_epoch, out_dir, best_dir, last_dir)


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
    for name in ("event", "argument", "trigger", "official"):
        if name in row:
            out.update({f"dev/{name}_{k}": row[name][k] for k in ("precision", "recall", "f1")})
    return out


def _evaluate(
    predictor: GPLinker,
    examples: list[Example],
    windows: list[list[Encoded]],
    batch_size: int,
) -> dict[str, PRF]:
    """Dev metrics; the dev texts are tokenized once per run, not once per evaluation."""
    texts = [ex.text for ex in examples]
    preds = predictor.extract_encoded(windows, texts, batch_size=batch_size, progress=True)
    return evaluate(
        {ex.id: p for ex, p in zip(examples, preds, strict=True)},
        {ex.id: ex.events for ex in examples},
    )


def _tokenizer(config: Config, train_examples: list[Example]) -> PreTrainedTokenizerFast:
    m = config.model
    if m.tokenizer == "wordpiece":
        return build_wordpiece_tokenizer((ex.text for ex in train_examples), m.tokenizer_vocab_size)
    name = m.tokenizer or m.encoder
    if name is None:
        raise ConfigError("set model.tokenizer (a folder, or 'wordpiece')", key="model.tokenizer")
    return load_tokenizer(name)


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
