"""Tasks: entity, relation and event extraction, each one module behind `base.Task`.

`get(name)` is the only way in: the trainer and the predictor never import a task by name.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

from gplinker.errors import ConfigError, InputError
from gplinker.tasks.base import Task

TASKS = ("entity", "relation", "event")


def get(name: str) -> Task:
    """The task called `name` ("entity", "relation" or "event")."""
    if name not in TASKS:
        raise ConfigError(f"unknown task {name!r}; known: {', '.join(TASKS)}", key="task")
    return importlib.import_module(f"gplinker.tasks.{name}").TASK


# the key that holds each task's records in its JSONL formats
_KEYS = {"event_list": "event", "spo_list": "relation", "entities": "entity", "label": "entity"}


def guess(path: str | Path, max_lines: int = 100) -> str:
    """The task a JSONL file is in, from the keys of its first lines (`gplinker evaluate`
    without --task): event_list -> event, spo_list -> relation, entities/label -> entity."""
    try:
        with open(path, "rb") as f:
            for _, raw in zip(range(max_lines), f, strict=False):
                try:
                    row = json.loads(raw)
                except ValueError:
                    continue
                if isinstance(row, dict):
                    found = [task for key, task in _KEYS.items() if key in row]
                    if found:
                        return found[0]
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror or e}", path) from e
    raise InputError(
        "cannot tell the task from the first lines (no event_list, spo_list, entities or "
        "label key): give --task",
        path,
    )
