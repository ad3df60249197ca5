"""Image folders laid out as ``root/<class>/<image>`` (torchvision ImageFolder order).

A file with an image name that is not a regular file (a FIFO, a socket, a device, a link to
``/dev/zero``) is listed apart and never opened: reading a FIFO blocks forever.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from i2sb.data.decode import load_rgb, special_kind

# torchvision's IMG_EXTENSIONS, repeated so that scanning does not import torchvision.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


@dataclass(frozen=True)
class FolderListing:
    """What an image folder holds: image paths with labels, class names, and files that were not images."""

    classes: list[str]
    samples: list[tuple[str, int]]  # (path as os.path.join(root, class, ...), label)
    ignored: list[str]  # files whose extension is not an image extension
    special: list[str] = field(
        default_factory=list
    )  # image names that are no regular file: never read


def special_files_line(paths: list[str]) -> str | None:
    """The one line naming the special files skipped (FIFO, socket, device), or None."""
    if not paths:
        return None
    shown = ", ".join(f"{path} ({special_kind(path) or 'gone'})" for path in paths[:5])
    more = f" and {len(paths) - 5} more" if len(paths) > 5 else ""
    return f"skipped {len(paths)} special files (not regular files, never read): {shown}{more}"


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
    special: list[str] = []
    for label, name in enumerate(classes):
        class_dir = os.path.join(root, name)
        for folder, _, files in sorted(os.walk(class_dir, followlinks=True)):
            for file in sorted(files):
                path = os.path.join(folder, file)
                if not is_image_name(file):
                    ignored.append(path)
                elif special_kind(path):
                    special.append(path)
                else:
                    samples.append((path, label))
    if not samples:
        raise FileNotFoundError(
            f"image folder {root} holds no images with extensions {IMAGE_EXTENSIONS}"
            + (f" ({len(special)} special files skipped, e.g. {special[0]})" if special else "")
        )
    return FolderListing(classes, samples, ignored, special)


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
        if listing.special:
            logging.getLogger("i2sb").warning(
                "%s: %s", self.root, special_files_line(listing.special)
            )
        self.transform = transform or to_signed_tensor

    def __getitem__(self, index: int) -> tuple[Any, int]:
        path, label = self.samples[index]
        return self.transform(load_rgb(path)), label
