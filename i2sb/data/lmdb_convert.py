"""Convert an image folder into the official LMDB layout (spec §6), verified, resumable, atomic at the end.

Every image is decoded once in worker processes; files that do not decode are skipped and listed in
a report instead of aborting the run. Writes go in large transactions and the LMDB map grows when
full. Already-stored keys are kept on a rerun, so an interrupted conversion resumes; the index JSON
(the completion marker) and the official ``.lmdb.pt`` are written only once every image is stored.
"""

from __future__ import annotations

import io
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
    seconds: float = 0.0

    @property
    def images_per_s(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else 0.0


def read_and_verify(path: str) -> tuple[str, bytes | None, str | None]:
    """Read a file and decode it fully; return (path, raw bytes, None) or (path, None, reason)."""
    from PIL import Image

    try:
        with open(path, "rb") as handle:
            data = handle.read()
        with Image.open(io.BytesIO(data)) as image:
            image.convert("RGB")  # forces a full decode: truncated files fail here, not at training
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as err:
        return path, None, f"{type(err).__name__}: {err}"
    return path, data, None


def _verified(paths: list[str], workers: int) -> Iterator[tuple[str, bytes | None, str | None]]:
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


def _stored_keys(env: lmdb.Environment) -> set[bytes]:
    with env.begin() as txn:
        return set(txn.cursor().iternext(keys=True, values=False))


def _pending(env: lmdb.Environment, listing: FolderListing, report: ConversionReport) -> list[str]:
    """Paths still to store: not yet in the LMDB (an interrupted run's keys are kept)."""
    present, todo = _stored_keys(env), []
    for path, _ in listing.samples:
        key = path.encode("utf-8")
        if len(key) > env.max_key_size():
            report.skipped.append({"path": path, "reason": "path longer than the LMDB key limit"})
        elif key not in present:
            todo.append(path)
    return todo


def _write_all(
    env: lmdb.Environment,
    results: Iterable[tuple[str, bytes | None, str | None]],
    report: ConversionReport,
    batch_images: int,
    batch_bytes: int,
) -> None:
    batch: list[tuple[bytes, bytes]] = []
    size = 0
    for path, data, reason in results:
        if data is None:
            report.skipped.append({"path": path, "reason": reason or "unreadable"})
            continue
        batch.append((path.encode("utf-8"), data))
        size += len(data)
        if len(batch) >= batch_images or size >= batch_bytes:
            _commit(env, batch)
            report.written += len(batch)
            batch, size = [], 0
    if batch:
        _commit(env, batch)
        report.written += len(batch)


def _write_markers(layout: LmdbLayout, listing: FolderListing, report: ConversionReport) -> None:
    skipped = {item["path"] for item in report.skipped}
    samples = [(path, label) for path, label in listing.samples if path not in skipped]
    report.stored = len(samples)
    write_json(layout.report, {**asdict(report), "images_per_s": report.images_per_s})
    write_official_pt(layout.official_pt, report.source, samples)
    # last: the index's presence marks the conversion complete
    write_index(layout, report.source, listing.classes, samples, report.skipped)


def write_official_pt(path: Path, source: str, samples: list[tuple[str, int]]) -> None:
    """Save a torchvision ImageFolder listing exactly ``samples`` (what NVlabs/I2SB's reader loads)."""
    import torch
    from torchvision.datasets import ImageFolder

    from i2sb.atomic import atomic_path

    wanted = {sample_path for sample_path, _ in samples}
    folder = ImageFolder(source, is_valid_file=wanted.__contains__, allow_empty=True)
    if [tuple(s) for s in folder.samples] != samples:
        raise RuntimeError(
            f"{source}: the folder changed during conversion; run the conversion again"
        )
    with atomic_path(path) as tmp:
        torch.save(folder, tmp, pickle_protocol=4)


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

    Keys are the image paths as ``os.path.join(src, class, file)`` (UTF-8, i.e. ASCII for ASCII
    names), values the files' raw bytes. ``workers=None`` uses one decode process per CPU (max 8);
    0 decodes in this process.
    """
    from tqdm import tqdm

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
    report = ConversionReport(source=source, split=split, ignored=listing.ignored)
    release(layout.lmdb)  # py-lmdb allows one handle per path per process
    env = lmdb.open(os.fspath(layout.lmdb), map_size=map_size, readahead=False, meminit=False)
    try:
        todo = _pending(env, listing, report)
        bar = tqdm(total=len(listing.samples), initial=len(listing.samples) - len(todo),
                   desc=f"convert {split}", unit="img", disable=not progress)  # fmt: skip
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
