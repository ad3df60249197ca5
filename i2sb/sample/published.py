"""The paper's published run folders (spec section 11): check one, or fetch it once and check it.

A run folder is ``<dir>/<task>/{latest.pt, options.pkl}``. It is accepted only when latest.pt is a
complete torch zip archive whose every member matches its CRC-32, holding ``net`` and ``ema`` that
fit the network its options describe; options.pkl (even beside an options.json) passes the
restricted unpickler and every option the sampler uses has its type and range; and its task and
image size are the ones asked for. The check maps latest.pt (``mmap``), so no weights are held in
memory, but it reads the whole file once for the CRCs: 0.41 GB/s from the page cache on a loaded
2-core machine (benchmarks/bench_checkpoint_crc.py; sha256 there: 0.24 GB/s), so ~21 s for a
published 8.8 GB file, or the disk's time to read it when that is slower. A download lands in
``<task>.partial`` and is renamed only after it passes the same check.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

from i2sb.downloads import (
    PUBLISHED_FILES,
    PUBLISHED_IMAGE_SIZE,
    DownloadError,
    download_published_folder,
    gdown_folder,
)


class CheckpointLayoutError(ValueError):
    """A run folder is not usable for the task asked for; the message names the file at fault."""


def _check_options(folder: Path, task: str, image_size: int | None) -> dict[str, Any]:
    """Check every options file present: options.json (ours) and options.pkl, the latter even
    beside options.json since the reference's sample.py unpickles it. Each must pass the
    restricted unpickler (or be JSON), give every option the sampler uses with its exact type and
    range, name ``task`` and ``image_size``; when both are there they must agree."""
    from i2sb.network.checkpoint import read_options_file
    from i2sb.sample.options import sampling_options

    checked = {}
    for source in (folder / "options.json", folder / "options.pkl"):
        if not source.is_file():
            continue
        try:
            options = sampling_options(read_options_file(source), source=str(source))
        except (ValueError, KeyError) as err:
            message = err.args[0] if err.args else str(err)
            raise CheckpointLayoutError(f"{message} (not the options of an I2SB run)") from None
        if options.task != task:
            raise CheckpointLayoutError(f"{source}: a run of task {options.task}, expected {task}")
        if image_size is not None and options.image_size != image_size:
            raise CheckpointLayoutError(
                f"{source}: a model of {options.image_size} px, but data.image_size is {image_size}"
            )
        checked[source.name] = options.to_dict()
    if len(checked) == 2:
        ours, theirs = checked["options.json"], checked["options.pkl"]
        differ = [key for key in ours if ours[key] != theirs[key]]
        if differ:
            key = differ[0]
            raise CheckpointLayoutError(
                f"{folder}: options.json and options.pkl disagree on {key} ({ours[key]!r} vs "
                f"{theirs[key]!r}): the reference's sample.py would sample another model"
            )
    return checked.get("options.json") or checked["options.pkl"]


def check_run_folder(
    folder: str | Path, task: str, image_size: int | None = None
) -> dict[str, Any]:
    """Check a (published) run folder for ``task``; returns what was checked (files and sizes).

    Raises CheckpointLayoutError naming the file: a missing file, a truncated latest.pt, a
    latest.pt without net/ema or not fitting the network, a foreign or unreadable options.pkl, or
    a task / image size other than the ones asked for.
    """
    from i2sb.network.checkpoint import load_i2sb_checkpoint, verify_archive

    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointLayoutError(f"{folder}: not a folder (expected latest.pt and options.pkl)")
    for name in PUBLISHED_FILES:
        if not (folder / name).is_file():
            raise CheckpointLayoutError(
                f"{folder / name}: missing (a run folder holds {PUBLISHED_FILES})"
            )
    latest = folder / "latest.pt"
    if not zipfile.is_zipfile(latest):
        raise CheckpointLayoutError(
            f"{latest}: not a complete torch checkpoint (truncated download, or not a zip archive); "
            "delete it and download again"
        )
    options = _check_options(folder, task, image_size)
    try:
        load_i2sb_checkpoint(folder)  # mmap: only the archive's index is read
        verify_archive(latest)  # every member's CRC-32: reads the whole file once
    except (RuntimeError, KeyError, ValueError) as err:
        raise CheckpointLayoutError(str(err.args[0] if err.args else err)) from None
    return {
        "task": task,
        "folder": str(folder.resolve()),
        "image_size": options["image_size"],
        "files": {name: (folder / name).stat().st_size for name in PUBLISHED_FILES},
    }


def fetch_published_checkpoint(
    task: str, folder: str | Path, image_size: int | None = None, downloader=gdown_folder
) -> dict[str, Any]:
    """The checked run folder of ``task`` at ``folder``: pre-placed, or downloaded there first.

    A folder already at ``folder`` is never downloaded over: if it fails the check, the error says
    so and names the file. ``downloader(folder_id, output)`` defaults to gdown.
    """
    folder = Path(folder)
    if folder.exists():
        return {**check_run_folder(folder, task, image_size), "source": "pre-placed"}
    if image_size is not None and image_size != PUBLISHED_IMAGE_SIZE:
        raise CheckpointLayoutError(
            f"the published {task} model is {PUBLISHED_IMAGE_SIZE} px, but data.image_size is "
            f"{image_size}: set it to {PUBLISHED_IMAGE_SIZE} (config/reproduce.yaml does)"
        )
    partial = download_published_folder(task, folder, downloader)
    try:
        check_run_folder(partial, task, image_size)
    except CheckpointLayoutError as err:
        raise DownloadError(
            f"the downloaded {task} folder failed its check: {err} (delete {partial} to start over)"
        ) from None
    os.replace(partial, folder)
    return {**check_run_folder(folder, task, image_size), "source": "downloaded"}


def checkpoint_to_record(
    task: str, folder: str | Path, image_size: int | None, record_path: str | Path
) -> dict[str, Any]:
    """The workflow's entry: fetch or accept ``folder``, check it, write a JSON record of it."""
    from i2sb.atomic import write_json

    record = fetch_published_checkpoint(task, folder, image_size)
    write_json(record_path, record)
    return record
