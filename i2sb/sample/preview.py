"""``i2sb corrupt``'s runner: a task's degradation applied to a user's own image files, as PNGs.

The images are framed as evaluation frames them (upright, short side resized, center-cropped), so
a preview shows what a run of that task is given to restore.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def corrupt_files(
    task: str,
    images: list[str],
    out_dir: str | Path,
    size: int = 256,
    device: str = "cpu",
    mask_options: dict[str, Any] | None = None,
) -> tuple[list[Path], str | None]:
    """Degrade ``images`` with ``task``; returns the PNGs written (clean, degraded per image) and
    the operator's mask source. ``mask_options`` are ``build_corruption``'s free-form mask
    keywords (mask_source, masks_path, cache_dir, seed), as ``Config.mask_options`` gives them."""
    import torch

    from i2sb.corruption import build_corruption
    from i2sb.data.decode import load_rgb
    from i2sb.data.transforms import build_transform
    from i2sb.sample.images import save_png, to_uint8

    operator = build_corruption(task, size, device, **(mask_options or {}))
    stems = [Path(image).stem for image in images]
    if len(set(stems)) != len(stems):
        raise ValueError(f"input file names must differ (outputs are named after them): {stems}")
    transform = build_transform(size, train=False)
    batch = []
    for image in images:
        try:
            batch.append(transform(load_rgb(image)))
        except (FileNotFoundError, ValueError) as err:
            raise FileNotFoundError(f"{image}: not a readable image ({err})") from None
    x0 = torch.stack(batch).to(device)
    x1, _ = operator(x0, torch.arange(len(images), device=device))
    written = []
    for stem, clean, degraded in zip(stems, x0, x1):
        for suffix, tensor in (("clean", clean), (task, degraded)):
            written.append(save_png(Path(out_dir) / f"{stem}_{suffix}.png", to_uint8(tensor)))
    return written, operator.mask_source
