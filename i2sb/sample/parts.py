"""Part files of a partitioned sampling run: write, read, check, gather (docs/CONTRACTS.md).

A part (``part_<i>_<n>.npz``) holds ``recon``, ``clean``, optional ``degraded`` (uint8
(N, 3, H, W)), ``indices`` and ``labels`` (int64 (N,)), and ``meta``: a 0-d string array of
JSON. Beyond the contract's keys, meta records ``partition`` [i, n] and ``total`` (the size of
the evaluation set) so gather can prove the parts cover every index exactly once.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from i2sb.atomic import atomic_path

IMAGE_KEYS = ("recon", "clean")
OPTIONAL_IMAGE_KEYS = ("degraded",)
REQUIRED_KEYS = (*IMAGE_KEYS, "indices", "labels", "meta")


@dataclass
class Part:
    """The arrays of one part (or of a gathered file) and its parsed meta."""

    recon: np.ndarray
    clean: np.ndarray
    indices: np.ndarray
    labels: np.ndarray
    meta: dict[str, Any]
    degraded: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.indices.shape[0])


def _check_shapes(part: Part, source: str) -> None:
    count = len(part)
    if part.indices.ndim != 1 or part.labels.shape != (count,):
        raise ValueError(f"{source}: indices and labels must be (N,) arrays of one length")
    arrays = {"recon": part.recon, "clean": part.clean, "degraded": part.degraded}
    for key, array in arrays.items():
        if array is None:
            continue
        if array.dtype != np.uint8 or array.ndim != 4 or array.shape[:2] != (count, 3):
            raise ValueError(
                f"{source}: {key} must be uint8 ({count}, 3, H, W), "
                f"got {array.dtype} {tuple(array.shape)}"
            )


def write_part(path: str | Path, part: Part) -> Path:
    """Save ``part`` as an npz (no pickle), atomically: a reader sees the old file or the new one."""
    path = Path(path)
    _check_shapes(part, str(path))
    arrays = {
        "recon": part.recon,
        "clean": part.clean,
        "indices": part.indices.astype(np.int64),
        "labels": part.labels.astype(np.int64),
        "meta": np.array(json.dumps(part.meta, sort_keys=True)),
    }
    if part.degraded is not None:
        arrays["degraded"] = part.degraded
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)
    return path


def read_part(path: str | Path) -> Part:
    """Load a part or gathered file, checking keys, dtypes and shapes (errors name the file)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"sample file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        # numpy reads a non-zip file as a pickle and refuses it with a ValueError
        raise ValueError(f"{path} is not a readable npz file of arrays: {err}") from None
    missing = [key for key in REQUIRED_KEYS if key not in arrays]
    if missing:
        raise ValueError(f"{path}: missing keys {missing}; expected {list(REQUIRED_KEYS)}")
    try:
        meta = json.loads(str(arrays["meta"]))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: meta is not JSON: {err}") from None
    part = Part(
        recon=arrays["recon"],
        clean=arrays["clean"],
        indices=arrays["indices"].astype(np.int64),
        labels=arrays["labels"].astype(np.int64),
        meta=meta,
        degraded=arrays.get("degraded"),
    )
    _check_shapes(part, str(path))
    return part


def why_incomplete(path: str | Path, indices: np.ndarray, expected_meta: dict[str, Any]) -> str:
    """'' if ``path`` is a finished part for exactly ``indices`` and ``expected_meta``; else why not."""
    path = Path(path)
    if not path.exists():
        return "not written yet"
    try:
        part = read_part(path)
    except ValueError as err:
        return str(err)
    if not np.array_equal(part.indices, np.asarray(indices, dtype=np.int64)):
        return f"{path} holds other indices than partition {expected_meta.get('partition')}"
    for key, value in expected_meta.items():
        if part.meta.get(key) != value:
            if key in FINGERPRINTS:
                return (
                    f"{path} was made from other {FINGERPRINTS[key]} "
                    f"({_short(part.meta.get(key))}; now {_short(value)})"
                )
            return f"{path} was made with {key}={part.meta.get(key)!r}, not {value!r}"
    return ""


FINGERPRINTS = {
    "checkpoint_fingerprint": "checkpoint contents",
    "data_fingerprint": "evaluation images (names, sizes or labels differ)",
}


def _short(fingerprint: Any) -> str:
    if not isinstance(fingerprint, dict):
        return "not recorded"
    shown = {
        k: (v[:12] if k == "sha256" and isinstance(v, str) else v) for k, v in fingerprint.items()
    }
    return ", ".join(f"{k} {v}" for k, v in sorted(shown.items()))
