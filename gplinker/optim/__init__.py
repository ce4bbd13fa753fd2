"""Optimizers not in torch.optim."""

from __future__ import annotations

from gplinker.optim.adax import AdaX

__all__ = ["AdaX"]
