"""collate (dynamic padding, flat h*L+t labels, SPEC §4, §10) and the batch samplers."""

from __future__ import annotations

import random
from collections import Counter

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gplinker.data.alignment import Encoded
from gplinker.data.collate import Batch, bucketed_batches, collate, length_sorted_batches
from gplinker.data.labels import SparseLabels

HEADS = {"argu": 3, "head_link": 1, "tail_link": 1}


def fake_encoded(n: int, first_id: int = 10) -> Encoded:
    """[CLS]=2 tokens [SEP]=3, n tokens in all."""
    ids = [2, *range(first_id, first_id + n - 2), 3]
    offsets = [(0, 0), *((k, k + 1) for k in range(n - 2)), (0, 0)]
    return Encoded(ids, offsets)


ITEMS = [
    (
        fake_encoded(5),
        SparseLabels(
            argu=((0, 1, 2), (0, 3, 3), (2, 1, 1)),
            head_link=((1, 3),),
            tail_link=((2, 3),),
        ).by_head(),
    ),
    (
        fake_encoded(7, 20),
        SparseLabels(
            argu=((0, 2, 4), (2, 5, 5), (2, 1, 3), (2, 4, 4)),
            head_link=((1, 2), (2, 5), (4, 5)),
            tail_link=(),
        ).by_head(),
    ),
    (fake_encoded(3, 30), SparseLabels((), (), ()).by_head()),
]


def reference_indices(items, num_labels: int, field: str, L: int) -> list[list[set[int]]]:
    """Per (b, label): the set of flat h*L+t indices, written as plain loops."""
    out = [[set() for _ in range(num_labels)] for _ in items]
    for b, (_, y) in enumerate(items):
        for lab, h, t in y[field]:
            out[b][lab].add(h * L + t)
    return out


def test_collate_pads_to_longest_in_batch_not_max_length():
    batch = collate(ITEMS, HEADS)
    assert batch.input_ids.shape == (3, 7) and batch.attention_mask.shape == (3, 7)
    for b, (enc, _) in enumerate(ITEMS):
        n = len(enc)
        assert batch.input_ids[b, :n].tolist() == enc.input_ids
        assert batch.input_ids[b, n:].tolist() == [0] * (7 - n)
        assert batch.attention_mask[b].tolist() == [1] * n + [0] * (7 - n)


def test_collate_custom_pad_id_fills_only_padding():
    batch = collate(ITEMS, HEADS, pad_id=99)
    assert batch.input_ids[0, 5:].tolist() == [99, 99]
    assert (batch.input_ids[1] != 99).all()


def test_flat_indices_equal_h_times_padded_len_plus_t_and_k_is_max_count():
    batch = collate(ITEMS, HEADS)
    L = batch.input_ids.shape[1]
    for field, H in (("argu", 3), ("head_link", 1), ("tail_link", 1)):
        got = batch.labels[field]
        want = reference_indices(ITEMS, H, field, L)
        K = max(len(s) for row in want for s in row)
        assert got.shape == (3, H, max(K, 1)) and got.dtype == torch.long
        for b in range(3):
            for lab in range(H):
                values = got[b, lab].tolist()
                real = [v for v in values if v != 0]
                assert set(real) == want[b][lab] and len(real) == len(want[b][lab])
                assert values[len(real) :] == [0] * (len(values) - len(real))  # pads at the end
    # spot check with L = 7 written out: label 2 of text 1 holds (5,5), (1,3), (4,4)
    assert sorted(batch.labels["argu"][1, 2].tolist()) == sorted([5 * 7 + 5, 1 * 7 + 3, 4 * 7 + 4])


def test_flat_indices_use_batch_length_when_longest_text_changes():
    """The same text gets different flat indices in a batch padded to 5 vs 7."""
    alone = collate(ITEMS[:1], HEADS)
    together = collate(ITEMS[:2], HEADS)
    assert alone.labels["argu"][0, 0].tolist() == [1 * 5 + 2, 3 * 5 + 3]
    assert together.labels["argu"][0, 0, :2].tolist() == [1 * 7 + 2, 3 * 7 + 3]


def test_batch_with_all_empty_labels_gives_k1_zeros():
    batch = collate([ITEMS[2], ITEMS[2]], HEADS)
    assert batch.labels["argu"].shape == (2, 3, 1) and (batch.labels["argu"] == 0).all()
    assert batch.labels["head_link"].shape == (2, 1, 1)


def test_batch_without_labels_has_no_label_tensors():
    batch = collate([(enc, None) for enc, _ in ITEMS], HEADS)
    assert batch.labels is None and batch.input_ids.shape == (3, 7)
    assert collate(ITEMS).labels is None  # no heads asked for: prediction


def test_batch_to_cpu_keeps_values_and_none():
    batch = collate(ITEMS, HEADS)
    moved = batch.to("cpu")
    assert isinstance(moved, Batch)
    for name in ("input_ids", "attention_mask"):
        assert torch.equal(getattr(moved, name), getattr(batch, name))
    assert moved.labels.keys() == batch.labels.keys()
    assert all(torch.equal(moved.labels[k], batch.labels[k]) for k in batch.labels)
    unlabeled = collate([(ITEMS[0][0], None)], HEADS).to(torch.device("cpu"))
    assert unlabeled.labels is None


@settings(max_examples=100, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 60), max_size=80),
    batch_size=st.integers(1, 9),
    bucket_size=st.integers(1, 5),
    seed=st.integers(0, 2**16),
)
def test_bucketed_batches_yield_every_index_once_and_windows_are_length_sorted(
    lengths, batch_size, bucket_size, seed
):
    batches = list(bucketed_batches(lengths, batch_size, bucket_size, random.Random(seed)))
    counts = Counter(i for batch in batches for i in batch)
    assert counts == Counter(range(len(lengths)))
    assert all(1 <= len(b) <= batch_size for b in batches)
    assert sum(len(b) < batch_size for b in batches) <= -(
        -len(lengths) // (batch_size * bucket_size)
    )
    for b in batches:
        assert [lengths[i] for i in b] == sorted(lengths[i] for i in b)


def test_bucketed_batches_group_similar_lengths_within_a_window():
    """One window holding all texts: each batch is a contiguous run of the sorted lengths."""
    lengths = list(range(40, 0, -1))
    batches = list(bucketed_batches(lengths, 4, 10, random.Random(0)))
    for b in batches:
        ls = sorted(lengths[i] for i in b)
        assert ls[-1] - ls[0] == 3
    again = list(bucketed_batches(lengths, 4, 10, random.Random(0)))
    assert again == batches  # same seed, same order


@settings(max_examples=100, deadline=None)
@given(lengths=st.lists(st.integers(1, 60), max_size=50), batch_size=st.integers(1, 9))
def test_length_sorted_batches_cover_every_index_once_longest_first(lengths, batch_size):
    batches = length_sorted_batches(lengths, batch_size)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(lengths)))
    assert [lengths[i] for i in flat] == sorted(lengths, reverse=True)
    assert all(len(b) == batch_size for b in batches[:-1])
