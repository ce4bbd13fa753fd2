"""Speed and memory of gplinker against its references, each measured in one run (issue 5).

    python scripts/bench.py --quick               # < 5 minutes on 2 cores -> benchmarks/quick.json
    python scripts/bench.py                       # the full run -> benchmarks/full.json
    python scripts/bench.py --device cuda --bf16  # on a GPU -> benchmarks/full-cuda-bf16.json
    python scripts/bench.py --report              # benchmarks/*.json -> docs/performance.md

Every figure is a ratio to a reference measured in the same run on the same batches: the
variants run interleaved per batch (A, B, A, B, ...) and are reduced by medians, so drift
on a busy machine cancels. The models are random-init BERTs of two sizes, `tiny` (the
encoder of configs/duee-tiny.yaml) and `base` (bert-base-chinese's shape), at batch 32 and
max_length 128, on DuEE texts from ../shared/data/duee; without ../shared, data/sample (the
JSON and the table say so). The JSON also records the machine and the commit. The seven
benchmarks (training step, data path, prediction, decoding, memory, scaling, EGP vs the
original GlobalPointer) are described in docs/performance.md.
"""

from __future__ import annotations

import argparse
import cProfile
import inspect
import json
import logging
import math
import os
import platform
import pstats
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime, timezone
from functools import cached_property, partial
from itertools import combinations, islice
from pathlib import Path
from typing import Any
from unittest.mock import patch

import numpy as np
import torch
import transformers
from torch import Tensor
from torch.utils.data import DataLoader
from transformers import PreTrainedTokenizerFast

import gplinker.decoding
import gplinker.predict
from gplinker.config import Config, ModelConfig, load_config
from gplinker.data.alignment import Encoded, encode_windows
from gplinker.data.collate import Batch, bucketed_batches, collate, length_sorted_batches
from gplinker.data.labels import SparseLabels
from gplinker.data.reader import read_examples, write_jsonl
from gplinker.data.tokenizer import build_wordpiece_tokenizer, load_tokenizer
from gplinker.decoding import decode_batch, decode_candidates, factored_candidates
from gplinker.errors import GPLinkerError
from gplinker.modeling.global_pointer import EfficientGlobalPointer, Factored
from gplinker.modeling.model import CONFIG_NAME, GPLinkerModel
from gplinker.predict import GPLinker, predict_file
from gplinker.schema import Example, Schema
from gplinker.training import build_optimizer, compute_loss, prepare_examples

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "configs" / "duee-tiny.yaml"  # optimizer, clipping, max_length, tiny encoder
DOC = ROOT / "docs" / "performance.md"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
TRAINED = ("runs/final/best", "runs/duee-tiny/best")  # briefly trained tiny models, if any
BATCH = 32
BASE = {"num_hidden_layers": 12, "hidden_size": 768, "num_attention_heads": 12}
BASE["intermediate_size"] = 3072
MB = 2**20
NONE = "—"

# variant names (keys of the JSON)
BARE, NO_OPT, STEP, DENSE = "encoder fwd+bwd", "fwd+loss+bwd", "step", "step, dense loss"
DATA, PREPARE, COLLATE = "tokenize+labels+collate", "tokenize+labels", "collate"
E2E, ENCODER_FWD, MODEL_FWD = "predict_file", "encoder forward", "model forward"
PREDICT_FWD = "forward + candidate scan"
EFFICIENT, ORIGINAL = "efficient", "original"


@dataclass(frozen=True)
class Plan:
    """How much each benchmark measures; `benches` says at which sizes each one runs."""

    train_texts: int  # train texts drawn for the step and data-path batches
    dev_texts: dict[str, int]  # per size: dev texts predicted end to end and decoded
    step_batches: dict[str, int]  # per size: measured batches (one more warms up)
    predict_reps: int  # e2e passes over the dev texts per variant
    loader_workers: tuple[int, ...]  # DataLoader worker counts tried (0 = in the loop)
    loader_batches: int
    worst_texts: int  # longest dev texts decoded with an untrained model's scores
    scaling_lengths: tuple[int, ...]
    scaling_labels: tuple[int, ...]
    scaling_reps: int
    scaling_predict_batch: int  # dense [B, H, L, L] scores at L=512: kept small
    split_sizes: tuple[str, ...]  # sizes whose step is also timed without optimizer / dense
    pointer_batches: int  # measured batches of the EGP / GP comparison (one more warms up)
    benches: dict[str, tuple[str, ...]]


EVERY = ("tiny", "base")
QUICK = Plan(
    train_texts=800,
    dev_texts={"tiny": 256, "base": 32},
    step_batches={"tiny": 8, "base": 2},
    predict_reps=2,
    loader_workers=(0, 1),
    loader_batches=6,
    worst_texts=8,
    scaling_lengths=(64, 128, 256),
    scaling_labels=(1, 65, 282),
    scaling_reps=2,
    scaling_predict_batch=4,
    split_sizes=("tiny",),
    pointer_batches=2,
    benches={
        "step": EVERY,
        "data": ("tiny",),
        "predict": EVERY,
        "decode": ("tiny",),
        "memory": ("tiny",),
        "scaling": ("tiny",),
        "pointer": ("tiny",),
    },
)
FULL = Plan(
    train_texts=3000,
    dev_texts={"tiny": 1492, "base": 256},
    step_batches={"tiny": 30, "base": 8},
    predict_reps=3,
    loader_workers=(0, 1, 2),
    loader_batches=20,
    worst_texts=32,
    scaling_lengths=(64, 128, 256, 512),
    scaling_labels=(1, 65, 282),
    scaling_reps=3,
    scaling_predict_batch=4,
    split_sizes=EVERY,
    pointer_batches=5,
    # on 2 CPU cores a base-size step takes ~10 s: the data path (its ratio is highest at
    # tiny anyway) and scaling (a base step at L=512 takes minutes) stay tiny
    benches={b: EVERY for b in QUICK.benches} | {"data": ("tiny",), "scaling": ("tiny",)},
)


# ---------------------------------------------------------------- data and models


@dataclass
class Data:
    source: str  # what was read, said in the JSON and the table
    shared: Path | None  # the ../shared folder read; None = the data/sample fallback
    schema: Schema
    tokenizer: PreTrainedTokenizerFast
    encoder: str | None  # encoder config folder; None = transformers' BERT defaults
    train: list[Example]
    dev: list[Example]

    @property
    def spans_per_text(self) -> float:
        """Gold argument spans (triggers included) per dev text."""
        spans = sum(len(ev.arguments) for ex in self.dev for ev in ex.events)
        return spans / max(1, len(self.dev))


def load_data(shared: Path | None, n_train: int) -> Data:
    """DuEE and the bert-base-chinese tokenizer from `shared`, else data/sample with a
    WordPiece vocabulary built from it; `n_train` train texts drawn at random (seed 0)."""
    duee = shared / "data" / "duee" if shared else None
    if shared is None or not duee.is_dir():
        return _sample_data(n_train)
    folder = shared / "models" / "bert-base-chinese-tokenizer"
    schema = Schema.from_file(duee / "duee_event_schema.json")
    train = list(read_examples(duee / "duee_train.json", schema)) if n_train else []
    return Data(
        source=f"DuEE 1.0 ({duee})",
        shared=shared,
        schema=schema,
        tokenizer=load_tokenizer(folder),
        encoder=str(folder),
        train=_draw(train, n_train),
        dev=list(read_examples(duee / "duee_dev.json", schema)),
    )


