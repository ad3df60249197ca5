"""Gather part files into one ``samples.npz``, proving they cover the evaluation set exactly once
and were made alike (every recorded setting and fingerprint equal).

The images are streamed: each output chunk of ``chunk_images`` rows is read from the parts and
written before the next, so memory does not grow with the number of images
(benchmarks/bench_gather_memory.py). The result does not depend on the chunk size.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from i2sb.data.fingerprint import combined_fingerprint
from i2sb.sample.parts import check_shapes, shown_value
from i2sb.sample.samplefile import ImageStream, SampleFile, open_samples, write_samples

# What each part measures or holds for itself; every other meta key says how the images were
# made and must be equal in all parts (a key added to meta later is checked without a change here).
PER_PART_META = (
    "partition", "num_images", "seconds", "network_evaluations", "images_per_s",
    "seconds_per_nfe", "data_content",
)  # fmt: skip
CHUNK_IMAGES = 64  # rows per read and write: 3 x 12.6 MB at 256 px


def part_name(index: int, count: int) -> str:
    """The file name of partition ``index`` of ``count`` in the results layout."""
    return f"part_{index}_{count}.npz"


def _partition_of(part: SampleFile, path: Path) -> tuple[int, int]:
    value = part.meta.get("partition")
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) for v in value)):
        raise ValueError(f"{path}: meta has no 'partition' [i, n]; was it written by i2sb sample?")
    if not isinstance(part.meta.get("total"), int):
        raise ValueError(f"{path}: meta has no integer 'total' (size of the evaluation set)")
    return value[0], value[1]


def _check_partitions(parts: dict[Path, SampleFile], expect_parts: int | None) -> None:
    """Same n everywhere (and = expect_parts), each i once, all of 0..n-1 present."""
    seen: dict[int, Path] = {}
    counts = set()
    for path, part in parts.items():
        index, count = _partition_of(part, path)
        counts.add(count)
        if index in seen:
            raise ValueError(f"partition {index}_{count} given twice: {seen[index]} and {path}")
        seen[index] = path
    if len(counts) != 1:
        raise ValueError(f"parts come from different partitionings (n = {sorted(counts)})")
    count = counts.pop()
    if expect_parts is not None and count != expect_parts:
        raise ValueError(f"parts are of {count} partitions, --expect-parts says {expect_parts}")
    missing = [part_name(i, count) for i in range(count) if i not in seen]
    if missing:
        raise FileNotFoundError(f"missing partition(s): {', '.join(missing)}")


def _check_coverage(parts: dict[Path, SampleFile], total: int) -> np.ndarray:
    """The order that sorts all indices; fails on an index seen twice or never."""
    owner: dict[int, Path] = {}
    for path, part in parts.items():
        for index in part.indices.tolist():
            if index in owner:
                raise ValueError(f"index {index} appears in both {owner[index]} and {path}")
            owner[index] = path
    gaps = sorted(set(range(total)) - set(owner))
    extra = sorted(set(owner) - set(range(total)))
    if gaps or extra:
        raise ValueError(
            f"parts do not cover indices 0..{total - 1}: missing {gaps[:10]}"
            f"{' ...' if len(gaps) > 10 else ''}, out of range {extra[:10]}"
        )
    return np.argsort(np.concatenate([p.indices for p in parts.values()]), kind="stable")


def _check_alike(parts: dict[Path, SampleFile]) -> None:
    """Every meta key outside PER_PART_META equal in all parts, and images of one size."""
    (first_path, first), *others = parts.items()
    for path, part in others:
        keys = (set(part.meta) | set(first.meta)) - set(PER_PART_META)
        for key in sorted(keys):
            mine, theirs = part.meta.get(key), first.meta.get(key)
            if mine != theirs:
                raise ValueError(
                    f"parts made differently cannot be gathered: {path} has "
                    f"{key}={shown_value(key, mine)} but {first_path} has {key}={shown_value(key, theirs)}"
                )
        if part.recon.shape[1:] != first.recon.shape[1:]:
            raise ValueError(
                f"{path} holds images of {part.recon.shape[1:]}, {first_path} of "
                f"{first.recon.shape[1:]}: parts of different runs"
            )


def _merged_meta(metas: list[dict[str, Any]]) -> dict[str, Any]:
    """The settings all parts share, the summed measurements and the parts' data content."""
    metas = sorted(metas, key=lambda m: m["partition"][0])
    seconds = sum(float(m.get("seconds", 0.0)) for m in metas)
    images = sum(int(m.get("num_images", 0)) for m in metas)
    evaluations = sum(int(m.get("network_evaluations", 0)) for m in metas)
    meta = {key: value for key, value in metas[0].items() if key not in PER_PART_META}
    meta.update(
        seconds=seconds,
        num_images=images,
        network_evaluations=evaluations,
        images_per_s=images / seconds if seconds > 0 else None,
        seconds_per_nfe=seconds / evaluations if evaluations else None,
        parts=len(metas),
    )
    contents = [m.get("data_content") for m in metas]
    if all(isinstance(c, dict) for c in contents):
        meta["data_content"] = combined_fingerprint(contents)
    return meta


