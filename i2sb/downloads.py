"""External files (checkpoints, reference statistics, masks, subset lists): find, fetch, verify.

Resolution order for a file: an explicit path (config key), then its environment variable,
then the cache folder (``downloads.cache_dir``, else ``$I2SB_CACHE``, else ``~/.cache/i2sb``),
and only then a download. Downloads go to a temporary file, are checked against the SHA-256,
then renamed. Where the SHA-256 was not published and could not be measured offline, the
digest of the first download is recorded beside the file and every later use is checked
against it (trust on first use): every ``Resource`` whose ``sha256`` is None.
"""

from __future__ import annotations

import functools
import hashlib
import os
import socket
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from i2sb.atomic import atomic_path, write_text


class DownloadError(RuntimeError):
    """A needed external file is neither pre-placed nor downloadable; the message says how to fix it."""


class PlacedFileMissing(DownloadError, FileNotFoundError):
    """A config key or environment variable points at a file that is not there: a user error, never
    a reason to fall back to something else."""


@dataclass(frozen=True)
class Resource:
    name: str
    url: str
    filename: str
    env: str  # environment variable that may point at a pre-placed copy
    config_key: str  # config key that may point at a pre-placed copy
    sha256: str | None = None  # None: not published; pinned on first download (trust on first use)


RESOURCES: dict[str, Resource] = {
    r.name: r
    for r in (
        Resource(
            "adm_checkpoint",
            "https://openaipublic.blob.core.windows.net/diffusion/jul-2021/256x256_diffusion_uncond.pt",
            "256x256_diffusion_uncond.pt",
            "I2SB_ADM_CHECKPOINT",
            "downloads.adm_checkpoint",
        ),
        Resource(
            "fid_reference",
            "https://openaipublic.blob.core.windows.net/diffusion/jul-2021/ref_batches/imagenet/256/"
            "VIRTUAL_imagenet256_labeled.npz",
            "VIRTUAL_imagenet256_labeled.npz",
            "I2SB_FID_REFERENCE",
            "downloads.fid_reference",
        ),
        Resource(
            "freeform_masks",
            "https://drive.google.com/uc?export=download&id=1-5YRGsekjiRKQWqo0BV5RVQu0bagc12w",
            "imagenet_freeform_masks.npz",
            "I2SB_FREEFORM_MASKS",
            "downloads.freeform_masks",
        ),
        Resource(
            "subset_fn",
            "https://raw.githubusercontent.com/NVlabs/I2SB/master/dataset/val_faster_imagefolder_10k_fn.txt",
            "val_faster_imagefolder_10k_fn.txt",
            "I2SB_SUBSET_FN",
            "downloads.subset_fn",
        ),
        Resource(
            "subset_label",
            "https://raw.githubusercontent.com/NVlabs/I2SB/master/dataset/val_faster_imagefolder_10k_label.txt",
            "val_faster_imagefolder_10k_label.txt",
            "I2SB_SUBSET_LABEL",
            "downloads.subset_label",
        ),
    )
}


def cache_dir(configured: str = "") -> Path:
    if configured:
        return Path(configured).expanduser()
    return Path(os.environ.get("I2SB_CACHE", "~/.cache/i2sb")).expanduser()


# The paper's nine run folders (latest.pt + options.pkl, ~8.8 GB each) as Google Drive folder ids,
# facts from the official download script (spec section 11). Weights: CC-BY-NC-SA-4.0.
PUBLISHED_CHECKPOINTS: dict[str, str] = {
    "inpaint-center": "1ounBKyUezkZmjC7d3tzbBwfEBe0Y7bkM",
    "inpaint-freeform1020": "1WGYzrxO-t4Q6XadgwWdUuh6Ue966LYKw",
    "inpaint-freeform2030": "18Q1ZtUcl3z63v0VOSR5hVH3T5fGNgf3I",
    "blur-gauss": "1vatmaOiEgO_Z9JQiFhHdcjiSNgnS9lBY",
    "blur-uni": "1_U9IhgH7CxNp0_8o9F3D86sihflPGKDZ",
    "sr4x-pool": "1VIA8haw3Oy0OqL-CeEM2Rekk92tL0gD0",
    "sr4x-bicubic": "1QfpggccSV9llWMBrklZ6OPdlGR7qRd6F",
    "jpeg-5": "17bPMUX5yBcL8YTN8nbfJT6WHXU6CNLd7",
    "jpeg-10": "13on7v54W8ncQ4RlSl3PIZn0NalfiGaJd",
}
PUBLISHED_FILES = ("latest.pt", "options.pkl")
PUBLISHED_IMAGE_SIZE = 256  # every published folder holds the ADM 256 network


