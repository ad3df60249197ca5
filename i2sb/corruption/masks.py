"""Free-form inpainting masks: the published bit-packed set, or brush strokes generated offline.

Both are indexable banks: ``bank.masks(indices, image_size)`` gives (B, 1, S, S) uint8 masks with
1 in the hole, mask i being a fixed function of i (evaluation uses mask i for image i).
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from i2sb.downloads import sha256_of

PUBLISHED_COUNT = 10_000
PUBLISHED_SIZE = 256
PUBLISHED_KEYS = {(0.1, 0.2): "10-20% freeform", (0.2, 0.3): "20-30% freeform"}


def _resize_nearest(masks: torch.Tensor, image_size: int) -> torch.Tensor:
    """The reference only runs at 256 px; other sizes take nearest-neighbour samples."""
    if masks.shape[-1] == image_size:
        return masks
    return F.interpolate(masks.float(), size=(image_size, image_size), mode="nearest").to(
        torch.uint8
    )


def _read_npz_array(path: Path, key: str) -> np.ndarray:
    """``key`` of the npz at ``path``, flattened; a clear error for anything that is not an npz."""
    reason = "a plain .npy array, not an .npz archive"
    try:
        npz = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        npz, reason = None, str(err)
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise ValueError(
            f"{path} is not a readable npz of masks ({reason}); if it came from Google Drive, "
            "its confirmation page may have been saved instead: download the file by hand"
        )
    with npz:
        if key not in npz.files:
            raise KeyError(f"{path}: no key {key!r}; it holds {sorted(npz.files)}")
        return npz[key].reshape(-1)


class PublishedMasks:
    """Masks of one hole-ratio range from Palette's imagenet_freeform_masks.npz.

    Each key holds np.packbits of a (10000, 256, 256) 0/1 array flattened; one mask is exactly
    8192 bytes, so masks are unpacked one by one on demand (82 MB kept instead of 655 MB). The
    count is read from the array's length, so a smaller file of the same layout works too.
    """

    def __init__(self, path: str | Path, key: str) -> None:
        self.path = Path(path)
        self.key = key
        packed = _read_npz_array(self.path, key)
        per_mask = PUBLISHED_SIZE * PUBLISHED_SIZE // 8
        if packed.dtype != np.uint8 or packed.size < per_mask:
            raise ValueError(
                f"{self.path}[{key!r}]: expected bit-packed uint8 256x256 masks ({per_mask} bytes "
                f"each; the published file has {PUBLISHED_COUNT}), got {packed.size} {packed.dtype}"
            )
        self.count = packed.size // per_mask
        self._packed = packed[: self.count * per_mask].reshape(self.count, per_mask)
        self.description = f"published npz {self.path} key={key!r} sha256={sha256_of(self.path)}"

    def masks(self, indices: np.ndarray, image_size: int) -> torch.Tensor:
        indices = np.asarray(indices, dtype=np.int64)
        if indices.size and (indices.min() < 0 or indices.max() >= self.count):
            raise ValueError(
                f"mask index out of range: {self.path} holds {self.count} masks "
                f"(0..{self.count - 1}), got {indices.min()}..{indices.max()}"
            )
        bits = np.unpackbits(self._packed[indices], axis=1)
        masks = torch.from_numpy(bits.reshape(-1, 1, PUBLISHED_SIZE, PUBLISHED_SIZE))
        return _resize_nearest(masks, image_size)


class GeneratedMasks:
    """Brush-stroke masks drawn offline, hole ratio uniform in [low, high].

    Mask i depends on (seed, i) only (for a given range and size): a target ratio is drawn uniformly in the range, thick
    polyline strokes with round joints are painted until the hole reaches it, and a segment that
    would push the hole above ``high`` is shortened (and finally skipped, which is only allowed
    once the hole is already >= ``low``), so every mask lands inside the range.
    """

    count = None  # unbounded: any non-negative index names a mask

    def __init__(self, ratio_range: tuple[float, float], seed: int = 0) -> None:
        self.low, self.high = ratio_range
        self.seed = int(seed)
        self.description = (
            f"generated brush strokes seed={self.seed} hole ratio in [{self.low}, {self.high}]"
        )

    def masks(self, indices: np.ndarray, image_size: int) -> torch.Tensor:
        if image_size < 32:
            raise ValueError(
                f"generated free-form masks need an image size >= 32, got {image_size}"
            )
        stack = [self.mask(int(i), image_size) for i in np.asarray(indices).reshape(-1)]
        return torch.from_numpy(np.stack(stack)[:, None])

    def mask(self, index: int, size: int) -> np.ndarray:
        """(size, size) uint8 mask number ``index``."""
        if index < 0:
            raise ValueError(f"mask index must be >= 0, got {index}")
        # The range joins the seed so the two tasks' mask sets are independent, not nested.
        rng = np.random.default_rng(
            [self.seed, index, round(self.low * 100), round(self.high * 100)]
        )
        target = rng.uniform(self.low, self.high) * size * size
        canvas = Image.new("L", (size, size), 0)
        covered, full = 0, False
        while covered < target and not full:
            canvas, covered, full = self._stroke(canvas, covered, target, rng)
        return (np.asarray(canvas) > 0).astype(np.uint8)

    def _stroke(
        self, canvas: Image.Image, covered: int, target: float, rng: np.random.Generator
    ) -> tuple[Image.Image, int, bool]:
        """Paint one polyline stroke; returns the canvas, its hole area, and whether it is full
        (no segment fits under ``high`` any more while the hole is already >= ``low``)."""
        size = canvas.size[0]
        limit = self.high * size * size
        width = max(2, int(rng.uniform(0.03, 0.08) * size))
        point = rng.uniform(0, size, 2)
        angle = rng.uniform(0, 2 * math.pi)
        for _ in range(int(rng.integers(3, 9))):
            angle += rng.uniform(-math.pi / 3, math.pi / 3)
            length = rng.uniform(0.05, 0.2) * size
            while True:
                step = length * np.array([math.cos(angle), math.sin(angle)])
                end = np.clip(point + step, 0, size)
                trial = canvas.copy()
                _segment(ImageDraw.Draw(trial), point, end, width)
                area = int(np.count_nonzero(np.asarray(trial)))
                if area <= limit or length < 1:
                    break
                length /= 2
            if area > limit:
                if covered >= self.low * size * size:
                    return canvas, covered, True
                width = max(1, width // 2)  # below the range yet a dot overflows: thinner brush
                continue
            canvas, covered, point = trial, area, end
            if covered >= target:
                break
        return canvas, covered, False


def _segment(draw: ImageDraw.ImageDraw, start: np.ndarray, end: np.ndarray, width: int) -> None:
    """A thick line with round caps, so consecutive segments join without gaps."""
    draw.line([tuple(start), tuple(end)], fill=255, width=width)
    radius = width / 2
    for x, y in (start, end):
        draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=255)