def _gathered_rows(
    streams: list[ImageStream], source: np.ndarray, rows: np.ndarray, chunk_images: int
) -> Iterator[np.ndarray]:
    """Output rows in order, ``chunk_images`` at a time; row j is ``streams[source[j]][rows[j]]``.
    Runs of consecutive rows of one part are read with one slice."""
    for start in range(0, len(source), chunk_images):
        src, row = source[start : start + chunk_images], rows[start : start + chunk_images]
        breaks = np.flatnonzero((np.diff(src) != 0) | (np.diff(row) != 1)) + 1
        pieces = [
            streams[s[0]][r[0] : r[0] + len(r)]
            for s, r in zip(np.split(src, breaks), np.split(row, breaks), strict=True)
        ]
        yield pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
    for stream in streams:
        stream.verify()  # a corrupt part fails here, before the gathered file replaces anything


def gather_parts(
    paths: Sequence[str | Path],
    out: str | Path,
    expect_parts: int | None = None,
    chunk_images: int = CHUNK_IMAGES,
) -> Path:
    """Merge part files in index order into ``out``, or fail naming the missing or clashing part
    (or the setting in which two parts differ). Images are copied ``chunk_images`` at a time."""
    if not paths:
        raise ValueError("gather needs at least one part file")
    if chunk_images < 1:
        raise ValueError(f"chunk_images must be >= 1, got {chunk_images}")
    target = Path(out).resolve()
    for path in paths:
        if Path(path).resolve() == target:
            raise ValueError(
                f"--out {out} is one of the part files: gathering would overwrite it; write "
                "the gathered set to another file (e.g. samples.npz)"
            )
    if len({Path(p) for p in paths}) != len(paths):
        raise ValueError(f"the same part file is given twice in {[str(p) for p in paths]}")
    with contextlib.ExitStack() as stack:
        parts = {Path(p): stack.enter_context(open_samples(p)) for p in paths}
        for path, part in parts.items():
            check_shapes(part, str(path))
        _check_partitions(parts, expect_parts)
        _check_alike(parts)
        first = next(iter(parts.values()))
        order = _check_coverage(parts, int(first.meta["total"]))
        chunks = list(parts.values())
        source = np.concatenate([np.full(len(p), k) for k, p in enumerate(chunks)])[order]
        rows = np.concatenate([np.arange(len(p)) for p in chunks])[order]
        keys = ["recon", "clean"]
        if all(p.degraded is not None for p in chunks):
            keys.append("degraded")
        images = {}
        for key in keys:
            streams = [getattr(p, key) for p in chunks]
            shape = (len(order), *streams[0].shape[1:])
            images[key] = (shape, _gathered_rows(streams, source, rows, chunk_images))
        arrays = {
            "indices": np.concatenate([p.indices for p in chunks])[order],
            "labels": np.concatenate([p.labels for p in chunks])[order],
        }
        return write_samples(out, arrays, _merged_meta([p.meta for p in chunks]), images)
