"""Turn a run folder into one results file, results/NAME.json, that outlives the folder.

    python scripts/collect_result.py runs/duee --name duee --config-file configs/duee.yaml \\
        --eval runs/duee/dev.eval.json [--comparison optimizer --baseline] [--note TEXT] \\
        [--lever TEXT --previous NAME]

A run folder holds gigabytes of model weights; what docs/results.md and `gplinker plot`
need is small: run.json (command, commit, device, wall time, best epoch), config.yaml (the
resolved config), metrics.jsonl (one row per epoch) and the train.log lines counting gold
spans that cannot be labels. `scripts/results_table.py` renders the results files.

Keys written: name, task, comparison, baseline, note, lever, previous, config_file, run_dir,
run_json (whether the folder had a run.json), command, git_commit, device, torch_threads,
n_params, wall_minutes, steps, epochs, best_epoch, best, train_samples_per_s, drops, config,
evaluations, dev_prediction. Without run.json, best is the row with the highest F1 of the
task's main metric (as `train` keeps best/), wall_minutes the last row's minutes, steps its
step; n_params and device then come from train.log when it has them.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
RUN_KEYS = ("command", "git_commit", "device", "torch_threads", "wall_minutes", "steps")
DROP_MARK = "cannot be labels"
MAIN_METRIC = {"event": "event", "entity": "entity", "relation": "triple"}  # keeps best/
# train() logs "... heads argu(282), ..., 8.87M parameters, device cpu" at its start
PARAMS_LINE = re.compile(r"([\d.]+)M parameters, device (\S+)")


class CollectError(Exception):
    """A run folder or file the collector cannot use; main() prints it as one line."""


def collect(
    run_dir: Path,
    name: str,
    *,
    comparison: str | None = None,
    baseline: bool = False,
    note: str | None = None,
    lever: str | None = None,
    previous: str | None = None,
    eval_file: Path | None = None,
    config_file: str | None = None,
) -> dict:
    """The results record of one run folder (see the module docstring for the keys)."""
    run_dir = Path(run_dir)
    metrics = run_dir / "metrics.jsonl"
    if not metrics.is_file():
        raise CollectError(f"{run_dir}: no metrics.jsonl (not a run folder of `gplinker train`)")
    rows = []
    for n, line in enumerate(_read(metrics).splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise CollectError(f"{metrics}:{n}: not JSON: {e.msg}") from None
    if not rows:
        raise CollectError(f"{metrics}: empty (no epoch has finished)")
    config_path = run_dir / "config.yaml"
    config = yaml.safe_load(_read(config_path)) if config_path.is_file() else {}
    run_json = run_dir / "run.json"
    run = json.loads(_read(run_json)) if run_json.is_file() else {}
    log = run_dir / "train.log"
    log_lines = _read(log).splitlines() if log.is_file() else []

    task = (config or {}).get("task", "event")
    main = MAIN_METRIC.get(task, "event")
    scored = [r for r in rows if isinstance(r.get(main), dict)]
    best_row = max(scored, key=lambda r: r[main]["f1"]) if scored else None  # first wins ties
    found = next((m for line in log_lines if (m := PARAMS_LINE.search(line))), None)
    speeds = [r["train_samples_per_s"] for r in rows if "train_samples_per_s" in r]
    record: dict = {
        "name": name,
        "task": task,
        "comparison": comparison,
        "baseline": baseline,
        "note": note,
        "lever": lever,
        "previous": previous,
        "config_file": config_file,
        "run_dir": str(run_dir),
        "run_json": bool(run),
        **{key: run.get(key) for key in RUN_KEYS},
        "n_params": run.get("n_params"),
        "epochs": len(rows),
        "best_epoch": run.get("best_epoch"),
        "best": run.get("best"),
    }
    if not run:
        record["wall_minutes"] = rows[-1].get("minutes")
        record["steps"] = rows[-1].get("step")
        record["best_epoch"] = best_row["epoch"] if best_row else None
        record["best"] = (
            {k: v for k, v in best_row.items() if isinstance(v, dict) and "f1" in v}
            if best_row
            else None
        )
    if record["device"] is None and found:
        record["device"] = found.group(2)
    if record["n_params"] is None and found:  # logged rounded to 10k parameters
        record["n_params"] = round(float(found.group(1)) * 1e6)
    record.update({k: v for k, v in run.items() if k not in record})  # fields added later
    record["train_samples_per_s"] = sum(speeds) / len(speeds) if speeds else None
    record["drops"] = [
        line.split("gplinker.training: ", 1)[-1].split(" (e.g.")[0]
        for line in log_lines
        if DROP_MARK in line
    ]
    record["config"] = config
    record["evaluations"] = rows
    record["dev_prediction"] = json.loads(_read(eval_file)) if eval_file else None
    return record


def _read(path: Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise CollectError(f"{path}: cannot read: {e}") from e


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path, help="run folder of `gplinker train`")
    ap.add_argument("--name", required=True, help="results/NAME.json; the run's name in tables")
    ap.add_argument("--comparison", help="group name: runs sharing it are tabled as arms")
    ap.add_argument("--baseline", action="store_true", help="this arm is the group's baseline")
    ap.add_argument("--note", help="one line shown with the run in docs/results.md")
    ap.add_argument("--lever", help="what this run changes, for the table of levers")
    ap.add_argument(
        "--previous", help="NAME of the result the lever is measured against (the old default)"
    )
    ap.add_argument(
        "--eval", type=Path, dest="eval_file", help="output of `gplinker evaluate --json`"
    )
    ap.add_argument("--config-file", help="the recipe the run was trained from")
    ap.add_argument(
        "--output", type=Path, help="file to write (default: results/NAME.json in the repo)"
    )
    args = ap.parse_args(argv)
    if not re.fullmatch(r"[\w.+-]+", args.name):
        ap.error(f"--name must be a plain file name (letters, digits, . _ + -), got {args.name!r}")
    try:
        record = collect(
            args.run_dir,
            args.name,
            comparison=args.comparison,
            baseline=args.baseline,
            note=args.note,
            lever=args.lever,
            previous=args.previous,
            eval_file=args.eval_file,
            config_file=args.config_file,
        )
    except (CollectError, json.JSONDecodeError, yaml.YAMLError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = args.output or ROOT / "results" / f"{args.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
