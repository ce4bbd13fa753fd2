"""End to end through the CLI, in-process: train -> predict -> evaluate on data/sample."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ROOT, SAMPLE, TINY_ENCODER
from typer.testing import CliRunner

from gplinker.cli import app

runner = CliRunner()
DEV = SAMPLE / "dev.json"


def _tiny_overrides(out: Path, epochs: int) -> list[str]:
    shape = ",".join(f"{k}: {v}" for k, v in TINY_ENCODER.items())
    return [
        f"output_dir={out}",
        f"train.epochs={epochs}",
        "data.max_length=64",
        f"model.encoder_overrides={{{shape}}}",
        "model.head_size=16",
    ]


def _train(out: Path, *overrides: str) -> None:
    result = runner.invoke(
        app, ["train", "--config", str(ROOT / "configs/sample.yaml"), *overrides]
    )
    assert result.exit_code == 0, result.output


def test_train_predict_evaluate_keeps_one_line_per_input_in_order(tmp_path: Path) -> None:
    _train(tmp_path / "run", *_tiny_overrides(tmp_path / "run", epochs=2))
    run = tmp_path / "run"
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert {"event", "argument", "trigger", "official"} <= set(rows[0])
    assert (run / "config.yaml").exists() and (run / "train.log").exists()
    for folder in (run / "best", run / "last"):
        names = {p.name for p in folder.iterdir()}
        assert {"config.json", "model.safetensors", "schema.json", "tokenizer.json"} <= names

    pred = tmp_path / "pred.json"
    result = runner.invoke(
        app, ["predict", "--model", str(run / "best"), "--input", str(DEV), "--output", str(pred)]
    )
    assert result.exit_code == 0, result.output
    gold = [json.loads(line) for line in DEV.read_text(encoding="utf-8").splitlines()]
    out = [json.loads(line) for line in pred.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in out] == [r["id"] for r in gold]
    assert all(isinstance(r["event_list"], list) for r in out)

    result = runner.invoke(app, ["evaluate", "--gold", str(DEV), "--pred", str(pred), "--json"])
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)
    assert set(scores) == {"event", "argument", "trigger", "official"}
    assert scores["trigger"]["n_gold"] == sum(len(r["event_list"]) for r in gold)


def test_evaluate_gold_against_itself_is_perfect() -> None:
    result = runner.invoke(app, ["evaluate", "--gold", str(DEV), "--pred", str(DEV)])
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line.split() for line in result.stdout.splitlines()[1:]}
    assert {name: lines[name][3] for name in lines} == dict.fromkeys(
        ("event", "argument", "trigger", "official"), "1.0000"
    )


def test_a_bad_config_value_is_one_error_line_with_file_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("data:\n  schema_file: x.json\ntrain:\n  lr: fast\n", encoding="utf-8")
    result = runner.invoke(app, ["train", "--config", str(bad)])
    assert result.exit_code == 2
    assert f"error: {bad}:4: train.lr:" in result.stderr
    assert "Traceback" not in result.output


def test_an_unknown_override_suggests_the_nearest_key(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["train", "--config", str(ROOT / "configs/sample.yaml"), "train.epoch=3"]
    )
    assert result.exit_code == 2
    assert "train.epoch: unknown key; did you mean 'epochs'?" in result.stderr


def test_predict_on_a_missing_model_folder_is_a_clear_error(tmp_path: Path) -> None:
    args = ["predict", "--model", str(tmp_path / "nope"), "--input", str(DEV), "--output", "-"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "no such model folder" in result.stderr


def test_help_explains_each_command() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("train", "predict", "evaluate"):
        assert command in result.stdout


@pytest.mark.slow
def test_sample_config_reaches_event_f1_090(tmp_path: Path) -> None:
    """The README's promise for the embedded default (about a minute and a half here)."""
    _train(tmp_path / "run", f"output_dir={tmp_path / 'run'}")
    rows = [json.loads(line) for line in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    assert max(r["event"]["f1"] for r in rows) >= 0.90
