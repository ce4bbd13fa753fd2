"""2. Data path: tokenization + labels + collation of a batch vs the step it feeds, and
how long a step waits for its data, in the loop or from DataLoader workers (events)."""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from functools import partial
from itertools import islice

import torch
from torch.utils.data import DataLoader

from benches.models import Run, build_model, step_variants
from benches.plan import BATCH, COLLATE, DATA, PREPARE, STEP
from benches.sources import Data
from benches.timing import Timings, measure
from gplinker.config import Config
from gplinker.data.collate import Batch, bucketed_batches
from gplinker.tasks.base import TextExample


def bench_data(run: Run) -> dict:
    """Tokenization + labels + collation of a batch vs the step it feeds; the share of
    time a step waits for data, in the loop (workers 0) or from DataLoader workers."""
    model = build_model(run.data, run.size).to(run.device).train()
    step = step_variants(model, run.recipe, run.device, run.bf16)[STEP]
    groups = example_batches(run.data, run.recipe, run.plan.loader_batches + 1)
    d, data = run.recipe.data, run.data
    seconds: dict[str, list[float]] = {DATA: [], PREPARE: [], COLLATE: [], STEP: []}
    for k, examples in enumerate(groups):
        start = time.perf_counter()
        items = data.items(examples, d.max_length, d.window_overlap)
        prepared = time.perf_counter()
        batch = data.batch(items).to(run.device)
        collated = time.perf_counter()
        stepped, _ = measure(partial(step, batch), run.device)
        if k:  # the first batch warms up
            parts = {PREPARE: prepared - start, COLLATE: collated - prepared, STEP: stepped}
            for name, s in {**parts, DATA: collated - start}.items():
                seconds[name].append(s)
    on_the_fly = partial(prepare_batch, data, max_length=d.max_length, overlap=d.window_overlap)
    loaders = [
        loader_stall(groups, on_the_fly, step, run.device, w) for w in run.plan.loader_workers
    ]
    timings = Timings(seconds, {})
    ms = timings.ms()
    return {
        "batches": len(groups) - 1,
        **timings.summary(STEP),
        "train_loop_stall_share": ms[COLLATE] / (ms[COLLATE] + ms[STEP]),
        "prepare_ms_per_text": ms[PREPARE] / statistics.mean(len(g) for g in groups),
        "loader": loaders,
    }


def prepare_batch(
    data: Data, examples: list[TextExample], *, max_length: int, overlap: int | None
) -> Batch:
    """Texts -> a training batch on the fly: tokenize, build labels, collate."""
    return data.batch(data.items(examples, max_length, overlap))


def example_batches(data: Data, recipe: Config, n: int) -> list[list[TextExample]]:
    """Batches of raw train texts, bucketed by character length."""
    lengths = [len(ex.text) for ex in data.train]
    order = bucketed_batches(lengths, BATCH, recipe.train.bucket_size, random.Random(1))
    return [[data.train[i] for i in idx] for idx in islice(order, n)]


def loader_stall(
    groups: list[list[TextExample]],
    on_the_fly: Callable[[list[TextExample]], Batch],
    step: Callable[[Batch], None],
    device: torch.device,
    workers: int,
) -> dict:
    """Steps fed by a DataLoader that prepares each batch on the fly: the share of the
    time spent waiting for the next batch (the first batch, which starts the workers,
    is not counted)."""
    loader = DataLoader(groups, batch_size=None, num_workers=workers, collate_fn=on_the_fly)
    wait, busy = [], []
    batches = iter(loader)
    step(next(batches).to(device))
    for _ in range(len(groups) - 1):
        start = time.perf_counter()
        batch = next(batches).to(device)
        wait.append(time.perf_counter() - start)
        busy.append(measure(partial(step, batch), device)[0])
    return {
        "workers": workers,
        "stall_share": sum(wait) / (sum(wait) + sum(busy)),
        "step_ms": 1000 * statistics.median(busy),
    }
