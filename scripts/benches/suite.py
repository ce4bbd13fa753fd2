"""The whole run: every planned benchmark at every size, the training step and prediction
for every task and the others on events; the result as written to JSON."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import torch

from benches.data_path import bench_data
from benches.decode import bench_decode
from benches.machine import data_info, machine, settings
from benches.memory import bench_memory, memory_in_subprocess
from benches.models import Run
from benches.plan import RECIPE, TASK_AXIS, TASKS, Plan
from benches.pointer import bench_pointer
from benches.predict import bench_predict
from benches.scaling import bench_scaling
from benches.sources import Data
from benches.step import bench_step
from benches.targets import TARGETS, TASK_TARGETS, check_targets
from gplinker.config import load_config

BENCHES: dict[str, Callable[[Run], dict]] = {
    "step": bench_step,
    "data": bench_data,
    "predict": bench_predict,
    "decode": bench_decode,
    "memory": bench_memory,
    "scaling": bench_scaling,
    "pointer": bench_pointer,
}


def run_benchmarks(
    plan: Plan,
    data: Mapping[str, Data],
    sizes: dict[str, dict],
    device: torch.device,
    bf16: bool,
    workdir: Path,
    *,
    name: str,
    only: Sequence[str] = (),
    tasks: Sequence[str] = TASKS,
    memory_runner: Callable[[dict], dict] = memory_in_subprocess,
) -> dict:
    """`data` holds the events (the event-only benchmarks read them) and every task of
    `tasks`. The events' figures stay under "results" and "data", as before tasks
    existed; another task's under "tasks"/NAME, in the same shape."""
    started, machine_info = time.perf_counter(), machine(device)
    if machine_info["load_average_start"][0] > machine_info["cores_usable"] - 0.5:
        print(
            f"  busy machine? load average {machine_info['load_average_start'][0]:.1f} at the "
            "start (other jobs, or a run that just ended): expect noisy figures",
            file=sys.stderr,
        )
    recipe = load_config(RECIPE)
    found: dict[str, dict[str, dict[str, dict]]] = {task: {} for task in data}
    seconds: dict[str, float] = {}  # per benchmark and size, to plan runs
    for size_name, size in sizes.items():
        for task, task_data in data.items():
            run = Run(
                size_name, size, task_data, plan, recipe, device, bf16, workdir, memory_runner
            )
            for bench in planned(plan, size_name, task, only, tasks):
                label = f"{bench} / {size_name}" + ("" if task == "event" else f" / {task}")
                print(f"  {label} ...", file=sys.stderr, flush=True)
                start = time.perf_counter()
                found[task].setdefault(bench, {})[size_name] = BENCHES[bench](run)
                seconds[label] = time.perf_counter() - start
    machine_info["load_average_end"] = os.getloadavg()
    axis = [v for task, r in found.items() for v in check_targets(axis_part(r), TASK_TARGETS, task)]
    return {
        "name": name,
        "machine": machine_info,
        "data": data_info(data["event"]),
        "settings": settings(plan, recipe, sizes, device, bf16, tuple(tasks)),
        "results": found["event"],
        "tasks": {
            task: {"data": data_info(data[task]), "results": r}
            for task, r in found.items()
            if task != "event"
        },
        "targets": check_targets(found["event"], TARGETS) + axis,
        "wall_seconds": time.perf_counter() - started,
        "bench_seconds": seconds,
    }


def planned(
    plan: Plan, size: str, task: str, only: Sequence[str], tasks: Sequence[str]
) -> Iterator[str]:
    """The benchmarks to run at this size for this task: the task axis for each of
    `tasks`, the others for the events."""
    for bench, bench_sizes in plan.benches.items():
        if size not in bench_sizes or (only and bench not in only):
            continue
        wanted = task in tasks if bench in TASK_AXIS else task == "event"
        if wanted:
            yield bench


def axis_part(results: dict[str, dict[str, dict]]) -> dict[str, dict[str, dict]]:
    return {bench: by_size for bench, by_size in results.items() if bench in TASK_AXIS}
