"""Restore a user's own degraded images with a trained run (``i2sb restore``).

The inputs are already degraded (x1): the model maps x1 to x0; no corruption is applied. Sizes:
``tile`` (default) restores the image at its own size: overlapping tiles of the model's size,
blended with a smooth window (i2sb/sample/tiles.py), ``tile_batch`` tiles per network batch, so
memory is bounded by the tile batch whatever the image's size; an image smaller than the model's
size is padded by edge replication and cropped back. ``crop`` resizes the short side to the
model's size and center-crops, as evaluation does, and writes a model-sized PNG; ``pad`` resizes
the long side, pads by edge replication and crops the padding away again, so the output keeps the
input's aspect ratio. Both say when they resize an input. ``keep`` (``--keep-size``) runs the
network on the whole image, padded by edge replication to a multiple of 32 (the UNet's deepest
downsampling) and cropped back: one image per batch, and memory and time grow with the image.
Inpainting needs the hole: a mask image (white = hole) per input or one for all, of the input's
own size in ``tile`` and ``keep`` modes; inpaint-center defaults to its central square (for
inputs of the model's size).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from i2sb.config import SampleConfig
from i2sb.sample.images import save_gif, save_png, to_uint8, trajectory_rows
from i2sb.sample.restorer import DDPM, SIZE_MULTIPLE, Restorer
from i2sb.sample.tiles import Blend, crop_tiles, tile_grid, tile_noise, tile_starts
from i2sb.samplers import SamplerConfig
from i2sb.tasks import family_patterns, task_spec

LOG = logging.getLogger(__name__)
RESIZE_MODES = ("tile", "crop", "pad", "keep")
TILE_MODE = "tile"
DEFAULT_TILE_BATCH = 4
TRAJECTORY_FORMATS = ("png", "gif")


def fit(image, size: int, resize_mode: str):
    """PIL image -> (size x size PIL image, (left, top, right, bottom) box of its content).

    ``crop`` is evaluation's own transform (i2sb.data.transforms.resize_crop), so a restored
    photo is framed exactly as the evaluation set is.
    """
    from PIL import Image

    from i2sb.data.transforms import resize_crop

    if resize_mode not in RESIZE_MODES or resize_mode == TILE_MODE:
        raise ValueError(f"--resize-mode must be one of {RESIZE_MODES[1:]}, got {resize_mode!r}")
    if resize_mode == "keep":
        width, height = image.size
        return _pad(np.asarray(image), -(-width // SIZE_MULTIPLE) * SIZE_MULTIPLE,
                    -(-height // SIZE_MULTIPLE) * SIZE_MULTIPLE)  # fmt: skip
    if resize_mode == "crop":
        return resize_crop(size)(image), (0, 0, size, size)
    width, height = image.size
    scale = size / max(width, height)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    return _pad(np.asarray(image.resize((new_w, new_h), Image.Resampling.BICUBIC)), size, size)


def _pad(pixels: np.ndarray, width: int, height: int):
    """Center ``pixels`` (H, W[, C]) on a width x height canvas by edge replication; (image, box)."""
    from PIL import Image

    new_h, new_w = pixels.shape[:2]
    left, top = (width - new_w) // 2, (height - new_h) // 2
    spread = ((top, height - new_h - top), (left, width - new_w - left)) + ((0, 0),) * (
        pixels.ndim - 2
    )
    padded = Image.fromarray(np.pad(pixels, spread, mode="edge"))
    return padded, (left, top, left + new_w, top + new_h)


def _say_if_resized(path: str | Path, image, size: int, resize_mode: str) -> None:
    if resize_mode in ("crop", "pad") and image.size != (size, size):
        LOG.info(
            "%s: %dx%d resized to the model's %dx%d (--resize-mode %s); --resize-mode tile "
            "restores it at its own size", path, *image.size, size, size, resize_mode,
        )  # fmt: skip


def _masks(task: str, mask_files: Sequence[str | Path], count: int, size: int, resize_mode: str):
    """(count, 1, S, S) float masks (1 = hole) for an inpainting task, else None."""
    from torchvision.transforms.functional import to_tensor

    from i2sb.corruption.inpaint import center_mask

    _check_masks(task, mask_files, count)
    if not task_spec(task).has_mask:
        return None
    if not mask_files:
        if task != "inpaint-center" or resize_mode == "keep":
            raise ValueError(
                f"task {task} needs --mask (white = hole): one image, or one per input"
                + (
                    " (with --keep-size, inpaint-center's square needs it too)"
                    if resize_mode == "keep"
                    else ""
                )
            )
        return center_mask(size).expand(count, -1, -1, -1).clone()
    loaded = [(to_tensor(fit(_open(path, "L"), size, resize_mode)[0]) > 0.5).float()
              for path in mask_files]  # fmt: skip
    return torch.stack(loaded * count if len(loaded) == 1 else loaded)


def _open(path: str | Path, mode: str):
    from i2sb.data.decode import load_rgb

    try:
        return load_rgb(str(path)).convert(mode)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: not a readable image (no such file)") from None
    except ValueError as err:
        raise ValueError(f"{path}: not a readable image ({err})") from None


def _write_trajectory(path: Path, rows: np.ndarray, kind: str) -> Path:
    """rows: uint8 (K, 3, H, W), degraded first, final last."""
    from i2sb.sample.images import grid

    if kind == "gif":
        return save_gif(path.with_suffix(".gif"), list(rows))
    return save_png(path.with_suffix(".png"), grid(rows[None]))


def _check_masks(task: str, mask_files: Sequence[str | Path], count: int) -> None:
    """Refuse a mask for a task without a hole, or a mask count that is neither 1 nor ``count``."""
    if not task_spec(task).has_mask:
        if mask_files:
            raise ValueError(
                f"--mask is only for the tasks with a hole ({family_patterns('mask')}); this "
                f"run's task is {task}"
            )
    elif len(mask_files) not in (0, 1, count):
        raise ValueError(f"give one --mask or one per input image ({count}), got {len(mask_files)}")


def _tile_mask(
    task: str, mask_files: Sequence[str | Path], index: int, image, image_path, size: int
):
    """(1, H, W) float mask (1 = hole) of input ``index`` at its own size, or None."""
    from torchvision.transforms.functional import to_tensor

    from i2sb.corruption.inpaint import center_mask

    if not task_spec(task).has_mask:
        return None
    if not mask_files:
        if task != "inpaint-center" or image.size != (size, size):
            raise ValueError(
                f"task {task} needs --mask (white = hole): one image, or one per input"
                + (f" (inpaint-center's square is defined at {size}x{size} only)"
                   if task == "inpaint-center" else "")
            )  # fmt: skip
        return center_mask(size)[0]
    path = mask_files[0 if len(mask_files) == 1 else index]
    mask = _open(path, "L")
    if mask.size != image.size:
        raise ValueError(
            f"--mask {path} is {mask.size[0]}x{mask.size[1]}, but {image_path} is "
            f"{image.size[0]}x{image.size[1]}: with --resize-mode tile give a mask of the image's "
            "own size"
        )
    return (to_tensor(mask) > 0.5).float()


def restore_tiled(
    restorer: Restorer,
    x1: torch.Tensor,
    mask: torch.Tensor | None,
    image_index: int,
    run: dict[str, Any],
    tile_batch: int = DEFAULT_TILE_BATCH,
    overlap: int | None = None,
    keep_frames: bool = False,
) -> torch.Tensor:
    """One image x1 (3, H, W) in [-1, 1], H and W >= the model's size -> (L, 3, H, W) blended.

    L = 1 (the restoration) unless ``keep_frames`` (then the logged x_t as well, index 0 =
    final). ``run``: Restorer.restore's nfe, seed, clip_denoise, log_count and sampler. Tiles are
    restored ``tile_batch`` at a time; the result is byte-identical for any ``tile_batch``.
    """
    size = restorer.options.image_size
    overlap = size // 4 if overlap is None else overlap
    height, width = x1.shape[-2:]
    tiles = tile_grid(height, width, size, overlap)
    blend = None
    for start in range(0, len(tiles), tile_batch):
        batch = tiles[start : start + tile_batch]
        noise = tile_noise(run["seed"], image_index, batch, (height, width), size, restorer.device)
        masks = None if mask is None else crop_tiles(mask, batch, size)
        result = restorer.restore(crop_tiles(x1, batch, size), masks, noise=noise, **run)
        frames = result.frames if keep_frames else result.recon[:, None]
        if blend is None:
            blend = Blend((frames.shape[1], *x1.shape), size, overlap)
        for tile, values in zip(batch, frames, strict=True):
            blend.add(tile, values)
        LOG.debug("tiles %d-%d of %d restored", start + 1, start + len(batch), len(tiles))
    return blend.result()


def _restore_files_tiled(
    restorer: Restorer,
    images: Sequence[str | Path],
    names: Sequence[Path],
    masks: Sequence[str | Path],
    trajectory: str | None,
    tile_batch: int,
    overlap: int,
    run: dict[str, Any],
) -> list[Path]:
    """``restore_images`` in tile mode: each input at its own size; writes ``names[i]`` + suffix."""
    from i2sb.data.transforms import to_signed_tensor

    size, task = restorer.options.image_size, restorer.options.task
    written = []
    for index, path in enumerate(images):
        image = _open(path, "RGB")
        mask = _tile_mask(task, masks, index, image, path, size)
        width, height = image.size
        canvas, (left, top, right, bottom) = _pad(
            np.asarray(image), max(width, size), max(height, size)
        )
        x1 = to_signed_tensor(canvas)
        if mask is not None:
            mask = torch.from_numpy(
                np.array(_pad(mask[0].numpy(), *canvas.size)[0], dtype=np.float32)
            )[None]
        LOG.info(
            "%s: %dx%d restored in %d tiles of %dx%d, %d per batch", path, width, height,
            len(tile_grid(*x1.shape[-2:], size, overlap)), size, size, tile_batch,
        )  # fmt: skip
        frames = restore_tiled(
            restorer, x1, mask, index, run, tile_batch, overlap, keep_frames=bool(trajectory)
        )
        recon = to_uint8(frames[0])
        written.append(save_png(names[index].with_name(names[index].name + "_restored.png"),
                                recon[:, top:bottom, left:right]))  # fmt: skip
        if trajectory:
            rows = trajectory_rows(x1[None], frames[None])[0][..., top:bottom, left:right]
            _write_trajectory(names[index].with_name(names[index].name + "_trajectory"),
                              rows, trajectory)  # fmt: skip
    return written


SAMPLE_DEFAULTS = SampleConfig()  # the sample section's defaults (i2sb/config/model.py)


def restore_images(
    restorer: Restorer | str | Path,
    images: Sequence[str | Path],
    out_dir: str | Path,
    nfe: int,
    masks: Sequence[str | Path] = (),
    resize_mode: str = TILE_MODE,
    trajectory: str | None = None,
    settings: SampleConfig = SAMPLE_DEFAULTS,
    device: str = "cpu",
    method: SamplerConfig = DDPM,
    tile_batch: int = DEFAULT_TILE_BATCH,
    tile_overlap: int | None = None,
) -> list[Path]:
    """Restore degraded image files; writes OUT/<stem>_restored.png (and <stem>_trajectory.png|gif).

    Returns the restored PNGs in input order. Image i (its position among ``images``) draws its
    noise from a generator seeded by (``settings.seed``, i), so rerunning the command gives the
    same PNGs whatever ``settings.batch_size`` (and, in tile mode, ``tile_batch``). ``settings``:
    the config's sample section (batch_size, precision, seed, clip_denoise, log_count).
    ``method``: the sampler and its options (default the paper's ddpm). ``tile_overlap``: pixels
    shared by neighbouring tiles (default a quarter of the model's size).
    """
    from i2sb.data.transforms import to_signed_tensor

    if resize_mode not in RESIZE_MODES:
        raise ValueError(f"--resize-mode must be one of {RESIZE_MODES}, got {resize_mode!r}")
    if trajectory not in (None, *TRAJECTORY_FORMATS):
        raise ValueError(f"--trajectory must be one of {TRAJECTORY_FORMATS}, got {trajectory!r}")
    for flag, value in (("--batch-size", settings.batch_size), ("--tile-batch", tile_batch)):
        if value < 1:
            raise ValueError(f"{flag} must be >= 1, got {value}")
    stems = [Path(image).stem for image in images]
    if not stems or len(set(stems)) != len(stems):
        raise ValueError(
            f"give input files with distinct names (outputs are named after them): {stems}"
        )
    if not isinstance(restorer, Restorer):
        restorer = Restorer.load(restorer, device, settings.precision)
    # cddb on inpaint-*: ddpm's images
    repeat = method.skip_reason(task_spec(restorer.options.task))
    if repeat:
        raise ValueError(repeat)
    size, out_dir = restorer.options.image_size, Path(out_dir)
    run = {"nfe": nfe, "seed": settings.seed, "clip_denoise": settings.clip_denoise,
           "log_count": settings.log_count, "sampler": method}  # fmt: skip
    if resize_mode == TILE_MODE:
        overlap = size // 4 if tile_overlap is None else tile_overlap
        tile_starts(2 * size, size, overlap)  # checks the overlap before any sampling
        _check_masks(restorer.options.task, masks, len(images))
        names = [out_dir / stem for stem in stems]
        return _restore_files_tiled(
            restorer, images, names, masks, trajectory, tile_batch, overlap, run
        )
    # "keep": each image at its own size
    batch_size = 1 if resize_mode == "keep" else settings.batch_size
    all_masks = _masks(restorer.options.task, masks, len(images), size, resize_mode)
    written = []
    for start in range(0, len(images), batch_size):
        opened = [(path, _open(path, "RGB")) for path in images[start : start + batch_size]]
        for path, image in opened:
            _say_if_resized(path, image, size, resize_mode)
        fitted = [fit(image, size, resize_mode) for _, image in opened]
        x1 = torch.stack([to_signed_tensor(image) for image, _ in fitted])
        mask = None if all_masks is None else all_masks[start : start + len(fitted)]
        if mask is not None and mask.shape[-2:] != x1.shape[-2:]:
            raise ValueError(
                f"--mask is {tuple(mask.shape[-2:])} (H, W) after sizing, but {opened[0][0]} is "
                f"{tuple(x1.shape[-2:])}: give a mask of the image's own size"
            )
        result = restorer.restore(x1, mask, indices=range(start, start + len(fitted)), **run)
        recon, rows = to_uint8(result.recon), trajectory_rows(x1, result.frames)
        for offset, (_, (left, top, right, bottom)) in enumerate(fitted):
            stem = stems[start + offset]
            written.append(
                save_png(out_dir / f"{stem}_restored.png", recon[offset, :, top:bottom, left:right])
            )
            if trajectory:
                crop = rows[offset][..., top:bottom, left:right]
                _write_trajectory(out_dir / f"{stem}_trajectory", crop, trajectory)
    return written
