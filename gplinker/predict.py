"""GPLinker: the user-facing model (folder in, records out) and JSONL prediction."""

from __future__ import annotations

import dataclasses
import json
import logging
import secrets
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from accelerate import PartialState
from accelerate.utils import (
    broadcast_object_list,
    gather_object,
    get_int_from_env,
    parse_flag_from_env,
)
from transformers import PreTrainedTokenizerFast

from gplinker import tasks
from gplinker.data.alignment import Encoded, encode_windows
from gplinker.data.collate import collate, length_sorted_batches
from gplinker.data.reader import STDIN, BadLine, read_lines, write_jsonl
from gplinker.data.tokenizer import load_tokenizer
from gplinker.errors import GPLinkerError, InputError
from gplinker.export import ONNX_INT8_NAME, ONNX_NAME, OrtEncoder
from gplinker.files import atomic_folder
from gplinker.formats import OUTPUT_FORMATS, OutputFormat, converted, writer
from gplinker.modeling.global_pointer import PointerSpec
from gplinker.modeling.model import WEIGHTS_NAME, GPLinkerModel
from gplinker.progress import progress_bar
from gplinker.tasks.base import Task

logger = logging.getLogger(__name__)
SCHEMA_NAME = "schema.json"
Backend = Literal["torch", "onnx"]  # what runs the encoder; the heads are always torch


class GPLinker:
    """`GPLinker.from_pretrained(folder).extract(texts)` -> the task's records per text:
    `Entity`s, `Triple`s or `Event`s."""

    def __init__(
        self,
        model: GPLinkerModel,
        tokenizer: PreTrainedTokenizerFast,
        schema: Any,
        *,
        task: Task | None = None,
        max_length: int = 512,
        max_candidates: int = 256,
        window_overlap: int | None = 32,
        device: torch.device | str | None = None,
    ):
        """task: default the one the model was trained for. window_overlap: tokens shared
        by consecutive windows over a text longer than max_length; None cuts such texts at
        max_length instead."""
        self.task = task or tasks.get(model.folder_config.task)
        expected = tuple(self.task.heads(schema))
        if model.heads != expected:
            raise GPLinkerError(
                f"the model's heads {_shapes(model.heads)} are not those the schema gives "
                f"{_shapes(expected)} for {self.task.name}: schema.json does not belong to "
                "these weights"
            )
        self.model, self.tokenizer, self.schema = model, tokenizer, schema
        self.max_length, self.max_candidates = max_length, max_candidates
        self.window_overlap = window_overlap
        self.device = torch.device(device) if device else next(model.parameters()).device

    @classmethod
    def from_pretrained(
        cls,
        directory: str | Path,
        *,
        device: str | None = None,
        max_candidates: int = 256,
        int8: bool = False,
        backend: Backend = "torch",
    ) -> GPLinker:
        """int8: the encoder's Linear layers but its last layer's dynamically quantized, for
        CPUs (GPLinkerModel.quantize_encoder; with backend="onnx", the folder's int8 ONNX
        encoder). backend="onnx": the encoder in ONNX Runtime (gplinker.export)."""
        directory = Path(directory)
        if not directory.is_dir():
            raise GPLinkerError(
                f"{directory}: no such model folder (models are not fetched from the hub; "
                "give a local folder, e.g. a run's best/)"
            )
        cpu_only = int8 or backend == "onnx" or not torch.cuda.is_available()
        device = device or ("cpu" if cpu_only else "cuda")
        if (int8 or backend == "onnx") and torch.device(device).type != "cpu":
            what = "the ONNX backend" if backend == "onnx" else "int8"
            raise GPLinkerError(f"{what} runs on the CPU, not on {device}")
        model = GPLinkerModel.from_pretrained(directory).to(device).eval()
        if backend == "onnx":
            name = ONNX_INT8_NAME if int8 else ONNX_NAME
            model.encoder = OrtEncoder(directory / name, model.encoder.config)
        elif int8:
            model.quantize_encoder()
        tokenizer = load_tokenizer(directory)
        task = tasks.get(model.folder_config.task)
        schema = task.read_schema(directory / SCHEMA_NAME, None)
        return cls(
            model,
            tokenizer,
            schema,
            task=task,
            max_length=min(tokenizer.model_max_length, 4096),
            max_candidates=max_candidates,
            device=device,
        )

    def save_pretrained(self, directory: str | Path) -> None:
        """config.json + model.safetensors + tokenizer files + schema.json, written so that
        a kill at any moment leaves the previous folder or this one, loadable."""
        with atomic_folder(directory, last=WEIGHTS_NAME) as tmp:
            self.model.save_pretrained(tmp)
            self.tokenizer.model_max_length = self.max_length
            self.tokenizer.save_pretrained(tmp)
            self.schema.to_file(tmp / SCHEMA_NAME)

    def extract(
        self, texts: Sequence[str], *, batch_size: int = 32, progress: bool = False
    ) -> list[list[Any]]:
        """The task's records per text, in input order."""
        windows = encode_windows(texts, self.tokenizer, self.max_length, self.window_overlap)
        return self.extract_encoded(windows, texts, batch_size=batch_size, progress=progress)

    def extract_encoded(
        self,
        windows: Sequence[Sequence[Encoded]],
        texts: Sequence[str],
        *,
        batch_size: int = 32,
        progress: bool = False,
    ) -> list[list[Any]]:
        """Records per text from its windows."""
        found = self.decode_encoded(windows, texts, batch_size=batch_size, progress=progress)
        return [self.task.records(f) for f in found]

    @torch.inference_mode()
    def decode_encoded(
        self,
        windows: Sequence[Sequence[Encoded]],
        texts: Sequence[str],
        *,
        batch_size: int = 32,
        progress: bool = False,
    ) -> list[Any]:
        """What the task's decoder found per text (for events: with each text's clique
        arguments, what the reference's argument F1 counts): length-sorted batches of
        windows (less padding), merged per text, output in input order."""
        was_training = self.model.training
        self.model.eval()
        flat = [(t, w) for t, ws in enumerate(windows) for w in ws]
        found: list[Any] = [None] * len(flat)
        batches = length_sorted_batches([len(w) for _, w in flat], batch_size)
        for idx in progress_bar(batches, desc="predict", disable=not progress, leave=False):
            batch = collate([(flat[i][1], None) for i in idx]).to(self.device)
            # EGP: candidates straight from the factored parts, no [B, H, L, L] tensor
            out = self.model(batch.input_ids, batch.attention_mask, factored=True)
            decoded = self.task.decode(
                out,
                [flat[i][1].offsets for i in idx],
                [texts[flat[i][0]] for i in idx],
                self.schema,
                max_candidates=self.max_candidates,
            )
            for i, d in zip(idx, decoded, strict=True):
                found[i] = d
        self.model.train(was_training)
        results, k = [], 0
        for ws in windows:
            results.append(self.task.merge(found[k : k + len(ws)], ws))
            k += len(ws)
        return results