def _sample_data(n_train: int) -> Data:
    sample = ROOT / "data" / "sample"
    schema = Schema.from_file(sample / "duee_event_schema.json")
    train = list(read_examples(sample / "train.json", schema))
    return Data(
        source=f"{sample.relative_to(ROOT)} (fallback: ../shared is absent)",
        shared=None,
        schema=schema,
        tokenizer=build_wordpiece_tokenizer((ex.text for ex in train), 3000),
        encoder=None,
        train=_draw(train, n_train),
        dev=list(read_examples(sample / "dev.json", schema)),
    )


def _draw(items: list, n: int) -> list:
    return random.Random(0).sample(items, min(n, len(items)))


def build_model(
    data: Data, size: dict, *, num_labels: int | None = None, pointer: str = EFFICIENT
) -> GPLinkerModel:
    """A random-init encoder of the given shape + the three pointers (seed 0)."""
    config = ModelConfig(
        encoder=data.encoder, pretrained=False, encoder_overrides=size, pointer=pointer
    )
    torch.manual_seed(0)
    return GPLinkerModel.from_encoder(config, num_labels or len(data.schema), len(data.tokenizer))


def train_batches(data: Data, recipe: Config, device: torch.device, n: int) -> list[Batch]:
    """The first n batches of an epoch as train() forms them (length buckets, windows),
    the shortest moved to the front: it only warms up."""
    d = recipe.data
    _, items, _ = prepare_examples(
        data.train, data.tokenizer, data.schema, d.max_length, d.window_overlap
    )
    lengths = [len(enc) for enc, _ in items]
    order = bucketed_batches(lengths, BATCH, recipe.train.bucket_size, random.Random(0))
    chosen = list(islice(order, n))
    shortest = min(range(len(chosen)), key=lambda k: max(lengths[i] for i in chosen[k]))
    chosen.insert(0, chosen.pop(shortest))
    return [collate([items[i] for i in idx], len(data.schema)).to(device) for idx in chosen]


def longest_batch(data: Data, recipe: Config) -> Batch:
    """The BATCH longest dev texts, cut at max_length: the largest training batch."""
    texts = sorted(data.dev, key=lambda ex: len(ex.text), reverse=True)[:BATCH]
    _, items, _ = prepare_examples(texts, data.tokenizer, data.schema, recipe.data.max_length)
    return collate(items, len(data.schema))


def prepare_batch(
    examples: list[Example],
    tokenizer: PreTrainedTokenizerFast,
    schema: Schema,
    max_length: int,
    overlap: int,
) -> Batch:
    """Texts -> a training batch on the fly: tokenize, build labels, collate."""
    _, items, _ = prepare_examples(examples, tokenizer, schema, max_length, overlap)
    return collate(items, len(schema))


def synthetic_batch(n: int, length: int, num_labels: int, vocab: int, seed: int) -> Batch:
    """n texts of exactly `length` tokens (random ids), 4 linked argument spans each."""
    rng = random.Random(seed)
    items = []
    for _ in range(n):
        ids = [rng.randrange(5, vocab) for _ in range(length)]
        spans = []
        for _ in range(4):
            h = rng.randrange(1, length - 1)
            spans.append((rng.randrange(num_labels), h, min(length - 2, h + rng.randrange(4))))
        pairs = list(combinations(spans, 2))
        heads = sorted({(min(a[1], b[1]), max(a[1], b[1])) for a, b in pairs})
        tails = sorted({(min(a[2], b[2]), max(a[2], b[2])) for a, b in pairs})
        labels = SparseLabels(tuple(spans), tuple(heads), tuple(tails))
        items.append((Encoded(ids, [(i, i + 1) for i in range(length)]), labels))
    return collate(items, num_labels)


# ---------------------------------------------------------------- timing


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(fn: Callable[[], object], device: torch.device) -> tuple[float, float | None]:
    """Seconds fn() takes and, on CUDA, the most memory it held allocated (MB)."""
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    fn()
    sync(device)
    seconds = time.perf_counter() - start
    return seconds, torch.cuda.max_memory_allocated(device) / MB if cuda else None


@dataclass
class Timings:
    seconds: dict[str, list[float]]  # per variant, one per measured item
    cuda_peak_mb: dict[str, float]

    def ms(self) -> dict[str, float]:
        return {k: 1000 * statistics.median(v) for k, v in self.seconds.items()}

    def ratios(self, reference: str) -> dict[str, float]:
        """Median over items of variant / reference, each pair measured back to back."""
        ref = self.seconds[reference]
        return {
            k: statistics.median(a / b for a, b in zip(v, ref, strict=True))
            for k, v in self.seconds.items()
        }

    def summary(self, reference: str) -> dict:
        out = {"reference": reference, "ms": self.ms(), "ratio": self.ratios(reference)}
        if self.cuda_peak_mb:
            out["cuda_max_allocated_mb"] = self.cuda_peak_mb
        return out


def interleaved(
    variants: dict[str, Callable[[Any], object]],
    items: Sequence[Any],
    device: torch.device,
    warmup: int = 1,
) -> Timings:
    """Each item through every variant in turn (A, B, A, B, ...); the first `warmup`
    items are not timed."""
    for item in items[:warmup]:
        for fn in variants.values():
            fn(item)
    timings = Timings({k: [] for k in variants}, {})
    for item in items[warmup:]:
        for name, fn in variants.items():
            seconds, peak = measure(partial(fn, item), device)
            timings.seconds[name].append(seconds)
            if peak is not None:
                timings.cuda_peak_mb[name] = max(peak, timings.cuda_peak_mb.get(name, 0.0))
    return timings


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
        compute_loss(out, batch).backward()

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


# ---------------------------------------------------------------- one size's run


@dataclass
class Run:
    """What one size's benchmarks share; models and batches are made on first use."""

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
        return [ex.text for ex in _draw(self.data.dev, n)]

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
            return predictor, trained_scores(folder)
        windows = windows_of(predictor, self.dev_texts)
        batches = [b for b, _ in length_batches(predictor, windows)]
        shift = lower_argument_scores(predictor.model, batches, self.data.spans_per_text)
        return predictor, {
            "scores": "random init, every argument score lowered by one constant",
            "argument_shift": shift,
            "target_cells_per_text": self.data.spans_per_text,
        }

    def make_predictor(self, model: GPLinkerModel, tokenizer: PreTrainedTokenizerFast) -> GPLinker:
        d = self.recipe.data
        return GPLinker(
            model.to(self.device).eval(),
            tokenizer,
            self.data.schema,
            max_length=d.max_length,
            max_candidates=self.recipe.train.max_candidates,
            window_overlap=d.window_overlap,
            device=self.device,
        )


def trained_folder(data: Data, size: dict) -> Path | None:
    """A trained model under runs/ with this data's schema and this encoder shape."""
    if data.shared is None:
        return None
    for name in TRAINED:
        folder = ROOT / name
        try:
            saved = json.loads((folder / CONFIG_NAME).read_text(encoding="utf-8"))
            schema = Schema.from_file(folder / gplinker.predict.SCHEMA_NAME)
        except (OSError, ValueError, GPLinkerError):
            continue
        encoder = saved.get("encoder", {})
        if schema == data.schema and all(encoder.get(k) == v for k, v in size.items()):
            return folder
    return None


