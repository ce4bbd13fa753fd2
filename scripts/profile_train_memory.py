"""Where a training run's memory goes (issue 16, part 3): RSS phase by phase.

    python scripts/profile_train_memory.py --config configs/duee-tiny.yaml [overrides] \
        [--allocator tcmalloc|system] [--out benchmarks/train_memory.json --name RUN]

Runs `gplinker.training.train` in this process with each phase of a run wrapped: reading
the data, the tokenizer, the model, encoding the windows, the masked LM, the optimizer and
devices, each epoch's steps, each dev evaluation, each save. A thread samples the process's
RSS every 0.1 s (psutil); every phase reports RSS on entry and exit and its peak. The
figures are the whole process (Python, torch, the allocator's free lists included), which
is what `/usr/bin/time -v` reports as its maximum resident set size. The run goes on the
allocator `gplinker train` would use (tcmalloc where installed, gplinker/allocator.py) or,
with `--allocator system`, on glibc's malloc; `--out` keeps the file's other runs.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
from doc_tables import write_section

from gplinker import allocator, training
from gplinker.config import load_config
from gplinker.modeling import model as modeling

MB = 2**20
ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- train-memory:begin -->", "<!-- train-memory:end -->"
SHOWN = ["encode windows", "masked LM", "epoch steps", "dev evaluation"]  # the table's phases
PHASES = {  # (module, attribute): phase name
    (training, "_read_data"): "read data",
    (training, "build_tokenizer"): "tokenizer",
    (training, "_encode"): "encode windows",
    (training, "_pretrain"): "masked LM",
    (training, "build_optimizer"): "optimizer",
    (training, "_on_devices"): "devices",
    (training, "train_epoch"): "epoch steps",
    (training, "evaluate_dev"): "dev evaluation",
    (training, "end_epoch"): "save epoch",
    (training, "finish"): "finish",
}


class Sampler(threading.Thread):
    """The process's RSS every `every` seconds; `peak_since(t)` is the largest since t."""

    def __init__(self, every: float = 0.1):
        super().__init__(daemon=True)
        self.every, self.process = every, psutil.Process()
        self.samples: list[tuple[float, int]] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            self.samples.append((time.monotonic(), self.process.memory_info().rss))
            time.sleep(self.every)

    def rss(self) -> int:
        return self.process.memory_info().rss

    def peak_since(self, t: float) -> int:
        return max([r for s, r in self.samples if s >= t] + [self.rss()])


def wrap(fn: Callable, name: str, sampler: Sampler, rows: list[dict]) -> Callable:
    @functools.wraps(fn)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        t0, before = time.monotonic(), sampler.rss()
        try:
            return fn(*args, **kwargs)
        finally:
            rows.append(
                {
                    "phase": name,
                    "seconds": round(time.monotonic() - t0, 1),
                    "rss_before_mb": round(before / MB, 1),
                    "rss_after_mb": round(sampler.rss() / MB, 1),
                    "peak_mb": round(sampler.peak_since(t0) / MB, 1),
                }
            )
            print(json.dumps(rows[-1], ensure_ascii=False), file=sys.stderr, flush=True)

    return wrapped


def profile(config_file: str, overrides: list[str]) -> dict:
    sampler, rows = Sampler(), []
    sampler.start()
    start_rss = sampler.rss()
    for (module, attr), name in PHASES.items():
        setattr(module, attr, wrap(getattr(module, attr), name, sampler, rows))
    build = modeling.GPLinkerModel.from_encoder
    modeling.GPLinkerModel.from_encoder = wrap(build, "model", sampler, rows)  # type: ignore[method-assign]
    config = load_config(config_file, overrides)
    t0 = time.monotonic()
    result = training.train(config)
    sampler.stopped.set()
    return {
        "config": config_file,
        "allocator": allocator.active(),
        "overrides": overrides,
        "minutes": round((time.monotonic() - t0) / 60, 2),
        "rss_at_start_mb": round(start_rss / MB, 1),  # the imports: torch, transformers, ...
        "peak_rss_mb": round(max(r for _, r in sampler.samples) / MB, 1),
        "best_epoch": result.best_epoch,
        "best_f1": {k: round(v.f1, 4) for k, v in result.best.items() if "/" not in k},
        "phases": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="the recipe to train (needed unless --report)")
    parser.add_argument("--report", action="store_true", help="only rewrite the docs table")
    parser.add_argument("--allocator", choices=["tcmalloc", "system"], default="tcmalloc")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--name", default="run", help="the run's key in --out's runs")
    parser.add_argument("overrides", nargs="*", help="key=value, as `gplinker train` takes")
    args = parser.parse_args()
    if args.report:
        write_doc(json.loads(args.out.read_text(encoding="utf-8"))["runs"])
        return
    if args.allocator == "tcmalloc":
        allocator.restart_with_tcmalloc(heavy=True)
    result = profile(args.config, args.overrides)
    print(json.dumps(result, indent=1, ensure_ascii=False))
    if args.out:
        kept = json.loads(args.out.read_text(encoding="utf-8")) if args.out.exists() else {}
        runs = {**kept.get("runs", {}), args.name: result}
        text = json.dumps({"runs": runs}, indent=1, ensure_ascii=False)
        args.out.write_text(text + "\n", encoding="utf-8")
        write_doc(runs)


def write_doc(runs: dict[str, dict]) -> None:
    table = report(runs)
    write_section(table, BEGIN, END, "Training memory (issue 16)")


def shown_overrides(run: dict) -> str:
    kept = [o for o in run["overrides"] if not o.startswith("output_dir=")]
    return " ".join(f"`{o}`" for o in kept) or "none"


def report(runs: dict[str, dict]) -> str:
    """One row a run: peak RSS, and each shown phase's largest RSS (all its epochs')."""
    lines = [
        BEGIN,
        "<!-- generated by `python scripts/profile_train_memory.py --out ...`: do not edit -->",
        "| run | allocator | overrides | minutes | imports | "
        + " | ".join(f"{p} peak" for p in SHOWN)
        + " | **whole run peak** | best-epoch F1s |",
        "|---|---|---|---:|---:|" + "---:|" * len(SHOWN) + "---:|---|",
    ]
    for name, run in runs.items():
        peaks = [
            max((r["peak_mb"] for r in run["phases"] if r["phase"] == p), default=float("nan"))
            for p in SHOWN
        ]
        f1 = ", ".join(f"{k} {v:.3f}" for k, v in run.get("best_f1", {}).items()) or "—"
        lines.append(
            f"| {name} | {run['allocator']} | {shown_overrides(run)} | "
            f"{run['minutes']} | {run['rss_at_start_mb']:,.0f} MB | "
            + " | ".join(f"{p:,.0f} MB" for p in peaks)
            + f" | **{run['peak_rss_mb']:,.0f} MB** | {f1} |"
        )
    return "\n".join([*lines, END])


if __name__ == "__main__":
    main()
