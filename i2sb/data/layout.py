"""File names of the official LMDB layout (spec §6) and of our safe index beside it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SPLITS = ("train", "val")
INDEX_FORMAT = "i2sb-lmdb-index"
INDEX_VERSION = 1


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
