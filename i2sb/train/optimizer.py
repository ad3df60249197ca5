"""The trainer's AdamW: fused where torch has a fused kernel for the device.

torch's default AdamW on the CPU loops over the parameters and allocates several temporaries the
size of each one; the fused kernel does not (benchmarks/bench_vs_reference.py's train step runs
torch's default AdamW in the reference's step and this one in ours). The update is the same AdamW; only the order of float
operations inside one element's update differs, so runs stay deterministic on a given device.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

FUSED_DEVICES = ("cpu", "cuda")  # where torch.optim.AdamW(fused=True) has a kernel


def adamw(
    params: Iterable[torch.nn.Parameter], lr: float, weight_decay: float, device: torch.device
) -> torch.optim.AdamW:
    return torch.optim.AdamW(
        params, lr=lr, weight_decay=weight_decay, fused=torch.device(device).type in FUSED_DEVICES
    )


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: dict) -> None:
    """``optimizer.load_state_dict(state)``, keeping this optimizer's kernel choice.

    A saved state carries its writer's ``fused``/``foreach`` flags (None in checkpoints of the
    reference code); torch would adopt them and silently fall back to the slow loop.
    """
    kernels = [{k: group.get(k) for k in ("fused", "foreach")} for group in optimizer.param_groups]
    optimizer.load_state_dict(state)
    for group, flags in zip(optimizer.param_groups, kernels, strict=True):
        group.update(flags)