def trained_scores(folder: Path) -> dict:
    out = {"scores": "trained", "model": str(folder.relative_to(ROOT))}
    try:
        run = json.loads((folder.parent / "run.json").read_text(encoding="utf-8"))
        out["dev_event_f1"] = run["best"]["event"]["f1"]
    except (OSError, ValueError, KeyError):
        pass
    return out


def lower_argument_scores(
    model: GPLinkerModel, batches: Sequence[Batch], cells_per_text: float
) -> float:
    """Lower every argument score by one constant so that about `cells_per_text` cells a
    text score above 0, as after training: an untrained model marks about half of all
    cells (SPEC §10) and floods the decoder. With u = bias(x)/2 feeding both u_j[2α] and
    u_i[2α+1] (SPEC §3), lowering the bias vector by δ lowers every score by δ."""
    n_texts = sum(len(b.input_ids) for b in batches)
    k = max(1, round(cells_per_text * n_texts))
    with torch.inference_mode():
        tops = [model(b.input_ids, b.attention_mask).argu.flatten().topk(k).values for b in batches]
        shift = float(torch.cat(tops).topk(k).values[-1])
    with torch.no_grad():
        model.argu.bias.bias -= shift
    return shift


def windows_of(predictor: GPLinker, texts: Sequence[str]) -> list[tuple[Encoded, str]]:
    """Every window of every text, with its text, as predictor.extract forms them."""
    p = predictor
    windows = encode_windows(texts, p.tokenizer, p.max_length, p.window_overlap)
    return [(w, text) for text, ws in zip(texts, windows, strict=True) for w in ws]


def length_batches(
    predictor: GPLinker, windows: Sequence[tuple[Encoded, str]]
) -> list[tuple[Batch, list[tuple[Encoded, str]]]]:
    """The length-sorted batches predictor.extract runs, with their windows."""
    order = length_sorted_batches([len(w) for w, _ in windows], BATCH)
    n_labels = len(predictor.schema)
    return [
        (
            collate([(windows[i][0], None) for i in idx], n_labels).to(predictor.device),
            [windows[i] for i in idx],
        )
        for idx in order
    ]


# ---------------------------------------------------------------- 1. training step


def bench_step(run: Run) -> dict:
    """A training step vs the bare encoder's forward+backward on the same batches."""
    model = build_model(run.data, run.size).to(run.device).train()
    variants = step_variants(model, run.recipe, run.device, run.bf16)
    if run.size_name not in run.plan.split_sizes:
        del variants[NO_OPT], variants[DENSE]
    timings = interleaved(variants, run.batches, run.device)
    result = {
        "batches": run.step_count,
        "mean_padded_length": statistics.mean(b.input_ids.shape[1] for b in run.batches[1:]),
        "params": sum(p.numel() for p in model.parameters()),
        **timings.summary(BARE),
    }
    if missed("step", run.size_name, result):
        step = partial(variants[STEP], run.batches[1])
        result["profile"] = profile_ops(step, run.device)
    return result


# ---------------------------------------------------------------- 2. data path


def bench_data(run: Run) -> dict:
    """Tokenization + labels + collation of a batch vs the step it feeds; the share of
    time a step waits for data, in the loop (workers 0) or from DataLoader workers."""
    model = build_model(run.data, run.size).to(run.device).train()
    step = step_variants(model, run.recipe, run.device, run.bf16)[STEP]
    groups = example_batches(run.data, run.recipe, run.plan.loader_batches + 1)
    d, data = run.recipe.data, run.data
    fields = {
        "tokenizer": data.tokenizer,
        "schema": data.schema,
        "max_length": d.max_length,
        "overlap": d.window_overlap,
    }
    prepare = partial(prepare_examples, **fields)
    seconds: dict[str, list[float]] = {DATA: [], PREPARE: [], COLLATE: [], STEP: []}
    for k, examples in enumerate(groups):
        start = time.perf_counter()
        _, items, _ = prepare(examples)
        prepared = time.perf_counter()
        batch = collate(items, len(data.schema)).to(run.device)
        collated = time.perf_counter()
        stepped, _ = measure(partial(step, batch), run.device)
        if k:  # the first batch warms up
            parts = {PREPARE: prepared - start, COLLATE: collated - prepared, STEP: stepped}
            for name, s in {**parts, DATA: collated - start}.items():
                seconds[name].append(s)
    on_the_fly = partial(prepare_batch, **fields)
    loaders = [
        loader_stall(groups, on_the_fly, step, run.device, w) for w in run.plan.loader_workers
    ]
    timings = Timings(seconds, {})
    ms = timings.ms()
    return {
        "batches": len(groups) - 1,
        **timings.summary(STEP),
        "train_loop_stall_share": ms[COLLATE] / (ms[COLLATE] + ms[STEP]),
        "prepare_ms_per_text": ms[PREPARE] / statistics.mean(len(g) for g in groups),
        "loader": loaders,
    }


def example_batches(data: Data, recipe: Config, n: int) -> list[list[Example]]:
    """Batches of raw train texts, bucketed by character length."""
    lengths = [len(ex.text) for ex in data.train]
    order = bucketed_batches(lengths, BATCH, recipe.train.bucket_size, random.Random(1))
    return [[data.train[i] for i in idx] for idx in islice(order, n)]


def loader_stall(
    groups: list[list[Example]],
    on_the_fly: Callable[[list[Example]], Batch],
    step: Callable[[Batch], None],
    device: torch.device,
    workers: int,
) -> dict:
    """Steps fed by a DataLoader that prepares each batch on the fly: the share of the
    time spent waiting for the next batch (the first batch, which starts the workers,
    is not counted)."""
    loader = DataLoader(groups, batch_size=None, num_workers=workers, collate_fn=on_the_fly)
    wait, busy = [], []
    batches = iter(loader)
    step(next(batches).to(device))
    for _ in range(len(groups) - 1):
        start = time.perf_counter()
        batch = next(batches).to(device)
        wait.append(time.perf_counter() - start)
        busy.append(measure(partial(step, batch), device)[0])
    return {
        "workers": workers,
        "stall_share": sum(wait) / (sum(wait) + sum(busy)),
        "step_ms": 1000 * statistics.median(busy),
    }


# ---------------------------------------------------------------- 3. prediction


