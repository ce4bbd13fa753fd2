"""6. Scaling: step and prediction-forward times on synthetic texts of exactly L tokens,
for each length L and each label count H, each against the bare encoder's (events)."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import replace
from itertools import combinations

import numpy as np
import torch

from benches.models import (
    Run,
    autocast,
    build_model,
    forward_variants,
    lower_span_scores,
    shift_span_scores,
    step_variants,
)
from benches.plan import BARE, BATCH, ENCODER_FWD, PREDICT_FWD, STEP
from benches.timing import interleaved
from gplinker.data.alignment import Encoded
from gplinker.data.collate import Batch, collate
from gplinker.data.labels import SparseLabels
from gplinker.decoding import factored_candidates
from gplinker.modeling.global_pointer import PointerSpec
from gplinker.modeling.model import GPLinkerModel

LABELS_AT = 128  # the length at which the label count varies


def bench_scaling(run: Run) -> dict:
    """Step and prediction-forward times on synthetic texts of exactly L tokens, for each
    max_length L and each label count H, each against the bare encoder's; fits of how
    the heads' extra time grows (the L² term) and the cost per label."""
    plan, n_labels = run.plan, len(run.data.schema)
    model = build_model(run.data, run.size).to(run.device)
    by_length = {L: scaling_point(run, model, L) for L in plan.scaling_lengths}
    by_labels, (span, *links) = {}, run.data.heads
    for H in plan.scaling_labels:
        if n_labels == H and LABELS_AT in by_length:  # measured above
            by_labels[H] = by_length[LABELS_AT]
            continue
        heads = [replace(span, num_labels=H), *links]
        labelled = build_model(run.data, run.size, heads=heads).to(run.device)
        by_labels[H] = scaling_point(run, labelled, LABELS_AT)
    return {
        "step_batch": BATCH,
        "predict_batch": plan.scaling_predict_batch,
        "labels": n_labels,
        "by_length": by_length,
        "by_labels": by_labels,
        "exponents": exponents(by_length),
        "fit_labels": {k: per_unit(by_labels, k) for k in ("step extra", "predict extra")},
    }


def scaling_point(run: Run, model: GPLinkerModel, length: int) -> dict:
    """Step vs encoder fwd+bwd, and prediction's forward + candidate scan (argument
    scores lowered as in bench_predict, then restored) vs the encoder's forward."""
    vocab, device, heads = len(run.data.tokenizer), run.device, model.heads
    batch = synthetic_batch(BATCH, length, heads, vocab, seed=length).to(device)
    small = synthetic_batch(run.plan.scaling_predict_batch, length, heads, vocab, seed=length)
    small, reps = small.to(device), run.plan.scaling_reps + 1
    steps = step_variants(model.train(), run.recipe, device, run.bf16)
    train = interleaved({k: steps[k] for k in (BARE, STEP)}, [batch] * reps, device)
    shift = lower_span_scores(model.eval(), [small], run.data.span_cells_per_text)
    infer = interleaved(predict_variants(model, device, run.bf16), [small] * reps, device)
    shift_span_scores(model, shift)
    ms = {**train.ms(), **infer.ms()}
    ms["step extra"] = ms[STEP] - ms[BARE]
    ms["predict extra"] = ms[PREDICT_FWD] - ms[ENCODER_FWD]
    ratios = {"step": train.ratios(BARE)[STEP], "predict": infer.ratios(ENCODER_FWD)[PREDICT_FWD]}
    return {"ms": ms, "ratio": ratios}


def synthetic_batch(
    n: int, length: int, heads: Sequence[PointerSpec], vocab: int, seed: int
) -> Batch:
    """n texts of exactly `length` tokens (random ids), 4 linked argument spans each."""
    rng = random.Random(seed)
    n_labels = heads[0].num_labels
    items = []
    for _ in range(n):
        ids = [rng.randrange(5, vocab) for _ in range(length)]
        spans = []
        for _ in range(4):
            h = rng.randrange(1, length - 1)
            spans.append((rng.randrange(n_labels), h, min(length - 2, h + rng.randrange(4))))
        pairs = list(combinations(spans, 2))
        links = [sorted({(min(a[k], b[k]), max(a[k], b[k])) for a, b in pairs}) for k in (1, 2)]
        labels = SparseLabels(tuple(spans), tuple(links[0]), tuple(links[1]))
        items.append((Encoded(ids, [(i, i + 1) for i in range(length)]), labels.by_head()))
    return collate(items, {h.name: h.num_labels for h in heads})


def predict_variants(
    model: GPLinkerModel, device: torch.device, bf16: bool
) -> dict[str, Callable[[Batch], None]]:
    """The encoder's forward, and prediction up to decoding: the model's forward as
    predict runs it and the scan for argument cells above 0 (EGP)."""
    forwards = forward_variants(model, device, bf16)
    span = model.heads[0].name

    @torch.inference_mode()
    def predict(batch: Batch) -> None:
        with autocast(device, bf16):
            out = model(batch.input_ids, batch.attention_mask, factored=True)
        factored_candidates(out[span])

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
