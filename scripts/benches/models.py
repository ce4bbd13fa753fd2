"""The models measured, the step and forward variants timed against each other, and what
one size's benchmarks of one task share (`Run`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property, partial
from pathlib import Path

import torch
from transformers import PreTrainedTokenizerFast

from benches.plan import BARE, DENSE, EFFICIENT, ENCODER_FWD, MODEL_FWD, NO_OPT, ROOT, STEP, Plan
from benches.sources import Data, draw, length_batches, train_batches, windows_of
from gplinker.config import Config, ModelConfig
from gplinker.data.collate import Batch
from gplinker.data.tokenizer import load_tokenizer
from gplinker.errors import GPLinkerError
from gplinker.modeling.global_pointer import PointerSpec
from gplinker.modeling.model import CONFIG_NAME, GPLinkerModel
from gplinker.predict import SCHEMA_NAME, GPLinker
from gplinker.training import build_optimizer, compute_loss


def build_model(
    data: Data,
    size: dict,
    *,
    heads: Sequence[PointerSpec] | None = None,
    pointer: str = EFFICIENT,
) -> GPLinkerModel:
    """A random-init encoder of the given shape + the task's pointers (seed 0)."""
    config = ModelConfig(
        encoder=data.encoder, pretrained=False, encoder_overrides=size, pointer=pointer
    )
    torch.manual_seed(0)
    return GPLinkerModel.from_encoder(
        config, heads or data.heads, len(data.tokenizer), task=data.task.name
    )


def autocast(device: torch.device, bf16: bool) -> torch.autocast:
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)


