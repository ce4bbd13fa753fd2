"""DuEE JSONL -> Example records, with every problem named by file:line; an atomic writer.

A line looks like ``{"id": ..., "text": ..., "event_list": [{"event_type", "trigger",
"trigger_start_index", "arguments": [{"role", "argument", "argument_start_index"}]}]}``.
``event_list`` may be absent (test files): the example then has no events. ``id`` may be
absent too: the example's id is then ``"line-N"`` (N = its line number). Extra keys such
as ``class`` or ``alias`` are ignored. Blank lines are skipped but still counted (or, for
prediction input, reported: see `read_lines`).

Any string is a valid text, including an empty one, 100k characters, control and
zero-width characters, emoji and CJK extension characters; only lone surrogates (a
``"\\ud800"`` escape, which is not Unicode text and can be neither tokenized nor written
as UTF-8) are refused. Three ways to read: `read_examples` streams and stops at the first
bad line, `read_lines` streams every line as an Example or a BadLine without stopping
(prediction), and `load_examples` checks a whole file and reports every bad line at once
(training data).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from gplinker.data.ids import IdTable
from gplinker.errors import InputError
from gplinker.files import atomic_file
from gplinker.schema import TRIGGER, Argument, Element, Event, EventRecord, Example, Schema

logger = logging.getLogger(__name__)
STDIN = "-"

# kinds of bad line (InputError.kind), counted by `check_examples`
INVALID_UTF8 = "invalid UTF-8"
INVALID_JSON = "invalid JSON"
NOT_AN_OBJECT = "not a JSON object"
EMPTY_LINE = "empty line"
MISSING_FIELD = "missing field"
WRONG_TYPE = "wrong type"
LONE_SURROGATE = "lone surrogate"
EMPTY_SPAN = "empty span"
SPAN_MISMATCH = "span mismatch"
RESERVED_ROLE = "reserved role"
UNKNOWN_EVENT_TYPE = "unknown event type"
UNKNOWN_ROLE = "unknown role"
DUPLICATE_ID = "duplicate id"

_SURROGATE = re.compile(r"[\ud800-\udfff]")
# one line's text -> its record: (line, path, line number, "file:N", schema)
Parse = Callable[[str, "str | Path", int, str, "Schema | None"], Any]


@dataclass(frozen=True, slots=True)
class BadLine:
    """A line that could not be read: its number, why (an InputError naming file:line, with
    a `kind`), and its id if it has one (its "id", or "line-N" when it is a JSON object
    without one; None when it is not a JSON object or its id is not a string)."""

    line: int
    error: InputError
    id: str | None = None


def read_examples(
    path: str | Path, schema: Any | None = None, *, parse: Parse | None = None
) -> Iterator[Any]:
    """Stream the examples of a JSONL file ("-" = stdin); raise InputError on any bad line.

    With a schema, every event type and (event type, role) must be in it. `parse` reads
    one line of another format (a task's, or `read_scored`'s looser DuEE one).
    """
    for item in read_lines(path, schema, parse=parse):
        if isinstance(item, BadLine):
            raise item.error
        yield item


def read_lines(
    path: str | Path,
    schema: Schema | None = None,
    *,
    blank_lines: Literal["skip", "error"] = "skip",
    parse: Parse | None = None,
) -> Iterator[Example | BadLine]:
    """Stream every line of a DuEE JSONL file ("-" = stdin) as an Example or a BadLine, in
    order, without stopping at bad lines. blank_lines="error" makes a blank line a BadLine
    too (prediction: one output line per input line); "skip" passes over it. A line reusing
    an earlier example's id is a BadLine (the earlier one stays good). Raises InputError
    only when the file itself cannot be read. `parse` reads one line (default: an
    Example; `read_scored` passes its looser one)."""
    parse = parse or parse_event_line
    if str(path) == STDIN:
        yield from _read_lines(sys.stdin.buffer, "<stdin>", schema, blank_lines, parse)
        return
    path = Path(path)
    try:
        f = path.open("rb")
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror or e}", path) from e
    with f:
        yield from _read_lines(f, path, schema, blank_lines, parse)


def _read_lines(
    lines: Iterable[bytes],
    path: str | Path,
    schema: Schema | None,
    blank_lines: str,
    parse: Parse,
) -> Iterator[Example | BadLine]:
    name = path if isinstance(path, str) else path.name
    seen = IdTable()  # id -> line, to catch a reused id; flat in memory (data/ids.py)
    lineno = 0
    try:
        for lineno, raw in enumerate(lines, 1):
            try:
                ex = _read_line(raw, path, lineno, f"{name}:{lineno}", schema, blank_lines, parse)
                if ex is None:
                    continue
                if (first := seen.first_use(ex.id, lineno)) is not None:
                    raise InputError(
                        f"id {ex.id!r} already used on line {first}",
                        path,
                        lineno,
                        kind=DUPLICATE_ID,
                    )
            except InputError as e:
                yield BadLine(lineno, e, _line_id(raw, lineno))
                continue
            yield ex
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror or e}", path, lineno + 1) from e
    finally:
        seen.close()


def _read_line(
    raw: bytes,
    path: str | Path,
    lineno: int,
    where: str,
    schema: Schema | None,
    blank_lines: str,
    parse: Parse,
) -> Example | None:
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(
            f"invalid UTF-8 at byte {e.start} of the line ({raw[e.start : e.end]!r})",
            path,
            lineno,
            kind=INVALID_UTF8,
        ) from e
    if not line.strip():
        if blank_lines == "skip":
            return None
        raise InputError("empty line (expected a JSON object)", path, lineno, kind=EMPTY_LINE)
    return parse(line, path, lineno, where, schema)


def _line_id(raw: bytes, lineno: int) -> str | None:
    """The id a bad line would have had, for its error record."""
    try:
        row = json.loads(raw.decode("utf-8").removeprefix("\ufeff"))
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError included
        return None
    if not isinstance(row, dict):
        return None
    ex_id = row.get("id", f"line-{lineno}")
    return ex_id if isinstance(ex_id, str) and not _SURROGATE.search(ex_id) else None


def parse_event_line(
    line: str, path: str | Path, lineno: int, where: str, schema: Schema | None
) -> Example:
    def fail(message: str, kind: str) -> InputError:
        return InputError(message, path, lineno, kind=kind)

    row = json_object(line, fail)
    text = text_field(row, fail, required=True)
    events = []
    for at, event_type, trigger, arguments in _events(row, schema, fail):
        args = [_span(trigger, "trigger", "trigger_start_index", TRIGGER, text, at, fail)]
        args += [
            _span(arg, "argument", "argument_start_index", role, text, aat, fail)
            for aat, role, arg in arguments
        ]
        events.append(Event(event_type, frozenset(args)))
    return Example(id=example_id(row, lineno, fail), text=text, events=tuple(events), where=where)


@dataclass(frozen=True, slots=True)
class Scored:
    """One line of a file to score: its id and its events as the metrics see them."""

    id: str
    events: tuple[EventRecord, ...]


def read_scored(path: str | Path, schema: Schema | None = None) -> Iterator[Scored]:
    """Stream a prediction or gold file for scoring; raise InputError on any bad line.

    Looser than `read_examples`, to read what the official metric is defined on, a DuEE
    submission (``{"id", "event_list": [{"event_type", "arguments": [{"role",
    "argument"}]}]}``, as the reference's `predict_to_file` writes): "text", "trigger" and
    the start indices may be absent (an absent start is None), and an argument listed
    twice stays twice. What is there is checked as strictly: types, the schema, and a
    span's text against the text at its start index when both are given.
    """
    yield from read_examples(path, schema, parse=_parse_scored_line)


def _parse_scored_line(
    line: str, path: str | Path, lineno: int, where: str, schema: Schema | None
) -> Scored:
    def fail(message: str, kind: str) -> InputError:
        return InputError(message, path, lineno, kind=kind)

    row = json_object(line, fail)
    text = text_field(row, fail, required=False)
    events = []
    for at, event_type, trigger, arguments in _events(row, schema, fail):
        elements = [
            _loose_span(arg, "argument", "argument_start_index", role, text, aat, fail)
            for aat, role, arg in arguments
        ]
        if "trigger" in trigger:
            elements.append(
                _loose_span(trigger, "trigger", "trigger_start_index", TRIGGER, text, at, fail)
            )
        events.append(EventRecord.of(event_type, elements))
    return Scored(example_id(row, lineno, fail), tuple(events))


def json_object(line: str, fail: Any) -> dict:
    # a BOM on the first line of files saved by Windows tools; the line ending goes too, so
    # that a line cut short reports its own last column, not "column 1" of the next line
    line = line.removeprefix("\ufeff").rstrip("\r\n")
    try:
        row = json.loads(line)
    except json.JSONDecodeError as e:
        raise fail(f"invalid JSON: {e.msg} at column {e.colno}", INVALID_JSON) from e
    except RecursionError as e:  # [[[[...]]]] thousands deep
        raise fail("invalid JSON: nested too deeply", INVALID_JSON) from e
    except ValueError as e:  # an integer of over 4300 digits (sys.get_int_max_str_digits)
        raise fail(f"invalid JSON: {e}", INVALID_JSON) from e
    if not isinstance(row, dict):
        raise fail(f"expected a JSON object, got {kind_of(row)}", NOT_AN_OBJECT)
    return row


def text_field(row: dict, fail: Any, *, required: bool) -> str | None:
    if "text" not in row:
        if required:
            raise fail('"text" is missing', MISSING_FIELD)
        return None
    text = row["text"]
    if not isinstance(text, str):
        raise fail(f'"text" should be a string, got {kind_of(text)}', WRONG_TYPE)
    check_unicode(text, '"text"', fail)
    return text


def example_id(row: dict, lineno: int, fail: Any, *, numbers: bool = False) -> str:
    """The line's "id" ("line-N" when absent); `numbers=True` also takes an integer id (as
    CLUENER's test file has) as its decimal string."""
    if "id" not in row:
        return f"line-{lineno}"
    ex_id = row["id"]
    if numbers and isinstance(ex_id, int) and not isinstance(ex_id, bool):
        return str(ex_id)
    if not isinstance(ex_id, str):
        raise fail(f'"id" should be a string, got {kind_of(ex_id)}', WRONG_TYPE)
    check_unicode(ex_id, '"id"', fail)
    return ex_id


def _events(
    row: dict, schema: Schema | None, fail: Any
) -> Iterator[tuple[str, str, dict, list[tuple[str, str, dict]]]]:
    """Per event of "event_list": where, its type, the event object (which holds the
    trigger's keys) and its arguments as (where, role, object); types and schema checked."""
    events_json = row.get("event_list", [])
    if not isinstance(events_json, list):
        raise fail(f'"event_list" should be a list, got {kind_of(events_json)}', WRONG_TYPE)
    for i, ev in enumerate(events_json):
        at = f"event_list[{i}]"
        if not isinstance(ev, dict):
            raise fail(f"{at} should be an object, got {kind_of(ev)}", WRONG_TYPE)
        event_type = field_of(ev, "event_type", str, at, fail)
        check_unicode(event_type, f'{at}: "event_type"', fail)
        if schema is not None and not schema.has(event_type, TRIGGER):
            raise fail(f"{at}: event type {event_type!r} is not in the schema", UNKNOWN_EVENT_TYPE)
        args_json = ev.get("arguments", [])
        if not isinstance(args_json, list):
            raise fail(f'{at}: "arguments" should be a list, got {kind_of(args_json)}', WRONG_TYPE)
        arguments = []
        for j, arg in enumerate(args_json):
            aat = f"{at}.arguments[{j}]"
            if not isinstance(arg, dict):
                raise fail(f"{aat} should be an object, got {kind_of(arg)}", WRONG_TYPE)
            role = field_of(arg, "role", str, aat, fail)
            check_unicode(role, f'{aat}: "role"', fail)
            if role == TRIGGER:
                raise fail(f"{aat}: role {TRIGGER!r} is reserved for the trigger", RESERVED_ROLE)
            if schema is not None and not schema.has(event_type, role):
                raise fail(
                    f"{aat}: role {role!r} is not in the schema for {event_type!r}", UNKNOWN_ROLE
                )
            arguments.append((aat, role, arg))
        yield at, event_type, ev, arguments


def check_unicode(value: str, what: str, fail: Any) -> None:
    if m := _SURROGATE.search(value):
        raise fail(
            f"{what} holds a lone surrogate {m.group()!r} at character {m.start()} "
            "(not Unicode text: a broken \\ud800-\\udfff escape?)",
            LONE_SURROGATE,
        )


def field_of(obj: dict, key: str, kind: type, at: str, fail: Any) -> Any:
    if key not in obj:
        raise fail(f'{at}: "{key}" is missing', MISSING_FIELD)
    value = obj[key]
    # bool is an int subclass; a start index of true is a mistake, not 1
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise fail(f'{at}: "{key}" should be {_KIND_NAMES[kind]}, got {kind_of(value)}', WRONG_TYPE)
    return value


def _span(
    obj: dict, key: str, start_key: str, role: str, text: str, at: str, fail: Any
) -> Argument:
    field_of(obj, start_key, int, at, fail)  # required here
    role, span, start = _loose_span(obj, key, start_key, role, text, at, fail)
    return Argument(role, span, start)


def _loose_span(
    obj: dict, key: str, start_key: str, role: str, text: str | None, at: str, fail: Any
) -> Element:
    """(role, span, start or None): the span must be a non-empty string; a start, when
    given, an integer where the text (when given) holds the span."""
    span = field_of(obj, key, str, at, fail)
    check_unicode(span, f'{at}: "{key}"', fail)
    if not span:
        raise fail(f'{at}: "{key}" is empty', EMPTY_SPAN)
    if start_key not in obj:
        return role, span, None
    start = field_of(obj, start_key, int, at, fail)
    if text is None:  # a submission without its text: the start cannot be checked
        found = span if start >= 0 else ""
    else:
        found = text[start : start + len(span)] if start >= 0 else ""
    if found != span:
        raise fail(
            f'{at}: "{key}" is {span!r} but text[{start}:{start + len(span)}] is {found!r}',
            SPAN_MISMATCH,
        )
    return role, span, start


_KIND_NAMES = {str: "a string", int: "an integer"}


def kind_of(value: object) -> str:
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


@dataclass(frozen=True)
class CheckedFile:
    """Every line of a file: the good examples and the bad lines, in file order."""

    path: str | Path
    examples: list[Any]
    bad: list[BadLine]

    @property
    def counts(self) -> Counter[str]:
        """Bad lines per kind (InputError.kind; a bad line counts once, by its first problem)."""
        return Counter(b.error.kind or "other" for b in self.bad)

    def report(self, max_shown: int = 10) -> str:
        """'N of M lines are invalid (kind: n, ...):' then the first max_shown, one a line."""
        n_lines = len(self.examples) + len(self.bad)
        kinds = ", ".join(f"{kind}: {n}" for kind, n in self.counts.most_common())
        first = f"; the first {max_shown}" if len(self.bad) > max_shown else ""
        lines = [f"{len(self.bad)} of {n_lines} lines are invalid ({kinds}){first}:"]
        lines += [f"  {b.error}" for b in self.bad[:max_shown]]
        if len(self.bad) > max_shown:
            lines.append(f"  ... and {len(self.bad) - max_shown} more")
        return "\n".join(lines)


def check_examples(
    path: str | Path, schema: Any | None = None, *, parse: Parse | None = None
) -> CheckedFile:
    """Read a whole file, going on past bad lines: every bad line, not the first. `parse`
    reads one line of a task's format (default: DuEE)."""
    examples: list[Any] = []
    bad: list[BadLine] = []
    for item in read_lines(path, schema, parse=parse):
        if isinstance(item, BadLine):
            bad.append(item)
        else:
            examples.append(item)
    return CheckedFile(path, examples, bad)


def load_examples(
    path: str | Path,
    schema: Any | None = None,
    *,
    skip_invalid: bool = False,
    max_shown: int = 10,
    parse: Parse | None = None,
) -> list[Any]:
    """All examples of a training or dev file, every line checked before any is used.

    A line is bad for any reason `read_examples` stops at: invalid UTF-8 or JSON, a missing
    or mistyped field, a trigger or argument whose text is not the text at its start index,
    an event type or role not in the schema, an id used before. If any is bad, one
    InputError lists the first `max_shown` as `file:line: what` and counts every kind. With
    skip_invalid=True the bad lines are dropped instead, whole (an example with one bad
    event goes entirely), and a warning gives the same report: never a silent drop.
    Blank lines hold no data and are passed over.
    """
    checked = check_examples(path, schema, parse=parse)
    if checked.bad and not skip_invalid:
        raise InputError(
            f"{checked.report(max_shown)}\n"
            "fix these lines, or skip them with skip_invalid (data.skip_invalid: true)",
            path,
        )
    if checked.bad:
        logger.warning(
            "%s: skipped %d invalid lines, kept %d: %s",
            path,
            len(checked.bad),
            len(checked.examples),
            checked.report(max_shown),
        )
    return checked.examples


def write_jsonl(path: str | Path, rows: Iterable[dict]) -> int:
    """Write one JSON object a line ("-" = stdout); return the count.

    A file is written to a temporary sibling, flushed to disk and renamed over the target,
    so a reader never sees half a file, and an error or Ctrl-C midway leaves the target as
    it was and no temporary file. A failed write (no such folder, disk full) is an
    InputError naming the file.
    """
    if str(path) == STDIN:
        return _dump(rows, sys.stdout, "<stdout>")
    path = Path(path)
    try:
        with atomic_file(path) as f:
            return _dump(rows, f, path)
    except OSError as e:  # no such folder, disk full, ...
        raise InputError(f"cannot write: {e.strerror or e}", path) from e


def _dump(rows: Iterable[dict], f: Any, name: str | Path) -> int:
    n = 0
    for row in rows:
        try:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
        except OSError as e:
            raise InputError(f"cannot write: {e.strerror or e}", name) from e
        n += 1
    try:
        f.flush()
    except OSError as e:
        raise InputError(f"cannot write: {e.strerror or e}", name) from e
    return n
