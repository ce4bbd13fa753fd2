"""Label Studio's JSON: its export into annotated texts, our rows into tasks it imports with
pre-annotations.

The export is one JSON list of tasks ``{"id", "data": {"text": ...}, "annotations":
[{"was_cancelled", "result": [...]}]}`` (``completions`` in versions before 1.0). Of a
task's annotations the first not cancelled one is read (the others are counted); a task
with none is left out and counted: an unannotated text is not a text without entities.
Results of ``"type": "labels"`` are spans (``value: {start, end, text, labels}``), those of
``"type": "relation"`` links (``from_id`` -> ``to_id``, or back for ``"direction":
"left"``; ``labels`` the relation's labels); other types are counted.

Offsets count code points: the editor has done so since 2022 (its end-to-end test "NER -
Emoji - Text", web/libs/editor/tests/integration/e2e/ner/emoji.cy.ts, asserts
"Should calculate offsets by code points in text"); earlier versions counted UTF-16
units (HumanSignal/label-studio#1347), which `offsets="utf-16"` reads. A span's ``text``
must be the text at its offsets, which catches the wrong choice.

Back, `to_tasks` writes ``{"data": {"text", "id"}, "predictions": [{"model_version":
"gplinker", "result": [...]}]}``: results name the labeling config's tags ``label``
(Labels) and ``text`` (Text), as Label Studio's NER template does.
"""

from __future__ import annotations

import json
import logging
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

from gplinker.data.reader import STDIN, kind_of
from gplinker.errors import InputError
from gplinker.files import atomic_file
from gplinker.formats.mapping import (
    Annotated,
    Fail,
    Link,
    OffsetMap,
    Offsets,
    Span,
    Tally,
    describe,
    from_rows,
)

logger = logging.getLogger(__name__)
MODEL_VERSION = "gplinker"


def read_export(
    path: str | Path, task: str, tally: Tally, *, offsets: Offsets = "code-points"
) -> Iterator[Annotated]:
    """The annotated texts of a Label Studio JSON export; InputError naming the file and
    the task (its place in the list, from 1, and its id) at the first bad one."""
    tasks = _load(Path(path))
    seen: dict[str, int] = {}
    for n, item in enumerate(tasks, 1):
        tally.read += 1

        def fail(message: str, n: int = n, item: Any = item) -> InputError:
            tid = item.get("id") if isinstance(item, dict) else None
            return InputError(
                f"task {n}{f' (id {tid})' if tid is not None else ''}: {message}", path
            )

        ann = _task(item, n, task, offsets, tally, fail)
        if ann is None:
            continue
        if ann.id in seen:
            raise fail(f"id {ann.id!r} already used by task {seen[ann.id]}")
        seen[ann.id] = n
        yield ann


def _load(path: Path) -> list:
    try:
        data = json.loads(path.read_bytes().decode("utf-8-sig"))
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror or e}", path) from e
    except UnicodeDecodeError as e:
        raise InputError(f"invalid UTF-8 at byte {e.start}", path) from e
    except json.JSONDecodeError as e:
        raise InputError(f"invalid JSON: {e.msg} at column {e.colno}", path, e.lineno) from e
    if not isinstance(data, list):
        raise InputError(
            f"expected a list of tasks (Label Studio's JSON export), got {kind_of(data)}", path
        )
    return data


def _task(
    item: Any, n: int, task: str, offsets: Offsets, tally: Tally, fail: Fail
) -> Annotated | None:
    if not isinstance(item, dict):
        raise fail(f"should be an object, got {kind_of(item)}")
    data = item.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("text"), str):
        keys = ", ".join(map(repr, data)) if isinstance(data, dict) else kind_of(data)
        raise fail(f'"data" should hold the text as "text" (the Text tag\'s $text), got {keys}')
    text = data["text"]
    result = _annotation(item, tally, fail)
    if result is None:
        return None
    tid = data.get("id")  # ours, when the task came from `predict --format label-studio`
    if not isinstance(tid, str | int) or isinstance(tid, bool):
        tid = item.get("id", f"task-{n}")
    ann = Annotated(str(tid), text, {}, [], fail)
    units = OffsetMap(text, offsets)
    for k, r in enumerate(result):
        at = f"result[{k}]"
        if not isinstance(r, dict):
            raise fail(f"{at} should be an object, got {kind_of(r)}")
        if r.get("type") == "labels":
            _span(r, at, ann, units, task)
        elif r.get("type") == "relation":
            _link(r, at, ann)
        else:
            tally.skipped[f"results of type {r.get('type')!r} (neither span nor relation)"] += 1
    return ann


def _annotation(item: dict, tally: Tally, fail: Fail) -> list | None:
    """The result list of the task's first annotation not cancelled; None (counted) if none."""
    key = "annotations" if "annotations" in item or "completions" not in item else "completions"
    annotations = item.get(key, [])
    if not isinstance(annotations, list) or not all(isinstance(a, dict) for a in annotations):
        raise fail(f'"{key}" should be a list of objects')
    kept = [a for a in annotations if not a.get("was_cancelled", False)]
    if len(kept) < len(annotations):
        tally.skipped["cancelled annotations"] += len(annotations) - len(kept)
    if not kept:
        tally.skipped["tasks with no annotation (left out: not a text without records)"] += 1
        return None
    if len(kept) > 1:
        tally.skipped["further annotations of a task (its first one is read)"] += len(kept) - 1
    result = kept[0].get("result", [])
    if not isinstance(result, list):
        raise fail(f'the annotation\'s "result" should be a list, got {kind_of(result)}')
    return result


