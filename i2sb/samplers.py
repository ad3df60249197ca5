"""Bridge samplers (spec §2 and §10): plain functions, chosen by name.

``sample(name, bridge, steps, pred_x0_fn, x1, ...)`` walks the NFE grid from x_{N-1} := x1 down to
step 0. The samplers share the network call, the grid, the trajectory log and the inpainting reset;
they differ only in the update x_n -> x_m, one function each:

- ``ddpm``: the paper's posterior step (OT-ODE: its mean).
- ``implicit`` (option ``eta`` in [0, 1]): the non-Markovian I3SB step; the first step is DDPM.
- ``cddb`` (option ``step_size``): the DDPM step, then a data-consistency step along
  grad ||A(pred_x0) - y||^2 (needs ``forward`` = A and ``measurement`` = y).

Randomness is injected: every draw goes through ``noise(like)`` (default ``torch.randn_like``),
in spec §10's order: the step's own draw, then (inpainting, not OT-ODE) the known-pixel draw.
``image_noise(seed, indices)`` gives image i its own generator, so a batch's images do not depend
on which other images share the batch. Adding a sampler: its update function, its entry in
``UPDATES`` and in ``i2sb.sampler_table.SAMPLER_KINDS`` (the options the config accepts), and a test.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from i2sb.bridge import Bridge, Noise
from i2sb.sampler_table import SAMPLER_KINDS, SAMPLER_NAMES
from i2sb.tasks import family_patterns

PredX0Fn = Callable[[torch.Tensor, int], torch.Tensor]


@dataclass(frozen=True)
class StepContext:
    """What an update may read besides x_n and pred_x0: one step n -> m (m < n) of the grid."""

    bridge: Bridge
    prev: int  # m
    step: int  # n
    first: bool  # the first step, from x_{N-1} = x1
    x1: torch.Tensor  # the sampler's start (hole already filled with noise for inpainting)
    ot_ode: bool
    noise: Noise


def ddpm_update(ctx: StepContext, x_n: torch.Tensor, pred_x0: torch.Tensor) -> torch.Tensor:
    """x_m ~ p(x_m | x_n, pred_x0): the paper's sampler (spec §2)."""
    return ctx.bridge.p_posterior(ctx.prev, ctx.step, x_n, pred_x0, ctx.ot_ode, ctx.noise)


def implicit_update(
    ctx: StepContext, x_n: torch.Tensor, pred_x0: torch.Tensor, eta: float
) -> torch.Tensor:
    """The I3SB step (spec §10): keep the bridge marginal, inject only ``eta`` of DDPM's noise.

    mu_k = mu_x0[k] pred_x0 + mu_x1[k] x1; g = eta s_m s_d / sqrt(s_m^2 + s_d^2);
    x_m = mu_m + sqrt(std_sb[m]^2 - g^2) / std_sb[n] (x_n - mu_n) (+ g eps if m > 0), and x_m = mu_m
    with g := std_sb[m] when g >= std_sb[m]. The first step is DDPM's, as in the authors' code.
    """
    if ctx.first:
        return ddpm_update(ctx, x_n, pred_x0)
    bridge, m, n = ctx.bridge, ctx.prev, ctx.step
    _, _, posterior_std = bridge.posterior_coefficients(m, n)
    g = eta * posterior_std
    std_m, std_n = bridge.std_sb[m], bridge.std_sb[n]
    mean_m = bridge.mu_x0[m] * pred_x0 + bridge.mu_x1[m] * ctx.x1
    if g < std_m:
        mean_n = bridge.mu_x0[n] * pred_x0 + bridge.mu_x1[n] * ctx.x1
        x_m = mean_m + (std_m**2 - g**2).sqrt() / std_n * (x_n - mean_n)
    else:
        g, x_m = std_m, mean_m
    if m > 0:
        x_m = x_m + g * ctx.noise(x_m)
    return x_m


def cddb_update(
    ctx: StepContext,
    x_n: torch.Tensor,
    pred_x0: torch.Tensor,
    step_size: float,
    forward: Callable[[torch.Tensor], torch.Tensor],
    measurement: torch.Tensor,
) -> torch.Tensor:
    """The CDDB step (spec §10): DDPM's step from pred_x0, minus c * step_size * grad.

    grad = d/d pred_x0 of ||forward(pred_x0) - measurement||^2 (not through the network) and
    c = s_d^2 / (s_m^2 + s_d^2), the posterior's weight on x0.
    """
    with torch.enable_grad():
        x0 = pred_x0.detach().requires_grad_(True)
        residual = (forward(x0) - measurement).pow(2).sum()
        (grad,) = torch.autograd.grad(residual, x0)
    coef_x0, _, _ = ctx.bridge.posterior_coefficients(ctx.prev, ctx.step)
    return ddpm_update(ctx, x_n, pred_x0) - coef_x0 * step_size * grad


def _check_eta(options: dict[str, Any]) -> None:
    eta = options["eta"]
    if not 0.0 <= float(eta) <= 1.0:
        raise ValueError(f"sampler implicit: eta must be in [0, 1], got {eta!r}")


def _check_cddb(options: dict[str, Any]) -> None:
    if float(options["step_size"]) < 0:
        raise ValueError(f"sampler cddb: step_size must be >= 0, got {options['step_size']!r}")
    if not callable(options.get("forward")) or not torch.is_tensor(options.get("measurement")):
        raise ValueError(
            "sampler cddb needs forward= (the task's differentiable operator A) and measurement= "
            "(the tensor y = A(x0)); only tasks with a forward operator "
            f"({family_patterns('forward_operator')}) can use it"
        )


