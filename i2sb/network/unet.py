"""The ADM UNet (Dhariwal & Nichol 2021), written so its ``state_dict`` matches guided-diffusion's.

Keys (``time_embed.*``, ``input_blocks.*``, ``middle_block.*``, ``output_blocks.*``, ``out.*``),
shapes and the ``parameters()`` order equal those of guided-diffusion's ``UNetModel`` for the
same hyper-parameters, so its checkpoints load with ``strict=True`` (spec section 3).
``create_unet`` takes the keyword arguments of guided-diffusion's ``create_model``, the form in
which the published configurations are stored.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from i2sb.network.attention import AttentionBlock
from i2sb.network.layers import (
    BlockEmbeddings,
    Conv2d,
    Downsample,
    EmbedSequential,
    ResBlock,
    Upsample,
    norm_silu,
    normalization,
    timestep_embedding,
    zero_module,
)

NUM_CLASSES = 1000
DEFAULT_CHANNEL_MULT = {
    512: (0.5, 1, 1, 2, 2, 4, 4),
    256: (1, 1, 2, 2, 4, 4),
    128: (1, 1, 2, 3, 4),
    64: (1, 2, 3, 4),
}
# Diffusion settings that I2SB's pickled network kwargs carry along; they do not shape the net.
DIFFUSION_KEYS = frozenset(
    {
        "diffusion_steps",
        "noise_schedule",
        "timestep_respacing",
        "use_kl",
        "predict_xstart",
        "rescale_timesteps",
        "rescale_learned_sigmas",
    }
)


class UNet(nn.Module):
    """ADM UNet: x (B, in_channels, H, W), t (B,) float times -> (B, out_channels, H, W).

    ``attention_ds`` lists the downsample factors (1, 2, 4, ...) at which attention is used.
    ``torso_dtype`` is the dtype of the input/middle/output blocks (see ``set_torso_dtype``).
    """

    def __init__(
        self,
        in_channels: int,
        model_channels: int,
        out_channels: int,
        num_res_blocks: int,
        attention_ds: Sequence[int],
        dropout: float = 0.0,
        channel_mult: Sequence[float] = (1, 2, 4, 8),
        num_classes: int | None = None,
        use_checkpoint: bool = False,
        num_heads: int = 1,
        num_head_channels: int = -1,
        num_heads_upsample: int = -1,
        use_scale_shift_norm: bool = False,
        resblock_updown: bool = False,
        use_new_attention_order: bool = False,
    ):
        super().__init__()
        self.model_channels = model_channels
        self.num_classes = num_classes
        self.torso_dtype = torch.float32
        emb_dim = 4 * model_channels
        self.time_embed = nn.Sequential(
            nn.Linear(model_channels, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim)
        )
        if num_classes is not None:
            self.label_emb = nn.Embedding(num_classes, emb_dim)

        def res(ch_in: int, ch_out: int, **updown: bool) -> ResBlock:
            return ResBlock(
                ch_in, emb_dim, dropout, ch_out, use_scale_shift_norm, use_checkpoint, **updown
            )

        def attn(ch: int, heads: int) -> AttentionBlock:
            return AttentionBlock(
                ch, heads, num_head_channels, use_checkpoint, use_new_attention_order
            )

        ch = int(channel_mult[0] * model_channels)
        self.input_blocks = nn.ModuleList([EmbedSequential(Conv2d(in_channels, ch, 3, padding=1))])
        skip_channels, ds = [ch], 1
        for level, mult in enumerate(channel_mult):
            for _ in range(num_res_blocks):
                layers: list[nn.Module] = [res(ch, int(mult * model_channels))]
                ch = int(mult * model_channels)
                if ds in attention_ds:
                    layers.append(attn(ch, num_heads))
                self.input_blocks.append(EmbedSequential(*layers))
                skip_channels.append(ch)
            if level != len(channel_mult) - 1:
                down = res(ch, ch, down=True) if resblock_updown else Downsample(ch, True, ch)
                self.input_blocks.append(EmbedSequential(down))
                skip_channels.append(ch)
                ds *= 2

        self.middle_block = EmbedSequential(res(ch, ch), attn(ch, num_heads), res(ch, ch))

        heads_up = num_heads if num_heads_upsample == -1 else num_heads_upsample
        self.output_blocks = nn.ModuleList([])
        for level, mult in reversed(list(enumerate(channel_mult))):
            for i in range(num_res_blocks + 1):
                layers = [res(ch + skip_channels.pop(), int(mult * model_channels))]
                ch = int(mult * model_channels)
                if ds in attention_ds:
                    layers.append(attn(ch, heads_up))
                if level and i == num_res_blocks:
                    layers.append(
                        res(ch, ch, up=True) if resblock_updown else Upsample(ch, True, ch)
                    )
                    ds //= 2
                self.output_blocks.append(EmbedSequential(*layers))

        self.out = nn.Sequential(
            normalization(ch), nn.SiLU(), zero_module(Conv2d(ch, out_channels, 3, padding=1))
        )

    def set_torso_dtype(self, dtype: torch.dtype) -> UNet:
        """Cast the convolutions of the input/middle/output blocks to ``dtype`` (fp16/bf16 sampling).

        As guided-diffusion's ``convert_to_fp16``: the time embedding, the linear layers, the
        norms and the output head stay in float32; activations are cast at the block boundary.
        """
        for part in (self.input_blocks, self.middle_block, self.output_blocks):
            for module in part.modules():
                if isinstance(module, nn.Conv1d | nn.Conv2d):
                    module.to(dtype)
        self.torso_dtype = dtype
        return self

    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        y: torch.Tensor | None = None,
        *,
        compute_block: int = 0,
    ):
        """x: (B, C, H, W); t: (B,) float times, or (1,) for one time shared by the batch (its
        embedding is then computed once and broadcast); y: (B,) labels iff class-conditional.

        ``compute_block`` K > 0 runs the network on blocks of exactly K images, the last one
        padded with zero images that are dropped from the output. CPU (oneDNN) and GPU kernels
        are chosen by the batch size (on this CPU a batch of one takes another convolution path
        than a batch of two or more), so a plain call gives an image last bits that depend on
        how many images share it; with a constant K every call has the same shape, and an
        image's output depends on nothing but itself (not its position in the block nor its
        block-mates: tests/test_network_fastpath.py). A shared time is embedded and projected
        once for all blocks, with the bits per-image times of the same value give.
        """
        if (y is None) != (self.num_classes is None):
            raise ValueError("pass class labels y if and only if the UNet is class-conditional")
        if t.dim() != 1 or t.shape[0] not in (1, x.shape[0]):
            raise ValueError(f"t must have shape ({x.shape[0]},) or (1,), got {tuple(t.shape)}")
        if compute_block < 0:
            raise ValueError(f"compute_block must be >= 0, got {compute_block}")
        if compute_block and x.shape[0]:
            return self._in_blocks(x, t, y, compute_block)
        return self._torso(x, self._embed(t, y))

    def _embed(self, t: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        emb = self.time_embed(timestep_embedding(t, self.model_channels))
        return emb if y is None else emb + self.label_emb(y)

    def _in_blocks(
        self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None, size: int
    ) -> torch.Tensor:
        """``forward`` over fixed-size blocks of ``size`` images (see ``compute_block``)."""
        count = x.shape[0]
        # The embedding MLP runs on blocks of ``size`` rows too (a matrix product's rows round
        # differently with the number of rows): a shared time is embedded as a block of
        # ``size`` equal rows once and reused, so it gives what per-image times give.
        shared = None
        if t.shape[0] == 1 and y is None:
            shared = BlockEmbeddings(self._embed(t.expand(size), None))
        elif t.shape[0] == 1:
            t = t.expand(count)
        outputs = []
        for start in range(0, count, size):
            rows = slice(start, start + size)
            if shared is None:
                emb = self._embed(
                    _padded(t[rows], size), None if y is None else _padded(y[rows], size)
                )
            block = self._torso(_padded(x[rows], size), emb if shared is None else shared)
            outputs.append(block[: x[rows].shape[0]])
        return torch.cat(outputs)

    def _torso(self, x: torch.Tensor, emb: torch.Tensor | BlockEmbeddings) -> torch.Tensor:
        skips, h = [], x.to(self.torso_dtype)
        for block in self.input_blocks:
            h = block(h, emb)
            skips.append(h)
        h = self.middle_block(h, emb)
        for block in self.output_blocks:
            h = block(torch.cat([h, skips.pop()], dim=1), emb)
        if not torch.is_autocast_enabled(h.device.type):
            h = h.to(x.dtype)  # a float16 torso (set_torso_dtype) hands float32 to the head
        return self.out[2](norm_silu(self.out[0], h))


def _padded(rows: torch.Tensor, size: int) -> torch.Tensor:
    """``rows`` with zero rows appended up to ``size`` (a compute block's padding)."""
    missing = size - rows.shape[0]
    if missing == 0:
        return rows
    return torch.cat([rows, rows.new_zeros((missing, *rows.shape[1:]))])


def _parse_channel_mult(channel_mult: str | Sequence[float], image_size: int) -> tuple:
    if isinstance(channel_mult, str) and channel_mult == "":
        if image_size not in DEFAULT_CHANNEL_MULT:
            raise ValueError(
                f"channel_mult '' has no default for image_size={image_size}; "
                f"defaults exist for {sorted(DEFAULT_CHANNEL_MULT)}"
            )
        return DEFAULT_CHANNEL_MULT[image_size]
    try:
        if isinstance(channel_mult, str):
            return tuple(int(m) for m in channel_mult.split(","))
        return tuple(channel_mult)
    except ValueError:
        raise ValueError(f"channel_mult must be like '1,2,2', got {channel_mult!r}") from None


def _attention_factors(attention_resolutions: str | Sequence[int], image_size: int) -> tuple:
    """'32,16,8' (resolutions) -> downsample factors image_size // res, as create_model does."""
    if isinstance(attention_resolutions, str):
        try:
            resolutions = [int(r) for r in attention_resolutions.split(",") if r.strip()]
        except ValueError:
            raise ValueError(
                f"attention_resolutions must be like '32,16,8', got {attention_resolutions!r}"
            ) from None
    else:
        resolutions = [int(r) for r in attention_resolutions]
    for res in resolutions:
        if res <= 0 or image_size % res:
            raise ValueError(
                f"attention_resolutions entry {res} does not divide image_size={image_size}"
            )
    return tuple(image_size // res for res in resolutions)


def create_unet(
    image_size: int,
    num_channels: int,
    num_res_blocks: int,
    channel_mult: str | Sequence[float] = "",
    learn_sigma: bool = False,
    class_cond: bool = False,
    use_checkpoint: bool = False,
    attention_resolutions: str | Sequence[int] = "16",
    num_heads: int = 1,
    num_head_channels: int = -1,
    num_heads_upsample: int = -1,
    use_scale_shift_norm: bool = False,
    dropout: float = 0.0,
    resblock_updown: bool = False,
    use_fp16: bool = False,
    use_new_attention_order: bool = False,
    in_channels: int = 3,
    **diffusion_kwargs: object,
) -> UNet:
    """Build the UNet from guided-diffusion ``create_model`` keywords (plus I2SB's ``in_channels``).

    ``channel_mult`` "" picks the default for ``image_size``; ``attention_resolutions`` lists
    resolutions ("32,16,8"), turned into downsample factors. ``learn_sigma`` doubles the 3
    output channels. ``use_fp16`` builds the torso in float16 (``create_model`` followed by
    ``convert_to_fp16`` in guided-diffusion). The diffusion settings I2SB stores beside the
    network keywords are accepted and ignored; any other keyword is an error.
    """
    unknown = set(diffusion_kwargs) - DIFFUSION_KEYS
    if unknown:
        raise TypeError(f"create_unet got unknown keyword(s) {sorted(unknown)}")
    unet = UNet(
        in_channels=in_channels,
        model_channels=num_channels,
        out_channels=6 if learn_sigma else 3,
        num_res_blocks=num_res_blocks,
        attention_ds=_attention_factors(attention_resolutions, image_size),
        dropout=dropout,
        channel_mult=_parse_channel_mult(channel_mult, image_size),
        num_classes=NUM_CLASSES if class_cond else None,
        use_checkpoint=use_checkpoint,
        num_heads=num_heads,
        num_head_channels=num_head_channels,
        num_heads_upsample=num_heads_upsample,
        use_scale_shift_norm=use_scale_shift_norm,
        resblock_updown=resblock_updown,
        use_new_attention_order=use_new_attention_order,
    )
    return unet.set_torso_dtype(torch.float16) if use_fp16 else unet
