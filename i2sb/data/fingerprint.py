"""What a set of evaluation images is: by index (names, sizes, labels) and by content (bytes).

``data_fingerprint`` hashes the index of a whole evaluation set from ``stat`` alone, cheap even
for 50k files: it tells which images and labels a set holds, so parts of one set agree on it.
``content_fingerprint`` hashes the bytes of the images a part samples (files, LMDB values), so
that a file replaced in place, even by one of the same size, makes that part stale instead of
silently reused; it costs a read of the part's own files, which sampling reads anyway.
Names are taken relative to the images' common folder, so moving the whole data folder keeps
both fingerprints.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
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


def _file_digests(paths: list[str]) -> list[str]:
    digests = []
    for path in paths:
        digest = hashlib.sha256()
        try:
            with open(path, "rb") as handle:
                while block := handle.read(1 << 20):
                    digest.update(block)
        except OSError as err:
            raise FileNotFoundError(f"evaluation image {path} cannot be read: {err}") from None
        digests.append(digest.hexdigest())
    return digests


def _lmdb_values(dataset: Any, keys: list[str], measure: Callable[[Any], Any]) -> list[Any]:
    """``measure(value)`` of each LMDB entry (a buffer valid during the call)."""
    from i2sb.data.lmdb_env import open_readonly

    measured = []
    with open_readonly(dataset.lmdb_path).begin(buffers=True) as txn:
        for key in keys:
            value = txn.get(key.encode("utf-8"))
            if value is None:
                raise KeyError(f"{dataset.lmdb_path}: no entry for key {key!r}")
            measured.append(measure(value))
    return measured


def data_fingerprint(dataset: Any, positions: Sequence[int]) -> dict[str, Any]:
    """{"images": N, "sha256": hash of [name, size, label] of ``dataset`` items at ``positions``}.

    Works for the image-folder and LMDB datasets (``paths`` are files or LMDB keys) and for
    paired data (both files of each pair). A dataset without files (a list of tensors) is
    hashed by the contents of its items instead.
    """
    return _fingerprint(dataset, positions, by_content=False)


def content_fingerprint(dataset: Any, positions: Sequence[int]) -> dict[str, Any]:
    """{"images": N, "sha256": hash of [name, sha256 of the bytes, label] at ``positions``}:
    as ``data_fingerprint``, with each file's (or LMDB value's) content in place of its size."""
    return _fingerprint(dataset, positions, by_content=True)


def combined_fingerprint(records: list[dict[str, Any]]) -> dict[str, Any]:
    """One record for consecutive parts' fingerprints (in partition order): what a gathered
    file records of its parts' ``content_fingerprint``s."""
    hashes = [record.get("sha256") for record in records]
    digest = hashlib.sha256(json.dumps(hashes).encode("utf-8")).hexdigest()
    images = sum(int(record.get("images", 0)) for record in records)
    return {"images": images, "parts": len(records), "sha256": digest}


def _fingerprint(dataset: Any, positions: Sequence[int], by_content: bool) -> dict[str, Any]:
    positions = [int(p) for p in positions]
    if not hasattr(dataset, "paths"):
        return _item_fingerprint(dataset, positions)
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
        names = paths
        if by_content:
            measures = _lmdb_values(dataset, paths, lambda v: hashlib.sha256(v).hexdigest())
        else:
            measures = _lmdb_values(dataset, paths, len)
    else:
        measures = _file_digests(paths) if by_content else _file_sizes(paths)
        root = _common_root(paths)
        names = [os.path.relpath(path, root) if root else path for path in paths]
    index = [[name, measure, int(label)] for name, measure, label in zip(names, measures, label_of)]
    digest = hashlib.sha256(json.dumps(index).encode("utf-8")).hexdigest()
    return {"images": len(positions), "sha256": digest}


def _item_fingerprint(dataset: Any, positions: list[int]) -> dict[str, Any]:
    """Hash of the items themselves (tensors or arrays and labels), for in-memory datasets."""
    import numpy as np

    digest = hashlib.sha256()
    for position in positions:
        for value in dataset[position]:
            array = np.asarray(value.cpu() if hasattr(value, "cpu") else value)
            digest.update(f"{array.dtype}{array.shape}".encode())
            digest.update(np.ascontiguousarray(array).tobytes())
    return {"images": len(positions), "sha256": digest.hexdigest()}
