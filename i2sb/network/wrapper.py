"""I2SBNet: the UNet seen by the bridge, fed the noise level of a step instead of the step.

Its state_dict is the UNet's with the prefix ``diffusion_model.`` (the attribute name of the
reference's ``Image256Net``), so a published ``latest.pt`` "net" loads into it strictly.
"""

from __future__ import annotations

import torch
from torch import nn

from i2sb.network.unet import UNet


class I2SBNet(nn.Module):
    """net(x_t, steps, cond) -> (B, 3, H, W), the prediction of (x_t - x0) / std_fwd[step].

    ``noise_levels`` (N,) maps a step index to the UNet's time input (spec section 3). It is
    kept in float32 outside the state_dict (published checkpoints have no such key), and
    follows the input's device. With ``cond_x1`` the degraded image x1 is concatenated to x_t
    on channels.
    """

    def __init__(self, unet: UNet, noise_levels: torch.Tensor, cond_x1: bool = False):
        super().__init__()
        if noise_levels.dim() != 1:
            raise ValueError(f"noise_levels must be 1-D, got shape {tuple(noise_levels.shape)}")
        self.diffusion_model = unet
        self.noise_levels = noise_levels.detach().float()
        self.cond_x1 = cond_x1

    def forward(
        self,
        x: torch.Tensor,
        steps: torch.Tensor | int,
        cond: torch.Tensor | None = None,
        *,
        compute_block: int = 0,
    ) -> torch.Tensor:
        """x: (B, 3, H, W); steps: (B,) integer steps in [0, N) or one int; cond: x1 iff cond_x1;
        ``compute_block``: see ``UNet.forward``."""
        if self.noise_levels.device != x.device:
            self.noise_levels = self.noise_levels.to(x.device)
        if not torch.is_tensor(steps):  # one step for the batch: no host-to-device copy
            t = self.noise_levels[int(steps)].reshape(1)
        elif steps.dim() != 1 or steps.shape[0] != x.shape[0]:
            raise ValueError(f"steps must have shape ({x.shape[0]},), got {tuple(steps.shape)}")
        elif steps.device.type == "cpu" and bool((steps == steps[0]).all()):
            # A sampler's batch shares its step: the UNet embeds one time, broadcast (checked
            # on CPU tensors only; on CUDA the check would wait for the device).
            t = self.noise_levels[steps[:1].to(x.device)]
        else:
            t = self.noise_levels[steps.to(x.device)]
        dtype = x.dtype
        if self.cond_x1:
            if cond is None:
                raise ValueError("this network was built with cond_x1: pass cond=x1")
            x = torch.cat([x, cond.to(x.dtype)], dim=1)
        elif cond is not None:
            raise ValueError("cond given to a network built without cond_x1")
        # Under autocast the head returns bf16/fp16; the bridge's arithmetic stays in x's dtype.
        return self.diffusion_model(x, t, compute_block=compute_block).to(dtype)
