"""scripts/bench.py on the embedded samples with a tiny encoder: every benchmark runs, the
training step and prediction for every task, and the JSON and the report are written; no
timing is asserted (a benchmark is a script, not a test)."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from conftest import ROOT, TINY_ENCODER

sys.path.insert(0, str(ROOT / "scripts"))  # where `python scripts/bench.py` finds benches/

from benches import plan as names
from benches.machine import write_result
from benches.memory import measure_memory
from benches.report import BEGIN, END, load_results, render, write_report
from benches.sources import load_data
from benches.suite import BENCHES, run_benchmarks

SIZE = "test"
OTHERS = {"entity", "relation"}


def _plan() -> names.Plan:
    return names.Plan(
        train_texts=96,
        dev_texts={SIZE: 40},
        step_batches={SIZE: 2},
        predict_reps=1,
        loader_workers=(0, 1),
        loader_batches=2,
        worst_texts=2,
        scaling_lengths=(16, 32, 48),
        scaling_labels=(1, 4),
        scaling_reps=1,
        scaling_predict_batch=2,
        split_sizes=(SIZE,),
        pointer_batches=1,
        benches={b: (SIZE,) for b in BENCHES},
    )


def _ratios(node: object, key: str = "") -> Iterator[tuple[str, object]]:
    """Every value under a key named "ratio" (or ending in "_ratio"), with its path."""
    if isinstance(node, dict):
        for k, v in node.items():
            path = f"{key}.{k}"
            if k == "ratio" or k.endswith("_ratio"):
                yield from (_leaves(v, path))
            else:
                yield from _ratios(v, path)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _ratios(v, f"{key}[{i}]")


def _leaves(node: object, key: str) -> Iterator[tuple[str, object]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _leaves(v, f"{key}.{k}")
    else:
        yield key, node


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One smoke run written to JSON and read back (so the checks see what is stored)."""
    workdir = tmp_path_factory.mktemp("bench")
    data = {task: load_data(task, None, n_train=96) for task in names.TASKS}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: threads only wait for each other on busy cores
    try:
        run = run_benchmarks(
            _plan(),
            data,
            {SIZE: dict(TINY_ENCODER)},
            torch.device("cpu"),
            False,
            workdir,
            name="smoke",
            memory_runner=measure_memory,  # in this process: no interpreter per figure
        )
    finally:
        torch.set_num_threads(threads)
    path = write_result(run, workdir / "out")
    assert path == workdir / "out" / "smoke.json"
    return json.loads(path.read_text(encoding="utf-8"))


def test_result_has_the_machine_the_data_and_every_benchmark(result: dict) -> None:
    keys = {"name", "machine", "data", "settings", "results", "tasks", "targets", "wall_seconds"}
    assert keys <= set(result)
    machine = result["machine"]
    for key in ("cpu", "cores", "torch_threads", "torch", "transformers", "device", "date"):
        assert machine[key], key
    assert "git_commit" in machine
    assert result["data"]["fallback"] is True  # data/sample, said so
    assert "data/sample" in result["data"]["source"]
    assert set(result["results"]) == set(BENCHES)
    assert all(set(by_size) == {SIZE} for by_size in result["results"].values())


def test_every_other_task_has_its_sample_a_step_and_a_prediction(result: dict) -> None:
    assert set(result["tasks"]) == OTHERS
    for task, part in result["tasks"].items():
        assert part["data"]["task"] == task
        assert part["data"]["fallback"] is True
        assert f"data/sample-{task}" in part["data"]["source"]
        assert set(part["results"]) == set(names.TASK_AXIS)
        step, predict = part["results"]["step"][SIZE], part["results"]["predict"][SIZE]
        for ratio in (step["ratio"][names.STEP], predict["ratio"][names.E2E]):
            assert isinstance(ratio, float) and math.isfinite(ratio) and ratio > 0, task
        assert predict["scores"].startswith("random init")
        assert predict[f"{predict['records']}_per_text"] >= 0
    assert result["data"]["task"] == "event"


def test_every_ratio_is_a_positive_finite_number(result: dict) -> None:
    ratios = list(_ratios(result["results"])) + list(_ratios(result["tasks"]))
    assert len(ratios) > 20
    for path, value in ratios:
        assert isinstance(value, float | int) and math.isfinite(value) and value > 0, path


def test_figures_the_docs_rely_on(result: dict) -> None:
    r = result["results"]
    step_variants = {names.BARE, names.NO_OPT, names.STEP, names.DENSE}
    assert set(r["step"][SIZE]["ms"]) == step_variants
    assert [x["workers"] for x in r["data"][SIZE]["loader"]] == [0, 1]
    assert 0 <= r["data"][SIZE]["loader"][1]["stall_share"] < 1
    parts = r["predict"][SIZE]["parts"]["share"]
    assert {"tokenize", "encoder", "heads", "candidate scan", "decode", "read, write, rest"} <= set(
        parts
    )
    assert r["predict"][SIZE]["scores"].startswith("random init")  # no trained model fits
    assert r["predict"][SIZE]["events_per_text"] >= 0  # the key the report read before tasks
    assert r["decode"][SIZE]["bound"]["max_candidates"] == 256
    labels = r["memory"][SIZE]["label_bytes"]
    assert labels["sparse"] < labels["dense float32"]
    assert set(r["scaling"][SIZE]["by_length"]) == {"16", "32", "48"}
    assert r["pointer"][SIZE]["ratio"]["head params"] > 1  # the original GP is bigger
    predict_target = [t for t in result["targets"] if t["bench"] == "predict"]
    assert predict_target and isinstance(predict_target[0]["met"], bool)
    axis = {(t["task"], t["bench"]) for t in result["targets"] if "task" in t}
    assert axis == {(task, b) for task in names.TASKS for b in names.TASK_AXIS}


def test_report_has_one_task_row_per_task_and_size(result: dict) -> None:
    text = render(result)
    rows = [
        line
        for line in text.splitlines()
        if line.startswith(tuple(f"| {t} |" for t in names.TASKS))
    ]
    assert [line.split(" | ")[:2] for line in rows] == [[f"| {t}", SIZE] for t in names.TASKS]
    for line in rows:
        assert "≤ 1.3" in line and "≥ 0.75" in line
    assert "other benchmarks run on events only" in text


def test_report_rewrites_only_the_marked_block(result: dict, tmp_path: Path) -> None:
    doc = tmp_path / "performance.md"
    doc.write_text(f"# before\n\n{BEGIN}\nold table\n{END}\n\nafter\n")
    write_report([result], doc)
    text = doc.read_text()
    assert text.startswith("# before\n") and text.endswith("\n\nafter\n")
    assert "old table" not in text
    assert "| figure | size | measured | reference | ratio | target |" in text
    assert "benchmarks/smoke.json" in text
    write_report([result], doc)  # again: the same text, not a second block
    assert doc.read_text() == text


def test_report_still_renders_the_committed_results(tmp_path: Path) -> None:
    committed = load_results(ROOT / "benchmarks")
    assert committed
    doc = tmp_path / "performance.md"
    doc.write_text(f"{BEGIN}\n{END}\n")
    write_report(committed, doc)
    assert all(f"benchmarks/{r['name']}.json" in doc.read_text() for r in committed)
