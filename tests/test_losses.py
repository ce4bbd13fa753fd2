"""ZLPR losses (SPEC §4) against dense forms, hand formulas and brute-force loops."""

from __future__ import annotations

import math

import pytest
import torch
from torch.testing import assert_close

from gplinker.losses import multilabel_ce, soft_multilabel_ce, sparse_multilabel_ce


def to_indices(targets: torch.Tensor) -> torch.Tensor:
    """Dense 0/1 [..., N] -> positive indices [..., K], padded with 0 (cell 0 never a label)."""
    flat = targets.reshape(-1, targets.shape[-1])
    rows = [torch.nonzero(row > 0.5).flatten().tolist() for row in flat]
    k = max((len(r) for r in rows), default=0)
    out = torch.zeros(len(rows), k, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.tensor(r, dtype=torch.long)
    return out.reshape(*targets.shape[:-1], k)


def random_case(seed: int, shape: tuple[int, ...], scale: float = 1.0, p: float = 0.1):
    g = torch.Generator().manual_seed(seed)
    scores = scale * torch.randn(*shape, generator=g, dtype=torch.float64)
    targets = (torch.rand(*shape, generator=g) < p).double()
    targets[..., 0] = 0  # cell 0 is [CLS]->[CLS]: never a label
    return scores, targets


def brute_force_ce(scores: list[float], positives: set[int]) -> float:
    """SPEC §4 written out over Python sets: log(1 + Σ_N e^s) + log(1 + Σ_P e^-s)."""
    negatives = set(range(len(scores))) - positives
    return math.log(1 + sum(math.exp(scores[i]) for i in negatives)) + math.log(
        1 + sum(math.exp(-scores[j]) for j in positives)
    )


@pytest.mark.parametrize(
    ("seed", "shape", "p"),
    [(0, (2, 3, 49), 0.1), (1, (2, 4, 64), 0.3), (2, (5, 16), 0.5), (3, (2, 1, 9), 0.9)],
)
def test_sparse_ce_equals_dense_ce_on_random_inputs(seed, shape, p):
    scores, targets = random_case(seed, shape, p=p)
    assert_close(sparse_multilabel_ce(scores, to_indices(targets)), multilabel_ce(scores, targets))


def test_sparse_ce_equals_dense_ce_with_huge_logits_and_no_positives():
    g = torch.Generator().manual_seed(0)
    scores = 40 * torch.randn(2, 3, 49, generator=g, dtype=torch.float64)
    targets = (torch.rand(2, 3, 49, generator=g) < 0.1).double()
    targets[1] = 0
    targets[..., 0] = 0
    assert_close(sparse_multilabel_ce(scores, to_indices(targets)), multilabel_ce(scores, targets))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sparse_ce_equals_dense_ce_when_positives_dominate_with_40x_logits(seed):
    scores, targets = random_case(seed, (2, 3, 49), scale=40.0, p=0.6)
    sparse = sparse_multilabel_ce(scores, to_indices(targets))
    assert_close(sparse, multilabel_ce(scores, targets), rtol=1e-12, atol=0.0)
    assert (sparse >= 0).all()


def test_sparse_ce_is_exact_when_one_positive_at_100_dominates_negatives_below_zero():
    # Here a = LSE(all) ≈ b = LSE(pos) = 100, so a + log(1 - e^(b-a)) cancels to noise;
    # the true loss is tiny but positive and must come out with full relative precision.
    scores = torch.tensor([-30.0, -35.0, 100.0, -40.0, -31.0], dtype=torch.float64)
    pos = torch.tensor([2, 0, 0])
    negs = [-30.0, -35.0, -40.0, -31.0]
    expected = math.log1p(sum(math.exp(s) for s in negs)) + math.log1p(math.exp(-100.0))
    got = sparse_multilabel_ce(scores, pos)
    assert got.item() > 0
    assert_close(got, torch.tensor(expected, dtype=torch.float64), rtol=1e-12, atol=0.0)


def test_sparse_ce_with_no_positives_is_log1p_sum_exp_over_every_cell_including_cell_0():
    scores = torch.tensor([[0.5, -1.0, 2.0], [3.0, 0.0, -2.0]], dtype=torch.float64)
    pos = torch.zeros(2, 4, dtype=torch.long)  # all padding
    expected = torch.tensor(
        [math.log1p(sum(math.exp(s) for s in row)) for row in scores.tolist()], dtype=torch.float64
    )
    assert_close(sparse_multilabel_ce(scores, pos), expected)


def test_sparse_ce_with_k_zero_equals_dense_ce_with_no_targets():
    scores, _ = random_case(4, (2, 3, 16))
    pos = torch.zeros(2, 3, 0, dtype=torch.long)
    got = sparse_multilabel_ce(scores, pos)
    assert got.shape == (2, 3)
    assert_close(got, multilabel_ce(scores, torch.zeros_like(scores)))


@pytest.mark.parametrize("with_positives", [False, True])
def test_sparse_ce_with_every_score_masked_is_finite_nonnegative_and_has_finite_grad(
    with_positives,
):
    scores = torch.full((2, 3, 16), -1e12, dtype=torch.float64, requires_grad=True)
    pos = torch.zeros(2, 3, 4, dtype=torch.long)
    if with_positives:
        pos[0, 1, :2] = torch.tensor([5, 7])
    loss = sparse_multilabel_ce(scores, pos)
    loss.sum().backward()
    assert torch.isfinite(loss).all() and (loss >= 0).all()
    assert torch.isfinite(scores.grad).all()
    assert_close(loss[1], torch.zeros(3, dtype=torch.float64))
    if with_positives:
        assert_close(loss[0, 1], torch.tensor(1e12 + math.log(2), dtype=torch.float64))


@pytest.mark.parametrize("scale", [1.0, 40.0, 1e6])
def test_losses_are_nonnegative_with_finite_grads_at_any_logit_scale(scale):
    for seed in range(5):
        scores, targets = random_case(seed, (2, 3, 25), scale=scale, p=0.4)
        scores.requires_grad_(True)
        for loss in (
            multilabel_ce(scores, targets),
            sparse_multilabel_ce(scores, to_indices(targets)),
            soft_multilabel_ce(scores, targets),
        ):
            (grad,) = torch.autograd.grad(loss.sum(), scores)
            assert (loss >= 0).all()
            assert torch.isfinite(loss).all() and torch.isfinite(grad).all()


def test_sparse_ce_grad_equals_dense_ce_grad_when_rows_have_several_pads():
    # Rows with 0, 1 and 3 pads: cell 0's gradient must be counted once, not once per pad.
    scores, targets = random_case(5, (3, 12), p=0.0)
    targets[0, [2, 5, 7]] = 1
    targets[1, [3, 4]] = 1
    scores.requires_grad_(True)
    pos = to_indices(targets)
    (sparse_grad,) = torch.autograd.grad(sparse_multilabel_ce(scores, pos).sum(), scores)
    (dense_grad,) = torch.autograd.grad(multilabel_ce(scores, targets).sum(), scores)
    assert_close(sparse_grad, dense_grad)


def test_sparse_ce_passes_gradcheck_with_padded_indices():
    g = torch.Generator().manual_seed(6)
    scores = torch.randn(2, 7, generator=g, dtype=torch.float64, requires_grad=True)
    pos = torch.tensor([[3, 5, 0, 0], [1, 0, 0, 0]])
    assert torch.autograd.gradcheck(lambda s: sparse_multilabel_ce(s, pos), (scores,))


def test_dense_and_sparse_ce_match_brute_force_loops_over_sets_on_a_tiny_case():
    scores = [[0.3, -1.2, 2.5, 0.0, -0.7], [1.1, 0.4, -2.0, 3.0, -0.1]]
    positives = [{2, 4}, {1, 3}]
    expected = torch.tensor(
        [brute_force_ce(s, p) for s, p in zip(scores, positives, strict=True)], dtype=torch.float64
    )
    s = torch.tensor(scores, dtype=torch.float64)
    targets = torch.zeros_like(s)
    for row, p in enumerate(positives):
        for j in p:
            targets[row, j] = 1.0
    assert_close(multilabel_ce(s, targets), expected)
    assert_close(sparse_multilabel_ce(s, torch.tensor([[2, 4, 0], [1, 3, 0]])), expected)


def test_soft_ce_equals_hard_ce_on_binary_targets():
    for seed in range(3):
        scores, targets = random_case(seed, (2, 3, 20), scale=5.0, p=0.3)
        assert_close(soft_multilabel_ce(scores, targets), multilabel_ce(scores, targets))


def test_soft_ce_matches_brute_force_on_fractional_targets():
    scores = [0.3, -1.2, 2.5, 0.0]
    t = [0.1, 0.9, 0.5, 0.0]
    expected = math.log(1 + sum((1 - ti) * math.exp(si) for si, ti in zip(scores, t, strict=True)))
    expected += math.log(1 + sum(ti * math.exp(-si) for si, ti in zip(scores, t, strict=True)))
    got = soft_multilabel_ce(torch.tensor(scores, dtype=torch.float64), torch.tensor(t).double())
    assert_close(got, torch.tensor(expected, dtype=torch.float64))


def test_soft_ce_snaps_targets_within_eps_of_0_and_1_to_hard_labels():
    scores = torch.tensor([0.3, -1.2, 2.5, 0.7], dtype=torch.float64)
    near = torch.tensor([1e-9, 1 - 1e-9, 0.0, 1.0], dtype=torch.float64)
    hard = torch.tensor([0.0, 1.0, 0.0, 1.0], dtype=torch.float64)
    assert_close(soft_multilabel_ce(scores, near), multilabel_ce(scores, hard), rtol=0, atol=0)


def test_soft_ce_with_masked_logits_and_boundary_targets_has_no_nan_in_value_or_grad():
    scores = torch.tensor(
        [[-1e12, -1e12, 0.5, -1e12], [-1e12, -1e12, -1e12, -1e12], [2.0, -1e12, -3.0, 1.0]],
        dtype=torch.float64,
        requires_grad=True,
    )
    targets = torch.tensor(
        [[0.0, 1e-7, 1 - 1e-7, 1.0], [0.0, 0.0, 0.0, 0.0], [0.3, 0.0, 1.0, 0.6]],
        dtype=torch.float64,
        requires_grad=True,
    )
    loss = soft_multilabel_ce(scores, targets)
    loss.sum().backward()
    assert torch.isfinite(loss).all() and (loss >= 0).all()
    assert torch.isfinite(scores.grad).all() and torch.isfinite(targets.grad).all()
    assert loss[1].item() == 0.0


@pytest.mark.parametrize("t", [0.05, 0.3, 0.5, 0.8, 0.97])
def test_soft_ce_on_a_single_logit_is_minimised_at_s_equal_half_logit_of_t(t):
    # SPEC §4: the optimum is t = sigmoid(2s), i.e. s* = 0.5 * log(t / (1 - t)).
    target = torch.tensor([t], dtype=torch.float64)

    def grad_at(s: float) -> float:
        x = torch.tensor([s], dtype=torch.float64, requires_grad=True)
        (g,) = torch.autograd.grad(soft_multilabel_ce(x, target), x)
        return g.item()

    s_star = 0.5 * math.log(t / (1 - t))
    assert abs(grad_at(s_star)) < 1e-12
    assert grad_at(s_star - 0.1) < 0 < grad_at(s_star + 0.1)
    assert_close(torch.sigmoid(torch.tensor(2 * s_star)).item(), t)
