"""Exponential moving average of parameters, in the state layout of ``torch_ema``.

The published checkpoints store torch_ema's state (decay, num_updates, shadow_params as a list
in parameter order), so ours does too; the reference code can then read our checkpoints.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

import torch


class EMA:
    def __init__(self, parameters: Iterable[torch.nn.Parameter], decay: float):
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"EMA decay must be in [0, 1], got {decay}")
        self.parameters = [p for p in parameters if p.requires_grad]
        self.decay = decay
        self.num_updates = 0
        self.shadow_params = [p.detach().clone() for p in self.parameters]

    @torch.no_grad()
    def update(self) -> None:
        # torch_ema's warm-up: early averages follow the weights closely.
        self.num_updates += 1
        decay = min(self.decay, (1 + self.num_updates) / (10 + self.num_updates))
        # shadow -= (1 - decay) * (shadow - param), as torch_ema, in place: lerp allocates no
        # temporaries (benchmarks/bench_train.py times it in the optimizer phase).
        for shadow, param in zip(self.shadow_params, self.parameters, strict=True):
            shadow.lerp_(param.detach(), 1.0 - decay)

    @contextlib.contextmanager
    def average_parameters(self) -> Iterator[None]:
        """Temporarily swap the EMA weights into the model.

        The parameters and the shadows exchange their tensors (``param.data``) and exchange
        them back on exit: no copy, where torch_ema's store/restore clones every parameter
        (one more copy of the weights, 2.2 GB on adm256, during each validation). The values
        seen inside and restored after are exactly those of a copy.
        """
        self._swap()
        try:
            yield
        finally:
            self._swap()

    @torch.no_grad()
    def _swap(self) -> None:
        for index, param in enumerate(self.parameters):
            shadow = self.shadow_params[index]
            if shadow.shape != param.shape or shadow.dtype != param.dtype:
                raise ValueError(f"EMA tensor {index} does not match its parameter")
            self.shadow_params[index], param.data = param.data, shadow

    @torch.no_grad()
    def copy_to(self) -> None:
        for shadow, param in zip(self.shadow_params, self.parameters, strict=True):
            param.copy_(shadow)

    def state_dict(self) -> dict:
        """torch_ema's layout. The shadows are the live tensors, not copies (as torch_ema's):
        a checkpoint serialises them at once, and a copy would hold the weights once more
        (2.2 GB on adm256) while it is written. Clone them to keep them past an update."""
        return {
            "decay": self.decay,
            "num_updates": self.num_updates,
            "shadow_params": list(self.shadow_params),
            "collected_params": None,
        }

    def load_state_dict(self, state: dict) -> None:
        shadows = state["shadow_params"]
        if len(shadows) != len(self.parameters):
            raise ValueError(
                f"EMA state has {len(shadows)} tensors but the model has {len(self.parameters)} parameters"
            )
        self.decay = float(state["decay"])
        self.num_updates = int(state["num_updates"] or 0)
        self.shadow_params = [
            s.to(p.device, p.dtype).clone() for s, p in zip(shadows, self.parameters, strict=True)
        ]
