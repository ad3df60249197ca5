"""Overlapping tiles at the network's size, blended back with a smooth window (``restore`` at any size).

An image larger than the network's size S is cut into S x S tiles that overlap by about
``overlap`` pixels, spread evenly so the last tile ends at the image's edge. Each tile is restored
on its own and the results are blended: inside an overlap the two tiles' weights are complementary
raised-cosine ramps (they sum to 1, and never reach 0), and the sum of weighted tiles is divided
by the summed weights, so no step shows where one tile hands over to the next. A tile side that
lies on the image's border is not tapered: an image of exactly one tile is that tile, unchanged.

Noise: every tile of an image draws from that image's own generator (seeded by (seed, image
index), as untiled sampling does). Each draw is a noise field the size of the whole (padded)
image, and a tile takes the window at its position. Tiles of one batch share the fields, and a
tile's noise depends only on where it lies, never on which or how many tiles share its batch; in
an overlap, neighbouring tiles even see the same noise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from i2sb import samplers
from i2sb.bridge import Noise


@dataclass(frozen=True)
class Tile:
    """A size x size window at (top, left) of the image; (row, col) its place in the grid."""

    top: int
    left: int
    row: int
    col: int


def tile_starts(length: int, size: int, overlap: int) -> list[int]:
    """Evenly spread starts of ``size``-long tiles covering ``length`` with >= ``overlap`` shared.

    length < size is one tile (the caller pads the image to the network's size first).
    """
    if not 0 <= overlap < size:
        raise ValueError(f"--tile-overlap must be in [0, {size}) pixels, got {overlap}")
    if length <= size:
        return [0]
    count = 1 + math.ceil((length - size) / (size - overlap))
    return [k * (length - size) // (count - 1) for k in range(count)]


def tile_grid(height: int, width: int, size: int, overlap: int) -> list[Tile]:
    """Tiles in raster order (row by row): the order they are restored and blended in."""
    rows, cols = tile_starts(height, size, overlap), tile_starts(width, size, overlap)
    return [Tile(top, left, r, c) for r, top in enumerate(rows) for c, left in enumerate(cols)]


def _ramp(length: int) -> torch.Tensor:
    """Raised cosine rising over ``length`` pixels, strictly inside (0, 1), float64.

    Sampled at pixel centres, so ramp(j) + ramp(length - 1 - j) == 1: two tiles that overlap by
    ``length`` pixels get weights summing to one there.
    """
    centres = (torch.arange(length, dtype=torch.float64) + 0.5) / length
    return 0.5 - 0.5 * torch.cos(math.pi * centres)


def axis_weights(starts: Sequence[int], index: int, size: int) -> torch.Tensor:
    """(size,) float64 weights of tile ``index`` along one axis: ramps over its overlaps only."""
    weights = torch.ones(size, dtype=torch.float64)
    if index > 0:
        shared = starts[index - 1] + size - starts[index]
        weights[:shared] *= _ramp(shared)
    if index < len(starts) - 1:
        shared = starts[index] + size - starts[index + 1]
        weights[size - shared :] *= _ramp(shared).flip(0)
    return weights


class Blend:
    """Weighted sum of tiles over a (..., H, W) canvas; ``result()`` divides by the summed weights.

    Tiles must be added in one fixed order (tile_grid's): float addition is not associative, and
    the same order keeps the result byte-identical however the tiles were batched.
    """

    def __init__(self, shape: Sequence[int], size: int, overlap: int) -> None:
        *_, height, width = shape
        self.size = size
        self.rows = tile_starts(height, size, overlap)
        self.cols = tile_starts(width, size, overlap)
        self.total = torch.zeros(tuple(shape), dtype=torch.float64)
        self.weight = torch.zeros((height, width), dtype=torch.float64)

    def add(self, tile: Tile, values: torch.Tensor) -> None:
        """values: (..., size, size), the restored tile (leading dims as the canvas's)."""
        window = torch.outer(
            axis_weights(self.rows, tile.row, self.size),
            axis_weights(self.cols, tile.col, self.size),
        )
        rows = slice(tile.top, tile.top + self.size)
        cols = slice(tile.left, tile.left + self.size)
        self.total[..., rows, cols] += values.to(torch.float64) * window
        self.weight[rows, cols] += window

    def result(self) -> torch.Tensor:
        """The blended canvas, float32; every pixel is covered by at least one tile."""
        return (self.total / self.weight).to(torch.float32)


def crop_tiles(canvas: torch.Tensor, tiles: Sequence[Tile], size: int) -> torch.Tensor:
    """(C, H, W) -> (len(tiles), C, size, size) windows."""
    return torch.stack(
        [canvas[:, t.top : t.top + size, t.left : t.left + size] for t in tiles]
    ).contiguous()


def tile_noise(
    seed: int,
    image_index: int,
    tiles: Sequence[Tile],
    canvas: tuple[int, int],
    size: int,
    device: str | torch.device = "cpu",
) -> Noise:
    """``noise(like)`` for a batch of ``tiles`` of image ``image_index``: row i is tile i's window
    of a (C, H, W) field drawn from the image's own generator (samplers.image_seed).

    Every batch of the image starts a fresh generator with the same seed and the samplers draw
    the same number of fields for every batch, so field k is the same for all tiles. With one
    tile of the network's size, the draws are exactly untiled sampling's.
    """
    height, width = canvas
    generator = torch.Generator(device).manual_seed(samplers.image_seed(seed, image_index))

    def noise(like: torch.Tensor) -> torch.Tensor:
        if like.shape[0] != len(tiles) or tuple(like.shape[-2:]) != (size, size):
            raise ValueError(
                f"noise for {len(tiles)} tiles of {size}x{size} asked for {tuple(like.shape)}"
            )
        field = torch.randn(
            (like.shape[1], height, width),
            generator=generator,
            device=generator.device,
            dtype=like.dtype,
        )
        return crop_tiles(field, tiles, size).to(like.device)

    return noise