def _shapes(heads: Sequence[PointerSpec]) -> str:
    return "[" + ", ".join(f"{h.name}({h.num_labels})" for h in heads) + "]"


OnError = Literal["fail", "record"]
ERRORS_LOGGED = 10  # record mode: the first bad lines are logged too, not all of them
# how many processes a launcher started (the variables Accelerate itself reads): `accelerate
# launch` and torchrun set WORLD_SIZE, MPI launchers the others
WORLD_SIZE_VARS = ["WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE"]


@dataclass(frozen=True)
class PredictSummary:
    read: int  # input lines, blank and bad ones included
    written: int  # output lines
    errors: int  # bad input lines (record mode; fail mode stops at the first)
    output: str
    process: int = 0  # this process's index in a sharded run; 0 writes the output
    processes: int = 1  # processes the input was sharded over

    def __str__(self) -> str:
        return f"read {self.read} lines, wrote {self.written}, {self.errors} in error"


def process_group() -> PartialState | None:
    """Accelerate's state of the processes this one was launched with (`accelerate launch`,
    torchrun), or None when it runs alone: then nothing of Accelerate is set up. Without
    CUDA, or with ACCELERATE_USE_CPU=1, the group is CPU processes over gloo (a bare
    PartialState() reads neither and would see one process)."""
    if get_int_from_env(WORLD_SIZE_VARS, 1) <= 1:
        return None
    cpu = not torch.cuda.is_available() or parse_flag_from_env("ACCELERATE_USE_CPU")
    state = PartialState(cpu=cpu)
    return state if state.num_processes > 1 else None


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
    format: OutputFormat = "jsonl",
    int8: bool = False,
    backend: Backend = "torch",
) -> PredictSummary:
    """JSONL in -> JSONL out ("-" = stdin / stdout): one line per input line, in order, ids
    kept (a line without "id" gets "line-N", N its line number).

    A bad input line (invalid UTF-8 or JSON, not an object, no string "text", a lone
    surrogate, a non-string or reused id, a blank line) is an InputError naming file:line:
    on_error="fail" raises it at the first one; "record" writes
    `{"id": <its id or null>, "line": N, "error": "<what>"}` in its place and goes on. Any
    string is a text; an empty one gets an empty list of records. Streams in chunks of
    `chunk_size` lines: memory does not grow with the input (the table of ids that catches a
    reused one moves to a temporary file past 200,000 lines, data/ids.py). A file output
    appears only when complete (temp file + rename): a failed or interrupted run leaves
    neither it nor a temporary file.

    Launched as N > 1 processes (`accelerate launch`, torchrun), the input is sharded:
    every process reads every line, so all meet the same bad lines and reused ids, but
    predicts only the lines i (from 0) with i % N == its index, on its own device unless
    `device` is given, into a hidden shard file beside the output. Process 0 then
    interleaves the shards into the output (`merge_shards`: one line of each in turn, so
    memory stays constant) and removes them. The output and the counts are those of one
    process. In fail mode every process stops at the bad line and nothing is left. stdin
    cannot be shared: it is an InputError. format="doccano" | "label-studio": a file that
    tool imports as pre-annotations (`gplinker.formats`); int8, backend: from_pretrained's."""
    if on_error not in ("fail", "record"):
        raise ValueError(f"on_error should be 'fail' or 'record', got {on_error!r}")
    if format not in OUTPUT_FORMATS:
        raise ValueError(f"format should be one of {', '.join(OUTPUT_FORMATS)}, got {format!r}")
    group = process_group()
    rank, n = (group.process_index, group.num_processes) if group else (0, 1)
    main = rank == 0
    model = _model_for(model_dir, input, output, device, group, int8, backend)
    task, counts = model.task, {"read": 0, "errors": 0}

    def bad_line(item: BadLine) -> None:
        counts["errors"] += 1
        if main and counts["errors"] <= ERRORS_LOGGED:
            logger.warning("%s (recorded)", item.error)
        if main and counts["errors"] == ERRORS_LOGGED:
            logger.warning("further bad lines are only recorded in the output")

    def predicted(chunk: list[Any]) -> Iterator[dict]:
        good = [x for x in chunk if not isinstance(x, BadLine)]
        windows = encode_windows(
            [x.text for x in good], model.tokenizer, model.max_length, model.window_overlap
        )
        found = iter(model.decode_encoded(windows, [x.text for x in good], batch_size=batch_size))
        for item in chunk:
            yield (
                error_row(item) if isinstance(item, BadLine) else task.output_row(item, next(found))
            )

    def rows() -> Iterator[dict]:
        """This process's rows: every line's when alone, else every n-th from `rank`."""
        chunk: list[Any] = []
        try:
            lines = read_lines(input, blank_lines="error", parse=task.parse(None))
            for i, item in enumerate(lines):
                counts["read"] += 1
                if isinstance(item, BadLine):
                    if on_error == "fail":
                        if n == 1:  # the lines before it go out (stdout), then stop
                            yield from predicted(chunk)
                        raise item.error
                    bad_line(item)
                if i % n != rank:
                    continue
                chunk.append(item)
                if len(chunk) == chunk_size:
                    yield from predicted(chunk)
                    chunk = []
        except GPLinkerError as e:  # every process reads every line: each meets it
            _met_by_every_process(e, group)
            raise
        yield from predicted(chunk)

    lines = progress_bar(rows(), desc="lines", unit=" lines", disable=not (progress and main))

    def write(rows_out: Iterable[dict]) -> int:
        """Into the output, in the format asked for: a sharded run's shards stay JSONL."""
        return writer(format)(output, converted(rows_out, format, task.name))

    if n == 1:
        written = write(lines)
        return PredictSummary(counts["read"], written, counts["errors"], str(output))

    return _write_sharded(lines, input, output, counts, rank, n, write)


