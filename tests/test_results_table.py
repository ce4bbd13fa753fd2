"""scripts/collect_result.py (run folder -> results/NAME.json), scripts/results_table.py
(results/*.json -> the generated part of docs/results.md) and the DuEE shell scripts'
error paths."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml
from conftest import ROOT


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


collect_result = _script("collect_result")
results_table = _script("results_table")
METRICS = ("event", "argument", "trigger", "official")


def _prf(f1: float) -> dict:
    return {"precision": f1, "recall": f1, "f1": f1, "n_pred": 5, "n_gold": 5}


def _row(epoch: int, event: float, argument: float, speed: float = 40.0) -> dict:
    return {
        "epoch": epoch,
        "step": 100 * epoch,
        "train_loss": 10.0 / epoch,
        "train_samples_per_s": speed,
        "eval_seconds": 2.0,
        "event": _prf(event),
        "argument": _prf(argument),
        "trigger": _prf(0.7),
        "official": _prf(argument + 0.05),
        "minutes": 3.0 * epoch,
    }


CONFIG = {
    "data": {"train": "t.json", "dev": "d.json", "max_length": 128},
    "model": {
        "encoder": "enc",
        "pretrained": False,
        "model_type": "bert",
        "encoder_overrides": {"num_hidden_layers": 4, "hidden_size": 256},
        "pointer": "efficient",
    },
    "train": {
        "optimizer": "adax",
        "lr": 0.0005,
        "schedule": "linear",
        "warmup_steps": 10,
        "batch_size": 16,
    },
    "output_dir": "runs/base",
}
LOG = (
    "10:00:00 INFO gplinker.training: 10 train / 5 dev texts, 282 labels, 8.87M parameters, "
    "device cpu\n"
    "10:00:01 INFO gplinker.training: train: 3 of 40 gold spans cannot be labels: 1 off token "
    "boundaries, 2 cut by max_length=128 (e.g. a.json:1 r='x'@3)\n"
    "10:00:01 INFO gplinker.training: dev (still counted as gold by the metrics): 1 of 9 gold "
    "spans cannot be labels: 1 off token boundaries, 0 cut by max_length=128\n"
    "10:00:05 INFO gplinker.training: epoch 1 step 50 loss 3.0\n"
)


def _run_folder(path: Path, rows: list[dict], *, run_json: dict | None = None) -> Path:
    path.mkdir(parents=True)
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (path / "config.yaml").write_text(yaml.safe_dump(CONFIG), encoding="utf-8")
    (path / "train.log").write_text(LOG, encoding="utf-8")
    if run_json is not None:
        (path / "run.json").write_text(json.dumps(run_json))
    return path


# --- collect_result.py ------------------------------------------------------------------


def test_collect_without_run_json_takes_the_best_row_by_event_f1(tmp_path: Path) -> None:
    rows = [_row(1, 0.1, 0.3, 30.0), _row(2, 0.3, 0.2, 50.0), _row(3, 0.2, 0.4, 70.0)]
    run = _run_folder(tmp_path / "run", rows)
    evaluation = tmp_path / "dev.eval.json"
    evaluation.write_text(json.dumps({m: _prf(0.5) for m in METRICS}))
    r = collect_result.collect(
        run,
        "arm-a",
        comparison="opt",
        baseline=True,
        note="hello",
        eval_file=evaluation,
        config_file="configs/x.yaml",
    )
    assert (r["name"], r["comparison"], r["baseline"], r["note"]) == ("arm-a", "opt", True, "hello")
    assert r["config_file"] == "configs/x.yaml" and r["run_json"] is False
    assert r["best_epoch"] == 2 and r["best"]["event"]["f1"] == 0.3
    assert r["best"]["argument"]["f1"] == 0.2  # the event-F1 epoch's, not the highest
    assert (r["wall_minutes"], r["steps"], r["epochs"]) == (9.0, 300, 3)
    assert r["train_samples_per_s"] == pytest.approx(50.0)
    assert r["command"] is None and r["git_commit"] is None
    assert (r["device"], r["n_params"]) == ("cpu", 8_870_000)  # from train.log
    assert r["drops"] == [
        "train: 3 of 40 gold spans cannot be labels: 1 off token boundaries, 2 cut by "
        "max_length=128",
        "dev (still counted as gold by the metrics): 1 of 9 gold spans cannot be labels: 1 off "
        "token boundaries, 0 cut by max_length=128",
    ]
    assert r["config"] == CONFIG and r["evaluations"] == rows
    assert r["dev_prediction"]["event"]["f1"] == 0.5


def test_collect_takes_run_json_fields_when_present(tmp_path: Path) -> None:
    meta = {
        "command": "gplinker train --config c.yaml",
        "git_commit": "0123456789abcdef",
        "device": "cuda:0",
        "torch_threads": 8,
        "wall_minutes": 12.5,
        "steps": 999,
        "best_epoch": 1,
        "best": {m: _prf(0.9) for m in METRICS},
        "n_params": 123_456,
    }
    run = _run_folder(tmp_path / "run", [_row(1, 0.1, 0.2), _row(2, 0.3, 0.4)], run_json=meta)
    r = collect_result.collect(run, "x")
    assert {k: r[k] for k in meta} == meta
    assert r["run_json"] is True and r["epochs"] == 2
    assert r["comparison"] is None and r["baseline"] is False and r["dev_prediction"] is None


def test_collect_main_writes_pretty_unicode_json(tmp_path: Path) -> None:
    run = _run_folder(tmp_path / "run", [_row(1, 0.1, 0.2)])
    out = tmp_path / "out" / "n.json"
    assert (
        collect_result.main([str(run), "--name", "n", "--note", "裁员", "--output", str(out)]) == 0
    )
    text = out.read_text(encoding="utf-8")
    assert "裁员" in text and "\n " in text
    assert json.loads(text)["name"] == "n"
    assert collect_result.main([str(tmp_path / "none"), "--name", "n", "--output", str(out)]) == 2


# --- results_table.py ------------------------------------------------------------------


def _result(name: str, event: float, argument: float, **fields) -> dict:
    config = json.loads(json.dumps(CONFIG))
    config["output_dir"] = f"runs/{name}"  # differs in every run; never shown as a difference
    for dotted, value in fields.pop("config", {}).items():
        section, key = dotted.split(".")
        config[section][key] = value
    rows = [_row(1, event / 2, argument / 2), _row(2, event, argument)]
    return {
        "name": name,
        "comparison": None,
        "baseline": False,
        "device": "cpu",
        "git_commit": "abcdef0123456789",
        "wall_minutes": 6.0,
        "epochs": 2,
        "best_epoch": 2,
        "best": {m: rows[1][m] for m in METRICS},
        "train_samples_per_s": 40.0,
        "drops": ["train: 0 of 1 gold spans cannot be labels"],
        "config": config,
        "evaluations": rows,
        **fields,
    }


def _write(folder: Path, *results: dict) -> Path:
    folder.mkdir(exist_ok=True)
    for r in results:
        (folder / f"{r['name']}.json").write_text(json.dumps(r), encoding="utf-8")
    return folder


def _table(text: str, heading: str) -> dict[str, list[str]]:
    """Rows of the first table after a heading, keyed by their first cell."""
    lines = text.split(heading + "\n", 1)[1].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| "))
    rows = {}
    for line in lines[start + 2 :]:  # after the header and the |---| line
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = cells[1:]
    return rows


def test_comparison_table_shows_differing_keys_and_deltas(tmp_path: Path) -> None:
    base = _result("base", 0.20, 0.40, comparison="opt", baseline=True, n_params=2_000_000)
    adamw = _result(
        "adamw", 0.25, 0.46, comparison="opt", config={"train.optimizer": "adamw", "train.lr": 2e-5}
    )
    worse = _result("worse", 0.15, 0.30, comparison="opt", wall_minutes=9.0, epochs=3)
    other = _result("other", 0.5, 0.9)  # no comparison: summary and its own section only
    text = results_table.render(
        results_table.load_results(_write(tmp_path, base, adamw, worse, other))
    )

    table = _table(text, "### Comparison: opt")
    assert list(table) == ["adamw", "base", "worse"]
    diff, params, epochs, minutes, per_epoch, ev, arg, _, _, d_arg, d_ev = table["adamw"]
    assert diff == "`train.lr=2e-05`, `train.optimizer=adamw`"
    assert (ev, arg, d_arg, d_ev) == ("0.250", "0.460", "+0.060", "+0.050")
    assert (params, epochs, minutes, per_epoch) == ("—", "2", "6.0", "3.00")
    assert table["base"][0] == "(baseline)" and table["base"][1] == "2.00M"
    assert table["base"][-2:] == ["+0.000", "+0.000"]
    assert table["worse"][0] == "(none)" and table["worse"][-2:] == ["-0.100", "-0.050"]
    assert table["worse"][4] == "3.00"  # 9 minutes / 3 epochs
    assert "best argument F1: adamw (+0.060 over baseline)" in text
    assert "other" not in table

    summary = _table(text, "### Summary")
    assert list(summary) == ["adamw", "base", "other", "worse"]
    assert summary["other"] == [
        "cpu", "6.0", "2", "2", "0.500", "0.900", "0.700", "0.950", "40.0", "`abcdef01`"
    ]  # fmt: skip
    assert "### other" in text and "- train: 0 of 1 gold spans cannot be labels" in text
    epochs_table = _table(text, "### other")
    assert epochs_table["2"][2].endswith("/ 0.500") and epochs_table["1"][0] == "3.0"


def test_a_group_without_one_baseline_shows_no_deltas(tmp_path: Path) -> None:
    a = _result("a", 0.2, 0.4, comparison="g")
    b = _result("b", 0.3, 0.5, comparison="g", config={"train.lr": 1e-3})
    text = results_table.render(results_table.load_results(_write(tmp_path, a, b)))
    assert "No single baseline arm" in text
    assert _table(text, "### Comparison: g")["b"][-2:] == ["—", "—"]
    assert "best argument F1: b\n" in text + "\n"


DOC = """# Results

