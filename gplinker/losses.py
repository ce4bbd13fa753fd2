"""Multilabel softmax + cross-entropy (ZLPR), SPEC §4: tensors in, per-row loss out."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

_NEG_INF = float("-inf")


def _log1p_sum_exp(logits: Tensor) -> Tensor:
    """log(1 + Σ e^x) over the last dim; -inf entries drop out, an all -inf row gives 0."""
    # LSE([x, 0]) == softplus(LSE(x)), so the implicit 0 logit needs no concat.
    return F.softplus(torch.logsumexp(logits, dim=-1))


def multilabel_ce(scores: Tensor, targets: Tensor, valid: Tensor | None = None) -> Tensor:
    """Hard-label ZLPR loss on dense 0/1 targets: [..., N], [..., N] -> [...]. Cells
    outside `valid` (bool, broadcastable; default all) count neither way, labels included."""
    # SPEC §4: L = log(1 + Σ_neg e^s) + log(1 + Σ_pos e^-s); positives score > 0.
    valid = torch.ones((), dtype=torch.bool, device=scores.device) if valid is None else valid
    is_pos = targets > 0.5
    # masked_fill (not adding -inf) so the NaN that logsumexp's backward puts on an
    # all -inf row is dropped instead of reaching `scores`.
    neg = _log1p_sum_exp(scores.masked_fill(is_pos | ~valid, _NEG_INF))
    pos = _log1p_sum_exp((-scores).masked_fill(~is_pos | ~valid, _NEG_INF))
    return neg + pos


def sparse_multilabel_ce(scores: Tensor, pos: Tensor, valid: Tensor | None = None) -> Tensor:
    """ZLPR loss with positives given as indices: [..., N], [..., K] long -> [...].

    In the model `scores` is [B, H, L*L] flattened as i*L + j and `pos` is [B, H, K],
    padded with 0: cell 0 is [CLS]->[CLS], never a label. `valid` (broadcastable to
    `scores`, bool) names the cells that exist; the others are neither negatives nor
    positives, so a label on one is ignored, as in every loss here. Without it every cell
    counts, cell 0 as a negative. A repeated index counts once.
    """
    if valid is None:
        valid = torch.ones((), dtype=torch.bool, device=scores.device)
    valid = valid.expand_as(scores)
    keep = (pos != 0) & valid.gather(-1, pos)  # [..., K]
    gathered = scores.gather(-1, pos)  # [..., K]
    # SPEC §4 warns that neg = a + log(1 - e^(b-a)) cancels and can go negative when the
    # positives dominate; instead drop the positives from the row and take the LSE of what
    # is left, which is exact. Dropped entries write False (onto cell 0 for pads) and kept
    # ones True, and a cell never gets both, so the scatter is deterministic with repeats.
    # A boolean mask (rather than scattered -inf values) keeps cell 0's gradient from being
    # counted once per pad by scatter's backward.
    is_pos = torch.zeros_like(scores, dtype=torch.bool).scatter(-1, pos, keep)  # [..., N]
    neg = _log1p_sum_exp(scores.masked_fill(is_pos | ~valid, _NEG_INF))
    pos_term = _log1p_sum_exp(torch.where(_first_of_each(pos, keep), -gathered, _NEG_INF))
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
    with 0 pads -> [B, H]; the conventions of sparse_multilabel_ce with valid = mask (a
    repeated index counts once, a label on a masked cell is ignored). The negatives' sum
    is built from positive terms only (`_factored_log_sum_exp`), never as "all cells minus
    the positives", which cancels to nothing once a positive outweighs the rest by 1e16
    (a score ~37 above them): equal to the dense loss in value and gradient at any scale.
    Time and memory O(B·L·(L + H)) instead of O(B·H·L²).
    """
    dtype = qk.dtype
    qk, col, row = qk.double(), col.double(), row.double()
    keep = _unique_positives(pos, mask)  # [B, H, K]
    s_pos = _factored_gather(qk, col, row, pos)  # [B, H, K]
    pos_term = _log1p_sum_exp(torch.where(keep, -s_pos, _NEG_INF))
    neg_term = F.softplus(_factored_log_sum_exp(qk, col, row, mask, pos, keep))
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
    V the valid cells:
        Σ_V (1 - t) e^s = (1 - ε) Σ_{V∖P} e^s + ε Σ_P e^s
        Σ_V t e^-s      = ε Σ_{V∖P} e^-s + (1 - ε) Σ_P e^-s
    Σ_{V∖P} e^{±s} comes from `_factored_log_sum_exp` (-s = (-qk) + (-col) + (-row) has
    the same form), exact at any scale, so both sums are added in log space and nothing
    cancels; the cost stays O(B·L·(L + H)).
    """
    eps = _check_smoothing(smoothing)
    dtype = qk.dtype
    qk, col, row = qk.double(), col.double(), row.double()
    keep = _unique_positives(pos, mask)  # [B, H, K]
    s_pos = _factored_gather(qk, col, row, pos)  # [B, H, K]
    rest_p = _factored_log_sum_exp(qk, col, row, mask, pos, keep)  # log Σ_{V∖P} e^s
    rest_m = _factored_log_sum_exp(-qk, -col, -row, mask, pos, keep)  # log Σ_{V∖P} e^-s
    pos_p = _log_sum_exp(torch.where(keep, s_pos, _NEG_INF))  # log Σ_P e^s
    pos_m = _log_sum_exp(torch.where(keep, -s_pos, _NEG_INF))  # log Σ_P e^-s
    neg_term = F.softplus(_log_weighted_sum(1.0 - eps, rest_p, eps, pos_p))
    pos_term = F.softplus(_log_weighted_sum(eps, rest_m, 1.0 - eps, pos_m))
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


# Inner sums whose scaled value falls below e^-600 may have lost terms to underflow (each
# product of two factors ≤ 1 is exact down to ~e^-708): such rows are summed exactly.
_SCALED_FLOOR = math.exp(-600.0)
_TINY = 1e-300


def _factored_log_sum_exp(
    qk: Tensor, col: Tensor, row: Tensor, mask: Tensor, pos: Tensor, keep: Tensor
) -> Tensor:
    """log Σ e^s over the cells where mask holds but no kept positive sits, for
    s[b,α,i,j] = qk[b,i,j] + col[b,j,α] + row[b,i,α]: [B, H] (-inf where nothing is left).

    The sum over j is one bmm per row i, shifted by max_j qk[i,j] and max_j col[j,α] so no
    exp() overflows; the sum over i is a log-sum-exp, so rows of any size combine exactly.
    Two kinds of row (b, i, α) are summed over j exactly instead, gathered into [n, L]:
    rows holding a positive of α (their positives left out, so nothing is subtracted and
    nothing cancels), and rows whose shifted bmm sum fell under e^-600, where underflow
    may have dropped terms (only when scores differ by hundreds within a row). A model at
    any sane scale has only the first kind: a handful per label.
    """
    _, L, H = col.shape
    token = mask.diagonal(dim1=1, dim2=2)  # [B, L]: i <= j and both real, so (i, i) valid
    c_qk = _masked_max(qk.detach(), mask, dim=2)  # [B, L]
    c_col = _masked_max(col.detach(), token[..., None], dim=1)  # [B, H]
    # masked before exp(): an off-mask cell may exceed the shift, and exp() = inf there
    # would turn the zero gradient of a later where() into NaN (inf * 0)
    e_qk = torch.exp((qk - c_qk[..., None]).masked_fill(~mask, _NEG_INF))  # [B, L, L]
    e_col = torch.exp((col - c_col[:, None]).masked_fill(~token[..., None], _NEG_INF))
    inner = torch.bmm(e_qk, e_col)  # [B, L, H]: Σ_j e^(qk + col - c_qk[i] - c_col[α])

    # rows to sum exactly: (b, α, i) of every kept positive, then the underflowed ones
    pb, pa, pk = keep.nonzero(as_tuple=True)
    p_cell = pos[pb, pa, pk]
    pi, pj = p_cell // L, p_cell % L
    fb, fi, fa = (token[..., None] & (inner < _SCALED_FLOOR)).nonzero(as_tuple=True)
    key = torch.cat([(pb * H + pa) * L + pi, (fb * H + fa) * L + fi])
    rows, which = torch.unique(key, return_inverse=True)  # [n]; rows are unique
    rb, ra, ri = rows // (H * L), rows // L % H, rows % L
    # each positive leaves its own cell out of its row
    left_out = torch.zeros(len(rows), L, dtype=torch.bool, device=qk.device)
    left_out[which[: len(pb)], pj] = True
    exact_valid = mask[rb, ri] & ~left_out  # [n, L]
    exact = _log_sum_exp(
        torch.where(exact_valid, qk[rb, ri] + col.transpose(1, 2)[rb, ra], _NEG_INF)
    )  # [n]

    # The sum over i, shifted by c[α] = max_i (c_qk[i] + row[i,α]): every term is at most
    # L, and while the total stays above e^-600 the terms lost to underflow (each under
    # e^-708) cannot matter. Below it (or with nothing left), a log-sum-exp over i instead.
    off = ~token[..., None]
    lift = (c_qk[..., None] + row).masked_fill(off, _NEG_INF)  # [B, L, H]
    c_row = lift.detach().amax(1)  # [B, H]; finite: a sentence has tokens
    exact_scaled = torch.exp(exact - c_qk[rb, ri] - c_col[rb, ra])  # <= L
    scaled = inner.index_put((rb, ri, ra), exact_scaled)
    total = (scaled * torch.exp(lift - c_row[:, None])).sum(1)  # [B, H]
    if bool((total >= _SCALED_FLOOR).all()):
        return torch.log(total) + c_row + c_col
    # clamped, not masked: the rows it touches are padding (dropped below) or underflowed
    # (replaced by their exact sums), so it only keeps log() and its gradient finite
    log_inner = inner.clamp_min(_TINY).log() + c_qk[..., None] + c_col[:, None]  # [B, L, H]
    log_inner = log_inner.index_put((rb, ri, ra), exact)
    return _log_sum_exp((log_inner + row).masked_fill(off, _NEG_INF), dim=1)


def _log_sum_exp(x: Tensor, dim: int = -1) -> Tensor:
    """logsumexp over `dim` of finite or -inf entries: -inf for an all -inf slice, with a
    zero (not NaN) gradient, which torch.logsumexp does not give."""
    if x.shape[dim] == 0:
        return x.sum(dim).fill_(_NEG_INF)
    top = x.detach().amax(dim, keepdim=True)
    top = top.masked_fill(torch.isinf(top), 0.0)  # an all -inf slice: any shift will do
    total = torch.exp(x - top).sum(dim)
    some = total > 0
    return torch.log(torch.where(some, total, 1.0)).masked_fill(~some, _NEG_INF) + top.squeeze(dim)


def _log_weighted_sum(w1: float, log_a: Tensor, w2: float, log_b: Tensor) -> Tensor:
    """log(w1·e^log_a + w2·e^log_b) for weights in [0, 1]; a zero weight drops its term."""
    terms = [log + math.log(w) for w, log in ((w1, log_a), (w2, log_b)) if w > 0]
    return _log_sum_exp(torch.stack(terms, -1))


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
    return _first_of_each(pos, (pos != 0) & in_mask)


def _first_of_each(pos: Tensor, keep: Tensor) -> Tensor:
    """keep, less the entries that repeat an earlier entry of their row ([..., K] both)."""
    K = pos.shape[-1]
    # K is a handful of labels per row, so the [..., K, K] comparison is cheap.
    same = pos[..., :, None] == pos[..., None, :]  # [..., K, K]
    earlier = torch.ones(K, K, dtype=torch.bool, device=pos.device).tril(-1)
    return keep & ~(same & earlier).any(-1)


def _masked_max(x: Tensor, mask: Tensor, dim: int | tuple[int, ...]) -> Tensor:
    """Max over `dim` where mask holds; 0 where nothing does (the shift is then moot)."""
    m = x.masked_fill(~mask, _NEG_INF).amax(dim=dim)
    return torch.where(torch.isfinite(m), m, 0.0)
