"""GPLinker: the user-facing model (folder in, events out) and JSONL prediction."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerFast

from gplinker.data.alignment import Encoded, encode_windows
from gplinker.data.collate import collate, length_sorted_batches
from gplinker.data.reader import read_examples, write_jsonl
from gplinker.data.tokenizer import load_tokenizer
from gplinker.decoding import decode_batch, merge_windows
from gplinker.errors import GPLinkerError
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


@dataclass(frozen=True)
class PredictSummary:
    read: int
    written: int
    output: str


def predict_file(
    model_dir: str | Path,
    input: str | Path,
    output: str | Path,
    *,
    batch_size: int = 32,
    chunk_size: int = 2048,
    device: str | None = None,
) -> PredictSummary:
    """JSONL in -> JSONL out, one line per input line in order, ids kept. Streams in
    chunks (constant memory); the output appears only when complete (atomic rename)."""
    model = GPLinker.from_pretrained(model_dir, device=device)
    counts = {"read": 0}

    def rows() -> Iterator[dict]:
        examples = read_examples(input)
        for chunk in _chunks(examples, chunk_size):
            counts["read"] += len(chunk)
            events = model.extract([ex.text for ex in chunk], batch_size=batch_size)
            for ex, ev in zip(chunk, events, strict=True):
                yield prediction_row(ex, ev)

    written = write_jsonl(output, tqdm(rows(), desc="lines", unit=" lines"))
    return PredictSummary(counts["read"], written, str(output))


def prediction_row(ex: Example, events: Sequence[Event]) -> dict:
    return {"id": ex.id, "text": ex.text, "event_list": [e.to_json() for e in events]}


def _chunks(items: Iterable[Example], size: int) -> Iterator[list[Example]]:
    it = iter(items)
    while chunk := list(itertools.islice(it, size)):
        yield chunk
