"""scripts/bench.py on data/sample with a tiny encoder: every benchmark runs and writes the
JSON and the report; no timing is asserted (a benchmark is a script, not a test)."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import torch
from conftest import ROOT, TINY_ENCODER


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


bench = _script("bench")
SIZE = "test"


def _plan() -> object:
    return bench.Plan(
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
        benches={b: (SIZE,) for b in bench.BENCHES},
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
    data = bench.load_data(None, n_train=96)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: threads only wait for each other on busy cores
    try:
        run = bench.run_benchmarks(
            _plan(),
            data,
            {SIZE: dict(TINY_ENCODER)},
            torch.device("cpu"),
            False,
            workdir,
            name="smoke",
            memory_runner=bench.measure_memory,  # in this process: no interpreter per figure
        )
    finally:
        torch.set_num_threads(threads)
    path = bench.write_result(run, workdir / "out")
    assert path == workdir / "out" / "smoke.json"
    return json.loads(path.read_text(encoding="utf-8"))


def test_result_has_the_machine_the_data_and_every_benchmark(result: dict) -> None:
    assert {"name", "machine", "data", "settings", "results", "targets", "wall_seconds"} <= set(
        result
    )
    machine = result["machine"]
    for key in ("cpu", "cores", "torch_threads", "torch", "transformers", "device", "date"):
        assert machine[key], key
    assert "git_commit" in machine
    assert result["data"]["fallback"] is True  # data/sample, said so
    assert "data/sample" in result["data"]["source"]
    assert set(result["results"]) == set(bench.BENCHES)
    assert all(set(by_size) == {SIZE} for by_size in result["results"].values())


def test_every_ratio_is_a_positive_finite_number(result: dict) -> None:
    ratios = list(_ratios(result["results"]))
    assert len(ratios) > 20
    for path, value in ratios:
        assert isinstance(value, float | int) and math.isfinite(value) and value > 0, path


def test_figures_the_docs_rely_on(result: dict) -> None:
    r = result["results"]
    assert set(r["step"][SIZE]["ms"]) == {bench.BARE, bench.NO_OPT, bench.STEP, bench.DENSE}
    assert [x["workers"] for x in r["data"][SIZE]["loader"]] == [0, 1]
    assert 0 <= r["data"][SIZE]["loader"][1]["stall_share"] < 1
    parts = r["predict"][SIZE]["parts"]["share"]
    assert {"tokenize", "encoder", "heads", "candidate scan", "decode", "read, write, rest"} <= set(
        parts
    )
    assert r["predict"][SIZE]["scores"].startswith("random init")  # no trained model fits
    assert r["decode"][SIZE]["bound"]["max_candidates"] == 256
    assert (
        r["memory"][SIZE]["label_bytes"]["sparse"]
        < r["memory"][SIZE]["label_bytes"]["dense float32"]
    )
    assert set(r["scaling"][SIZE]["by_length"]) == {"16", "32", "48"}
    assert r["pointer"][SIZE]["ratio"]["head params"] > 1  # the original GP is bigger
    predict_target = [t for t in result["targets"] if t["bench"] == "predict"]
    assert predict_target and isinstance(predict_target[0]["met"], bool)


def test_report_rewrites_only_the_marked_block(result: dict, tmp_path: Path) -> None:
    doc = tmp_path / "performance.md"
    doc.write_text(f"# before\n\n{bench.BEGIN}\nold table\n{bench.END}\n\nafter\n")
    bench.write_report([result], doc)
    text = doc.read_text()
    assert text.startswith("# before\n") and text.endswith("\n\nafter\n")
    assert "old table" not in text
    assert "| figure | size | measured | reference | ratio | target |" in text
    assert "benchmarks/smoke.json" in text
    bench.write_report([result], doc)  # again: the same text, not a second block
    assert doc.read_text() == text
