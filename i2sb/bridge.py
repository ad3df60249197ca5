"""The I2SB bridge: schedule, marginals and posterior (spec §1-2).

Pure math on tensors: no files, no networks, no device choice, no progress bars. Randomness is
injected: every draw goes through ``noise(like) -> standard normal shaped like like`` (default
``torch.randn_like``). The samplers that walk the NFE grid live in :mod:`i2sb.samplers`; the
network enters only as a callable ``pred_x0_fn(x_t, step) -> pred_x0``. Numerics follow the
reference implementation (float64 schedule, float32 buffers) so published checkpoints sample
identically.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

Step = int | torch.Tensor
Noise = Callable[[torch.Tensor], torch.Tensor]  # noise(like) -> N(0, I) shaped like ``like``


def make_beta_schedule(
    n_timestep: int, linear_start: float = 1e-4, linear_end: float = 2e-2
) -> np.ndarray:
    """betas = linspace(sqrt(start), sqrt(end), n)^2 in float64 (computed in torch, as the reference)."""
    if n_timestep < 1:
        raise ValueError(f"n_timestep must be >= 1, got {n_timestep}")
    root = torch.linspace(linear_start**0.5, linear_end**0.5, n_timestep, dtype=torch.float64)
    return (root**2).numpy()


def symmetric_betas(interval: int, beta_max: float) -> np.ndarray:
    """The I2SB schedule: first half of the scaled linear schedule, then mirrored.

    ``linear_start`` stays 1e-4 while ``linear_end = beta_max / interval``: the schedule
    depends on ``interval`` exactly as the published checkpoints were trained with.
    """
    if interval < 2:
        raise ValueError(f"interval must be >= 2, got {interval}")
    if beta_max <= 0:
        raise ValueError(f"beta_max must be > 0, got {beta_max}")
    half = make_beta_schedule(interval, linear_end=beta_max / interval)[: interval // 2]
    return np.concatenate([half, np.flip(half)])


def space_indices(num_steps: int, count: int) -> list[int]:
    """``count`` integers spread over [0, num_steps - 1].

    The stride is accumulated in floating point and rounded with Python's ``round``
    (half to even), which reproduces the reference's integers exactly, ties included.
    """
    if not 1 <= count <= num_steps:
        raise ValueError(f"count must be in [1, num_steps={num_steps}], got {count}")
    stride = 1.0 if count == 1 else (num_steps - 1) / (count - 1)
    position, indices = 0.0, []
    for _ in range(count):
        indices.append(round(position))
        position += stride
    return indices


def gaussian_product(sigma1, sigma2):
    """N(a, sigma1^2) * N(b, sigma2^2) = N(coef_a * a + coef_b * b, var)."""
    denom = sigma1**2 + sigma2**2
    return sigma2**2 / denom, sigma1**2 / denom, (sigma1**2 * sigma2**2) / denom


def _per_sample(value: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Broadcast a per-step scalar or (B,) vector against a (B, ...) tensor."""
    if value.dim() == 0:
        return value
    return value.reshape(value.shape[0], *([1] * (like.dim() - 1)))


