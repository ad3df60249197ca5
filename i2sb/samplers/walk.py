"""The walk all samplers share (spec §2, §10): the grid, the network call and the inpainting reset.

``sample(name, bridge, steps, pred_x0_fn, x1, ...)`` walks the NFE grid from x_{N-1} := x1 down to
step 0; at each step n -> m it asks the network for pred_x0 at n and the sampler's ``update`` for
x_m. The samplers differ only in that update (one file each, listed in i2sb/samplers/registry.py).

Randomness is injected: every draw goes through ``noise(like)`` (default ``torch.randn_like``),
in spec §10's order: the step's own draw (if any), then (inpainting, not OT-ODE) the known-pixel
draw. What a caller wants to see of the walk (the logged trajectory, a progress bar) it builds
with ``callback(step, x, pred_x0)``, called after every step.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import torch

from i2sb.bridge import Bridge, Noise
from i2sb.samplers.options import build_options
from i2sb.samplers.registry import SamplerSpec, sampler_spec
from i2sb.samplers.step import Estimate, Measurement, StepContext
from i2sb.tasks import family_patterns

PredX0Fn = Callable[[torch.Tensor, int], torch.Tensor]
Callback = Callable[[int, torch.Tensor, torch.Tensor], None]  # (m, x_m, pred_x0 at n)


def _check_grid(steps: list[int], log_steps: list[int]) -> None:
    if len(steps) < 2 or steps[0] != 0 or not log_steps or log_steps[0] != 0:
        raise ValueError(
            f"steps (at least 2) and log_steps must start at 0, got {steps[:3]}, {log_steps[:3]}"
        )
    if any(a >= b for a, b in zip(steps, steps[1:], strict=False)):
        raise ValueError("steps must be strictly increasing")


def walk(
    spec: SamplerSpec,
    options: Any,
    bridge: Bridge,
    steps: Sequence[int],
    pred_x0_fn: PredX0Fn,
    x1: torch.Tensor,
    *,
    mask: torch.Tensor | None,
    ot_ode: bool,
    noise: Noise,
    measurement: Measurement | None = None,
    callback: Callback | None = None,
) -> torch.Tensor:
    """x_0 from x_{steps[-1]} = x1 by ``spec.update`` (``options``: its options dataclass).

    With a ``mask`` (1 in the hole) the known pixels are reset to x1 after every step, plus
    std_sb[m] noise unless OT-ODE. The walk keeps the last ``spec.memory`` estimates for the
    update (``ctx.earlier``): the state lives in this call, never between calls.
    """
    xt = x1.detach()
    earlier: deque[Estimate] = deque(maxlen=spec.memory)
    pairs = zip(steps[-2::-1], steps[:0:-1], strict=True)
    for number, (prev_step, step) in enumerate(pairs):
        pred_x0 = pred_x0_fn(xt, step)
        ctx = StepContext(
            bridge, prev_step, step, number, x1, ot_ode, noise, tuple(earlier), measurement
        )
        xt = spec.update(ctx, xt, pred_x0, options)
        if mask is not None:
            known = x1
            if not ot_ode:
                known = known + bridge.std_sb[prev_step].to(x1.device) * noise(x1)
            xt = (1.0 - mask) * known + mask * xt
        earlier.appendleft(Estimate(step, pred_x0))
        if callback is not None:
            callback(prev_step, xt, pred_x0)
    return xt


class Trajectory:
    """A callback that keeps x_m and pred_x0 (on the CPU) at the ``log_steps`` of the grid."""

    def __init__(self, log_steps: Sequence[int]):
        self.logged = set(log_steps)
        self.xs: list[torch.Tensor] = []
        self.pred_x0s: list[torch.Tensor] = []

    def __call__(self, step: int, x: torch.Tensor, pred_x0: torch.Tensor) -> None:
        if step in self.logged:
            self.xs.append(x.detach().cpu())
            self.pred_x0s.append(pred_x0.detach().cpu())

    def stacked(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(xs, pred_x0s): (B, len(log_steps), C, H, W), index 0 = step 0 (newest first)."""

        def newest_first(frames: list[torch.Tensor]) -> torch.Tensor:
            return torch.flip(torch.stack(frames, dim=1), dims=(1,))

        return newest_first(self.xs), newest_first(self.pred_x0s)


def _measurement(spec: SamplerSpec, forward: Any, y: Any) -> Measurement | None:
    if not spec.needs_forward_operator:
        if forward is not None or y is not None:
            raise ValueError(f"sampler {spec.name} reads no forward= or measurement=")
        return None
    if not callable(forward) or not torch.is_tensor(y):
        raise ValueError(
            f"sampler {spec.name} needs forward= (the task's differentiable operator A) and "
            "measurement= (the tensor y = A(x0)); only tasks with a forward operator "
            f"({family_patterns('forward_operator')}) can use it"
        )
    return Measurement(forward, y)


def sample(
    name: str,
    bridge: Bridge,
    steps: Sequence[int],
    pred_x0_fn: PredX0Fn,
    x1: torch.Tensor,
    *,
    mask: torch.Tensor | None = None,
    ot_ode: bool = False,
    log_steps: Sequence[int] | None = None,
    noise: Noise | None = None,
    forward: Callable[[torch.Tensor], torch.Tensor] | None = None,
    measurement: torch.Tensor | None = None,
    callback: Callback | None = None,
    **options: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Walk ``steps`` (ascending, starting at 0) backwards from x_{steps[-1]} = x1 with sampler ``name``.

    x1: (B, C, H, W); with a ``mask`` (B, 1, H, W), 1 in the hole, the known pixels are reset to x1
    after every step (plus std_sb[m] noise unless OT-ODE); the caller fills the hole of x1 with
    noise first (:func:`i2sb.bridge.fill_hole_with_noise`), as in training. ``options`` are the
    sampler's (e.g. ``eta=0.0``; defaults from its options dataclass); ``forward`` and
    ``measurement`` (A and y) are for samplers that need them (cddb). ``callback(step, x,
    pred_x0)`` sees every step. Returns ``(xs, pred_x0s)``: (B, len(log_steps), C, H, W) on the
    CPU, index 0 = step 0.
    """
    spec = sampler_spec(name)
    resolved = build_options(spec.options, options, name)
    data = _measurement(spec, forward, measurement)
    steps = list(steps)
    log_steps = list(log_steps) if log_steps is not None else steps
    _check_grid(steps, log_steps)
    trajectory = Trajectory(log_steps)

    def observe(step: int, x: torch.Tensor, pred_x0: torch.Tensor) -> None:
        trajectory(step, x, pred_x0)
        if callback is not None:
            callback(step, x, pred_x0)

    walk(
        spec, resolved, bridge, steps, pred_x0_fn, x1, mask=mask, ot_ode=ot_ode,
        noise=torch.randn_like if noise is None else noise, measurement=data, callback=observe,
    )  # fmt: skip
    return trajectory.stacked()
