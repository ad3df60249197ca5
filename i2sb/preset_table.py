"""The network preset table: each named UNet configuration, in guided-diffusion ``create_model`` form.

The config schema's ``network.preset`` choices (config/choices.py), the network builder
(network/presets.py) and the sampling options (an image size a run does not record) all read
this table, so a preset is one row here. Imports neither torch nor numpy: the config and the
Snakefile read it.
"""

from __future__ import annotations

from typing import Any

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
PRESET_NAMES = tuple(PRESETS)  # the schema's network.preset choices, in table order


def preset_kwargs(preset: str) -> dict[str, Any]:
    """A copy of the create_unet keywords of ``preset`` (KeyError naming the known ones)."""
    if preset not in PRESETS:
        raise KeyError(f"unknown network preset {preset!r}; known: {', '.join(PRESETS)}")
    return dict(PRESETS[preset])
