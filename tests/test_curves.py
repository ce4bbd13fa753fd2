"""curves.py and `gplinker plot`: learning curves from run folders and results files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gplinker.cli import app
from gplinker.curves import curves_figure, load_curve, plot_curves
from gplinker.errors import GPLinkerError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
runner = CliRunner()


def _row(epoch: int, minutes: float, f1: float) -> dict:
    prf = {"precision": f1, "recall": f1, "f1": f1, "n_pred": 10, "n_gold": 10}
    return {
        "epoch": epoch,
        "step": 10 * epoch,
        "train_loss": 100.0 / epoch,
        "train_samples_per_s": 50.0,
        "eval_seconds": 1.0,
        "event": prf,
        "argument": {**prf, "f1": f1 + 0.1},
        "trigger": {**prf, "f1": f1 + 0.2},
        "official": {**prf, "f1": f1 + 0.3},
        "minutes": minutes,
    }


ROWS = [_row(1, 2.5, 0.1), _row(2, 5.5, 0.2), _row(3, 9.0, 0.3)]


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    run = tmp_path / "my-run"
    run.mkdir()
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    return run


@pytest.fixture
def results_json(tmp_path: Path) -> Path:
    path = tmp_path / "file-stem.json"
    rows = [_row(1, 4.0, 0.05), _row(2, 8.0, 0.15)]
    path.write_text(json.dumps({"name": "from-json", "evaluations": rows}), encoding="utf-8")
    return path


def _assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) > 1000


def test_a_run_folder_and_a_results_file_plot_into_one_png(
    tmp_path: Path, run_dir: Path, results_json: Path
) -> None:
    out = plot_curves([run_dir, results_json], tmp_path / "sub" / "curves.png")
    assert out == tmp_path / "sub" / "curves.png"
    _assert_png(out)
    _assert_png(plot_curves([results_json], tmp_path / "one.png", x="minutes"))


@pytest.mark.parametrize(
    ("x", "run_x", "json_x"), [("epoch", [1, 2, 3], [1, 2]), ("minutes", [2.5, 5.5, 9.0], [4, 8])]
)
def test_x_axis_is_epoch_or_minutes_in_every_panel(
    run_dir: Path, results_json: Path, x: str, run_x: list, json_x: list
) -> None:
    fig = curves_figure([run_dir, results_json], x=x)
    loss, f1, official = fig.axes
    for ax in (loss, official):
        assert [list(line.get_xdata()) for line in ax.lines] == [run_x, json_x]
        assert ax.get_xlabel().startswith("epoch" if x == "epoch" else "wall clock")
    assert len(f1.lines) == 2 * 3  # event, argument, trigger per run
    assert list(loss.lines[0].get_ydata()) == [r["train_loss"] for r in ROWS]
    assert list(official.lines[1].get_ydata()) == pytest.approx([0.35, 0.45])
    assert list(f1.lines[1].get_ydata()) == pytest.approx([0.2, 0.3, 0.4])  # run 1 argument


def test_each_run_has_one_colour_and_its_label_in_the_legend(
    run_dir: Path, results_json: Path
) -> None:
    loss, f1, _ = curves_figure([run_dir, results_json]).axes
    assert [t.get_text() for t in loss.get_legend().get_texts()] == ["my-run", "from-json"]
    first, second = (
        {line.get_color() for line in f1.lines[:3]},
        {line.get_color() for line in f1.lines[3:]},
    )
    assert len(first) == len(second) == 1 and first != second
    assert loss.lines[0].get_color() in first

    relabelled = curves_figure([run_dir, results_json], labels=["a", "b"]).axes[0]
    assert [t.get_text() for t in relabelled.get_legend().get_texts()] == ["a", "b"]


def test_rows_without_dev_metrics_still_draw_the_loss(tmp_path: Path) -> None:
    run = tmp_path / "nodev"
    run.mkdir()
    rows = [{"epoch": e, "step": e, "train_loss": 1.0 / e, "minutes": e} for e in (1, 2)]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    loss, f1, official = curves_figure([run]).axes
    assert len(loss.lines) == 1 and not f1.lines and not official.lines


def test_a_folder_without_metrics_is_a_clear_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(GPLinkerError, match=r"empty: no metrics\.jsonl here"):
        plot_curves([empty], tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_empty_metrics_missing_paths_and_foreign_json_are_errors(tmp_path: Path) -> None:
    run = tmp_path / "fresh"
    run.mkdir()
    (run / "metrics.jsonl").write_text("")
    with pytest.raises(GPLinkerError, match="no metrics yet"):
        load_curve(run)
    with pytest.raises(GPLinkerError, match="no such run folder"):
        load_curve(tmp_path / "nowhere")
    other = tmp_path / "other.json"
    other.write_text('{"event": 1}')
    with pytest.raises(GPLinkerError, match='no "evaluations" list'):
        load_curve(other)
    (run / "metrics.jsonl").write_text('{"epoch": 1, "minutes": 1}\n{oops\n')
    with pytest.raises(GPLinkerError, match=r"metrics\.jsonl:2: not JSON"):
        load_curve(run)


def test_bad_arguments_are_errors(run_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(GPLinkerError, match="'epoch' or 'minutes'"):
        curves_figure([run_dir], x="steps")  # type: ignore[arg-type]
    with pytest.raises(GPLinkerError, match="1 labels for 2 runs"):
        curves_figure([run_dir, run_dir], labels=["a"])


def test_cli_plot_writes_a_png(run_dir: Path, results_json: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli.png"
    result = runner.invoke(
        app, ["plot", str(run_dir), str(results_json), "-o", str(out), "--x", "minutes"]
    )
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.stdout
    _assert_png(out)


def test_cli_plot_errors_are_one_line_and_exit_2(tmp_path: Path, run_dir: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(app, ["plot", str(empty), "-o", str(tmp_path / "x.png")])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {empty}: no metrics.jsonl here")
    assert "Traceback" not in result.output

    result = runner.invoke(app, ["plot", str(run_dir), "--x", "steps"])
    assert result.exit_code == 2
    assert "steps" in result.stderr
