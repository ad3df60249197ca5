"""Gather part files into one ``samples.npz``, proving they cover the evaluation set exactly once."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from i2sb.sample.parts import Part, read_part, write_part

CONSISTENT_META = (
    "task", "sampler", "nfe", "checkpoint", "checkpoint_fingerprint", "data_fingerprint", "total",
)  # fmt: skip


def part_name(index: int, count: int) -> str:
    """The file name of partition ``index`` of ``count`` in the results layout."""
    return f"part_{index}_{count}.npz"


def _partition_of(part: Part, path: Path) -> tuple[int, int]:
    value = part.meta.get("partition")
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) for v in value)):
        raise ValueError(f"{path}: meta has no 'partition' [i, n]; was it written by i2sb sample?")
    if not isinstance(part.meta.get("total"), int):
        raise ValueError(f"{path}: meta has no integer 'total' (size of the evaluation set)")
    return value[0], value[1]


def _check_partitions(parts: dict[Path, Part], expect_parts: int | None) -> None:
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


def _check_coverage(parts: dict[Path, Part], total: int) -> np.ndarray:
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


def _merged_meta(metas: list[dict[str, Any]]) -> dict[str, Any]:
    seconds = sum(float(m.get("seconds", 0.0)) for m in metas)
    images = sum(int(m.get("num_images", 0)) for m in metas)
    evaluations = sum(int(m.get("network_evaluations", 0)) for m in metas)
    meta = {key: value for key, value in metas[0].items() if key != "partition"}
    meta.update(
        seconds=seconds,
        num_images=images,
        network_evaluations=evaluations,
        images_per_s=images / seconds if seconds > 0 else None,
        seconds_per_nfe=seconds / evaluations if evaluations else None,
        parts=len(metas),
    )
    return meta


def gather_parts(
    paths: Sequence[str | Path], out: str | Path, expect_parts: int | None = None
) -> Path:
    """Merge part files in index order into ``out``, or fail naming the missing or clashing part."""
    if not paths:
        raise ValueError("gather needs at least one part file")
    target = Path(out).resolve()
    for path in paths:
        if Path(path).resolve() == target:
            raise ValueError(
                f"--out {out} is one of the part files: gathering would overwrite it; write "
                "the gathered set to another file (e.g. samples.npz)"
            )
    parts = {Path(p): read_part(p) for p in paths}
    if len(parts) != len(paths):
        raise ValueError(f"the same part file is given twice in {[str(p) for p in paths]}")
    _check_partitions(parts, expect_parts)
    first_path, first = next(iter(parts.items()))
    for path, part in parts.items():
        for key in CONSISTENT_META:
            if part.meta.get(key) != first.meta.get(key):
                raise ValueError(
                    f"{path} has {key}={part.meta.get(key)!r} but {first_path} has "
                    f"{first.meta.get(key)!r}: parts of different runs"
                )
    order = _check_coverage(parts, int(first.meta["total"]))
    chunks = list(parts.values())

    def merged(key: str) -> np.ndarray:
        return np.concatenate([getattr(p, key) for p in chunks])[order]

    with_degraded = all(p.degraded is not None for p in chunks)
    gathered = Part(
        recon=merged("recon"),
        clean=merged("clean"),
        indices=merged("indices"),
        labels=merged("labels"),
        meta=_merged_meta([p.meta for p in chunks]),
        degraded=merged("degraded") if with_degraded else None,
    )
    return write_part(out, gathered)
