"""Prediction time on one long line against its windows predicted as separate texts
(issue 12, part 4): what merging the windows of a text costs.

    python scripts/bench_long_text.py [--model runs/sample/best]   # -> benchmarks/long_text.json

The line is `裁员` repeated (boilerplate, a spam line: every window full of triggers) at
1,000, 10,000 and 100,000 characters. For each length it times `GPLinker.extract([line])`
and the same windows given as independent texts (no merge), interleaved, and keeps the
medians; the ratio is the merge's overhead (target: at most 3×). The model is the embedded
sample's (`bash scripts/quickstart.sh` trains it into runs/sample/best). Rewrites the
`long-text` part of docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from doc_tables import write_section

from gplinker.data.alignment import encode_windows
from gplinker.predict import GPLinker

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- long-text:begin -->", "<!-- long-text:end -->"
LENGTHS = (1_000, 10_000, 100_000)


def measure(linker: GPLinker, chars: int, repeats: int) -> dict:
    text = "裁员" * (chars // 2)
    [windows] = encode_windows([text], linker.tokenizer, linker.max_length, linker.window_overlap)
    whole, apart, events = [], [], 0
    for _ in range(repeats):  # interleaved: drift of the machine hits both alike
        t0 = time.perf_counter()
        events = len(linker.extract_encoded([windows], [text])[0])
        t1 = time.perf_counter()
        linker.extract_encoded([[w] for w in windows], [text] * len(windows))
        t2 = time.perf_counter()
        whole.append(t1 - t0)
        apart.append(t2 - t1)
    line, separate = statistics.median(whole), statistics.median(apart)
    return {
        "chars": chars,
        "windows": len(windows),
        "events": events,
        "line_s": line,
        "windows_apart_s": separate,
        "ms_per_1000_chars": 1000 * line / (chars / 1000),
        "ratio_to_windows_apart": line / separate,
    }


def report(rows: list[dict], meta: dict) -> str:
    lines = [
        BEGIN,
        "",
        f"`python scripts/bench_long_text.py` on {meta['machine']}, commit "
        f"`{(meta['commit'] or '?')[:7]}`, model `{meta['model']}`, {meta['threads']} threads: "
        "one line of `裁员` repeated, predicted whole against its windows predicted as separate "
        f"texts (medians of {meta['repeats']} interleaved runs).",
        "",
        "| characters | windows | events | line (s) | ms per 1,000 chars | windows apart (s) "
        "| ratio |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['chars']:,} | {r['windows']:,} | {r['events']:,} | {r['line_s']:.2f} "
            f"| {r['ms_per_1000_chars']:.0f} | {r['windows_apart_s']:.2f} "
            f"| {r['ratio_to_windows_apart']:.2f}× |"
        )
    lines += ["", END]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=ROOT / "runs" / "sample" / "best")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "long_text.json")
    args = ap.parse_args()
    if not args.model.is_dir():
        sys.exit(f"error: {args.model}: no model folder (bash scripts/quickstart.sh trains one)")
    linker = GPLinker.from_pretrained(args.model, device="cpu")
    rows = [measure(linker, n, args.repeats) for n in LENGTHS]
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()
    meta = {
        "machine": f"{torch.get_num_threads()}-thread CPU",
        "threads": torch.get_num_threads(),
        "repeats": args.repeats,
        "commit": commit or None,
        "model": str(
            args.model.relative_to(ROOT) if args.model.is_relative_to(ROOT) else args.model
        ),
    }
    args.out.write_text(json.dumps({**meta, "rows": rows}, indent=1) + "\n", encoding="utf-8")
    table = report(rows, meta)
    write_section(table, BEGIN, END, "One long line (issue 12)")


if __name__ == "__main__":
    main()
