"""Many processes (docs/reliability.md): `gplinker` launched as several processes through
Accelerate. The launches run 2 CPU processes over gloo, as a GPU-less CI machine can.

Helpers first (`launch`, `free_port`, `tiny_model_folder`), for every test of a launched
run; then one section per command.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
import torch
from conftest import ROOT, SAMPLES, task_texts, tiny_model_folder
from typer.testing import CliRunner

from gplinker import tasks
from gplinker.cli import app
from gplinker.config import load_config
from gplinker.data.reader import write_jsonl
from gplinker.errors import GPLinkerError
from gplinker.predict import GPLinker, merge_shards, process_group
from gplinker.training import train

# ---------------------------------------------------------------- helpers

LAUNCH_TIMEOUT_S = 180  # a launch takes 5-20 s on 2 busy cores; a hang fails, not blocks


def free_port() -> int:
    """A TCP port nobody listens on now: the rendezvous port of one launch (the default,
    29500, would clash with a launch running at the same time)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(
    argv: Sequence[str],
    *,
    processes: int = 2,
    cwd: Path | None = None,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = LAUNCH_TIMEOUT_S,
) -> subprocess.CompletedProcess[str]:
    """`accelerate launch` `processes` CPU processes of `python -m gplinker ARGV` and wait.

    CPU processes need ACCELERATE_USE_CPU=1 and --multi_gpu (`--cpu` would want MPI and
    start one process); the group then runs over gloo. One thread per process, the hub
    off, a fresh rendezvous port; `env` adds variables. stdout and stderr come back as text
    (stderr holds the launcher's own report too: `exitcode: N` for each process that failed).
    """
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        str(processes),
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(free_port()),
        "-m",
        "gplinker",
        *argv,
    ]
    env = {
        **os.environ,
        "ACCELERATE_USE_CPU": "1",
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "PYTHONIOENCODING": "utf-8",
        **(env or {}),
    }
    return subprocess.run(
        command,
        cwd=cwd or ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=timeout,
        check=False,
    )


def exit_codes(result: subprocess.CompletedProcess[str]) -> set[int]:
    """The exit codes of the failed processes, from the launcher's report."""
    return {int(code) for code in re.findall(r"exitcode\s*:\s*(-?\d+)", result.stderr)}


