"""DBIM's high-order bridge ODE sampler (spec §10), on I2SB's bridge.

Zheng, He, Chen, Zhu, "Diffusion Bridge Implicit Models" (ICLR 2025): the eta = 0 implicit sampler
made multistep, an exponential integrator in lambda = log(mu_x0 / std_sb) as DPM-Solver++ is for
diffusions. With the marginal x_k = a_k x1 + b_k x0 + c_k eps (a = mu_x1, b = mu_x0, c = std_sb):

- the first step (from N-1) is the DDPM posterior, with its one noise draw unless OT-ODE;
- then order 1, order 2, and (order 3) order 3 from the third step after the first; the step into
  0 is order 1; no noise after the first step.

Order k reads the pred_x0 of the k - 1 grid points before n (the walk's ``ctx.earlier``); the
first step's pred_x0 is never in a difference, since the step after it is order 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import i2sb.samplers.ddpm as ddpm
from i2sb.samplers.options import option

if TYPE_CHECKING:
    import torch

    from i2sb.samplers.step import StepContext


@dataclass(frozen=True)
class DbimOptions:
    order: int = option(
        2,
        "highest order of the multistep update; order 1 right after the first step and into 0",
        choices=(2, 3),
        label="o",
    )


def update(
    ctx: StepContext, x_n: torch.Tensor, pred_x0: torch.Tensor, options: DbimOptions
) -> torch.Tensor:
    """x_m = base + b_m [(1 - e^-h) x0^ + (e^-h + h - 1) D1 + (h^2/2 - h + 1 - e^-h) D2], with
    r = c_m / c_n, base = r x_n + (a_m - r a_n) x1, h = lambda_m - lambda_n and D1, D2 the
    divided differences of pred_x0 over lambda (zero below order 2, D2 zero below order 3).

    The scalars are computed in float64 from the bridge's buffers (e^-h + h - 1 as expm1(-h) + h,
    which keeps its digits on fine grids, where h is small).
    """
    if ctx.first:
        return ddpm.update(ctx, x_n, pred_x0, ddpm.DdpmOptions())
    m, n = ctx.prev, ctx.step
    # Python floats (float64) holding the float32 buffers' values exactly.
    a, b, c = (
        buffer.tolist() for buffer in (ctx.bridge.mu_x1, ctx.bridge.mu_x0, ctx.bridge.std_sb)
    )
    r = c[m] / c[n]
    base = r * x_n + (a[m] - r * a[n]) * ctx.x1
    order = 1 if m == 0 else min(options.order, ctx.number)
    if order == 1:  # implicit with eta = 0
        return base + (b[m] - r * b[n]) * pred_x0

    def lam(k: int) -> float:
        return math.log(b[k] / c[k])

    h = lam(m) - lam(n)
    phi1, phi2 = -math.expm1(-h), math.expm1(-h) + h  # 1 - e^-h, e^-h + h - 1
    u1 = ctx.earlier[0]
    h1 = lam(n) - lam(u1.step)
    delta1 = pred_x0 - u1.pred_x0
    if order == 2:
        return base + b[m] * (phi1 * pred_x0 + phi2 / h1 * delta1)
    u2 = ctx.earlier[1]
    h2 = lam(u1.step) - lam(u2.step)
    delta2 = u1.pred_x0 - u2.pred_x0
    d1 = (delta1 * ((2 * h1 + h2) / h1) - delta2 * (h1 / h2)) / (h1 + h2)
    d2 = (delta1 / h1 - delta2 / h2) * (2 / (h1 + h2))
    phi3 = h * h / 2 - h - math.expm1(-h)  # h^2/2 - h + 1 - e^-h
    return base + b[m] * (phi1 * pred_x0 + phi2 * d1 + phi3 * d2)
