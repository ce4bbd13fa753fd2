"""Dynamic padding and length-bucketed batches; labels become flat h*L+t indices (SPEC §4)."""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import torch

from gplinker.data.alignment import Encoded
from gplinker.data.labels import HeadLabels


@dataclass
class Batch:
    input_ids: torch.Tensor  # [B, L]
    attention_mask: torch.Tensor  # [B, L]
    labels: dict[str, torch.Tensor] | None = None  # head -> [B, H, K] flat indices, 0 pads

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        def move(t: torch.Tensor) -> torch.Tensor:
            return t.to(device, non_blocking=non_blocking)

        labels = None if self.labels is None else {k: move(v) for k, v in self.labels.items()}
        return Batch(move(self.input_ids), move(self.attention_mask), labels)


def collate(
    items: Sequence[tuple[Encoded, HeadLabels | None]],
    num_labels: Mapping[str, int] | None = None,
    pad_id: int = 0,
) -> Batch:
    """Pad to the longest text of the batch (never to max_length). With labels and
    `num_labels` (head name -> its number of labels), each head's (label, h, t) cells
    become flat h*L+t indices per label."""
    B, L = len(items), max(len(enc) for enc, _ in items)
    input_ids = torch.full((B, L), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((B, L), dtype=torch.long)
    for b, (enc, _) in enumerate(items):
        input_ids[b, : len(enc)] = torch.tensor(enc.input_ids)
        attention_mask[b, : len(enc)] = 1
    if not num_labels or any(labels is None for _, labels in items):
        return Batch(input_ids, attention_mask)
    labels = {
        name: _flat_indices(
            [[(lab, i * L + j) for lab, i, j in y[name]] for _, y in items],  # type: ignore[index]
            n,
        )
        for name, n in num_labels.items()
    }
    return Batch(input_ids, attention_mask, labels)


def _flat_indices(rows: list[list[tuple[int, int]]], num_labels: int) -> torch.Tensor:
    counts = torch.zeros((len(rows), num_labels), dtype=torch.long)
    for b, row in enumerate(rows):
        for lab, _ in row:
            counts[b, lab] += 1
    K = max(1, int(counts.max()) if counts.numel() else 1)
    out = torch.zeros((len(rows), num_labels, K), dtype=torch.long)  # [B, H, K]
    fill = torch.zeros((len(rows), num_labels), dtype=torch.long)
    for b, row in enumerate(rows):
        for lab, idx in row:
            out[b, lab, fill[b, lab]] = idx
            fill[b, lab] += 1
    return out


def bucketed_batches(
    lengths: Sequence[int], batch_size: int, bucket_size: int, rng: random.Random
) -> Iterator[list[int]]:
    """Shuffle, then sort by length inside windows of bucket_size batches, so similar
    lengths share a batch (less padding, and the heads grow with L²); every index once."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    window = batch_size * bucket_size
    batches = []
    for w in range(0, len(order), window):
        chunk = sorted(order[w : w + window], key=lambda i: lengths[i])
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    yield from batches


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """For prediction: longest first, so memory peaks at once and padding is minimal."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
