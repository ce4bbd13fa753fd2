"""Interruption and resume: SIGKILL at any moment loses nothing; --resume ends bit for bit
where an uninterrupted run ends; the same config and seed give the same run."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from conftest import ROOT, SAMPLES
from safetensors.torch import load_file

from gplinker.checkpoint import CHECKPOINTS, STATE_NAME, latest_checkpoint
from gplinker.config import load_config
from gplinker.predict import GPLinker
from gplinker.training import train

TIME_KEYS = {"train_samples_per_s", "eval_seconds", "minutes"}


def recipe(tmp_path: Path, name: str, task: str = "event", **train: object) -> Path:
    """A one-layer model on the task's sample data: 75 steps per epoch for events (50 for
    the others), dropout on (so the RNG streams matter), a checkpoint every 20 steps."""
    train_file, dev_file, schema_file, _ = SAMPLES[task]
    conf = {
        "task": task,
        "data": {
            "train": str(train_file),
            "dev": str(dev_file),
            "schema_file": str(schema_file),
            "max_length": 64,
        },
        "model": {
            "pretrained": False,
            "model_type": "bert",
            "encoder_overrides": {
                "num_hidden_layers": 1,
                "hidden_size": 32,
                "num_attention_heads": 2,
                "intermediate_size": 64,
                "max_position_embeddings": 128,
            },
            "tokenizer": "wordpiece",
            "tokenizer_vocab_size": 2000,
            "head_size": 16,
        },
        "train": {
            "epochs": 3,
            "batch_size": 16,
            "optimizer": "adax",
            "lr": 1e-3,
            "schedule": "linear",
            "warmup_steps": 10,
            "ema_decay": 0.9,
            "checkpoint_every": 20,
            "tensorboard": False,
            "seed": 7,
            **train,
        },
        "output_dir": str(tmp_path / name),
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(conf), encoding="utf-8")
    return path


def gplinker(*args: str | Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "gplinker", "-q", *map(str, args)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen) -> None:
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]


def kill_after_checkpoint(proc: subprocess.Popen, run: Path, min_step: int) -> int:
    """SIGKILL the run as soon as a checkpoint of step >= min_step exists; its step."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        ckpt = latest_checkpoint(run)
        if ckpt is not None and int(ckpt.name.split("-")[1]) >= min_step:
            proc.send_signal(signal.SIGKILL)
            proc.communicate()
            assert proc.returncode == -signal.SIGKILL, "the run ended before it was killed"
            return int(ckpt.name.split("-")[1])
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        time.sleep(0.005)
    raise AssertionError("no checkpoint appeared")


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def metric_rows(run: Path) -> list[dict]:
    rows = [json.loads(r) for r in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in TIME_KEYS} for r in rows]


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    differ = [k for k in wa if not torch.equal(wa[k], wb[k])]
    assert not differ, f"{len(differ)} tensors differ, e.g. {differ[:3]}"


@pytest.mark.slow
@pytest.mark.parametrize("task", ["event", "entity", "relation"])
def test_a_run_killed_twice_mid_epoch_and_resumed_ends_with_the_same_weights(
    tmp_path: Path, task: str
) -> None:
    whole = recipe(tmp_path, "whole", task)
    finish(gplinker("train", "--config", whole))

    run = tmp_path / "killed"
    killed = recipe(tmp_path, "killed", task)
    step = kill_after_checkpoint(gplinker("train", "--config", killed), run, 20)  # epoch 1
    assert load_config(run / "config.yaml").train.checkpoint_every == 20
    per_epoch = 75 if task == "event" else 50  # steps: 1,200 or 800 windows, batch 16
    # later, in epoch 2 (best/ exists once epoch 1 is scored)
    step = kill_after_checkpoint(gplinker("train", "--resume", run), run, step + per_epoch)
    state = json.loads((latest_checkpoint(run) / STATE_NAME).read_text())
    assert state["batch"] > 0, "the second kill should land inside an epoch"
    GPLinker.from_pretrained(run / "best")  # whatever the moment, the best folder loads
    finish(gplinker("train", "--resume", run))

    for folder in ("last", "best"):
        assert_same_weights(tmp_path / "whole" / folder, run / folder)
    assert metric_rows(run) == metric_rows(tmp_path / "whole")
    final = [p.name for p in (tmp_path / "whole" / CHECKPOINTS).iterdir()]
    assert [p.name for p in (run / CHECKPOINTS).iterdir()] == final
    assert not [p for p in run.iterdir() if p.name.startswith(".")], "temporary folders left"


