"""The targets (issue 5): each a bound on one figure of one benchmark, and its verdicts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from benches.plan import E2E, STEP


@dataclass(frozen=True)
class Target:
    bench: str
    sizes: tuple[str, ...] | None  # None: every size
    figure: str
    value: Callable[[dict], float]
    at_most: bool  # the value must be <= bound (else >= bound)
    bound: float

    def met(self, result: dict) -> bool:
        v = self.value(result)
        return v <= self.bound if self.at_most else v >= self.bound

    def text(self) -> str:
        return f"{'≤' if self.at_most else '≥'} {self.bound:g}"


def _worker_stall(result: dict) -> float:
    return min(x["stall_share"] for x in result["loader"] if x["workers"] > 0)


def _step_ratio(result: dict) -> float:
    return result["ratio"][STEP]


def _predict_ratio(result: dict) -> float:
    return result["ratio"][E2E]


STEP_FIGURE, PREDICT_FIGURE = "step / encoder fwd+bwd", "e2e sentences/s / encoder's"
# the event's own targets: the benchmarks' table
TARGETS = (
    Target("step", ("tiny",), STEP_FIGURE, _step_ratio, True, 1.25),
    Target("step", ("base",), STEP_FIGURE, _step_ratio, True, 1.10),
    Target("predict", None, PREDICT_FIGURE, _predict_ratio, False, 0.85),
    # "must not stall the step", read as: with workers, waits are at most 5 % of the time
    Target("data", None, "stall share with DataLoader workers", _worker_stall, True, 0.05),
)
# the task axis: every task's step and prediction, the per-task table
TASK_TARGETS = (
    Target("step", None, STEP_FIGURE, _step_ratio, True, 1.3),
    Target("predict", None, PREDICT_FIGURE, _predict_ratio, False, 0.75),
)


def targets_for(bench: str, size: str, found: tuple[Target, ...] = TARGETS) -> list[Target]:
    return [t for t in found if t.bench == bench and (t.sizes is None or size in t.sizes)]


def missed(bench: str, size: str, result: dict, task: str) -> bool:
    """Whether a target of the figure is missed: the event's own (stricter), else the
    task axis's."""
    found = TARGETS if task == "event" else TASK_TARGETS
    return any(not t.met(result) for t in targets_for(bench, size, found))


def check_targets(
    results: dict[str, dict[str, dict]], found: tuple[Target, ...], task: str | None = None
) -> list[dict]:
    """Every verdict of `found` over one task's results, as the JSON keeps them; those of
    the task axis name their task."""
    return [
        {
            **({"task": task} if task else {}),
            "bench": bench,
            "size": size,
            "figure": t.figure,
            "value": t.value(result),
            "target": t.text(),
            "met": t.met(result),
        }
        for bench, by_size in results.items()
        for size, result in by_size.items()
        for t in targets_for(bench, size, found)
    ]
