"""File names of the official LMDB layout (spec §6) and of our safe index beside it; where paired
data's split is read from. Light (no numpy, no PIL): planning reads it."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

SPLITS = ("train", "val")
INDEX_FORMAT = "i2sb-lmdb-index"
INDEX_VERSION = 1
CSV_COLUMNS = ("clean", "degraded")  # a paired data listing's header


@dataclass(frozen=True)
class LmdbLayout:
    """``<dir>/<split>_faster_imagefolder.lmdb`` (+ ``.lmdb.pt``, official) and our ``.index.json``.

    The index is written last, so its presence is what marks a conversion complete.
    """

    data_dir: Path
    split: str

    @property
    def stem(self) -> str:
        return f"{self.split}_faster_imagefolder"

    @property
    def lmdb(self) -> Path:
        return self.data_dir / f"{self.stem}.lmdb"

    @property
    def official_pt(self) -> Path:
        return self.data_dir / f"{self.stem}.lmdb.pt"

    @property
    def index(self) -> Path:
        return self.data_dir / f"{self.stem}.index.json"

    @property
    def report(self) -> Path:
        return self.data_dir / f"{self.stem}.report.json"

    @property
    def sources(self) -> Path:
        """{key: [size, mtime_ns]} of each stored source file, so a rerun notices changed files."""
        return self.data_dir / f"{self.stem}.sources.json"


def lmdb_layout(data_dir: str | Path, split: str) -> LmdbLayout:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    return LmdbLayout(Path(data_dir), split)


def paired_source(root: str | Path, split: str) -> Path:
    """What paired data's ``split`` is read from: ``root/<split>.csv`` if it is a file, else the
    folder ``root/<split>`` (with A/ and B/)."""
    listing = Path(root) / f"{split}.csv"
    return listing if listing.is_file() else Path(root) / split


def listed_pairs(path: Path) -> list[tuple[str, str]]:
    """A paired listing's rows ``clean,degraded`` resolved against its folder ("" for an empty
    cell), unchecked: planning stats them; ``paired.pairs_from_csv`` checks that each exists."""
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or not set(CSV_COLUMNS) <= set(reader.fieldnames):
            raise ValueError(
                f"{path}: needs a header with columns {','.join(CSV_COLUMNS)}, got {reader.fieldnames}"
            )
        rows = [(row["clean"], row["degraded"]) for row in reader]
    return [(_resolved(path, clean), _resolved(path, degraded)) for clean, degraded in rows]


def _resolved(listing: Path, cell: str | None) -> str:
    return str(listing.parent / cell) if cell else ""
