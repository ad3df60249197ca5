"""JPEG compression simulated in torch (spec §5), differentiable-free but batched and exact.

The pipeline is the one the published checkpoints were trained with: JFIF RGB->YCbCr, chroma
subsampled by keeping every 2nd pixel (no averaging), 8x8 orthonormal DCT, IJG tables scaled for
the quality, round half to even, and the inverse path with chroma repeated 2x2 and no clamp.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from i2sb.corruption.base import Corruption

BLOCK = 8

# The example tables of the JPEG standard (ITU T.81 Annex K), as used by IJG libjpeg.
LUMA_TABLE = (
    (16, 11, 10, 16, 24, 40, 51, 61),
    (12, 12, 14, 19, 26, 58, 60, 55),
    (14, 13, 16, 24, 40, 57, 69, 56),
    (14, 17, 22, 29, 51, 87, 80, 62),
    (18, 22, 37, 56, 68, 109, 103, 77),
    (24, 35, 55, 64, 81, 104, 113, 92),
    (49, 64, 78, 87, 103, 121, 120, 101),
    (72, 92, 95, 98, 112, 100, 103, 99),
)
_CHROMA_ROWS = ((17, 18, 24, 47), (18, 21, 26, 66), (24, 26, 56, 99), (47, 66, 99, 99))
CHROMA_TABLE = tuple(
    tuple(_CHROMA_ROWS[r][c] if r < 4 and c < 4 else 99 for c in range(8)) for r in range(8)
)

# JFIF RGB -> YCbCr with the 4-digit coefficients of the reference; chroma gets +128 after it.
RGB_TO_YCBCR = (
    (0.299, 0.587, 0.114),
    (-0.1687, -0.3313, 0.5),
    (0.5, -0.4187, -0.0813),
)


def quantization_tables(quality: int) -> tuple[torch.Tensor, torch.Tensor]:
    """IJG scaling of the luma and chroma tables for ``quality`` in 1..100, each (8, 8) float32.

    Computed in float32 like the reference: s = 5000/q (q < 50) or 200 - 2q, Q = floor((s T + 50)
    / 100) clipped to [1, 255].
    """
    if not 1 <= int(quality) <= 100:
        raise ValueError(f"JPEG quality must be in 1..100, got {quality}")
    scale = 5000 / quality if quality < 50 else 200 - 2 * quality
    tables = []
    for base in (LUMA_TABLE, CHROMA_TABLE):
        table = torch.tensor(base, dtype=torch.float32)
        tables.append(torch.floor((scale * table + 50) / 100).clamp(1, 255))
    return tables[0], tables[1]


def dct_matrix(n: int = BLOCK) -> torch.Tensor:
    """Orthonormal DCT-II matrix D (n, n): coefficients of a block X are D X D^T."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    matrix = np.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2 / n)
    matrix[0] /= math.sqrt(2)
    return torch.from_numpy(matrix)


def _quantize_blocks(plane: torch.Tensor, table: torch.Tensor, dct2: torch.Tensor) -> torch.Tensor:
    """Round-trip (B, C, H, W) level-shifted planes through blockwise DCT quantisation.

    Each 8x8 block is a 64-vector and ``dct2`` = kron(D, D) its 2-D DCT, so the whole plane is
    two plain matrix products (much faster than batches of tiny 8x8 products).
    """
    b, c, h, w = plane.shape
    blocks = plane.reshape(b, c, h // BLOCK, BLOCK, w // BLOCK, BLOCK).transpose(3, 4)
    coefficients = blocks.reshape(-1, BLOCK * BLOCK) @ dct2.T
    quantized = torch.round(coefficients / table.reshape(-1)) * table.reshape(-1)
    restored = (quantized @ dct2).reshape(b, c, h // BLOCK, w // BLOCK, BLOCK, BLOCK)
    return restored.transpose(3, 4).reshape(b, c, h, w)


class JPEG(Corruption):
    """jpeg-<q>: encode and decode at quality q; H and W must be multiples of 16 (8x8 chroma blocks
    after 2x subsampling), as in the reference, which neither pads nor crops."""

    def __init__(self, name: str, image_size: int, quality: int, device="cpu") -> None:
        super().__init__(name, image_size, device)
        if image_size % (2 * BLOCK) != 0:
            raise ValueError(
                f"{name}: image size {image_size} is not a multiple of 16 (JPEG codes 8x8 blocks "
                "of 2x-subsampled chroma)"
            )
        self.quality = int(quality)
        luma, chroma = quantization_tables(self.quality)
        forward = torch.tensor(RGB_TO_YCBCR, dtype=torch.float64)
        self._tables = (luma.to(self.device), chroma.to(self.device))
        dct = dct_matrix()
        self._dct2 = torch.kron(dct, dct).to(self.device)
        self._forward = forward.to(self.device)
        self._inverse = torch.linalg.inv(forward).to(self.device)

    def apply(self, x0, indices, generator):
        dtype = x0.dtype
        dct2 = self._dct2.to(dtype)
        luma_table, chroma_table = (t.to(dtype) for t in self._tables)
        pixels = (x0 + 1) / 2 * 255
        # Level shift: Y - 128, and the chroma +128 offset of JFIF cancels the -128 before the DCT.
        ycc = torch.einsum("ck,bkhw->bchw", self._forward.to(dtype), pixels)
        luma = _quantize_blocks(ycc[:, :1] - 128, luma_table, dct2) + 128
        chroma = _quantize_blocks(ycc[:, 1:, ::2, ::2], chroma_table, dct2)
        chroma = chroma.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
        rgb = torch.einsum("ck,bkhw->bchw", self._inverse.to(dtype), torch.cat([luma, chroma], 1))
        return rgb / 255 * 2 - 1, None


def jpeg_of_task(name: str, image_size: int, device="cpu") -> JPEG:
    """jpeg-<q>: the quality is the number in the task's name."""
    return JPEG(name, image_size, int(name.rsplit("-", 1)[1]), device)
