"""Label-smoothed ZLPR losses (SPEC §4 soft form) against a dense reference written out
from the formula: t = 1 - ε on positives, ε on the other valid cells, masked cells absent."""

from __future__ import annotations

import math

import pytest
import torch
from torch.testing import assert_close

from gplinker.losses import (
    factored_soft_multilabel_ce,
    factored_sparse_multilabel_ce,
    sparse_multilabel_ce,
    sparse_soft_multilabel_ce,
)
from gplinker.modeling.global_pointer import Factored, span_mask

F64 = torch.float64
TIGHT = {"rtol": 1e-9, "atol": 1e-12}

# (lengths of the sentences in the batch, L, H): padding rows, a [CLS]-only sentence
# (only cell 0 is valid, so it can hold no label), a single label, many labels.
SHAPES = [
    ([6, 4, 2], 6, 4),
    ([5, 3], 5, 3),
    ([1, 3, 7], 7, 2),
    ([8], 8, 1),
    ([2, 4], 4, 5),
]


def random_parts(seed: int, lengths: list[int], L: int, H: int, scale: float = 1.0):
    g = torch.Generator().manual_seed(seed)
    B = len(lengths)
    qk = scale * torch.randn(B, L, L, generator=g, dtype=F64)
    col = scale * torch.randn(B, L, H, generator=g, dtype=F64)
    row = scale * torch.randn(B, L, H, generator=g, dtype=F64)
    attn = torch.tensor([[1] * n + [0] * (L - n) for n in lengths])
    return qk, col, row, span_mask(attn)[:, 0]  # mask [B, L, L]


def random_positives(
    seed: int, mask: torch.Tensor, H: int, max_k: int, repeats: bool = True
) -> torch.Tensor:
    """[B, H, K] flat i*L+j of valid cells other than (0, 0); 0 pads scattered between the
    labels (not only at the end); with `repeats`, cells drawn with replacement."""
    g = torch.Generator().manual_seed(seed)
    B, L, _ = mask.shape
    K = max_k + 2
    pos = torch.zeros(B, H, K, dtype=torch.long)
    for b in range(B):
        cells = [i * L + j for i in range(L) for j in range(L) if mask[b, i, j] and i * L + j]
        for h in range(H):
            if not cells:
                continue
            k = int(torch.randint(0, max_k + 1, (1,), generator=g))
            if repeats:
                picks = torch.randint(0, len(cells), (k,), generator=g).tolist()
            else:
                picks = torch.randperm(len(cells), generator=g)[: min(k, len(cells))].tolist()
            slots = torch.randperm(K, generator=g)[: len(picks)].tolist()
            for slot, p in zip(slots, picks, strict=True):
                pos[b, h, slot] = cells[p]
    return pos


def has_repeat(pos: torch.Tensor) -> bool:
    return any(
        len(nz) != len(set(nz))
        for nz in ([x for x in r if x] for r in pos.reshape(-1, pos.shape[-1]).tolist())
    )


def dense_targets(pos: torch.Tensor, valid: torch.Tensor, eps: float) -> torch.Tensor:
    """[B, H, N] targets by hand: ε on every cell, 1 - ε on each labelled valid cell."""
    B, H, _ = pos.shape
    N = valid.shape[-1]
    t = torch.full((B, H, N), eps, dtype=F64)
    for b in range(B):
        for h in range(H):
            for idx in pos[b, h].tolist():
                if idx and valid[b, min(h, valid.shape[1] - 1), idx]:
                    t[b, h, idx] = 1 - eps
    return t


def reference(scores: torch.Tensor, pos: torch.Tensor, valid: torch.Tensor, eps: float):
    """log(1 + Σ_valid (1-t) e^s) + log(1 + Σ_valid t e^-s) summed naively; [B, H]."""
    t = dense_targets(pos, valid, eps)
    v = valid.expand_as(scores)
    s = torch.where(v, scores, 0.0)  # scores off `valid` never reach exp()
    neg = torch.where(v, (1 - t) * torch.exp(s), 0.0).sum(-1)
    pos_sum = torch.where(v, t * torch.exp(-s), 0.0).sum(-1)
    return torch.log(1 + neg) + torch.log(1 + pos_sum)


