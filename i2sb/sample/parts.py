"""Part files of a partitioned sampling run: write, read, check, gather (docs/CONTRACTS.md).

A part (``part_<i>_<n>.npz``) holds ``recon``, ``clean``, optional ``degraded`` (uint8
(N, 3, H, W)), ``indices`` and ``labels`` (int64 (N,)), and ``meta``: a 0-d string array of
JSON. Beyond the contract's keys, meta records ``partition`` [i, n] and ``total`` (the size of
the evaluation set) so gather can prove the parts cover every index exactly once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from i2sb.sample.samplefile import open_samples, write_samples


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


def check_shapes(part: Any, source: str) -> None:
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
    check_shapes(part, str(path))
    arrays = {"indices": part.indices.astype(np.int64), "labels": part.labels.astype(np.int64)}
    images = {"recon": part.recon, "clean": part.clean, "degraded": part.degraded}
    chunks = {key: (a.shape, [a]) for key, a in images.items() if a is not None}
    return write_samples(path, arrays, part.meta, chunks)


def read_part(path: str | Path) -> Part:
    """Load a part or gathered file whole, checking keys, dtypes and shapes (errors name the file).
    ``samplefile.open_samples`` reads one in chunks instead."""
    with open_samples(path) as samples:
        check_shapes(samples, str(samples.path))
        images = {key: stream[:] for key, stream in samples.images().items()}
        return Part(
            recon=images["recon"],
            clean=images["clean"],
            indices=samples.indices,
            labels=samples.labels,
            meta=samples.meta,
            degraded=images.get("degraded"),
        )


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
                    f"({short_fingerprint(part.meta.get(key))}; now {short_fingerprint(value)})"
                )
            return f"{path} was made with {key}={part.meta.get(key)!r}, not {value!r}"
    return ""


FINGERPRINTS = {
    "checkpoint_fingerprint": "checkpoint contents",
    "data_fingerprint": "evaluation images (names, sizes or labels differ)",
    "data_content": "evaluation image contents (a file changed)",
}


def short_fingerprint(fingerprint: Any) -> str:
    """A fingerprint record in a line: its fields, the hash cut to 12 hex digits."""
    if not isinstance(fingerprint, dict):
        return "not recorded"
    shown = {
        k: (v[:12] if k == "sha256" and isinstance(v, str) else v) for k, v in fingerprint.items()
    }
    return ", ".join(f"{k} {v}" for k, v in sorted(shown.items()))


def shown_value(key: str, value: Any) -> str:
    """A recorded meta value in a line: fingerprints shortened, the rest as JSON."""
    if key in FINGERPRINTS:
        return short_fingerprint(value)
    return "not recorded" if value is None else json.dumps(value, sort_keys=True)


def identity_mismatch(meta: dict[str, Any], expected: dict[str, Any]) -> str:
    """'' if ``meta`` records every key of ``expected`` with its value (compared as JSON holds
    it); else 'KEY is RECORDED in the file, EXPECTED now' for the first key that differs."""
    for key, value in json.loads(json.dumps(expected)).items():
        if meta.get(key) != value:
            return (
                f"{key} is {shown_value(key, meta.get(key))} in the file, "
                f"{shown_value(key, value)} now"
            )
    return ""


def recorded_dataset(meta: dict[str, Any], path: str | Path) -> dict[str, Any]:
    """What the images of the samples file ``path`` are (meta "dataset", written by sampling from
    ``i2sb.data.build.describe_eval_data``): evaluation and tracking read it here instead of
    opening the data again. A file that does not record it predates the record: sample again."""
    described = meta.get("dataset")
    if not (isinstance(described, dict) and isinstance(described.get("name"), str)):
        raise ValueError(
            f"samples file {path} records no dataset description (meta 'dataset'); it predates "
            "samples recording what they were made from: sample it again"
        )
    return described
