"""The I2SB training objective for one microbatch (spec §2)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from i2sb.bridge import Bridge, fill_hole_with_noise


@torch.no_grad()
def boundary_pair(batch, corruption, device: torch.device, indices: torch.Tensor | None = None):
    """(x0, x1, mask) from a dataset batch: (x0, label) + corruption, or a paired (x0, x1, label)."""
    if corruption is None:
        if len(batch) != 3:
            raise ValueError("paired training needs batches of (clean, degraded, label)")
        x0, x1 = batch[0].to(device, non_blocking=True), batch[1].to(device, non_blocking=True)
        return x0, x1, None
    x0 = batch[0].to(device, non_blocking=True)
    x1, mask = corruption(x0, indices=indices) if indices is not None else corruption(x0)
    return x0, x1, mask


def bridge_loss(
    net: torch.nn.Module,
    bridge: Bridge,
    x0: torch.Tensor,
    x1: torch.Tensor,
    mask: torch.Tensor | None,
    *,
    ot_ode: bool,
    cond_x1: bool,
    autocast_dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """MSE between the network output and (x_n - x0) / std_fwd[n] at uniform random steps n.

    For inpainting the hole of x1 is filled with noise first and the loss is taken inside the
    hole only (both terms multiplied by the mask, as the reference does).
    """
    x1 = fill_hole_with_noise(x1, mask)
    steps = torch.randint(0, bridge.interval, (x0.shape[0],), device=x0.device)
    xt = bridge.q_sample(steps, x0, x1, ot_ode=ot_ode)
    label = bridge.compute_label(steps, x0, xt)
    cond = x1 if cond_x1 else None
    with torch.autocast(
        x0.device.type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None
    ):
        pred = net(xt, steps, cond=cond)
    pred = pred.float()
    if mask is not None:
        pred, label = mask * pred, mask * label
    return F.mse_loss(pred, label)