def dense_from_parts(qk, col, row):
    """s[b,h,i,j] = qk[b,i,j] + col[b,j,h] + row[b,i,h] by explicit loops."""
    B, L, H = col.shape
    s = torch.empty(B, H, L, L, dtype=qk.dtype)
    for b in range(B):
        for h in range(H):
            for i in range(L):
                for j in range(L):
                    s[b, h, i, j] = qk[b, i, j] + col[b, j, h] + row[b, i, h]
    return s


def factored_reference(qk, col, row, mask, pos, eps):
    B, L, H = col.shape
    s = qk[:, None] + col.transpose(1, 2)[:, :, None, :] + row.transpose(1, 2)[:, :, :, None]
    return reference(s.reshape(B, H, L * L), pos, mask.reshape(B, 1, L * L), eps)


def grads(fn, tensors):
    leaves = [t.clone().requires_grad_() for t in tensors]
    value = fn(*leaves)
    return value.detach(), torch.autograd.grad(value.sum(), leaves)


def test_reference_scores_match_factored_dense_on_valid_cells():
    qk, col, row, mask = random_parts(0, [5, 3], L=5, H=3)
    by_hand = dense_from_parts(qk, col, row)
    model = Factored(qk, col, row, mask).dense()
    m = mask[:, None].expand_as(model)
    assert_close(model[m], by_hand[m], rtol=0, atol=0)
    assert (model[~m] == -1e12).all()


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.3, 1.0])
@pytest.mark.parametrize("case", range(len(SHAPES)))
def test_factored_soft_equals_dense_reference_in_value_and_gradient(case, eps):
    lengths, L, H = SHAPES[case]
    qk, col, row, mask = random_parts(case, lengths, L, H)
    pos = random_positives(case, mask, H, max_k=4)

    got, got_grad = grads(
        lambda a, b, c: factored_soft_multilabel_ce(a, b, c, mask, pos, eps), (qk, col, row)
    )
    want, want_grad = grads(
        lambda a, b, c: factored_reference(a, b, c, mask, pos, eps), (qk, col, row)
    )
    assert got.shape == (len(lengths), H)
    assert_close(got, want, **TIGHT)
    for g, w in zip(got_grad, want_grad, strict=True):
        assert_close(g, w, **TIGHT)


def test_the_random_cases_do_contain_repeats_pads_between_labels_and_empty_rows():
    seen_repeat = seen_inner_pad = seen_empty = False
    for case, (lengths, L, H) in enumerate(SHAPES):
        *_, mask = random_parts(case, lengths, L, H)
        pos = random_positives(case, mask, H, max_k=4)
        seen_repeat |= has_repeat(pos)
        rows = pos.reshape(-1, pos.shape[-1])
        seen_inner_pad |= bool(((rows[:, :-1] == 0) & (rows[:, 1:] != 0)).any())
        seen_empty |= bool((rows == 0).all(-1).any())
    assert seen_repeat and seen_inner_pad and seen_empty


