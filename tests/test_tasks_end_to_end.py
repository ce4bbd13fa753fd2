"""Every task end to end through the CLI and the Python API, on its embedded sample:
train -> predict -> evaluate, with the figures checked (the event task's own CLI tests are
in test_cli.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import SAMPLES, TINY_ENCODER
from typer.testing import CliRunner

from gplinker import GPLinker, tasks
from gplinker.cli import app
from gplinker.tasks.entity import Entity
from gplinker.tasks.relation import Triple

runner = CliRunner()
MAIN = {"entity": "entity", "relation": "triple", "event": "event"}
RECORDS = {"entity": "entities", "relation": "spo_list", "event": "event_list"}


def train(task: str, out: Path, *overrides: str) -> dict:
    """`gplinker train` on the task's sample config; the best dev metrics it printed."""
    args = ["train", "--config", str(SAMPLES[task][3]), f"output_dir={out}"]
    result = runner.invoke(app, [*args, "train.tensorboard=false", *overrides])
    assert result.exit_code == 0, result.output
    return json.loads((out / "run.json").read_text())["best"]


def tiny(epochs: int) -> list[str]:
    shape = ",".join(f"{k}: {v}" for k, v in TINY_ENCODER.items())
    return [f"train.epochs={epochs}", f"model.encoder_overrides={{{shape}}}", "model.head_size=16"]


def predict(model: Path, src: Path, dst: Path) -> list[dict]:
    args = ["predict", "--model", str(model), "--input", str(src), "--output", str(dst)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in dst.read_text(encoding="utf-8").splitlines()]


def evaluate(gold: Path, pred: Path) -> dict:
    result = runner.invoke(app, ["evaluate", "--gold", str(gold), "--pred", str(pred), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize("task", ["entity", "relation"])
def test_train_predict_evaluate_writes_the_task_formats(tmp_path: Path, task: str) -> None:
    run = tmp_path / "run"
    best = train(task, run, *tiny(1))
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1] and MAIN[task] in rows[0]
    assert json.loads((run / "best/config.json").read_text())["task"] == task

    dev = SAMPLES[task][1]
    out = predict(run / "best", dev, tmp_path / "pred.json")
    gold = [json.loads(line) for line in dev.read_text(encoding="utf-8").splitlines()]
    assert len(out) == len(gold) and all(isinstance(r[RECORDS[task]], list) for r in out)
    assert [r["text"] for r in out] == [r["text"] for r in gold]
    scores = evaluate(dev, tmp_path / "pred.json")
    # the file predict wrote scores what training's dev evaluation scored
    assert scores[MAIN[task]]["f1"] == pytest.approx(best[MAIN[task]]["f1"])
    assert scores[MAIN[task]]["n_gold"] == best[MAIN[task]]["n_gold"] > 0


@pytest.mark.parametrize("task", ["entity", "relation", "event"])
def test_gold_against_itself_is_perfect_and_the_task_is_told_by_the_file(task: str) -> None:
    dev = SAMPLES[task][1]
    assert tasks.guess(dev) == task
    scores = evaluate(dev, dev)
    assert scores[MAIN[task]]["f1"] == 1.0 and scores[MAIN[task]]["n_gold"] > 0


@pytest.mark.slow
@pytest.mark.parametrize(("task", "floor"), [("entity", 0.95), ("relation", 0.90)])
def test_sample_config_reaches_its_f1_and_the_api_returns_typed_records(
    tmp_path: Path, task: str, floor: float
) -> None:
    """The README's promise for each task's embedded default."""
    best = train(task, tmp_path / "run")
    assert best[MAIN[task]]["f1"] >= floor
    model = GPLinker.from_pretrained(tmp_path / "run/best", device="cpu")
    text = json.loads(SAMPLES[task][1].read_text(encoding="utf-8").splitlines()[0])["text"]
    (found,) = model.extract([text])
    kind = Entity if task == "entity" else Triple
    assert found and all(isinstance(r, kind) for r in found)
    for r in found:
        spans = [r] if task == "entity" else [r.subject, r.object]
        assert all(text[s.start : s.start + len(s.text)] == s.text for s in spans)
    if task == "entity":
        nested = best["nested"]
        assert nested["n_gold"] > 0 and nested["f1"] >= floor - 0.05