def _model_for(
    model_dir: str | Path | GPLinker,
    input: str | Path,
    output: str | Path,
    device: str | None,
    group: PartialState | None,
    int8: bool = False,
    backend: Backend = "torch",
) -> GPLinker:
    """The model, once the paths are known to work (a typo fails before it loads); each
    process of a sharded run on its own device unless `device` is given."""
    try:
        if group is not None and str(input) == STDIN:
            raise InputError(
                f"stdin cannot be shared by {group.num_processes} processes (each reads every "
                "line): give --input a file",
                "<stdin>",
            )
        _check_paths(input, output)
        if isinstance(model_dir, GPLinker):
            return model_dir
        if group is not None and device is None:
            device = str(group.device)
        return GPLinker.from_pretrained(model_dir, device=device, int8=int8, backend=backend)
    except GPLinkerError as e:
        _met_by_every_process(e, group)
        raise


def _write_sharded(
    lines: Iterable[dict],
    input: str | Path,
    output: str | Path,
    counts: dict[str, int],
    rank: int,
    n: int,
    write: Callable[[Iterable[dict]], int],
) -> PredictSummary:
    """This process's rows into its shard; process 0 then merges the shards in order and
    writes them out with `write`."""
    shards = shard_paths(output, n)
    if rank == 0:
        logger.info("predicting over %d processes, then merging %s", n, ", ".join(map(str, shards)))
    write_jsonl(shards[rank], lines)
    # a barrier too: process 0 goes on once every shard is complete
    reads = gather_object([counts["read"]])
    summary = PredictSummary(counts["read"], counts["read"], counts["errors"], str(output), rank, n)
    if rank != 0:
        return summary  # process 0 writes the output
    try:
        if set(reads) != {counts["read"]}:
            raise InputError(
                f"the processes read different numbers of lines ({', '.join(map(str, reads))}): "
                "did the input change while they read it?",
                input,
            )
        written = write(merge_shards(shards))
    finally:
        for shard in shards:
            shard.unlink(missing_ok=True)
    return dataclasses.replace(summary, written=written)


