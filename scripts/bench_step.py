"""Training-step cost on real batches: bare encoder vs full GPLinker step, dense vs factored loss.

    python scripts/bench_step.py [--config configs/duee-tiny.yaml] [--batches 20]

Prints a table of milliseconds per step and ratios to the bare encoder's forward+backward,
measured in one run on the same length-bucketed batches of data.train, and writes
benchmarks/step.json. Ratios are what to compare across machines; absolute times are noisy.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import time
from pathlib import Path

import torch

from gplinker.config import load_config
from gplinker.data.collate import bucketed_batches, collate
from gplinker.data.reader import read_examples
from gplinker.data.tokenizer import load_tokenizer
from gplinker.modeling.model import GPLinkerModel
from gplinker.schema import Schema
from gplinker.training import build_optimizer, compute_loss, prepare_examples


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=Path("configs/duee-tiny.yaml"))
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/step.json"))
    args = ap.parse_args()
    cfg = load_config(args.config)
    torch.manual_seed(0)
    schema = Schema.from_file(cfg.data.schema_file)
    examples = list(read_examples(cfg.data.train, schema))
    tok = load_tokenizer(cfg.model.tokenizer or cfg.model.encoder)
    _, items, _ = prepare_examples(examples, tok, schema, cfg.data.max_length)
    model = GPLinkerModel.from_encoder(cfg.model, len(schema), len(tok))
    opt = build_optimizer(model, cfg)
    lengths = [len(enc) for enc, _ in items]
    order = bucketed_batches(lengths, cfg.train.batch_size, cfg.train.bucket_size, random.Random(0))
    batches = [
        collate([items[i] for i in idx], len(schema))
        for idx, _ in zip(order, range(args.batches + 2), strict=False)
    ]

    def bare(b) -> None:
        hidden = model.encoder(input_ids=b.input_ids, attention_mask=b.attention_mask)[0]
        hidden.float().square().mean().backward()

    def full(factored: bool):
        def step(b) -> None:
            compute_loss(model(b.input_ids, b.attention_mask, factored=factored), b).backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

        return step

    cases = {"bare encoder fwd+bwd": bare, "step, factored loss": full(True)}
    cases["step, dense [B,H,L,L] loss"] = full(False)
    ms = {}
    for name, fn in cases.items():
        for b in batches[:2]:  # warm-up
            fn(b)
        model.zero_grad(set_to_none=True)
        start = time.perf_counter()
        for b in batches[2:]:
            fn(b)
            model.zero_grad(set_to_none=True)
        ms[name] = 1000 * (time.perf_counter() - start) / args.batches
    base = ms["bare encoder fwd+bwd"]
    mean_len = sum(b.input_ids.shape[1] for b in batches[2:]) / args.batches
    print(f"{args.config}: batch {cfg.train.batch_size}, mean padded length {mean_len:.1f}")
    print(f"{'':28} {'ms/step':>8} {'x bare':>7}")
    for name, v in ms.items():
        print(f"{name:28} {v:8.1f} {v / base:7.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "config": str(args.config),
        "batches": args.batches,
        "batch_size": cfg.train.batch_size,
        "mean_padded_length": mean_len,
        "ms_per_step": ms,
        "ratio_to_bare_encoder": {k: v / base for k, v in ms.items()},
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        },
    }
    args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
