"""Task name -> operator: builds the degradation the task table's row names.

Each row of ``i2sb.tasks.TASKS`` (or its family, for jpeg-<q>) names a "module:function" of this
package that builds its degradation; names are looked up exactly (``i2sb.tasks.task_spec``).
Adding a corruption means its module (or function) beside this one and its row in the task
table, nothing here, in the trainer or in the sampler.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import torch

from i2sb.corruption.base import Corruption
from i2sb.tasks import TASKS, TaskSpec, task_spec

Builder = Callable[..., Corruption]

# Hole-ratio ranges of the free-form tasks, from the task table (the one source of truth).
FREEFORM_RANGES: dict[str, tuple[float, float]] = {
    name: spec.hole_ratio for name, spec in TASKS.items() if spec.hole_ratio is not None
}
FREEFORM_OPTIONS = ("mask_source", "masks_path", "cache_dir", "seed")
# Every task row with a corruption, in the task table's order.
CORRUPTION_NAMES: tuple[str, ...] = tuple(
    name for name, spec in TASKS.items() if spec.corruption_builder
)


def corruption_builder(spec: TaskSpec) -> Builder:
    """The function the task's row names (``i2sb.corruption.<module>:<function>``)."""
    module, function = spec.corruption_builder.split(":")
    return getattr(importlib.import_module(f"i2sb.corruption.{module}"), function)


def build_corruption(
    name: str, image_size: int, device: str | torch.device = "cpu", **options: Any
) -> Corruption:
    """Build the degradation of task ``name`` (any of CORRUPTION_NAMES, or jpeg-<q>, q in 1..100).

    ``options``: mask_source ("auto" | "published" | "generated"), masks_path, cache_dir, seed.
    Only free-form inpainting uses them; the others accept and ignore them (as they ignore
    ``indices``), so callers can pass one set of options whatever the task.
    """
    try:
        spec = task_spec(name)
    except KeyError:
        spec = None
    # "paired" (user pairs, no operator) and a task row naming no builder are refused.
    if spec is None or not spec.corruption_builder:
        valid = ", ".join([*CORRUPTION_NAMES, "jpeg-<q> (q in 1..100)"])
        raise KeyError(f"unknown corruption {name!r}; valid names: {valid}")
    unexpected = sorted(set(options) - set(FREEFORM_OPTIONS))
    if unexpected:
        raise ValueError(f"unknown option(s) {unexpected} for {name}; accepted: {FREEFORM_OPTIONS}")
    if not isinstance(image_size, int) or image_size <= 0:
        raise ValueError(f"image_size must be a positive integer, got {image_size!r}")
    build = corruption_builder(spec)
    if spec.hole_ratio is not None:
        return build(name, image_size, torch.device(device), **options)
    return build(name, image_size, torch.device(device))
