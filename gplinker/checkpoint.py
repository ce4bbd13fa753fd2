"""Training checkpoints: all that `gplinker train --resume` needs to go on bit for bit.

`RUN/checkpoints/step-00000123/` holds model.safetensors (and ema.safetensors), optimizer.pt,
scheduler.pt, rng-RANK.pt (one per process: torch, CUDA and Python RNG states), the
tokenizer and trainer_state.json (epoch, batch, step, best so far, elapsed time). It is
filled under a hidden name and appears by one rename when complete, then the older one is
removed: a kill at any moment leaves at least one whole checkpoint.

We do not use `Accelerator.save_state`: it writes in place (a kill leaves half a folder)
and reloads its RNG and custom states with `torch.load(weights_only=False)`, i.e. pickle.
Here every `.pt` is read with `weights_only=True`: tensors and plain containers, no code.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from safetensors.torch import load_file, save_file
from transformers import PreTrainedTokenizerFast

from gplinker.errors import GPLinkerError
from gplinker.files import fsync_tree

CHECKPOINTS = "checkpoints"
STATE_NAME = "trainer_state.json"
_STEP_DIR = re.compile(r"step-(\d+)")


@dataclass
class TrainerState:
    """Where training stands: `batch` batches of `epoch` (1-based) are done."""

    epoch: int = 1
    batch: int = 0
    step: int = 0
    elapsed: float = 0.0  # seconds of training before this checkpoint, resumes included
    best: dict[str, Any] = field(default_factory=dict)  # dev metrics of the best epoch
    best_epoch: int = 0
    loss_sum: float = 0.0  # the current epoch's loss so far, for its metrics row
    loss_steps: int = 0
    samples: int = 0


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The checkpoint with the highest step under RUN/checkpoints (hidden ones are partial)."""
    found = []
    for p in (Path(run_dir) / CHECKPOINTS).glob("step-*"):
        m = _STEP_DIR.fullmatch(p.name)
        if m and (p / STATE_NAME).is_file():
            found.append((int(m.group(1)), p))
    return max(found)[1] if found else None


def save_checkpoint(
    accelerator: Accelerator,
    run_dir: Path,
    state: TrainerState,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    ema: torch.nn.Module | None,
    tokenizer: PreTrainedTokenizerFast,
) -> Path:
    """Every process calls this; each writes its RNG states, the main one the rest."""
    root = run_dir / CHECKPOINTS
    final = root / f"step-{state.step:08d}"
    tmp = root / f".tmp-step-{state.step:08d}"
    main = accelerator.is_main_process
    if main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    torch.save(_rng_states(), tmp / f"rng-{accelerator.process_index}.pt")
    if main:
        save_file(_cpu(model.state_dict()), str(tmp / "model.safetensors"))
        if ema is not None:
            save_file(_cpu(ema.state_dict()), str(tmp / "ema.safetensors"))
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
        tokenizer.save_pretrained(tmp)
        (tmp / STATE_NAME).write_text(json.dumps(asdict(state), indent=1), encoding="utf-8")
    accelerator.wait_for_everyone()
    if main:
        fsync_tree(tmp)
        shutil.rmtree(final, ignore_errors=True)  # a run resumed from an older step
        os.rename(tmp, final)
        fsync_tree(root, recursive=False)
        for old in root.glob("step-*"):  # hide first: a half-deleted folder is never picked
            if old != final:
                os.rename(old, root / f".old-{old.name}")
        for leftover in [*root.glob(".old-step-*"), *root.glob(".tmp-step-*")]:
            shutil.rmtree(leftover)  # this save's and any an earlier kill left behind
    accelerator.wait_for_everyone()
    return final


def load_checkpoint(
    path: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
) -> TrainerState:
    """Weights, optimizer and scheduler into the (unprepared) objects; RNG comes later."""
    try:
        model.load_state_dict(load_file(str(path / "model.safetensors")))
        optimizer.load_state_dict(_load(path / "optimizer.pt"))
        scheduler.load_state_dict(_load(path / "scheduler.pt"))
        return TrainerState(**json.loads((path / STATE_NAME).read_text(encoding="utf-8")))
    except (OSError, RuntimeError, ValueError, TypeError) as e:
        raise GPLinkerError(f"{path}: cannot resume from this checkpoint ({e})") from e


def load_ema(path: Path, ema: torch.nn.Module) -> None:
    try:
        ema.load_state_dict(load_file(str(path / "ema.safetensors")))
    except (OSError, RuntimeError) as e:
        raise GPLinkerError(f"{path}: no usable ema.safetensors for train.ema_decay ({e})") from e


def restore_rng(path: Path, process_index: int) -> bool:
    """Put back this process's RNG states; False when the checkpoint has none for it (it
    was written by fewer processes), in which case the streams stay as seeded."""
    file = path / f"rng-{process_index}.pt"
    if not file.is_file():
        return False
    states = _load(file)
    random.setstate(_as_tuple(states["python"]))
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    return True


def _rng_states() -> dict[str, Any]:
    states: dict[str, Any] = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _as_tuple(value: Any) -> Any:
    """random.setstate wants the nested tuples it gave; a round trip may return lists."""
    return tuple(_as_tuple(v) for v in value) if isinstance(value, list | tuple) else value


def _load(file: Path) -> Any:
    return torch.load(file, map_location="cpu", weights_only=True)


def _cpu(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().contiguous().cpu() for k, v in state.items()}
