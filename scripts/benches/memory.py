"""5. Memory: peak RSS of a training step (a fresh process per variant) vs the bare
encoder's fwd+bwd, and the bytes of the sparse label tensors vs dense ones (events)."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

import torch

from benches.models import Run, build_model, step_variants
from benches.plan import BARE, DENSE, MB, RECIPE, ROOT, STEP
from benches.sources import load_data, longest_batch
from gplinker.config import load_config

MEMORY_VARIANTS = (BARE, STEP, DENSE)
MEMORY_STEPS = 2  # the optimizer state appears in the first step
STATUS = Path("/proc/self/status")


def bench_memory(run: Run) -> dict:
    """Peak RSS of a training step on the longest batch (fresh process per variant) vs
    the bare encoder's fwd+bwd; bytes of the sparse label tensors vs dense ones."""
    spec = {
        "task": run.data.task.name,
        "shared": str(run.data.shared) if run.data.shared else None,
        "size": run.size,
        "device": str(run.device),
        "bf16": run.bf16,
    }
    peaks = {v: run.memory_runner({**spec, "variant": v}) for v in MEMORY_VARIANTS}
    batch = longest_batch(run.data, run.recipe)
    assert batch.labels is not None
    B, L = batch.input_ids.shape
    H = run.data.label_counts
    sparse = sum(t.nelement() * t.element_size() for t in batch.labels.values())
    dense = B * sum(H.values()) * L * L * 4  # float32 [B, H, L, L] per head
    result = {
        "batch_size": B,
        "padded_length": L,
        "labels": len(run.data.schema),
        "reference": BARE,
        "peak_rss_mb": {v: p["peak_mb"] for v, p in peaks.items()},
        "growth_mb": {v: p["peak_mb"] - p["ready_mb"] for v, p in peaks.items()},
        "ratio": {v: p["peak_mb"] / peaks[BARE]["peak_mb"] for v, p in peaks.items()},
        "label_bytes": {"sparse": sparse, "dense float32": dense},
        "label_ratio": sparse / dense,
    }
    if run.device.type == "cuda":
        result["cuda_max_allocated_mb"] = {v: p["cuda_max_allocated_mb"] for v, p in peaks.items()}
    return result


def measure_memory(spec: dict) -> dict:
    """In this process: build, then MEMORY_STEPS of one variant on the longest batch;
    the resident size before and the peak after. Meant for a fresh process
    (memory_in_subprocess)."""
    device = torch.device(spec["device"])
    recipe = load_config(RECIPE)
    shared = Path(spec["shared"]) if spec["shared"] else None
    data = load_data(spec["task"], shared, n_train=0)
    model = build_model(data, spec["size"]).to(device).train()
    batch = longest_batch(data, recipe).to(device)
    step = step_variants(model, recipe, device, spec["bf16"])[spec["variant"]]
    ready = rss_mb()
    reset = reset_peak_rss()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for _ in range(MEMORY_STEPS):
        step(batch)
    out = {"ready_mb": ready, "peak_mb": peak_rss_mb(), "peak_of_steps_only": reset}
    if device.type == "cuda":
        out["cuda_max_allocated_mb"] = torch.cuda.max_memory_allocated(device) / MB
    return out


def memory_in_subprocess(spec: dict) -> dict:
    """measure_memory in a fresh Python process (`bench.py --memory-child`), so that each
    peak is its own."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench.py"), "--memory-child", json.dumps(spec)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    if done.returncode:
        raise RuntimeError(f"memory measurement {spec['variant']!r} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def peak_rss_mb() -> float:
    """This program's peak resident set size. On Linux VmHWM: ru_maxrss would also count
    the process that forked this one (it survives exec), so every child would show the
    benchmark's own size. Elsewhere ru_maxrss (bytes on macOS, KiB on others)."""
    if STATUS.exists():
        return _status_mb("VmHWM")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / MB if sys.platform == "darwin" else peak / 1024


def rss_mb() -> float:
    return _status_mb("VmRSS") if STATUS.exists() else peak_rss_mb()


def reset_peak_rss() -> bool:
    """Linux: set the peak to the current size ("5" > clear_refs), so that the peak
    measured after it is that of what runs after it. False where that is impossible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _status_mb(field: str) -> float:
    for line in STATUS.read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024  # kB
    raise KeyError(field)