def bench_predict(run: Run) -> dict:
    """predict_file end to end (JSONL in, events out) vs the bare encoder's forward over
    the same length-sorted batches, in sentences per second; then where its time goes."""
    predictor, scores = run.predictor
    texts = run.dev_texts
    source, target = run.workdir / "input.jsonl", run.workdir / "events.jsonl"
    write_jsonl(source, ({"id": f"t{i}", "text": t} for i, t in enumerate(texts)))
    batches = [b for b, _ in length_batches(predictor, windows_of(predictor, texts))]
    encoder = forward_variants(predictor.model, run.device, run.bf16)[ENCODER_FWD]
    e2e = partial(predict_jsonl, predictor, source, target, run.bf16)
    variants = {E2E: lambda _: e2e(), ENCODER_FWD: lambda _: [encoder(b) for b in batches]}
    with count_warnings("gplinker.decoding") as warnings:
        timings = interleaved(variants, range(run.plan.predict_reps + 1), run.device)
        parts = predict_parts(predictor, e2e)
    rows = target.read_text(encoding="utf-8").splitlines()
    result = {
        **scores,
        "texts": len(texts),
        "windows": sum(len(b.input_ids) for b in batches),
        "sentences_per_s": {k: len(texts) / (v / 1000) for k, v in timings.ms().items()},
        **timings.summary(ENCODER_FWD),
        "events_per_text": sum(len(json.loads(r)["event_list"]) for r in rows) / len(texts),
        "parts": parts,
        "decoder_warnings": len(warnings),  # caps that bit, over every e2e run
    }
    result["ratio"] = {E2E: 1 / result["ratio"][E2E]}  # throughput: e2e / encoder
    if missed("predict", run.size_name, result):
        result["profile"] = profile_calls(e2e)
    return result


def predict_jsonl(predictor: GPLinker, source: Path, target: Path, bf16: bool) -> None:
    with autocast(predictor.device, bf16):
        predict_file(predictor, source, target, batch_size=BATCH, progress=False)


def predict_parts(predictor: GPLinker, e2e: Callable[[], None]) -> dict:
    """One predict_file run with the package's own steps clocked where it calls them;
    "read, write, rest" is what is left (JSON in and out, rows, moving tensors)."""
    model, spent = predictor.model, Counter()
    heads = [
        ("heads", p, "factored" if isinstance(p, EfficientGlobalPointer) else "forward")
        for p in (model.argu, model.head_link, model.tail_link)
    ]
    owners = [
        ("tokenize", gplinker.predict, "encode_windows"),
        ("collate", gplinker.predict, "collate"),
        ("encoder", model.encoder, "forward"),
        *heads,
        ("decode", gplinker.predict, "decode_sentences"),
        ("candidate scan", gplinker.decoding, "factored_candidates"),  # inside decode_sentences
        ("merge windows", gplinker.predict, "merge_windows"),
    ]
    with ExitStack() as stack:
        for name, owner, attr in owners:
            clocked = _clocked(getattr(owner, attr), name, spent, predictor.device)
            stack.enter_context(patch.object(owner, attr, clocked))
        total, _ = measure(e2e, predictor.device)
    spent["decode"] -= spent["candidate scan"]
    spent["read, write, rest"] = total - sum(spent.values())
    return {"seconds": total, "share": {k: v / total for k, v in spent.items()}}


def _clocked(fn: Callable, name: str, spent: Counter, device: torch.device) -> Callable:
    def clocked(*args: Any, **kwargs: Any) -> Any:
        sync(device)
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            sync(device)
            spent[name] += time.perf_counter() - start

    return clocked


# ---------------------------------------------------------------- 4. decoding


def bench_decode(run: Run) -> dict:
    """decode() per sentence with trained-like scores (median, p99) and, for the longest
    dev texts, with an untrained model's (the worst case, bounded by the caps); the
    reference is the encoder's forward per sentence, timed in the same loop."""
    predictor, scores = run.predictor
    untrained = run.make_predictor(build_model(run.data, run.size), run.data.tokenizer)
    longest = sorted(run.dev_texts, key=len, reverse=True)[: run.plan.worst_texts]
    typical = decode_times(predictor, run.dev_texts)
    worst = decode_times(untrained, longest)
    caps = inspect.signature(decode_candidates).parameters
    per_text = statistics.median(typical["encoder_s"])
    return {
        **scores,
        "trained_like": decode_summary(typical),
        "untrained": decode_summary(worst),
        "bound": {
            "max_candidates": predictor.max_candidates,
            "max_events_per_type": caps["max_events_per_type"].default,
            "event_types": len(run.data.schema.event_types),
        },
        "reference": "encoder forward per sentence",
        "encoder_ms_per_sentence": 1000 * per_text,
        "ratio": {
            "trained-like median": statistics.median(typical["decode_s"]) / per_text,
            "untrained worst": max(worst["decode_s"]) / per_text,
        },
    }


def decode_times(predictor: GPLinker, texts: Sequence[str]) -> dict[str, list]:
    """Per sentence, decode_batch as prediction calls it, on that sentence's slice of the
    batch's scores: seconds; the encoder's forward seconds (its batch's, shared out);
    argument cells above 0; events; whether a cap bit."""
    model, device = predictor.model, predictor.device
    encoder = forward_variants(model, device, bf16=False)[ENCODER_FWD]
    out: dict[str, list] = {k: [] for k in ("decode_s", "encoder_s", "cells", "events", "capped")}
    with count_warnings("gplinker.decoding") as warnings:
        for batch, members in length_batches(predictor, windows_of(predictor, texts)):
            encoder_s, _ = measure(partial(encoder, batch), device)
            with torch.inference_mode():
                scores = model(batch.input_ids, batch.attention_mask, factored=True)
            for b, (enc, text) in enumerate(members):
                argu, head, tail = (
                    one_sentence(x, b) for x in (scores.argu, scores.head_link, scores.tail_link)
                )
                before, start = len(warnings), time.perf_counter()
                found = decode_batch(
                    argu,
                    head,
                    tail,
                    [enc.offsets],
                    [text],
                    predictor.schema,
                    max_candidates=predictor.max_candidates,
                )[0]
                out["decode_s"].append(time.perf_counter() - start)
                out["events"].append(len(found))
                out["encoder_s"].append(encoder_s / len(members))
                out["cells"].append(cells_above_0(argu))
                out["capped"].append(len(warnings) > before)
    return out


def one_sentence(scores: Tensor | Factored, b: int) -> Tensor | Factored:
    """Sentence b of a batch's scores, still a batch (of one)."""
    if isinstance(scores, Factored):
        return Factored(**{f.name: getattr(scores, f.name)[b : b + 1] for f in fields(scores)})
    return scores[b : b + 1]


def cells_above_0(argu: Tensor | Factored) -> int:
    if isinstance(argu, Factored):
        return sum(len(cand) for cand, _ in factored_candidates(argu))
    return int((argu > 0).sum())


def decode_summary(times: dict[str, list]) -> dict:
    seconds = sorted(times["decode_s"])
    return {
        "sentences": len(seconds),
        "median_ms": 1000 * statistics.median(seconds),
        "p99_ms": 1000 * seconds[min(len(seconds) - 1, math.ceil(0.99 * len(seconds)) - 1)],
        "max_ms": 1000 * seconds[-1],
        "median_cells_above_0": statistics.median(times["cells"]),
        "max_cells_above_0": max(times["cells"]),
        "mean_events": statistics.mean(times["events"]),
        "max_events": max(times["events"]),
        "capped_sentences": sum(times["capped"]),
    }


