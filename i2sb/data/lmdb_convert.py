"""Convert an image folder into the official LMDB layout (spec §6), verified, resumable, atomic at the end.

Every image is decoded once in worker processes; files that do not decode are skipped and listed in
a report instead of aborting the run. Writes go in large transactions and the LMDB map grows when
full. Already-stored keys are kept on a rerun, so an interrupted conversion resumes; the index JSON
(the completion marker) and the official ``.lmdb.pt`` are written only once every image is stored.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import lmdb

from i2sb.atomic import write_json
from i2sb.data.folders import FolderListing, scan_image_folder
from i2sb.data.index import write_index
from i2sb.data.layout import LmdbLayout, lmdb_layout
from i2sb.data.lmdb_env import release

DEFAULT_MAP_SIZE = 1 << 30  # grows by doubling on MapFullError


@dataclass
class ConversionReport:
    """What a conversion did; ``skipped`` lists every file that could not be stored and why."""

    source: str
    split: str
    stored: int = 0  # images in the finished LMDB
    written: int = 0  # written by this run (the rest were already present from an interrupted run)
    skipped: list[dict[str, str]] = field(default_factory=list)  # {"path", "reason"}
    ignored: list[str] = field(default_factory=list)  # files without an image extension
    special: list[str] = field(default_factory=list)  # FIFOs, sockets, devices: never read
    changed: list[str] = field(default_factory=list)  # stored before, changed since: redone
    removed: int = 0  # stored entries whose source file is gone (or keyed the old way)
    rescaled: list[str] = field(default_factory=list)  # high-bit-depth files stored as 8-bit PNG
    rotated: list[str] = field(default_factory=list)  # EXIF-oriented photos stored upright as PNG
    warnings: list[dict[str, str]] = field(default_factory=list)  # {"path", "warning"}
    seconds: float = 0.0

    @property
    def images_per_s(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class Verified:
    """One source file after decoding: the bytes to store, or why it cannot be stored."""

    path: str
    data: bytes | None
    reason: str | None = None  # why it was skipped
    rescaled: bool = False  # a high-bit-depth image, stored re-encoded as 8-bit PNG
    rotated: bool = False  # a photo with an EXIF orientation, stored upright as PNG
    warning: str | None = None  # decoded, but the decoder repaired damage


def read_and_verify(path: str) -> Verified:
    """Read a file and decode it fully (truncated files fail here, not at training).

    High-bit-depth images are stored as 8-bit PNG (i2sb.data.decode scales them), and photos
    with an EXIF orientation as the upright 8-bit PNG viewers show, so every reader of the LMDB,
    the reference's included (it ignores EXIF), sees the same pixels as ours.
    """
    from PIL import Image

    from i2sb.data.decode import is_high_bit_depth, jpeg_warning, to_rgb8, upright

    try:
        with open(path, "rb") as handle:
            data = handle.read()
        with Image.open(io.BytesIO(data)) as image:
            high = is_high_bit_depth(image.mode)
            turned = upright(image)
            rgb = to_rgb8(turned, path)
        if high or turned is not image:
            buffer = io.BytesIO()
            rgb.save(buffer, "PNG")
            return Verified(path, buffer.getvalue(), rescaled=high, rotated=turned is not image)
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as err:
        return Verified(path, None, f"{type(err).__name__}: {err}")
    return Verified(path, data, warning=jpeg_warning(data))


def _verified(paths: list[str], workers: int) -> Iterator[Verified]:
    if workers <= 0:
        yield from map(read_and_verify, paths)
        return
    # fork where the platform has it: workers start in milliseconds and do not re-import the
    # caller's __main__ (spawn would, which costs seconds when it imports torch and loops forever in
    # an unguarded script). The children only read files and run Pillow, never torch or OpenMP.
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    with multiprocessing.get_context(method).Pool(workers) as pool:
        yield from pool.imap(read_and_verify, paths, chunksize=64)


def _commit(env: lmdb.Environment, batch: list[tuple[bytes, bytes]]) -> None:
    """Write ``batch`` in one transaction, doubling the map size until it fits."""
    while True:
        try:
            with env.begin(write=True) as txn:
                for key, value in batch:
                    txn.put(key, value)
            return
        except lmdb.MapFullError:
            env.set_mapsize(env.info()["map_size"] * 2)
        except lmdb.Error as err:  # LMDB reports a failed write (disk full) as a bare I/O error
            raise _write_failure(env.path(), err) from err


def _write_failure(path: str, err: Exception) -> OSError:
    """An OSError naming the LMDB that could not be written, and whether its disk is full."""
    import errno
    import shutil

    free = shutil.disk_usage(path).free
    if free < 64 << 20:
        return OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)} ({err})", path)
    return OSError(errno.EIO, f"could not write the LMDB ({err}); rerun to resume", path)


def display_name(path: str) -> str:
    """``path`` printable and JSON-safe even when its bytes are not UTF-8."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def source_key(path: str, source: str) -> str:
    """The LMDB key of an image: its path relative to the source folder (``<class>/<file>``).

    Relative keys make a rerun with the same folder given another way (absolute, relative,
    through a link) find the entries already stored instead of adding them a second time.
    """
    return os.path.relpath(path, source)