class Bridge:
    """Schrodinger bridge between x0 (clean, step 0) and x1 (degraded, step N-1).

    Buffers (float32, length N): ``betas, std_fwd, std_bwd, std_sb, mu_x0, mu_x1``, built on the
    CPU; ``bridge.to(device)`` gives a copy whose buffers live where the images are.
    """

    BUFFERS = ("betas", "std_fwd", "std_bwd", "std_sb", "mu_x0", "mu_x1")

    def __init__(self, betas: np.ndarray):
        betas = np.asarray(betas, dtype=np.float64)
        std_fwd = np.sqrt(np.cumsum(betas))
        std_bwd = np.sqrt(np.flip(np.cumsum(np.flip(betas))))
        mu_x0, mu_x1, var = gaussian_product(std_fwd, std_bwd)

        def as_buffer(array: np.ndarray) -> torch.Tensor:
            return torch.tensor(np.ascontiguousarray(array), dtype=torch.float32)

        self.betas = as_buffer(betas)
        self.std_fwd = as_buffer(std_fwd)
        self.std_bwd = as_buffer(std_bwd)
        self.std_sb = as_buffer(np.sqrt(var))
        self.mu_x0 = as_buffer(mu_x0)
        self.mu_x1 = as_buffer(mu_x1)

    def to(self, device: str | torch.device) -> Bridge:
        """A copy with every buffer on ``device`` (the same values, bit for bit)."""
        moved = object.__new__(Bridge)
        for name in self.BUFFERS:
            setattr(moved, name, getattr(self, name).to(device))
        return moved

    @property
    def interval(self) -> int:
        return int(self.betas.shape[0])

    def _at(self, buffer: torch.Tensor, step: Step, like: torch.Tensor) -> torch.Tensor:
        if isinstance(step, torch.Tensor):
            step = step.to(buffer.device)
        return _per_sample(buffer[step], like).to(like.device)

    def q_sample(
        self,
        step: Step,
        x0: torch.Tensor,
        x1: torch.Tensor,
        ot_ode: bool = False,
        noise: Noise = torch.randn_like,
    ):
        """Draw x_n ~ q(x_n | x0, x1); x0, x1: (B, C, H, W); step: int or (B,) long."""
        if x0.shape != x1.shape:
            raise ValueError(f"x0 and x1 shapes differ: {tuple(x0.shape)} vs {tuple(x1.shape)}")
        xt = self._at(self.mu_x0, step, x0) * x0 + self._at(self.mu_x1, step, x0) * x1
        if not ot_ode:
            xt = xt + self._at(self.std_sb, step, x0) * noise(xt)
        return xt.detach()

    def compute_label(self, step: Step, x0: torch.Tensor, xt: torch.Tensor) -> torch.Tensor:
        """Training target (x_n - x0) / std_fwd[n]."""
        return ((xt - x0) / self._at(self.std_fwd, step, x0)).detach()

    def compute_pred_x0(
        self, step: Step, xt: torch.Tensor, net_out: torch.Tensor, clip_denoise: bool = False
    ) -> torch.Tensor:
        """Invert the label: x0 = x_n - std_fwd[n] * net_out, optionally clamped to [-1, 1]."""
        pred_x0 = xt - self._at(self.std_fwd, step, xt) * net_out
        return pred_x0.clamp(-1.0, 1.0) if clip_denoise else pred_x0

    def posterior_coefficients(
        self, nprev: int, n: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(coef_x0, coef_xn, std) of p(x_nprev | x_n, x0) = N(coef_x0 x0 + coef_xn x_n, std^2).

        With s_n = std_fwd[n], s_m = std_fwd[nprev], s_d^2 = s_n^2 - s_m^2: the Gaussian product of
        N(x0, s_m^2) and N(x_n, s_d^2), so coef_x0 = s_d^2 / s_n^2 and std = s_m s_d / s_n.
        """
        if not nprev < n:
            raise ValueError(f"p_posterior needs nprev < n, got nprev={nprev}, n={n}")
        std_n, std_prev = self.std_fwd[n], self.std_fwd[nprev]
        std_delta = (std_n**2 - std_prev**2).sqrt()
        coef_x0, coef_xn, var = gaussian_product(std_prev, std_delta)
        return coef_x0, coef_xn, var.sqrt()

    def p_posterior(
        self,
        nprev: int,
        n: int,
        x_n: torch.Tensor,
        x0: torch.Tensor,
        ot_ode: bool = False,
        noise: Noise = torch.randn_like,
    ) -> torch.Tensor:
        """Draw x_nprev ~ p(x_nprev | x_n, x0) for nprev < n (DDPM posterior, eq. 4).

        One ``noise`` draw unless ``ot_ode`` or nprev = 0.
        """
        coef_x0, coef_xn, std = self.posterior_coefficients(nprev, n)
        x_prev = coef_x0.to(x_n.device) * x0 + coef_xn.to(x_n.device) * x_n
        if not ot_ode and nprev > 0:
            x_prev = x_prev + std.to(x_n.device) * noise(x_prev)
        return x_prev

    def pred_x0_fn(
        self,
        net: Callable[..., torch.Tensor],
        cond: torch.Tensor | None = None,
        clip_denoise: bool = False,
    ) -> Callable[[torch.Tensor, int], torch.Tensor]:
        """Wrap a network ``net(x_t, step: int, cond=...) -> label estimate`` for the samplers.

        The whole batch shares the step, passed as a Python int: the network embeds one time
        and no per-step tensor is built or copied to the device.
        """

        def predict(xt: torch.Tensor, step: int) -> torch.Tensor:
            out = net(xt, step, cond=cond)
            return self.compute_pred_x0(step, xt, out.float(), clip_denoise=clip_denoise)

        return predict


def nfe_steps(interval: int, nfe: int) -> list[int]:
    """The NFE grid: ``space_indices(interval, nfe + 1)``; NFE=2, N=1000 -> [0, 500, 999]."""
    if not 0 < nfe < interval:
        raise ValueError(f"nfe must be in [1, {interval - 1}] for interval={interval}, got {nfe}")
    return space_indices(interval, nfe + 1)


def log_steps_for(steps: Sequence[int], log_count: int = 10) -> list[int]:
    """``log_count`` evenly spaced steps of the NFE grid, always including 0."""
    count = min(len(steps) - 1, log_count)
    return [steps[i] for i in space_indices(len(steps) - 1, count)]


def fill_hole_with_noise(
    x1: torch.Tensor, mask: torch.Tensor | None, noise: Noise = torch.randn_like
) -> torch.Tensor:
    """Replace x1 inside the hole (mask == 1) by N(0, I), as training and sampling do."""
    if mask is None:
        return x1
    return (1.0 - mask) * x1 + mask * noise(x1)


def bridge_for_task(interval: int, beta_max: float) -> Bridge:
    return Bridge(symmetric_betas(interval, beta_max))


def noise_levels(interval: int, t0: float = 1e-4, t_max: float = 1.0, device="cpu") -> torch.Tensor:
    """Network time input per step: linspace(t0, T, N) * N (spec §3)."""
    return torch.linspace(t0, t_max, interval, device=device) * interval
