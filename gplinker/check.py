"""`gplinker check` and `gplinker schema --from`: what a data set gives the model, before
any training.

`check_config` reads a recipe's files and builds its tokenizer as `train` does
(`training.build_tokenizer`, the same windows); `check_data` does the same for files named
on the command line. Lines are parsed by the task's own parser without a schema, so that
one label outside the schema does not hide the rest of its line; every gold span
(`Task.spans`) is then placed on the tokens of the windows a run trains on, in the order
training counts what it drops (`DropReport`): not found in its text, cut (no window holds
it whole), off a token boundary. Everything is counted; the first few of each kind are
kept as examples, each naming its file:line.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from transformers import PreTrainedTokenizerFast

from gplinker import tasks
from gplinker.config import Config, DataConfig, ModelConfig
from gplinker.data.alignment import (
    Boundaries,
    Encoded,
    char_span_to_tokens,
    encode_windows,
    token_boundaries,
)
from gplinker.data.reader import DUPLICATE_ID, BadLine, read_examples, read_lines
from gplinker.errors import ConfigError, InputError
from gplinker.progress import progress_bar
from gplinker.tasks.base import Label, Task
from gplinker.training import build_tokenizer

ERROR, WARNING = "error", "warning"
# every report holds every kind, in this order, so that --json keeps one shape
KINDS: dict[str, tuple[str, str]] = {
    "bad_line": (ERROR, "lines the reader rejects; training stops at them"),
    "duplicate_id": (ERROR, "lines reusing an earlier line's id; the reader rejects them"),
    "empty_file": (ERROR, "files without a line"),
    "unknown_label": (ERROR, "spans whose label the schema lacks; training rejects their lines"),
    "off_boundary": (WARNING, "spans starting or ending inside a token; never a label"),
    "cut": (WARNING, "spans no window holds whole; never a label"),
    "not_found": (WARNING, "strings their text does not hold; never a label"),
    "whitespace": (WARNING, "spans beginning or ending with whitespace"),
    "leakage": (WARNING, "texts already in an earlier file, e.g. train texts in dev"),
    "unseen_label": (WARNING, "schema labels without a span in the first file; never learnt"),
}


@dataclass
class Finding:
    """One kind of problem: how many, and the first few as `file:line: what`."""

    level: str
    count: int = 0
    examples: list[str] = field(default_factory=list)


@dataclass
class LabelCount:
    spans: dict[str, int] = field(default_factory=dict)  # per file, as its path was given
    off_boundary: int = 0
    cut: int = 0
    not_found: int = 0


@dataclass(frozen=True)
class ReadFile:
    """A file's good examples and bad lines, in file order."""

    path: Path
    examples: list[Any]
    bad: list[BadLine]


@dataclass
class CheckReport:
    task: str
    tokenizer: str  # its name, size and pre-tokenizer
    max_length: int
    overlap: int | None  # None: no windows, a longer text is cut
    schema: str  # where the labels came from
    files: list[dict[str, Any]] = field(default_factory=list)  # path, lines, examples, spans
    labels: dict[Label, LabelCount] = field(default_factory=dict)  # schema order, then others
    in_schema: set[Label] | None = None  # None: no schema to compare with
    findings: dict[str, Finding] = field(
        default_factory=lambda: {kind: Finding(level) for kind, (level, _) in KINDS.items()}
    )
    max_shown: int = 5

    def add(self, kind: str, example: str) -> None:
        finding = self.findings[kind]
        finding.count += 1
        if len(finding.examples) < self.max_shown:
            finding.examples.append(example)

    def shows(self, kind: str) -> bool:
        """Whether the next one of this kind is kept as an example."""
        return len(self.findings[kind].examples) < self.max_shown

    def count(self, level: str) -> int:
        return sum(f.count for f in self.findings.values() if f.level == level)

    @property
    def exit_code(self) -> int:
        """1 when there are errors, 0 when there are only warnings (or nothing)."""
        return 1 if self.count(ERROR) else 0

    def to_json(self) -> dict[str, Any]:
        """A stable dict for tools: every kind present, labels as lists of names."""
        return {
            "task": self.task,
            "tokenizer": self.tokenizer,
            "max_length": self.max_length,
            "window_overlap": self.overlap,
            "schema": self.schema,
            "files": self.files,
            "labels": [
                {
                    "label": list(label),
                    "spans": c.spans,
                    "off_boundary": c.off_boundary,
                    "cut": c.cut,
                    "not_found": c.not_found,
                    "in_schema": None if self.in_schema is None else label in self.in_schema,
                }
                for label, c in self.labels.items()
            ],
            "findings": {
                kind: {"level": f.level, "count": f.count, "examples": f.examples}
                for kind, f in self.findings.items()
            },
            "errors": self.count(ERROR),
            "warnings": self.count(WARNING),
            "exit_code": self.exit_code,
        }


