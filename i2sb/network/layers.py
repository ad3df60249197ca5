"""Building blocks of the ADM UNet: normalisation, time embedding, resampling, residual blocks.

Attribute names and registration order mirror guided-diffusion's ``unet.py``/``nn.py`` because
they decide the ``state_dict`` keys and the ``parameters()`` order that published checkpoints
(and their EMA shadow lists) rely on. Comments mark the places where the layout is kept only
for that compatibility.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint


class GroupNorm32(nn.GroupNorm):
    """GroupNorm computed in float32 whatever the input dtype (fp16/bf16 sampling stays stable).

    The float32 copy is also the fast way to train on the CPU: with PyTorch's mixed-type kernel
    (bf16 input, float32 statistics) the small preset's forward is even and its forward+backward
    1.5-2.0x slower (``benchmarks/bench_layers.py --case groupnorm --threads 1``, a busy 2-core
    machine). Narrow groups of a channels_last input take their backward from ``NarrowGroupNorm``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = None if self.weight is None else self.weight.float()
        bias = None if self.bias is None else self.bias.float()
        x32 = x.float()
        if NarrowGroupNorm.applies(x32, self.num_groups, weight, bias):
            out = NarrowGroupNorm.apply(x32, weight, bias, self.num_groups, self.eps)
        else:
            out = F.group_norm(x32, self.num_groups, weight, bias, self.eps)
        return out.to(x.dtype)


# Feature maps of at most this many positions (H x W) are convolved in float32 in CPU training; see Conv2d.
DIRECT_FP32_POSITIONS = 16


