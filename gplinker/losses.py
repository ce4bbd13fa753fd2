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
