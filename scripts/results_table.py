"""Markdown table of a training run's per-epoch dev metrics, from its run folder.

    python scripts/results_table.py results/duee-tiny-issue2 > docs/results.md

Reads metrics.jsonl (written by `gplinker train`), config.yaml and, when present,
run.json (command, commit, device, wall minutes) and train.log (gold spans that cannot be
labels). Nothing in the table is typed by hand.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml

METRICS = ("event", "argument", "trigger", "official")


def table(run: Path) -> str:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    config = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))
    meta = json.loads((run / "run.json").read_text()) if (run / "run.json").exists() else {}
    out = [f"### {run.name}", ""]
    if meta:
        out += [
            f"- command: `{meta['command']}`",
            f"- commit: `{meta['git_commit']}`, device: {meta['device']}, "
            f"torch threads: {meta['torch_threads']}",
            f"- wall clock: {meta['wall_minutes']:.1f} minutes, {meta['steps']} steps",
        ]
    log = run / "train.log"
    if log.exists():  # the span-drop counts train() logs at its start
        out += [
            "- " + line.split("gplinker.training: ", 1)[1].split(" (e.g.")[0]
            for line in log.read_text(encoding="utf-8").splitlines()
            if "cannot be labels" in line
        ]
    enc = config["model"].get("encoder_overrides", {})
    t = config["train"]
    out += [
        f"- encoder: {config['model'].get('encoder') or config['model']['model_type']} "
        f"(pretrained: {config['model']['pretrained']}), "
        + ", ".join(f"{k}={v}" for k, v in enc.items()),
        f"- train: {t['optimizer']} lr {t['lr']} ({t['schedule']}, warmup {t['warmup_steps']}), "
        f"batch {t['batch_size']}, max_length {config['data']['max_length']}",
        "",
        "| epoch | minutes | train loss | event P / R / F1 | argument P / R / F1 "
        "| trigger P / R / F1 | official P / R / F1 |",
        "|---:|---:|---:|---|---|---|---|",
    ]
    for r in rows:
        cells = [
            " / ".join(f"{r[m][k]:.3f}" for k in ("precision", "recall", "f1")) if m in r else "-"
            for m in METRICS
        ]
        out.append(
            f"| {r['epoch']} | {r['minutes']:.1f} | {r['train_loss']:.3f} | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", type=Path, nargs="+", help="run folders (runs/x or results/x)")
    args = ap.parse_args()
    print("\n".join(table(run) for run in args.runs))


if __name__ == "__main__":
    main()
