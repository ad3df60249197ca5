"""Name -> operator: the one place that knows which class builds which task's degradation.

Names are looked up exactly (``i2sb.tasks.task_spec``); adding a corruption means one entry here
and one module beside this one, nothing in the trainer or sampler.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from i2sb.corruption.base import Corruption
from i2sb.corruption.blur import Blur, gaussian_taps, uniform_taps
from i2sb.corruption.inpaint import CenterInpainting, FreeformInpainting, open_mask_bank
from i2sb.corruption.jpeg import JPEG
from i2sb.corruption.superres import BicubicSuperResolution, PoolSuperResolution
from i2sb.tasks import TASKS, task_spec

Builder = Callable[..., Corruption]


# Hole-ratio ranges of the free-form tasks, from the task table (the one source of truth).
FREEFORM_RANGES: dict[str, tuple[float, float]] = {
    name: spec.hole_ratio for name, spec in TASKS.items() if spec.hole_ratio is not None
}
FREEFORM_OPTIONS = ("mask_source", "masks_path", "cache_dir", "seed")


def _freeform(name: str, image_size: int, device: torch.device, **options: Any) -> Corruption:
    bank = open_mask_bank(FREEFORM_RANGES[name], **options)
    return FreeformInpainting(name, image_size, bank, device)


BUILDERS: dict[str, Builder] = {
    "sr4x-pool": PoolSuperResolution,
    "sr4x-bicubic": BicubicSuperResolution,
    "blur-uni": lambda name, size, device: Blur(name, size, uniform_taps(), device),
    "blur-gauss": lambda name, size, device: Blur(name, size, gaussian_taps(), device),
    "inpaint-center": CenterInpainting,
    "inpaint-freeform1020": _freeform,
    "inpaint-freeform2030": _freeform,
}
# Every task row with a corruption, in the task table's order (a jpeg-<q> row builds from its name).
CORRUPTION_NAMES: tuple[str, ...] = tuple(
    name for name, spec in TASKS.items() if spec.family == "jpeg" or name in BUILDERS
)


def build_corruption(
    name: str, image_size: int, device: str | torch.device = "cpu", **options: Any
) -> Corruption:
    """Build the degradation of task ``name`` (any of CORRUPTION_NAMES, or jpeg-<q>, q in 1..100).

    ``options``: mask_source ("auto" | "published" | "generated"), masks_path, cache_dir, seed.
    Only free-form inpainting uses them; the others accept and ignore them (as they ignore
    ``indices``), so callers can pass one set of options whatever the task.
    """
    try:
        family = task_spec(name).family
    except KeyError:
        family = None
    # A task has a corruption when its family builds one for any quality (jpeg) or it has a
    # builder; "paired" (user pairs, no operator) and any task row without a builder are refused.
    if family != "jpeg" and name not in BUILDERS:
        valid = ", ".join([*CORRUPTION_NAMES, "jpeg-<q> (q in 1..100)"])
        raise KeyError(f"unknown corruption {name!r}; valid names: {valid}")
    unexpected = sorted(set(options) - set(FREEFORM_OPTIONS))
    if unexpected:
        raise ValueError(f"unknown option(s) {unexpected} for {name}; accepted: {FREEFORM_OPTIONS}")
    if not isinstance(image_size, int) or image_size <= 0:
        raise ValueError(f"image_size must be a positive integer, got {image_size!r}")
    device = torch.device(device)
    if family == "jpeg":
        return JPEG(name, image_size, int(name.split("-")[1]), device)
    if name in FREEFORM_RANGES:
        return BUILDERS[name](name, image_size, device, **options)
    return BUILDERS[name](name, image_size, device)
