"""What a run measures: model sizes, the quick and full plans, the names of the figures."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "configs" / "duee-tiny.yaml"  # optimizer, clipping, max_length, tiny encoder
BATCH = 32
BASE = {
    "num_hidden_layers": 12,
    "hidden_size": 768,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
}
MB = 2**20
EVERY = ("tiny", "base")
TASKS = ("event", "entity", "relation")
TASK_AXIS = ("step", "predict")  # the benchmarks run for every task; the others: events only

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
