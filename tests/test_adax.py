"""AdaX (SPEC §5) against three steps worked out by hand in plain Python floats."""

from __future__ import annotations

import io
import math

import pytest
import torch
from torch.testing import assert_close

from gplinker.optim import AdaX

GRADS = [[0.5, -1.0], [0.1, 0.3], [-0.2, 0.4]]


def run_adax(theta0: list[float], grads: list[list[float]], **kwargs) -> torch.Tensor:
    p = torch.tensor(theta0, dtype=torch.float64, requires_grad=True)
    opt = AdaX([p], **kwargs)
    for g in grads:
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
    return p.detach()


@pytest.mark.parametrize(("b1", "b2"), [(0.9, 1e-4), (0.5, 0.25)])
def test_adax_three_steps_match_hand_computation_with_eps_inside_sqrt(b1, b2):
    # eps = 1e-2 is large enough that sqrt(v̂ + eps) and sqrt(v̂) + eps differ visibly.
    lr, eps = 0.1, 1e-2
    theta = [1.0, -2.0]
    expected = []
    for i in range(2):
        g1, g2, g3 = GRADS[0][i], GRADS[1][i], GRADS[2][i]
        # t = 1
        m = (1 - b1) * g1
        v = b2 * g1**2
        v_hat = v / ((1 + b2) ** 1 - 1)
        th = theta[i] - lr * m / math.sqrt(v_hat + eps)
        # t = 2
        m = b1 * m + (1 - b1) * g2
        v = (1 + b2) * v + b2 * g2**2
        v_hat = v / ((1 + b2) ** 2 - 1)
        th = th - lr * m / math.sqrt(v_hat + eps)
        # t = 3
        m = b1 * m + (1 - b1) * g3
        v = (1 + b2) * v + b2 * g3**2
        v_hat = v / ((1 + b2) ** 3 - 1)
        th = th - lr * m / math.sqrt(v_hat + eps)
        expected.append(th)
    got = run_adax(theta, GRADS, lr=lr, betas=(b1, b2), eps=eps)
    assert_close(got, torch.tensor(expected, dtype=torch.float64), rtol=1e-10, atol=1e-12)


def test_adax_first_step_with_beta2_1e4_has_v_hat_equal_to_g_squared():
    # t = 1: v̂ = β2 g² / ((1 + β2) - 1) = g², so θ moves by lr (1 - β1) g / sqrt(g² + eps).
    got = run_adax([1.0, -2.0], GRADS[:1], lr=0.1, betas=(0.9, 1e-4), eps=0.0)
    assert_close(got, torch.tensor([1.0 - 0.01, -2.0 + 0.01], dtype=torch.float64))


def test_adax_decoupled_weight_decay_matches_hand_computation():
    lr, wd, b1, b2, eps = 0.1, 0.5, 0.9, 0.25, 1e-8
    theta, g1, g2 = 2.0, 0.5, -0.4
    # t = 1: decay first, from the raw parameter, then the AdaX step.
    m = (1 - b1) * g1
    v = b2 * g1**2
    th = theta * (1 - lr * wd) - lr * m / math.sqrt(v / ((1 + b2) - 1) + eps)
    # t = 2
    m = b1 * m + (1 - b1) * g2
    v = (1 + b2) * v + b2 * g2**2
    th = th * (1 - lr * wd) - lr * m / math.sqrt(v / ((1 + b2) ** 2 - 1) + eps)
    got = run_adax([theta], [[g1], [g2]], lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd)
    assert_close(got, torch.tensor([th], dtype=torch.float64), rtol=1e-12, atol=0.0)


def test_adax_weight_decay_alone_shrinks_by_one_minus_lr_wd_when_grad_is_zero():
    got = run_adax([3.0, -1.0], [[0.0, 0.0]] * 3, lr=0.1, weight_decay=0.2)
    assert_close(got, torch.tensor([3.0, -1.0], dtype=torch.float64) * (1 - 0.02) ** 3)


def test_adax_state_dict_round_trip_continues_identically():
    def grads(step: int) -> torch.Tensor:
        return torch.tensor([math.sin(step), math.cos(step), 0.3], dtype=torch.float64)

    a = torch.tensor([1.0, -1.0, 0.5], dtype=torch.float64, requires_grad=True)
    opt_a = AdaX([a], lr=0.05, betas=(0.8, 0.1), weight_decay=0.01)
    for step in range(2):
        a.grad = grads(step)
        opt_a.step()
    buffer = io.BytesIO()  # through torch.save, as a checkpoint goes; the live dict shares tensors
    torch.save(opt_a.state_dict(), buffer)
    buffer.seek(0)
    saved = torch.load(buffer)
    assert set(saved["state"][0]) == {"step", "exp_avg", "exp_avg_sq"}
    assert saved["state"][0]["step"].item() == 2

    b = a.detach().clone().requires_grad_(True)
    opt_b = AdaX([b], lr=1.0)  # hyperparameters come back from the state dict
    opt_b.load_state_dict(saved)
    for step in range(2, 5):
        a.grad, b.grad = grads(step), grads(step)
        opt_a.step()
        opt_b.step()
    assert_close(b, a, rtol=0, atol=0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"lr": -1e-3},
        {"betas": (1.0, 1e-4)},
        {"betas": (-0.1, 1e-4)},
        {"betas": (0.9, 0.0)},
        {"eps": -1e-8},
        {"weight_decay": -0.1},
    ],
)
def test_adax_rejects_out_of_range_arguments(kwargs):
    with pytest.raises(ValueError):
        AdaX([torch.zeros(2, requires_grad=True)], **kwargs)


def test_adax_raises_on_sparse_gradients():
    p = torch.zeros(3, requires_grad=True)
    p.grad = torch.zeros(3).to_sparse()
    with pytest.raises(RuntimeError, match="sparse"):
        AdaX([p]).step()


def test_adax_leaves_parameters_without_grad_untouched():
    p = torch.tensor([1.0, 2.0], requires_grad=True)
    opt = AdaX([p], lr=0.1, weight_decay=0.5)
    opt.step()
    assert_close(p.detach(), torch.tensor([1.0, 2.0]))
    assert not opt.state


def test_adax_decreases_a_simple_quadratic():
    target = torch.tensor([3.0, -2.0, 0.5], dtype=torch.float64)
    p = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    opt = AdaX([p], lr=0.05)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = ((p - target) ** 2).sum()
        loss.backward()
        return loss

    first = closure().item()
    losses = [opt.step(closure).item() for _ in range(300)]
    assert losses[-1] < 1e-2 * first
    assert_close(p.detach(), target, rtol=0, atol=0.1)


def test_state_stays_finite_after_two_million_steps_of_float32() -> None:
    # v = Σ β2 (1 + β2)^(t-k) g² passes float32's max near t = 890k at β2 = 1e-4; the
    # optimizer keeps v̂ (a weighted mean of g²) instead, which for a constant g is g².
    p = torch.nn.Parameter(torch.tensor([1.0], dtype=torch.float32))
    opt = AdaX([p], lr=0.1, eps=0.0)
    p.grad = torch.tensor([0.5])
    opt.step()
    state = opt.state[p]
    state["step"].fill_(2_000_000)
    before = p.detach().clone()
    opt.step()
    assert torch.isfinite(state["exp_avg_sq"]).all()
    torch.testing.assert_close(state["exp_avg_sq"], torch.tensor([0.25]))
    # m after two steps of g = 0.5: 0.05 then 0.095; the step is lr * m / sqrt(v̂)
    torch.testing.assert_close(p.detach(), before - 0.1 * 0.095 / 0.5)
