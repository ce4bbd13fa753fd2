"""factored_sparse_multilabel_ce against the dense sparse_multilabel_ce (SPEC §3, §4)."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from gplinker.losses import factored_sparse_multilabel_ce, sparse_multilabel_ce
from gplinker.modeling.global_pointer import Factored, span_mask


def random_parts(seed: int, lengths: list[int], L: int, H: int, scale: float = 1.0):
    g = torch.Generator().manual_seed(seed)
    B = len(lengths)
    qk = scale * torch.randn(B, L, L, generator=g, dtype=torch.float64)
    col = scale * torch.randn(B, L, H, generator=g, dtype=torch.float64)
    row = scale * torch.randn(B, L, H, generator=g, dtype=torch.float64)
    attn = torch.tensor([[1] * n + [0] * (L - n) for n in lengths])
    mask = span_mask(attn)[:, 0]  # [B, L, L]
    return qk, col, row, mask


def random_positives(seed: int, mask: torch.Tensor, H: int, max_k: int) -> torch.Tensor:
    """[B, H, K] flat i*L+j of valid cells other than (0, 0), 0-padded; some labels empty."""
    g = torch.Generator().manual_seed(seed)
    B, L, _ = mask.shape
    rows = []
    for b in range(B):
        cells = [i * L + j for i in range(L) for j in range(L) if mask[b, i, j] and i * L + j]
        for _ in range(H):
            k = int(torch.randint(0, max_k + 1, (1,), generator=g))
            perm = torch.randperm(len(cells), generator=g)[: min(k, len(cells))]
            rows.append([cells[p] for p in perm.tolist()])
    K = max(1, max(len(r) for r in rows))
    pos = torch.zeros(B * H, K, dtype=torch.long)
    for n, r in enumerate(rows):
        pos[n, : len(r)] = torch.tensor(r, dtype=torch.long)
    return pos.view(B, H, K)


def dense_loss(qk, col, row, mask, pos):
    B, L, H = col.shape
    return sparse_multilabel_ce(Factored(qk, col, row, mask).dense().reshape(B, H, L * L), pos)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_factored_loss_equals_dense_with_padding_rows_and_empty_labels(seed: int):
    qk, col, row, mask = random_parts(seed, [6, 4, 2], L=6, H=4)
    pos = random_positives(seed, mask, H=4, max_k=3)
    assert (pos != 0).sum(-1).max() > 1  # several positives for some label
    assert ((pos != 0).sum(-1) == 0).any()  # and none for another
    assert_close(
        factored_sparse_multilabel_ce(qk, col, row, mask, pos), dense_loss(qk, col, row, mask, pos)
    )


@pytest.mark.parametrize("seed", [0, 1])
def test_factored_gradients_equal_dense_with_padding_rows(seed: int):
    qk, col, row, mask = random_parts(seed, [5, 3], L=5, H=3)
    pos = random_positives(seed + 10, mask, H=3, max_k=4)
    grads = []
    for fn in (factored_sparse_multilabel_ce, dense_loss):
        parts = [t.clone().requires_grad_() for t in (qk, col, row)]
        loss = fn(*parts, mask, pos).sum()
        grads.append(torch.autograd.grad(loss, parts))
    for got, want in zip(*grads, strict=True):
        assert_close(got, want)


def test_factored_loss_with_k1_all_pads_equals_dense():
    qk, col, row, mask = random_parts(5, [5, 3], L=5, H=3)
    pos = torch.zeros(2, 3, 1, dtype=torch.long)
    got = factored_sparse_multilabel_ce(qk, col, row, mask, pos)
    assert_close(got, dense_loss(qk, col, row, mask, pos))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_factored_loss_equals_dense_at_moderate_scale_scores_up_to_20(seed: int):
    qk, col, row, mask = random_parts(seed, [7, 5], L=7, H=3, scale=6.0)
    s = Factored(qk, col, row, mask).dense()
    assert s[s > -1e11].abs().max() > 15
    pos = random_positives(seed, mask, H=3, max_k=5)
    got = factored_sparse_multilabel_ce(qk, col, row, mask, pos)
    assert_close(got, dense_loss(qk, col, row, mask, pos), rtol=1e-6, atol=1e-6)


def test_factored_loss_positive_dominates_row_stays_non_negative():
    """One positive far above the rest: the 'total minus positives' subtraction must not
    leave a negative or NaN term."""
    qk, col, row, mask = random_parts(7, [4, 4], L=4, H=2)
    qk[:, 1, 2] = 18.0
    pos = torch.zeros(2, 2, 1, dtype=torch.long)
    pos[:, :, 0] = 1 * 4 + 2
    got = factored_sparse_multilabel_ce(qk, col, row, mask, pos)
    assert (got >= 0).all() and not got.isnan().any()
    assert_close(got, dense_loss(qk, col, row, mask, pos), rtol=1e-6, atol=1e-6)


def test_factored_loss_never_negative_nor_nan_with_cls_sep_only_sentence():
    """Sentence 1 is only [CLS][SEP] (length 2) with no labels; sentence 0 has positives."""
    qk, col, row, mask = random_parts(8, [5, 2], L=5, H=3, scale=3.0)
    pos = random_positives(8, mask, H=3, max_k=3)
    pos[1] = 0
    parts = [t.clone().requires_grad_() for t in (qk, col, row)]
    got = factored_sparse_multilabel_ce(*parts, mask, pos)
    assert (got >= 0).all() and not got.isnan().any()
    grads = torch.autograd.grad(got.sum(), parts)
    assert all(torch.isfinite(g).all() for g in grads)
    assert_close(got, dense_loss(qk, col, row, mask, pos), rtol=1e-6, atol=1e-6)


def test_factored_loss_never_negative_over_many_seeds():
    for seed in range(20):
        qk, col, row, mask = random_parts(seed, [6, 3, 2], L=6, H=3, scale=5.0)
        pos = random_positives(seed, mask, H=3, max_k=6)
        got = factored_sparse_multilabel_ce(qk, col, row, mask, pos)
        assert (got >= 0).all() and not got.isnan().any(), seed


def test_factored_loss_returns_input_dtype_float32_in_float32_out():
    qk, col, row, mask = random_parts(9, [5, 3], L=5, H=2)
    pos = random_positives(9, mask, H=2, max_k=2)
    got = factored_sparse_multilabel_ce(qk.float(), col.float(), row.float(), mask, pos)
    assert got.dtype == torch.float32 and got.shape == (2, 2)
    assert_close(got, dense_loss(qk, col, row, mask, pos).float(), rtol=1e-5, atol=1e-5)
