"""Image folders laid out as ``root/<class>/<image>`` (torchvision ImageFolder order)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from i2sb.data.decode import load_rgb

# torchvision's IMG_EXTENSIONS, repeated so that scanning does not import torchvision.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


@dataclass(frozen=True)
class FolderListing:
    """What an image folder holds: image paths with labels, class names, and files that were not images."""

    classes: list[str]
    samples: list[tuple[str, int]]  # (path as os.path.join(root, class, ...), label)
    ignored: list[str]  # files whose extension is not an image extension


def is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def scan_image_folder(root: str | Path) -> FolderListing:
    """List ``root`` exactly as torchvision's ImageFolder would (sorted classes, sorted walk).

    Paths are built with ``os.path.join(root, ...)`` from ``root`` as given, so they equal the
    paths (and LMDB keys) of the official ImageFolder-based layout.
    """
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"image folder {root} does not exist or is not a directory")
    classes = sorted(entry.name for entry in os.scandir(root) if entry.is_dir())
    if not classes:
        raise FileNotFoundError(
            f"image folder {root} has no class sub-folders (expected root/<class>/<image>)"
        )
    samples: list[tuple[str, int]] = []
    ignored: list[str] = []
    for label, name in enumerate(classes):
        class_dir = os.path.join(root, name)
        for folder, _, files in sorted(os.walk(class_dir, followlinks=True)):
            for file in sorted(files):
                path = os.path.join(folder, file)
                (samples.append((path, label)) if is_image_name(file) else ignored.append(path))
    if not samples:
        raise FileNotFoundError(
            f"image folder {root} holds no images with extensions {IMAGE_EXTENSIONS}"
        )
    return FolderListing(classes, samples, ignored)


class LabelledImages:
    """What the image datasets share: ``samples`` = [(path or key, label)], ``classes``, ``transform``."""

    samples: list[tuple[str, int]]
    classes: list[str]

    @property
    def paths(self) -> list[str]:
        return [path for path, _ in self.samples]

    @property
    def labels(self) -> list[int]:
        return [label for _, label in self.samples]

    def __len__(self) -> int:
        return len(self.samples)


class ImageFolderDataset(LabelledImages):
    """``root/<class>/<image>`` read straight from disk; items are ``(image tensor, label)``."""

    def __init__(self, root: str | Path, transform: Callable | None = None) -> None:
        from i2sb.data.transforms import to_signed_tensor

        listing = scan_image_folder(root)
        self.root = os.fspath(root)
        self.classes = listing.classes
        self.samples = listing.samples
        self.transform = transform or to_signed_tensor

    def __getitem__(self, index: int) -> tuple[Any, int]:
        path, label = self.samples[index]
        return self.transform(load_rgb(path)), label
