"""Spatial self-attention of the ADM UNet, through ``scaled_dot_product_attention``.

The fused qkv projection is split into heads in one of ADM's two orders:
legacy (``use_new_attention_order=False``, the published weights): heads first, so the
projection's output rows are laid out as [head][q|k|v][channel]; new order: q|k|v first, then
heads. A plain softmax(QK^T / sqrt(d)) V path is kept, selectable per block, as the
numerical baseline for tests and benchmarks.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from i2sb.network.layers import maybe_checkpoint, normalization, zero_module

ATTENTION_IMPLS = ("sdpa", "plain")


def split_heads(
    tokens: torch.Tensor, num_heads: int, new_order: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """tokens: (B, T, 3*C) qkv projections -> q, k, v each (B, heads, T, C // heads).

    Each head's features are contiguous along the last axis: the fused SDPA kernels need
    that, and fall back to the slow math path otherwise.
    """
    batch, length, width = tokens.shape
    head_dim = width // (3 * num_heads)
    if new_order:
        q, k, v = tokens.reshape(batch, length, 3, num_heads, head_dim).unbind(dim=2)
    else:
        q, k, v = tokens.reshape(batch, length, num_heads, 3 * head_dim).split(head_dim, dim=-1)
    return q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)


def pointwise(conv: nn.Conv1d, tokens: torch.Tensor) -> torch.Tensor:
    """A 1x1 Conv1d applied to (B, T, C) tokens as the linear map it is: (B, T, C_out)."""
    return F.linear(tokens, conv.weight.squeeze(-1), conv.bias)


def plain_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) v with the softmax in float32, as ADM computes it."""
    scale = q.shape[-1] ** -0.25  # split between q and k: steadier in fp16
    weight = (q * scale) @ (k * scale).transpose(-1, -2)
    weight = torch.softmax(weight.float(), dim=-1).to(weight.dtype)
    return weight @ v


class AttentionBlock(nn.Module):
    """x + proj_out(attention(qkv(norm(x)))) over all H*W positions.

    ``impl`` is "sdpa" (fused kernels) or "plain" (the explicit formula); both give the same
    function of the same weights.
    """

    def __init__(
        self,
        channels: int,
        num_heads: int = 1,
        num_head_channels: int = -1,
        use_checkpoint: bool = False,
        use_new_attention_order: bool = False,
        impl: str = "sdpa",
    ):
        super().__init__()
        if num_head_channels == -1:
            self.num_heads = num_heads
        elif channels % num_head_channels:
            raise ValueError(
                f"num_head_channels={num_head_channels} does not divide the {channels} channels"
            )
        else:
            self.num_heads = channels // num_head_channels
        if self.num_heads < 1 or channels % self.num_heads:
            raise ValueError(f"num_heads={self.num_heads} does not divide {channels} channels")
        self.use_checkpoint = use_checkpoint
        self.new_order = use_new_attention_order
        self.impl = impl
        self.norm = normalization(channels)
        self.qkv = nn.Conv1d(channels, 3 * channels, 1)
        self.proj_out = zero_module(nn.Conv1d(channels, channels, 1))

    @property
    def impl(self) -> str:
        return self._impl

    @impl.setter
    def impl(self, value: str) -> None:
        if value not in ATTENTION_IMPLS:
            raise ValueError(f"attention impl must be one of {ATTENTION_IMPLS}, got {value!r}")
        self._impl = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return maybe_checkpoint(self, self._forward, x)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        # Tokens (B, T, C) are a free view of a channels_last x (and one copy otherwise); the 1x1
        # qkv and output convolutions run as linear maps over them (same weights and keys).
        batch, channels, *spatial = x.shape
        tokens = self.norm(x).flatten(2).transpose(1, 2)
        q, k, v = split_heads(pointwise(self.qkv, tokens), self.num_heads, self.new_order)
        if self.impl == "sdpa":
            h = F.scaled_dot_product_attention(q, k, v)
        else:
            h = plain_attention(q, k, v)
        h = pointwise(self.proj_out, h.transpose(1, 2).reshape(batch, -1, channels))
        return x + h.transpose(1, 2).reshape(batch, channels, *spatial)


def set_attention_impl(modules: Iterable[nn.Module] | nn.Module, impl: str) -> None:
    """Switch every AttentionBlock inside ``modules`` to ``impl`` ("sdpa" or "plain")."""
    roots = [modules] if isinstance(modules, nn.Module) else list(modules)
    for root in roots:
        for module in root.modules():
            if isinstance(module, AttentionBlock):
                module.impl = impl
