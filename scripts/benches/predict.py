"""3. Prediction: predict_file end to end vs the bare encoder's forward over the same
batches, in sentences per second, and where its time goes (every task)."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import Any
from unittest.mock import patch

import torch

import gplinker.decoding
import gplinker.predict
from benches.models import Run, autocast, forward_variants
from benches.plan import BATCH, E2E, ENCODER_FWD
from benches.sources import length_batches, windows_of
from benches.targets import missed
from benches.timing import count_warnings, interleaved, measure, profile_calls, sync
from gplinker.data.reader import write_jsonl
from gplinker.modeling.global_pointer import EfficientGlobalPointer
from gplinker.predict import GPLinker, predict_file


def bench_predict(run: Run) -> dict:
    """predict_file end to end (JSONL in, records out) vs the bare encoder's forward over
    the same length-sorted batches, in sentences per second; then where its time goes."""
    predictor, scores = run.predictor
    texts, task = run.dev_texts, run.data.task
    source = run.workdir / f"input-{task.name}.jsonl"
    target = run.workdir / f"{task.name}.jsonl"
    write_jsonl(source, ({"id": f"t{i}", "text": t} for i, t in enumerate(texts)))
    batches = [b for b, _ in length_batches(predictor, windows_of(predictor, texts))]
    encoder = forward_variants(predictor.model, run.device, run.bf16)[ENCODER_FWD]
    e2e = partial(predict_jsonl, predictor, source, target, run.bf16)
    variants = {E2E: lambda _: e2e(), ENCODER_FWD: lambda _: [encoder(b) for b in batches]}
    with count_warnings("gplinker.decoding") as warnings:
        timings = interleaved(variants, range(run.plan.predict_reps + 1), run.device)
        parts = predict_parts(predictor, e2e)
    rows = [json.loads(r) for r in target.read_text(encoding="utf-8").splitlines()]
    records = run.data.origin.records
    result = {
        **scores,
        "texts": len(texts),
        "windows": sum(len(b.input_ids) for b in batches),
        "sentences_per_s": {k: len(texts) / (v / 1000) for k, v in timings.ms().items()},
        **timings.summary(ENCODER_FWD),
        "records": records,
        f"{records}_per_text": sum(len(r[task.record_key]) for r in rows) / len(texts),
        "parts": parts,
        "decoder_warnings": len(warnings),  # caps that bit, over every e2e run
    }
    result["ratio"] = {E2E: 1 / result["ratio"][E2E]}  # throughput: e2e / encoder
    if missed("predict", run.size_name, result, task.name):
        result["profile"] = profile_calls(e2e)
    return result


def predict_jsonl(predictor: GPLinker, source: Path, target: Path, bf16: bool) -> None:
    with autocast(predictor.device, bf16):
        predict_file(predictor, source, target, batch_size=BATCH, progress=False)


def predict_parts(predictor: GPLinker, e2e: Callable[[], None]) -> dict:
    """One predict_file run with the package's own steps clocked where it calls them;
    "read, write, rest" is what is left (JSON in and out, rows, moving tensors)."""
    model, task, spent = predictor.model, predictor.task, Counter()
    heads = [
        ("heads", p, "factored" if isinstance(p, EfficientGlobalPointer) else "forward")
        for p in (getattr(model, h.name) for h in model.heads)
    ]
    owners = [
        ("tokenize", gplinker.predict, "encode_windows"),
        ("collate", gplinker.predict, "collate"),
        ("encoder", model.encoder, "forward"),
        *heads,
        ("decode", task, "decode"),
        ("candidate scan", gplinker.decoding, "factored_candidates"),  # inside decode
        ("merge windows", task, "merge"),
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