def _source_stat(path: str) -> list[int]:
    stat = os.stat(path)
    return [stat.st_size, stat.st_mtime_ns]


def _read_sources(layout: LmdbLayout) -> dict[str, list[int]]:
    try:
        recorded = json.loads(layout.sources.read_text())
    except (OSError, json.JSONDecodeError):
        return {}  # none yet (first or interrupted run): nothing to compare against
    return recorded if isinstance(recorded, dict) else {}


def _prune(env: lmdb.Environment, wanted: set[bytes], report: ConversionReport) -> None:
    """Delete stored entries that no source file maps to any more (deleted files, old keys)."""
    with env.begin(write=True) as txn:
        stale = [key for key in txn.cursor().iternext(keys=True, values=False) if key not in wanted]
        for key in stale:
            txn.delete(key)
    report.removed = len(stale)


def _pending(
    env: lmdb.Environment, listing: FolderListing, layout: LmdbLayout, report: ConversionReport
) -> list[str]:
    """Paths still to store: new, or changed since they were stored (others are kept)."""
    recorded, todo, wanted = _read_sources(layout), [], set()
    with env.begin() as txn:
        present = set(txn.cursor().iternext(keys=True, values=False))
    for path, _ in listing.samples:
        try:
            key = source_key(path, report.source).encode("utf-8")
        except UnicodeEncodeError:
            report.skipped.append({"path": display_name(path),
                                   "reason": "file name is not valid UTF-8; rename the file"})  # fmt: skip
            continue
        if len(key) > env.max_key_size():
            report.skipped.append({"path": path, "reason": "path longer than the LMDB key limit"})
            continue
        wanted.add(key)
        previous = recorded.get(key.decode("utf-8"))
        if key in present and previous is not None and previous != _source_stat(path):
            report.changed.append(path)
            todo.append(path)
        elif key not in present:
            todo.append(path)
    _prune(env, wanted, report)
    return todo


def _write_all(
    env: lmdb.Environment,
    results: Iterable[Verified],
    report: ConversionReport,
    batch_images: int,
    batch_bytes: int,
) -> None:
    batch: list[tuple[bytes, bytes]] = []
    size = 0
    for result in results:
        key = source_key(result.path, report.source).encode("utf-8")
        if result.data is None:
            report.skipped.append({"path": result.path, "reason": result.reason or "unreadable"})
            with env.begin(write=True) as txn:
                txn.delete(key)  # a file that became unreadable keeps no stale entry
            continue
        if result.rescaled:
            report.rescaled.append(result.path)
        if result.rotated:
            report.rotated.append(result.path)
        if result.warning:
            report.warnings.append({"path": result.path, "warning": result.warning})
        batch.append((key, result.data))
        size += len(result.data)
        if len(batch) >= batch_images or size >= batch_bytes:
            _commit(env, batch)
            report.written += len(batch)
            batch, size = [], 0
    if batch:
        _commit(env, batch)
        report.written += len(batch)


