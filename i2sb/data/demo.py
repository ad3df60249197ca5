"""A small real-photo image folder built offline from the photos scikit-image ships.

Each class is one photo; its images are seeded random square crops (25-60% of the short side),
resized to ``size`` and randomly flipped. Same arguments -> byte-identical PNGs. The folder is
built under a temporary name and renamed, so a half-built folder is never mistaken for complete;
the next call removes such a folder left by a killed build.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from i2sb.atomic import remove_stale_folders

# Real photographs only (no synthetic test patterns); the grey ones are repeated on 3 channels.
PHOTOS = (
    "astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry",
    "retina", "stereo_motorcycle", "camera", "coins", "moon", "brick", "grass", "gravel",
)  # fmt: skip
SPLIT_STREAMS = {"train": 0, "val": 1}  # disjoint random streams for the two splits
MARKER = "demo.json"


def load_photo(name: str) -> np.ndarray:
    """(H, W, 3) uint8 photo ``name`` from ``skimage.data``."""
    import skimage.data

    image = getattr(skimage.data, name)()
    if isinstance(image, tuple):  # stereo_motorcycle: (left, right, disparity)
        image = image[0]
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return image[..., :3].astype(np.uint8)


def random_crop(photo: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A random square of 25-60% of the short side, resized to ``size``, flipped with p=0.5."""
    from PIL import Image

    height, width = photo.shape[:2]
    side = int(round(min(height, width) * rng.uniform(0.25, 0.60)))
    top = int(rng.integers(0, height - side + 1))
    left = int(rng.integers(0, width - side + 1))
    crop = Image.fromarray(photo[top : top + side, left : left + side])
    crop = crop.resize((size, size), Image.Resampling.BICUBIC)
    array = np.asarray(crop)
    return array[:, ::-1] if rng.random() < 0.5 else array


def _write_split(
    root: Path, split: str, photos: dict[str, np.ndarray], count: int, size: int, seed: int
) -> None:
    from PIL import Image

    for class_id, (name, photo) in enumerate(photos.items()):
        folder = root / split / name
        folder.mkdir(parents=True)
        rng = np.random.default_rng([seed, SPLIT_STREAMS[split], class_id])
        for i in range(count):
            Image.fromarray(np.ascontiguousarray(random_crop(photo, size, rng))).save(
                folder / f"{name}_{i:04d}.png", optimize=False
            )


MAX_SIZE = 1024
MAX_PER_CLASS = 10_000


def make_demo_images(
    out_dir: str | Path,
    classes: int = 4,
    train_per_class: int = 48,
    val_per_class: int = 8,
    size: int = 64,
    seed: int = 0,
) -> Path:
    """Build ``out_dir/{train,val}/<photo>/*.png``; a finished folder with the same settings is reused."""
    out_dir = Path(out_dir)
    params = {"classes": classes, "train_per_class": train_per_class,
              "val_per_class": val_per_class, "size": size, "seed": seed}  # fmt: skip
    if not 1 <= classes <= len(PHOTOS):
        raise ValueError(
            f"data.demo.classes must be in 1..{len(PHOTOS)} (photos available), got {classes}"
        )
    for key in ("train_per_class", "val_per_class", "size"):
        if params[key] < 1:
            raise ValueError(f"data.demo.{key} must be >= 1, got {params[key]}")
    # The shipped photos are ~512 px and crops cover 25-60% of them: larger demo images would
    # only be upsampled, and one 100000 px RGB crop alone is 30 GB of uint8.
    if size > MAX_SIZE:
        raise ValueError(f"demo image size must be at most {MAX_SIZE} px, got {size}")
    if max(train_per_class, val_per_class) > MAX_PER_CLASS:
        raise ValueError(
            f"demo images per class must be at most {MAX_PER_CLASS}, got "
            f"{max(train_per_class, val_per_class)}; use your own image folder for more"
        )
    remove_stale_folders(out_dir)  # a build killed before its rename
    if out_dir.exists():
        marker = out_dir / MARKER
        if marker.is_file() and json.loads(marker.read_text()) == params:
            return out_dir
        raise ValueError(
            f"{out_dir} exists and is not a demo folder built with {params}; remove it or choose another"
        )
    photos = {name: load_photo(name) for name in PHOTOS[:classes]}
    tmp = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        _write_split(tmp, "train", photos, train_per_class, size, seed)
        _write_split(tmp, "val", photos, val_per_class, size, seed)
        (tmp / MARKER).write_text(json.dumps(params, sort_keys=True) + "\n")
        os.replace(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir
