"""7. The original GlobalPointer vs Efficient GlobalPointer: head parameters, training
step and prediction forward, on the same batches (events)."""

from __future__ import annotations

from benches.models import Run, build_model, forward_variants, step_variants
from benches.plan import EFFICIENT, MODEL_FWD, ORIGINAL, STEP
from benches.timing import interleaved
from gplinker.modeling.model import GPLinkerModel


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
    return sum(p.numel() for h in model.heads for p in getattr(model, h.name).parameters())
