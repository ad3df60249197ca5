"""The network's fast path: precision, memory layout and an optional ``torch.compile``.

- Precision: the UNet runs under autocast; the bridge arithmetic and the loss stay float32 (the
  callers cast the network output back). ``auto`` resolves per device: sampling uses fp16 on
  CUDA (as the reference does) and bf16 on a CPU with native bf16 (AVX512-BF16 / AMX), training
  uses bf16 where the device has it (fp16 training would need loss scaling); anything else runs
  fp32. The resolved name is what runs and what outputs record. One exception, CPU training only:
  convolutions over feature maps of at most 4x4 run in float32 (layers.Conv2d says why).
- Layout: the UNet is kept channels_last, the layout oneDNN and cuDNN convolve fastest; in fp32
  it changes only the summation order (tests/test_network_reference.py checks it to 1e-5).
- ``torch.compile`` is opt-in (``network.compile``). It compiles lazily, so a failure shows up at
  the first call: the wrapper then logs the reason and runs the eager module from then on. The
  compiled module is never stored: checkpoints are written from the eager module, whose
  ``state_dict`` keys have no ``_orig_mod.`` prefix.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

from i2sb.config.choices import SAMPLE_PRECISIONS, TRAIN_PRECISIONS

log = logging.getLogger(__name__)

AUTOCAST_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}
COMPILE_BACKEND = "inductor"  # torch.compile's backend for network.compile


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 convolutions natively (else bf16 is emulated and slow)."""
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "cpu":
        return bool(
            torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
        )
    return False


def resolve_precision(precision: str, device: str | torch.device, training: bool) -> str:
    """``auto`` -> fp32 | fp16 | bf16 for ``device`` (see the module doc); other names are checked."""
    device = torch.device(device)
    choices = TRAIN_PRECISIONS if training else SAMPLE_PRECISIONS
    if precision not in choices:
        what = "train.precision" if training else "sample.precision"
        raise ValueError(f"{what} must be one of {choices}, got {precision!r}")
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("precision fp16 needs a CUDA device; use bf16 (or fp32) on the CPU")
    if precision != "auto":
        return precision
    if device.type == "cuda" and not training:
        return "fp16"
    return "bf16" if native_bf16(device) else "fp32"


def autocast(precision: str, device: str | torch.device) -> contextlib.AbstractContextManager:
    """The autocast context of a resolved ``precision`` (fp32: none)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision not in AUTOCAST_DTYPES:
        raise ValueError(f"resolve the precision first; got {precision!r}")
    return torch.autocast(torch.device(device).type, dtype=AUTOCAST_DTYPES[precision])


def cast_autocast_weights(net: nn.Module, precision: str) -> nn.Module:
    """Store the weights autocast casts at every call in its dtype, once (in place; sampling only).

    Autocast runs convolutions and linear layers in bf16/fp16 and casts their float32 weights
    at each call: for adm256 at batch 1 that cast of 553M weights is most of a sampling step.
    Cast once, the outputs are bit-identical (the same rounding, done earlier) and the weights
    take half the memory. Norms keep their float32 weights (GroupNorm32 computes in float32).
    Never for training: the optimizer must update float32 weights.
    """
    if precision == "fp32":
        return net
    dtype = AUTOCAST_DTYPES[precision]
    for module in net.modules():
        if isinstance(module, nn.Conv1d | nn.Conv2d | nn.Linear):
            module.to(dtype)
    return net


@contextlib.contextmanager
def deterministic_kernels(device: str | torch.device) -> Iterator[None]:
    """On CUDA: cuDNN's deterministic algorithms, no autotuning, for the duration (restored after).

    With ``benchmark`` on, cuDNN times candidate kernels and may pick another one per run or
    per shape, and some of its algorithms sum in a varying order; with a fixed compute block
    (UNet.forward's ``compute_block``) and these flags a sampling call has one kernel per layer.
    A no-op on other devices (oneDNN's CPU kernels do not autotune).
    """
    if torch.device(device).type != "cuda":
        yield
        return
    cudnn = torch.backends.cudnn
    saved = cudnn.benchmark, cudnn.deterministic
    cudnn.benchmark, cudnn.deterministic = False, True
    try:
        yield
    finally:
        cudnn.benchmark, cudnn.deterministic = saved


def to_channels_last(net: nn.Module) -> nn.Module:
    """Store every 4-D parameter and buffer of ``net`` channels_last (in place; returns ``net``)."""
    return net.to(memory_format=torch.channels_last)


def compile_blocker(device: torch.device) -> str | None:
    """Why ``torch.compile`` cannot work here, or None (checked before trying)."""
    import torch._dynamo

    if not torch._dynamo.is_dynamo_supported():
        return "torch.compile does not support this Python/platform (torch._dynamo)"
    if device.type == "cpu" and not (shutil.which("g++") or shutil.which("c++")):
        return "torch.compile on the CPU needs a C++ compiler (g++), none on PATH"
    return None


class CompiledOrEager:
    """Call ``torch.compile(module)``; on any compile failure log why and call ``module`` itself.

    Not an nn.Module, so it never enters a ``state_dict``: save the eager ``module``.
    ``backend`` is torch.compile's (default ``COMPILE_BACKEND``).
    """

    def __init__(self, module: nn.Module, device: torch.device, backend: str | None = None):
        self.module = module
        self.reason: str | None = compile_blocker(device)
        self.compiled: Callable[..., Any] | None = None
        if self.reason is None:
            self.compiled = torch.compile(module, backend=backend or COMPILE_BACKEND)
        else:
            log.warning("network.compile: running eager: %s", self.reason)

    @property
    def active(self) -> bool:
        return self.compiled is not None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.compiled is None:
            return self.module(*args, **kwargs)
        try:
            return self.compiled(*args, **kwargs)
        except Exception as err:  # noqa: BLE001 (any compiler failure falls back, logged)
            self.reason = f"torch.compile failed ({type(err).__name__}: {str(err)[:300]})"
            self.compiled = None
            log.warning("network.compile: running eager from now on: %s", self.reason)
            return self.module(*args, **kwargs)


def fast_network(
    module: nn.Module, device: torch.device, compile: bool = False
) -> nn.Module | CompiledOrEager:
    """The callable to run ``module`` with: compiled (with fallback) when asked, else itself."""
    return CompiledOrEager(module, device) if compile else module