def one_process_predict(*argv: str) -> None:
    """`gplinker predict ARGV` in this process, on one thread as each launched process."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = CliRunner().invoke(app, ["predict", *argv])
    finally:
        torch.set_num_threads(threads)
    assert result.exit_code in (0, 2), result.output


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


# ---------------------------------------------------------------- predict, sharded over processes


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model_folder("event", tmp_path_factory.mktemp("model") / "m")


def jl(row: object) -> str:
    return json.dumps(row, ensure_ascii=False)


# 9 lines: 5 for process 0, 4 for process 1; bad lines on both; line 6 reuses the id of
# line 1, which process 0 predicts and process 1 only reads
MIXED = [
    jl({"id": "a1", "text": "雀巢裁员4000人"}),
    jl({"id": "a2", "text": "华为收购了一家公司"}),
    '{"id": "a3", "text": ',
    jl({"id": "a4", "text": "两人在北京举行婚礼"}),
    "",
    jl({"id": "a1", "text": "又裁员"}),
    jl({"text": "没有编号的一行"}),
    jl({"id": "a8", "text": None}),
    jl({"id": "a9", "text": "他获得了冠军"}),
]


def test_merge_shards_puts_uneven_shards_back_in_input_order(tmp_path: Path) -> None:
    for n_rows in (0, 1, 2, 5, 7, 8):
        rows = [{"i": i, "text": f"第{i}行"} for i in range(n_rows)]
        for n in (1, 2, 3):
            shards = [tmp_path / f"{n_rows}-{n}-{r}" for r in range(n)]
            for r, shard in enumerate(shards):  # line i goes to shard i % n
                write_jsonl(shard, rows[r::n])
            assert list(merge_shards(shards)) == rows, (n_rows, n)
    # 7 rows over 3 shards are 3, 2, 2 lines; any other split does not interleave
    shards = [tmp_path / f"bad-{r}" for r in range(3)]
    for lengths in ((3, 3, 1), (2, 2, 3), (3, 1, 2), (1, 3, 3)):
        for shard, k in zip(shards, lengths, strict=True):
            write_jsonl(shard, [{"row": j} for j in range(k)])
        with pytest.raises(GPLinkerError, match="the shards do not interleave"):
            list(merge_shards(shards))
    with pytest.raises(GPLinkerError, match="cannot read this shard"):
        list(merge_shards([shards[0], tmp_path / "missing"]))


def test_a_lone_process_sets_up_no_process_group(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    assert process_group() is None


@pytest.mark.parametrize("task", ["event", "entity", "relation"])
def test_two_processes_write_the_same_output_as_one(tmp_path: Path, task: str) -> None:
    model_dir = tiny_model_folder(task, tmp_path / "model")
    dev = SAMPLES[task][1]
    one, two = tmp_path / "one" / "out.jsonl", tmp_path / "two" / "out.jsonl"
    one.parent.mkdir()
    two.parent.mkdir()
    # batch size 1: every text is its own forward pass in both runs, so the scores, not
    # only the rows' order, cannot differ with the batches a process happens to make
    common = ["--model", str(model_dir), "--input", str(dev), "--batch-size", "1"]
    one_process_predict(*common, "--output", str(one))
    result = launch(["-q", "predict", *common, "--output", str(two)])
    assert result.returncode == 0, result.stderr
    assert two.read_bytes() == one.read_bytes()
    rows = [json.loads(line) for line in two.read_text(encoding="utf-8").splitlines()]
    gold = [json.loads(line) for line in dev.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == [g.get("id", f"line-{n}") for n, g in enumerate(gold, 1)]
    key = tasks.get(task).record_key
    assert sum(len(r[key]) for r in rows) > 10  # the model finds some records
    # one summary, from process 0, with the counts of the whole input
    assert re.findall(r"read \d+ lines.*", result.stderr) == [
        f"read {len(gold)} lines, wrote {len(gold)}, 0 in error"
    ]
    assert sorted(p.name for p in two.parent.iterdir()) == ["out.jsonl"]  # shards removed


def test_record_mode_over_two_processes_writes_what_one_writes(
    tmp_path: Path, model_dir: Path
) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(MIXED) + "\n", encoding="utf-8")
    one = tmp_path / "one.jsonl"
    common = ["--model", str(model_dir), "--input", str(src), "--on-error", "record"]
    one_process_predict(*common, "--output", str(one))
    # to stdout: the shards go to the temp folder, and process 0 alone writes
    temp = tmp_path / "temp"
    temp.mkdir()
    result = launch(["predict", *common, "--output", "-"], env={"TMPDIR": str(temp)})
    assert result.returncode == 0, result.stderr
    assert result.stdout == one.read_text(encoding="utf-8")
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["id"], r.get("line")) for r in rows if "error" in r] == [
        (None, 3),
        (None, 5),
        ("a1", 6),
        ("a8", 8),
    ]
    assert [r["id"] for r in rows if "error" not in r] == ["a1", "a2", "a4", "line-7", "a9"]
    assert re.findall(r"read \d+ lines.*", result.stderr) == ["read 9 lines, wrote 9, 4 in error"]
    # each bad line is logged once (by process 0), though both processes read all of them
    assert len(re.findall(r"WARNING .*\(recorded\)", result.stderr)) == 4
    assert list(temp.glob(".stdout.*")) == []  # shards removed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "one.jsonl", "temp"]


def test_fail_mode_over_two_processes_stops_all_and_leaves_nothing(
    tmp_path: Path, model_dir: Path
) -> None:
    src = tmp_path / "in.jsonl"
    # the first bad line is line 4: process 1's share, but process 0 reads it too
    lines = [MIXED[0], MIXED[1], MIXED[3], MIXED[2], *MIXED[4:]]
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    out.write_text("an earlier output\n", encoding="utf-8")
    result = launch(
        ["predict", "--model", str(model_dir), "--input", "in.jsonl", "-o", str(out)], cwd=tmp_path
    )
    assert result.returncode != 0
    # the processes stopped with code 2; once the first has exited, the launcher may stop a
    # slower one with SIGTERM as it exits too (seen under load: {2, -15}). The
    # error was printed once, by process 0, and nothing was left behind.
    assert 2 in exit_codes(result) and exit_codes(result) <= {2, -signal.SIGTERM}
    assert error_lines(result) == ["error: in.jsonl:4: invalid JSON: Expecting value at column 22"]
    assert result.stderr.count("(--on-error record writes an error record") == 1
    assert out.read_text(encoding="utf-8") == "an earlier output\n"  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "out.jsonl"]


def test_stdin_over_two_processes_is_a_clear_error(tmp_path: Path, model_dir: Path) -> None:
    result = launch(
        ["predict", "--model", str(model_dir), "--input", "-", "--output", "-"],
        stdin="\n".join(MIXED[:2]) + "\n",
        cwd=tmp_path,
    )
    assert result.returncode != 0
    assert 2 in exit_codes(result) and exit_codes(result) <= {2, -signal.SIGTERM}
    assert error_lines(result) == [
        "error: <stdin>: stdin cannot be shared by 2 processes (each reads every line): "
        "give --input a file"
    ]
    assert result.stdout == ""
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- train under DDP


def learning_recipe(tmp_path: Path, task: str = "event") -> Path:
    """A one-layer model that learns the task's sample data in a minute: no dropout, so one
    and two processes compute the same gradients up to float summation order. Measured on
    events: the runs agree to 4 decimals of the loss for 3 epochs, then drift apart (at this
    learning rate a rounding difference grows: event F1 0.40 against 0.32 after epoch 6)."""
    train_file, dev_file, schema_file, _ = SAMPLES[task]
    path = tmp_path / "ddp.yaml"
    path.write_text(
        "\n".join(
            [
                f"task: {task}",
                "data:",
                f"  train: {train_file}",
                f"  dev: {dev_file}",
                f"  schema_file: {schema_file}",
                "  max_length: 64",
                "model:",
                "  pretrained: false",
                "  model_type: bert",
                "  encoder_overrides: {num_hidden_layers: 1, hidden_size: 64, "
                "num_attention_heads: 2, intermediate_size: 64, max_position_embeddings: 128, "
                "hidden_dropout_prob: 0.0, attention_probs_dropout_prob: 0.0}",
                "  tokenizer: wordpiece",
                "  tokenizer_vocab_size: 2000",
                "  head_size: 16",
                "train: {epochs: 4, batch_size: 16, optimizer: adamw, lr: 5.0e-3, "
                "warmup_steps: 10, seed: 3, checkpoint_every: 0, tensorboard: false}",
            ]
        ),
        encoding="utf-8",
    )
    return path


@pytest.mark.slow
@pytest.mark.parametrize("task", ["event", "entity", "relation"])
def test_two_process_training_gives_a_valid_model_with_the_one_process_dev_f1(
    tmp_path: Path, task: str
) -> None:
    recipe = learning_recipe(tmp_path, task)
    one = train(load_config(recipe, [f"output_dir={tmp_path / 'one'}"]))
    result = launch(["train", "--config", str(recipe), f"output_dir={tmp_path / 'two'}"])
    assert result.returncode == 0, result.stderr[-3000:]

    run = tmp_path / "two"
    rows = [json.loads(r) for r in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4], "one row per epoch: rank 0 writes"
    assert json.loads((run / "run.json").read_text())["processes"] == 2
    log = (run / "train.log").read_text(encoding="utf-8")
    assert log.count("epoch 4 dev:") == 1
    best = GPLinker.from_pretrained(run / "best", device="cpu")
    assert len(best.extract(task_texts(task, "dev")[:5])) == 5

    singles = [json.loads(r) for r in (tmp_path / "one" / "metrics.jsonl").read_text().splitlines()]
    names = {"event": ("trigger", "argument", "event"), "entity": ("entity",)}
    for single, double in zip(singles, rows, strict=True):
        assert double["train_loss"] == pytest.approx(single["train_loss"], rel=1e-2)
        for name in names.get(task, ("triple",)):
            assert abs(double[name]["f1"] - single[name]["f1"]) <= 0.03, (name, single, double)
    learned = {"event": "argument", "entity": "entity"}  # triples take longer to learn
    if task in learned:
        assert one.best[learned[task]].f1 > 0.5, "the recipe should learn something to compare"
