"""Named UNet configurations, in guided-diffusion ``create_model`` form, and the I2SB builder."""

from __future__ import annotations

from typing import Any

from i2sb.bridge import noise_levels
from i2sb.network.unet import create_unet
from i2sb.network.wrapper import I2SBNet

_COMMON: dict[str, Any] = {
    "learn_sigma": False,
    "class_cond": False,
    "use_checkpoint": False,
    "num_heads": 4,
    "num_heads_upsample": -1,
    "use_scale_shift_norm": True,
    "dropout": 0.0,
    "resblock_updown": True,
    "use_fp16": False,
    "use_new_attention_order": False,
}

PRESETS: dict[str, dict[str, Any]] = {
    # The official I2SB network: ADM's unconditional 256x256 model with 3 output channels.
    "adm256": {
        **_COMMON,
        "image_size": 256,
        "num_channels": 256,
        "num_res_blocks": 2,
        "channel_mult": "",
        "attention_resolutions": "32,16,8",
        "num_head_channels": 64,
    },
    # CPU size (1.0M parameters), built for 64 px (attention at 1/4 of the input side); the demo
    # feeds it 32 px images (data.image_size). The two full-resolution levels dominate a CPU
    # training step, so they keep 32 channels ("1,1,2", not "1,2,2").
    "small": {
        **_COMMON,
        "image_size": 64,
        "num_channels": 32,
        "num_res_blocks": 1,
        "channel_mult": "1,1,2",
        "attention_resolutions": "16",
        "num_head_channels": 32,
    },
    # Unit-test size for other components: 32 px, two levels.
    "tiny": {
        **_COMMON,
        "image_size": 32,
        "num_channels": 32,
        "num_res_blocks": 1,
        "channel_mult": "1,2",
        "attention_resolutions": "16",
        "num_head_channels": 32,
    },
}


def preset_kwargs(preset: str) -> dict[str, Any]:
    """A copy of the create_unet keywords of ``preset`` (KeyError naming the known ones)."""
    if preset not in PRESETS:
        raise KeyError(f"unknown network preset {preset!r}; known: {', '.join(PRESETS)}")
    return dict(PRESETS[preset])


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
