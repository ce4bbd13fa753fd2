"""Command line: gplinker train / predict / convert / serve / export / evaluate / schema / check /
view / plot. Each parses, calls the library once, prints a summary. Library errors (GPLinkerError)
become one `error:` line and exit code 2."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from gplinker.allocator import restart_with_tcmalloc
from gplinker.errors import GPLinkerError, InputError

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    # docstring paragraphs reflow to the terminal's width (their own line breaks are only
    # where the source wraps): Markdown joins a paragraph's lines, a blank line parts them
    rich_markup_mode="markdown",
    help="Chinese information extraction with GPLinker: entities (CLUENER, CMeEE), relation "
    "triples (DuIE) and events (DuEE) from GlobalPointer heads. Train a model on JSONL, "
    "extract from new text, and score predictions against gold. "
    "Start with: gplinker train --config configs/sample.yaml (events), "
    "configs/sample-entity.yaml or configs/sample-relation.yaml",
)
_state = {"debug": False}


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option(help="show full tracebacks")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="only warnings and errors")] = False,
) -> None:
    _state["debug"] = debug
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
        force=True,
    )
    for noisy in ("httpx", "urllib3", "filelock", "huggingface_hub"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@contextmanager
def user_errors(line_hint: str | None = None) -> Iterator[None]:
    """GPLinkerError -> `error: ...` and exit code 2; line_hint follows errors about a line."""
    try:
        yield
    except GPLinkerError as e:
        if _state["debug"]:
            raise
        typer.echo(f"error: {e}", err=True)
        if line_hint and isinstance(e, InputError) and e.line is not None:
            typer.echo(line_hint, err=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise typer.Exit(130) from None


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def train(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            exists=True,
            dir_okay=False,
            help="YAML recipe, e.g. configs/sample.yaml",
        ),
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option(
            "--resume",
            exists=True,
            file_okay=False,
            help="run folder of a stopped or killed run: go on from its last checkpoint with "
            "its config.yaml, ending as if it had never stopped",
        ),
    ] = None,
) -> None:
    """Train a model and keep the best one by dev F1 (entity, triple or event F1: the
    recipe's `task`).

    Extra words override the recipe, e.g. `train.epochs=3 output_dir=runs/x`.
    The run folder gets config.yaml, train.log, metrics.jsonl (one line per epoch), run.json,
    checkpoints/ (the latest, for --resume), best/ and last/ (model folders for
    `gplinker predict`). For several processes (DDP): `accelerate launch -m gplinker train ...`.
    """
    with user_errors():
        from gplinker import config as cfg
        from gplinker import training

        if (config is None) == (resume is None):
            raise GPLinkerError("give --config RECIPE to start a run, or --resume RUN_FOLDER")
        if resume is not None:
            config = resume / "config.yaml"
            if not config.is_file():
                raise GPLinkerError(f"{resume}: no config.yaml, not a gplinker run folder")
            conf = cfg.load_config(config, [*ctx.args, f"output_dir={resume}"])
        else:
            conf = cfg.load_config(config, ctx.args)
        conf.output_dir.mkdir(parents=True, exist_ok=True)
        if os.environ.get("RANK", "0") == "0":  # under DDP one process logs to the file
            handler = logging.FileHandler(conf.output_dir / "train.log", encoding="utf-8")
            handler.setFormatter(logging.getLogger().handlers[0].formatter)
            logging.getLogger().addHandler(handler)
        else:
            logging.getLogger().setLevel(logging.WARNING)
        result = training.train(conf, resume=resume is not None)
        if os.environ.get("RANK", "0") != "0":
            return
        from gplinker.metrics import format_metrics

        typer.echo(f"model: {result.best_dir}")
        if result.best:
            typer.echo(f"best dev metrics (epoch {result.best_epoch}):")
            typer.echo(format_metrics(result.best))


@app.command()
def predict(
    model: Annotated[Path, typer.Option("--model", "-m", help="model folder (a run's best/)")],
    input: Annotated[str, typer.Option("--input", "-i", help="JSONL with id and text; - = stdin")],
    output: Annotated[str, typer.Option("--output", "-o", help="JSONL to write; - = stdout")],
    batch_size: Annotated[int, typer.Option(min=1, help="texts per forward pass")] = 32,
    device: Annotated[
        str | None,
        typer.Option(help="cpu, cuda, cuda:1 (default: best; sharded: each process's own)"),
    ] = None,
    on_error: Annotated[
        Literal["fail", "record"],
        typer.Option(
            "--on-error",
            help="a bad input line: fail = stop with `error: file:line: what` (no output file "
            'is left); record = write {"id", "line", "error"} in its place and go on',
        ),
    ] = "fail",
    output_format: Annotated[
        Literal["jsonl", "doccano", "label-studio"],
        typer.Option(
            "--format",
            help="jsonl = the lines below; doccano = its JSONL import, label-studio = one "
            "JSON list of tasks with the records as predictions: pre-annotations to correct",
        ),
    ] = "jsonl",
    int8: Annotated[
        bool,
        typer.Option(
            "--int8",
            help="CPU: the encoder's Linear layers dynamically quantized to int8, but for its "
            "last layer's (the heads and the decoder stay fp32; docs/performance.md has its "
            "speed and F1)",
        ),
    ] = False,
    backend: Annotated[
        Literal["torch", "onnx"],
        typer.Option(help="what runs the encoder: onnx = ONNX Runtime (gplinker export --onnx)"),
    ] = "torch",
) -> None:
    """Extract what the model was trained for: one output line per input line, same order,
    same ids.

    Output lines keep "id" and "text" and add, for entities, "entities": [{"entity",
    "label", "start_offset", "end_offset"}] (end exclusive); for relations, "spo_list":
    [{"subject", "subject_type", "predicate", "object", "object_type",
    "subject_start_index", "object_start_index"}]; for events, "event_list":
    [{"event_type", "trigger", "trigger_start_index", "arguments": [{"role", "argument",
    "argument_start_index"}]}]. A line without "id" gets "line-N" (its line number); an
    empty text gets an empty list. Ends with "read N lines, wrote N, M in error" on stderr.

    Many processes: `accelerate launch --num_processes N -m gplinker predict ...` (or
    torchrun) shards the input. Each process reads every line but predicts every N-th one,
    on its own device, into a hidden shard beside the output. Process 0 merges the shards
    into one output, identical to a one-process run, and prints the summary. --input must
    be a file there (stdin cannot be shared). On CPUs set ACCELERATE_USE_CPU=1 and add
    --multi_gpu to `accelerate launch` (docs/reliability.md).

    --format doccano or label-studio writes a file for that tool to import instead, with
    the mapping of `gplinker convert` (README: "From an annotation tool"); error records
    and texts the tool refuses are left out of it, with a warning that counts them.
    """
    hint = None
    if on_error == "fail":
        hint = "(--on-error record writes an error record for each bad line and goes on)"
    group = None  # sharded over processes, an error they all meet: its process group
    try:
        with user_errors(hint):
            from gplinker.predict import predict_file, process_group

            try:
                summary = predict_file(
                    model,
                    input,
                    output,
                    batch_size=batch_size,
                    device=device,
                    on_error=on_error,
                    format=output_format,
                    int8=int8,
                    backend=backend,
                )
            except GPLinkerError as e:
                group = getattr(e, "process_group", None)
                if group is not None and not group.is_main_process:
                    raise typer.Exit(2) from None  # process 0 prints it
                raise
            if summary.process == 0:  # of a sharded run, process 0 reports for all
                typer.echo(str(summary), err=True)
            if summary.processes > 1:
                group = process_group()
    finally:
        # a sharded run's processes exit together, once process 0 has written the output or
        # printed the error, and close their process group first: a process whose peer had
        # already exited could abort in gloo's teardown ("terminate called without an
        # active exception"), failing a run whose output was complete
        if group is not None:
            group.wait_for_everyone()
            group.destroy_process_group()


@app.command()
def convert(
    input: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            help="the tool's export: doccano JSONL, or Label Studio's JSON export",
            metavar="INPUT",
            show_default=False,
        ),
    ],
    output: Annotated[str, typer.Option("--output", "-o", help="JSONL to write; - = stdout")],
    tool: Annotated[
        Literal["doccano", "label-studio"],
        typer.Option("--from", help="the tool that exported INPUT", show_default=False),
    ],
    task: Annotated[
        Literal["entity", "relation", "event"],
        typer.Option(help="what to read the annotations as", show_default=False),
    ],
    offsets: Annotated[
        Literal["utf-16", "code-points"] | None,
        typer.Option(
            help="how the export counts characters [default: doccano utf-16 (as the browser "
            "does: an emoji counts two), Label Studio code-points]",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Convert an annotation tool's export into this project's JSONL, ready for `gplinker
    train`.

    Entities: every span, its label the type. Relations: each relation from a subject span
    to an object span, labelled with the predicate (the spans' labels are the types).
    Events (as PaddleNLP UIE): a span labelled `{event type}触发词` is a trigger; each
    relation from it, labelled with the role, goes to an argument. Ids are kept (else
    line-N or the task's id). A span whose text does not match, a relation to a missing
    id or an ambiguous annotation stops with `error: file:line: what` (Label Studio: the
    file and task); what the task's format has no place for is counted in the summary on
    stderr. The output file appears whole or not at all.
    """
    with user_errors():
        from gplinker.formats import convert_file

        summary = convert_file(input, output, tool=tool, task=task, offsets=offsets)
        typer.echo(str(summary), err=True)


@app.command()
def serve(
    model: Annotated[Path, typer.Option("--model", "-m", help="model folder (a run's best/)")],
    host: Annotated[
        str,
        typer.Option(
            help="address to listen on; anything but loopback (e.g. 0.0.0.0) exposes the "
            "model to the network: set GPLINKER_API_KEY and put a TLS proxy in front"
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535)] = 8000,
    batch_size: Annotated[
        int, typer.Option(min=1, help="texts of concurrent requests gathered into one batch")
    ] = 64,
    forward_batch: Annotated[
        int,
        typer.Option(
            min=1,
            help="windows per forward pass, a batch's sorted by length (16 was best at "
            "bert-base size on 2 cores, 32 for the 2-layer sample model)",
        ),
    ] = 16,
    max_wait_ms: Annotated[
        float,
        typer.Option(
            min=0,
            help="under concurrent load, how long a batch waits for as many requests as the "
            "last one held (a lone client's requests never wait)",
        ),
    ] = 10.0,
    max_texts: Annotated[int, typer.Option(min=1, help="texts per request (more: 413)")] = 64,
    max_chars: Annotated[
        int, typer.Option(min=1, help="characters per text (more: 413)")
    ] = 200_000,
    max_body: Annotated[int, typer.Option(min=1, help="bytes per request body (more: 413)")] = 4
    * 2**20,
    max_queue: Annotated[
        int, typer.Option(min=1, help="texts waiting for the model (more: 503 + Retry-After)")
    ] = 512,
    cors: Annotated[
        list[str] | None,
        typer.Option(
            help="an origin whose pages may call the API, e.g. https://app.example.com "
            "(repeat for more); other cross-origin requests get 403"
        ),
    ] = None,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, cuda:1 (default: best)")] = None,
    access_log: Annotated[bool, typer.Option(help="log every request")] = False,
    int8: Annotated[
        bool, typer.Option("--int8", help="CPU: the encoder quantized to int8 (see predict)")
    ] = False,
    backend: Annotated[
        Literal["torch", "onnx"],
        typer.Option(help="what runs the encoder: onnx = ONNX Runtime (gplinker export --onnx)"),
    ] = "torch",
) -> None:
    """Serve a model over HTTP: POST /extract, GET /schema, GET /health, the page at /, the
    OpenAPI docs at /docs.

    POST /extract takes {"texts": [...]} or {"text": "..."} and answers {"task",
    "results"}: per text, the line `gplinker predict` writes for it, without the id.
    Requests that arrive together share one forward pass. When the environment variable
    GPLINKER_API_KEY is set, every route but /health, the page and the docs needs
    `Authorization: Bearer <key>` (401 otherwise).
    """
    with user_errors():
        from gplinker.serve import Limits, run_server

        try:
            limits = Limits(
                max_texts=max_texts,
                max_chars=max_chars,
                max_body=max_body,
                max_queue=max_queue,
                batch_size=batch_size,
                forward_batch=forward_batch,
                max_wait_ms=max_wait_ms,
            )
        except ValueError as e:
            raise typer.BadParameter(str(e), param_hint="--max-queue") from None
        api_key = os.environ.get("GPLINKER_API_KEY") or None
        run_server(
            str(model),
            host=host,
            port=port,
            limits=limits,
            api_key=api_key,
            cors=cors or (),
            device=device,
            access_log=access_log,
            int8=int8,
            backend=backend,
        )


@app.command()
def export(
    model: Annotated[Path, typer.Option("--model", "-m", help="model folder (a run's best/)")],
    onnx: Annotated[
        Path, typer.Option("--onnx", file_okay=False, help="folder to write (may be --model)")
    ],
    int8: Annotated[bool, typer.Option(help="also write the int8-quantized encoder")] = True,
) -> None:
    """Export a model's encoder to ONNX, for `predict --backend onnx` and `serve --backend
    onnx` on CPUs.

    The folder written is the model folder plus encoder.onnx (and encoder.int8.onnx, its
    weights but the last layer's quantized by onnxruntime, which --int8 then uses); the
    pointer heads and the decoder stay in PyTorch, fp32. Needs the onnx extra:
    pip install -e ".[onnx]"."""
    with user_errors():
        from gplinker.export import export_onnx
        from gplinker.predict import GPLinker

        linker = GPLinker.from_pretrained(model, device="cpu")
        for path in export_onnx(linker, model, onnx, int8=int8):
            typer.echo(f"wrote {path}", err=True)


@app.command()
def evaluate(
    gold: Annotated[Path, typer.Option(exists=True, dir_okay=False, help="gold JSONL")],
    pred: Annotated[Path, typer.Option(exists=True, dir_okay=False, help="predicted JSONL")],
    task: Annotated[
        Literal["entity", "relation", "event"] | None,
        typer.Option(
            help="default: told by the gold file's keys (entities/label, spo_list, event_list)"
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
) -> None:
    """Score predictions against gold, in any format the task reads (CLUENER, the
    `entities` list, DuIE, DuEE, and gplinker's own output).

    Entities: exact-match P/R/F1 on (type, start, end), overall, per type and on nested
    entities. Relations: exact-match P/R/F1 on (subject, predicate, object) strings, overall
    and per predicate. Events: event, argument and trigger F1 (exact match) and the official
    LIC2020/DuEE metric (case-insensitive character-level argument F1); a DuEE submission
    (no triggers, no offsets) is scored on the official metric only, and the output says
    which metrics were left out and why."""
    with user_errors():
        from dataclasses import asdict

        from gplinker import tasks
        from gplinker.metrics import format_metrics

        scorer = tasks.get(task or tasks.guess(gold))
        pred_records = scorer.read_scored(pred, None)
        gold_records = scorer.read_scored(gold, None)
        results, skipped = (
            scorer.evaluate(pred_records, gold_records),
            scorer.unscored(pred_records),
        )
        if as_json:
            out: dict = {k: asdict(v) for k, v in results.items()}
            if skipped:
                out["unscored"] = skipped
            typer.echo(json.dumps(out, indent=1, ensure_ascii=False))
        else:
            typer.echo(format_metrics(results))
            for name, why in skipped.items():
                typer.echo(f"not scored: {name} F1 ({why} in {pred})")


@app.command()
def schema(
    source: Annotated[
        Path,
        typer.Option(
            "--from",
            exists=True,
            dir_okay=False,
            help="training JSONL (any format the task reads)",
            show_default=False,
        ),
    ],
    task: Annotated[
        Literal["entity", "relation", "event"] | None,
        typer.Option(
            help="default: told by the file's keys (entities/label, spo_list, event_list)"
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", dir_okay=False, help="schema file to write (default: stdout)"
        ),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help='print {"task", "schema", "counts"} on stdout instead of the table on stderr',
        ),
    ] = False,
) -> None:
    """Write the schema a training file implies, for data without a schema file.

    Every label the file uses, names sorted, in the task's own schema format (the one
    `data.schema_file` and a model folder's schema.json take): entity types; event types
    with their roles; predicates with their subject and object types (a predicate seen with
    several type pairs keeps its most frequent). A table of the counts behind it goes to
    stderr. A bad line stops with `error: file:line: what`.
    """
    with user_errors():
        from gplinker.check import implied_schema

        found = implied_schema(source, task)
        text = json.dumps(found.schema.to_json(), ensure_ascii=False, indent=1)
        if output is not None:
            try:
                output.write_text(text + "\n", encoding="utf-8")
            except OSError as e:
                raise InputError(f"cannot write: {e.strerror or e}", output) from e
        if as_json:
            typer.echo(json.dumps(found.to_json(), ensure_ascii=False, indent=1))
            return
        if output is None:
            typer.echo(text)
        typer.echo(found.table(), err=True)
        if output is not None:
            typer.echo(f"wrote {output} ({len(found.rows)} rows counted)", err=True)


@app.command()
def check(
    words: Annotated[
        list[str] | None,
        typer.Argument(
            help="the JSONL files to check, the training file first; with --config: "
            "overrides such as model.split_digits=true",
            metavar="[DATA.jsonl... | KEY=VALUE...]",
            show_default=False,
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            exists=True,
            dir_okay=False,
            help="YAML recipe: check its data.train and data.dev with its tokenizer",
        ),
    ] = None,
    task: Annotated[
        Literal["entity", "relation", "event"] | None,
        typer.Option(help="files only; default: told by the first file's keys"),
    ] = None,
    schema: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="files only; the labels (default: those of the first file)",
        ),
    ] = None,
    tokenizer: Annotated[
        str | None,
        typer.Option(
            help="files only; a tokenizer folder or hub name, or 'wordpiece' (built from the "
            "first file, as for a random-init model) [default: wordpiece]",
            show_default=False,
        ),
    ] = None,
    split_digits: Annotated[
        bool | None,
        typer.Option(
            "--split-digits/--no-split-digits",
            help="files only; split digit runs from the letters they touch (default: "
            "training's, on for 'wordpiece', off for a folder)",
            show_default=False,
        ),
    ] = None,
    max_length: Annotated[
        int | None,
        typer.Option(min=8, max=4096, help="files only; tokens per window [default: 128]"),
    ] = None,
    windows: Annotated[
        bool | None,
        typer.Option(
            "--windows/--no-windows",
            help="files only; cover long texts with overlapping windows, or cut them "
            "[default: windows]",
            show_default=False,
        ),
    ] = None,
    window_overlap: Annotated[
        int | None,
        typer.Option(min=0, help="files only; tokens shared by windows [default: 32]"),
    ] = None,
    examples: Annotated[int, typer.Option(min=0, help="examples shown per kind")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Before training, report what the model will and will not see of a data set.

    `gplinker check --config RECIPE [KEY=VALUE...]` checks the recipe's data.train and
    data.dev with the tokenizer, max_length and windows its training run would build;
    `gplinker check DATA.jsonl... --task T` checks files, the first one as training data.

    The report counts spans per label and file, then lists with counts and first examples
    (file:line) errors: bad lines, duplicate ids, empty files, labels the schema lacks; and
    warnings: spans off token boundaries (with the tokens around), spans no window holds,
    strings their text lacks, whitespace at a span's edge, train texts in dev, schema
    labels never used. Exit code 1 with errors, 0 with warnings only, 2 if it cannot run.
    """
    given = {
        "--task": task,
        "--schema": schema,
        "--tokenizer": tokenizer,
        "--split-digits": split_digits,
        "--max-length": max_length,
        "--windows": windows,
        "--window-overlap": window_overlap,
    }
    with user_errors():
        from gplinker import check as checking

        report = _check_report(words or [], config, given, examples)
        if as_json:
            typer.echo(json.dumps(report.to_json(), ensure_ascii=False, indent=1))
        else:
            typer.echo(checking.format_report(report))
    if report.exit_code:
        raise typer.Exit(report.exit_code)


def _check_report(words: list[str], config: Path | None, given: dict, examples: int) -> Any:
    """The check of a recipe (words: its overrides) or of files (words: the files, `given`
    the options for them)."""
    from gplinker import check as checking

    if config is not None:
        from gplinker.config import load_config

        extra = [name for name, value in given.items() if value is not None]
        if extra:
            raise GPLinkerError(
                f"{', '.join(extra)}: for files only; with --config give KEY=VALUE "
                "overrides (e.g. model.tokenizer=..., data.max_length=256)"
            )
        return checking.check_config(load_config(config, words), max_shown=examples, progress=True)
    return checking.check_data(
        [Path(w) for w in words],
        given["--task"],
        schema_file=given["--schema"],
        tokenizer=given["--tokenizer"] or "wordpiece",
        split_digits=given["--split-digits"],
        max_length=given["--max-length"] or 128,
        windows=given["--windows"] is not False,
        window_overlap=32 if given["--window-overlap"] is None else given["--window-overlap"],
        max_shown=examples,
        progress=True,
    )


@app.command()
def view(
    preds: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            help="JSONL written by `gplinker predict` (entities, relations or events; the "
            "task is told by the lines' keys)",
            metavar="PREDS.jsonl",
            show_default=False,
        ),
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", dir_okay=False, help="HTML file to write")
    ] = Path("view.html"),
    limit: Annotated[
        int, typer.Option(min=0, help="lines drawn; the rest are checked and counted")
    ] = 200,
) -> None:
    """Draw predictions as one HTML file to open in a browser, offline: per line its text
    with the spans highlighted (event triggers and arguments coloured by role, entities by
    label, triples' subjects and objects by entity type), a legend of the colours and a
    table of the records.

    The same colours and drawing as the page of `gplinker serve`. Error records of
    `predict --on-error record` are shown as errors; a malformed line stops with
    `error: file:line: what`, and no HTML is written."""
    with user_errors():
        from gplinker.view import view_file

        typer.echo(str(view_file(preds, output, limit=limit)))


@app.command()
def plot(
    runs: Annotated[
        list[Path],
        typer.Argument(
            help="run folders of `gplinker train` (read: metrics.jsonl) or results files of "
            "scripts/collect_result.py (read: their evaluations), "
            "e.g. runs/x results/duee-tiny.json",
            metavar="RUN_OR_JSON...",
            show_default=False,
        ),
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", dir_okay=False, help="PNG file to write")
    ] = Path("curves.png"),
    x: Annotated[
        Literal["epoch", "minutes"],
        typer.Option(
            "--x",
            help="x axis: epoch number, or wall-clock minutes since training began "
            "(to compare runs whose epochs cost different time)",
        ),
    ] = "epoch",
    label: Annotated[
        list[str] | None,
        typer.Option(
            "--label",
            "-l",
            help="legend name of a run, once per run in order (default: folder name, or the "
            "results file's name)",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Draw learning curves into one PNG: train loss, dev trigger / argument / event F1
    and official F1, one colour per run, all runs on the same axes."""
    with user_errors():
        from gplinker.curves import plot_curves

        path = plot_curves(runs, output, x=x, labels=label or None)
        typer.echo(f"wrote {path}")


def main() -> None:
    restart_with_tcmalloc()  # before torch: the allocator is chosen when a process starts
    app()
