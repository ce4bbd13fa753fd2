"""The service's page and `gplinker view`: predictions drawn as the text with its spans
highlighted, a legend of the colours and a table of the records, by one script
(web/render.js) that both share.

Only the standard library: `gplinker view` reads JSONL and writes one HTML file, with no model
and no torch. The file works offline: CSS and scripts are inlined, and the lines travel as
JSON inside <script type="application/json">, escaped so that no text can close the tag;
render.js puts every string in as text, never as markup.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from gplinker.errors import GPLinkerError, InputError
from gplinker.files import atomic_file

# the key that holds a task's records in a line of `gplinker predict`
RECORD_KEYS = {"event_list": "event", "entities": "entity", "spo_list": "relation"}
# a record's fields: name -> (type, required); offsets are Python str indices
_FIELDS: dict[str, dict[str, tuple[type, bool]]] = {
    "event": {
        "event_type": (str, True),
        "trigger": (str, False),
        "trigger_start_index": (int, False),
        "arguments": (list, True),
    },
    "entity": {
        "entity": (str, True),
        "label": (str, True),
        "start_offset": (int, True),
        "end_offset": (int, True),
    },
    "relation": {
        **{k: (str, True) for k in ("subject", "subject_type", "predicate", "object")},
        "object_type": (str, True),
        "subject_start_index": (int, False),
        "object_start_index": (int, False),
    },
}
_ARGUMENT = {"role": (str, True), "argument": (str, True), "argument_start_index": (int, False)}
# per task, a record's spans as (start field, text field): checked against the line's text
_SPANS = {
    "event": [("trigger_start_index", "trigger")],
    "relation": [("subject_start_index", "subject"), ("object_start_index", "object")],
}
# JSON stays JSON with these escaped, and can no longer end the <script> that holds it
_SCRIPT_SAFE = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)
_INLINED = re.compile(r'<link rel="stylesheet" href="([\w.-]+)">|<script src="([\w.-]+)"></script>')
_MARKER = re.compile(r"<!--(TITLE|SUMMARY|MORE|DATA)-->")


@dataclass(frozen=True)
class ViewSummary:
    """What `view_file` wrote: for the command's one-line report."""

    path: Path
    task: str | None
    shown: int
    total: int
    errors: int

    def __str__(self) -> str:
        return (
            f"wrote {self.path}: {self.shown} of {self.total} lines shown"
            f" ({self.task or 'no task'}, {self.errors} in error)"
        )


def render_page() -> str:
    """The service's page (GET /): page.html with its CSS and scripts inlined, so that it
    is one response and needs no static route."""
    return _inline(_asset("page.html"))


def render_view(
    rows: Sequence[dict],
    *,
    limit: int,
    total: int,
    errors: int | None = None,
    title: str = "predictions",
) -> str:
    """One offline HTML file drawing the first `limit` of `rows` (lines of `gplinker
    predict`, error records included) and saying how many of the `total` lines it leaves
    out. errors: the file's error records (default: those among `rows`)."""
    shown = list(rows[:limit])
    if errors is None:
        errors = sum("error" in row for row in shown)
    task = next((RECORD_KEYS[k] for row in shown for k in RECORD_KEYS if k in row), None)
    data = json.dumps({"task": task, "rows": shown}, ensure_ascii=False)
    summary = f"{total} line{_s(total)} of {task or 'unknown'} extraction, {errors} in error"
    if shown:
        summary += f"; the first {len(shown)} shown" if len(shown) < total else "; all shown"
    more = total - len(shown)
    fill = {
        "TITLE": html.escape(title),
        "SUMMARY": html.escape(summary),
        "MORE": f"and {more} more line{_s(more)} not shown" if more > 0 else "",
        "DATA": data.translate(_SCRIPT_SAFE),
    }
    page = _inline(_asset("view.html"))
    return _MARKER.sub(lambda m: fill[m.group(1)], page)


def view_file(input: str | Path, output: str | Path, limit: int = 200) -> ViewSummary:
    """Write the view of a predictions JSONL file (any task; error records of `--on-error
    record` are shown or counted). The file is read as a stream: only the first `limit`
    lines are kept, the rest are checked and counted. InputError (file:line) on a bad line;
    the output is written whole or not at all."""
    if limit < 0:
        raise GPLinkerError(f"the limit should be 0 or more, got {limit}")
    input, output = Path(input), Path(output)
    kept: list[dict] = []
    total = errors = 0
    task: str | None = None
    try:
        f = input.open("rb")
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror or e}", input) from e
    with f:
        for lineno, raw in enumerate(f, 1):
            row = _json_line(raw, input, lineno)
            if row is None:
                continue
            if "error" in row:
                errors += 1
            else:
                task = _check_row(row, task, input, lineno)
            total += 1
            if len(kept) < limit:
                kept.append(row)
    page = render_view(kept, limit=limit, total=total, errors=errors, title=input.name)
    _write_atomic(output, page)
    return ViewSummary(output, task, len(kept), total, errors)


