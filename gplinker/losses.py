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
    dtype = qk.dtype
    qk, col, row = qk.double(), col.double(), row.double()
    total, shift = _factored_sum_exp(qk, col, row, mask)  # [B, H] each

    valid = pos != 0  # [B, H, K]
    s_pos = _factored_gather(qk, col, row, pos)  # [B, H, K]
    pos_term = _log1p_sum_exp(torch.where(valid, -s_pos, _NEG_INF))
    e_pos = torch.where(valid, torch.exp(torch.where(valid, s_pos, 0.0) - shift[..., None]), 0.0)
    neg_sum = total - e_pos.sum(-1)  # [B, H]
    neg_term = _log1p_scaled(neg_sum, shift)
    return (pos_term + neg_term).to(dtype)


def sparse_soft_multilabel_ce(
    scores: Tensor, pos: Tensor, valid: Tensor, smoothing: float
) -> Tensor:
    """Label-smoothed ZLPR loss with positives as indices: the soft loss of SPEC §4 with
    t = 1 - ε on the positives and t = ε on every other valid cell.

    scores [B, H, N] (N = L*L, flat i*L + j), pos [B, H, K] long padded with 0 (as in
    sparse_multilabel_ce: cell 0 is never a label), valid [B, 1 or H, N] bool -> [B, H].
    Per row: log(1 + Σ_valid (1 - t) e^s) + log(1 + Σ_valid t e^-s). Cells outside
    `valid` (lower triangle, padding) are not labels and add nothing, whatever their score;
    a positive index on such a cell is ignored, and a repeated index counts once. With
    ε = 0 this is sparse_multilabel_ce on scores masked to -inf outside `valid`. The
    optimum is σ(2s) = t, so smoothing keeps scores finite (|s| ≈ ½ log((1 - ε) / ε)).
    This is the dense form, for the original GlobalPointer; EGP uses
    factored_soft_multilabel_ce.
    """
    eps = _check_smoothing(smoothing)
    # scatter writes True for real indices and False for pads, so repeats collapse and
    # the pads (all onto cell 0) cannot mark it. A label on a masked cell is dropped with
    # the cell by the `valid &` below.
    is_pos = torch.zeros_like(scores, dtype=torch.bool).scatter(-1, pos, pos != 0)  # [B, H, N]
    # Weights of e^s (1 - t) and of e^-s (t); a zero weight (ε = 0 or 1) drops the cell
    # through `where`, never as log(0) = -inf added to a score, whose logsumexp backward
    # would put NaN on an all -inf row.
    # (Built in the scores' dtype: a float32 1 - ε would cost float64 callers 1e-8.)
    e, one_minus_e = scores.new_tensor(eps), scores.new_tensor(1.0 - eps)
    neg_w = torch.where(is_pos, e, one_minus_e)  # [B, H, N]
    pos_w = torch.where(is_pos, one_minus_e, e)  # [B, H, N]
    keep_neg, keep_pos = valid & (neg_w > 0), valid & (pos_w > 0)
    neg_logit = scores + torch.log(torch.where(keep_neg, neg_w, 1.0))
    pos_logit = torch.log(torch.where(keep_pos, pos_w, 1.0)) - scores
    neg = _log1p_sum_exp(torch.where(keep_neg, neg_logit, _NEG_INF))
    pos_term = _log1p_sum_exp(torch.where(keep_pos, pos_logit, _NEG_INF))
    return neg + pos_term


def factored_soft_multilabel_ce(
    qk: Tensor, col: Tensor, row: Tensor, mask: Tensor, pos: Tensor, smoothing: float
) -> Tensor:
    """sparse_soft_multilabel_ce for EGP scores s_α(i,j) = qk[i,j] + col[j,α] + row[i,α]
    on the cells where mask holds, without building the [B, H, L, L] scores.

    qk [B, L, L], col and row [B, L, H], mask [B, L, L] bool, pos [B, H, K] flat i*L + j
    with 0 pads -> [B, H]; same targets and conventions as sparse_soft_multilabel_ce
    (repeats count once, labels on masked cells are ignored). With P the positives and
    V the valid cells, both sums are a full-mask sum plus a correction over the few
    positives:
        Σ_V (1 - t) e^s = (1 - ε) Σ_{V∖P} e^s + ε Σ_P e^s
        Σ_V t e^-s      = ε Σ_{V∖P} e^-s + (1 - ε) Σ_P e^-s
    with Σ_{V∖P} = Σ_V - Σ_P, and Σ_V e^{±s} factorises as in factored_sparse_multilabel_ce
    (-s = (-qk) + (-col) + (-row) has the same form), so the cost stays O(B·L·(L + H)).
    Writing it this way (not (1 - ε) Σ_V - (1 - 2ε) Σ_P) leaves only Σ_V - Σ_P to cancel,
    whose true value is >= 0; rounding can push it slightly below, so it is clamped at 0.
    The cancellation costs about 1e-16 · Σ_V e^s in float64; for ε > 0 the exact ε Σ_P
    term is of the same size as Σ_V whenever the cancellation is severe, so the relative
    error of the log argument stays near 1e-16 / ε. At ε = 0 the accuracy is that of
    factored_sparse_multilabel_ce.
    """
    eps = _check_smoothing(smoothing)
    dtype = qk.dtype
    qk, col, row = qk.double(), col.double(), row.double()
    tot_p, c_p = _factored_sum_exp(qk, col, row, mask)  # [B, H]: Σ_V e^(s - c_p)
    tot_m, c_m = _factored_sum_exp(-qk, -col, -row, mask)  # [B, H]: Σ_V e^(-s - c_m)

    keep = _unique_positives(pos, mask)  # [B, H, K]
    s_pos = _factored_gather(qk, col, row, pos)  # [B, H, K]
    # c_p >= s and c_m >= -s on every valid cell, so neither exp() can overflow; dropped
    # entries become e^-inf = 0, with a zero (not NaN) gradient.
    pos_p = torch.exp(torch.where(keep, s_pos - c_p[..., None], _NEG_INF)).sum(-1)  # [B, H]
    pos_m = torch.exp(torch.where(keep, -s_pos - c_m[..., None], _NEG_INF)).sum(-1)  # [B, H]
    rest_p = (tot_p - pos_p).clamp_min(0.0)  # Σ_{V∖P} e^(s - c_p) >= 0
    rest_m = (tot_m - pos_m).clamp_min(0.0)  # Σ_{V∖P} e^(-s - c_m) >= 0
    neg_term = _log1p_scaled((1.0 - eps) * rest_p + eps * pos_p, c_p)
    pos_term = _log1p_scaled(eps * rest_m + (1.0 - eps) * pos_m, c_m)
    return (neg_term + pos_term).to(dtype)


