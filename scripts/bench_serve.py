"""The HTTP service under concurrent load against `predict` on the same model and texts, in
one run (issue 14, part 6).

    python scripts/bench_serve.py [--model runs/sample/best] [--base]  # -> benchmarks/serve.json

For each model: `predict_file` over the texts (batch 32) gives the reference throughput;
one single-text `extract` per text gives the reference latency; then a real `gplinker serve`
on 127.0.0.1 takes 1, 8 and 32 concurrent clients, each sending one text per request on a
keep-alive connection for --seconds. Reported: texts/s (and its ratio to predict's), p50
and p99 latency, answers that differ from predict's (should be 0), the server's RSS. The
clients are a few lines of asyncio over raw sockets rather than an HTTP library: on 2
cores every microsecond the load generator spends is taken from the server it measures.
`--base` adds a random-init model of bert-base-chinese's shape (no pretrained weights
here: speed only). Rewrites the `serve` part of docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import psutil
import torch
from doc_tables import write_section

from gplinker.predict import GPLinker, predict_file

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- serve:begin -->", "<!-- serve:end -->"
CLIENTS = (1, 8, 32)


# ---- a real server and its clients (also used by tests/test_serve_load.py) -------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def server(
    model: Path, *args: str, env: dict | None = None
) -> Iterator[tuple[str, int, subprocess.Popen]]:
    """`gplinker serve --model MODEL` as a user starts it, on a free loopback port:
    yields (host, port, process) once /health answers; stopped (Ctrl-C) afterwards."""
    port = free_port()
    cmd = [sys.executable, "-m", "gplinker", "-q", "serve", "--model", str(model)]
    proc = subprocess.Popen(
        [*cmd, "--port", str(port), *args], env={**os.environ, **(env or {})}, cwd=ROOT
    )
    try:
        deadline = time.monotonic() + 120
        while asyncio.run(_health("127.0.0.1", port)) != 200:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gplinker serve did not start (exit code {proc.poll()})")
            time.sleep(0.2)
        yield "127.0.0.1", port, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


async def _health(host: str, port: int) -> int | None:
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        return None
    writer.write(f"GET /health HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    status, _ = await _response(reader)
    writer.close()
    return status


async def _response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
    body = await reader.readexactly(int(headers.get("content-length", 0)))
    return int(lines[0].split()[1]), body


async def _client(
    host: str, port: int, texts: Sequence[str], until: float, max_requests: int, out: list
) -> None:
    """One keep-alive connection sending texts[0], texts[1], ... round and round; appends
    (latency s, status, text, body) per request."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for i in range(max_requests):
            if time.perf_counter() >= until:
                break
            text = texts[i % len(texts)]
            body = json.dumps({"text": text}, ensure_ascii=False).encode()
            request = (
                f"POST /extract HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: "
                f"application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode() + body
            t0 = time.perf_counter()
            writer.write(request)
            status, answer = await _response(reader)
            out.append((time.perf_counter() - t0, status, text, answer))
    finally:
        writer.close()


def load(
    host: str,
    port: int,
    texts: Sequence[str],
    clients: int,
    seconds: float,
    max_requests: int = 10**9,
) -> tuple[list[tuple[float, int, str, bytes]], float]:
    """`clients` concurrent connections for `seconds` (or max_requests each): every
    request's (latency, status, text, body), and the wall time."""
    shares = [list(texts[i::clients]) or list(texts) for i in range(clients)]
    out: list = []

    async def run() -> None:
        until = time.perf_counter() + seconds
        await asyncio.gather(*(_client(host, port, s, until, max_requests, out) for s in shares))

    t0 = time.perf_counter()
    asyncio.run(run())
    return out, time.perf_counter() - t0


# ---- the benchmark ---------------------------------------------------------------------------
def predicted(model: Path, texts: Sequence[str], folder: Path) -> tuple[dict[str, dict], float]:
    """predict_file's row per text (less the id) and its throughput in texts/s, the model
    loaded and warm (as the server's is), the best of 3 runs."""
    source, out = folder / "in.jsonl", folder / "out.jsonl"
    source.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    linker = GPLinker.from_pretrained(model, device="cpu")
    linker.extract(texts[:32])
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        predict_file(linker, source, out, progress=False)
        times.append(time.perf_counter() - t0)
    rate = len(texts) / min(times)
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    return {r["text"]: {k: v for k, v in r.items() if k != "id"} for r in rows}, rate


def single_text_latency(model: Path, texts: Sequence[str]) -> float:
    """Median seconds of one `extract([text])`: the lone request's floor."""
    linker = GPLinker.from_pretrained(model, device="cpu")
    linker.extract(texts[:2])  # warm
    times = []
    for text in texts:
        t0 = time.perf_counter()
        linker.extract([text])
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure(model: Path, texts: Sequence[str], seconds: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        expected, predict_rate = predicted(model, texts, Path(tmp))
    single = single_text_latency(model, texts[:64])
    rows = []
    with server(model) as (host, port, proc):
        load(host, port, texts[:8], 4, 2.0)  # warm the server
        for clients in CLIENTS:
            answers, wall = load(host, port, texts, clients, seconds)
            latencies = sorted(a[0] for a in answers)
            wrong = sum(
                a[1] != 200 or json.loads(a[3])["results"][0] != expected[a[2]] for a in answers
            )
            rate = len(answers) / wall
            rows.append(
                {
                    "clients": clients,
                    "requests": len(answers),
                    "texts_per_s": round(rate, 1),
                    "vs_predict": round(rate / predict_rate, 3),
                    "p50_ms": round(1000 * latencies[len(latencies) // 2], 2),
                    "p99_ms": round(1000 * latencies[int(len(latencies) * 0.99)], 2),
                    "wrong_or_failed": wrong,
                    "server_rss_mb": round(psutil.Process(proc.pid).memory_info().rss / 2**20, 1),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    return {
        "model": str(model.relative_to(ROOT) if model.is_relative_to(ROOT) else model),
        "texts": len(texts),
        "predict_texts_per_s": round(predict_rate, 1),
        "single_text_ms": round(1000 * single, 2),
        "lone_p50_vs_single": round(rows[0]["p50_ms"] / (1000 * single), 3),
        "rows": rows,
    }


def base_model(folder: Path, like: Path) -> Path:
    """A random-init model of bert-base-chinese's shape with `like`'s heads and tokenizer.
    Its first head's scores are lowered so that it finds about as few spans as a trained
    model does: random scores put thousands of spans above 0, whose decoding would be timed
    instead of the model."""
    from gplinker.config import ModelConfig
    from gplinker.modeling.model import GPLinkerModel

    small = GPLinker.from_pretrained(like, device="cpu")
    config = ModelConfig(pretrained=False, encoder_overrides={}, head_size=64)
    torch.manual_seed(0)
    heads = small.task.heads(small.schema)
    model = GPLinkerModel.from_encoder(config, heads, len(small.tokenizer), small.task.name)
    with torch.no_grad():
        getattr(model, heads[0].name).bias.bias -= 12.0
    GPLinker(model.eval(), small.tokenizer, small.schema, max_length=128).save_pretrained(folder)
    return folder


def report(results: list[dict], meta: dict) -> str:
    lines = [
        BEGIN,
        "<!-- generated by `python scripts/bench_serve.py`: do not edit -->",
        f"{meta['machine']}, commit `{meta['commit']}`, {meta['seconds']:g} s per row; "
        "one text per request, keep-alive connections on 127.0.0.1.",
        "",
        "| model | clients | texts/s | vs predict | p50 ms | p99 ms | wrong | server RSS MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        for row in r["rows"]:
            lines.append(
                f"| {r['name']} | {row['clients']} | {row['texts_per_s']} | "
                f"**{row['vs_predict']:.2f}×** | {row['p50_ms']} | {row['p99_ms']} | "
                f"{row['wrong_or_failed']} | {row['server_rss_mb']} |"
            )
    lines += ["", "| model | predict texts/s | one-text extract ms | lone request p50 / it |"]
    lines.append("|---|---:|---:|---:|")
    for r in results:
        lines.append(
            f"| {r['name']} | {r['predict_texts_per_s']} | {r['single_text_ms']} | "
            f"**{r['lone_p50_vs_single']:.2f}×** |"
        )
    return "\n".join([*lines, END])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=ROOT / "runs" / "sample" / "best")
    ap.add_argument("--base", action="store_true", help="also a bert-base-shaped model")
    ap.add_argument("--texts", type=Path, default=ROOT / "data" / "sample" / "dev.json")
    ap.add_argument("--count", type=int, default=512, help="texts from --texts")
    ap.add_argument("--seconds", type=float, default=20.0, help="per concurrency level")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "serve.json")
    args = ap.parse_args()
    if not args.model.is_dir():
        sys.exit(f"error: {args.model}: no model folder (bash scripts/quickstart.sh trains one)")
    lines = args.texts.read_text(encoding="utf-8").splitlines()[: args.count]
    texts = list(dict.fromkeys(json.loads(line)["text"] for line in lines))
    results = [{"name": "tiny (trained sample)", **measure(args.model, texts, args.seconds)}]
    if args.base:
        with tempfile.TemporaryDirectory() as tmp:
            folder = base_model(Path(tmp) / "base", args.model)
            results.append({"name": "base (random init)", **measure(folder, texts, args.seconds)})
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    meta = {
        "machine": f"{os.cpu_count()}-core CPU, {torch.get_num_threads()} torch threads",
        "commit": commit or None,
        "seconds": args.seconds,
    }
    args.out.write_text(json.dumps({**meta, "models": results}, indent=1) + "\n")
    table = report(results, meta)
    write_section(table, BEGIN, END, "The HTTP service under load (issue 14)")


if __name__ == "__main__":
    main()
