"""The I2SB builder from a named preset (the presets themselves: i2sb/preset_table.py)."""

from __future__ import annotations

from i2sb.bridge import noise_levels
from i2sb.network.unet import create_unet
from i2sb.network.wrapper import I2SBNet
from i2sb.preset_table import preset_kwargs


def build_i2sb_net(
    preset: str,
    interval: int,
    t0: float = 1e-4,
    T: float = 1.0,  # noqa: N803 (the reference's option name)
    cond_x1: bool = False,
    use_checkpoint: bool = False,
) -> I2SBNet:
    """A freshly initialised I2SBNet; with ``cond_x1`` the UNet takes 6 input channels."""
    kwargs = preset_kwargs(preset)
    kwargs.update(in_channels=6 if cond_x1 else 3, use_checkpoint=use_checkpoint)
    return I2SBNet(create_unet(**kwargs), noise_levels(interval, t0, T), cond_x1=cond_x1)