def gradient_penalty(loss: Tensor, inputs: Tensor) -> Tensor:
    """‖∇_inputs loss‖², the sum of squares of the gradient of a scalar loss, as a scalar.

    SPEC §6: a penalty on the gradient with respect to the embedding input (the input side
    of the input/parameter gradient penalty inequality); the trainer adds
    ½ · weight · penalty to the loss. The gradient is taken with create_graph=True so the
    penalty is itself differentiable (a double backward through the model) and the graph
    of `loss` is kept for the backward of the sum. `inputs` must be part of loss's graph.
    """
    (grad,) = torch.autograd.grad(loss, inputs, create_graph=True)
    return grad.pow(2).sum()


def _check_smoothing(smoothing: float) -> float:
    """ε must be a weight in [0, 1]; outside it a target leaves [0, 1] and a log breaks."""
    eps = float(smoothing)
    if not 0.0 <= eps <= 1.0:
        raise ValueError(f"label smoothing must be in [0, 1], got {smoothing}")
    return eps


def _factored_sum_exp(qk: Tensor, col: Tensor, row: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Σ over mask of e^(s - shift) for s[b,α,i,j] = qk[b,i,j] + col[b,j,α] + row[b,i,α],
    as one bmm: returns (total, shift), both [B, H]; the shift carries no gradient."""
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
    return total, c_qk[:, None] + c_col + c_row


def _factored_gather(qk: Tensor, col: Tensor, row: Tensor, pos: Tensor) -> Tensor:
    """Scores s[b,α,i,j] at flat indices pos [B, H, K] (i*L + j) -> [B, H, K]; no mask."""
    B, L, H = col.shape
    K = pos.shape[-1]
    i, j = pos // L, pos % L
    return (
        qk.reshape(B, L * L).gather(1, pos.reshape(B, H * K)).view(B, H, K)
        + col.transpose(1, 2).gather(2, j)
        + row.transpose(1, 2).gather(2, i)
    )


def _unique_positives(pos: Tensor, mask: Tensor) -> Tensor:
    """[B, H, K] bool: entries of pos that are real labels, i.e. not a 0 pad, on a cell
    where mask [B, L, L] holds, and not a repeat of an earlier entry of the same row."""
    B, L, _ = mask.shape
    H, K = pos.shape[1], pos.shape[2]
    in_mask = mask.reshape(B, L * L).gather(1, pos.reshape(B, H * K)).view(B, H, K)
    # An entry repeats an earlier one iff some earlier k' < k holds the same index; K is
    # a handful of labels per row, so the [B, H, K, K] comparison is cheap.
    same = pos[..., :, None] == pos[..., None, :]  # [B, H, K, K]
    earlier = torch.ones(K, K, dtype=torch.bool, device=pos.device).tril(-1)
    repeat = (same & earlier).any(-1)  # [B, H, K]
    return (pos != 0) & in_mask & ~repeat


def _log1p_scaled(x: Tensor, shift: Tensor) -> Tensor:
    """log(1 + x·e^shift) for x >= 0 stored scaled by e^-shift; x = 0 gives exactly 0,
    with a finite gradient (log is only taken where x > 0)."""
    pos = x > 0
    log_x = torch.where(pos, torch.log(torch.where(pos, x, 1.0)), _NEG_INF)
    return torch.logaddexp(torch.zeros_like(log_x), log_x + shift)


def _masked_max(x: Tensor, mask: Tensor, dim: int | tuple[int, ...]) -> Tensor:
    """Max over `dim` where mask holds; 0 where nothing does (the shift is then moot)."""
    m = x.masked_fill(~mask, _NEG_INF).amax(dim=dim)
    return torch.where(torch.isfinite(m), m, 0.0)