Prose before, kept.

<!-- results:begin -->
stale generated text
<!-- results:end -->

## Prose after

Kept too.
"""


def test_main_rewrites_only_between_the_markers_and_check_detects_staleness(
    tmp_path: Path,
) -> None:
    results = _write(tmp_path / "results", _result("only", 0.2, 0.4))
    doc = tmp_path / "results.md"
    doc.write_text(DOC, encoding="utf-8")
    args = ["--results", str(results), "--doc", str(doc)]

    assert results_table.main([*args, "--check"]) == 1
    assert doc.read_text(encoding="utf-8") == DOC  # --check changes nothing
    assert results_table.main(args) == 0
    text = doc.read_text(encoding="utf-8")
    head, rest = text.split("<!-- results:begin -->\n", 1)
    generated, tail = rest.split("<!-- results:end -->\n", 1)
    assert head == DOC.split("<!-- results:begin -->")[0]
    assert tail == "\n## Prose after\n\nKept too.\n"
    assert "stale" not in generated and "### only" in generated
    assert results_table.main([*args, "--check"]) == 0

    _write(results, _result("newer", 0.3, 0.5))
    assert results_table.main([*args, "--check"]) == 1


def test_check_via_subprocess_and_a_document_without_markers(tmp_path: Path) -> None:
    results = _write(tmp_path / "results", _result("only", 0.2, 0.4))
    doc = tmp_path / "results.md"
    doc.write_text("# no markers\n", encoding="utf-8")
    cmd = [sys.executable, str(ROOT / "scripts" / "results_table.py"), "--results", str(results)]
    out = subprocess.run([*cmd, "--doc", str(doc)], capture_output=True, text=True)
    assert out.returncode == 2 and "<!-- results:begin -->" in out.stderr
    doc.write_text(DOC, encoding="utf-8")
    out = subprocess.run([*cmd, "--doc", str(doc), "--check"], capture_output=True, text=True)
    assert out.returncode == 1 and "stale" in out.stderr


def test_committed_results_doc_is_up_to_date() -> None:
    assert results_table.main(["--check"]) == 0


# --- shell scripts: the paths that need no data and no network ---------------------------


def test_reproduce_duee_explains_missing_data_and_arguments(tmp_path: Path) -> None:
    script = str(ROOT / "scripts" / "reproduce_duee.sh")
    out = subprocess.run(["bash", script], capture_output=True, text=True)
    assert out.returncode == 2 and "DATA_DIR MODEL [CONFIG] [NAME]" in out.stderr
    out = subprocess.run(["bash", script, "-h"], capture_output=True, text=True)
    assert out.returncode == 0 and "DATA_DIR MODEL" in out.stdout
    (tmp_path / "duee_train.json").write_text("")
    out = subprocess.run(
        ["bash", script, str(tmp_path), "some/model"], capture_output=True, text=True
    )
    assert out.returncode == 2
    assert "duee_dev.json duee_event_schema.json" in out.stderr
    assert "scripts/get_data.sh duee" in out.stderr


@pytest.mark.parametrize(
    ("dataset", "lacks"),
    [
        ("cluener", "dev.json"),
        ("cmeee", "dev.json schema.json"),
        ("duie", "dev.json all_50_schemas"),
    ],
)
def test_reproduce_names_each_datasets_files(tmp_path: Path, dataset: str, lacks: str) -> None:
    script = str(ROOT / "scripts" / "reproduce.sh")
    (tmp_path / "train.json").write_text("")
    out = subprocess.run(
        ["bash", script, dataset, str(tmp_path), "some/model"], capture_output=True, text=True
    )
    assert out.returncode == 2
    assert f"lacks {lacks}; run: bash scripts/get_data.sh {dataset}" in out.stderr
    out = subprocess.run(
        ["bash", script, "sst2", str(tmp_path), "m"], capture_output=True, text=True
    )
    assert out.returncode == 2 and "DATASET should be duee, cluener, cmeee or duie" in out.stderr


@pytest.mark.parametrize("dataset", ["cluener", "cmeee", "duie"])
def test_get_data_without_the_files_or_the_network_fails_with_one_line(
    tmp_path: Path, dataset: str
) -> None:
    script = str(ROOT / "scripts" / "get_data.sh")
    out = subprocess.run(["bash", script, dataset, str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 1
    assert len(out.stderr.splitlines()) == 1 and "is missing. Get" in out.stderr
    out = subprocess.run(
        ["bash", script, dataset, str(tmp_path)],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "DATA_URL": "http://127.0.0.1:9/nothing"},  # closed port
    )
    assert out.returncode == 1
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: could not download")


def test_get_duee_without_network_fails_with_one_line(tmp_path: Path) -> None:
    out = subprocess.run(
        ["bash", str(ROOT / "scripts" / "get_duee.sh"), str(tmp_path / "duee")],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "DUEE_URL": "http://127.0.0.1:9/nothing"},  # closed port
    )
    assert out.returncode == 1
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: could not download")


def test_levers_table_chains_each_lever_after_the_default_it_was_tried_on(
    tmp_path: Path,
) -> None:
    start = _result("a-start", 0.10, 0.30, lever="starting point")
    # named so that sorting by name would put them in the wrong order
    second = _result("b-second", 0.18, 0.45, lever="vocabulary cut", previous="c-first")
    first = _result("c-first", 0.15, 0.40, lever="AdamW", previous="a-start")
    plain = _result("d-plain", 0.9, 0.9)  # no lever: not in the table
    text = results_table.render(
        results_table.load_results(_write(tmp_path, start, second, first, plain))
    )
    table = _table(text, "### Levers")
    assert list(table) == ["a-start", "c-first", "b-second"]
    lever, against, minutes, epochs, ev, arg, *_, d_ev, d_arg, d_trig = table["b-second"]
    assert (lever, against, minutes, epochs) == ("vocabulary cut", "c-first", "6.0", "2")
    assert (ev, arg, d_ev, d_arg, d_trig) == ("0.180", "0.450", "+0.030", "+0.050", "+0.000")
    assert table["a-start"][1] == "—" and table["a-start"][-3:] == ["—", "—", "—"]
    assert "d-plain" not in table


def test_collect_records_the_lever_and_what_it_is_measured_against(tmp_path: Path) -> None:
    run = _run_folder(tmp_path / "run", [_row(1, 0.1, 0.2)])
    out = tmp_path / "r.json"
    argv = [str(run), "--name", "r", "--lever", "vocab cut", "--previous", "old", "--output"]
    assert collect_result.main([*argv, str(out)]) == 0
    record = json.loads(out.read_text(encoding="utf-8"))
    assert (record["lever"], record["previous"]) == ("vocab cut", "old")


def test_get_data_tokenizer_downloads_from_the_hub_or_a_mirror(tmp_path: Path) -> None:
    """No DATA_URL: the hub is asked (unreachable here: one line); a mirror is used as is."""
    script = str(ROOT / "scripts" / "get_data.sh")
    out = subprocess.run(
        ["bash", script, "tokenizer", str(tmp_path / "tok")],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "DATA_URL": "http://127.0.0.1:9/nothing"},
    )
    assert out.returncode == 1 and out.stderr.startswith("error: could not download")
    assert "http://127.0.0.1:9/nothing/" in out.stderr
    assert (
        "huggingface.co/bert-base-chinese/resolve/main"
        in (ROOT / "scripts/get_data.sh").read_text()
    )