@contextmanager
def count_warnings(name: str) -> Iterator[list[logging.LogRecord]]:
    """The warnings of a logger, kept in a list instead of printed."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger(name)
    logger.addHandler(handler)
    propagate, logger.propagate = logger.propagate, False
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


# ---------------------------------------------------------------- 5. memory


MEMORY_VARIANTS = (BARE, STEP, DENSE)
MEMORY_STEPS = 2  # the optimizer state appears in the first step


def bench_memory(run: Run) -> dict:
    """Peak RSS of a training step on the longest batch (fresh process per variant) vs
    the bare encoder's fwd+bwd; bytes of the sparse label tensors vs dense ones."""
    spec = {
        "shared": str(run.data.shared) if run.data.shared else None,
        "size": run.size,
        "device": str(run.device),
        "bf16": run.bf16,
    }
    peaks = {v: run.memory_runner({**spec, "variant": v}) for v in MEMORY_VARIANTS}
    batch = longest_batch(run.data, run.recipe)
    B, L = batch.input_ids.shape
    H = len(run.data.schema)
    sparse = sum(
        t.nelement() * t.element_size() for t in (batch.argu, batch.head_link, batch.tail_link)
    )
    dense = B * (H + 2) * L * L * 4  # float32 [B, H, L, L] + two [B, 1, L, L]
    result = {
        "batch_size": B,
        "padded_length": L,
        "labels": H,
        "reference": BARE,
        "peak_rss_mb": {v: p["peak_mb"] for v, p in peaks.items()},
        "growth_mb": {v: p["peak_mb"] - p["ready_mb"] for v, p in peaks.items()},
        "ratio": {v: p["peak_mb"] / peaks[BARE]["peak_mb"] for v, p in peaks.items()},
        "label_bytes": {"sparse": sparse, "dense float32": dense},
        "label_ratio": sparse / dense,
    }
    if run.device.type == "cuda":
        result["cuda_max_allocated_mb"] = {v: p["cuda_max_allocated_mb"] for v, p in peaks.items()}
    return result


def measure_memory(spec: dict) -> dict:
    """In this process: build, then MEMORY_STEPS of one variant on the longest batch;
    ru_maxrss before and after. Meant for a fresh process (memory_in_subprocess)."""
    device = torch.device(spec["device"])
    recipe = load_config(RECIPE)
    data = load_data(Path(spec["shared"]) if spec["shared"] else None, n_train=0)
    model = build_model(data, spec["size"]).to(device).train()
    batch = longest_batch(data, recipe).to(device)
    step = step_variants(model, recipe, device, spec["bf16"])[spec["variant"]]
    ready = rss_mb()
    reset = reset_peak_rss()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for _ in range(MEMORY_STEPS):
        step(batch)
    out = {"ready_mb": ready, "peak_mb": peak_rss_mb(), "peak_of_steps_only": reset}
    if device.type == "cuda":
        out["cuda_max_allocated_mb"] = torch.cuda.max_memory_allocated(device) / MB
    return out


