"""4. Decoding per sentence, with trained-like scores and with an untrained model's (the
worst case, bounded by the caps), vs the encoder's forward per sentence (events)."""

from __future__ import annotations

import inspect
import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import fields
from functools import partial

import torch
from torch import Tensor

from benches.models import Run, build_model, forward_variants
from benches.plan import ENCODER_FWD
from benches.sources import length_batches, windows_of
from benches.timing import count_warnings, measure
from gplinker.decoding import cells_above, decode_candidates
from gplinker.modeling.global_pointer import Factored
from gplinker.predict import GPLinker


def bench_decode(run: Run) -> dict:
    """The task's decode per sentence with trained-like scores (median, p99) and, for the
    longest dev texts, with an untrained model's (the worst case, bounded by the caps);
    the reference is the encoder's forward per sentence, timed in the same loop."""
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
    """Per sentence, the task's decode as prediction calls it, on that sentence's slice of
    the batch's scores: seconds; the encoder's forward seconds (its batch's, shared out);
    span cells above 0; records; whether a cap bit."""
    model, device, task = predictor.model, predictor.device, predictor.task
    span = model.heads[0].name
    encoder = forward_variants(model, device, bf16=False)[ENCODER_FWD]
    out: dict[str, list] = {k: [] for k in ("decode_s", "encoder_s", "cells", "events", "capped")}
    with count_warnings("gplinker.decoding") as warnings:
        for batch, members in length_batches(predictor, windows_of(predictor, texts)):
            encoder_s, _ = measure(partial(encoder, batch), device)
            with torch.inference_mode():
                scores = model(batch.input_ids, batch.attention_mask, factored=True)
            for b, (enc, text) in enumerate(members):
                mine = {name: one_sentence(x, b) for name, x in scores.items()}
                before, start = len(warnings), time.perf_counter()
                [found] = task.decode(
                    mine,
                    [enc.offsets],
                    [text],
                    predictor.schema,
                    max_candidates=predictor.max_candidates,
                )
                out["decode_s"].append(time.perf_counter() - start)
                out["events"].append(len(task.records(found)))
                out["encoder_s"].append(encoder_s / len(members))
                out["cells"].append(sum(len(cand) for cand, _ in cells_above(mine[span])))
                out["capped"].append(len(warnings) > before)
    return out


def one_sentence(scores: Tensor | Factored, b: int) -> Tensor | Factored:
    """Sentence b of a batch's scores, still a batch (of one)."""
    if isinstance(scores, Factored):
        return Factored(**{f.name: getattr(scores, f.name)[b : b + 1] for f in fields(scores)})
    return scores[b : b + 1]


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
