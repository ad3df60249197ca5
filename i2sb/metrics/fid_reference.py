"""FID reference statistics of a validation set, computed once and cached (spec §7, non-SR tasks).

The reference code resizes each validation image's short side to the model size, center-crops it,
and runs it through the same legacy_pytorch pipeline as the samples; we do the same. The cache is
an npz with ``mu``, ``sigma`` (what ``load_reference_stats`` reads), ``num_images`` and ``mode``,
written atomically, so an interrupted run never leaves a half-written reference behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from i2sb.atomic import atomic_path
from i2sb.distributed import resolve_device
from i2sb.metrics.fid import (
    IMAGE_SUFFIXES,
    MODE,
    FeatureModel,
    batch_features,
    check_images,
    chunks,
    load_reference_stats,
    stats_of,
)


def folder_images(folder: str | Path) -> list[Path]:
    """Image files under ``folder`` (recursive, sorted); an empty or missing folder is an error."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"FID reference folder {folder}: not a directory")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(
            f"FID reference folder {folder}: no images ({', '.join(IMAGE_SUFFIXES)})"
        )
    return files


def load_center_crop(path: Path, size: int) -> np.ndarray:
    """One image file -> uint8 (3, size, size): short side resized to ``size``, then center-cropped."""
    from torchvision.transforms import functional as tvf

    from i2sb.data.decode import load_rgb

    image = tvf.center_crop(tvf.resize(load_rgb(str(path)), size), [size, size])
    return np.asarray(image, dtype=np.uint8).transpose(2, 0, 1)


def _folder_batches(files: list[Path], size: int, batch_size: int) -> Iterator[np.ndarray]:
    for start in range(0, len(files), batch_size):
        yield np.stack([load_center_crop(p, size) for p in files[start : start + batch_size]])


def reference_stats_from_images(
    images: np.ndarray | str | Path,
    cache_path: str | Path,
    model: FeatureModel,
    device: torch.device | str,
    image_size: int = 256,
    batch_size: int = 32,
) -> tuple[np.ndarray, np.ndarray]:
    """mu, sigma of uint8 (N, 3, H, W) images or of an image folder; cached at ``cache_path``.

    A cache that exists is returned as is (delete it to recompute); ``image_size`` applies to
    folders only (short-side resize + center crop, as the reference prepares the validation set).
    """
    cache_path = Path(cache_path)
    if cache_path.is_file():
        return load_reference_stats(cache_path)
    if isinstance(images, np.ndarray):
        check_images(images, "FID reference images")
        count, batches = len(images), chunks(images, batch_size)
    else:
        files = folder_images(images)
        count, batches = len(files), _folder_batches(files, image_size, batch_size)
    total, desc = -(-count // batch_size), f"FID reference statistics ({count} images)"
    mu, sigma = stats_of(batch_features(batches, model, device, total, desc))
    with atomic_path(cache_path) as tmp:
        np.savez(tmp, mu=mu, sigma=sigma, num_images=np.int64(count), mode=np.str_(MODE))
    return mu, sigma


def folder_reference_stats(
    folder: str | Path, cache_path: str | Path, image_size: int = 256, batch_size: int = 32
) -> tuple[np.ndarray, np.ndarray]:
    """The workflow's entry: validation-set statistics of an image folder with clean-fid's Inception."""
    from i2sb.metrics.fid import load_inception

    device = resolve_device("auto")
    return reference_stats_from_images(
        folder, cache_path, load_inception(device), device, image_size, batch_size
    )


def val_stats_or_reason(
    folder: str | Path, out: str | Path, image_size: int, batch_size: int, required: bool
) -> str | None:
    """The fid_val_stats job: ``folder``'s statistics into ``out``; offline without Inception's
    weights, a file saying why there are none (evaluation then reports FID unavailable with that
    reason), returned; an error instead when external metrics are ``required``."""
    from i2sb.downloads import DownloadError
    from i2sb.metrics.fid import write_unavailable_stats
    from i2sb.metrics.weights import WeightsUnavailable

    try:
        folder_reference_stats(folder, out, image_size, batch_size)
    except (WeightsUnavailable, DownloadError) as err:
        if required:
            raise RuntimeError(
                f"FID statistics of {folder} cannot be computed and external metrics are "
                f"required (evaluate.require_external_metrics): {err}"
            ) from None
        reason = f"FID statistics of {folder} unavailable: {err}"
        write_unavailable_stats(out, reason)
        return reason
    return None
