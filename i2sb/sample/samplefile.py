"""Sample files read and written a chunk at a time, so memory stays flat in the image count.

A sample file (``part_<i>_<n>.npz``, ``samples.npz``; docs/CONTRACTS.md) is an npz: a zip of
``.npy`` members. ``np.savez`` stores them uncompressed, so an image member can be streamed:
``open_samples`` reads the small members (indices, labels, meta) and only the headers of the
image members, whose rows are then read on demand (``ImageStream``). ``write_samples`` writes
the same format member by member, taking the images as an iterable of chunks. Streams go
through ``zipfile``, which checks each member's CRC when a read reaches its end, as ``np.load``
does; a compressed npz (``np.savez_compressed``) streams too, decompressed on the fly.

Gathering 50k images of 256 px (recon, clean, degraded: 29 GB) thus needs a few chunks of
memory instead of 2.3x the data (benchmarks/bench_gather_memory.py).
"""

from __future__ import annotations

import contextlib
import json
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from i2sb.atomic import atomic_path

IMAGE_KEYS = ("recon", "clean")
OPTIONAL_IMAGE_KEYS = ("degraded",)
REQUIRED_KEYS = (*IMAGE_KEYS, "indices", "labels", "meta")
# np.savez's member order, kept so a streamed file lists its keys as a saved one does.
MEMBER_ORDER = ("recon", "clean", "indices", "labels", "meta", "degraded")
ITER_ROWS = 16  # rows read at once when a stream is iterated image by image


class ImageStream:
    """uint8 (N, 3, H, W) images of one npz member, read from the file a slice at a time.

    It behaves as an array for what the metrics do with one: ``len``, ``shape``, ``dtype``,
    ``ndim`` and ``images[a:b]`` (a new, writable ndarray). Reads are cheap going forward; a
    slice behind the last one reopens the member (zipfile cannot seek back in a stream).
    ``np.asarray(stream)`` is refused: it would load every image, which is what this avoids.
    """

    def __init__(self, archive: zipfile.ZipFile, member: str, source: str):
        self._archive, self._member, self.source = archive, member, source
        self._stream: Any = None
        self._row = 0  # the row the open stream is at
        with archive.open(member) as stream:
            self.shape, self.dtype, self._data_start = _npy_header(stream, source)
        self.ndim = len(self.shape)
        self._row_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize

    def __len__(self) -> int:
        return self.shape[0]

    def __array__(self, *args: Any, **kwargs: Any) -> np.ndarray:
        raise TypeError(
            f"{self.source}: {self._member} is read in slices (images[a:b]), never whole"
        )

    def __iter__(self) -> Iterator[np.ndarray]:
        """Image by image, read ``ITER_ROWS`` at a time."""
        for start in range(0, len(self), ITER_ROWS):
            yield from self[start : start + ITER_ROWS]

    def __getitem__(self, rows: slice) -> np.ndarray:
        if not isinstance(rows, slice):
            raise TypeError(f"{self.source}: {self._member} is read in slices, got {rows!r}")
        start, stop, step = rows.indices(len(self))
        if step != 1:
            raise ValueError(f"{self.source}: {self._member} is read in contiguous slices")
        count = max(stop - start, 0)
        if self._stream is None or start < self._row:
            self.close()
            self._stream = self._archive.open(self._member)
            self._stream.seek(self._data_start)
            self._row = 0
        array = np.empty((count, *self.shape[1:]), dtype=self.dtype)
        wanted = count * self._row_bytes
        try:
            if start > self._row:  # reads through what it skips, so the CRC check still holds
                self._stream.seek((start - self._row) * self._row_bytes, 1)
            got = self._stream.readinto(memoryview(array).cast("B")) if wanted else 0
        except zipfile.BadZipFile as err:  # the CRC check at the member's end
            raise ValueError(f"{self.source}: {self._member} is corrupt: {err}") from None
        if got != wanted:
            raise ValueError(f"{self.source}: {self._member} ends before row {start + count}")
        self._row = start + count
        return array

    def verify(self) -> None:
        """Read what is left of the member: zipfile checks its CRC when a read reaches the end
        (reading every row in order already did)."""
        if self._stream is None:
            self._stream, self._row = self._archive.open(self._member), 0
        try:
            self._stream.seek(0, 2)
        except zipfile.BadZipFile as err:
            raise ValueError(f"{self.source}: {self._member} is corrupt: {err}") from None
        self._row = len(self)

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None


def _npy_header(stream: Any, source: str) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, bytes before the data) of the .npy member open in ``stream``."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(stream)
        reader = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, fortran_order, dtype = reader(stream)
    except ValueError as err:
        raise ValueError(f"{source}: not an npy member: {err}") from None
    if fortran_order or dtype.hasobject:
        raise ValueError(f"{source}: image arrays must be C-ordered plain arrays")
    return tuple(int(s) for s in shape), dtype, stream.tell()


