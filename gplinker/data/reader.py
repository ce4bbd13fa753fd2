"""DuEE JSONL -> Example records, with every problem named by file:line; an atomic writer.

A line looks like ``{"id": ..., "text": ..., "event_list": [{"event_type", "trigger",
"trigger_start_index", "arguments": [{"role", "argument", "argument_start_index"}]}]}``.
``event_list`` may be absent (test files): the example then has no events. ``id`` may be
absent too: the example's id is then ``"line-N"`` (N = its line number). Extra keys such
as ``class`` or ``alias`` are ignored. Blank lines are skipped but still counted.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from gplinker.errors import InputError
from gplinker.schema import TRIGGER, Argument, Event, Example, Schema

STDIN = "-"


def read_examples(path: str | Path, schema: Schema | None = None) -> Iterator[Example]:
    """Stream the examples of a DuEE JSONL file ("-" = stdin); raise InputError on any bad line.

    With a schema, every event type and (event type, role) must be in it.
    """
    if str(path) == STDIN:
        yield from _read_lines(sys.stdin.buffer, "<stdin>", schema)
        return
    path = Path(path)
    try:
        f = path.open("rb")
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror or e}", path) from e
    with f:
        yield from _read_lines(f, path, schema)


def _read_lines(
    lines: Iterable[bytes], path: str | Path, schema: Schema | None
) -> Iterator[Example]:
    name = path if isinstance(path, str) else path.name
    seen: dict[str, int] = {}
    lineno = 0
    try:
        for lineno, raw in enumerate(lines, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise InputError(
                    f"invalid UTF-8 at byte {e.start} of the line ({raw[e.start : e.end]!r})",
                    path,
                    lineno,
                ) from e
            if not line.strip():
                continue
            ex = _parse_line(line, path, lineno, f"{name}:{lineno}", schema)
            if ex.id in seen:
                raise InputError(f"id {ex.id!r} already used on line {seen[ex.id]}", path, lineno)
            seen[ex.id] = lineno
            yield ex
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror or e}", path, lineno + 1) from e


def _parse_line(
    line: str, path: str | Path, lineno: int, where: str, schema: Schema | None
) -> Example:
    def fail(message: str) -> InputError:
        return InputError(message, path, lineno)

    line = line.removeprefix("\ufeff")  # a BOM on the first line of files saved by Windows tools
    try:
        row = json.loads(line)
    except json.JSONDecodeError as e:
        raise fail(f"invalid JSON: {e.msg} at column {e.colno}") from e
    if not isinstance(row, dict):
        raise fail(f"expected a JSON object, got {_kind(row)}")
    if "text" not in row:
        raise fail('"text" is missing')
    text = row["text"]
    if not isinstance(text, str):
        raise fail(f'"text" should be a string, got {_kind(text)}')
    if "id" in row:
        ex_id = row["id"]
        if not isinstance(ex_id, str):
            raise fail(f'"id" should be a string, got {_kind(ex_id)}')
    else:
        ex_id = f"line-{lineno}"
    events_json = row.get("event_list", [])
    if not isinstance(events_json, list):
        raise fail(f'"event_list" should be a list, got {_kind(events_json)}')
    events = []
    for i, ev in enumerate(events_json):
        at = f"event_list[{i}]"
        if not isinstance(ev, dict):
            raise fail(f"{at} should be an object, got {_kind(ev)}")
        event_type = _field(ev, "event_type", str, at, fail)
        if schema is not None and not schema.has(event_type, TRIGGER):
            raise fail(f"{at}: event type {event_type!r} is not in the schema")
        args = [_span(ev, "trigger", "trigger_start_index", TRIGGER, text, at, fail)]
        args_json = ev.get("arguments", [])
        if not isinstance(args_json, list):
            raise fail(f'{at}: "arguments" should be a list, got {_kind(args_json)}')
        for j, arg in enumerate(args_json):
            aat = f"{at}.arguments[{j}]"
            if not isinstance(arg, dict):
                raise fail(f"{aat} should be an object, got {_kind(arg)}")
            role = _field(arg, "role", str, aat, fail)
            if role == TRIGGER:
                raise fail(f"{aat}: role {TRIGGER!r} is reserved for the trigger")
            if schema is not None and not schema.has(event_type, role):
                raise fail(f"{aat}: role {role!r} is not in the schema for {event_type!r}")
            args.append(_span(arg, "argument", "argument_start_index", role, text, aat, fail))
        events.append(Event(event_type, frozenset(args)))
    return Example(id=ex_id, text=text, events=tuple(events), where=where)


def _field(obj: dict, key: str, kind: type, at: str, fail: Any) -> Any:
    if key not in obj:
        raise fail(f'{at}: "{key}" is missing')
    value = obj[key]
    # bool is an int subclass; a start index of true is a mistake, not 1
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise fail(f'{at}: "{key}" should be {_KIND_NAMES[kind]}, got {_kind(value)}')
    return value


def _span(
    obj: dict, key: str, start_key: str, role: str, text: str, at: str, fail: Any
) -> Argument:
    span = _field(obj, key, str, at, fail)
    start = _field(obj, start_key, int, at, fail)
    if not span:
        raise fail(f'{at}: "{key}" is empty')
    found = text[start : start + len(span)] if start >= 0 else ""
    if found != span:
        raise fail(f'{at}: "{key}" is {span!r} but text[{start}:{start + len(span)}] is {found!r}')
    return Argument(role, span, start)


_KIND_NAMES = {str: "a string", int: "an integer"}


def _kind(value: object) -> str:
    match value:
        case None:
            return "null"
        case bool():
            return f"a boolean ({json.dumps(value)})"
        case int() | float():
            return f"a number ({value!r})"
        case str():
            return f"a string ({value[:20]!r})"
        case list():
            return "a list"
        case dict():
            return "an object"
    return type(value).__name__


def example_to_json(ex: Example) -> dict:
    """DuEE format: id, text and event_list (triggers and arguments with char offsets)."""
    return {"id": ex.id, "text": ex.text, "event_list": [ev.to_json() for ev in ex.events]}


def write_jsonl(path: str | Path, rows: Iterable[dict]) -> int:
    """Write one JSON object a line ("-" = stdout); return the count.

    A file is written to a temporary sibling and renamed over the target, so a reader never
    sees half a file and an error midway leaves the target as it was.
    """
    if str(path) == STDIN:
        return _dump(rows, sys.stdout)
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            n = _dump(rows, f)
        # mkstemp makes the file 0600; give it the target's mode, or the usual 0644
        os.chmod(tmp, path.stat().st_mode & 0o7777 if path.exists() else 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return n


def _dump(rows: Iterable[dict], f: Any) -> int:
    n = 0
    for row in rows:
        f.write(json.dumps(row, ensure_ascii=False) + "\n")
        n += 1
    f.flush()
    return n
