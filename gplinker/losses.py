"""Multilabel softmax + cross-entropy (ZLPR), SPEC §4: tensors in, per-row loss out."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

_NEG_INF = float("-inf")


def _log1p_sum_exp(logits: Tensor) -> Tensor:
    """log(1 + Σ e^x) over the last dim; -inf entries drop out, an all -inf row gives 0."""
    # LSE([x, 0]) == softplus(LSE(x)), so the implicit 0 logit needs no concat.
    return F.softplus(torch.logsumexp(logits, dim=-1))


def multilabel_ce(scores: Tensor, targets: Tensor) -> Tensor:
    """Hard-label ZLPR loss on dense 0/1 targets: [..., N], [..., N] -> [...]."""
    # SPEC §4: L = log(1 + Σ_neg e^s) + log(1 + Σ_pos e^-s); positives score > 0.
    is_pos = targets > 0.5
    # masked_fill (not adding -inf) so the NaN that logsumexp's backward puts on an
    # all -inf row is dropped instead of reaching `scores`.
    neg = _log1p_sum_exp(scores.masked_fill(is_pos, _NEG_INF))
    pos = _log1p_sum_exp((-scores).masked_fill(~is_pos, _NEG_INF))
    return neg + pos


def sparse_multilabel_ce(scores: Tensor, pos: Tensor) -> Tensor:
    """ZLPR loss with positives given as indices: [..., N], [..., K] long -> [...].

    In the model `scores` is [B, H, L*L] flattened as i*L + j and `pos` is [B, H, K],
    padded with 0: cell 0 is [CLS]->[CLS], never a label, yet still counted as a negative.
    """
    valid = pos != 0  # [..., K]
    gathered = scores.gather(-1, pos)  # [..., K]
    # SPEC §4 warns that neg = a + log(1 - e^(b-a)) cancels and can go negative when the
    # positives dominate; instead drop the positives from the row and take the LSE of what
    # is left, which is exact. Pads write False onto cell 0 and every real index writes
    # True, so the scatter is deterministic even with repeated indices. A boolean mask
    # (rather than scattering -inf values) keeps cell 0's gradient from being counted
    # once per pad by scatter's backward.
    is_pos = torch.zeros_like(scores, dtype=torch.bool).scatter(-1, pos, valid)  # [..., N]
    neg = _log1p_sum_exp(scores.masked_fill(is_pos, _NEG_INF))
    pos_term = _log1p_sum_exp(torch.where(valid, -gathered, _NEG_INF))
    return neg + pos_term


def soft_multilabel_ce(scores: Tensor, targets: Tensor, eps: float = 1e-6) -> Tensor:
    """ZLPR loss on soft targets t in [0, 1]: [..., N], [..., N] -> [...].

    Its optimum is t = sigmoid(2s), so sigmoid(2s) is the calibrated probability.
    """
    # SPEC §4: L = log(1 + Σ (1-t) e^s) + log(1 + Σ t e^-s); t < eps counts as 0 and
    # t > 1 - eps as 1, so a masked (-1e12) logit never meets log(0).
    t = torch.where(targets < eps, 0.0, torch.where(targets > 1 - eps, 1.0, targets))
    t = t.to(scores.dtype)
    has_pos, has_neg = t > 0, t < 1
    # Log only where the weight is nonzero (a 1 stands in elsewhere) and mask with where,
    # so neither value nor gradient sees log(0) or the NaN of an all -inf logsumexp.
    log_t = torch.log(torch.where(has_pos, t, 1.0))
    log_1mt = torch.log1p(-torch.where(has_neg, t, 0.0))
    neg = _log1p_sum_exp(torch.where(has_neg, scores + log_1mt, _NEG_INF))
    pos = _log1p_sum_exp(torch.where(has_pos, log_t - scores, _NEG_INF))
    return neg + pos


def factored_sparse_multilabel_ce(
    qk: Tensor, col: Tensor, row: Tensor, mask: Tensor, pos: Tensor
) -> Tensor:
    """sparse_multilabel_ce for EGP scores s_α(i,j) = qk[i,j] + col[j,α] + row[i,α] (SPEC §3)
    on the cells where mask holds, without building the [B, H, L, L] scores.

    qk [B, L, L], col and row [B, L, H], mask [B, L, L] bool, pos [B, H, K] flat i*L + j
    with 0 pads -> [B, H]. The sum over all cells factorises,
    Σ_ij e^s = Σ_i e^row[i,α] Σ_j mask·e^qk[i,j] · e^col[j,α], so it is one batched matmul
    of [B, L, L] by [B, L, H]: time and memory O(B·L·(L + H)) instead of O(B·H·L²).
    The negative sum is that total minus the few positive terms, done in float64: the
    cancellation costs about 1e-16 · Σ_all e^s, under 1e-7 of the loss while positive
    scores stay below ~20 (the dense `sparse_multilabel_ce` is exact at any scale).
    """
    B, L, H = col.shape
    dtype = qk.dtype
    qk, col, row = qk.double(), col.double(), row.double()
    token = mask.diagonal(dim1=1, dim2=2)  # [B, L]: i <= j and both real, so (i, i) valid
    # Shifts (upper bounds of each factor over valid cells) keep exp() in range; the
    # result does not depend on them, so they carry no gradient.
    c_qk = _masked_max(qk.detach(), mask, dim=(1, 2))  # [B]
    c_col = _masked_max(col.detach(), token[..., None], dim=1)  # [B, H]
    c_row = _masked_max(row.detach(), token[..., None], dim=1)  # [B, H]
    e_qk = torch.where(mask, torch.exp(qk - c_qk[:, None, None]), 0.0)  # [B, L, L]
    e_col = torch.where(token[..., None], torch.exp(col - c_col[:, None]), 0.0)  # [B, L, H]
    e_row = torch.where(token[..., None], torch.exp(row - c_row[:, None]), 0.0)  # [B, L, H]
    total = (e_row * torch.bmm(e_qk, e_col)).sum(1)  # [B, H], scaled by e^-shift
    shift = c_qk[:, None] + c_col + c_row  # [B, H]

    K = pos.shape[-1]
    valid = pos != 0  # [B, H, K]
    i, j = pos // L, pos % L
    s_pos = (
        qk.reshape(B, L * L).gather(1, pos.reshape(B, H * K)).view(B, H, K)
        + col.transpose(1, 2).gather(2, j)
        + row.transpose(1, 2).gather(2, i)
    )  # [B, H, K]
    pos_term = _log1p_sum_exp(torch.where(valid, -s_pos, _NEG_INF))
    e_pos = torch.where(valid, torch.exp(torch.where(valid, s_pos, 0.0) - shift[..., None]), 0.0)
    neg_sum = total - e_pos.sum(-1)  # [B, H]
    has_neg = neg_sum > 0
    log_neg = torch.where(has_neg, torch.log(torch.where(has_neg, neg_sum, 1.0)), _NEG_INF)
    neg_term = torch.logaddexp(torch.zeros_like(log_neg), log_neg + shift)
    return (pos_term + neg_term).to(dtype)


def _masked_max(x: Tensor, mask: Tensor, dim: int | tuple[int, ...]) -> Tensor:
    """Max over `dim` where mask holds; 0 where nothing does (the shift is then moot)."""
    m = x.masked_fill(~mask, _NEG_INF).amax(dim=dim)
    return torch.where(torch.isfinite(m), m, 0.0)
