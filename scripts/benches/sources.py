"""Each task's data: DuEE, CLUENER and DuIE from ../shared with the bert-base-chinese
tokenizer, else the task's embedded sample with a WordPiece vocabulary built from it; and
the batches made of it as training and prediction form them."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from itertools import islice
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedTokenizerFast

from benches.plan import BATCH, RECIPE, ROOT
from gplinker import tasks
from gplinker.config import Config, load_config
from gplinker.data.alignment import Encoded, encode_windows
from gplinker.data.collate import Batch, bucketed_batches, collate, length_sorted_batches
from gplinker.data.labels import HeadLabels
from gplinker.data.reader import load_examples
from gplinker.data.tokenizer import build_wordpiece_tokenizer, load_tokenizer
from gplinker.modeling.global_pointer import PointerSpec
from gplinker.predict import GPLinker
from gplinker.tasks.base import Task, TextExample
from gplinker.training import prepare_examples


@dataclass(frozen=True)
class Source:
    """Where a task's data lives: a folder of ../shared/data, else an embedded sample."""

    name: str  # the data set, as the JSON and the table name it
    folder: str  # under ../shared/data
    train: str
    dev: str
    schema: str | None  # None: the types the train file names (CLUENER ships no schema)
    sample: str  # the fallback folder, with train.json and dev.json
    sample_schema: str
    records: str  # what an output line lists: "events", "entities", "triples"
    spans: str  # what the span head (the first) scores, for the JSON's words
    trained: tuple[str, ...]  # briefly trained tiny models under runs/, if any


SOURCES = {
    "event": Source(
        "DuEE 1.0",
        "duee",
        "duee_train.json",
        "duee_dev.json",
        "duee_event_schema.json",
        "data/sample",
        "duee_event_schema.json",
        "events",
        "argument",
        ("runs/final/best", "runs/duee-tiny/best"),
    ),
    "entity": Source(
        "CLUENER 2020",
        "cluener",
        "train.json",
        "dev.json",
        None,
        "data/sample-entity",
        "schema.json",
        "entities",
        "entity",
        ("runs/cluener-tiny/best",),
    ),
    "relation": Source(
        "DuIE 1.0",
        "duie",
        "train.json",
        "dev.json",
        "all_50_schemas",
        "data/sample-relation",
        "all_schemas",
        "triples",
        "subject and object",
        ("runs/duie-tiny/best",),
    ),
}


@dataclass
class Data:
    task: Task
    origin: Source
    source: str  # what was read, said in the JSON and the table
    shared: Path | None  # the ../shared folder read; None = the embedded sample
    schema: Any
    tokenizer: PreTrainedTokenizerFast
    encoder: str | None  # encoder config folder; None = transformers' BERT defaults
    train: list[TextExample]
    dev: list[TextExample]

    @property
    def heads(self) -> list[PointerSpec]:
        return self.task.heads(self.schema)

    @property
    def label_counts(self) -> dict[str, int]:
        """What `collate` needs to turn labels into indices: head name -> labels."""
        return {h.name: h.num_labels for h in self.heads}

    def items(
        self, examples: Sequence[TextExample], max_length: int, overlap: int | None = None
    ) -> list[tuple[Encoded, HeadLabels]]:
        """(window, labels) pairs as train() makes them."""
        _, items, _ = prepare_examples(
            examples, self.tokenizer, self.task, self.schema, max_length, overlap
        )
        return items

    def batch(self, items: Sequence[tuple[Encoded, HeadLabels]]) -> Batch:
        return collate(items, self.label_counts)

    @cached_property
    def span_cells_per_text(self) -> float:
        """Gold cells of the span head (the first: argu, entity) per dev text, windows as
        the recipe cuts them: how many cells a trained model scores above 0."""
        d = load_config(RECIPE).data
        span = self.heads[0].name
        cells = sum(len(y[span]) for _, y in self.items(self.dev, d.max_length, d.window_overlap))
        return cells / max(1, len(self.dev))


def load_data(task: str, shared: Path | None, n_train: int) -> Data:
    """The task's data set and the bert-base-chinese tokenizer from `shared`, else its
    sample with a WordPiece vocabulary built from it; `n_train` train texts drawn at
    random (seed 0)."""
    src, the_task = SOURCES[task], tasks.get(task)
    folder = shared / "data" / src.folder if shared else None
    if folder is not None and folder.is_dir():
        schema_file = folder / src.schema if src.schema else None
        train_file, dev_file = folder / src.train, folder / src.dev
        source = f"{src.name} ({folder})"
    else:
        shared, sample = None, ROOT / src.sample
        schema_file, train_file, dev_file = (
            sample / name for name in (src.sample_schema, "train.json", "dev.json")
        )
        source = f"{src.sample} (fallback: {folder or '../shared'} is absent)"
    schema = the_task.read_schema(schema_file, train_file)
    parse = the_task.parse(schema)
    # the sample's train texts make its vocabulary, even when none is drawn
    read = n_train or shared is None
    train = load_examples(train_file, schema, parse=parse) if read else []
    if shared is None:
        tokenizer, encoder = build_wordpiece_tokenizer((ex.text for ex in train), 3000), None
    else:
        models = shared / "models" / "bert-base-chinese-tokenizer"
        tokenizer, encoder = load_tokenizer(models), str(models)
    return Data(
        task=the_task,
        origin=src,
        source=source,
        shared=shared,
        schema=schema,
        tokenizer=tokenizer,
        encoder=encoder,
        train=draw(train, n_train),
        dev=load_examples(dev_file, schema, parse=parse),
    )


def draw(items: list, n: int) -> list:
    return random.Random(0).sample(items, min(n, len(items)))


def train_batches(data: Data, recipe: Config, device: torch.device, n: int) -> list[Batch]:
    """The first n batches of an epoch as train() forms them (length buckets, windows),
    the shortest moved to the front: it only warms up."""
    d = recipe.data
    items = data.items(data.train, d.max_length, d.window_overlap)
    lengths = [len(enc) for enc, _ in items]
    order = bucketed_batches(lengths, BATCH, recipe.train.bucket_size, random.Random(0))
    chosen = list(islice(order, n))
    shortest = min(range(len(chosen)), key=lambda k: max(lengths[i] for i in chosen[k]))
    chosen.insert(0, chosen.pop(shortest))
    return [data.batch([items[i] for i in idx]).to(device) for idx in chosen]


def longest_batch(data: Data, recipe: Config) -> Batch:
    """The BATCH longest dev texts, cut at max_length: the largest training batch."""
    texts = sorted(data.dev, key=lambda ex: len(ex.text), reverse=True)[:BATCH]
    return data.batch(data.items(texts, recipe.data.max_length))


def windows_of(predictor: GPLinker, texts: Sequence[str]) -> list[tuple[Encoded, str]]:
    """Every window of every text, with its text, as predictor.extract forms them."""
    p = predictor
    windows = encode_windows(texts, p.tokenizer, p.max_length, p.window_overlap)
    return [(w, text) for text, ws in zip(texts, windows, strict=True) for w in ws]


def length_batches(
    predictor: GPLinker, windows: Sequence[tuple[Encoded, str]]
) -> list[tuple[Batch, list[tuple[Encoded, str]]]]:
    """The length-sorted batches predictor.extract runs, with their windows."""
    order = length_sorted_batches([len(w) for w, _ in windows], BATCH)
    return [
        (
            collate([(windows[i][0], None) for i in idx]).to(predictor.device),
            [windows[i] for i in idx],
        )
        for idx in order
    ]
