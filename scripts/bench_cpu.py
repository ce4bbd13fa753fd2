"""CPU inference options against today's fp32 torch path, measured in one run (issue 16,
parts 1-2): torch int8 (`--int8`), ONNX Runtime fp32 and int8 (`--backend onnx [--int8]`).

    python scripts/bench_cpu.py     # -> benchmarks/cpu_inference.json, docs/performance.md

Speed: sentences/s of `GPLinker.extract` end to end (tokenizer, encoder, heads, decoder)
over the texts of data/sample/dev.json (150), batch 32, the four variants interleaved three
times (medians), on the trained event sample model (`tiny`) and on a random-init model of
bert-base-chinese's shape (`base`, its span scores lowered as in bench_serve.py). F1: every
metric of the task on the dev file for each variant, for each trained sample model present
(runs/sample/best, runs/sample-entity/best, runs/sample-relation/best: quickstart.sh
trains them). Each model is exported to ONNX first (`gplinker.export`).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from gplinker.config import load_config
from gplinker.export import export_onnx
from gplinker.predict import GPLinker, predict_file

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from bench_serve import base_model  # noqa: E402
from doc_tables import write_section  # noqa: E402

BEGIN, END = "<!-- cpu-inference:begin -->", "<!-- cpu-inference:end -->"
VARIANTS = {  # name -> from_pretrained's options
    "torch fp32": {},
    "torch int8": {"int8": True},
    "onnx fp32": {"backend": "onnx"},
    "onnx int8": {"backend": "onnx", "int8": True},
}
DUEE = load_config(ROOT / "configs" / "duee-tiny.yaml")
QUALITY = {  # label -> (trained model, its gold dev file); each one present is scored
    "event sample": (ROOT / "runs/sample/best", ROOT / "data/sample/dev.json"),
    "entity sample": (ROOT / "runs/sample-entity/best", ROOT / "data/sample-entity/dev.json"),
    "relation sample": (ROOT / "runs/sample-relation/best", ROOT / "data/sample-relation/dev.json"),
    "DuEE dev (duee-tiny)": (ROOT / DUEE.output_dir / "best", ROOT / str(DUEE.data.dev)),
}


def exported(folder: Path, into: Path) -> Path:
    export_onnx(GPLinker.from_pretrained(folder, device="cpu"), folder, into)
    return into


def speed(folder: Path, texts: list[str], repeats: int = 3) -> dict[str, float]:
    variants = {
        name: GPLinker.from_pretrained(folder, device="cpu", **options)
        for name, options in VARIANTS.items()
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    for linker in variants.values():
        linker.extract(texts[:32])  # warm
    for _ in range(repeats):  # interleaved: the machine's drift hits all alike
        for name, linker in variants.items():
            t0 = time.perf_counter()
            linker.extract(texts, batch_size=32)
            times[name].append(time.perf_counter() - t0)
    return {name: round(len(texts) / statistics.median(t), 1) for name, t in times.items()}


def f1(folder: Path, gold: Path, options: dict) -> dict[str, float]:
    linker = GPLinker.from_pretrained(folder, device="cpu", **options)
    task = linker.task
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "pred.jsonl"
        predict_file(linker, gold, out, progress=False)
        scores = task.evaluate(task.read_scored(out, linker.schema), task.read_scored(gold, None))
    return {name: round(prf.f1, 4) for name, prf in scores.items() if "/" not in name}


def main() -> None:
    lines = (ROOT / "data" / "sample" / "dev.json").read_text(encoding="utf-8").splitlines()
    texts = [json.loads(line)["text"] for line in lines[:512]]
    rows, quality = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        sample = ROOT / "runs" / "sample" / "best"
        folders = {
            "tiny": exported(sample, Path(tmp) / "tiny"),
            "base": exported(base_model(Path(tmp) / "base", sample), Path(tmp) / "base"),
        }
        for size, folder in folders.items():
            rows[size] = speed(folder, texts)
            print(size, rows[size], flush=True)
        for label, (model, gold) in QUALITY.items():
            if model.is_dir() and gold.is_file():
                folder = exported(model, Path(tmp) / model.parent.name)
                quality[label] = {v: f1(folder, gold, o) for v, o in VARIANTS.items()}
                print(label, quality[label], flush=True)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    meta = {"machine": f"{os.cpu_count()}-core CPU, {torch.get_num_threads()} torch threads"}
    result = {**meta, "commit": commit, "texts": len(texts), "speed": rows, "f1": quality}
    out = ROOT / "benchmarks" / "cpu_inference.json"
    out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    table = report(result)
    write_section(table, BEGIN, END, "CPU inference options (issue 16)")


def report(result: dict) -> str:
    names = list(VARIANTS)
    lines = [
        BEGIN,
        "<!-- generated by `python scripts/bench_cpu.py`: do not edit -->",
        f"{result['machine']}, commit `{result['commit']}`; {result['texts']} texts, batch 32;"
        " sentences/s end to end, and (×) against torch fp32 in the same run.",
        "",
        "| model | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for size, r in result["speed"].items():
        base = r["torch fp32"]
        cells = [f"{r[n]} (**{r[n] / base:.2f}×**)" for n in names]
        lines.append(f"| {size} | " + " | ".join(cells) + " |")
    lines += ["", "| model, dev set | metric | " + " | ".join(names) + " |"]
    lines.append("|---|---|" + "---:|" * len(names))
    for task, q in result["f1"].items():
        for metric in q["torch fp32"]:
            cells = [f"{q[n][metric]:.4f}" for n in names]
            lines.append(f"| {task} | {metric} | " + " | ".join(cells) + " |")
    return "\n".join([*lines, END])


if __name__ == "__main__":
    main()