def check_config(config: Config, *, max_shown: int = 5, progress: bool = False) -> CheckReport:
    """The report on a recipe's data.train and data.dev, with the tokenizer, max_length and
    windows its training run would use."""
    d = config.data
    if d.train is None:
        raise ConfigError("nothing to check", key="data.train")
    paths = [d.train, *([d.dev] if d.dev else [])]
    overlap = d.window_overlap if d.windows else None
    task = tasks.get(config.task)
    return _check(
        task, paths, d.schema_file, config.model, d.max_length, overlap, max_shown, progress
    )


def check_data(
    paths: Sequence[Path],
    task: str | None = None,
    *,
    schema_file: Path | None = None,
    tokenizer: str = "wordpiece",
    split_digits: bool | None = None,
    max_length: int = 128,
    windows: bool = True,
    window_overlap: int = 32,
    max_shown: int = 5,
    progress: bool = False,
) -> CheckReport:
    """The report on files named by hand, the first one taken as the training file (it
    builds a 'wordpiece' tokenizer, and gives the labels when no schema file is given).
    The tokenizer is built as for a random-init model from 'wordpiece', as for a
    pretrained one from a folder or hub name (split_digits None: training's default)."""
    if not paths:
        raise ConfigError("give the files to check, or --config RECIPE")
    try:
        DataConfig(max_length=max_length, window_overlap=window_overlap)
        model = ModelConfig(
            tokenizer=tokenizer, pretrained=tokenizer != "wordpiece", split_digits=split_digits
        )
    except ValidationError as e:
        raise ConfigError(e.errors()[0]["msg"]) from None
    found = tasks.get(task or tasks.guess(paths[0]))
    overlap = window_overlap if windows else None
    return _check(found, paths, schema_file, model, max_length, overlap, max_shown, progress)


def _check(
    task: Task,
    paths: Sequence[Path],
    schema_file: Path | None,
    model: ModelConfig,
    max_length: int,
    overlap: int | None,
    max_shown: int,
    progress: bool,
) -> CheckReport:
    files = [read_file(Path(p), task, progress=progress) for p in paths]
    schema, source = _schema(task, schema_file, files[0])
    tokenizer = build_tokenizer(model, files[0].examples)
    name = f"{model.tokenizer or model.encoder}: {_describe(tokenizer)}"
    report = CheckReport(task.name, name, max_length, overlap, source, max_shown=max_shown)
    if schema is not None:
        labels = task.schema_labels(schema)
        report.in_schema = set(labels)
        report.labels = {label: LabelCount() for label in labels}
    earlier: dict[str, str] = {}  # text -> where it first was, for leakage
    for f in files:
        before = {kind: found.count for kind, found in report.findings.items()}
        _check_lines(report, f)
        _check_spans(report, f, task, tokenizer, progress)
        _check_leakage(report, f, earlier)
        report.files[-1]["findings"] = {
            kind: found.count - before[kind] for kind, found in report.findings.items()
        }
    if report.in_schema is not None:
        first = str(files[0].path)
        for label in task.schema_labels(schema):
            if not report.labels[label].spans.get(first):
                report.add("unseen_label", f"{files[0].path.name}: {_name(label)}")
    # the schema's labels in its order (inserted first), then the others sorted
    known = report.in_schema or set()
    order = [*(x for x in report.labels if x in known), *sorted(set(report.labels) - known)]
    report.labels = {label: report.labels[label] for label in order}
    return report


def read_file(path: Path, task: Task, *, progress: bool = False) -> ReadFile:
    """Every line of a file through the task's parser, without a schema."""
    examples: list[Any] = []
    bad: list[BadLine] = []
    lines = read_lines(path, parse=task.parse(None))
    bar = progress_bar(
        lines, desc=f"reading {path.name}", unit=" lines", disable=not progress, leave=False
    )
    for item in bar:
        (bad if isinstance(item, BadLine) else examples).append(item)
    return ReadFile(path, examples, bad)


def _schema(task: Task, schema_file: Path | None, train: ReadFile) -> tuple[Any | None, str]:
    """The schema file's labels; without one, those of the first file, as an entity run
    collects them (None when the file cannot give a schema)."""
    if schema_file is not None:
        return task.read_schema(schema_file, None), str(schema_file)
    try:
        schema, _ = task.collect_schema(train.examples)
    except InputError as e:
        return None, f"none: no schema file, and {train.path} gives none ({e})"
    return schema, f"collected from {train.path} (no schema file)"


