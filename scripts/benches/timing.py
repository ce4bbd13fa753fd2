"""Timing: variants interleaved per item and reduced by medians, so that drift on a busy
machine cancels; profiles of a call for a missed target; warnings counted, not printed."""

from __future__ import annotations

import cProfile
import logging
import pstats
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch

from benches.plan import MB


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(fn: Callable[[], object], device: torch.device) -> tuple[float, float | None]:
    """Seconds fn() takes and, on CUDA, the most memory it held allocated (MB)."""
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    fn()
    sync(device)
    seconds = time.perf_counter() - start
    return seconds, torch.cuda.max_memory_allocated(device) / MB if cuda else None


@dataclass
class Timings:
    seconds: dict[str, list[float]]  # per variant, one per measured item
    cuda_peak_mb: dict[str, float]

    def ms(self) -> dict[str, float]:
        return {k: 1000 * statistics.median(v) for k, v in self.seconds.items()}

    def ratios(self, reference: str) -> dict[str, float]:
        """Median over items of variant / reference, each pair measured back to back."""
        ref = self.seconds[reference]
        return {
            k: statistics.median(a / b for a, b in zip(v, ref, strict=True))
            for k, v in self.seconds.items()
        }

    def summary(self, reference: str) -> dict:
        out = {"reference": reference, "ms": self.ms(), "ratio": self.ratios(reference)}
        if self.cuda_peak_mb:
            out["cuda_max_allocated_mb"] = self.cuda_peak_mb
        return out


def interleaved(
    variants: dict[str, Callable[[Any], object]],
    items: Sequence[Any],
    device: torch.device,
    warmup: int = 1,
) -> Timings:
    """Each item through every variant in turn (A, B, A, B, ...); the first `warmup`
    items are not timed."""
    for item in items[:warmup]:
        for fn in variants.values():
            fn(item)
    timings = Timings({k: [] for k in variants}, {})
    for item in items[warmup:]:
        for name, fn in variants.items():
            seconds, peak = measure(partial(fn, item), device)
            timings.seconds[name].append(seconds)
            if peak is not None:
                timings.cuda_peak_mb[name] = max(peak, timings.cuda_peak_mb.get(name, 0.0))
    return timings


@contextmanager
def count_warnings(name: str) -> Iterator[list[logging.LogRecord]]:
    """The warnings of a logger, kept in a list instead of printed."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger(name)
    logger.addHandler(handler)
    propagate, logger.propagate = logger.propagate, False
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def profile_ops(fn: Callable[[], None], device: torch.device, rows: int = 12) -> list[dict]:
    """torch.profiler over one call: the operators with the most self time."""
    activities = [torch.profiler.ProfilerActivity.CPU]
    key = "self_cpu_time_total"
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
        key = "self_device_time_total"
    with torch.profiler.profile(activities=activities) as prof:
        fn()
        sync(device)
    events = prof.key_averages()
    total = sum(getattr(e, key) for e in events)
    top = sorted(events, key=lambda e: getattr(e, key), reverse=True)[:rows]
    return [
        {
            "name": e.key,
            "self_ms": getattr(e, key) / 1000,
            "share": getattr(e, key) / total,
            "calls": e.count,
        }
        for e in top
    ]


def profile_calls(fn: Callable[[], None], rows: int = 12) -> list[dict]:
    """cProfile over one call: the Python functions with the most self time."""
    profiler = cProfile.Profile()
    profiler.runcall(fn)
    stats = pstats.Stats(profiler)
    top = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:rows]
    return [
        {
            "name": f"{Path(file).name}:{line}({func})",
            "self_ms": 1000 * tt,
            "share": tt / stats.total_tt,
            "calls": nc,
            "cumulative_ms": 1000 * ct,
        }
        for (file, line, func), (_, nc, tt, ct, _) in top
    ]