class SampleFile:
    """An open sample file: ``recon``, ``clean`` and optional ``degraded`` as ImageStreams,
    ``indices``, ``labels`` (int64 (N,)) and ``meta`` (dict) loaded. Use it as a context manager."""

    def __init__(self, path: Path, archive: zipfile.ZipFile):
        self.path, self._archive = path, archive
        members = {name.removesuffix(".npy"): name for name in archive.namelist()}
        missing = [key for key in REQUIRED_KEYS if key not in members]
        if missing:
            raise ValueError(f"{path}: missing keys {missing}; expected {list(REQUIRED_KEYS)}")
        small = {key: _read_small(archive, members[key], path) for key in ("indices", "labels")}
        self.indices = small["indices"].astype(np.int64)
        self.labels = small["labels"].astype(np.int64)
        self.meta = _read_meta(archive, members["meta"], path)
        self.recon = ImageStream(archive, members["recon"], str(path))
        self.clean = ImageStream(archive, members["clean"], str(path))
        degraded = members.get("degraded")
        self.degraded = ImageStream(archive, degraded, str(path)) if degraded else None

    def __len__(self) -> int:
        return int(self.indices.shape[0])

    def images(self) -> dict[str, ImageStream]:
        """The image members present, by key."""
        found = {"recon": self.recon, "clean": self.clean, "degraded": self.degraded}
        return {key: stream for key, stream in found.items() if stream is not None}

    def close(self) -> None:
        for stream in self.images().values():
            stream.close()
        self._archive.close()

    def __enter__(self) -> SampleFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read_small(archive: zipfile.ZipFile, member: str, path: Path) -> np.ndarray:
    with archive.open(member) as stream:
        return np.lib.format.read_array(stream, allow_pickle=False)


def _read_meta(archive: zipfile.ZipFile, member: str, path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(str(_read_small(archive, member, path)))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: meta is not JSON: {err}") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: meta must be a JSON object, got {type(meta).__name__}")
    return meta


def open_samples(path: str | Path) -> SampleFile:
    """Open a part or gathered file for streaming; errors name the file (shapes are checked by
    the caller, ``parts.check_shapes``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"sample file {path} does not exist")
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as err:
        raise ValueError(f"{path} is not a readable npz file of arrays: {err}") from None
    try:
        return SampleFile(path, archive)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        archive.close()
        message = str(err) if str(path) in str(err) else f"{path}: {err}"
        raise ValueError(message) from None
    except BaseException:
        archive.close()
        raise


def write_samples(
    path: str | Path,
    arrays: dict[str, np.ndarray],
    meta: dict[str, Any],
    images: dict[str, tuple[tuple[int, ...], Iterable[np.ndarray]]],
) -> Path:
    """Write a sample file atomically, member by member, in np.savez's format and key order.

    ``arrays`` are written whole (indices, labels); ``images[key] = (shape, chunks)`` is written
    as the uint8 chunks arrive, which must add up to ``shape`` exactly.
    """
    path = Path(path)
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(atomic_path(path))
        archive = stack.enter_context(zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED))
        members: dict[str, Any] = {
            **arrays,
            "meta": np.array(json.dumps(meta, sort_keys=True)),
            **images,
        }
        for key in sorted(members, key=_member_rank):
            value = members[key]
            with archive.open(f"{key}.npy", "w", force_zip64=True) as member:
                if isinstance(value, np.ndarray):
                    np.lib.format.write_array(member, value, allow_pickle=False)
                else:
                    _write_chunks(member, key, *value, path)
    return path


def _member_rank(key: str) -> tuple[int, str]:
    return (MEMBER_ORDER.index(key) if key in MEMBER_ORDER else len(MEMBER_ORDER), key)


def _write_chunks(
    member: Any, key: str, shape: tuple[int, ...], chunks: Iterable[np.ndarray], path: Path
) -> None:
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)),
              "fortran_order": False, "shape": tuple(shape)}  # fmt: skip
    np.lib.format.write_array_header_1_0(member, header)
    rows = 0
    for chunk in chunks:
        if chunk.dtype != np.uint8 or tuple(chunk.shape[1:]) != tuple(shape[1:]):
            raise ValueError(
                f"{path}: a chunk of {key} is {chunk.dtype} {tuple(chunk.shape)}, "
                f"expected uint8 (n, {', '.join(map(str, shape[1:]))})"
            )
        if len(chunk):
            member.write(memoryview(np.ascontiguousarray(chunk)).cast("B"))
        rows += len(chunk)
    if rows != shape[0]:
        raise ValueError(f"{path}: {key} got {rows} rows, expected {shape[0]}")
