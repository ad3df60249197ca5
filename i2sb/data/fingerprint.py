"""What a set of evaluation images is, cheaply: an index of names, sizes and labels, hashed.

A part file records this fingerprint so that pointing ``--data-dir`` at other photos (or
replacing a file in place) makes the part stale instead of silently reused. Names are taken
relative to the images' common folder, so moving the whole data folder keeps the fingerprint.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from typing import Any


def _common_root(paths: list[str]) -> str:
    if not paths:
        return ""
    root = os.path.commonpath(paths)
    return os.path.dirname(root) if root in paths else root


def _file_sizes(paths: list[str]) -> list[int]:
    sizes = []
    for path in paths:
        try:
            sizes.append(os.stat(path).st_size)
        except OSError as err:
            raise FileNotFoundError(f"evaluation image {path} cannot be read: {err}") from None
    return sizes


def _lmdb_sizes(dataset: Any, keys: list[str]) -> list[int]:
    from i2sb.data.lmdb_env import open_readonly

    sizes = []
    with open_readonly(dataset.lmdb_path).begin(buffers=True) as txn:
        for key in keys:
            value = txn.get(key.encode("utf-8"))
            if value is None:
                raise KeyError(f"{dataset.lmdb_path}: no entry for key {key!r}")
            sizes.append(len(value))
    return sizes


def data_fingerprint(dataset: Any, positions: Sequence[int]) -> dict[str, Any]:
    """{"images": N, "sha256": hash of [name, size, label] of ``dataset`` items at ``positions``}.

    Works for the image-folder and LMDB datasets (``paths`` are files or LMDB keys) and for
    paired data (both files of each pair). A dataset without files (a list of tensors) is
    hashed by the contents of its items instead.
    """
    positions = [int(p) for p in positions]
    if not hasattr(dataset, "paths"):
        return _content_fingerprint(dataset, positions)
    labels = dataset.labels
    pairs = getattr(dataset, "pairs", None)
    if pairs is not None:
        paths = [name for p in positions for name in pairs[p]]
        label_of = [labels[p] for p in positions for _ in (0, 1)]
    else:
        all_paths = dataset.paths
        paths = [all_paths[p] for p in positions]
        label_of = [labels[p] for p in positions]
    if hasattr(dataset, "lmdb_path"):
        sizes, names = _lmdb_sizes(dataset, paths), paths
    else:
        sizes = _file_sizes(paths)
        root = _common_root(paths)
        names = [os.path.relpath(path, root) if root else path for path in paths]
    index = [[name, size, int(label)] for name, size, label in zip(names, sizes, label_of)]
    digest = hashlib.sha256(json.dumps(index).encode("utf-8")).hexdigest()
    return {"images": len(positions), "sha256": digest}


def _content_fingerprint(dataset: Any, positions: list[int]) -> dict[str, Any]:
    """Hash of the items themselves (tensors or arrays and labels), for in-memory datasets."""
    import numpy as np

    digest = hashlib.sha256()
    for position in positions:
        for value in dataset[position]:
            array = np.asarray(value.cpu() if hasattr(value, "cpu") else value)
            digest.update(f"{array.dtype}{array.shape}".encode())
            digest.update(np.ascontiguousarray(array).tobytes())
    return {"images": len(positions), "sha256": digest.hexdigest()}
