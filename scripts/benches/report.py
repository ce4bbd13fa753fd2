"""A result as markdown (machine, data, the table, the task axis, verdicts, details) and
the generated block of docs/performance.md, rewritten from benchmarks/*.json."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from benches.plan import (
    BARE,
    COLLATE,
    DATA,
    DENSE,
    E2E,
    EFFICIENT,
    ENCODER_FWD,
    MB,
    ORIGINAL,
    PREDICT_FWD,
    ROOT,
    STEP,
)
from benches.scaling import LABELS_AT
from benches.targets import TARGETS, TASK_TARGETS, Target, targets_for

DOC = ROOT / "docs" / "performance.md"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
NONE = "—"
HEADER = ["figure", "size", "measured", "reference", "ratio", "target"]


def fmt(x: float) -> str:
    """Three significant figures, no exponent."""
    if x == 0 or not math.isfinite(x):
        return str(x)
    return f"{x:,.{max(0, 2 - math.floor(math.log10(abs(x))))}f}"


def row(figure: str, measured: str, reference: str = NONE, ratio: float | None = None) -> list:
    return [figure, measured, reference, NONE if ratio is None else fmt(ratio)]


def verdict(bench: str, size: str, result: dict, found: tuple[Target, ...] = TARGETS) -> str:
    targets = targets_for(bench, size, found)
    return "; ".join(f"{t.text()} {'met' if t.met(result) else 'MISSED'}" for t in targets)


def step_rows(size: str, r: dict) -> list[list[str]]:
    ref, ms = f"{BARE} {fmt(r['ms'][BARE])} ms", r["ms"]
    rows = [row(f"training step: {v}", f"{fmt(ms[v])} ms", ref, r["ratio"][v]) for v in ms]
    return [[*x, verdict("step", size, r) if x[0].endswith(f": {STEP}") else ""] for x in rows[1:]]


def data_rows(size: str, r: dict) -> list[list[str]]:
    ref, ms = f"step {fmt(r['ms'][STEP])} ms", r["ms"]
    rows = [
        row(f"data path: {v} per batch", f"{fmt(ms[v])} ms", ref, r["ratio"][v])
        for v in (DATA, COLLATE)
    ]
    rows.append(
        row("stall share: train() (collate in its loop)", f"{r['train_loop_stall_share']:.1%}")
    )
    out = [[*x, ""] for x in rows]
    for x in r["loader"]:
        figure = f"stall share: on the fly, DataLoader workers={x['workers']}"
        target = verdict("data", size, r) if x["workers"] else ""
        out.append([*row(figure, f"{x['stall_share']:.1%}"), target])
    return out


def predict_rows(size: str, r: dict) -> list[list[str]]:
    rate = r["sentences_per_s"]
    ref = f"{ENCODER_FWD} {fmt(rate[ENCODER_FWD])} sentences/s"
    measured = f"{fmt(rate[E2E])} sentences/s"
    figure = row("prediction e2e: predict_file", measured, ref, r["ratio"][E2E])
    return [[*figure, verdict("predict", size, r)]]


def decode_rows(size: str, r: dict) -> list[list[str]]:
    ref = f"{r['reference']} {fmt(r['encoder_ms_per_sentence'])} ms"
    typical, worst, cap = r["trained_like"], r["untrained"], r["bound"]
    bound = f"≤ {cap['max_candidates']} spans, ≤ {cap['max_events_per_type']} cliques a type"
    rows = [
        row(
            "decoding, trained-like: median a sentence",
            f"{fmt(typical['median_ms'])} ms",
            ref,
            r["ratio"]["trained-like median"],
        ),
        row("decoding, trained-like: p99 a sentence", f"{fmt(typical['p99_ms'])} ms"),
        row(
            f"decoding, untrained: worst sentence ({bound})",
            f"{fmt(worst['max_ms'])} ms",
            ref,
            r["ratio"]["untrained worst"],
        ),
    ]
    return [[*x, ""] for x in rows]


def memory_rows(size: str, r: dict) -> list[list[str]]:
    peak, shape = r["peak_rss_mb"], f"B={r['batch_size']}, L={r['padded_length']}, H={r['labels']}"
    rows = [
        row(
            f"peak RSS: {v} ({shape})",
            f"{fmt(peak[v])} MB",
            f"{BARE} {fmt(peak[BARE])} MB",
            r["ratio"][v],
        )
        for v in (STEP, DENSE)
    ]
    labels = r["label_bytes"]
    dense = f"dense float32 {fmt(labels['dense float32'] / MB)} MB"
    sparse = f"{fmt(labels['sparse'] / 1024)} KiB"
    rows.append(row("label tensors of that batch", sparse, dense, r["label_ratio"]))
    return [[*x, ""] for x in rows]


def scaling_rows(size: str, r: dict) -> list[list[str]]:
    lengths, labels = sorted(r["by_length"], key=int), sorted(r["by_labels"], key=int)
    span, per_label = f"L={lengths[0]}…{lengths[-1]}", r["fit_labels"]

    def ratios(kind: str) -> str:
        return " → ".join(fmt(r["by_length"][L]["ratio"][kind]) for L in lengths)

    extra = [fmt(per_label[k]["ms_per_label"]) for k in ("step extra", "predict extra")]
    growth = ", ".join(
        f"{k} {NONE if v is None else f'{v:.2f}'}" for k, v in r["exponents"].items()
    )
    rows = [
        row(f"step / encoder fwd+bwd, {span}", ratios("step")),
        row(f"{PREDICT_FWD} / encoder forward, {span}", ratios("predict")),
        row(f"exponent of L in ms, {span}", growth),
        row(f"ms per label (H={labels[0]}…{labels[-1]}): step, {PREDICT_FWD}", ", ".join(extra)),
    ]
    return [[*x, ""] for x in rows]


def pointer_rows(size: str, r: dict) -> list[list[str]]:
    params, step, fwd = r["head_params"], r["step"]["ms"], r["predict_forward"]["ms"]
    pairs = [
        (
            "head parameters",
            f"{fmt(params[ORIGINAL] / 1e6)} M",
            f"{fmt(params[EFFICIENT] / 1e6)} M",
        ),
        ("training step", f"{fmt(step[ORIGINAL])} ms", f"{fmt(step[EFFICIENT])} ms"),
        ("model forward", f"{fmt(fwd[ORIGINAL])} ms", f"{fmt(fwd[EFFICIENT])} ms"),
    ]
    ratios = (r["ratio"][k] for k in ("head params", "step", "predict forward"))
    return [
        [*row(f"original GP: {what}", gp, f"EGP {egp}", ratio), ""]
        for (what, gp, egp), ratio in zip(pairs, ratios, strict=True)
    ]


ROWS: dict[str, Callable[[str, dict], list[list[str]]]] = {
    "step": step_rows,
    "data": data_rows,
    "predict": predict_rows,
    "decode": decode_rows,
    "memory": memory_rows,
    "scaling": scaling_rows,
    "pointer": pointer_rows,
}


def markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


def result_table(result: dict) -> str:
    rows = [
        [figure, size, *rest]
        for bench, by_size in result["results"].items()
        for size, r in by_size.items()
        for figure, *rest in ROWS[bench](size, r)
    ]
    return markdown(HEADER, rows)


def by_task(result: dict) -> Iterator[tuple[str, dict, dict]]:
    """(task, data, results) of every task in a result: the events first (at the top
    level, as before tasks existed), then those under "tasks"."""
    yield "event", result["data"], result["results"]
    for task, part in result.get("tasks", {}).items():
        yield task, part["data"], part["results"]


def task_table(result: dict) -> str:
    """One row per task and size: the step and prediction ratios and the task axis's
    targets (the events' own, stricter ones are in the table above)."""
    rows, sources = [], []
    for task, data, results in by_task(result):
        steps, predicts = results.get("step", {}), results.get("predict", {})
        if not steps and not predicts:
            continue
        sources.append(f"{task}: {data['source']}, {data['labels']} labels")
        for size in dict.fromkeys([*steps, *predicts]):
            cells = [
                axis_cells(b, size, r.get(size))
                for b, r in (("step", steps), ("predict", predicts))
            ]
            rows.append([task, size, *cells[0], *cells[1]])
    header = [
        "task",
        "size",
        "step / encoder fwd+bwd",
        "target",
        "e2e / encoder forward (sentences/s)",
        "target",
    ]
    return (
        "Task axis: the training step and prediction for every task (the other benchmarks "
        "run on events only). Data: " + "; ".join(sources) + ".\n\n" + markdown(header, rows)
    )


def axis_cells(bench: str, size: str, r: dict | None) -> list[str]:
    if r is None:
        return [NONE, NONE]
    [target] = targets_for(bench, size, TASK_TARGETS)
    return [fmt(target.value(r)), verdict(bench, size, r, TASK_TARGETS)]


def render(result: dict) -> str:
    """One result as markdown: machine, data, the table, the task axis, verdicts,
    details, profiles."""
    m, d = result["machine"], result["data"]
    where = (
        f"{m['date']}, {m['cpu']} ({m['cores_usable']} cores, {m['torch_threads']} torch "
        f"threads), device {m['device']}, bf16 {result['settings']['bf16']}, torch {m['torch']}, "
        f"transformers {m['transformers']}, commit {(m['git_commit'] or '?')[:10]} + "
        f"{m['git_changed_files']} changed files, load average "
        f"{m['load_average_start'][0]:.1f} → {m['load_average_end'][0]:.1f}, "
        f"{result['wall_seconds'] / 60:.1f} minutes. Data: {d['source']}, {d['labels']} labels."
    )
    heading = f"### `benchmarks/{result['name']}.json`"
    axis = [task_table(result)] if "tasks" in result else []
    parts = [heading, where, result_table(result), *axis, verdicts(result), *details(result)]
    return "\n\n".join(parts)


def verdicts(result: dict) -> str:
    lines = [
        f"- {t['bench']}, {t['size']}{', ' + t['task'] if 'task' in t else ''}: {t['figure']} "
        f"= {fmt(t['value'])}, target {t['target']}: **{'met' if t['met'] else 'missed'}**"
        for t in result["targets"]
    ]
    return "Targets:\n\n" + "\n".join(lines)


def details(result: dict) -> list[str]:
    """Where prediction time goes, how its scores were made, scaling points, profiles."""
    out = []
    for task, _, found in by_task(result):
        name = "" if task == "event" else f" ({task})"
        out += [predict_detail(f"{size}{name}", r) for size, r in found.get("predict", {}).items()]
    out += [scaling_table(size, r) for size, r in result["results"].get("scaling", {}).items()]
    for task, _, found in by_task(result):
        name = "" if task == "event" else f", {task}"
        for bench, by_size in found.items():
            for size, r in by_size.items():
                if "profile" in r:
                    rows = [
                        [p["name"], fmt(p["self_ms"]), f"{p['share']:.0%}", str(p["calls"])]
                        for p in r["profile"]
                    ]
                    header = [f"profile: {bench}, {size}{name}", "self ms", "share", "calls"]
                    out.append(markdown(header, rows))
    return out


def predict_detail(size: str, r: dict) -> str:
    shares = ", ".join(f"{k} {v:.0%}" for k, v in r["parts"]["share"].items())
    if r["scores"] == "trained":
        scores = f"trained model {r['model']}"
    else:
        scores = f"{r['scores']} ({fmt(r['argument_shift'])})"
    records = r.get("records", "events")  # files from before tasks existed: events
    per_text = fmt(r[f"{records}_per_text"])
    return f"Prediction, {size}: scores of a {scores}, {per_text} {records} a text. Time: {shares}."


def scaling_table(size: str, r: dict) -> str:
    variants = (BARE, STEP, ENCODER_FWD, PREDICT_FWD)
    points = [(f"L={L}, H={r['labels']}", p) for L, p in r["by_length"].items()]
    points += [(f"L={LABELS_AT}, H={H}", p) for H, p in r["by_labels"].items()]
    rows = [[name, *(fmt(p["ms"][v]) for v in variants)] for name, p in points]
    batches = (r["step_batch"], r["step_batch"], r["predict_batch"], r["predict_batch"])
    header = [
        f"scaling, {size}",
        *(f"{v} ms (B={b})" for v, b in zip(variants, batches, strict=True)),
    ]
    return markdown(header, rows)


def write_report(results: Sequence[dict], doc: Path) -> None:
    """Replace the block between BEGIN and END in `doc` with the rendered results."""
    text = doc.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{doc}: no {BEGIN} ... {END} block to rewrite")
    head, rest = text.split(BEGIN, 1)
    body = "\n\n".join(render(r) for r in results)
    note = "<!-- generated by `python scripts/bench.py --report`: do not edit -->"
    doc.write_text(
        f"{head}{BEGIN}\n{note}\n\n{body}\n\n{END}{rest.split(END, 1)[1]}", encoding="utf-8"
    )


def load_results(folder: Path) -> list[dict]:
    """The results files in `folder` made by this script (with "results"), by name."""
    found = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))]
    return [r for r in found if "results" in r]
