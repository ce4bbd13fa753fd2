"""Speed and memory of gplinker against its references, each measured in one run (issue 5).

    python scripts/bench.py --quick               # < 5 minutes on 2 cores -> benchmarks/quick.json
    python scripts/bench.py                       # the full run -> benchmarks/full.json
    python scripts/bench.py --device cuda --bf16  # on a GPU -> benchmarks/full-cuda-bf16.json
    python scripts/bench.py --report              # benchmarks/*.json -> docs/performance.md

Every figure is a ratio to a reference measured in the same run on the same batches: the
variants run interleaved per batch (A, B, A, B, ...) and are reduced by medians, so drift
on a busy machine cancels. The models are random-init BERTs of two sizes, `tiny` (the
encoder of configs/duee-tiny.yaml) and `base` (bert-base-chinese's shape), at batch 32 and
max_length 128. The training step and prediction run for every task of --tasks: events on
DuEE, entities on CLUENER, relations on DuIE, from ../shared/data; the other five
benchmarks (data path, decoding, memory, scaling, EGP vs the original GlobalPointer) on
DuEE. Without a data set in ../shared, the task's embedded sample (data/sample,
data/sample-entity, data/sample-relation; the JSON and the table say so). The JSON also
records the machine and the commit. The benchmarks, one module each in scripts/benches/,
are described in docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import torch
from benches.machine import write_result
from benches.memory import measure_memory
from benches.plan import BASE, EVERY, FULL, QUICK, RECIPE, ROOT, TASKS
from benches.report import DOC, load_results, render, write_report
from benches.sources import load_data
from benches.suite import BENCHES, run_benchmarks

from gplinker.config import load_config


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the small plan (< 5 min on 2 cores)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast of the encoder")
    ap.add_argument("--sizes", default="tiny,base", help="comma-separated: tiny, base")
    ap.add_argument("--only", default="", help=f"comma-separated subset of {', '.join(BENCHES)}")
    ap.add_argument(
        "--tasks",
        default=",".join(TASKS),
        help="comma-separated tasks whose training step and prediction run (the other "
        "benchmarks run on events)",
    )
    ap.add_argument("--name", help="result name (default: quick/full, +device, +bf16)")
    ap.add_argument(
        "--shared", type=Path, default=ROOT.parent / "shared", help="the data sets' folder"
    )
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
    tasks = tuple(t for t in args.tasks.split(",") if t)
    if unknown := set(tasks) - set(TASKS):
        raise SystemExit(
            f"--tasks: unknown {', '.join(sorted(unknown))}; known: {', '.join(TASKS)}"
        )
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
    data = {
        task: load_data(task, args.shared, plan.train_texts)
        for task in TASKS
        if task == "event" or task in tasks  # the event-only benchmarks read DuEE
    }
    for task, d in data.items():
        print(f"data, {task}: {d.source}", file=sys.stderr)
    known = {"tiny": load_config(RECIPE).model.encoder_overrides, "base": BASE}
    sizes = {s: known[s] for s in args.sizes.split(",")}
    only = [b for b in args.only.split(",") if b]
    with tempfile.TemporaryDirectory() as workdir:
        result = run_benchmarks(
            plan, data, sizes, device, args.bf16, Path(workdir), name=name, only=only, tasks=tasks
        )
    path = write_result(result, ROOT / "benchmarks")
    print(render(result))
    print(f"\nwrote {path.relative_to(ROOT)}; --report puts it in {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
