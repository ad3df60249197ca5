"""4x super-resolution degradations (spec §5): average pooling and bicubic decimation, each
followed by nearest-neighbour upsampling back to the input size (I2SB maps image to image)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from i2sb.corruption.base import Corruption
from i2sb.corruption.svd import low_rank

FACTOR = 4


def _check_divisible(name: str, image_size: int) -> None:
    if image_size % FACTOR != 0 or image_size < 2 * FACTOR:
        raise ValueError(
            f"{name}: image size {image_size} must be a multiple of {FACTOR} and at least "
            f"{2 * FACTOR}"
        )


class PoolSuperResolution(Corruption):
    """sr4x-pool: 4x4 average pooling, then nearest upsampling x4."""

    def __init__(self, name: str, image_size: int, device="cpu") -> None:
        super().__init__(name, image_size, device)
        _check_divisible(name, image_size)

    def apply(self, x0, indices, generator):
        return F.interpolate(self.forward(x0), scale_factor=FACTOR, mode="nearest"), None

    def forward(self, x, mask=None):
        """A: 4x4 average pooling, (B, 3, H, W) -> (B, 3, H/4, W/4)."""
        return F.avg_pool2d(x, FACTOR)

    def measurement(self, x1, mask=None):
        return low_resolution(x1)


def low_resolution(x1: torch.Tensor) -> torch.Tensor:
    """The low-resolution image inside x1: nearest upsampling x4 repeats pixel (i, j) at (4i, 4j)."""
    return x1[..., ::FACTOR, ::FACTOR]


def bicubic_taps(factor: int = FACTOR, a: float = -0.5) -> torch.Tensor:
    """The 4*factor taps of the bicubic (Keys, a=-0.5) kernel at (i - 2 factor + 0.5) / factor.

    Normalised in float64, cast to float32 and normalised again, matching the reference bit for bit.
    """
    x = np.abs((np.arange(4 * factor) - 2 * factor + 0.5) / factor)
    inner = (a + 2) * x**3 - (a + 3) * x**2 + 1
    outer = a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a
    taps = np.where(x <= 1, inner, np.where(x < 2, outer, 0.0))
    taps = torch.from_numpy(taps / taps.sum()).float()
    return taps / taps.sum()


def decimation_matrix(size: int, taps: torch.Tensor, factor: int = FACTOR) -> torch.Tensor:
    """(size // factor, size) float32 matrix: filter with ``taps`` and keep every factor-th sample.

    Output sample r is centred on input pixel r*factor + factor//2; taps falling outside the
    image are reflected about the border (-1 -> 0, size -> size - 1) and added in.
    """
    half = taps.shape[0] // 2
    centres = np.arange(size // factor) * factor + factor // 2
    offsets = np.arange(-half, half)
    columns = centres[:, None] + offsets[None, :]
    columns = np.where(columns < 0, -columns - 1, columns)
    columns = np.where(columns >= size, 2 * size - 1 - columns, columns)
    if columns.min() < 0 or columns.max() >= size:
        raise ValueError(f"image size {size} is too small for a {taps.shape[0]}-tap kernel")
    matrix = np.zeros((size // factor, size), dtype=np.float32)
    rows = np.broadcast_to(np.arange(size // factor)[:, None], columns.shape)
    np.add.at(matrix, (rows, columns), np.broadcast_to(taps.numpy(), columns.shape))
    return torch.from_numpy(matrix)


class BicubicSuperResolution(Corruption):
    """sr4x-bicubic: y = A' X A'^T per channel, A' the thresholded-SVD bicubic decimation matrix,
    then nearest upsampling x4."""

    def __init__(self, name: str, image_size: int, device="cpu") -> None:
        super().__init__(name, image_size, device)
        _check_divisible(name, image_size)
        self._matrix = low_rank(decimation_matrix(image_size, bicubic_taps())).to(self.device)

    def apply(self, x0, indices, generator):
        return F.interpolate(self.forward(x0), scale_factor=FACTOR, mode="nearest"), None

    def forward(self, x, mask=None):
        """A: y = A' X A'^T per channel, (B, 3, H, W) -> (B, 3, H/4, W/4)."""
        matrix = self._matrix.to(x.dtype)
        return matrix @ x @ matrix.T

    def measurement(self, x1, mask=None):
        return low_resolution(x1)
