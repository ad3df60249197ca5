"""Read images from an LMDB in the official layout, through our safe index or (opt-in) the official pickle."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from i2sb.data.decode import load_rgb
from i2sb.data.folders import LabelledImages
from i2sb.data.index import read_index, read_official_pt
from i2sb.data.layout import lmdb_layout
from i2sb.data.lmdb_env import open_readonly


class LMDBImageDataset(LabelledImages):
    """Items ``(image tensor, label)`` from ``<data_dir>/<split>_faster_imagefolder.lmdb``.

    The sample list comes from our JSON index; the official ``.lmdb.pt`` is a pickle and is read
    only with ``allow_pickle=True``. The LMDB environment is opened on first access in each
    process (i2sb.data.lmdb_env) and the dataset holds only its path, so pickling carries no
    handle and DataLoader workers and DDP ranks each open their own.
    """

    def __init__(
        self,
        data_dir: str | Path,
        split: str,
        transform: Callable | None = None,
        allow_pickle: bool = False,
    ) -> None:
        from i2sb.data.transforms import to_signed_tensor

        layout = lmdb_layout(data_dir, split)
        if not layout.lmdb.is_dir():
            raise FileNotFoundError(
                f"{layout.lmdb} does not exist; build it with `i2sb data convert --split {split}`"
            )
        if layout.index.is_file():
            self.classes, self.samples = read_index(layout.index)
        elif layout.official_pt.is_file() and allow_pickle:
            self.classes, self.samples = read_official_pt(layout.official_pt)
        elif layout.official_pt.is_file():
            raise ValueError(
                f"{layout.index} is missing and {layout.official_pt} is a pickle (it can run code when "
                "loaded); if you trust it, pass allow_pickle=True or write our index once with "
                f"`i2sb data index {data_dir} --split {split} --trust-pickle`"
            )
        else:
            raise FileNotFoundError(
                f"{layout.lmdb} is incomplete (no {layout.index.name}): an interrupted conversion; "
                "rerun `i2sb data convert` to finish it"
            )
        self.lmdb_path = layout.lmdb
        self.transform = transform or to_signed_tensor

    def read_bytes(self, index: int) -> bytes:
        key = self.samples[index][0]
        with open_readonly(self.lmdb_path).begin(buffers=False) as txn:
            data = txn.get(key.encode("utf-8"))
        if data is None:
            raise KeyError(f"{self.lmdb_path}: no entry for key {key!r} (index {index})")
        return data

    def __getitem__(self, index: int) -> tuple[Any, int]:
        path, label = self.samples[index]
        image = load_rgb(self.read_bytes(index), source=f"{self.lmdb_path}[{path}]")
        return self.transform(image), label
