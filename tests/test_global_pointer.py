"""EGP, the original GlobalPointer and RoPE (SPEC §3) against per-label loops."""

from __future__ import annotations

import math

import pytest
import torch
from torch.testing import assert_close

from gplinker.modeling.global_pointer import (
    EfficientGlobalPointer,
    Factored,
    GlobalPointer,
    rope,
    span_mask,
)


def rope_loop(x: torch.Tensor) -> torch.Tensor:
    """SPEC §3 written out: pair (2m, 2m+1) at position i turns by i·10000^(-2m/d)."""
    *_, L, d = x.shape
    out = torch.empty_like(x)
    for i in range(L):
        for m in range(d // 2):
            theta = 10000.0 ** (-2 * m / d)
            c, s = math.cos(i * theta), math.sin(i * theta)
            out[..., i, 2 * m] = x[..., i, 2 * m] * c - x[..., i, 2 * m + 1] * s
            out[..., i, 2 * m + 1] = x[..., i, 2 * m + 1] * c + x[..., i, 2 * m] * s
    return out


def padded_mask(lengths: list[int], L: int) -> torch.Tensor:
    return torch.tensor([[1] * n + [0] * (L - n) for n in lengths])


def egp_loop(model: EfficientGlobalPointer, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """s[b,α,i,j] = q_i·k_j/√d + u_j[2α] + u_i[2α+1] for i <= j, both tokens real."""
    B, L, _ = h.shape
    H, d = model.num_labels, model.head_size
    x = model.dense(h)
    q, k = x[..., 0::2], x[..., 1::2]
    if model.use_rope:
        q, k = rope_loop(q), rope_loop(k)
    u = model.bias(x) / 2
    out = torch.full((B, H, L, L), float("nan"), dtype=h.dtype)
    for b in range(B):
        for a in range(H):
            for i in range(L):
                for j in range(L):
                    if i <= j and mask[b, i] and mask[b, j]:
                        out[b, a, i, j] = (
                            q[b, i] @ k[b, j] / math.sqrt(d) + u[b, j, 2 * a] + u[b, i, 2 * a + 1]
                        )
    return out


def gp_loop(model: GlobalPointer, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Original GP: label α has its own q/k, x[..., α, 0::2] and x[..., α, 1::2]."""
    B, L, _ = h.shape
    H, d = model.num_labels, model.head_size
    x = model.dense(h).view(B, L, H, 2 * d)
    out = torch.full((B, H, L, L), float("nan"), dtype=h.dtype)
    for b in range(B):
        for a in range(H):
            q, k = x[b, :, a, 0::2], x[b, :, a, 1::2]  # [L, d]
            if model.use_rope:
                q, k = rope_loop(q), rope_loop(k)
            for i in range(L):
                for j in range(L):
                    if i <= j and mask[b, i] and mask[b, j]:
                        out[b, a, i, j] = q[i] @ k[j] / math.sqrt(d)
    return out


def assert_matches_loop(scores: torch.Tensor, expected: torch.Tensor) -> None:
    """Valid cells equal the loop; masked cells (NaN in the loop) are hugely negative."""
    valid = ~expected.isnan()
    assert_close(scores[valid], expected[valid])
    assert (scores[~valid] <= -1e11).all()


def test_rope_equals_its_definition_as_a_loop():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 7, 8, generator=g, dtype=torch.float64)
    # The angles are computed in float32 (as the reference does), so allow that much.
    assert_close(rope(x), rope_loop(x), rtol=1e-6, atol=1e-6)


def test_rope_position_zero_is_identity_and_norms_are_kept():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(5, 6, generator=g, dtype=torch.float64)
    out = rope(x)
    assert_close(out[0], x[0])
    assert_close(out.norm(dim=-1), x.norm(dim=-1))


def test_rope_dot_product_depends_only_on_relative_position_under_shift():
    g = torch.Generator().manual_seed(2)
    d, L = 8, 12
    q, k = torch.randn(d, generator=g, dtype=torch.float64), torch.randn(d, generator=g).double()
    dots = {}
    for offset in (0, 3, 7):
        for i, j in ((1, 4), (2, 2)):
            qs = torch.zeros(L, d, dtype=torch.float64)
            ks = torch.zeros(L, d, dtype=torch.float64)
            qs[i + offset], ks[j + offset] = q, k
            dots.setdefault((i, j), []).append(rope(qs)[i + offset] @ rope(ks)[j + offset])
    for values in dots.values():
        for v in values[1:]:
            assert_close(v, values[0], rtol=1e-5, atol=1e-5)
    # and the relative position matters: (1, 4) differs from (2, 2)
    assert not torch.isclose(dots[(1, 4)][0], dots[(2, 2)][0])


@pytest.mark.parametrize("use_rope", [True, False])
def test_egp_scores_equal_per_label_loop_with_padding_in_batch(use_rope: bool):
    torch.manual_seed(0)
    model = EfficientGlobalPointer(6, num_labels=3, head_size=4, rope=use_rope).double()
    h = torch.randn(2, 5, 6, dtype=torch.float64)
    mask = padded_mask([5, 3], 5)
    scores = model(h, mask)
    assert scores.shape == (2, 3, 5, 5)
    assert_matches_loop(scores, egp_loop(model, h, mask))


def test_egp_bias_uses_pre_rope_x_and_label_order_of_even_odd_columns():
    """u_j[2α] goes to the column j, u_i[2α+1] to the row i: swap them and the loop disagrees."""
    torch.manual_seed(3)
    model = EfficientGlobalPointer(4, num_labels=2, head_size=4, rope=True).double()
    h = torch.randn(1, 4, 4, dtype=torch.float64)
    mask = torch.ones(1, 4, dtype=torch.long)
    f = model.factored(h, mask)
    u = model.bias(model.dense(h)) / 2
    assert_close(f.col, u[..., 0::2])
    assert_close(f.row, u[..., 1::2])
    assert_matches_loop(model(h, mask), egp_loop(model, h, mask))


def test_factored_dense_equals_forward_with_padding():
    torch.manual_seed(4)
    model = EfficientGlobalPointer(6, num_labels=4, head_size=4).double()
    h = torch.randn(2, 6, 6, dtype=torch.float64)
    mask = padded_mask([6, 2], 6)
    f = model.factored(h, mask)
    assert isinstance(f, Factored)
    assert f.qk.shape == (2, 6, 6) and f.col.shape == f.row.shape == (2, 6, 4)
    assert f.mask.shape == (2, 6, 6)
    assert_close(f.dense(), model(h, mask))


@pytest.mark.parametrize("use_rope", [True, False])
def test_original_global_pointer_equals_per_label_loop_with_padding(use_rope: bool):
    torch.manual_seed(5)
    model = GlobalPointer(6, num_labels=3, head_size=4, rope=use_rope).double()
    h = torch.randn(2, 5, 6, dtype=torch.float64)
    mask = padded_mask([4, 5], 5)
    assert_matches_loop(model(h, mask), gp_loop(model, h, mask))


@pytest.mark.parametrize(("D", "H", "d"), [(768, 282, 64), (32, 5, 8), (16, 1, 4)])
def test_egp_parameter_count_is_exactly_spec_formula(D: int, H: int, d: int):
    n = sum(p.numel() for p in EfficientGlobalPointer(D, H, d).parameters())
    assert n == 2 * d * (D + 1) + 2 * H * (2 * d + 1)


def test_original_global_pointer_is_far_larger_at_duee_size():
    egp = sum(p.numel() for p in EfficientGlobalPointer(768, 282, 64).parameters())
    gp = sum(p.numel() for p in GlobalPointer(768, 282, 64).parameters())
    assert egp < 400_000
    assert gp == 282 * 2 * 64 * (768 + 1)  # one Dense(H·2d)
    assert gp > 25 * egp


def test_span_mask_is_broadcast_b1ll_not_per_label():
    mask = padded_mask([3, 1], 4)
    m = span_mask(mask)
    assert m.shape == (2, 1, 4, 4) and m.dtype == torch.bool
    for b, n in enumerate([3, 1]):
        for i in range(4):
            for j in range(4):
                assert bool(m[b, 0, i, j]) == (i <= j < n)


def test_egp_forward_does_not_build_a_per_label_mask(monkeypatch: pytest.MonkeyPatch):
    """The mask handed to masked_fill is [B, 1, L, L]; a [B, H, L, L] one costs H times more."""
    shapes = []
    original = torch.Tensor.masked_fill

    def spy(self, mask, value):
        shapes.append(tuple(mask.shape))
        return original(self, mask, value)

    monkeypatch.setattr(torch.Tensor, "masked_fill", spy)
    model = EfficientGlobalPointer(6, num_labels=5, head_size=4)
    model(torch.randn(2, 4, 6), torch.ones(2, 4, dtype=torch.long))
    assert shapes and all(s[1] == 1 for s in shapes)
