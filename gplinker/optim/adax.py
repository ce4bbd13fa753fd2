"""AdaX (Li et al., 2020), SPEC §5, with AdamW-style decoupled weight decay."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor


class AdaX(torch.optim.Optimizer):
    """Adam with long-term memory: v never forgets, so v̂ is a weighted mean of all g².

    Per parameter, at step t (SPEC §5; the state keeps v̂, see step()):
        m = β1 m + (1 - β1) g;  v = (1 + β2) v + β2 g²;  v̂ = v / ((1 + β2)^t - 1)
        θ ← θ (1 - lr·wd);  θ ← θ - lr · m / sqrt(v̂ + eps)
    eps sits inside the sqrt, as in the paper and SPEC §5 (other ports use sqrt(v̂) + eps),
    so with the default 1e-8 the step is at most lr·|m|·1e4 where v̂ is near zero.
    m has no bias correction. Weight decay is decoupled, as in AdamW.
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 1e-4),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        if not lr >= 0.0:
            raise ValueError(f"lr must be >= 0, got {lr}")
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError(f"betas[0] must be in [0, 1), got {betas[0]}")
        if not betas[1] > 0.0:
            raise ValueError(f"betas[1] must be > 0, got {betas[1]}")
        if not eps >= 0.0:
            raise ValueError(f"eps must be >= 0, got {eps}")
        if not weight_decay >= 0.0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay}
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """Take one AdaX step; `closure` re-evaluates the loss, as in torch.optim."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, (beta1, beta2) = group["lr"], group["betas"]
            eps, weight_decay = group["eps"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                if grad.is_sparse:
                    raise RuntimeError("AdaX does not support sparse gradients")
                state = self.state[p]
                if not state:
                    # A CPU tensor step, as AdamW keeps it, so checkpoints look alike.
                    state["step"] = torch.tensor(0.0)
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                t = int(state["step"].item())
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]

                exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
                # exp_avg_sq holds v̂ itself, not v: v grows like (1 + β2)^t and overflows
                # float32 after ~890k steps at β2 = 1e-4. With c_t = (1 + β2)^t - 1 (via
                # expm1/log1p; the plain power keeps only ~12 of 16 digits),
                # v̂_t = v̂_{t-1} (1 + β2) c_{t-1} / c_t + g² β2 / c_t, the same numbers.
                c_prev = math.expm1((t - 1) * math.log1p(beta2))
                c_t = math.expm1(t * math.log1p(beta2))
                exp_avg_sq.mul_((1 + beta2) * c_prev / c_t).addcmul_(grad, grad, value=beta2 / c_t)
                denom = (exp_avg_sq + eps).sqrt_()
                if weight_decay != 0.0:
                    p.mul_(1 - lr * weight_decay)
                p.addcdiv_(exp_avg, denom, value=-lr)
        return loss
