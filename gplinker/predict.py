"""GPLinker: the user-facing model (folder in, events out) and JSONL prediction."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerFast

from gplinker.data.alignment import Encoded, encode_windows
from gplinker.data.collate import collate, length_sorted_batches
from gplinker.data.reader import STDIN, BadLine, read_lines, write_jsonl
from gplinker.data.tokenizer import load_tokenizer
from gplinker.decoding import decode_batch, merge_windows
from gplinker.errors import GPLinkerError, InputError
from gplinker.modeling.model import GPLinkerModel
from gplinker.schema import Event, Example, Schema

logger = logging.getLogger(__name__)
SCHEMA_NAME = "schema.json"


class GPLinker:
    """`GPLinker.from_pretrained(folder).extract(texts)` -> events per text."""

    def __init__(
        self,
        model: GPLinkerModel,
        tokenizer: PreTrainedTokenizerFast,
        schema: Schema,
        *,
        max_length: int = 512,
        max_candidates: int = 256,
        window_overlap: int | None = 32,
        device: torch.device | str | None = None,
    ):
        """window_overlap: tokens shared by consecutive windows over a text longer than
        max_length; None cuts such texts at max_length instead."""
        if model.folder_config.num_labels != len(schema):
            raise GPLinkerError(
                f"the model has {model.folder_config.num_labels} labels but the schema gives "
                f"{len(schema)}: schema.json does not belong to these weights"
            )
        self.model, self.tokenizer, self.schema = model, tokenizer, schema
        self.max_length, self.max_candidates = max_length, max_candidates
        self.window_overlap = window_overlap
        self.device = torch.device(device) if device else next(model.parameters()).device

    @classmethod
    def from_pretrained(
        cls, directory: str | Path, *, device: str | None = None, max_candidates: int = 256
    ) -> GPLinker:
        directory = Path(directory)
        if not directory.is_dir():
            raise GPLinkerError(f"{directory}: no such model folder")
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        model = GPLinkerModel.from_pretrained(directory).to(device).eval()
        tokenizer = load_tokenizer(directory)
        schema = Schema.from_file(directory / SCHEMA_NAME)
        return cls(
            model,
            tokenizer,
            schema,
            max_length=min(tokenizer.model_max_length, 4096),
            max_candidates=max_candidates,
            device=device,
        )

    def save_pretrained(self, directory: str | Path) -> None:
        """config.json + model.safetensors + tokenizer files + schema.json."""
        directory = Path(directory)
        self.model.save_pretrained(directory)
        self.tokenizer.model_max_length = self.max_length
        self.tokenizer.save_pretrained(directory)
        self.schema.to_file(directory / SCHEMA_NAME)

    def extract(
        self, texts: Sequence[str], *, batch_size: int = 32, progress: bool = False
    ) -> list[list[Event]]:
        windows = encode_windows(texts, self.tokenizer, self.max_length, self.window_overlap)
        return self.extract_encoded(windows, texts, batch_size=batch_size, progress=progress)

    @torch.inference_mode()
    def extract_encoded(
        self,
        windows: Sequence[Sequence[Encoded]],
        texts: Sequence[str],
        *,
        batch_size: int = 32,
        progress: bool = False,
    ) -> list[list[Event]]:
        """Events per text from its windows: length-sorted batches of windows (less
        padding), merged per text, output in input order."""
        was_training = self.model.training
        self.model.eval()
        flat = [(t, w) for t, ws in enumerate(windows) for w in ws]
        found: list[list[Event]] = [[] for _ in flat]
        batches = length_sorted_batches([len(w) for _, w in flat], batch_size)
        for idx in tqdm(batches, desc="predict", disable=not progress, leave=False):
            batch = collate([(flat[i][1], None) for i in idx], len(self.schema))
            batch = batch.to(self.device)
            out = self.model(batch.input_ids, batch.attention_mask)
            events = decode_batch(
                out.argu,
                out.head_link,
                out.tail_link,
                [flat[i][1].offsets for i in idx],
                [texts[flat[i][0]] for i in idx],
                self.schema,
                max_candidates=self.max_candidates,
            )
            for i, ev in zip(idx, events, strict=True):
                found[i] = ev
        self.model.train(was_training)
        results, k = [], 0
        for ws in windows:
            results.append(merge_windows(found[k : k + len(ws)], ws))
            k += len(ws)
        return results


OnError = Literal["fail", "record"]
ERRORS_LOGGED = 10  # record mode: the first bad lines are logged too, not all of them


@dataclass(frozen=True)
class PredictSummary:
    read: int  # input lines, blank and bad ones included
    written: int  # output lines
    errors: int  # bad input lines (record mode; fail mode stops at the first)
    output: str

    def __str__(self) -> str:
        return f"read {self.read} lines, wrote {self.written}, {self.errors} in error"


def predict_file(
    model_dir: str | Path | GPLinker,
    input: str | Path,
    output: str | Path,
    *,
    batch_size: int = 32,
    chunk_size: int = 2048,
    device: str | None = None,
    on_error: OnError = "fail",
    progress: bool = True,
) -> PredictSummary:
    """JSONL in -> JSONL out ("-" = stdin / stdout): one line per input line, in order, ids
    kept (a line without "id" gets "line-N", N its line number).

    A bad input line (invalid UTF-8 or JSON, not an object, no string "text", a lone
    surrogate, a non-string or reused id, a blank line) is an InputError naming file:line:
    on_error="fail" raises it at the first one; "record" writes
    `{"id": <its id or null>, "line": N, "error": "<what>"}` in its place and goes on. Any
    string is a text; an empty one gets an empty event_list. Streams in chunks of
    `chunk_size` lines: memory does not grow with the input, but for the table of ids used
    to catch a reused one. A file output appears only when complete (temp file + rename):
    a failed or interrupted run leaves neither it nor a temporary file.
    """
    if on_error not in ("fail", "record"):
        raise ValueError(f"on_error should be 'fail' or 'record', got {on_error!r}")
    _check_paths(input, output)  # before the model loads: a typo fails at once
    model = (
        model_dir
        if isinstance(model_dir, GPLinker)
        else GPLinker.from_pretrained(model_dir, device=device)
    )
    counts = {"read": 0, "errors": 0}

    def predicted(chunk: list[Example | BadLine]) -> Iterator[dict]:
        texts = [x.text for x in chunk if isinstance(x, Example)]
        events = iter(model.extract(texts, batch_size=batch_size) if texts else [])
        for item in chunk:
            if isinstance(item, Example):
                yield prediction_row(item, next(events))
                continue
            counts["errors"] += 1
            if counts["errors"] <= ERRORS_LOGGED:
                logger.warning("%s (recorded)", item.error)
            if counts["errors"] == ERRORS_LOGGED:
                logger.warning("further bad lines are only recorded in the output")
            yield error_row(item)

    def rows() -> Iterator[dict]:
        chunk: list[Example | BadLine] = []
        for item in read_lines(input, blank_lines="error"):
            counts["read"] += 1
            if isinstance(item, BadLine) and on_error == "fail":
                yield from predicted(chunk)  # the lines before it, then stop
                raise item.error
            chunk.append(item)
            if len(chunk) == chunk_size:
                yield from predicted(chunk)
                chunk = []
        yield from predicted(chunk)

    lines = tqdm(rows(), desc="lines", unit=" lines", disable=not progress)
    written = write_jsonl(output, lines)
    return PredictSummary(counts["read"], written, counts["errors"], str(output))


def _check_paths(input: str | Path, output: str | Path) -> None:
    if str(input) != STDIN:
        try:
            with open(input, "rb"):
                pass
        except OSError as e:
            raise InputError(f"cannot read: {e.strerror or e}", input) from e
    if str(output) != STDIN:
        if Path(output).is_dir():
            raise InputError("cannot write: it is a folder", output)
        if not Path(output).parent.is_dir():
            raise InputError(f"cannot write: no folder {Path(output).parent}", output)


def prediction_row(ex: Example, events: Sequence[Event]) -> dict:
    return {"id": ex.id, "text": ex.text, "event_list": [e.to_json() for e in events]}


def error_row(bad: BadLine) -> dict:
    """What record mode writes for a bad line: its id (or null), line number and why."""
    return {"id": bad.id, "line": bad.line, "error": bad.error.reason}
