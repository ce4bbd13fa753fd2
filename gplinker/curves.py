"""Learning curves: train loss and dev F1 of one or more runs, per epoch or per wall minute.

A run is read from its folder (`metrics.jsonl`, one row per epoch, written by `train`) or
from a results file made by `scripts/collect_result.py` (its "evaluations" list), so
curves survive after the run folder and its model weights are deleted. Only the standard
library is imported at module level: matplotlib loads inside `plot_curves`, and
`gplinker --help` stays fast.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from gplinker.errors import GPLinkerError, InputError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

XAxis = Literal["epoch", "minutes"]
X_LABELS = {"epoch": "epoch", "minutes": "wall clock (minutes since training began)"}
# one line style per metric; each task's main metric solid (entities, triples, events)
F1_STYLES = {
    "event": "-",
    "argument": "--",
    "trigger": ":",
    "entity": "-",
    "nested": "--",
    "triple": "-",
}


@dataclass(frozen=True)
class Curve:
    """One run's rows, as written by `train` into metrics.jsonl."""

    label: str
    rows: list[dict]
    source: Path


def load_curve(path: Path, label: str | None = None) -> Curve:
    """Rows of a run folder's metrics.jsonl, or of a results JSON's "evaluations" list."""
    path = Path(path)
    if path.is_dir():
        metrics = path / "metrics.jsonl"
        if not metrics.is_file():
            raise InputError(
                "no metrics.jsonl here: not a run folder of `gplinker train`", path=path
            )
        rows = []
        for n, line in enumerate(_read(metrics).splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise InputError(f"not JSON: {e.msg}", path=metrics, line=n) from None
        name, source = path.name, metrics
    elif path.is_file():
        try:
            data = json.loads(_read(path))
        except json.JSONDecodeError as e:
            raise InputError(f"not JSON: {e.msg}", path=path, line=e.lineno) from None
        if not isinstance(data, dict) or not isinstance(data.get("evaluations"), list):
            raise InputError(
                'no "evaluations" list: not a results file of scripts/collect_result.py',
                path=path,
            )
        rows, name, source = data["evaluations"], str(data.get("name") or path.stem), path
    else:
        raise InputError("no such run folder or results file", path=path)
    if not rows:
        raise InputError("no metrics yet (no epoch has finished)", path=source)
    for n, row in enumerate(rows, 1):
        missing = {"epoch", "minutes"} - set(row) if isinstance(row, dict) else {"epoch"}
        if missing:
            raise InputError(f"evaluation {n} lacks {', '.join(sorted(missing))}", path=source)
    return Curve(label or name, rows, source)


def curves_figure(
    runs: Sequence[Path], *, x: XAxis = "epoch", labels: Sequence[str] | None = None
) -> Figure:
    """The figure `plot_curves` saves: loss, the task's F1 (event/argument/trigger, entity
    and nested, or triple) and, for events, the official F1, side by side; every run gets
    one colour in all three panels."""
    if x not in X_LABELS:
        raise GPLinkerError(f"x axis is 'epoch' or 'minutes', got {x!r}")
    if not runs:
        raise GPLinkerError("no runs to plot")
    if labels is not None and len(labels) != len(runs):
        raise GPLinkerError(f"{len(labels)} labels for {len(runs)} runs")
    curves = [load_curve(run, None if labels is None else labels[i]) for i, run in enumerate(runs)]

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    fig = Figure(figsize=(16, 4.8), layout="constrained")
    FigureCanvasAgg(fig)  # Agg: renders without a display, whatever the default backend is
    loss_ax, f1_ax, official_ax = fig.subplots(1, 3)
    colours = [f"C{i % 10}" for i in range(len(curves))]
    for curve, colour in zip(curves, colours, strict=True):
        xs = [row[x] for row in curve.rows]
        _line(loss_ax, xs, [row.get("train_loss") for row in curve.rows], colour, curve.label)
        for metric, style in F1_STYLES.items():
            f1 = [_f1(row, metric) for row in curve.rows]
            _line(f1_ax, xs, f1, colour, f"{curve.label} {metric}", linestyle=style)
        _line(official_ax, xs, [_f1(row, "official") for row in curve.rows], colour, curve.label)

    loss_ax.set_title("train loss (mean over the epoch's steps)")
    loss_ax.set_yscale("log")  # the first epoch's loss is tens of times the last one's
    drawn = [m for m in F1_STYLES if any(_f1(r, m) is not None for c in curves for r in c.rows)]
    f1_ax.set_title("dev F1: " + ", ".join(drawn or ["none yet"]))
    official_ax.set_title("dev official F1 (LIC2020 / DuEE, character level)")
    for ax in (f1_ax, official_ax):
        ax.set_ylim(0, 1)
        ax.set_ylabel("F1")
    loss_ax.set_ylabel("loss")
    for ax in (loss_ax, f1_ax, official_ax):
        ax.set_xlabel(X_LABELS[x])
        ax.grid(alpha=0.3)
    styles = [Line2D([], [], color="grey", linestyle=F1_STYLES[m], label=m) for m in drawn]
    f1_ax.legend(handles=styles, fontsize="small", loc="best")  # colours: the other legends
    for ax in (loss_ax, official_ax):
        if ax.lines:  # a run without dev data draws no official F1
            ax.legend(fontsize="small", loc="best")
    return fig


def plot_curves(
    runs: Sequence[Path],
    output: Path,
    *,
    x: XAxis = "epoch",
    labels: Sequence[str] | None = None,
) -> Path:
    """Draw the runs' learning curves into one PNG (parent folders made); returns its path."""
    fig = curves_figure(runs, x=x, labels=labels)
    output = Path(output)
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(output, format="png", dpi=110)
    except OSError as e:
        raise InputError(f"cannot write the plot: {e.strerror or e}", path=output) from e
    return output


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read: {e}", path=path) from e


def _f1(row: dict, metric: str) -> float | None:
    """A row's F1 for one metric; None when the run had no dev set (nothing is drawn)."""
    value = row.get(metric)
    return value.get("f1") if isinstance(value, dict) else None


def _line(ax, xs: list, ys: list, colour: str, label: str, linestyle: str = "-") -> None:
    """Plot only the points that exist, so a run without dev data still shows its loss."""
    points = [(a, b) for a, b in zip(xs, ys, strict=True) if b is not None]
    if points:
        px, py = zip(*points, strict=True)
        ax.plot(px, py, color=colour, linestyle=linestyle, marker="o", markersize=3, label=label)