def shard_paths(output: str | Path, n: int) -> list[Path]:
    """Where the n processes of a sharded run write their rows: hidden files beside the
    output (in the temp folder for stdout), named with a random token drawn by process 0,
    so that two runs never mix: `.NAME.TOKEN.part-RANK.tmp`. A collective call."""
    token = broadcast_object_list([secrets.token_hex(4)], from_process=0)[0]
    if str(output) == STDIN:
        folder, name = Path(tempfile.gettempdir()), "stdout"
    else:
        folder, name = Path(output).parent, Path(output).name
    return [folder / f".{name}.{token}.part-{r}.tmp" for r in range(n)]


def merge_shards(shards: Sequence[str | Path]) -> Iterator[dict]:
    """The rows of round-robin shards back in input order: input line i was written to
    shards[i % N] as its (i // N)-th line. Reads one line of each shard in turn, so memory
    does not grow with the input. The shards must interleave: once one ends, every later
    one has ended too and every earlier one ends after one more line; anything else is a
    GPLinkerError (a shard cut short or written twice)."""
    with ExitStack() as stack:
        files = []
        for path in shards:
            try:
                files.append(stack.enter_context(open(path, "rb")))
            except OSError as e:
                raise InputError(
                    f"cannot read this shard: {e.strerror or e} (do all processes see this "
                    "folder?)",
                    path,
                ) from e
        while True:
            for r, f in enumerate(files):
                line = f.readline()
                if line:
                    yield json.loads(line)
                    continue
                longer = [s for s, g in enumerate(files) if s != r and g.readline()]
                if longer:
                    raise GPLinkerError(
                        f"{shards[longer[0]]}: the shards do not interleave: {shards[r]} ended "
                        "before it"
                    )
                return


def _met_by_every_process(e: GPLinkerError, group: PartialState | None) -> None:
    """Mark an error that every process of a sharded run meets alike, at the same line (a
    bad line, a missing file, stdin): `e.process_group` is then set. The command line
    prints it from process 0 only, and no process exits before process 0 has printed it
    (a launcher stops the others as soon as one fails)."""
    if group is not None:
        e.process_group = group  # type: ignore[attr-defined]


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


def error_row(bad: BadLine) -> dict:
    """What record mode writes for a bad line: its id (or null), line number and why."""
    return {"id": bad.id, "line": bad.line, "error": bad.error.reason}