def memory_in_subprocess(spec: dict) -> dict:
    """measure_memory in a fresh Python process, so that each peak is its own."""
    done = subprocess.run(
        [sys.executable, __file__, "--memory-child", json.dumps(spec)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    if done.returncode:
        raise RuntimeError(f"memory measurement {spec['variant']!r} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


STATUS = Path("/proc/self/status")


def peak_rss_mb() -> float:
    """This program's peak resident set size. On Linux VmHWM: ru_maxrss would also count
    the process that forked this one (it survives exec), so every child would show the
    benchmark's own size. Elsewhere ru_maxrss (bytes on macOS, KiB on others)."""
    if STATUS.exists():
        return _status_mb("VmHWM")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / MB if sys.platform == "darwin" else peak / 1024


def rss_mb() -> float:
    return _status_mb("VmRSS") if STATUS.exists() else peak_rss_mb()


def reset_peak_rss() -> bool:
    """Linux: set the peak to the current size ("5" > clear_refs), so that the peak
    measured after it is that of what runs after it. False where that is impossible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _status_mb(field: str) -> float:
    for line in STATUS.read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024  # kB
    raise KeyError(field)


# ---------------------------------------------------------------- 6. scaling


LABELS_AT = 128  # the length at which the label count varies


def bench_scaling(run: Run) -> dict:
    """Step and prediction-forward times on synthetic texts of exactly L tokens, for each
    max_length L and each label count H, each against the bare encoder's; fits of how
    the heads' extra time grows (the L² term) and the cost per label."""
    plan, n_labels = run.plan, len(run.data.schema)
    model = build_model(run.data, run.size).to(run.device)
    by_length = {L: scaling_point(run, model, L, n_labels) for L in plan.scaling_lengths}
    by_labels = {}
    for H in plan.scaling_labels:
        if n_labels == H and LABELS_AT in by_length:  # measured above
            by_labels[H] = by_length[LABELS_AT]
            continue
        labelled = build_model(run.data, run.size, num_labels=H).to(run.device)
        by_labels[H] = scaling_point(run, labelled, LABELS_AT, H)
    return {
        "step_batch": BATCH,
        "predict_batch": plan.scaling_predict_batch,
        "labels": n_labels,
        "by_length": by_length,
        "by_labels": by_labels,
        "exponents": exponents(by_length),
        "fit_labels": {k: per_unit(by_labels, k) for k in ("step extra", "predict extra")},
    }


def scaling_point(run: Run, model: GPLinkerModel, length: int, n_labels: int) -> dict:
    """Step vs encoder fwd+bwd, and prediction's forward + candidate scan (argument
    scores lowered as in bench_predict, then restored) vs the encoder's forward."""
    vocab, device = len(run.data.tokenizer), run.device
    batch = synthetic_batch(BATCH, length, n_labels, vocab, seed=length).to(device)
    small = synthetic_batch(run.plan.scaling_predict_batch, length, n_labels, vocab, seed=length)
    small, reps = small.to(device), run.plan.scaling_reps + 1
    steps = step_variants(model.train(), run.recipe, device, run.bf16)
    train = interleaved({k: steps[k] for k in (BARE, STEP)}, [batch] * reps, device)
    shift = lower_argument_scores(model.eval(), [small], run.data.spans_per_text)
    infer = interleaved(predict_variants(model, device, run.bf16), [small] * reps, device)
    with torch.no_grad():
        model.argu.bias.bias += shift
    ms = {**train.ms(), **infer.ms()}
    ms["step extra"] = ms[STEP] - ms[BARE]
    ms["predict extra"] = ms[PREDICT_FWD] - ms[ENCODER_FWD]
    ratios = {"step": train.ratios(BARE)[STEP], "predict": infer.ratios(ENCODER_FWD)[PREDICT_FWD]}
    return {"ms": ms, "ratio": ratios}


def predict_variants(
    model: GPLinkerModel, device: torch.device, bf16: bool
) -> dict[str, Callable[[Batch], None]]:
    """The encoder's forward, and prediction up to decoding: the model's forward as
    predict runs it and the scan for argument cells above 0 (EGP)."""
    forwards = forward_variants(model, device, bf16)

    @torch.inference_mode()
    def predict(batch: Batch) -> None:
        with autocast(device, bf16):
            out = model(batch.input_ids, batch.attention_mask, factored=True)
        factored_candidates(out.argu)

    return {ENCODER_FWD: forwards[ENCODER_FWD], PREDICT_FWD: predict}


def exponents(points: dict[int, dict]) -> dict[str, float | None]:
    """Per variant, the slope of log ms against log L (1 = linear, 2 = quadratic); for
    the heads' extra time too, where it is positive at every L."""
    xs = sorted(points)
    out: dict[str, float | None] = {}
    for k in (BARE, STEP, "step extra", ENCODER_FWD, PREDICT_FWD, "predict extra"):
        ys = [points[x]["ms"][k] for x in xs]
        out[k] = float(np.polyfit(np.log(xs), np.log(ys), 1)[0]) if min(ys) > 0 else None
    return out


def per_unit(points: dict[int, dict], key: str) -> dict:
    """Fit ms = a + b·H: b is the cost of one more label."""
    xs = np.array(sorted(points), dtype=float)
    ys = np.array([points[int(x)]["ms"][key] for x in xs])
    slope, intercept = np.polyfit(xs, ys, 1) if len(xs) > 1 else (0.0, float(ys[0]))
    return {"ms_per_label": float(slope), "intercept_ms": float(intercept)}


# ---------------------------------------------------------------- 7. EGP vs GlobalPointer


def bench_pointer(run: Run) -> dict:
    """The original GlobalPointer vs Efficient GlobalPointer: parameters, training step
    (GP: dense loss; EGP: factored, as train() does) and prediction forward."""
    models = {
        p: build_model(run.data, run.size, pointer=p).to(run.device) for p in (EFFICIENT, ORIGINAL)
    }
    steps = {
        p: step_variants(m.train(), run.recipe, run.device, run.bf16)[STEP]
        for p, m in models.items()
    }
    batches = run.batches[: run.plan.pointer_batches + 1]
    train = interleaved(steps, batches, run.device)
    forwards = {
        p: forward_variants(m.eval(), run.device, run.bf16)[MODEL_FWD] for p, m in models.items()
    }
    infer = interleaved(forwards, batches, run.device)
    params = {p: head_params(m) for p, m in models.items()}
    return {
        "reference": EFFICIENT,
        "head_params": params,
        "step": train.summary(EFFICIENT),
        "predict_forward": infer.summary(EFFICIENT),
        "ratio": {
            "head params": params[ORIGINAL] / params[EFFICIENT],
            "step": train.ratios(EFFICIENT)[ORIGINAL],
            "predict forward": infer.ratios(EFFICIENT)[ORIGINAL],
        },
    }


def head_params(model: GPLinkerModel) -> int:
    return sum(
        p.numel() for m in (model.argu, model.head_link, model.tail_link) for p in m.parameters()
    )


BENCHES: dict[str, Callable[[Run], dict]] = {
    "step": bench_step,
    "data": bench_data,
    "predict": bench_predict,
    "decode": bench_decode,
    "memory": bench_memory,
    "scaling": bench_scaling,
    "pointer": bench_pointer,
}


# ---------------------------------------------------------------- targets and profiles


@dataclass(frozen=True)
class Target:
    bench: str
    sizes: tuple[str, ...] | None  # None: every size
    figure: str
    value: Callable[[dict], float]
    at_most: bool  # the value must be <= bound (else >= bound)
    bound: float

    def met(self, result: dict) -> bool:
        v = self.value(result)
        return v <= self.bound if self.at_most else v >= self.bound

    def text(self) -> str:
        return f"{'≤' if self.at_most else '≥'} {self.bound:g}"


def _worker_stall(result: dict) -> float:
    return min(x["stall_share"] for x in result["loader"] if x["workers"] > 0)


TARGETS = (
    Target("step", ("tiny",), "step / encoder fwd+bwd", lambda r: r["ratio"][STEP], True, 1.25),
    Target("step", ("base",), "step / encoder fwd+bwd", lambda r: r["ratio"][STEP], True, 1.10),
    Target("predict", None, "e2e sentences/s / encoder's", lambda r: r["ratio"][E2E], False, 0.85),
    # "must not stall the step", read as: with workers, waits are at most 5 % of the time
    Target("data", None, "stall share with DataLoader workers", _worker_stall, True, 0.05),
)


def targets_for(bench: str, size: str) -> list[Target]:
    return [t for t in TARGETS if t.bench == bench and (t.sizes is None or size in t.sizes)]


def missed(bench: str, size: str, result: dict) -> bool:
    return any(not t.met(result) for t in targets_for(bench, size))


def check_targets(results: dict[str, dict[str, dict]]) -> list[dict]:
    return [
        {
            "bench": bench,
            "size": size,
            "figure": t.figure,
            "value": t.value(result),
            "target": t.text(),
            "met": t.met(result),
        }
        for bench, by_size in results.items()
        for size, result in by_size.items()
        for t in targets_for(bench, size)
    ]


def profile_ops(fn: Callable[[], None], device: torch.device, rows: int = 12) -> list[dict]:
    """torch.profiler over one call: the operators with the most self time."""
    activities = [torch.profiler.ProfilerActivity.CPU]
    key = "self_cpu_time_total"
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
        key = "self_device_time_total"
    with torch.profiler.profile(activities=activities) as prof:
        fn()
        sync(device)
    events = prof.key_averages()
    total = sum(getattr(e, key) for e in events)
    top = sorted(events, key=lambda e: getattr(e, key), reverse=True)[:rows]
    return [
        {
            "name": e.key,
            "self_ms": getattr(e, key) / 1000,
            "share": getattr(e, key) / total,
            "calls": e.count,
        }
        for e in top
    ]


def profile_calls(fn: Callable[[], None], rows: int = 12) -> list[dict]:
    """cProfile over one call: the Python functions with the most self time."""
    profiler = cProfile.Profile()
    profiler.runcall(fn)
    stats = pstats.Stats(profiler)
    top = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:rows]
    return [
        {
            "name": f"{Path(file).name}:{line}({func})",
            "self_ms": 1000 * tt,
            "share": tt / stats.total_tt,
            "calls": nc,
            "cumulative_ms": 1000 * ct,
        }
        for (file, line, func), (_, nc, tt, ct, _) in top
    ]


# ---------------------------------------------------------------- the whole run


def run_benchmarks(
    plan: Plan,
    data: Data,
    sizes: dict[str, dict],
    device: torch.device,
    bf16: bool,
    workdir: Path,
    *,
    name: str,
    only: Sequence[str] = (),
    memory_runner: Callable[[dict], dict] = memory_in_subprocess,
) -> dict:
    """Every planned benchmark at every size; the result as written to JSON."""
    started, machine_info = time.perf_counter(), machine(device)
    if machine_info["load_average_start"][0] > machine_info["cores_usable"] - 0.5:
        print(
            f"  busy machine? load average {machine_info['load_average_start'][0]:.1f} at the "
            "start (other jobs, or a run that just ended): expect noisy figures",
            file=sys.stderr,
        )
    recipe = load_config(RECIPE)
    results: dict[str, dict[str, dict]] = {}
    seconds: dict[str, float] = {}  # per benchmark and size, to plan runs
    for size_name, size in sizes.items():
        run = Run(size_name, size, data, plan, recipe, device, bf16, workdir, memory_runner)
        for bench, bench_sizes in plan.benches.items():
            if size_name in bench_sizes and (not only or bench in only):
                print(f"  {bench} / {size_name} ...", file=sys.stderr, flush=True)
                start = time.perf_counter()
                results.setdefault(bench, {})[size_name] = BENCHES[bench](run)
                seconds[f"{bench} / {size_name}"] = time.perf_counter() - start
    machine_info["load_average_end"] = os.getloadavg()
    return {
        "name": name,
        "machine": machine_info,
        "data": data_info(data),
        "settings": settings(plan, recipe, sizes, device, bf16),
        "results": results,
        "targets": check_targets(results),
        "wall_seconds": time.perf_counter() - started,
        "bench_seconds": seconds,
    }


def machine(device: torch.device) -> dict:
    cpu = platform.processor()
    if Path("/proc/cpuinfo").exists():
        names = [
            ln
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ]
        cpu = names[0].split(":", 1)[1].strip() if names else cpu
    affinity = getattr(os, "sched_getaffinity", None)
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "cores_usable": len(affinity(0)) if affinity else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        **git_state(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "load_average_start": os.getloadavg(),
    }


def git_state() -> dict:
    """The commit, and how many files differ from it (the bench may run on a dirty tree)."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout if done.returncode == 0 else None

    status = git("status", "--porcelain")
    return {
        "git_commit": (git("rev-parse", "HEAD") or "").strip() or None,
        "git_changed_files": None if status is None else len(status.splitlines()),
    }


def data_info(data: Data) -> dict:
    return {
        "source": data.source,
        "fallback": data.shared is None,
        "train_texts": len(data.train),
        "dev_texts": len(data.dev),
        "labels": len(data.schema),
        "event_types": len(data.schema.event_types),
        "gold_spans_per_dev_text": data.spans_per_text,
    }


def settings(plan: Plan, recipe: Config, sizes: dict, device: torch.device, bf16: bool) -> dict:
    t = recipe.train
    return {
        "batch_size": BATCH,
        "max_length": recipe.data.max_length,
        "window_overlap": recipe.data.window_overlap,
        "device": str(device),
        "bf16": bf16,
        "optimizer": f"{t.optimizer} (lr {t.lr:g}, {RECIPE.relative_to(ROOT)})",
        "max_grad_norm": t.max_grad_norm,
        "sizes": sizes,
        "plan": asdict(plan),
    }


def write_result(result: dict, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{result['name']}.json"
    path.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


# ---------------------------------------------------------------- tables


def fmt(x: float) -> str:
    """Three significant figures, no exponent."""
    if x == 0 or not math.isfinite(x):
        return str(x)
    return f"{x:,.{max(0, 2 - math.floor(math.log10(abs(x))))}f}"


def row(figure: str, measured: str, reference: str = NONE, ratio: float | None = None) -> list:
    return [figure, measured, reference, NONE if ratio is None else fmt(ratio)]


def verdict(bench: str, size: str, result: dict) -> str:
    found = targets_for(bench, size)
    return "; ".join(f"{t.text()} {'met' if t.met(result) else 'MISSED'}" for t in found)


def step_rows(size: str, r: dict) -> list[list[str]]:
    ref, ms = f"{BARE} {fmt(r['ms'][BARE])} ms", r["ms"]
    rows = [row(f"training step: {v}", f"{fmt(ms[v])} ms", ref, r["ratio"][v]) for v in ms]
    return [[*x, verdict("step", size, r) if x[0].endswith(f": {STEP}") else ""] for x in rows[1:]]


def data_rows(size: str, r: dict) -> list[list[str]]:
    ref, ms = f"step {fmt(r['ms'][STEP])} ms", r["ms"]
    rows = [
        [*row(f"data path: {v} per batch", f"{fmt(ms[v])} ms", ref, r["ratio"][v]), ""]
        for v in (DATA, COLLATE)
    ]
    rows.append(
        [
            *row(
                "stall share: train() (collate in its loop)", f"{r['train_loop_stall_share']:.1%}"
            ),
            "",
        ]
    )
    for x in r["loader"]:
        figure = f"stall share: on the fly, DataLoader workers={x['workers']}"
        rows.append(
            [
                *row(figure, f"{x['stall_share']:.1%}"),
                verdict("data", size, r) if x["workers"] else "",
            ]
        )
    return rows


def predict_rows(size: str, r: dict) -> list[list[str]]:
    rate = r["sentences_per_s"]
    ref = f"{ENCODER_FWD} {fmt(rate[ENCODER_FWD])} sentences/s"
    measured = f"{fmt(rate[E2E])} sentences/s"
    return [
        [
            *row("prediction e2e: predict_file", measured, ref, r["ratio"][E2E]),
            verdict("predict", size, r),
        ]
    ]


def decode_rows(size: str, r: dict) -> list[list[str]]:
    ref = f"{r['reference']} {fmt(r['encoder_ms_per_sentence'])} ms"
    typical, worst, cap = r["trained_like"], r["untrained"], r["bound"]
    bound = f"≤ {cap['max_candidates']} spans, ≤ {cap['max_events_per_type']} cliques a type"
    rows = [
        row(
            "decoding, trained-like: median a sentence",
            f"{fmt(typical['median_ms'])} ms",
            ref,
            r["ratio"]["trained-like median"],
        ),
        row("decoding, trained-like: p99 a sentence", f"{fmt(typical['p99_ms'])} ms"),
        row(
            f"decoding, untrained: worst sentence ({bound})",
            f"{fmt(worst['max_ms'])} ms",
            ref,
            r["ratio"]["untrained worst"],
        ),
    ]
    return [[*x, ""] for x in rows]


def memory_rows(size: str, r: dict) -> list[list[str]]:
    peak, shape = r["peak_rss_mb"], f"B={r['batch_size']}, L={r['padded_length']}, H={r['labels']}"
    rows = [
        row(
            f"peak RSS: {v} ({shape})",
            f"{fmt(peak[v])} MB",
            f"{BARE} {fmt(peak[BARE])} MB",
            r["ratio"][v],
        )
        for v in (STEP, DENSE)
    ]
    labels = r["label_bytes"]
    dense = f"dense float32 {fmt(labels['dense float32'] / MB)} MB"
    rows.append(
        row(
            "label tensors of that batch",
            f"{fmt(labels['sparse'] / 1024)} KiB",
            dense,
            r["label_ratio"],
        )
    )
    return [[*x, ""] for x in rows]


def scaling_rows(size: str, r: dict) -> list[list[str]]:
    lengths, labels = sorted(r["by_length"], key=int), sorted(r["by_labels"], key=int)
    span, per_label = f"L={lengths[0]}…{lengths[-1]}", r["fit_labels"]

    def ratios(kind: str) -> str:
        return " → ".join(fmt(r["by_length"][L]["ratio"][kind]) for L in lengths)

    extra = [fmt(per_label[k]["ms_per_label"]) for k in ("step extra", "predict extra")]
    growth = ", ".join(
        f"{k} {NONE if v is None else f'{v:.2f}'}" for k, v in r["exponents"].items()
    )
    rows = [
        row(f"step / encoder fwd+bwd, {span}", ratios("step")),
        row(f"{PREDICT_FWD} / encoder forward, {span}", ratios("predict")),
        row(f"exponent of L in ms, {span}", growth),
        row(f"ms per label (H={labels[0]}…{labels[-1]}): step, {PREDICT_FWD}", ", ".join(extra)),
    ]
    return [[*x, ""] for x in rows]


def pointer_rows(size: str, r: dict) -> list[list[str]]:
    params, step, fwd = r["head_params"], r["step"]["ms"], r["predict_forward"]["ms"]
    rows = [
        row(
            "original GP: head parameters",
            f"{fmt(params[ORIGINAL] / 1e6)} M",
            f"EGP {fmt(params[EFFICIENT] / 1e6)} M",
            r["ratio"]["head params"],
        ),
        row(
            "original GP: training step",
            f"{fmt(step[ORIGINAL])} ms",
            f"EGP {fmt(step[EFFICIENT])} ms",
            r["ratio"]["step"],
        ),
        row(
            "original GP: model forward",
            f"{fmt(fwd[ORIGINAL])} ms",
            f"EGP {fmt(fwd[EFFICIENT])} ms",
            r["ratio"]["predict forward"],
        ),
    ]
    return [[*x, ""] for x in rows]


ROWS: dict[str, Callable[[str, dict], list[list[str]]]] = {
    "step": step_rows,
    "data": data_rows,
    "predict": predict_rows,
    "decode": decode_rows,
    "memory": memory_rows,
    "scaling": scaling_rows,
    "pointer": pointer_rows,
}
HEADER = ["figure", "size", "measured", "reference", "ratio", "target"]


def markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


def result_table(result: dict) -> str:
    rows = [
        [figure, size, *rest]
        for bench, by_size in result["results"].items()
        for size, r in by_size.items()
        for figure, *rest in ROWS[bench](size, r)
    ]
    return markdown(HEADER, rows)


def render(result: dict) -> str:
    """One result as markdown: machine, data, the table, verdicts, details, profiles."""
    m, d = result["machine"], result["data"]
    where = (
        f"{m['date']}, {m['cpu']} ({m['cores_usable']} cores, {m['torch_threads']} torch "
        f"threads), device {m['device']}, bf16 {result['settings']['bf16']}, torch {m['torch']}, "
        f"transformers {m['transformers']}, commit {(m['git_commit'] or '?')[:10]} + "
        f"{m['git_changed_files']} changed files, load average "
        f"{m['load_average_start'][0]:.1f} → {m['load_average_end'][0]:.1f}, "
        f"{result['wall_seconds'] / 60:.1f} minutes. Data: {d['source']}, {d['labels']} labels."
    )
    heading = f"### `benchmarks/{result['name']}.json`"
    return "\n\n".join([heading, where, result_table(result), verdicts(result), *details(result)])


def verdicts(result: dict) -> str:
    lines = [
        f"- {t['bench']}, {t['size']}: {t['figure']} = {fmt(t['value'])}, target {t['target']}: "
        f"**{'met' if t['met'] else 'missed'}**"
        for t in result["targets"]
    ]
    return "Targets:\n\n" + "\n".join(lines)


def details(result: dict) -> list[str]:
    """Where prediction time goes, how its scores were made, scaling points, profiles."""
    found = result["results"]
    out = [predict_detail(size, r) for size, r in found.get("predict", {}).items()]
    out += [scaling_table(size, r) for size, r in found.get("scaling", {}).items()]
    for bench, by_size in found.items():
        for size, r in by_size.items():
            if "profile" in r:
                rows = [
                    [p["name"], fmt(p["self_ms"]), f"{p['share']:.0%}", str(p["calls"])]
                    for p in r["profile"]
                ]
                out.append(
                    markdown([f"profile: {bench}, {size}", "self ms", "share", "calls"], rows)
                )
    return out


def predict_detail(size: str, r: dict) -> str:
    shares = ", ".join(f"{k} {v:.0%}" for k, v in r["parts"]["share"].items())
    if r["scores"] == "trained":
        scores = f"trained model {r['model']}"
    else:
        scores = f"{r['scores']} ({fmt(r['argument_shift'])})"
    events = fmt(r["events_per_text"])
    return f"Prediction, {size}: scores of a {scores}, {events} events a text. Time: {shares}."


def scaling_table(size: str, r: dict) -> str:
    variants = (BARE, STEP, ENCODER_FWD, PREDICT_FWD)
    points = [(f"L={L}, H={r['labels']}", p) for L, p in r["by_length"].items()]
    points += [(f"L={LABELS_AT}, H={H}", p) for H, p in r["by_labels"].items()]
    rows = [[name, *(fmt(p["ms"][v]) for v in variants)] for name, p in points]
    batches = (r["step_batch"], r["step_batch"], r["predict_batch"], r["predict_batch"])
    header = [
        f"scaling, {size}",
        *(f"{v} ms (B={b})" for v, b in zip(variants, batches, strict=True)),
    ]
    return markdown(header, rows)


def write_report(results: Sequence[dict], doc: Path) -> None:
    """Replace the block between BEGIN and END in `doc` with the rendered results."""
    text = doc.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{doc}: no {BEGIN} ... {END} block to rewrite")
    head, rest = text.split(BEGIN, 1)
    body = "\n\n".join(render(r) for r in results)
    note = "<!-- generated by `python scripts/bench.py --report`: do not edit -->"
    doc.write_text(
        f"{head}{BEGIN}\n{note}\n\n{body}\n\n{END}{rest.split(END, 1)[1]}", encoding="utf-8"
    )


def load_results(folder: Path) -> list[dict]:
    """The results files in `folder` made by this script (with "results"), by name."""
    found = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))]
    return [r for r in found if "results" in r]


# ---------------------------------------------------------------- command line


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the small plan (< 5 min on 2 cores)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast of the encoder")
    ap.add_argument("--sizes", default="tiny,base", help="comma-separated: tiny, base")
    ap.add_argument("--only", default="", help=f"comma-separated subset of {', '.join(BENCHES)}")
    ap.add_argument("--name", help="result name (default: quick/full, +device, +bf16)")
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    ap.add_argument("--report", action="store_true", help=f"only rewrite {DOC.relative_to(ROOT)}")
    ap.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_child:
        print(json.dumps(measure_memory(json.loads(args.memory_child))))
        return
    if args.report:
        write_report(load_results(ROOT / "benchmarks"), DOC)
        print(f"rewrote {DOC.relative_to(ROOT)}")
        return
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device here")
    plan = QUICK if args.quick else FULL
    name = args.name or "-".join(
        [
            ("quick" if args.quick else "full"),
            *([device.type] if device.type != "cpu" else []),
            *(["bf16"] if args.bf16 else []),
        ]
    )
    if device.type == "cuda":  # a GPU scales both sizes in seconds
        plan = replace(plan, benches={**plan.benches, "scaling": EVERY})
    data = load_data(args.shared, plan.train_texts)
    print(f"data: {data.source}", file=sys.stderr)
    tiny = load_config(RECIPE).model.encoder_overrides
    known = {"tiny": tiny, "base": BASE}
    sizes = {s: known[s] for s in args.sizes.split(",")}
    only = [b for b in args.only.split(",") if b]
    with tempfile.TemporaryDirectory() as workdir:
        result = run_benchmarks(
            plan, data, sizes, device, args.bf16, Path(workdir), name=name, only=only
        )
    path = write_result(result, ROOT / "benchmarks")
    print(render(result))
    print(f"\nwrote {path.relative_to(ROOT)}; --report puts it in {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
