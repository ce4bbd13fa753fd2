"""Dynamic padding and length-bucketed batches; labels become flat h*L+t indices (SPEC §4)."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields

import torch

from gplinker.data.alignment import Encoded
from gplinker.data.labels import SparseLabels


@dataclass
class Batch:
    input_ids: torch.Tensor  # [B, L]
    attention_mask: torch.Tensor  # [B, L]
    argu: torch.Tensor | None = None  # [B, H, K] flat indices, 0 pads
    head_link: torch.Tensor | None = None  # [B, 1, K]
    tail_link: torch.Tensor | None = None  # [B, 1, K]

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        moved = {
            f.name: None
            if (v := getattr(self, f.name)) is None
            else v.to(device, non_blocking=non_blocking)
            for f in fields(self)
        }
        return Batch(**moved)


def collate(
    items: Sequence[tuple[Encoded, SparseLabels | None]], num_labels: int, pad_id: int = 0
) -> Batch:
    """Pad to the longest text of the batch (never to max_length)."""
    B, L = len(items), max(len(enc) for enc, _ in items)
    input_ids = torch.full((B, L), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((B, L), dtype=torch.long)
    for b, (enc, _) in enumerate(items):
        input_ids[b, : len(enc)] = torch.tensor(enc.input_ids)
        attention_mask[b, : len(enc)] = 1
    if any(labels is None for _, labels in items):
        return Batch(input_ids, attention_mask)
    argu = _flat_indices([[(lab, h * L + t) for lab, h, t in y.argu] for _, y in items], num_labels)
    head = _flat_indices([[(0, i * L + j) for i, j in y.head_link] for _, y in items], 1)
    tail = _flat_indices([[(0, i * L + j) for i, j in y.tail_link] for _, y in items], 1)
    return Batch(input_ids, attention_mask, argu, head, tail)


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
