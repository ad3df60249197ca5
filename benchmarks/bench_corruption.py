"""Corruption benchmark: images/s of each operator (CPU by default), against the reference's route.

For the four operators where NVlabs/I2SB (after DDRM) computes the same result another way, a
baseline written here in that style runs in the same process on the same batch and must agree with
ours to 1e-4: JPEG through nn.Unfold/nn.Fold and a DCT applied as a linear layer per block row; 4x
pooling through per-patch SVD factors; bicubic and blur through the full n x n V^T X V transform with
flattened, permuted coefficient vectors. Prints a table with ratios; never gates CI.

    .venv/bin/python benchmarks/bench_corruption.py --size 256 --batch 16
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from i2sb.corruption import CORRUPTION_NAMES, build_corruption
from i2sb.corruption.blur import band_matrix, gaussian_taps, uniform_taps
from i2sb.corruption.jpeg import RGB_TO_YCBCR, dct_matrix, quantization_tables
from i2sb.corruption.superres import bicubic_taps, decimation_matrix
from i2sb.corruption.svd import thresholded_svd


def jpeg_unfold_fold(quality: int) -> Callable[[torch.Tensor], torch.Tensor]:
    luma_table, chroma_table = quantization_tables(quality)
    dct = dct_matrix().float()
    forward = torch.tensor(RGB_TO_YCBCR)
    inverse = torch.linalg.inv(forward.double()).float()

    def code(plane: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        b, c, h, w = plane.shape
        cols = F.unfold(plane, 8, stride=8).transpose(1, 2).reshape(-1, 8, 8)
        coeff = F.linear(F.linear(cols, dct).transpose(1, 2), dct).transpose(1, 2)
        coeff = torch.round(coeff / table) * table
        back = F.linear(F.linear(coeff, dct.T).transpose(1, 2), dct.T).transpose(1, 2)
        return F.fold(back.reshape(b, -1, c * 64).transpose(1, 2), (h, w), 8, stride=8)

    def run(x: torch.Tensor) -> torch.Tensor:
        ycc = torch.tensordot(x / 2 * 255 + 127.5, forward, dims=([1], [1])).permute(0, 3, 1, 2)
        luma = code(ycc[:, :1] - 128, luma_table) + 128
        chroma = code(ycc[:, 1:, ::2, ::2], chroma_table)
        up = torch.zeros(x.shape[0], 2, x.shape[2], x.shape[3])
        for dy in (0, 1):
            for dx in (0, 1):
                up[:, :, dy::2, dx::2] = chroma
        rgb = torch.tensordot(torch.cat([luma, up], 1), inverse, dims=([1], [1]))
        return rgb.permute(0, 3, 1, 2) / 255 * 2 - 1

    return run


def pool_by_patch_svd(x: torch.Tensor) -> torch.Tensor:
    u, s, v = torch.linalg.svd(torch.full((1, 16), 1 / 16), full_matrices=True)
    b, c, h, w = x.shape
    patches = x.reshape(b, c, h // 4, 4, w // 4, 4).permute(0, 1, 2, 4, 3, 5).reshape(-1, 16, 1)
    first = (v @ patches)[:, 0, 0]  # torch.linalg.svd gives V^T as its third factor
    low = (u[0, 0] * s[0] * first).reshape(b, c, h // 4, w // 4)
    return F.interpolate(low, scale_factor=4, mode="nearest")


def bicubic_by_full_svd(size: int) -> Callable[[torch.Tensor], torch.Tensor]:
    u, s, v = thresholded_svd(decimation_matrix(size, bicubic_taps()))
    small = s.shape[0]
    scales = torch.outer(s, s)

    def run(x: torch.Tensor) -> torch.Tensor:
        coeff = v.T @ x @ v  # the full size x size transform, of which only a corner is kept
        low = u @ (scales * coeff[..., :small, :small]) @ u.T
        return F.interpolate(low, scale_factor=4, mode="nearest")

    return run


def blur_by_flat_vectors(size: int, taps: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    u, s, v = thresholded_svd(band_matrix(size, taps))
    ranked, order = torch.outer(s, s).reshape(-1).sort(descending=True)
    repeated = ranked.repeat(3)

    def run(x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        coeff = (v.T @ ((x + 1) / 2) @ v).reshape(b, 3, -1)[:, :, order].permute(0, 2, 1)
        scaled = (repeated * coeff.reshape(b, -1)).reshape(b, -1, 3)
        unordered = torch.zeros_like(scaled)
        unordered[:, order, :] = scaled
        z = unordered.permute(0, 2, 1).reshape(b, 3, size, size)
        return (u @ z @ u.T) * 2 - 1

    return run


def images_per_s(
    functions: list[Callable[[torch.Tensor], object]], x: torch.Tensor, min_s: float
) -> list[float]:
    """Median images/s of each function, timed in alternation so that load from other processes
    on the machine hits them alike."""
    for fn in functions:
        fn(x)  # warm-up
    rates: list[list[float]] = [[] for _ in functions]
    start = time.perf_counter()
    while time.perf_counter() - start < min_s * len(functions) or len(rates[0]) < 5:
        for fn, rate in zip(functions, rates):
            tick = time.perf_counter()
            fn(x)
            if x.is_cuda:
                torch.cuda.synchronize()
            rate.append(x.shape[0] / (time.perf_counter() - tick))
    return [statistics.median(rate) for rate in rates]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=2.0, help="minimum timing per operator")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.manual_seed(0)
    x0 = torch.rand(args.batch, 3, args.size, args.size) * 2 - 1
    baselines = {
        "jpeg-5": jpeg_unfold_fold(5),
        "jpeg-10": jpeg_unfold_fold(10),
        "sr4x-pool": pool_by_patch_svd,
        "sr4x-bicubic": bicubic_by_full_svd(args.size),
        "blur-uni": blur_by_flat_vectors(args.size, uniform_taps()),
        "blur-gauss": blur_by_flat_vectors(args.size, gaussian_taps()),
    }
    print(
        f"{args.batch} images of {args.size} px, {torch.get_num_threads()} threads, {args.device}"
    )
    print(f"{'operator':<22}{'ours img/s':>12}{'reference-style img/s':>24}{'ratio':>8}")
    for name in CORRUPTION_NAMES:
        operator = build_corruption(name, args.size, args.device, mask_source="generated")
        x = x0.to(args.device)
        indices = torch.arange(args.batch, device=args.device)
        ours_fn = functools.partial(operator, indices=indices)
        baseline = baselines.get(name) if args.device == "cpu" else None
        if baseline is None:
            (ours,) = images_per_s([ours_fn], x, args.seconds)
            print(f"{name:<22}{ours:>12.1f}{'-':>24}{'-':>8}")
            continue
        error = (baseline(x0) - operator(x0)[0]).abs().max().item()
        if error > 1e-4:
            raise RuntimeError(f"{name}: the baseline disagrees with ours by {error:.2e}")
        ours, theirs = images_per_s([ours_fn, baseline], x, args.seconds)
        print(f"{name:<22}{ours:>12.1f}{theirs:>24.1f}{ours / theirs:>7.2f}x")


if __name__ == "__main__":
    main()
