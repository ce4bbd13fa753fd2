"""SPEC §6: the input/parameter gradient penalty inequality, checked numerically on random
MLPs, and gradient_penalty (‖∇_inputs loss‖²) against hand-derived first and second
derivatives.

Why the inequality holds (the check below must pass on every draw, not on average).
With z^{(t+1)} = W^{(t)} h^{(t)} + b^{(t)}, h^{(t+1)} = g(z^{(t+1)}) and
δ_t = ∂f/∂z^{(t+1)}, the chain rule gives ∇_{W^{(t)}} f = δ_t h^{(t)T} and
∇_{b^{(t)}} f = δ_t, so
    ‖∇_θ f‖² = Σ_t (‖δ_t‖² ‖h^{(t)}‖² + ‖δ_t‖²) = Σ_t ‖δ_t‖² (1 + ‖h^{(t)}‖²).
The input gradient can be routed through any layer t: with J_t = ∂h^{(t)}/∂x,
∇_x f = J_t^T W^{(t)T} δ_t, so ‖∇_x f‖ ≤ ‖J_t‖₂ ‖W^{(t)}‖₂ ‖δ_t‖ ≤ ‖J_t‖_F ‖W^{(t)}‖_F ‖δ_t‖,
i.e. ‖δ_t‖² ≥ ‖∇_x f‖² / (‖W^{(t)}‖² ‖J_t‖²) for every t. Multiply by 1 + ‖h^{(t)}‖²
and sum over t: ‖∇_x f‖² Σ_t (1 + ‖h^{(t)}‖²) / (‖W^{(t)}‖² ‖J_t‖²) ≤ ‖∇_θ f‖².
If some W^{(t)} J_t = 0 then ∇_x f = 0 and the left side is 0 (0 · ∞ read as 0).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.autograd.functional import jacobian
from torch.testing import assert_close

from gplinker.losses import gradient_penalty

F64 = torch.float64
ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "tanh": torch.tanh,
    "relu": torch.relu,
    "softplus": F.softplus,
    "sigmoid": torch.sigmoid,
    "identity": lambda z: z,
}


def forward(x, Ws, bs, acts, upto: int | None = None):
    """h^{(upto+1)} (h^{(1)} = x when upto = 0); all layers when upto is None."""
    h = x
    for W, b, act in list(zip(Ws, bs, acts, strict=True))[:upto]:
        h = ACTIVATIONS[act](W @ h + b)
    return h


def objective(kind: str, u: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    match kind:
        case "linear":
            return lambda out: u @ out
        case "squares":
            return lambda out: (out - u).pow(2).sum()
        case "logsumexp":
            return lambda out: torch.logsumexp(3 * u * out, 0)
    raise AssertionError(kind)


def inequality_sides(x, Ws, bs, acts, f):
    """(left, right, ‖∇_x f‖²) of SPEC §6 for f ∘ MLP at x, everything from autograd."""
    x = x.clone().requires_grad_()
    params = [p.clone().requires_grad_() for p in (*Ws, *bs)]
    Ws_, bs_ = params[: len(Ws)], params[len(Ws) :]
    grads = torch.autograd.grad(f(forward(x, Ws_, bs_, acts)), [x, *params])
    gx2 = grads[0].pow(2).sum()
    right = sum(g.pow(2).sum() for g in grads[1:])
    if gx2 == 0:
        return torch.zeros((), dtype=F64), right, gx2
    total = torch.zeros((), dtype=F64)
    for t, W in enumerate(Ws):
        x0 = x.detach()
        h_t = forward(x0, Ws, bs, acts, upto=t)
        # ‖∇_x h^{(1)}‖ = ‖I‖_F; deeper ones are the Jacobian of the first t layers.
        J = jacobian(lambda v, t=t: forward(v, Ws, bs, acts, upto=t), x0)
        denom = W.pow(2).sum() * J.pow(2).sum()
        assert denom > 0  # else W J = 0 and ∇_x f would be 0
        total = total + (1 + h_t.pow(2).sum()) / denom
    return gx2 * total, right, gx2


@st.composite
def mlps(draw):
    depth = draw(st.integers(1, 5))
    widths = draw(st.lists(st.integers(1, 16), min_size=depth + 1, max_size=depth + 1))
    acts = draw(st.lists(st.sampled_from(sorted(ACTIVATIONS)), min_size=depth, max_size=depth))
    w_scale = draw(st.sampled_from([0.05, 0.3, 1.0, 2.0, 5.0]))
    x_scale = draw(st.sampled_from([0.1, 1.0, 4.0]))
    kind = draw(st.sampled_from(["linear", "squares", "logsumexp"]))
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    Ws = [
        w_scale
        * torch.randn(widths[t + 1], widths[t], generator=g, dtype=F64)
        / math.sqrt(widths[t])
        for t in range(depth)
    ]
    bs = [torch.randn(widths[t + 1], generator=g, dtype=F64) for t in range(depth)]
    x = x_scale * torch.randn(widths[0], generator=g, dtype=F64)
    u = torch.randn(widths[-1], generator=g, dtype=F64)
    return x, Ws, bs, acts, objective(kind, u)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(mlps())
def test_input_gradient_penalty_bounded_by_parameter_gradient_penalty(mlp):
    x, Ws, bs, acts, f = mlp
    left, right, _ = inequality_sides(x, Ws, bs, acts, f)
    assert torch.isfinite(left) and torch.isfinite(right)
    assert left <= right * (1 + 1e-9), (left.item(), right.item())


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(mlps())
def test_parameter_gradient_norm_is_sum_of_delta_norms_times_one_plus_h_norm(mlp):
    """The identity the proof rests on: ‖∇_θ f‖² = Σ_t ‖δ_t‖² (1 + ‖h^{(t)}‖²)."""
    x, Ws, bs, acts, f = mlp
    params = [p.clone().requires_grad_() for p in (*Ws, *bs)]
    Ws_, bs_ = params[: len(Ws)], params[len(Ws) :]
    h, hs, zs = x, [], []
    for W, b, act in zip(Ws_, bs_, acts, strict=True):
        hs.append(h)
        z = W @ h + b
        zs.append(z)
        h = ACTIVATIONS[act](z)
    out = f(h)
    grads = torch.autograd.grad(out, [*params, *zs])
    theta2 = sum(g.pow(2).sum() for g in grads[: len(params)])
    deltas = grads[len(params) :]
    via_deltas = sum(
        d.pow(2).sum() * (1 + h_t.detach().pow(2).sum()) for d, h_t in zip(deltas, hs, strict=True)
    )
    assert_close(theta2, via_deltas, rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("act", sorted(ACTIVATIONS))
def test_inequality_holds_and_is_not_vacuous_for_each_activation_over_many_seeds(act):
    positive = 0
    for seed in range(40):
        g = torch.Generator().manual_seed(seed)
        depth = 1 + seed % 5
        widths = torch.randint(1, 17, (depth + 1,), generator=g).tolist()
        Ws = [torch.randn(widths[t + 1], widths[t], generator=g, dtype=F64) for t in range(depth)]
        bs = [torch.randn(widths[t + 1], generator=g, dtype=F64) for t in range(depth)]
        x = torch.randn(widths[0], generator=g, dtype=F64)
        u = torch.randn(widths[-1], generator=g, dtype=F64)
        left, right, _ = inequality_sides(x, Ws, bs, [act] * depth, objective("linear", u))
        assert left <= right * (1 + 1e-9), (seed, left.item(), right.item())
        positive += bool(left > 0)
    assert positive >= 30  # the left side is a real quantity, not 0 ≤ something


def test_inequality_is_tight_for_one_linear_layer_on_a_scalar_input():
    """f = u·(w x + b), x ∈ R: ∇_x f = u·w, ∇_W f = u x, ∇_b f = u, so the ratio is
    (u·w)² / (‖u‖² ‖w‖²), which is 1 for u ∥ w (Cauchy–Schwarz equality)."""
    g = torch.Generator().manual_seed(0)
    w = torch.randn(7, 1, generator=g, dtype=F64)
    b = torch.randn(7, generator=g, dtype=F64)
    x = torch.tensor([1.7], dtype=F64)
    u = -2.5 * w[:, 0]
    left, right, _ = inequality_sides(x, [w], [b], ["identity"], objective("linear", u))
    assert_close(left / right, torch.tensor(1.0, dtype=F64), rtol=1e-12, atol=0.0)
    # ... and a u orthogonal to w makes the left side 0 while the right side is not.
    v = torch.randn(7, generator=g, dtype=F64)
    v = v - (v @ w[:, 0]) / (w[:, 0] @ w[:, 0]) * w[:, 0]
    left, right, _ = inequality_sides(x, [w], [b], ["identity"], objective("linear", v))
    assert left.abs() < 1e-20 and right > 1


# gradient_penalty ---------------------------------------------------------------------------


def test_penalty_of_a_quadratic_and_its_gradients_match_the_hand_derivation():
    """f = ½ xᵀAx + bᵀx (A not symmetric): ∇_x f = r = S x + b with S = (A + Aᵀ)/2, so
    P = ‖r‖², ∂P/∂x = 2 S r, ∂P/∂b = 2 r, ∂P/∂A = r xᵀ + x rᵀ."""
    g = torch.Generator().manual_seed(0)
    n = 6
    A = torch.randn(n, n, generator=g, dtype=F64, requires_grad=True)
    b = torch.randn(n, generator=g, dtype=F64, requires_grad=True)
    x = torch.randn(n, generator=g, dtype=F64, requires_grad=True)
    loss = 0.5 * x @ A @ x + b @ x
    penalty = gradient_penalty(loss, x)

    S = (A + A.T).detach() / 2
    r = S @ x.detach() + b.detach()
    assert penalty.shape == ()
    assert_close(penalty, r @ r, rtol=1e-13, atol=0.0)
    gx, gb, gA = torch.autograd.grad(penalty, [x, b, A])
    xd = x.detach()
    assert_close(gx, 2 * S @ r, rtol=1e-13, atol=1e-14)
    assert_close(gb, 2 * r, rtol=1e-13, atol=1e-14)
    assert_close(gA, torch.outer(r, xd) + torch.outer(xd, r), rtol=1e-13, atol=1e-14)


def test_penalty_added_to_the_loss_backpropagates_like_the_trainer_uses_it():
    """Embedding-shaped input [B, L, D]: loss = Σ ½ c x², ∇_x = c x, P = Σ c² x²;
    the trainer's loss + ½ λ P has ∂/∂x = c x + λ c² x and ∂/∂c = ½ x² + λ c x²."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 5, 3, generator=g, dtype=F64, requires_grad=True)
    c = torch.randn(3, generator=g, dtype=F64, requires_grad=True)
    lam = 0.7
    loss = (0.5 * c * x.pow(2)).sum()
    penalty = gradient_penalty(loss, x)
    assert_close(penalty, (c * x).pow(2).sum().detach(), rtol=1e-13, atol=0.0)
    (loss + 0.5 * lam * penalty).backward()  # the graph of `loss` is still there
    xd, cd = x.detach(), c.detach()
    assert_close(x.grad, cd * xd + lam * cd.pow(2) * xd, rtol=1e-13, atol=1e-14)
    want_c = (0.5 * xd.pow(2) + lam * cd * xd.pow(2)).sum((0, 1))
    assert_close(c.grad, want_c, rtol=1e-13, atol=1e-14)


def test_penalty_second_order_gradient_passes_gradcheck_on_a_small_mlp():
    g = torch.Generator().manual_seed(2)
    W1 = torch.randn(5, 4, generator=g, dtype=F64, requires_grad=True)
    W2 = torch.randn(1, 5, generator=g, dtype=F64, requires_grad=True)
    x = torch.randn(3, 4, generator=g, dtype=F64, requires_grad=True)

    def penalty(x, W1, W2):
        loss = (torch.tanh(x @ W1.T) @ W2.T).pow(2).sum()
        return gradient_penalty(loss, x)

    assert torch.autograd.gradcheck(penalty, (x, W1, W2))
