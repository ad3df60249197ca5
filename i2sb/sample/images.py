"""Pixels in and out: [-1, 1] tensors <-> uint8 arrays, PNG files, trajectory strips and GIFs.

uint8 conversion rounds (``round((x + 1) / 2 * 255)``, clamped), as docs/CONTRACTS.md fixes; the
reference truncates instead, a difference of at most one grey level.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from i2sb.atomic import atomic_path


class NonFiniteImages(ValueError):
    """Images holding NaN or inf: as uint8 they would be black pixels that every metric scores."""


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(..., C, H, W) float in [-1, 1] -> uint8 numpy array of the same shape (rounded, clamped).

    NaN or inf is refused (NonFiniteImages): cast, it became black pixels, written and measured
    as if restored (a network that overflowed in fp16, or a checkpoint with NaN weights).
    """
    values = images.detach().float().cpu()
    broken = ~torch.isfinite(values).reshape(*values.shape[:-3], -1).all(-1)
    if bool(broken.any()):
        raise NonFiniteImages(
            f"{int(broken.sum())} of {broken.numel()} images hold NaN or inf values (the network "
            "overflowed, e.g. in fp16, or its weights hold NaN): sample in fp32 (sample.precision"
            " / --precision fp32) or check the checkpoint"
        )
    scaled = (values + 1.0) / 2.0 * 255.0
    return scaled.round().clamp(0, 255).to(torch.uint8).numpy()


def from_uint8(pixels: np.ndarray) -> torch.Tensor:
    """uint8 (..., C, H, W) -> float32 tensor in [-1, 1]."""
    if pixels.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels, got {pixels.dtype}")
    return torch.from_numpy(pixels.astype(np.float32)) / 255.0 * 2.0 - 1.0


def hwc(pixels: np.ndarray) -> np.ndarray:
    """(C, H, W) -> (H, W, C), the layout PIL expects."""
    return np.ascontiguousarray(np.transpose(pixels, (1, 2, 0)))


def save_png(path: str | Path, pixels: np.ndarray) -> Path:
    """Write a uint8 (3, H, W) image as PNG, atomically."""
    from PIL import Image

    path = Path(path)
    with atomic_path(path) as tmp:
        Image.fromarray(hwc(pixels)).save(tmp, format="PNG")
    return path


def trajectory_rows(degraded: torch.Tensor, frames: torch.Tensor) -> np.ndarray:
    """One row per image: the degraded input, then the logged x_t from noisy to final.

    degraded: (B, C, H, W); frames: (B, L, C, H, W) as i2sb.samplers.sample returns them (index 0 =
    final). Returns uint8 (B, L + 1, C, H, W), left = degraded, right = final.
    """
    if frames.dim() != 5 or degraded.shape != frames[:, 0].shape:
        raise ValueError(
            f"frames must be (B, L, C, H, W) matching degraded {tuple(degraded.shape)}, "
            f"got {tuple(frames.shape)}"
        )
    ordered = torch.cat([degraded.cpu().unsqueeze(1), torch.flip(frames.cpu(), dims=(1,))], dim=1)
    return to_uint8(ordered)


def grid(rows: np.ndarray, pad: int = 2) -> np.ndarray:
    """uint8 (R, K, C, H, W) -> one (C, R*(H+pad)-pad, K*(W+pad)-pad) image with white gutters."""
    count, columns, channels, height, width = rows.shape
    out = np.full(
        (channels, count * (height + pad) - pad, columns * (width + pad) - pad), 255, np.uint8
    )
    for r in range(count):
        for k in range(columns):
            top, left = r * (height + pad), k * (width + pad)
            out[:, top : top + height, left : left + width] = rows[r, k]
    return out


def save_trajectory_png(path: str | Path, degraded: torch.Tensor, frames: torch.Tensor) -> Path:
    """trajectory.png: one row per image, left = degraded, right = final restoration."""
    return save_png(path, grid(trajectory_rows(degraded, frames)))


def save_gif(
    path: str | Path, frames: Sequence[np.ndarray], seconds_per_frame: float = 0.4
) -> Path:
    """Animate uint8 (3, H, W) frames (looping; the last frame is held twice as long)."""
    from PIL import Image

    if not frames:
        raise ValueError(f"{path}: a GIF needs at least one frame")
    pictures = [Image.fromarray(hwc(frame)) for frame in frames]
    durations = [int(seconds_per_frame * 1000)] * len(pictures)
    durations[-1] *= 2
    path = Path(path)
    with atomic_path(path) as tmp:
        pictures[0].save(
            tmp, format="GIF", save_all=True, append_images=pictures[1:], duration=durations, loop=0
        )
    return path