def checkpoints_dir(configured: str = "", cache: str = "") -> Path:
    """Where published run folders live: ``checkpoints.dir``, else ``<cache>/checkpoints``."""
    return Path(configured).expanduser() if configured else cache_dir(cache) / "checkpoints"


def published_folder(task: str, configured: str = "", cache: str = "") -> Path:
    """Where the published run folder of ``task`` is placed or fetched: ``<checkpoints dir>/<task>``.

    A user-configured place (``checkpoints.dir``, ``downloads.cache_dir``), not a results path: the
    workflow's download_checkpoint job resolves it once and records it, and every later job reads
    the folder from that record.
    """
    return checkpoints_dir(configured, cache) / task


def gdown_folder(folder_id: str, output: Path) -> list[str]:
    """Download a Google Drive folder's files into ``output`` with gdown (the optional extra
    ``i2sb[published]``); resumes files a previous call left in ``output``."""
    try:
        import gdown
    except ImportError:
        raise DownloadError(
            "downloading a published checkpoint needs gdown: pip install 'i2sb[published]'"
        ) from None
    files = gdown.download_folder(id=folder_id, output=str(output), quiet=False, resume=True)
    if not files:
        raise DownloadError(f"gdown fetched nothing from Google Drive folder {folder_id}")
    return [str(f) for f in files]


def download_published_folder(task: str, folder: Path, downloader=gdown_folder) -> Path:
    """Fetch the published run folder of ``task`` into ``<folder>.partial`` and return that path.

    Nothing is written at ``folder`` itself: the caller checks the partial folder and only then
    renames it (a half-downloaded checkpoint is never taken for a finished one). Every expected
    file must be there and non-empty (a size check: Drive publishes no checksums).
    """
    if task not in PUBLISHED_CHECKPOINTS:
        raise DownloadError(
            f"task {task} has no published checkpoint (published: {', '.join(PUBLISHED_CHECKPOINTS)}); "
            f"place a run folder (latest.pt + options.pkl) at {folder}"
        )
    folder_id = PUBLISHED_CHECKPOINTS[task]
    partial = folder.with_name(folder.name + ".partial")
    partial.mkdir(parents=True, exist_ok=True)
    try:
        downloader(folder_id, partial)
    except DownloadError:
        raise
    except Exception as err:  # gdown raises requests, OS and its own errors; all mean "not fetched"
        raise DownloadError(
            f"cannot download the published {task} checkpoint (Google Drive folder {folder_id}): "
            f"{err}. Offline? Place its latest.pt and options.pkl in {folder} (config checkpoints.dir)"
        ) from None
    for name in PUBLISHED_FILES:
        path = partial / name
        if not path.is_file() or path.stat().st_size == 0:
            raise DownloadError(
                f"{path}: missing or empty after downloading Google Drive folder {folder_id}; "
                "run the download again to resume it"
            )
    return partial


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _verify(resource: Resource, path: Path) -> None:
    expected = resource.sha256
    pin = path.with_name(path.name + ".sha256")
    if expected is None and pin.exists():
        expected = pin.read_text().split()[0]
    if expected is None:
        return
    actual = sha256_of(path)
    if actual != expected:
        raise DownloadError(
            f"{path}: SHA-256 {actual} does not match the expected {expected} for {resource.name}; "
            "delete the file (and its .sha256) to download it again"
        )


def locate(name: str, explicit: str = "", cache: str = "") -> Path | None:
    """Where a pre-placed or cached copy is, or None; an explicit path that is missing is an error."""
    resource = RESOURCES[name]
    for source, value in (
        (resource.config_key, explicit),
        (resource.env, os.environ.get(resource.env, "")),
    ):
        if value:
            path = Path(value).expanduser()
            if not path.is_file():
                raise PlacedFileMissing(f"{source} points at {path}, which is not a file")
            return path
    cached = cache_dir(cache) / resource.filename
    return cached if cached.is_file() else None


@functools.cache
def unreachable(url: str, timeout: float = 5.0) -> str | None:
    """Why ``url``'s host cannot be reached (no DNS, no route), or None when it answers a connection.

    Asked before a library downloads (torch.hub prints "Downloading ..." before it finds out), so an
    offline machine says what is missing instead; once per host and process.
    """
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=timeout).close()
    except OSError as err:
        return f"{parts.hostname} cannot be reached: {err}"
    return None