def _check_lines(report: CheckReport, f: ReadFile) -> None:
    report.files.append(
        {"path": str(f.path), "lines": len(f.examples) + len(f.bad), "examples": len(f.examples)}
    )
    if not f.examples and not f.bad:
        report.add("empty_file", str(f.path))
    for b in f.bad:
        kind = "duplicate_id" if b.error.kind == DUPLICATE_ID else "bad_line"
        report.add(kind, f"{f.path.name}:{b.line}: {b.error.reason}")


def _check_spans(
    report: CheckReport, f: ReadFile, task: Task, tokenizer: PreTrainedTokenizerFast, progress: bool
) -> None:
    """Each gold span placed on the windows training would make of its text."""
    texts = [ex.text for ex in f.examples]
    windows = encode_windows(texts, tokenizer, report.max_length, report.overlap)
    key, n_spans = str(f.path), 0
    pairs = zip(f.examples, windows, strict=True)
    bar = progress_bar(
        pairs, desc=f"checking {f.path.name}", total=len(texts), disable=not progress, leave=False
    )
    for ex, ws in bar:
        bounds = [token_boundaries(w) for w in ws]
        for label, span, start in task.spans(ex):
            n_spans += 1
            count = report.labels.setdefault(label, LabelCount())
            count.spans[key] = count.spans.get(key, 0) + 1
            what = f"{ex.where}: {_name(label)} {span!r}"
            if report.in_schema is not None and label not in report.in_schema:
                report.add("unknown_label", f"{what}: not in the schema")
            if span[:1].isspace() or span[-1:].isspace():
                report.add("whitespace", what)
            if start is None:
                count.not_found += 1
                report.add("not_found", f"{what}: not in the text")
            else:
                _place(
                    report, count, what, ex.text, start, start + len(span), ws, bounds, tokenizer
                )
    report.files[-1]["spans"] = n_spans


def _place(
    report: CheckReport,
    count: LabelCount,
    what: str,
    text: str,
    start: int,
    end: int,
    windows: Sequence[Encoded],
    bounds: Sequence[Boundaries],
    tokenizer: PreTrainedTokenizerFast,
) -> None:
    """Cut if no window sees chars [start, end) whole, else off-boundary if none of those
    that do has tokens starting at start and ending at end: training's order."""
    what += f" [{start}, {end})"
    seen = [(w, b) for w, b in zip(windows, bounds, strict=True) if w.sees(start, end)]
    if not seen:
        count.cut += 1
        report.add("cut", f"{what}: {_cut_reason(report)}")
    elif all(char_span_to_tokens(w, start, end, b) is None for w, b in seen):
        count.off_boundary += 1
        shown = report.shows("off_boundary")  # tokens looked up for the examples only
        tokens = _around(seen[0][0], tokenizer, text, start, end) if shown else ""
        report.add("off_boundary", f"{what}: tokens {tokens}")


def _cut_reason(report: CheckReport) -> str:
    keep = report.max_length - 2
    if report.overlap is None:
        return f"past the {keep} tokens kept without windows (data.windows: false)"
    return f"no window of {keep} tokens (overlapping by {report.overlap}) holds it whole"


def _around(
    enc: Encoded, tokenizer: PreTrainedTokenizerFast, text: str, start: int, end: int, n: int = 2
) -> str:
    """The tokens over [start, end) in «», with n more either side: each as its text, and
    `=token` where the token differs ([UNK], lower case)."""
    real = [(i, s, e) for i, (s, e) in enumerate(enc.offsets) if e > s]
    before = [t for t in real if t[2] <= start][-n:]
    over = [t for t in real if t[1] < end and t[2] > start]
    after = [t for t in real if t[1] >= end][:n]

    def show(i: int, s: int, e: int) -> str:
        piece, token = text[s:e], tokenizer.convert_ids_to_tokens(enc.input_ids[i])
        return piece if token in (piece, "##" + piece) else f"{piece}={token}"

    inner = " | ".join(show(*t) for t in over)
    return " | ".join([*(show(*t) for t in before), f"«{inner}»", *(show(*t) for t in after)])


