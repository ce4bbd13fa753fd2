"""The factored losses equal the dense ones at any score scale (issue 12, part 1).

The factored negatives' sum used to be "all cells minus the positives": once one positive
outweighed the rest of its row by 1e16 (a score ~37 above them) the difference cancelled
to 0 and the false positives of that row went unpenalised. These tests put positives and
negatives far apart, up to |s| = 1e4, and compare value and gradient with the dense loss.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.testing import assert_close

from gplinker.losses import (
    factored_soft_multilabel_ce,
    factored_sparse_multilabel_ce,
    multilabel_ce,
    sparse_multilabel_ce,
    sparse_soft_multilabel_ce,
)
from gplinker.modeling.global_pointer import Factored, span_mask

F64 = torch.float64


def parts(seed: int, lengths: list[int], L: int, H: int, scale: float):
    g = torch.Generator().manual_seed(seed)
    B = len(lengths)
    qk, col, row = (scale * torch.randn(B, L, n, generator=g, dtype=F64) for n in (L, H, H))
    attn = torch.tensor([[1] * n + [0] * (L - n) for n in lengths])
    return qk, col, row, span_mask(attn)[:, 0]


def positives(seed: int, mask: torch.Tensor, H: int, k: int) -> torch.Tensor:
    """[B, H, k] distinct valid cells (not cell 0) per row; fewer, 0-padded, if too few."""
    g = torch.Generator().manual_seed(seed)
    B = mask.shape[0]
    pos = torch.zeros(B, H, k, dtype=torch.long)
    for b in range(B):
        cells = [c for c in (mask[b].reshape(-1).nonzero().squeeze(1).tolist()) if c]
        for h in range(H):
            pick = torch.randperm(len(cells), generator=g)[:k].tolist()
            pos[b, h, : len(pick)] = torch.tensor([cells[p] for p in pick], dtype=torch.long)
    return pos


def dense(qk, col, row, mask, pos):
    B, L, H = col.shape
    flat = Factored(qk, col, row, mask).dense().reshape(B, H, L * L)
    return sparse_multilabel_ce(flat, pos, mask.reshape(B, 1, L * L))


def value_and_grads(fn, tensors, *rest):
    leaves = [t.detach().clone().requires_grad_() for t in tensors]
    out = fn(*leaves, *rest)
    return out.detach(), torch.autograd.grad(out.sum(), leaves)


def assert_same(a, b, **tol):
    (va, ga), (vb, gb) = a, b
    assert_close(va, vb, **tol)
    for x, y in zip(ga, gb, strict=True):
        assert_close(x, y, **tol)


@pytest.mark.parametrize(
    ("positive", "hard", "want_loss", "want_grad"),
    # the table: one row at -20 but one hard negative and one positive
    [(36.0, 0.0, 0.69315, 0.500), (38.0, 0.0, 0.69315, 0.500), (40.0, 2.0, 2.12693, 0.881)],
)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_a_hard_negative_beside_a_confident_positive_keeps_its_loss_and_gradient(
    positive, hard, want_loss, want_grad, dtype
):
    L = 8  # one sentence, a one-label link head: the whole sentence is one row
    qk = torch.full((1, L, L), -20.0, dtype=F64)
    qk[0, 1, 3], qk[0, 2, 5] = positive, hard
    col, row = torch.zeros(1, L, 1, dtype=F64), torch.zeros(1, L, 1, dtype=F64)
    mask = span_mask(torch.ones(1, L, dtype=torch.long))[:, 0]
    pos = torch.tensor([[[1 * L + 3]]])
    args = [t.to(dtype) for t in (qk, col, row)]
    got = value_and_grads(factored_sparse_multilabel_ce, args, mask, pos)
    want = value_and_grads(dense, (qk, col, row), mask, pos)
    # by hand: log(1 + e^hard + 34·e^-20) + log(1 + e^-positive), gradient e^hard / (1 + ...)
    rest = 1 + math.exp(hard) + (L * (L + 1) // 2 - 2) * math.exp(-20)
    by_hand = math.log(rest) + math.log1p(math.exp(-positive))
    assert got[0].item() == pytest.approx(by_hand, rel=1e-6)
    assert got[0].item() == pytest.approx(want_loss, abs=1e-5)
    assert got[1][0][0, 2, 5].item() == pytest.approx(want_grad, abs=1e-3)
    tol = {"rtol": 1e-10, "atol": 1e-12} if dtype == torch.float64 else {"rtol": 1e-5, "atol": 1e-6}
    assert_same(got, (want[0].to(dtype), [g.to(dtype) for g in want[1]]), **tol)


@pytest.mark.parametrize("scale", [1.0, 10.0, 100.0, 1e3, 1e4])
@pytest.mark.parametrize("seed", [0, 1])
def test_factored_equals_dense_in_value_and_gradient_at_every_scale(scale, seed):
    qk, col, row, mask = parts(seed, [7, 5, 2], L=7, H=3, scale=scale)
    pos = positives(seed, mask, H=3, k=3)
    got = value_and_grads(factored_sparse_multilabel_ce, (qk, col, row), mask, pos)
    want = value_and_grads(dense, (qk, col, row), mask, pos)
    assert_same(got, want, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("height", [40.0, 100.0, 1e3, 1e4])
@pytest.mark.parametrize("every_positive", [False, True])
def test_rows_where_one_or_every_positive_dominates(height, every_positive):
    qk, col, row, mask = parts(3, [9, 6], L=9, H=4, scale=1.0)
    pos = positives(3, mask, H=4, k=3)
    B = qk.shape[0]
    lift = pos if every_positive else pos[..., :1]  # [B, H, k or 1]
    # lift the positives' scores through qk, shared by every label, plus per-label noise
    for b in range(B):
        cells = lift[b].reshape(-1)
        cells = cells[cells != 0]
        qk[b].view(-1)[cells] = height + torch.arange(len(cells), dtype=F64)
    got = value_and_grads(factored_sparse_multilabel_ce, (qk, col, row), mask, pos)
    want = value_and_grads(dense, (qk, col, row), mask, pos)
    assert_same(got, want, rtol=1e-9, atol=1e-9)
    # the negatives still carry their gradient: the row's false positives are penalised
    assert got[1][0].abs().sum() > 0.1


@pytest.mark.parametrize("scale", [1.0, 50.0, 1e4])
@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_factored_soft_equals_dense_soft_at_every_scale(scale, eps):
    qk, col, row, mask = parts(5, [6, 4], L=6, H=3, scale=scale)
    pos = positives(5, mask, H=3, k=2)
    qk.view(-1)[pos[0, 0, 0]] = 40 * scale  # and one dominating positive

    def dense_soft(qk, col, row, mask, pos):
        B, L, H = col.shape
        flat = Factored(qk, col, row, mask).dense().reshape(B, H, L * L)
        return sparse_soft_multilabel_ce(flat, pos, mask.reshape(B, 1, L * L), eps)

    got = value_and_grads(
        lambda *a: factored_soft_multilabel_ce(*a, eps), (qk, col, row), mask, pos
    )
    want = value_and_grads(dense_soft, (qk, col, row), mask, pos)
    assert_same(got, want, rtol=1e-9, atol=1e-9)


def test_float32_parts_at_large_scale_match_the_float64_dense_loss():
    qk, col, row, mask = parts(7, [8, 5], L=8, H=3, scale=30.0)
    pos = positives(7, mask, H=3, k=2)
    got = factored_sparse_multilabel_ce(qk.float(), col.float(), row.float(), mask, pos)
    want = dense(qk.float().double(), col.float().double(), row.float().double(), mask, pos)
    assert got.dtype == torch.float32
    assert_close(got, want.float(), rtol=1e-6, atol=1e-5)


def test_masked_and_repeated_positives_count_the_same_in_all_three_forms():
    """A label on a masked cell (lower triangle, padding) is ignored and a repeated index
    counts once: by the dense-target, the sparse and the factored loss alike."""
    qk, col, row, mask = parts(11, [5, 3], L=5, H=2, scale=2.0)
    B, L, H = col.shape
    pos = torch.tensor(
        [
            [[1 * L + 2, 1 * L + 2, 3 * L + 1, 0], [2 * L + 4, 4 * L + 4, 0, 2 * L + 4]],
            [[1 * L + 1, 4 * L + 4, 2 * L + 0, 0], [1 * L + 2, 1 * L + 2, 1 * L + 2, 0]],
        ]
    )  # (3,1) and (2,0) lower triangle; (4,4) padding in sentence 1; repeats
    valid = mask.reshape(B, 1, L * L)
    assert not valid.expand(B, H, L * L).gather(-1, pos)[pos != 0].all()  # some masked

    targets = torch.zeros(B, H, L * L, dtype=F64).scatter(-1, pos, 1.0)
    targets[..., 0] = 0.0  # pads, not labels

    def from_targets(qk, col, row):
        flat = Factored(qk, col, row, mask).dense().reshape(B, H, L * L)
        return multilabel_ce(flat, targets, valid)

    want = value_and_grads(from_targets, (qk, col, row))
    for fn in (
        lambda a, b, c: dense(a, b, c, mask, pos),
        lambda a, b, c: factored_sparse_multilabel_ce(a, b, c, mask, pos),
    ):
        assert_same(value_and_grads(fn, (qk, col, row)), want, rtol=1e-10, atol=1e-12)
    # and the same as the loss without the masked labels and repeats
    clean = torch.tensor(
        [[[1 * L + 2, 0], [2 * L + 4, 4 * L + 4]], [[1 * L + 1, 0], [1 * L + 2, 0]]]
    )
    assert_close(factored_sparse_multilabel_ce(qk, col, row, mask, clean), want[0])


def test_underflowing_rows_are_summed_exactly_not_dropped():
    """qk's largest cell of a row sits where col is hugely negative: the shifted bmm sum of
    that row underflows to 0, and the row must come from its exact sum instead."""
    L = 4
    qk = torch.zeros(1, L, L, dtype=F64)
    qk[0, 1, 3] = 800.0
    col = torch.zeros(1, L, 1, dtype=F64)
    col[0, 3, 0] = -1600.0
    row = torch.zeros(1, L, 1, dtype=F64)
    mask = span_mask(torch.ones(1, L, dtype=torch.long))[:, 0]
    pos = torch.tensor([[[2 * L + 2]]])
    got = value_and_grads(factored_sparse_multilabel_ce, (qk, col, row), mask, pos)
    want = value_and_grads(dense, (qk, col, row), mask, pos)
    assert_same(got, want, rtol=1e-12, atol=1e-12)
