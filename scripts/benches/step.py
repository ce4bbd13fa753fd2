"""1. Training step: a step as train() takes it vs the bare encoder's forward+backward."""

from __future__ import annotations

import statistics
from functools import partial

from benches.models import Run, build_model, step_variants
from benches.plan import BARE, DENSE, NO_OPT, STEP
from benches.targets import missed
from benches.timing import interleaved, profile_ops


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
    if missed("step", run.size_name, result, run.data.task.name):
        step = partial(variants[STEP], run.batches[1])
        result["profile"] = profile_ops(step, run.device)
    return result