def fetch(name: str, explicit: str = "", cache: str = "", timeout: float = 60.0) -> Path:
    """Return a verified local copy of resource ``name``, downloading it if needed."""
    if name not in RESOURCES:
        raise KeyError(f"unknown resource {name!r}; known: {', '.join(RESOURCES)}")
    resource = RESOURCES[name]
    found = locate(name, explicit, cache)
    if found is not None:
        _verify(resource, found)
        return found
    target = cache_dir(cache) / resource.filename
    try:
        with (
            urllib.request.urlopen(resource.url, timeout=timeout) as response,
            atomic_path(target) as tmp,
        ):
            _copy_with_progress(response, tmp, resource.filename)
            digest = sha256_of(tmp)
            if resource.sha256 is not None and digest != resource.sha256:
                raise DownloadError(
                    f"download of {resource.url} has SHA-256 {digest}, expected {resource.sha256}"
                )
    except (urllib.error.URLError, TimeoutError, OSError) as err:
        raise DownloadError(
            f"cannot download {resource.name} from {resource.url} ({err}). Offline? Place the file at "
            f"{target}, or point {resource.config_key} (config) or ${resource.env} at a copy."
        ) from None
    if resource.sha256 is None:
        write_text(target.with_name(target.name + ".sha256"), f"{digest}  {resource.filename}\n")
    return target


def _copy_with_progress(response, path: Path, name: str) -> None:
    """Copy a download to ``path`` in 1 MiB chunks, showing progress (a bar, or log lines in a job)."""
    from i2sb.joblog import progress_bar

    length = int(response.headers.get("Content-Length") or 0)
    bar = progress_bar(-(-length // (1 << 20)), f"download {name}", "MiB", enabled=length > 0)
    with open(path, "wb") as out:
        while chunk := response.read(1 << 20):
            out.write(chunk)
            bar.update(1)
    bar.close()


def fetch_to_record(names: list[str], downloads, record_path: str | Path) -> dict[str, object]:
    """Fetch resources by name (paths from the ``downloads`` config section) and write their record."""
    files = {name: fetch(name, getattr(downloads, name, ""), downloads.cache_dir) for name in names}
    return record_files(files, record_path)


# User files read where they are placed, never fetched, recorded as a download is (name -> config
# key), so that one replaced in place reruns what read it: the validation set's FID statistics.
PLACED_FILES = {"fid_val_stats": "evaluate.fid_val_stats"}
RECORDED_KEYS = {r.name: r.config_key for r in RESOURCES.values()} | PLACED_FILES


def record_files(files: dict[str, str | Path], record_path: str | Path) -> dict[str, object]:
    """Write the JSON record of the files a job resolved: per name its path, its identity on disk
    (``<name>_identity``: i2sb.identity.file_identity) and its SHA-256 (``<name>_sha256``).

    Planning compares the identity with the file at every call, by stat only, and reruns the job
    writing the record (and the jobs reading it) when the file was replaced in place or is gone.
    """
    from i2sb.atomic import write_json
    from i2sb.identity import file_identity

    record: dict[str, object] = {}
    for name, path in files.items():
        identity = file_identity(path)  # before hashing: a swap during the hash reruns, never hides
        if identity is None or not Path(path).is_file():
            raise PlacedFileMissing(f"{RECORDED_KEYS[name]}: {path} is not a file")
        record[name] = str(path)
        record[f"{name}_sha256"] = sha256_of(Path(path))
        record[f"{name}_identity"] = identity
    write_json(record_path, record)
    return record


def recorded_files(records: list[str | Path]) -> dict[str, str]:
    """Resource name -> the file each download record (``record_files``) names.

    A recorded file that is gone is an error naming the record: the job reads the file its download
    job resolved and verified, never another one found again.
    """
    import json

    files = {}
    for record in records:
        for name, path in json.loads(Path(record).read_text()).items():
            if name not in RECORDED_KEYS:
                continue  # its <name>_sha256 and <name>_identity entries
            if not Path(path).is_file():
                raise DownloadError(
                    f"{record}: {name} is recorded at {path}, which is no longer a file; "
                    "delete the record to resolve it again"
                )
            files[name] = path
    return files


def recorded_digests(records: list[str | Path]) -> dict[str, str]:
    """Name -> the SHA-256 each download record holds for its file: what a job read, by content.
    Training keeps them in options.json and resumes only a latest.pt made from the same files."""
    import json

    digests = {}
    for record in records:
        entries = json.loads(Path(record).read_text())
        digests |= {
            name: entries[f"{name}_sha256"]
            for name in entries
            if name in RECORDED_KEYS and f"{name}_sha256" in entries
        }
    return digests


def with_recorded_files(config, records: list[str | Path]):
    """``config`` (an i2sb Config) with each recorded file's config key (``downloads.<name>``,
    ``evaluate.fid_val_stats``) set to the file its record names.

    Why: a job that looked the file up again (config key, environment variable, cache) could find
    another one than its download job verified, e.g. on a cluster node with another $I2SB_CACHE.
    """
    import dataclasses

    for name, path in recorded_files(records).items():
        section, key = RECORDED_KEYS[name].split(".")
        values = dataclasses.replace(getattr(config, section), **{key: path})
        config = dataclasses.replace(config, **{section: values})
    return config
