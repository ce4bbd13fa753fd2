"""CPU inference options against today's fp32 torch path, measured in one run (issue 16,
parts 1-2): torch int8 (`--int8`), ONNX Runtime fp32 and int8 (`--backend onnx [--int8]`);
int8 as shipped keeps the encoder's last layer fp32, and is measured against int8 all through.

    python scripts/bench_cpu.py     # -> benchmarks/cpu_inference.json, docs/performance.md

Speed: sentences/s of `GPLinker.extract` end to end (tokenizer, encoder, heads, decoder)
over the texts of data/sample/dev.json (150), batch 32, the six variants interleaved three
times (medians), on the trained event sample model (`tiny`) and on a random-init model of
bert-base-chinese's shape (`base`, its span scores lowered as in bench_serve.py). F1: every
metric of the task on the dev file for each variant, for each trained sample model present
(runs/sample/best, runs/sample-entity/best, runs/sample-relation/best: quickstart.sh
trains them), and how much each variant moves their span scores. Each model is exported to
ONNX first (`gplinker.export`).
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
from gplinker.data.alignment import encode_windows
from gplinker.data.collate import collate
from gplinker.export import export_onnx
from gplinker.modeling.model import FP32_LAST_LAYERS
from gplinker.predict import GPLinker, predict_file

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from bench_serve import base_model  # noqa: E402
from doc_tables import write_section  # noqa: E402

BEGIN, END = "<!-- cpu-inference:begin -->", "<!-- cpu-inference:end -->"
KEEP = FP32_LAST_LAYERS
VARIANTS = {  # name -> (from_pretrained's options, how many last encoder layers int8 keeps fp32)
    "torch fp32": ({}, KEEP),
    "torch int8": ({"int8": True}, KEEP),
    "torch int8, all layers": ({"int8": True}, 0),
    "onnx fp32": ({"backend": "onnx"}, KEEP),
    "onnx int8": ({"backend": "onnx", "int8": True}, KEEP),
    "onnx int8, all layers": ({"backend": "onnx", "int8": True}, 0),
}
DUEE = load_config(ROOT / "configs" / "duee-tiny.yaml")
QUALITY = {  # label -> (trained model, its gold dev file); each one present is scored
    "event sample": (ROOT / "runs/sample/best", ROOT / "data/sample/dev.json"),
    "entity sample": (ROOT / "runs/sample-entity/best", ROOT / "data/sample-entity/dev.json"),
    "relation sample": (ROOT / "runs/sample-relation/best", ROOT / "data/sample-relation/dev.json"),
    "DuEE dev (duee-tiny)": (ROOT / DUEE.output_dir / "best", ROOT / str(DUEE.data.dev)),
}


def exported(folder: Path, into: Path) -> dict[int, Path]:
    """The model folder exported twice: int8 ONNX with its last KEEP layers fp32, and all."""
    fp32 = GPLinker.from_pretrained(folder, device="cpu")
    for keep in {KEEP, 0}:
        export_onnx(fp32, folder, into / f"fp32-last-{keep}", fp32_last=keep)
    return {keep: into / f"fp32-last-{keep}" for keep in {KEEP, 0}}


def load(folders: dict[int, Path], name: str) -> GPLinker:
    options, keep = VARIANTS[name]
    if options.get("backend") == "onnx":
        return GPLinker.from_pretrained(folders[keep], **options)
    linker = GPLinker.from_pretrained(folders[keep], device="cpu")
    if options.get("int8"):
        linker.model.quantize_encoder(fp32_last=keep)
    return linker


def speed(folders: dict[int, Path], texts: list[str], repeats: int = 3) -> dict[str, float]:
    variants = {name: load(folders, name) for name in VARIANTS}
    times: dict[str, list[float]] = {name: [] for name in variants}
    for linker in variants.values():
        linker.extract(texts[:32])  # warm
    for _ in range(repeats):  # interleaved: the machine's drift hits all alike
        for name, linker in variants.items():
            t0 = time.perf_counter()
            linker.extract(texts, batch_size=32)
            times[name].append(time.perf_counter() - t0)
    return {name: round(len(texts) / statistics.median(t), 1) for name, t in times.items()}


def f1(folders: dict[int, Path], gold: Path, name: str) -> dict[str, float]:
    linker = load(folders, name)
    task = linker.task
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "pred.jsonl"
        predict_file(linker, gold, out, progress=False)
        scores = task.evaluate(task.read_scored(out, linker.schema), task.read_scored(gold, None))
    return {name: round(prf.f1, 4) for name, prf in scores.items() if "/" not in name}


@torch.inference_mode()
def score_change(folders: dict[int, Path], gold: Path, name: str, n: int = 256) -> dict:
    """How a variant moves the span scores of fp32 on the first n dev texts (their first
    windows; every head, the cells that can be spans): the mean change and the mean size
    of a change. A mean above 0 puts more spans over the threshold 0."""
    texts = [json.loads(line)["text"] for line in gold.read_text(encoding="utf-8").splitlines()]
    fp32, other = load(folders, "torch fp32"), load(folders, name)
    windows = encode_windows(texts[:n], fp32.tokenizer, fp32.max_length, None)
    diffs = []
    for i in range(0, len(windows), 32):
        batch = collate([(ws[0], None) for ws in windows[i : i + 32]])
        want, got = (v.model(batch.input_ids, batch.attention_mask) for v in (fp32, other))
        for head, s in want.items():
            real = torch.isfinite(s) & (s.abs() < 1e6)  # not the masked cells (padding, t < h)
            diffs.append(got[head][real] - s[real])
    d = torch.cat(diffs)
    return {"mean": round(d.mean().item(), 4), "mean abs": round(d.abs().mean().item(), 4)}


def main() -> None:
    lines = (ROOT / "data" / "sample" / "dev.json").read_text(encoding="utf-8").splitlines()
    texts = [json.loads(line)["text"] for line in lines[:512]]
    rows, quality, change = {}, {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        sample = ROOT / "runs" / "sample" / "best"
        sizes = {
            "tiny": exported(sample, Path(tmp) / "tiny"),
            "base": exported(base_model(Path(tmp) / "base-fp32", sample), Path(tmp) / "base"),
        }
        for size, folders in sizes.items():
            rows[size] = speed(folders, texts)
            print(size, rows[size], flush=True)
        for label, (model, gold) in QUALITY.items():
            if model.is_dir() and gold.is_file():
                folders = exported(model, Path(tmp) / model.parent.name)
                quality[label] = {name: f1(folders, gold, name) for name in VARIANTS}
                change[label] = {n: score_change(folders, gold, n) for n in VARIANTS}
                print(label, quality[label], change[label], flush=True)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    meta = {"machine": f"{os.cpu_count()}-core CPU, {torch.get_num_threads()} torch threads"}
    result = {**meta, "commit": commit, "texts": len(texts), "speed": rows}
    result |= {"f1": quality, "score change": change}
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
    lines += ["", "Span scores against torch fp32 (first 256 dev texts, every head): mean change,"]
    lines += ["and mean size of a change.", ""]
    lines += ["| model, dev set | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for task, c in result["score change"].items():
        cells = [f"{c[n]['mean']:+.4f} / {c[n]['mean abs']:.4f}" for n in names]
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    return "\n".join([*lines, END])


if __name__ == "__main__":
    main()
