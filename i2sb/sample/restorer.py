"""Restorer: a trained network, its bridge and precision, restoring images (spec section 2).

It runs a sampler of i2sb/samplers/ around the run: EMA weights, precision, seeding, timing.

The bridge math stays float32; only the network call runs under autocast (precision ``auto``:
fp16 on CUDA, bf16 on a CPU with native bf16; see i2sb/network/fastpath.py), channels_last and,
when asked, compiled. Every image draws its noise from its own generator, seeded by (seed, the
image's global index): a rerun gives identical images whatever the batch or partition, and the
global RNG is left untouched.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from i2sb import samplers
from i2sb.bridge import (
    Bridge,
    Noise,
    bridge_for_task,
    fill_hole_with_noise,
    log_steps_for,
    nfe_steps,
)
from i2sb.network.fastpath import (
    autocast,
    cast_autocast_weights,
    deterministic_kernels,
    fast_network,
    resolve_precision,
    to_channels_last,
)
from i2sb.sample.options import SamplingOptions, sampling_options
from i2sb.samplers import SamplerConfig
from i2sb.tasks import task_spec

DDPM = SamplerConfig()  # the paper's sampler


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def per_image(fn: Callable[..., Any], *batches: torch.Tensor | None) -> Any:
    """``fn`` applied to one image at a time (rows of ``batches``; None passes through), joined.

    On the CPU, PyTorch and oneDNN choose convolution and matrix kernels by batch size (a batch of
    one takes another path than a batch of three, and a matrix product's rows round differently
    with the number of rows), so a batched call gives an image results that depend, in the last
    bits, on the other images in the batch. One image per call makes every sample independent of
    the batch size and partitioning (used for the corruption operators; the network runs on fixed
    blocks instead, COMPUTE_BLOCK).
    Outputs are tensors or tuples of tensors/None, joined along dim 0.
    """
    size = next(b.shape[0] for b in batches if b is not None)
    rows = [fn(*(None if b is None else b[i : i + 1] for b in batches)) for i in range(size)]
    if isinstance(rows[0], tuple):
        return tuple(
            None if parts[0] is None else torch.cat(parts) for parts in zip(*rows, strict=True)
        )
    return torch.cat(rows)


@dataclass
class BatchResult:
    """recon: (B, C, H, W) in [-1, 1] on CPU; frames: (B, L, C, H, W), index 0 = final."""

    recon: torch.Tensor
    frames: torch.Tensor
    seconds: float
    network_evaluations: int


# Images per network call: the sampler runs the network on blocks of exactly this many images,
# the last padded with zero images (UNet.forward's compute_block), so no kernel choice changes
# with sample.batch_size or the partitions. Batched speed, unlike one image per call (on this
# 2-core machine the small preset's batch of 8 runs 1.4x faster in blocks of 4 than one image
# per call: benchmarks/bench_vs_reference.py, "sample/blk" against "sample/img"); a batch
# smaller than this pays for the padding. Changing it changes the last bits of every sample.
COMPUTE_BLOCK = 4
# Above this many pixels an image is its own block: one 256 px image already fills the kernels,
# and padding it to 4 images would hold 4 images' activations (a whole adm256 sampling job of one
# image at 256 px: 3.90 GB RSS in blocks of 4 against 2.44 GB in blocks of 1,
# benchmarks/bench_memory.py). The rule reads the image size only, fixed for a run.
LARGE_IMAGE_PIXELS = 128 * 128


def compute_block(height: int, width: int) -> int:
    """The images per network call for images of ``height`` x ``width`` (see COMPUTE_BLOCK)."""
    return 1 if height * width > LARGE_IMAGE_PIXELS else COMPUTE_BLOCK


SIZE_MULTIPLE = 32  # 2**5: the deepest downsampling of the presets (adm256 halves 5 times)


class Restorer:
    """A trained I2SB network ready to restore batches: ``restorer.restore(x1, mask, nfe, seed)``."""

    def __init__(
        self,
        net: torch.nn.Module,
        options: SamplingOptions,
        device: str | torch.device = "cpu",
        precision: str = "auto",
        checkpoint: str = "",
        compile: bool = False,
        *,
        training: bool = False,
    ) -> None:
        """``training``: ``net`` is a network still being trained (validation): its weights,
        layout and mode are left to the trainer, float32 (autocast casts them at each call, the
        same outputs bit for bit as cast once: cast_autocast_weights), and the caller puts it in
        eval mode around ``restore``. Otherwise ``net`` is made ready for sampling, in place."""
        self.device = torch.device(device)
        self.precision = resolve_precision(precision, self.device, training=False)
        if not training:
            net = to_channels_last(net.to(self.device).eval())
            net = cast_autocast_weights(net, self.precision)
        self.net = net
        self._forward = fast_network(self.net, self.device, compile)
        self.options = options
        self.checkpoint = checkpoint
        self.bridge: Bridge = bridge_for_task(options.interval, options.beta_max).to(self.device)
        self._operator = None  # the task's corruption, built when a sampler needs its operator

    @classmethod
    def load(
        cls,
        ckpt: str | Path,
        device: str | torch.device = "cpu",
        precision: str = "auto",
        compile: bool = False,
    ) -> Restorer:
        """From a run folder (latest.pt + options.json, or the published latest.pt + options.pkl).

        The EMA weights are held once, in the dtype and layout sampling uses: each is copied
        from the memory-mapped file straight into its channels_last, cast tensor on ``device``,
        and the file's mapping is released (load_i2sb_checkpoint's ``layout``). Neither the
        training weights nor the optimizer state are read.
        """
        from i2sb.network import load_i2sb_checkpoint

        resolved = resolve_precision(precision, torch.device(device), training=False)

        def layout(net: torch.nn.Module) -> torch.nn.Module:
            return cast_autocast_weights(to_channels_last(net), resolved)

        net, raw = load_i2sb_checkpoint(ckpt, layout, device)
        options = sampling_options(raw, source=str(ckpt))
        checkpoint = str(Path(ckpt).resolve())
        return cls(net, options, device, resolved, checkpoint=checkpoint, compile=compile)

    def _network(self, counter: list[int]) -> Callable[..., torch.Tensor]:
        def run(x: torch.Tensor, step: int, cond: torch.Tensor | None = None):
            counter[0] += 1
            # Fixed blocks (compute_block: its size follows the image size only) and cuDNN's
            # deterministic kernels: an image's result does not depend on the batch it is in.
            block = compute_block(*x.shape[-2:])
            with autocast(self.precision, self.device), deterministic_kernels(self.device):
                return self._forward(x, step, cond=cond, compute_block=block)

        return run

    def _data_consistency(self, x1: torch.Tensor, mask: torch.Tensor | None) -> dict[str, Any]:
        """cddb's ``forward`` (A of the run's task) and ``measurement`` (y, read off x1)."""
        from i2sb.corruption import build_corruption

        size = self.options.image_size
        if tuple(x1.shape[-2:]) != (size, size):
            raise ValueError(
                f"sampler cddb needs images of the model's size {size}x{size} (its operator is "
                f"built for it), got {tuple(x1.shape[-2:])}"
            )
        if self._operator is None:
            self._operator = build_corruption(
                self.options.task, self.options.image_size, self.device
            )
        operator = self._operator

        def forward(x: torch.Tensor) -> torch.Tensor:
            if self.device.type != "cpu":
                return operator.forward(x, mask)
            return per_image(operator.forward, x, mask)  # batch-size independent (per_image)

        return {"forward": forward, "measurement": operator.measurement(x1, mask)}

    @torch.no_grad()
    def restore(
        self,
        x1: torch.Tensor,
        mask: torch.Tensor | None,
        nfe: int,
        seed: int,
        *,
        indices: Sequence[int] | None = None,
        clip_denoise: bool = False,
        log_count: int = 10,
        sampler: SamplerConfig = DDPM,
        noise: Noise | None = None,
    ) -> BatchResult:
        """Map degraded x1 (B, 3, H, W) in [-1, 1] to x0 with ``nfe`` network evaluations.

        ``mask`` (B, 1, H, W), 1 in the hole, for inpainting: the hole of x1 is filled with
        noise first, and the network's condition (cond_x1) is that filled x1, as in training.
        Image b draws all its noise from its own generator, seeded by (``seed``, ``indices[b]``)
        (default indices 0..B-1): give each image its global index and its restoration does not
        depend on the batch it is in (on the CPU byte for byte, through the fixed COMPUTE_BLOCK;
        on CUDA expected, untested: docs/CONTRACTS.md). The global RNG is neither used nor advanced. ``sampler``: which
        sampler of i2sb/samplers/ walks the grid, with its options; cddb reads the measurement y
        off x1 and uses the task's forward operator. ``noise``: a noise source in place of the
        per-image generators (the tiles of one image, i2sb/sample/tiles.py); ``indices`` then
        go unused.
        """
        size = self.options.image_size
        # Another size works when the UNet's downsamplings divide it (restore --keep-size).
        other_size = (
            x1.dim() == 4 and x1.shape[-1] % SIZE_MULTIPLE == x1.shape[-2] % SIZE_MULTIPLE == 0
        )
        if (
            x1.dim() != 4
            or x1.shape[1] != 3
            or (tuple(x1.shape[2:]) != (size, size) and not other_size)
        ):
            raise ValueError(
                f"x1 must be (B, 3, {size}, {size}) for this model (or H, W multiples of "
                f"{SIZE_MULTIPLE}), got {tuple(x1.shape)}"
            )
        steps = nfe_steps(self.options.interval, nfe)
        counter = [0]
        _synchronize(self.device)
        start = time.perf_counter()
        problem = sampler.problem(task_spec(self.options.task))
        if problem:
            raise ValueError(problem)
        indices = range(x1.shape[0]) if indices is None else indices
        if len(indices) != x1.shape[0]:
            raise ValueError(f"got {len(indices)} image indices for a batch of {x1.shape[0]}")
        if noise is None:
            noise = samplers.image_noise(seed, indices, self.device)
        x1 = x1.to(self.device, torch.float32)
        mask = None if mask is None else mask.to(self.device, torch.float32)
        options = dataclasses.asdict(sampler.options())
        if sampler.needs_forward_operator:
            options.update(self._data_consistency(x1, mask))
        x1 = fill_hole_with_noise(x1, mask, noise)
        cond = x1 if self.options.cond_x1 else None
        if self.options.add_x1_noise:
            x1 = x1 + noise(x1)
        pred_x0_fn = self.bridge.pred_x0_fn(
            self._network(counter), cond=cond, clip_denoise=clip_denoise
        )
        frames, _ = samplers.sample(
            sampler.name, self.bridge, steps, pred_x0_fn, x1, mask=mask,
            ot_ode=self.options.ot_ode, log_steps=log_steps_for(steps, log_count), noise=noise,
            **options,
        )  # fmt: skip
        _synchronize(self.device)
        seconds = time.perf_counter() - start
        return BatchResult(frames[:, 0], frames, seconds, counter[0])
