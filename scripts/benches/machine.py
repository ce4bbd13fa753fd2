"""What a result records besides its figures: the machine, the commit, the data, the
settings; and the JSON file it is written to."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

import torch
import transformers

from benches.plan import BATCH, RECIPE, ROOT, Plan
from benches.sources import Data
from gplinker.config import Config


def machine(device: torch.device) -> dict:
    cpu = platform.processor()
    if Path("/proc/cpuinfo").exists():
        names = [
            ln
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ]
        cpu = names[0].split(":", 1)[1].strip() if names else cpu
    affinity = getattr(os, "sched_getaffinity", None)
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "cores_usable": len(affinity(0)) if affinity else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        **git_state(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "load_average_start": os.getloadavg(),
    }


def git_state() -> dict:
    """The commit, and how many files differ from it (the bench may run on a dirty tree)."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout if done.returncode == 0 else None

    status = git("status", "--porcelain")
    return {
        "git_commit": (git("rev-parse", "HEAD") or "").strip() or None,
        "git_changed_files": None if status is None else len(status.splitlines()),
    }


def data_info(data: Data) -> dict:
    return {
        "task": data.task.name,
        "source": data.source,
        "fallback": data.shared is None,
        "train_texts": len(data.train),
        "dev_texts": len(data.dev),
        "labels": len(data.schema),
        "heads": data.label_counts,
        "gold_spans_per_dev_text": data.span_cells_per_text,
    }


def settings(
    plan: Plan,
    recipe: Config,
    sizes: dict,
    device: torch.device,
    bf16: bool,
    tasks: tuple[str, ...],
) -> dict:
    t = recipe.train
    return {
        "batch_size": BATCH,
        "max_length": recipe.data.max_length,
        "window_overlap": recipe.data.window_overlap,
        "device": str(device),
        "bf16": bf16,
        "optimizer": f"{t.optimizer} (lr {t.lr:g}, {RECIPE.relative_to(ROOT)})",
        "max_grad_norm": t.max_grad_norm,
        "sizes": sizes,
        "tasks": list(tasks),
        "plan": asdict(plan),
    }


def write_result(result: dict, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{result['name']}.json"
    path.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
