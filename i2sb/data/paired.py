"""Paired data for general image-to-image translation: clean x0 and degraded x1, no corruption operator."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from i2sb.data.decode import load_rgb
from i2sb.data.folders import is_image_name
from i2sb.data.layout import CSV_COLUMNS, listed_pairs

CLEAN_DIR, DEGRADED_DIR = "A", "B"  # A = clean x0, B = degraded x1


def _relative_images(folder: Path) -> set[str]:
    found = set()
    for parent, _, files in os.walk(folder, followlinks=True):
        for file in files:
            if is_image_name(file):
                found.add(os.path.relpath(os.path.join(parent, file), folder))
    return found


def pairs_from_folders(root: Path) -> list[tuple[str, str]]:
    """Pair ``root/A/<name>`` with ``root/B/<name>`` (same relative path); an unmatched file is an error."""
    clean_dir, degraded_dir = root / CLEAN_DIR, root / DEGRADED_DIR
    for folder in (clean_dir, degraded_dir):
        if not folder.is_dir():
            raise FileNotFoundError(
                f"paired data {root}: missing folder {folder} (expected A/ clean, B/ degraded)"
            )
    clean, degraded = _relative_images(clean_dir), _relative_images(degraded_dir)
    for have, lack, other in ((clean, degraded, degraded_dir), (degraded, clean, clean_dir)):
        unmatched = sorted(have - lack)
        if unmatched:
            raise FileNotFoundError(
                f"paired data {root}: {len(unmatched)} images have no partner in {other}; "
                f"first: {other / unmatched[0]} is missing"
            )
    if not clean:
        raise FileNotFoundError(f"paired data {root}: no images in {clean_dir}")
    return [(str(clean_dir / name), str(degraded_dir / name)) for name in sorted(clean)]


def pairs_from_csv(path: Path) -> list[tuple[str, str]]:
    """Rows ``clean,degraded`` (paths relative to the CSV's folder, or absolute); both must exist."""
    pairs = []
    for line, resolved in enumerate(listed_pairs(path), start=2):
        for column, file in zip(CSV_COLUMNS, resolved):
            if not file or not os.path.isfile(file):
                raise FileNotFoundError(
                    f"{path} line {line}: {column} image {file or '(empty)'} does not exist"
                )
        pairs.append(resolved)
    if not pairs:
        raise ValueError(f"{path}: no pairs listed")
    return pairs


class PairedDataset:
    """Items ``(x0, x1, 0)``: clean and degraded tensors in [-1, 1] (one label, 0, for all pairs).

    ``source`` is a folder with A/ (clean) and B/ (degraded) holding the same file names, or a CSV
    with columns clean,degraded. ``transform(clean_pil, degraded_pil) -> (x0, x1)`` must treat
    both alike (e.g. i2sb.data.transforms.PairTransform, which flips both or neither).
    """

    def __init__(self, source: str | Path, transform: Callable | None = None) -> None:
        source = Path(source)
        if source.is_dir():
            self.pairs = pairs_from_folders(source)
        elif source.is_file():
            self.pairs = pairs_from_csv(source)
        else:
            raise FileNotFoundError(
                f"paired data {source} is neither a folder (A/, B/) nor a CSV file"
            )
        self.transform = transform

    @property
    def paths(self) -> list[str]:
        return [clean for clean, _ in self.pairs]

    @property
    def labels(self) -> list[int]:
        return [0] * len(self.pairs)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[Any, Any, int]:
        from i2sb.data.transforms import to_signed_tensor

        clean_path, degraded_path = self.pairs[index]
        clean, degraded = load_rgb(clean_path), load_rgb(degraded_path)
        if self.transform is None:
            if clean.size != degraded.size:
                raise ValueError(
                    f"{clean_path} is {clean.size} but {degraded_path} is {degraded.size}"
                )
            return to_signed_tensor(clean), to_signed_tensor(degraded), 0
        x0, x1 = self.transform(clean, degraded)
        return x0, x1, 0
