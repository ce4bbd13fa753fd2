"""A real `gplinker serve` on 127.0.0.1 under 32 concurrent clients for a bounded time and
count: no errors, every answer equal to `predict`'s for the same text, the server's memory
flat. The clients and the server are scripts/bench_serve.py's, which the benchmark uses."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import threading
from pathlib import Path

import psutil
import pytest
from conftest import ROOT, task_texts, tiny_model_folder
from test_serve import predicted_rows

spec = importlib.util.spec_from_file_location("bench_serve", ROOT / "scripts" / "bench_serve.py")
bench_serve = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench_serve)

CLIENTS = 32
SECONDS = float(os.environ.get("GPLINKER_LOAD_SECONDS", "20"))
MAX_REQUESTS = 400  # per client: the count bound, whatever the machine's speed
RSS_GROWTH_MB = 50


@pytest.mark.slow
def test_32_clients_get_predicts_answers_in_flat_memory(tmp_path: Path) -> None:
    folder = tiny_model_folder("entity", tmp_path / "model")
    texts = list(dict.fromkeys(task_texts("entity", "dev")))[:200]
    expected = dict(zip(texts, predicted_rows(folder, texts, tmp_path), strict=True))
    assert sum(len(r["entities"]) for r in expected.values()) > 0
    with bench_serve.server(folder) as (host, port, process):
        bench_serve.load(host, port, texts, 8, 2.0)  # warm: allocator pools, first batches
        server = psutil.Process(process.pid)
        rss: list[int] = []
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.25):
                rss.append(server.memory_info().rss)

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            answers, _ = bench_serve.load(host, port, texts, CLIENTS, SECONDS, MAX_REQUESTS)
        finally:
            done.set()
            sampler.join()
    statuses = [a[1] for a in answers]
    assert statuses.count(200) == len(answers), sorted(set(statuses))
    wrong = [a[2] for a in answers if json.loads(a[3])["results"] != [expected[a[2]]]]
    assert not wrong, f"{len(wrong)} answers differ from predict's, e.g. for {wrong[0]!r}"
    assert len(answers) >= CLIENTS * 10, len(answers)  # the load was real
    settled = rss[len(rss) // 4 :]  # the first quarter: the batches' sizes still growing
    growth = (max(settled) - settled[0]) / 2**20
    assert growth < RSS_GROWTH_MB, f"server RSS grew {growth:.0f} MB under load"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_serve_stops_on_ctrl_c_and_sigterm(tmp_path: Path, sig: int) -> None:
    """uvicorn runs off the main thread (the model has it), so gplinker handles both."""
    folder = tiny_model_folder("entity", tmp_path / "model")
    with bench_serve.server(folder) as (_, _, process):
        process.send_signal(sig)
        assert process.wait(30) == 0
