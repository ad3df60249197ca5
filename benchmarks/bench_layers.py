"""CPU speed of the layer choices in i2sb/network/layers.py, each against the alternative it replaced.

Each case times the shipped way and the alternative in one process, alternating them run by run so
a busy machine slows both alike, and prints the median times and their ratio (alternative / ours):

- ``groupnorm`` (GroupNorm32): the small preset's forward and forward+backward under bf16 autocast,
  channels_last, with every GroupNorm as the float32 copy against PyTorch's mixed-type kernel (bf16
  input, float32 weights and statistics). NarrowGroupNorm is off in both, so only the forward
  kernel differs.
- ``narrow-groupnorm`` (NarrowGroupNorm): forward+backward of one GroupNorm(32) of a channels_last
  float32 (8, C, 64, 64) input, PyTorch's kernel against NarrowGroupNorm, C = 32, 64 (1-2 channels
  a group, where it is used) and 128 (4 a group, where it is not: MAX_GROUP_WIDTH).
- ``small-map-conv`` (Conv2d): forward+backward of one 1024-channel 3x3 convolution in training
  under bf16 autocast, float32 (the rule) against bf16 (autocast's casts included), at 2x2 and 4x4
  maps of 1 and 2 images.
- ``adm256-step``: forward+backward of the adm256 UNet fed 64 px under bf16 autocast in training,
  with the small-map rule against without it (DIRECT_FP32_POSITIONS = 0). Needs ~10 GB and minutes.

    .venv/bin/python benchmarks/bench_layers.py --case narrow-groupnorm --threads 1
    .venv/bin/python benchmarks/bench_layers.py --case small-map-conv --threads 2
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F

from i2sb.network import PRESETS, create_unet, layers
from i2sb.network.layers import Conv2d, GroupNorm32, NarrowGroupNorm

Timed = dict[str, Callable[[], None]]  # variant name -> one run


def medians(variants: Timed, repeats: int) -> dict[str, float]:
    """Median seconds of each variant, the variants alternating in every round (round 0 warms up)."""
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for round_index in range(repeats + 1):
        for name, run in variants.items():
            start = time.perf_counter()
            run()
            if round_index:
                samples[name].append(time.perf_counter() - start)
    return {name: sorted(times)[len(times) // 2] for name, times in samples.items()}


def report(what: str, times: dict[str, float], ours: str, other: str) -> None:
    shown = "  ".join(f"{name} {seconds * 1e3:8.1f} ms" for name, seconds in times.items())
    print(f"{what:38s} {shown}  {other}/{ours} {times[other] / times[ours]:.2f}x")


def _float32_copy(self: GroupNorm32, x: torch.Tensor) -> torch.Tensor:
    weight, bias = self.weight.float(), self.bias.float()
    return F.group_norm(x.float(), self.num_groups, weight, bias, self.eps).to(x.dtype)


def _mixed_type(self: GroupNorm32, x: torch.Tensor) -> torch.Tensor:
    with torch.autocast("cpu", enabled=False):  # autocast would cast the input to float32 first
        return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)


@contextlib.contextmanager
def group_norm_forward(forward: Callable) -> Iterator[None]:
    saved = GroupNorm32.forward
    GroupNorm32.forward = forward
    try:
        yield
    finally:
        GroupNorm32.forward = saved


def case_groupnorm(args: argparse.Namespace) -> None:
    torch.manual_seed(0)
    unet = create_unet(**PRESETS["small"]).to(memory_format=torch.channels_last)
    size = PRESETS["small"]["image_size"]
    x = torch.randn(args.batch, 3, size, size).to(memory_format=torch.channels_last)
    t = torch.rand(args.batch) * 1000

    def run(forward: Callable, backward: bool) -> Callable[[], None]:
        def once() -> None:
            unet.zero_grad(set_to_none=True)
            with group_norm_forward(forward), torch.autocast("cpu", torch.bfloat16):
                with torch.set_grad_enabled(backward):
                    out = unet(x, t)
            if backward:
                out.float().square().mean().backward()

        return once

    print(f"small preset, {size} px, batch {args.batch}, channels_last, bf16 autocast")
    for what, backward in (("forward", False), ("forward+backward", True)):
        variants = {
            "float32-copy": run(_float32_copy, backward),
            "mixed": run(_mixed_type, backward),
        }
        report(what, medians(variants, args.repeats), "float32-copy", "mixed")


def _norm_run(norm: Callable, leaves: list[torch.Tensor], grad: torch.Tensor) -> Callable[[], None]:
    def once() -> None:
        for leaf in leaves:
            leaf.grad = None
        norm(*leaves, 32, 1e-5).backward(grad)

    return once


def _pytorch_norm(x, weight, bias, groups, eps):  # noqa: ANN001, ANN202 (NarrowGroupNorm's order)
    return F.group_norm(x, groups, weight, bias, eps)


def case_narrow_groupnorm(args: argparse.Namespace) -> None:
    print("GroupNorm(32) forward+backward, (8, C, 64, 64) channels_last float32")
    for channels in (32, 64, 128):
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(8, channels, 64, 64, generator=gen).to(memory_format=torch.channels_last)
        leaves = [t.requires_grad_() for t in (x, torch.randn(channels), torch.randn(channels))]
        grad = torch.randn(x.shape, generator=gen).to(memory_format=torch.channels_last)
        variants = {
            "narrow": _norm_run(NarrowGroupNorm.apply, leaves, grad),
            "pytorch": _norm_run(_pytorch_norm, leaves, grad),
        }
        report(f"C={channels} ({channels // 32} a group)", medians(variants, args.repeats),
               "narrow", "pytorch")  # fmt: skip


def _conv_run(conv: torch.nn.Module, x: torch.Tensor) -> Callable[[], None]:
    def once() -> None:
        conv.zero_grad(set_to_none=True)
        with torch.autocast("cpu", torch.bfloat16):
            out = conv(x)
        out.float().sum().backward()

    return once


def case_small_map_conv(args: argparse.Namespace) -> None:
    print("1024-channel 3x3 convolution, training, bf16 autocast, forward+backward")
    torch.manual_seed(0)
    ours = Conv2d(1024, 1024, 3, padding=1).train()
    plain = torch.nn.Conv2d(1024, 1024, 3, padding=1).train()
    plain.load_state_dict(ours.state_dict())
    for images, side in ((1, 2), (1, 4), (2, 4)):
        x = torch.randn(images, 1024, side, side).to(memory_format=torch.channels_last)
        variants = {"float32": _conv_run(ours, x), "bf16": _conv_run(plain, x)}
        report(f"{images} x {side}x{side}", medians(variants, args.repeats), "float32", "bf16")


def case_adm256_step(args: argparse.Namespace) -> None:
    torch.manual_seed(0)
    unet = create_unet(**PRESETS["adm256"]).to(memory_format=torch.channels_last).train()
    x = torch.randn(args.batch, 3, 64, 64).to(memory_format=torch.channels_last)
    t = torch.rand(args.batch) * 1000
    rule = layers.DIRECT_FP32_POSITIONS

    def run(positions: int) -> Callable[[], None]:
        def once() -> None:
            layers.DIRECT_FP32_POSITIONS = positions
            try:
                unet.zero_grad(set_to_none=True)
                with torch.autocast("cpu", torch.bfloat16):
                    out = unet(x, t)
                out.float().square().mean().backward()
            finally:
                layers.DIRECT_FP32_POSITIONS = rule

        return once

    print(f"adm256 fed 64 px, batch {args.batch}, training, bf16 autocast, forward+backward")
    variants = {"rule": run(rule), "no-rule": run(0)}
    report("step", medians(variants, args.repeats), "rule", "no-rule")


CASES = {
    "groupnorm": case_groupnorm,
    "narrow-groupnorm": case_narrow_groupnorm,
    "small-map-conv": case_small_map_conv,
    "adm256-step": case_adm256_step,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=tuple(CASES), required=True)
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch default)")
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds (median)")
    parser.add_argument("--batch", type=int, default=8, help="images (groupnorm, adm256-step)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"threads={torch.get_num_threads()} repeats={args.repeats} (median, interleaved)")
    CASES[args.case](args)


if __name__ == "__main__":
    main()
