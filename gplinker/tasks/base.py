"""The one interface every task implements; the trainer and the predictor see only this.

A task decides what differs between entity, relation and event extraction: its schema
(the label sets), its pointer heads, how gold spans become head labels, how scores become
records, how records are scored, and the JSONL shapes. The encoder, the pointers, the loss,
AdaX, batching, windows, checkpoints, resume, DDP and sharded prediction are shared and
never ask which task runs (HF `Pipeline`'s preprocess / forward / postprocess split, and
spaCy's `TrainablePipe` get_loss / predict / score, are the models for this).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from torch import Tensor

from gplinker.data.alignment import Encoded
from gplinker.data.labels import DropReport, HeadLabels
from gplinker.data.reader import Parse
from gplinker.metrics import PRF
from gplinker.modeling.global_pointer import Factored, PointerSpec

Scores = Mapping[str, Tensor | Factored]  # head name -> [B, H, L, L] scores or their parts
# a schema label by its names: (type,) for entities, (event_type, role) for events,
# (predicate, "subject" | "object") for relations
Label = tuple[str, ...]


class TextExample(Protocol):
    """What the trainer reads of any task's example: the rest is the task's own."""

    @property
    def id(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def where(self) -> str: ...  # "train.json:17", for messages


class TaskSchema(Protocol):
    """A task's label sets; written into every model folder as schema.json."""

    def to_json(self) -> dict: ...  # what schema.json holds (served by GET /schema)

    def to_file(self, path: str | Path) -> None: ...


class Task(Protocol):
    name: str  # "entity" | "relation" | "event": the config's `task`
    main_metric: str  # the metric that picks best/ ("entity", "triple", "event")
    record_key: str  # the output line's key of the records: "entities", "spo_list", ...

    def read_schema(self, path: Path | None, train: Path | None) -> Any:
        """The schema from data.schema_file (the task's format, or a model folder's
        schema.json); a task whose data names its labels may collect them from `train`
        when no file is given. InputError (file:line) on a bad file."""
        ...

    def heads(self, schema: Any) -> list[PointerSpec]:
        """The pointer heads a model of this schema has, in order."""
        ...

    def parse(self, schema: Any | None) -> Parse:
        """A line parser for `gplinker.data.reader.read_lines`: one JSONL line of the
        task's formats -> its example (id, text, where and the gold records), or an
        InputError naming file:line. Without a schema only the shape is checked."""
        ...

    def labels(
        self, example: Any, windows: Sequence[Encoded], schema: Any
    ) -> tuple[list[HeadLabels], DropReport]:
        """Per window of the example's text, the (label, h, t) cells of every head; gold
        spans no window can hold are counted in the report, never dropped silently."""
        ...

    def decode(
        self,
        scores: Scores,
        offsets: Sequence[Sequence[tuple[int, int]]],
        texts: Sequence[str],
        schema: Any,
        *,
        max_candidates: int = 256,
    ) -> list[Any]:
        """One window's found records per sentence of the batch, offsets absolute in the
        full text; at most `max_candidates` spans per sentence and head (logged)."""
        ...

    def merge(self, parts: Sequence[Any], windows: Sequence[Encoded]) -> Any:
        """One text's records from those of its windows (in text order)."""
        ...

    def records(self, found: Any) -> list[Any]:
        """What `GPLinker.extract` returns for one text (typed records)."""
        ...

    def gold(self, example: Any) -> Any:
        """The example's gold records, in the form `evaluate` takes."""
        ...

    def evaluate(self, pred: Mapping[str, Any], gold: Mapping[str, Any]) -> dict[str, PRF]:
        """Metrics by name (main_metric among them; per-type rows like "entity/name")
        over texts keyed by id; pred values are `merge` results or `read_scored` ones."""
        ...

    def unscored(self, pred: Mapping[str, Any]) -> dict[str, str]:
        """Metrics the predictions cannot be scored on, with the reason (e.g. a DuEE
        submission has no offsets); empty when every metric applies."""
        ...

    def output_row(self, example: Any, found: Any) -> dict:
        """The JSONL line `predict` writes for one input line (id and text kept)."""
        ...

    def read_scored(self, path: Path, schema: Any | None) -> dict[str, Any]:
        """A gold or prediction file for `gplinker evaluate`, by id; InputError on a bad
        line."""
        ...

    def spans(self, example: Any) -> list[tuple[Label, str, int | None]]:
        """Every gold span of the example as (label, its text, its char start; None where
        the text lacks the string): what `gplinker check` aligns."""
        ...

    def schema_labels(self, schema: Any) -> list[Label]:
        """A schema's labels in its order, named as `spans` names them."""
        ...

    def collect_schema(self, examples: Sequence[Any]) -> tuple[Any, list[tuple[Label, int]]]:
        """The schema the examples imply (names sorted) and its rows counted, for a user
        with data but no schema file (`gplinker schema --from`); InputError where the data
        lacks what the schema needs."""
        ...