@pytest.mark.parametrize("eps", [0.0, 0.05, 0.5])
@pytest.mark.parametrize("per_head_valid", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sparse_soft_equals_dense_reference_in_value_and_gradient(seed, per_head_valid, eps):
    g = torch.Generator().manual_seed(100 + seed)
    B, H, L = 3, 4, 5
    N = L * L
    scores = 2 * torch.randn(B, H, N, generator=g, dtype=F64)
    if per_head_valid:
        valid = torch.rand(B, H, N, generator=g) < 0.6  # [B, H, N]
    else:
        valid = span_mask(torch.tensor([[1] * n + [0] * (L - n) for n in (5, 3, 1)]))
        valid = valid.reshape(B, 1, N)  # [B, 1, N]
    # Labels anywhere, some on cells that `valid` drops: those must be ignored.
    pos = torch.randint(0, N, (B, H, 6), generator=g)
    pos[pos % 3 == 0] = 0
    # Scores off `valid` are huge, so any leak of a masked cell would show.
    scores = torch.where(valid.expand_as(scores), scores, 500.0)

    got, (got_grad,) = grads(lambda s: sparse_soft_multilabel_ce(s, pos, valid, eps), (scores,))
    want, (want_grad,) = grads(lambda s: reference(s, pos, valid, eps), (scores,))
    assert has_repeat(pos)
    assert_close(got, want, **TIGHT)
    assert_close(got_grad, want_grad, **TIGHT)
    assert (got_grad[~valid.expand_as(scores)] == 0).all()


@pytest.mark.parametrize("eps", [0.0, 0.1])
@pytest.mark.parametrize("case", range(len(SHAPES)))
def test_factored_soft_equals_sparse_soft_on_model_scores(case, eps):
    lengths, L, H = SHAPES[case]
    qk, col, row, mask = random_parts(10 + case, lengths, L, H, scale=2.0)
    pos = random_positives(10 + case, mask, H, max_k=5)
    dense = Factored(qk, col, row, mask).dense().reshape(len(lengths), H, L * L)
    valid = mask.reshape(len(lengths), 1, L * L)
    assert_close(
        factored_soft_multilabel_ce(qk, col, row, mask, pos, eps),
        sparse_soft_multilabel_ce(dense, pos, valid, eps),
        **TIGHT,
    )


@pytest.mark.parametrize("case", range(len(SHAPES)))
def test_smoothing_zero_equals_the_hard_losses_in_value_and_gradient(case):
    lengths, L, H = SHAPES[case]
    B = len(lengths)
    qk, col, row, mask = random_parts(20 + case, lengths, L, H)
    pos = random_positives(20 + case, mask, H, max_k=4, repeats=False)
    valid = mask.reshape(B, 1, L * L)

    soft, soft_grad = grads(
        lambda a, b, c: factored_soft_multilabel_ce(a, b, c, mask, pos, 0.0), (qk, col, row)
    )
    hard, hard_grad = grads(
        lambda a, b, c: factored_sparse_multilabel_ce(a, b, c, mask, pos), (qk, col, row)
    )
    assert_close(soft, hard, **TIGHT)
    for s, h in zip(soft_grad, hard_grad, strict=True):
        assert_close(s, h, **TIGHT)

    dense = Factored(qk, col, row, mask).dense().reshape(B, H, L * L)
    soft, (soft_grad,) = grads(lambda s: sparse_soft_multilabel_ce(s, pos, valid, 0.0), (dense,))
    hard, (hard_grad,) = grads(lambda s: sparse_multilabel_ce(s, pos), (dense,))
    assert_close(soft, hard, **TIGHT)
    assert_close(soft_grad, hard_grad, **TIGHT)


def dedup(pos: torch.Tensor) -> torch.Tensor:
    out = torch.zeros_like(pos)
    for n, r in enumerate(pos.reshape(-1, pos.shape[-1]).tolist()):
        keep = list(dict.fromkeys(x for x in r if x))
        out.view(-1, pos.shape[-1])[n, : len(keep)] = torch.tensor(keep, dtype=torch.long)
    return out


@pytest.mark.parametrize("eps", [0.0, 0.2])
def test_repeated_positives_count_once(eps):
    lengths, L, H = SHAPES[0]
    B = len(lengths)
    qk, col, row, mask = random_parts(3, lengths, L, H)
    pos = random_positives(3, mask, H, max_k=6)
    assert has_repeat(pos)
    once = dedup(pos)
    valid = mask.reshape(B, 1, L * L)
    dense = Factored(qk, col, row, mask).dense().reshape(B, H, L * L)
    for p in (pos, once):
        assert_close(
            factored_soft_multilabel_ce(qk, col, row, mask, p, eps),
            factored_reference(qk, col, row, mask, once, eps),
            **TIGHT,
        )
        assert_close(
            sparse_soft_multilabel_ce(dense, p, valid, eps),
            reference(dense, once, valid, eps),
            **TIGHT,
        )
    if eps == 0.0:  # ... which is the hard loss on the labels as a set
        assert_close(
            factored_soft_multilabel_ce(qk, col, row, mask, pos, eps),
            factored_sparse_multilabel_ce(qk, col, row, mask, once),
            **TIGHT,
        )


def test_positives_on_masked_cells_are_ignored_by_the_factored_loss():
    qk, col, row, mask = random_parts(4, [5, 3], L=5, H=2)
    pos = random_positives(4, mask, H=2, max_k=3)
    extra = torch.cat([pos, torch.zeros_like(pos[..., :1])], dim=-1)  # one more slot
    extra[0, 0, -1] = 3 * 5 + 1  # (3, 1): lower triangle
    extra[1, 1, -1] = 1 * 5 + 4  # (1, 4): column 4 is padding in sentence 1
    assert not mask[0, 3, 1] and not mask[1, 1, 4]
    for eps in (0.0, 0.1):
        assert_close(
            factored_soft_multilabel_ce(qk, col, row, mask, extra, eps),
            factored_soft_multilabel_ce(qk, col, row, mask, pos, eps),
            **TIGHT,
        )


@pytest.mark.parametrize("eps", [0.01, 0.1, 0.3])
@pytest.mark.parametrize("positive", [False, True])
def test_single_valid_cell_is_minimised_at_sigmoid_2s_equal_t(positive, eps):
    # One cell: L(s) = log(1 + (1-t)e^s) + log(1 + t e^-s), L'(s) = 0 ⇔ e^{2s} = t/(1-t).
    t = 1 - eps if positive else eps
    valid = torch.tensor([[[False, True, False]]])  # only cell 1 counts
    pos = torch.tensor([[[1 if positive else 0]]])

    def grad_at(s: float) -> float:
        x = torch.tensor([[[7.0, s, -3.0]]], dtype=F64, requires_grad=True)
        (g,) = torch.autograd.grad(sparse_soft_multilabel_ce(x, pos, valid, eps).sum(), x)
        assert g[0, 0, 0] == 0 and g[0, 0, 2] == 0
        return g[0, 0, 1].item()

    s_star = 0.5 * math.log(t / (1 - t))
    assert abs(grad_at(s_star)) < 1e-14
    assert grad_at(s_star - 0.05) < 0 < grad_at(s_star + 0.05)
    assert abs(grad_at(math.log(t / (1 - t)))) > 1e-3  # σ(s) = t is not the optimum


@pytest.mark.parametrize("eps", [0.05, 0.2])
def test_every_cell_at_half_logit_of_its_target_is_the_minimum(eps):
    """Both losses are convex in s; at σ(2s) = t on every valid cell each cell's weights
    satisfy (1-t)e^s = t e^-s, so both log arguments are equal and every ∂/∂s is 0."""
    lengths, L = [6, 4, 1], 6
    B = len(lengths)
    _, _, _, mask = random_parts(0, lengths, L, 1)
    pos = random_positives(5, mask, 1, max_k=5)
    t = dense_targets(pos, mask.reshape(B, 1, L * L), eps).view(B, L, L)
    qk_star = 0.5 * torch.log(t / (1 - t))  # H = 1, col = row = 0: s = qk
    zero = torch.zeros(B, L, 1, dtype=F64)

    def loss_and_grad(qk):
        return grads(
            lambda a, b, c: factored_soft_multilabel_ce(a, b, c, mask, pos, eps), (qk, zero, zero)
        )

    best, g_star = loss_and_grad(qk_star)
    for g in g_star:
        assert g.abs().max() < 1e-13
    dense = Factored(qk_star, zero, zero, mask).dense().reshape(B, 1, L * L)
    (g_dense,) = grads(
        lambda s: sparse_soft_multilabel_ce(s, pos, mask.reshape(B, 1, L * L), eps), (dense,)
    )[1]
    assert g_dense.abs().max() < 1e-13

    gen = torch.Generator().manual_seed(1)
    for _ in range(5):
        nudged = qk_star + 0.1 * torch.randn(B, L, L, generator=gen, dtype=F64)
        worse, g_nudged = loss_and_grad(nudged)
        assert (worse.sum() > best.sum()).item()
        assert g_nudged[0][mask].abs().max() > 1e-4


def test_half_smoothing_ignores_the_labels():
    qk, col, row, mask = random_parts(6, [5, 4], L=5, H=3)
    pos = random_positives(6, mask, 3, max_k=4)
    none = torch.zeros_like(pos)
    assert_close(
        factored_soft_multilabel_ce(qk, col, row, mask, pos, 0.5),
        factored_soft_multilabel_ce(qk, col, row, mask, none, 0.5),
        **TIGHT,
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_factored_soft_is_accurate_and_finite_with_scores_above_20(seed, eps):
    lengths, L, H = [7, 5], 7, 3
    qk, col, row, mask = random_parts(seed, lengths, L, H, scale=6.0)
    dense = Factored(qk, col, row, mask).dense().reshape(2, H, L * L)
    assert dense[dense > -1e11].abs().max() > 15
    pos = random_positives(seed, mask, H, max_k=5)
    got, got_grad = grads(
        lambda a, b, c: factored_soft_multilabel_ce(a, b, c, mask, pos, eps), (qk, col, row)
    )
    exact = sparse_soft_multilabel_ce(dense, pos, mask.reshape(2, 1, L * L), eps)  # no cancellation
    assert_close(got, exact, rtol=1e-6, atol=1e-6)
    assert (got >= 0).all() and all(torch.isfinite(g).all() for g in got_grad)


def test_with_smoothing_a_dominating_positive_costs_no_precision():
    """A positive at 30 over a row of scores near 0: Σ_V e^s - Σ_P e^s cancels ~13 digits,
    but the exact ε Σ_P e^s term then dominates the log argument, so the loss is still
    good to ~1e-12 relative (at ε = 0 only the hard-loss accuracy is promised)."""
    qk, col, row, mask = random_parts(7, [4, 4], L=4, H=2)
    qk[:, 1, 2] = 30.0
    pos = torch.zeros(2, 2, 1, dtype=torch.long)
    pos[:, :, 0] = 1 * 4 + 2
    dense = Factored(qk, col, row, mask).dense().reshape(2, 2, 16)
    got = factored_soft_multilabel_ce(qk, col, row, mask, pos, 0.1)
    exact = sparse_soft_multilabel_ce(dense, pos, mask.reshape(2, 1, 16), 0.1)
    assert_close(got, exact, rtol=1e-12, atol=0.0)


def test_factored_soft_never_negative_nor_nan_over_many_seeds_at_large_scale():
    for seed in range(20):
        qk, col, row, mask = random_parts(seed, [6, 3, 1], L=6, H=3, scale=10.0)
        pos = random_positives(seed, mask, H=3, max_k=6)
        for eps in (0.0, 0.1):
            got, got_grad = grads(
                lambda a, b, c, m=mask, p=pos, e=eps: factored_soft_multilabel_ce(a, b, c, m, p, e),
                (qk, col, row),
            )
            assert (got >= 0).all() and not got.isnan().any(), seed
            assert all(torch.isfinite(g).all() for g in got_grad), seed


def test_empty_label_axis_and_cls_only_sentence():
    qk, col, row, mask = random_parts(8, [4, 1], L=4, H=2)
    pos = torch.zeros(2, 2, 0, dtype=torch.long)
    got = factored_soft_multilabel_ce(qk, col, row, mask, pos, 0.1)
    assert_close(got, factored_reference(qk, col, row, mask, pos, 0.1), **TIGHT)
    dense = Factored(qk, col, row, mask).dense().reshape(2, 2, 16)
    assert_close(sparse_soft_multilabel_ce(dense, pos, mask.reshape(2, 1, 16), 0.1), got, **TIGHT)


def test_float32_in_float32_out():
    qk, col, row, mask = random_parts(9, [5, 3], L=5, H=2)
    pos = random_positives(9, mask, H=2, max_k=2)
    got = factored_soft_multilabel_ce(qk.float(), col.float(), row.float(), mask, pos, 0.1)
    assert got.dtype == torch.float32 and got.shape == (2, 2)
    want = factored_reference(qk, col, row, mask, pos, 0.1)
    assert_close(got, want.float(), rtol=1e-5, atol=1e-5)
    dense = Factored(qk, col, row, mask).dense().reshape(2, 2, 25).float()
    got = sparse_soft_multilabel_ce(dense, pos, mask.reshape(2, 1, 25), 0.1)
    assert got.dtype == torch.float32
    assert_close(got, want.float(), rtol=1e-5, atol=1e-5)


def test_gradcheck_on_a_small_case():
    qk, col, row, mask = random_parts(11, [4, 2], L=4, H=2)
    pos = random_positives(11, mask, H=2, max_k=3)
    parts = tuple(t.clone().requires_grad_() for t in (qk, col, row))
    assert torch.autograd.gradcheck(
        lambda a, b, c: factored_soft_multilabel_ce(a, b, c, mask, pos, 0.1), parts
    )


@pytest.mark.parametrize("eps", [-0.01, 1.5, float("nan")])
def test_smoothing_outside_0_1_is_refused(eps):
    qk, col, row, mask = random_parts(0, [3], L=3, H=1)
    pos = torch.zeros(1, 1, 1, dtype=torch.long)
    with pytest.raises(ValueError, match="smoothing"):
        factored_soft_multilabel_ce(qk, col, row, mask, pos, eps)
    with pytest.raises(ValueError, match="smoothing"):
        sparse_soft_multilabel_ce(qk.reshape(1, 1, 9), pos, mask.reshape(1, 1, 9), eps)