@dataclass(frozen=True)
class SamplerEntry:
    update: Callable[..., torch.Tensor]
    data_options: tuple[str, ...] = ()  # tensors/callables passed per batch, not config values
    check: Callable[[dict[str, Any]], None] | None = None


UPDATES: dict[str, SamplerEntry] = {
    "ddpm": SamplerEntry(ddpm_update),
    "implicit": SamplerEntry(implicit_update, check=_check_eta),
    "cddb": SamplerEntry(cddb_update, ("forward", "measurement"), _check_cddb),
}
if set(UPDATES) != set(SAMPLER_KINDS):  # the sampler table and the functions must agree
    raise ImportError(f"samplers {sorted(UPDATES)} differ from the table's {sorted(SAMPLER_KINDS)}")


def resolve_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """The options of sampler ``name`` with defaults filled in; unknown ones are an error."""
    if name not in UPDATES:
        raise KeyError(f"unknown sampler {name!r}; valid samplers: {', '.join(SAMPLER_NAMES)}")
    entry = UPDATES[name]
    accepted = (*SAMPLER_KINDS[name].options, *entry.data_options)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(
            f"sampler {name} takes no option(s) {unknown}; accepted: {list(accepted) or 'none'}"
        )
    resolved = {**SAMPLER_KINDS[name].options, **options}
    if entry.check is not None:
        entry.check(resolved)
    return resolved


def _check_grid(steps: list[int], log_steps: list[int]) -> None:
    if len(steps) < 2 or steps[0] != 0 or not log_steps or log_steps[0] != 0:
        raise ValueError(
            f"steps (at least 2) and log_steps must start at 0, got {steps[:3]}, {log_steps[:3]}"
        )
    if any(a >= b for a, b in zip(steps, steps[1:], strict=False)):
        raise ValueError("steps must be strictly increasing")


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
    progress: bool = False,
    **options: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Walk ``steps`` (ascending, starting at 0) backwards from x_{steps[-1]} = x1 with sampler ``name``.

    x1: (B, C, H, W); with a ``mask`` (B, 1, H, W), 1 in the hole, the known pixels are reset to x1
    after every step (plus std_sb[m] noise unless OT-ODE); the caller fills the hole of x1 with
    noise first (:func:`i2sb.bridge.fill_hole_with_noise`), as in training. ``options`` are the
    sampler's (``eta``; ``step_size``, ``forward``, ``measurement``). ``progress`` shows a bar.
    Returns ``(xs, pred_x0s)``: (B, len(log_steps), C, H, W) on the CPU, index 0 = step 0.
    """
    options = resolve_options(name, options)
    update = UPDATES[name].update
    noise = torch.randn_like if noise is None else noise
    steps = list(steps)
    log_steps = list(log_steps) if log_steps is not None else steps
    _check_grid(steps, log_steps)
    logged = set(log_steps)
    xt = x1.detach()
    xs, pred_x0s = [], []
    pairs = list(zip(steps[-2::-1], steps[:0:-1], strict=True))
    if progress:
        from tqdm.auto import tqdm

        pairs = tqdm(pairs, desc=f"sampling ({name})")
    for number, (prev_step, step) in enumerate(pairs):
        pred_x0 = pred_x0_fn(xt, step)
        ctx = StepContext(bridge, prev_step, step, number == 0, x1, ot_ode, noise)
        xt = update(ctx, xt, pred_x0, **options)
        if mask is not None:
            known = x1
            if not ot_ode:
                known = known + bridge.std_sb[prev_step].to(x1.device) * noise(x1)
            xt = (1.0 - mask) * known + mask * xt
        if prev_step in logged:
            xs.append(xt.detach().cpu())
            pred_x0s.append(pred_x0.detach().cpu())

    def newest_first(frames: list[torch.Tensor]) -> torch.Tensor:
        return torch.flip(torch.stack(frames, dim=1), dims=(1,))

    return newest_first(xs), newest_first(pred_x0s)


def image_seed(seed: int, index: int) -> int:
    """A 64-bit seed for image ``index`` of a run seeded with ``seed`` (numpy's SeedSequence)."""
    if index < 0:
        raise ValueError(f"image index must be >= 0, got {index}")
    state = np.random.SeedSequence([seed % 2**64, index]).generate_state(2, np.uint32)
    return int(state[0]) | (int(state[1]) << 32)


def image_noise(seed: int, indices: Sequence[int], device: str | torch.device = "cpu") -> Noise:
    """``noise(like)`` whose row i comes from image ``indices[i]``'s own generator.

    Image i's draws depend on (seed, indices[i]) and on how many draws came before, never on the
    other rows, so a sample does not change with the batch or partition it is sampled in. The
    generators live on ``device``: CPU and CUDA draw different (each reproducible) numbers.
    """
    generators = [torch.Generator(device).manual_seed(image_seed(seed, int(i))) for i in indices]

    def noise(like: torch.Tensor) -> torch.Tensor:
        if like.shape[0] != len(generators):
            raise ValueError(
                f"noise for {len(generators)} images asked for a batch of {like.shape[0]}"
            )
        rows = [
            torch.randn(like.shape[1:], generator=g, device=g.device, dtype=like.dtype)
            for g in generators
        ]
        return torch.stack(rows).to(like.device)

    return noise