@pytest.mark.parametrize("task", ["event", "entity", "relation"])
def test_the_same_config_and_seed_give_identical_metrics_and_weights(
    tmp_path: Path, task: str
) -> None:
    results = []
    for name in ("one", "two"):
        config = load_config(recipe(tmp_path, name, task, epochs=1, checkpoint_every=0))
        results.append(train(config))
    assert results[0].best == results[1].best
    assert metric_rows(tmp_path / "one") == metric_rows(tmp_path / "two")
    assert_same_weights(tmp_path / "one" / "last", tmp_path / "two" / "last")


def test_resuming_a_finished_run_changes_nothing(tmp_path: Path) -> None:
    config = load_config(recipe(tmp_path, "done", epochs=1, checkpoint_every=0))
    first = train(config)
    before = weights(first.last_dir)
    again = train(config, resume=True)
    assert again.best == first.best
    after = weights(again.last_dir)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert len(metric_rows(tmp_path / "done")) == 1


def test_only_whole_checkpoints_are_picked(tmp_path: Path) -> None:
    root = tmp_path / CHECKPOINTS
    for name in ("step-00000040", ".tmp-step-00000090", ".old-step-00000020"):
        (root / name).mkdir(parents=True)
        (root / name / STATE_NAME).write_text("{}")
    (root / "step-00000060").mkdir()  # no trainer_state.json: not whole
    assert latest_checkpoint(tmp_path) == root / "step-00000040"
    assert latest_checkpoint(tmp_path / "elsewhere") is None


def test_a_failed_save_leaves_the_previous_model_folder_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_config(recipe(tmp_path, "save", epochs=1, checkpoint_every=0))
    best = train(config).best_dir
    model = GPLinker.from_pretrained(best)
    before = weights(best)
    with torch.no_grad():
        for p in model.model.parameters():
            p.add_(1.0)

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(model.tokenizer, "save_pretrained", broken)
    with pytest.raises(OSError, match="disk full"):
        model.save_pretrained(best)
    after = weights(best)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert sorted(p.name for p in best.parent.iterdir() if p.name.startswith(".")) == []
    GPLinker.from_pretrained(best)


def test_resume_without_a_checkpoint_is_one_clear_error(tmp_path: Path) -> None:
    run = tmp_path / "empty"
    run.mkdir()
    (run / "config.yaml").write_text(
        recipe(tmp_path, "empty").read_text().replace(str(tmp_path / "empty"), str(run))
    )
    proc = gplinker("train", "--resume", run)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert err.strip().splitlines()[-1] == (
        f"error: {run}: no checkpoint to resume from (nothing in {CHECKPOINTS}/)"
    )


def test_train_needs_a_config_or_a_run_to_resume(tmp_path: Path) -> None:
    proc = gplinker("train")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert "give --config RECIPE to start a run, or --resume RUN_FOLDER" in err


def test_checkpoint_files_load_without_pickle(tmp_path: Path) -> None:
    config = load_config(recipe(tmp_path, "safe", epochs=1, checkpoint_every=0))
    train(config)
    ckpt = latest_checkpoint(tmp_path / "safe")
    for name in ("optimizer.pt", "scheduler.pt", "rng-0.pt"):
        torch.load(ckpt / name, weights_only=True)  # raises on anything but plain data