def _check_leakage(report: CheckReport, f: ReadFile, earlier: dict[str, str]) -> None:
    """The texts of this file that an earlier file already holds (`earlier`: text -> where
    it first was; repeats within a file are not leakage). Adds this file's texts."""
    here: dict[str, str] = {}
    for ex in f.examples:
        if ex.text.strip() and ex.text in earlier:
            report.add("leakage", f"{ex.where}: the text of {earlier[ex.text]}: {_short(ex.text)}")
        here.setdefault(ex.text, ex.where)
    for text, where in here.items():
        earlier.setdefault(text, where)


def format_report(report: CheckReport) -> str:
    """The report for a person: settings, files, the labels table, then each kind found."""
    how = "no windows" if report.overlap is None else f"windows overlapping by {report.overlap}"
    lines = [
        f"task {report.task}; tokenizer {report.tokenizer}",
        f"max_length {report.max_length}, {how}; schema: {report.schema}",
        "",
        "files:",
    ]
    lines += [
        f"  {f['path']}: {f['lines']} lines, {f['examples']} read, {f.get('spans', 0)} spans"
        for f in report.files
    ]
    lines += ["", *_label_table(report)]
    for level in (ERROR, WARNING):
        found = [(k, f) for k, f in report.findings.items() if f.level == level and f.count]
        if found:
            lines += ["", f"{level}s:"]
        for kind, f in found:
            lines.append(f"  {kind.replace('_', ' ')}: {f.count} ({KINDS[kind][1]})")
            lines += [f"    {e}" for e in f.examples]
            if f.count > len(f.examples):
                lines.append(f"    ... and {f.count - len(f.examples)} more")
    n_err, n_warn = report.count(ERROR), report.count(WARNING)
    lines += ["", f"{n_err} errors, {n_warn} warnings (exit code {report.exit_code})"]
    return "\n".join(lines)


def _label_table(report: CheckReport) -> list[str]:
    names = [Path(f["path"]).name for f in report.files]
    heads = [*names, "off-boundary", "cut", "not-found"]
    widths = [max(6, len(h)) for h in heads]
    rows = ["labels: spans per file; those never a label, over all files", ""]
    rows[-1] = "  ".join(h.rjust(w) for h, w in zip(heads, widths, strict=True)) + "  label"
    for label, c in report.labels.items():
        cells = [*(c.spans.get(f["path"], 0) for f in report.files), c.off_boundary, c.cut]
        cells.append(c.not_found)
        note = "" if report.in_schema is None or label in report.in_schema else "  (not in schema)"
        row = "  ".join(str(x).rjust(w) for x, w in zip(cells, widths, strict=True))
        rows.append(f"{row}  {_name(label)}{note}")
    return rows


# ---- gplinker schema --from ------------------------------------------------------------------
@dataclass(frozen=True)
class ImpliedSchema:
    """The schema a training file implies, and the counted rows behind it."""

    task: str
    schema: Any  # the task's schema: to_json() is what read_schema reads back
    rows: list[tuple[Label, int]]

    def to_json(self) -> dict[str, Any]:
        counts = [{"label": list(label), "count": n} for label, n in self.rows]
        return {"task": self.task, "schema": self.schema.to_json(), "counts": counts}

    def table(self) -> str:
        lines = [f"{n:>7}  {_name(label)}" for label, n in self.rows]
        return "\n".join([f"{'count':>7}  label ({_ROWS[self.task]})", *lines])


_ROWS = {
    "entity": "entity type",
    "event": "event type: its events; event type and role: its arguments",
    "relation": "predicate, subject type, object type: triples; the schema keeps each "
    "predicate's most frequent pair",
}


def implied_schema(path: Path, task: str | None = None) -> ImpliedSchema:
    """The schema of every label `path` uses (names sorted), in the task's own format;
    InputError at the first bad line, or when the file has no label."""
    found = tasks.get(task or tasks.guess(path))
    examples = list(read_examples(path, parse=found.parse(None)))
    schema, rows = found.collect_schema(examples)
    if not rows:
        raise InputError("holds no labelled span to build a schema from", path)
    return ImpliedSchema(found.name, schema, rows)


def _describe(tokenizer: PreTrainedTokenizerFast) -> str:
    """Its size and pre-tokenizer, e.g. "3965 tokens, pre-tokenizer BertPreTokenizer +
    Digits" (the split_digits setting shows there)."""
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    pre = spec.get("pre_tokenizer") or {"type": "none"}
    parts = pre.get("pretokenizers", [pre])
    return f"{len(tokenizer)} tokens, pre-tokenizer {' + '.join(p['type'] for p in parts)}"


def _name(label: Iterable[str]) -> str:
    return " ".join(label)


def _short(text: str, n: int = 40) -> str:
    return repr(text if len(text) <= n else text[:n] + "…")