def _write_markers(layout: LmdbLayout, listing: FolderListing, report: ConversionReport) -> None:
    skipped = {item["path"] for item in report.skipped}
    samples = [
        (source_key(path, report.source), label)
        for path, label in listing.samples
        if path not in skipped and display_name(path) not in skipped
    ]
    report.stored = len(samples)
    write_json(layout.report, {**asdict(report), "images_per_s": report.images_per_s})
    write_json(layout.sources, {key: _source_stat(os.path.join(report.source, key))
                                for key, _ in samples})  # fmt: skip
    write_official_pt(layout.official_pt, report.source, samples)
    # last: the index's presence marks the conversion complete
    write_index(layout, report.source, listing.classes, samples, report.skipped)


def write_official_pt(path: Path, source: str, samples: list[tuple[str, int]]) -> None:
    """Save a torchvision ImageFolder listing exactly ``samples`` (what NVlabs/I2SB's reader loads).

    Its ``samples``/``imgs`` hold the LMDB keys (paths relative to ``source``): the reference
    reader looks each image up in the LMDB by that path.
    """
    import torch
    from torchvision.datasets import ImageFolder

    from i2sb.atomic import atomic_path

    wanted = {os.path.join(source, key) for key, _ in samples}
    folder = ImageFolder(source, is_valid_file=wanted.__contains__, allow_empty=True)
    found = [(source_key(p, source), label) for p, label in folder.samples]
    if found != samples:
        raise RuntimeError(
            f"{source}: the folder changed during conversion; run the conversion again"
        )
    folder.samples = folder.imgs = found
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:  # no temporary name inside the file
        torch.save(folder, handle, pickle_protocol=4)


def convert_folder(
    src: str | Path,
    split: str,
    out: str | Path,
    workers: int | None = None,
    batch_images: int = 1000,
    batch_bytes: int = 256 << 20,
    map_size: int = DEFAULT_MAP_SIZE,
    progress: bool = True,
) -> ConversionReport:
    """Convert ``src`` (``src/<class>/<image>``) into ``out/<split>_faster_imagefolder.lmdb`` and friends.

    Keys are the image paths relative to ``src`` (``<class>/<file>``, UTF-8), values the files'
    raw bytes (high-bit-depth images and EXIF-oriented photos: the upright 8-bit PNG). Files
    that are not regular files (FIFO, socket, device) are never read (``report.special``). A rerun keeps what is stored, redoes files
    whose size or modification time changed (``report.changed``), drops entries whose file is
    gone, and skips file names that are not UTF-8 (listed in ``report.skipped``). ``workers=None`` uses one decode process per CPU (max 8);
    0 decodes in this process.
    """
    from i2sb.joblog import progress_bar

    if batch_images < 1 or batch_bytes < 1:
        raise ValueError(
            f"batch_images and batch_bytes must be >= 1, got {batch_images}, {batch_bytes}"
        )
    start = time.perf_counter()
    layout = lmdb_layout(out, split)
    source = os.fspath(src)
    listing = scan_image_folder(source)
    layout.data_dir.mkdir(parents=True, exist_ok=True)
    for marker in (layout.index, layout.official_pt):
        marker.unlink(missing_ok=True)  # from here until the end, the output is incomplete
    report = ConversionReport(source=source, split=split, ignored=listing.ignored,
                              special=listing.special)  # fmt: skip
    release(layout.lmdb)  # py-lmdb allows one handle per path per process
    env = lmdb.open(os.fspath(layout.lmdb), map_size=map_size, readahead=False, meminit=False)
    try:
        todo = _pending(env, listing, layout, report)
        bar = progress_bar(len(listing.samples), f"convert {split} ({source})", "img",
                           initial=len(listing.samples) - len(todo), enabled=progress)  # fmt: skip
        results = _verified(todo, min(8, os.cpu_count() or 1) if workers is None else workers)
        _write_all(env, _counted(results, bar), report, batch_images, batch_bytes)
        bar.close()
        env.sync()
    finally:
        env.close()
    report.seconds = time.perf_counter() - start
    _write_markers(layout, listing, report)
    return report


def _counted(items: Iterable, bar) -> Iterator:
    for item in items:
        bar.update(1)
        yield item
