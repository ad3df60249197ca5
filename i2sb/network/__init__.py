"""The ADM UNet, its I2SB wrapper, named presets and checkpoint I/O."""

from i2sb.network.attention import AttentionBlock, set_attention_impl
from i2sb.network.checkpoint import (
    load_adm_checkpoint,
    load_adm_from_downloads,
    load_i2sb_checkpoint,
    save_i2sb_checkpoint,
)
from i2sb.network.presets import build_i2sb_net
from i2sb.network.unet import UNet, create_unet
from i2sb.network.wrapper import I2SBNet
from i2sb.preset_table import PRESETS, preset_kwargs

__all__ = [
    "PRESETS",
    "AttentionBlock",
    "I2SBNet",
    "UNet",
    "build_i2sb_net",
    "create_unet",
    "load_adm_checkpoint",
    "load_adm_from_downloads",
    "load_i2sb_checkpoint",
    "preset_kwargs",
    "save_i2sb_checkpoint",
    "set_attention_impl",
]