class Conv2d(nn.Conv2d):
    """nn.Conv2d that, training on the CPU under autocast, convolves feature maps of at most 4x4 in float32.

    For one such image PyTorch's float32 convolution takes its direct (non-oneDNN) path, which beats oneDNN's bf16
    one plus autocast's casts of the weights and of their gradients: a 1024-channel 3x3 forward+backward is 1.6-1.8x
    faster at 2x2 and 1.3-1.5x at 4x4 in float32 (``benchmarks/bench_layers.py --case small-map-conv``, 1 or 2
    threads). The adm256 network fed 64 px has its 4x4 and 2x2 levels there (1024-2048 channels, most of its
    weights); ``--case adm256-step`` times its step with and without the rule. The rule looks at the feature map
    only, never at the batch, so the precision of a layer never depends on how a batch was split into microbatches
    or ranks, although with 2 images a lone convolution is no faster in float32 (0.7-1.0x in the same case); only
    networks fed 64 px or less reach 4x4. Parameters and ``state_dict`` keys are nn.Conv2d's. Sampling (eval mode,
    weights cast once) and GPUs are untouched.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (
            self.training
            and x.device.type == "cpu"
            and x.shape[-1] * x.shape[-2] <= DIRECT_FP32_POSITIONS
            and self.weight.dtype == torch.float32
            and torch.is_autocast_enabled("cpu")
        ):
            with torch.autocast("cpu", enabled=False):
                return super().forward(x.float())
        return super().forward(x)


class NarrowGroupNorm(torch.autograd.Function):
    """GroupNorm of a channels_last float32 input with at most 2 channels per group, for training.

    PyTorch's channels_last GroupNorm backward is slow on the CPU when a group holds 1-2
    channels (the small preset's 32- and 64-channel levels): its forward+backward takes 2.8-3.1x
    (1 channel a group) and 1.3x (2) the time of this one at (8, 32|64, 64, 64), one thread
    (``benchmarks/bench_layers.py --case narrow-groupnorm --threads 1``). Here every reduction
    runs over the pixels of an (N, H*W, C) view, which is contiguous in channels_last, and the
    input gradient is two fused multiply-adds. The forward is PyTorch's own (same output, and its mean and 1/std).
    """

    MAX_GROUP_WIDTH = 2  # at 4 channels a group PyTorch's kernel is faster (same benchmark case)

    @staticmethod
    def applies(x: torch.Tensor, groups: int, weight, bias) -> bool:
        return (
            torch.is_grad_enabled()
            and x.requires_grad
            and weight is not None
            and bias is not None
            and x.dim() == 4
            and x.shape[1] <= groups * NarrowGroupNorm.MAX_GROUP_WIDTH
            and x.device.type == "cpu"
            and x.is_contiguous(memory_format=torch.channels_last)
            and not x.is_contiguous()
        )

    @staticmethod
    def forward(ctx, x, weight, bias, groups: int, eps: float):  # noqa: ANN001, ANN205
        n, c, h, w = x.shape
        out, mean, rstd = torch.native_group_norm(x, weight, bias, n, c, h * w, groups, eps)
        ctx.save_for_backward(x, weight, mean, rstd)
        ctx.groups = groups
        return out

    @staticmethod
    def backward(ctx, grad):  # noqa: ANN001, ANN205
        x, weight, mean, rstd = ctx.saved_tensors
        n, c, h, w = x.shape
        groups = ctx.groups
        width, count = c // groups, h * w * (c // groups)
        pixels = x.permute(0, 2, 3, 1).reshape(n, h * w, c)
        dy = grad.contiguous(memory_format=torch.channels_last).permute(0, 2, 3, 1)
        dy = dy.reshape(n, h * w, c)
        sum_dy_x = (dy * pixels).sum(1).view(n, groups, width)  # per (image, channel)
        sum_dy = dy.sum(1).view(n, groups, width)
        mean, rstd = mean.view(n, groups, 1), rstd.view(n, groups, 1)
        sum_dy_xhat = (sum_dy_x - mean * sum_dy) * rstd
        gamma = weight.view(1, groups, width)
        mean_dyw = (gamma * sum_dy).sum(2, keepdim=True) / count  # mean of dy*gamma over a group
        mean_dyw_xhat = (gamma * sum_dy_xhat).sum(2, keepdim=True) / count
        # dx = rstd * (gamma*dy - mean_dyw - xhat * mean_dyw_xhat) = a*dy + b*x + c
        a = (rstd * gamma).reshape(n, 1, c)
        b = (-rstd * rstd * mean_dyw_xhat).expand(n, groups, width).reshape(n, 1, c)
        c0 = (rstd * (rstd * mean_dyw_xhat * mean - mean_dyw)).expand(n, groups, width)
        dx = torch.addcmul(c0.reshape(n, 1, c), dy, a).addcmul_(pixels, b)
        dx = dx.view(n, h, w, c).permute(0, 3, 1, 2)
        return dx, sum_dy_xhat.sum(0).reshape(c), sum_dy.sum(0).reshape(c), None, None


def silu_fresh(h: torch.Tensor) -> torch.Tensor:
    """SiLU of a tensor nobody else holds: in place unless autograd needs the input."""
    return F.silu(h, inplace=not (torch.is_grad_enabled() and h.requires_grad))


def norm_silu(norm: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """SiLU(norm(x)), the SiLU applied in place on the norm's output when no gradient flows."""
    return silu_fresh(norm(x))


def normalization(channels: int) -> GroupNorm32:
    """ADM normalises with 32 groups, so every feature width must be a multiple of 32."""
    if channels % 32:
        raise ValueError(f"GroupNorm(32) needs a channel count divisible by 32, got {channels}")
    return GroupNorm32(32, channels)


def zero_module(module: nn.Module) -> nn.Module:
    """Zero a layer's parameters: residual branches start as the identity (ADM's init)."""
    for param in module.parameters():
        param.detach().zero_()
    return module


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of (possibly fractional) times t: (B,) -> (B, dim), cosines first.

    The cos-then-sin order and the frequency grid exp(-ln(max_period) * i / half) are those
    the ADM weights were trained with.
    """
    half = dim // 2
    exponent = torch.arange(half, dtype=torch.float32, device=t.device) / half
    freqs = torch.exp(-math.log(max_period) * exponent)
    args = t.float()[:, None] * freqs[None]
    embedding = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        embedding = torch.cat([embedding, torch.zeros_like(embedding[:, :1])], dim=-1)
    return embedding


class TakesEmbedding(nn.Module):
    """Marker: ``forward(x, emb)`` also receives the time embedding."""


class BlockEmbeddings:
    """A time embedding with each ResBlock's projection of it computed once, on first use.

    A UNet run one image at a time (CPU sampling, for batch-independent results) shares one
    of these across the images of a step instead of projecting the same time in every block
    for every image. Same values as projecting.
    """

    def __init__(self, emb: torch.Tensor):
        self.emb = emb
        self._projected: dict[nn.Module, torch.Tensor] = {}

    def of(self, block: ResBlock) -> torch.Tensor:
        if block not in self._projected:
            self._projected[block] = block.emb_layers(self.emb)
        return self._projected[block]


class EmbedSequential(nn.Sequential):
    """A Sequential that hands the time embedding to the children that take it."""

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        for layer in self:
            x = layer(x, emb) if isinstance(layer, TakesEmbedding) else layer(x)
        return x


class Upsample(nn.Module):
    """Nearest-neighbour x2, then an optional 3x3 conv (parameter name ``conv``)."""

    def __init__(self, channels: int, use_conv: bool, out_channels: int | None = None):
        super().__init__()
        self.channels = channels
        if use_conv:
            self.conv = Conv2d(channels, out_channels or channels, 3, padding=1)
        self.use_conv = use_conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        return self.conv(x) if self.use_conv else x


class Downsample(nn.Module):
    """Strided 3x3 conv, or 2x2 average pooling (parameter name ``op`` either way)."""

    def __init__(self, channels: int, use_conv: bool, out_channels: int | None = None):
        super().__init__()
        out_channels = out_channels or channels
        if use_conv:
            self.op: nn.Module = Conv2d(channels, out_channels, 3, stride=2, padding=1)
        elif out_channels != channels:
            raise ValueError("Downsample without a conv cannot change the channel count")
        else:
            self.op = nn.AvgPool2d(kernel_size=2, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


def maybe_checkpoint(module: nn.Module, fn, *args: torch.Tensor) -> torch.Tensor:
    """Call ``fn`` with activation checkpointing when the module asks for it and grads flow."""
    if module.use_checkpoint and torch.is_grad_enabled():
        return checkpoint(fn, *args, use_reentrant=False)
    return fn(*args)


class ResBlock(TakesEmbedding):
    """Residual block conditioned on the time embedding, optionally resampling by 2.

    With ``use_scale_shift_norm`` the embedding gives (scale, shift) applied after the second
    GroupNorm (FiLM); otherwise it is added before it. ``up``/``down`` resample both the
    branch (between its norm+SiLU and its conv) and the skip path, as ADM does.
    """

    def __init__(
        self,
        channels: int,
        emb_channels: int,
        dropout: float,
        out_channels: int | None = None,
        use_scale_shift_norm: bool = False,
        use_checkpoint: bool = False,
        up: bool = False,
        down: bool = False,
    ):
        super().__init__()
        out_channels = out_channels or channels
        self.use_checkpoint = use_checkpoint
        self.use_scale_shift_norm = use_scale_shift_norm
        # Registration order (in_layers, emb_layers, out_layers, skip_connection) fixes the
        # parameters() order that EMA shadow lists in published checkpoints follow.
        self.in_layers = nn.Sequential(
            normalization(channels), nn.SiLU(), Conv2d(channels, out_channels, 3, padding=1)
        )
        self.updown = up or down
        if up:
            self.h_upd: nn.Module = Upsample(channels, False)
            self.x_upd: nn.Module = Upsample(channels, False)
        elif down:
            self.h_upd, self.x_upd = Downsample(channels, False), Downsample(channels, False)
        else:
            self.h_upd = self.x_upd = nn.Identity()
        film = 2 * out_channels if use_scale_shift_norm else out_channels
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb_channels, film))
        self.out_layers = nn.Sequential(
            normalization(out_channels),
            nn.SiLU(),
            nn.Dropout(p=dropout),
            zero_module(Conv2d(out_channels, out_channels, 3, padding=1)),
        )
        if out_channels == channels:
            self.skip_connection: nn.Module = nn.Identity()
        else:
            self.skip_connection = Conv2d(channels, out_channels, 1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        return maybe_checkpoint(self, self._forward, x, emb)

    def _forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        # in_layers = (norm, SiLU, conv), out_layers = (norm, SiLU, dropout, conv): the
        # Sequentials fix the state_dict keys; norm and SiLU run fused (norm_silu).
        h = norm_silu(self.in_layers[0], x)
        if self.updown:
            h, x = self.h_upd(h), self.x_upd(x)
        h = self.in_layers[2](h)
        emb_out = emb.of(self) if isinstance(emb, BlockEmbeddings) else self.emb_layers(emb)
        emb_out = emb_out.to(h.dtype)[..., None, None]
        norm, dropout, conv = self.out_layers[0], self.out_layers[2], self.out_layers[3]
        if self.use_scale_shift_norm:
            scale, shift = emb_out.chunk(2, dim=1)
            h = silu_fresh(torch.addcmul(shift, norm(h), 1 + scale))
        else:
            h = norm_silu(norm, h + emb_out)
        return self.skip_connection(x) + conv(dropout(h))
