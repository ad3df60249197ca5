"""Inpainting degradations (spec §5): the hole is filled with white, x1 = x0 (1 - m) + m."""

from __future__ import annotations

import numpy as np
import torch

from i2sb.config.choices import MASK_SOURCES
from i2sb.corruption.base import Corruption
from i2sb.corruption.masks import PUBLISHED_KEYS, GeneratedMasks, PublishedMasks
from i2sb.downloads import fetch, locate
from i2sb.tasks import task_spec

_TRAINING_INDEX_RANGE = 2**62  # random draws for generated masks: practically never repeat


def center_mask(image_size: int) -> torch.Tensor:
    """(1, 1, S, S) float mask with 1 in the central (S/2) x (S/2) square."""
    mask = torch.zeros(1, 1, image_size, image_size)
    start, side = image_size // 4, image_size // 2
    mask[..., start : start + side, start : start + side] = 1
    return mask


class Inpainting(Corruption):
    """What the inpainting tasks share: A keeps the known pixels, A(x) = x (1 - m)."""

    def _mask_for(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        if mask is None:
            raise ValueError(f"{self.name}: the forward operator needs the batch's mask")
        return mask.to(x.dtype)

    def forward(self, x, mask=None):
        return x * (1 - self._mask_for(x, mask))

    def measurement(self, x1, mask=None):
        return self.forward(x1, mask)  # x1 (1 - m) = x0 (1 - m) for a 0/1 mask


class CenterInpainting(Inpainting):
    """inpaint-center: a fixed central hole; ``indices`` are ignored."""

    def __init__(self, name: str, image_size: int, device="cpu") -> None:
        super().__init__(name, image_size, device)
        self._mask = center_mask(image_size).to(self.device)

    def apply(self, x0, indices, generator):
        mask = self._mask.to(x0.dtype).expand(x0.shape[0], -1, -1, -1)
        return x0 * (1 - mask) + mask, mask

    def _mask_for(self, x, mask):
        return (self._mask if mask is None else mask).to(x.dtype)


def open_mask_bank(
    ratio_range: tuple[float, float],
    mask_source: str = "auto",
    masks_path: str = "",
    cache_dir: str = "",
    seed: int = 0,
) -> PublishedMasks | GeneratedMasks:
    """Pick the free-form mask bank for ``mask_source``.

    auto: the published file if one is pre-placed (``masks_path``, $I2SB_FREEFORM_MASKS) or cached,
    else generated masks; it never starts a download. published: the file, downloaded if needed
    (an offline machine gets a clear error). generated: brush strokes from ``seed``.
    """
    if mask_source not in MASK_SOURCES:
        raise ValueError(f"mask_source must be one of {MASK_SOURCES}, got {mask_source!r}")
    key = PUBLISHED_KEYS[ratio_range]
    if mask_source == "generated":
        return GeneratedMasks(ratio_range, seed)
    if mask_source == "published":
        return PublishedMasks(fetch("freeform_masks", masks_path, cache_dir), key)
    found = locate("freeform_masks", masks_path, cache_dir)
    return GeneratedMasks(ratio_range, seed) if found is None else PublishedMasks(found, key)


class FreeformInpainting(Inpainting):
    """inpaint-freeform1020 / 2030: mask i for image i when ``indices`` are given (evaluation),
    a random mask per image otherwise (training; drawn from ``generator`` or torch's global RNG)."""

    def __init__(
        self, name: str, image_size: int, bank: PublishedMasks | GeneratedMasks, device="cpu"
    ) -> None:
        super().__init__(name, image_size, device)
        self.bank = bank
        self.mask_source = bank.description

    def apply(self, x0, indices, generator):
        batch = x0.shape[0]
        if indices is None:
            high = self.bank.count or _TRAINING_INDEX_RANGE
            chosen = torch.randint(high, (batch,), generator=generator).numpy()
        else:
            chosen = torch.as_tensor(indices).reshape(-1).cpu().numpy().astype(np.int64)
            if chosen.shape[0] != batch:
                raise ValueError(
                    f"{self.name}: got {chosen.shape[0]} indices for a batch of {batch} images"
                )
        mask = self.bank.masks(chosen, self.image_size).to(x0.device, x0.dtype)
        return x0 * (1 - mask) + mask, mask


def freeform_inpainting(name: str, image_size: int, device="cpu", **options) -> FreeformInpainting:
    """inpaint-freeform*: the task row's hole_ratio picks the masks; ``options`` (mask_source,
    masks_path, cache_dir, seed) as :func:`open_mask_bank`."""
    bank = open_mask_bank(task_spec(name).hole_ratio, **options)
    return FreeformInpainting(name, image_size, bank, device)
