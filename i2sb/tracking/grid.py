"""The sample grid logged with each run: one row per image, columns clean | degraded | restored."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from i2sb.sample.images import grid, save_png
from i2sb.tracking.inputs import read_head

GRID_IMAGES = 8
PAD = 2


def grid_columns(samples: str | Path, count: int = GRID_IMAGES) -> list[tuple[str, np.ndarray]]:
    """The first ``count`` images of each column as uint8 (n, 3, H, W); ``degraded`` only if saved."""
    samples = Path(samples)
    columns = []
    for key in ("clean", "degraded", "recon"):
        images = read_head(samples, key, count)
        if images is None:
            if key == "degraded":
                continue  # optional in the samples contract
            raise KeyError(f"samples file {samples} has no array {key!r}")
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(
                f"samples file {samples}: {key!r} is {images.dtype} {images.shape}, "
                "expected uint8 (N, 3, H, W)"
            )
        columns.append((key, images))
    shapes = {images.shape for _, images in columns}
    if len(shapes) != 1:
        raise ValueError(f"samples file {samples}: arrays differ in shape: {sorted(shapes)}")
    return columns


def write_sample_grid(samples: str | Path, out: str | Path, count: int = GRID_IMAGES) -> list[str]:
    """Write the grid PNG; returns the column names, left to right."""
    columns = grid_columns(samples, count)
    save_png(out, grid(np.stack([images for _, images in columns], axis=1), pad=PAD))
    return [name for name, _ in columns]
