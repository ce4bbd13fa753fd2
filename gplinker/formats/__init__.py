"""Annotation tools' files: doccano and Label Studio exports into our JSONL (`convert_file`,
`gplinker convert`), and our predictions into files the tools import as pre-annotations
(`converted` + `writer`, `gplinker predict --format`), so annotators correct the model's
output instead of starting from nothing.

Both tools annotate labelled spans and labelled relations between them; the tasks map
onto that in one way (`mapping.py`):
- entity: a span is an entity, its label the type;
- relation: a relation is a triple, from the subject span to the object span, labelled
  with the predicate; the spans' labels are the subject and object types;
- event, as PaddleNLP UIE's doccano.py: a span labelled ``{event_type}触发词`` (e.g.
  ``地震触发词``) is an event's trigger, and each relation from it is an argument, labelled
  with the role, to the argument's span (whose own label is free; we write the role).

Nothing is dropped silently: a span whose text does not match its offsets, a relation to
a missing id, a malformed or ambiguous annotation is an InputError naming file:line
(doccano) or the file and task (Label Studio); what is well-formed but has no place in the
task's format (spans in no relation, a task's further annotations, duplicates) is counted
in the summary. Offsets: doccano counts UTF-16 code units, Label Studio code points (see
each module); both are read and written as such.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from gplinker.data.reader import write_jsonl
from gplinker.formats import doccano, label_studio
from gplinker.formats.mapping import RECORDS, Offsets, Tally, describe, to_row

Tool = Literal["doccano", "label-studio"]
OutputFormat = Literal["jsonl", "doccano", "label-studio"]
TOOLS = ("doccano", "label-studio")
OUTPUT_FORMATS = ("jsonl", *TOOLS)
Writer = Callable[[str | Path, Iterable[dict]], int]


@dataclass(frozen=True)
class ConvertSummary:
    tool: str
    task: str
    read: int  # lines (doccano) or tasks (Label Studio) of the export
    written: int  # rows of our JSONL
    records: dict[str, int]  # "entities", "relations", "events", "arguments" -> count
    skipped: list[tuple[str, int]]  # why -> how many, most first
    output: str

    def __str__(self) -> str:
        unit = "lines" if self.tool == "doccano" else "tasks"
        counts = ", ".join(f"{n} {what}" for what, n in self.records.items())
        out = f"converted {self.read} {unit} into {self.written} texts, {counts}"
        return f"{out}; left out: {describe(self.skipped)}" if self.skipped else out


def convert_file(
    input: str | Path,
    output: str | Path,
    *,
    tool: Tool,
    task: str,
    offsets: Offsets | None = None,
) -> ConvertSummary:
    """A doccano JSONL or Label Studio JSON export -> our JSONL of `task` ("-" = stdout),
    written atomically; ids kept (doccano's line id, else line-N; Label Studio's data.id
    or task id). `offsets`: how the export counts characters (default: the tool's way)."""
    if task not in RECORDS:
        raise ValueError(f"task should be one of {', '.join(RECORDS)}, got {task!r}")
    tally = Tally(task)
    if tool == "doccano":
        texts = doccano.read_export(input, task, tally, offsets=offsets or "utf-16")
    elif tool == "label-studio":
        texts = label_studio.read_export(input, task, tally, offsets=offsets or "code-points")
    else:
        raise ValueError(f"tool should be one of {', '.join(TOOLS)}, got {tool!r}")
    written = write_jsonl(output, (to_row(task, ann, tally) for ann in texts))
    return ConvertSummary(
        tool,
        task,
        tally.read,
        written,
        dict(tally.records),
        tally.skipped.most_common(),
        str(output),
    )


def converted(rows: Iterable[dict], format: OutputFormat, task: str) -> Iterable[dict]:
    """`predict`'s rows in an output format: as they are (jsonl), doccano's lines or
    Label Studio's tasks."""
    if format == "doccano":
        return doccano.to_doccano(rows, task)
    if format == "label-studio":
        return label_studio.to_tasks(rows, task)
    return rows


def writer(format: OutputFormat) -> Writer:
    """How a file of the format is written: JSONL, or Label Studio's one JSON list."""
    return label_studio.write_tasks if format == "label-studio" else write_jsonl