def _span(r: dict, at: str, ann: Annotated, units: OffsetMap, task: str) -> None:
    value = r.get("value")
    if not isinstance(value, dict):
        raise ann.fail(f'{at}: "value" should be an object, got {kind_of(value)}')
    bounds = [value.get("start"), value.get("end")]
    if any(not isinstance(x, int) or isinstance(x, bool) for x in bounds):
        raise ann.fail(f"{at}: value.start and value.end should be integers (a Text region)")
    start, end = (units.to_text(x, at, ann.fail) for x in bounds)
    labels = value.get("labels")
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
        raise ann.fail(f"{at}: value.labels should be a list of one label or more")
    if len(labels) > 1 and task != "entity":
        raise ann.fail(
            f"{at}: a span with {len(labels)} labels {labels} is ambiguous as a relation's "
            "or event's end: give it one"
        )
    if "text" in value and value["text"] != ann.text[start:end]:
        raise ann.fail(
            f"{at}: value.text is {value['text']!r} but the text at [{start}, {end}) is "
            f"{ann.text[start:end]!r}{_hint(value, ann.text, bounds)}"
        )
    rid = str(r.get("id", at))
    for k, label in enumerate(labels):
        key = rid if k == 0 else f"{rid}#{k}"
        if key in ann.spans and ann.spans[key] != Span(start, end, label):
            raise ann.fail(f"{at}: region id {rid!r} is used by two different spans")
        ann.spans[key] = Span(start, end, label)


def _hint(value: dict, text: str, bounds: list[int]) -> str:
    """Why a span's text may not match: the other way of counting would match."""
    wide = OffsetMap(text, "utf-16")
    try:
        start, end = (wide.to_text(x, "", lambda m: InputError(m)) for x in bounds)
    except InputError:
        return ""
    if start != bounds[0] and text[start:end] == value["text"]:
        return " (counted in UTF-16 units, they would match: give --offsets utf-16)"
    return ""


def _link(r: dict, at: str, ann: Annotated) -> None:
    ends = [r.get("from_id"), r.get("to_id")]
    if any(not isinstance(x, str | int) or isinstance(x, bool) for x in ends):
        raise ann.fail(f"{at}: a relation needs from_id and to_id (region ids)")
    direction = r.get("direction", "right")
    if direction not in ("right", "left"):
        raise ann.fail(
            f"{at}: a relation of direction {direction!r} has no subject: give it a direction"
        )
    source, target = (str(x) for x in (ends if direction == "right" else ends[::-1]))
    labels = r.get("labels") or [""]  # no label: fine for entities, an error for the rest
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise ann.fail(f"{at}: labels should be a list of strings")
    ann.links.extend(Link(source, target, label) for label in labels)


# ---- back ------------------------------------------------------------------------------------
def to_tasks(
    rows: Iterable[dict], task: str, *, from_name: str = "label", to_name: str = "text"
) -> Iterator[dict]:
    """Our rows as Label Studio tasks with the records as predictions (pre-annotations)."""
    left_out: Counter[str] = Counter()
    for m in from_rows(rows, task, left_out):
        result: list[dict] = [
            {
                "id": f"r{i}",
                "from_name": from_name,
                "to_name": to_name,
                "type": "labels",
                "value": {
                    "start": s.start,
                    "end": s.end,
                    "text": m.text[s.start : s.end],
                    "labels": [s.label],
                },
            }
            for i, s in enumerate(m.spans)
        ]
        result += [
            {
                "from_id": f"r{s}",
                "to_id": f"r{t}",
                "type": "relation",
                "direction": "right",
                "labels": [label],
            }
            for s, t, label in m.links
        ]
        yield {
            "data": {"text": m.text, "id": m.id},
            "predictions": [{"model_version": MODEL_VERSION, "result": result}],
        }
    if left_out:
        logger.warning("left out of the Label Studio file: %s", describe(left_out.most_common()))


def write_tasks(path: str | Path, tasks: Iterable[dict]) -> int:
    """One JSON list of the tasks, streamed ("-" = stdout); a file appears whole or not at
    all (temp + rename, as `write_jsonl`). Returns the count."""
    if str(path) == STDIN:
        return _dump(tasks, sys.stdout, "<stdout>")
    try:
        with atomic_file(Path(path)) as f:
            return _dump(tasks, f, path)
    except OSError as e:
        raise InputError(f"cannot write: {e.strerror or e}", path) from e


def _dump(tasks: Iterable[dict], f: TextIO, name: str | Path) -> int:
    n = 0
    try:
        f.write("[")
        for n, t in enumerate(tasks, 1):
            f.write(("\n" if n == 1 else ",\n") + json.dumps(t, ensure_ascii=False))
        f.write("\n]\n" if n else "]\n")
        f.flush()
    except OSError as e:
        raise InputError(f"cannot write: {e.strerror or e}", name) from e
    return n
