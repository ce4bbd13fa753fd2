"""Efficient GlobalPointer, the original GlobalPointer and RoPE (SPEC §3).

RoPE tables are computed on the fly, never stored as buffers: under transformers 5 a
non-persistent buffer can come back uninitialised after loading (SPEC §10).

The pointers compute in the dtype of their weights whatever autocast is on around them
(fp32 for a model trained with bf16/fp16 autocast of the encoder): their scores feed a
loss of exponentials and a > 0 threshold, and fp16 cannot even hold the mask value.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

NEG = -1e12  # SPEC §3: masked cells; finite so a gold label on a masked cell is loud, not NaN


def masked_value(dtype: torch.dtype) -> float:
    """NEG where the dtype holds it (fp32, fp64, bf16), else the dtype's lowest (fp16)."""
    return max(NEG, torch.finfo(dtype).min)


def rope(x: Tensor) -> Tensor:
    """Rotate pairs (2m, 2m+1) of x [..., L, d] by position i with θ_m = 10000^(-2m/d)."""
    L, d = x.shape[-2], x.shape[-1]
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32  # angles never in bf16
    pos = torch.arange(L, dtype=dtype, device=x.device)
    theta = torch.pow(10000.0, -torch.arange(0, d, 2, dtype=dtype, device=x.device) / d)
    angle = pos[:, None] * theta[None, :]  # [L, d/2]
    cos = angle.cos().repeat_interleave(2, dim=-1).to(x.dtype)  # [L, d]
    sin = angle.sin().repeat_interleave(2, dim=-1).to(x.dtype)
    rotated = torch.stack([-x[..., 1::2], x[..., 0::2]], dim=-1).reshape(x.shape)
    return x * cos + rotated * sin


def span_mask(attention_mask: Tensor, ordered: bool = True) -> Tensor:
    """[B, 1, L, L] bool: both ends are real tokens and, when `ordered`, i <= j (a span).
    Links between two spans in either order (relations) are not ordered. Broadcast, never
    [B, H, L, L]."""
    m = attention_mask.bool()
    both = m[:, None, :, None] & m[:, None, None, :]
    if not ordered:
        return both
    L = attention_mask.shape[1]
    return both & torch.ones(L, L, dtype=torch.bool, device=m.device).triu()


@dataclass(frozen=True)
class PointerSpec:
    """One pointer head of a task: its name (the model attribute, and the key of its scores
    and labels), its number of labels, RoPE or not, and whether only cells i <= j count."""

    name: str
    num_labels: int
    rope: bool = True
    ordered: bool = True


@dataclass
class Factored:
    """EGP scores kept as their parts: s_α(i,j) = qk[i,j] + col[j,α] + row[i,α] where mask.

    The loss can work on these without ever building [B, H, L, L] (losses.py); only
    decoding needs the dense scores.
    """

    qk: Tensor  # [B, L, L]
    col: Tensor  # [B, L, H]  u_j[2α]
    row: Tensor  # [B, L, H]  u_i[2α+1]
    mask: Tensor  # [B, L, L] bool, span_mask without the label axis

    def dense(self) -> Tensor:
        """[B, H, L, L] scores, masked cells set to NEG."""
        scores = self.qk[:, None] + self.col.transpose(1, 2)[:, :, None, :]  # [B, H, L, L]
        scores = scores + self.row.transpose(1, 2)[:, :, :, None]
        return scores.masked_fill(~self.mask[:, None], masked_value(scores.dtype))


class EfficientGlobalPointer(nn.Module):
    """s_α(i,j) = q_i·k_j/√d + u_j[2α] + u_i[2α+1]: one shared q/k, per-label biases."""

    def __init__(
        self,
        hidden_size: int,
        num_labels: int,
        head_size: int = 64,
        rope: bool = True,
        ordered: bool = True,
    ):
        super().__init__()
        self.num_labels, self.head_size, self.use_rope = num_labels, head_size, rope
        self.ordered = ordered
        self.dense = nn.Linear(hidden_size, 2 * head_size)
        self.bias = nn.Linear(2 * head_size, 2 * num_labels)

    def forward(self, hidden: Tensor, mask: Tensor) -> Tensor:
        """[B, L, D], [B, L] -> [B, H, L, L]."""
        return self.factored(hidden, mask).dense()

    def factored(self, hidden: Tensor, mask: Tensor) -> Factored:
        with torch.autocast(hidden.device.type, enabled=False):
            x = self.dense(hidden.to(self.dense.weight.dtype))  # [B, L, 2d]
            q, k = x[..., 0::2], x[..., 1::2]  # [B, L, d] each, interleaved split
            if self.use_rope:
                q, k = rope(q), rope(k)
            qk = torch.einsum("bmd,bnd->bmn", q, k) / self.head_size**0.5  # [B, L, L]
            u = self.bias(x) / 2  # [B, L, 2H], on the pre-RoPE x
        return Factored(qk, u[..., 0::2], u[..., 1::2], span_mask(mask, self.ordered)[:, 0])


class GlobalPointer(nn.Module):
    """The original GlobalPointer: its own q/k projection per label (~H·2d·D parameters)."""

    def __init__(
        self,
        hidden_size: int,
        num_labels: int,
        head_size: int = 64,
        rope: bool = True,
        ordered: bool = True,
    ):
        super().__init__()
        self.num_labels, self.head_size, self.use_rope = num_labels, head_size, rope
        self.ordered = ordered
        self.dense = nn.Linear(hidden_size, num_labels * 2 * head_size)

    def forward(self, hidden: Tensor, mask: Tensor) -> Tensor:
        """[B, L, D], [B, L] -> [B, H, L, L]."""
        B, L, _ = hidden.shape
        with torch.autocast(hidden.device.type, enabled=False):
            x = self.dense(hidden.to(self.dense.weight.dtype))
            x = x.view(B, L, self.num_labels, 2 * self.head_size).transpose(1, 2)
            q, k = x[..., 0::2], x[..., 1::2]  # [B, H, L, d]
            if self.use_rope:
                q, k = rope(q), rope(k)
            scores = torch.einsum("bhmd,bhnd->bhmn", q, k) / self.head_size**0.5  # [B, H, L, L]
        return scores.masked_fill(~span_mask(mask, self.ordered), masked_value(scores.dtype))