def _json_line(raw: bytes, path: Path, lineno: int) -> dict | None:
    """One line as a JSON object; None for a blank line."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"invalid UTF-8 at byte {e.start} of the line", path, lineno) from e
    if not line.strip():
        return None
    try:
        row = json.loads(line)
    except ValueError as e:
        raise InputError(f"invalid JSON: {e}", path, lineno) from e
    if not isinstance(row, dict):
        raise InputError(f"expected a JSON object, got {_kind(row)}", path, lineno)
    return row


def _check_row(row: dict, task: str | None, path: Path, lineno: int) -> str:
    """The row's task (the same as the lines before it), once its records are checked
    against its text: a view must not highlight the wrong characters."""

    def fail(message: str) -> InputError:
        return InputError(message, path, lineno)

    keys = [k for k in RECORD_KEYS if k in row]
    if not keys:
        raise fail(f"no {', '.join(RECORD_KEYS)} or error key: not a line of `gplinker predict`")
    found = RECORD_KEYS[keys[0]]
    if task is not None and found != task:
        raise fail(f'"{keys[0]}" ({found}) on a line after lines of {task} extraction')
    text = row.get("text")
    if not isinstance(text, str):
        raise fail(f'"text" should be a string, got {_kind(text)}')
    records = row[keys[0]]
    if not isinstance(records, list):
        raise fail(f'"{keys[0]}" should be a list, got {_kind(records)}')
    for i, record in enumerate(records):
        at = f"{keys[0]}[{i}]"
        _check_record(record, _FIELDS[found], at, fail)
        if found == "entity":
            end = record["end_offset"]
            _check_span(text, record["start_offset"], end, record["entity"], at, fail)
        for start, value in _SPANS.get(found, []):
            _check_span(text, record.get(start), None, record.get(value), f"{at}.{start}", fail)
        for j, arg in enumerate(record["arguments"] if found == "event" else []):
            where = f"{at}.arguments[{j}]"
            _check_record(arg, _ARGUMENT, where, fail)
            start = arg.get("argument_start_index")
            _check_span(text, start, None, arg["argument"], where, fail)
    return found


def _check_record(record: Any, fields: dict[str, tuple[type, bool]], at: str, fail: Any) -> None:
    if not isinstance(record, dict):
        raise fail(f"{at} should be an object, got {_kind(record)}")
    for name, (kind, required) in fields.items():
        if name not in record:
            if required:
                raise fail(f'{at}: "{name}" is missing')
            continue
        value = record[name]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise fail(f'{at}: "{name}" should be {kind.__name__}, got {_kind(value)}')


def _check_span(text: str, start: Any, end: Any, value: Any, at: str, fail: Any) -> None:
    """start (and end, or start + len(value)) inside the text and holding `value`; a
    span without a start is not drawn and needs no check."""
    if start is None or value is None:
        return
    end = start + len(value) if end is None else end
    if not 0 <= start <= end <= len(text):
        raise fail(f"{at}: [{start}, {end}) is not inside the text ({len(text)} characters)")
    if text[start:end] != value:
        raise fail(f"{at}: {value!r} but text[{start}:{end}] is {text[start:end]!r}")


def _write_atomic(path: Path, content: str) -> None:
    """A reader never sees half a page, and a failure leaves the old file."""
    try:
        with atomic_file(path) as f:
            f.write(content)
    except OSError as e:
        raise InputError(f"cannot write: {e.strerror or e}", path) from e


def _inline(page: str) -> str:
    """The page with each <link rel=stylesheet> and <script src> replaced by its file."""

    def inline(m: re.Match) -> str:
        css, js = m.group(1), m.group(2)
        body = _asset(css or js)
        closing = "</style" if css else "</script"
        assert closing not in body.lower(), f"{css or js} would close its own tag"
        return f"<style>\n{body}</style>" if css else f"<script>\n{body}</script>"

    return _INLINED.sub(inline, page)


def _asset(name: str) -> str:
    return (resources.files("gplinker") / "web" / name).read_text(encoding="utf-8")


def _kind(value: object) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "null" if value is None else type(value).__name__
    )


def _s(n: int) -> str:
    return "" if n == 1 else "s"