def step_variants(
    model: GPLinkerModel, recipe: Config, device: torch.device, bf16: bool
) -> dict[str, Callable[[Batch], None]]:
    """A training step as train() takes it (autocast forward, factored loss, backward,
    clipping, optimizer), its part without the optimizer, the dense-loss step, and the
    reference: the bare encoder's forward+backward. Each leaves no gradients behind."""
    optimizer = build_optimizer(model, recipe)
    clip = recipe.train.max_grad_norm

    def bare(batch: Batch) -> None:
        with autocast(device, bf16):
            hidden = model.encoder(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
        hidden[0].float().square().mean().backward()
        model.zero_grad(set_to_none=True)

    def backward(batch: Batch, factored: bool = True) -> None:
        with autocast(device, bf16):
            out = model(batch.input_ids, batch.attention_mask, factored=factored)
        compute_loss(out, batch, model.heads).backward()

    def no_optimizer(batch: Batch) -> None:
        backward(batch)
        model.zero_grad(set_to_none=True)

    def step(batch: Batch, factored: bool = True) -> None:
        backward(batch, factored)
        if clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return {BARE: bare, NO_OPT: no_optimizer, STEP: step, DENSE: partial(step, factored=False)}


def forward_variants(
    model: GPLinkerModel, device: torch.device, bf16: bool
) -> dict[str, Callable[[Batch], None]]:
    """Inference forwards: the bare encoder, and the model as prediction runs it
    (factored=True: EGP gives its factored parts, the original GP dense scores)."""

    @torch.inference_mode()
    def encoder(batch: Batch) -> None:
        with autocast(device, bf16):
            model.encoder(input_ids=batch.input_ids, attention_mask=batch.attention_mask)

    @torch.inference_mode()
    def full(batch: Batch) -> None:
        with autocast(device, bf16):
            model(batch.input_ids, batch.attention_mask, factored=True)

    return {ENCODER_FWD: encoder, MODEL_FWD: full}


def lower_span_scores(
    model: GPLinkerModel, batches: Sequence[Batch], cells_per_text: float
) -> float:
    """Lower every score of the span head (the first: argu, entity) by one constant so
    that about `cells_per_text` cells a text score above 0, as after training: an
    untrained model marks about half of all cells (SPEC §10) and floods the decoder. The
    links stay as initialised: they are read only between candidate spans. Returns the
    constant; `shift_span_scores(model, +it)` restores the model."""
    span = model.heads[0].name
    n_texts = sum(len(b.input_ids) for b in batches)
    k = max(1, round(cells_per_text * n_texts))
    with torch.inference_mode():
        scores = [model(b.input_ids, b.attention_mask)[span].flatten() for b in batches]
        tops = [s.topk(min(k, len(s))).values for s in scores]
        shift = float(torch.cat(tops).topk(k).values[-1])
    shift_span_scores(model, -shift)
    return shift


def shift_span_scores(model: GPLinkerModel, delta: float) -> None:
    """Add delta to every score of the span head. With u = bias(x)/2 feeding both
    u_j[2α] and u_i[2α+1] (SPEC §3), moving the bias vector by δ moves every score by δ."""
    with torch.no_grad():
        getattr(model, model.heads[0].name).bias.bias += delta


@dataclass
class Run:
    """What one size's benchmarks of one task share; models and batches are made on
    first use."""

    size_name: str
    size: dict
    data: Data
    plan: Plan
    recipe: Config
    device: torch.device
    bf16: bool
    workdir: Path
    memory_runner: Callable[[dict], dict]

    @cached_property
    def batches(self) -> list[Batch]:
        return train_batches(self.data, self.recipe, self.device, self.step_count + 1)

    @property
    def step_count(self) -> int:
        return self.plan.step_batches.get(self.size_name, 2)

    @cached_property
    def dev_texts(self) -> list[str]:
        n = self.plan.dev_texts.get(self.size_name, 64)
        return [ex.text for ex in draw(self.data.dev, n)]

    @cached_property
    def predictor(self) -> tuple[GPLinker, dict]:
        """A predictor whose scores look trained, and how they were obtained."""
        folder = trained_folder(self.data, self.size)
        if folder is None:
            model, tokenizer = build_model(self.data, self.size), self.data.tokenizer
        else:
            model, tokenizer = GPLinkerModel.from_pretrained(folder), load_tokenizer(folder)
        predictor = self.make_predictor(model, tokenizer)
        if folder is not None:
            return predictor, trained_scores(self.data, folder)
        windows = windows_of(predictor, self.dev_texts)
        batches = [b for b, _ in length_batches(predictor, windows)]
        cells = self.data.span_cells_per_text
        shift = lower_span_scores(predictor.model, batches, cells)
        return predictor, {
            "scores": f"random init, every {self.data.origin.spans} score lowered by one constant",
            "argument_shift": shift,  # the span head's (the name is from events-only days)
            "target_cells_per_text": cells,
        }

    def make_predictor(self, model: GPLinkerModel, tokenizer: PreTrainedTokenizerFast) -> GPLinker:
        d = self.recipe.data
        return GPLinker(
            model.to(self.device).eval(),
            tokenizer,
            self.data.schema,
            task=self.data.task,
            max_length=d.max_length,
            max_candidates=self.recipe.train.max_candidates,
            window_overlap=d.window_overlap,
            device=self.device,
        )


def trained_folder(data: Data, size: dict) -> Path | None:
    """A trained model under runs/ for this task, with this data's schema and this encoder
    shape."""
    if data.shared is None:
        return None
    for name in data.origin.trained:
        folder = ROOT / name
        try:
            saved = json.loads((folder / CONFIG_NAME).read_text(encoding="utf-8"))
            schema = data.task.read_schema(folder / SCHEMA_NAME, None)
        except (OSError, ValueError, GPLinkerError):
            continue
        encoder = saved.get("encoder", {})
        if (
            saved.get("task", "event") == data.task.name
            and schema == data.schema
            and all(encoder.get(k) == v for k, v in size.items())
        ):
            return folder
    return None


def trained_scores(data: Data, folder: Path) -> dict:
    out = {"scores": "trained", "model": str(folder.relative_to(ROOT))}
    metric = data.task.main_metric
    try:
        run = json.loads((folder.parent / "run.json").read_text(encoding="utf-8"))
        out[f"dev_{metric}_f1"] = run["best"][metric]["f1"]
    except (OSError, ValueError, KeyError):
        pass
    return out
