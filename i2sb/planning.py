"""Planning-time checks of a config against the disk: what the workflow will read must be there.

Run by the Snakefile before it plans, so a placeholder such as ``data.root: /path/to/imagenet``
stops ``snakemake -n`` naming the key, instead of failing a job hours later. Light: imports
neither torch nor mlflow.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from i2sb.config import Config, ConfigError
from i2sb.identity import file_identity
from i2sb.tasks import PAIRED_TASK


def missing_inputs(cfg: Config) -> list[str]:
    """Each configured input the workflow reads that is not on disk, naming its config key.

    Checked when the workflow is planned, so a placeholder such as ``data.root: /path/to/imagenet``
    stops ``snakemake -n`` instead of a job hours later.
    """
    problems = []
    root = Path(cfg.data.root)
    # as training checks it (train.setup.build_parts), but before anything is converted or queued
    misfits = [task for task in cfg.tasks if (task == PAIRED_TASK) != (cfg.data.kind == "paired")]
    if misfits:
        problems.append(
            f"tasks: {', '.join(misfits)} does not fit data.kind = {cfg.data.kind!r}: paired data "
            f"(data.kind: paired) runs task {PAIRED_TASK!r} only, and task {PAIRED_TASK!r} needs it"
        )
    if cfg.data.kind == "paired" and not cfg.data.root:  # "" is the run's own (unpaired) photos
        problems.append(
            "data.root: paired data needs its folder (train/ and val/ holding A/ and B/, or "
            'train.csv and val.csv), not "" (the run\'s own photos are not pairs)'
        )
    if cfg.data.kind in ("imagefolder", "paired") and cfg.data.root:  # "" = the run's own photos
        if not root.is_dir():
            problems.append(f"data.root: {root} is not a folder (expected train/ and val/ inside)")
        else:
            # published checkpoints are not trained: only the validation split is read
            for split in ("val",) if cfg.published else ("train", "val"):
                csv_ok = cfg.data.kind == "paired" and (root / f"{split}.csv").is_file()
                if not (root / split).is_dir() and not csv_ok:
                    listing = (
                        f"{split}/ or {split}.csv" if cfg.data.kind == "paired" else f"{split}/"
                    )
                    problems.append(f"data.root: {root} has no {listing}")
    placed = {
        f"downloads.{f.name}": getattr(cfg.downloads, f.name)
        for f in dataclasses.fields(cfg.downloads)
    }
    placed["evaluate.fid_val_stats"] = cfg.evaluate.fid_val_stats
    for key, path in placed.items():
        if path and key != "downloads.cache_dir" and not Path(path).is_file():
            problems.append(f"{key}: {path} is not a file")
    if cfg.published:
        problems += _published_problems(cfg)
    return problems


def _published_problems(cfg: Config) -> list[str]:
    """Tasks whose run folder is not placed and cannot be downloaded for this config: no published
    folder, or a published model of another size (caught before 8.8 GB are downloaded)."""
    from i2sb.downloads import PUBLISHED_CHECKPOINTS, PUBLISHED_IMAGE_SIZE, published_folder

    problems = []
    for task in cfg.tasks:
        folder = published_folder(task, cfg.checkpoints.dir, cfg.downloads.cache_dir)
        if folder.is_dir():
            continue  # placed: download_checkpoint checks its task and size
        if task not in PUBLISHED_CHECKPOINTS:
            problems.append(
                f"checkpoints.source: no published checkpoint of task {task} (published: "
                f"{', '.join(PUBLISHED_CHECKPOINTS)}) and no run folder placed at {folder}"
            )
        elif cfg.data.image_size != PUBLISHED_IMAGE_SIZE:
            problems.append(
                f"data.image_size: {cfg.data.image_size}, but the published {task} model is "
                f"{PUBLISHED_IMAGE_SIZE} px (checkpoints.source: published)"
            )
    return problems


def check_inputs(cfg: Config, source: str) -> None:
    """Raise ConfigError listing every missing input of :func:`missing_inputs`."""
    problems = missing_inputs(cfg)
    if problems:
        raise ConfigError(
            f"missing inputs in {source} (fix the config key or place the file):\n  "
            + "\n  ".join(problems)
        )


# ---- What each job reads: its slice of the config, as an input file that changes with it ----
#
# Snakemake cannot represent dataclass params and compares params only against its .snakemake/
# metadata, so each job gets an input file holding the config values it reads. The file's name
# carries the hash of its content (RUN/config/<slice>-<sha16>.json): a changed value is a new
# path, which the first `snakemake` call after the change sees as a missing input (no metadata
# needed); the rule that writes it removes the slice's older versions, so A -> B -> A reruns too.

_SAMPLE_DATA = ("data.kind", "data.root", "data.image_size", "data.eval_subset",
                "data.max_eval_images", "data.num_workers", "data.mask_source", "data.mask_seed")  # fmt: skip
# results_dir and benchmark are in no slice: they say where the run lives (every path holds them),
# so a results folder copied or moved reruns nothing; a job that needs them gets them as
# read_slice's ``where``, from the workflow's paths.
# train.resources: where and how long a job may run; only the geometry changes the weights.
_TRAIN_HOW = ("cpus_per_task", "mem_mb", "runtime_min", "rendezvous_timeout_s")

SLICE_KEYS: dict[str, tuple[str, ...]] = {
    "demo_photos": ("data.demo", "data.image_size"),
    "convert_lmdb": ("data.kind", "data.root"),
    "paired_sources": ("data.root",),
    "download_checkpoint": ("checkpoints", "downloads.cache_dir", "data.image_size"),
    "placed_fid_val_stats": ("evaluate.fid_val_stats",),
    "fid_val_stats": ("data.root", "data.image_size", "evaluate.batch_size",
                      "evaluate.require_external_metrics"),
    # one slice per sampler label, as for sample: evaluation checks the samples' identity
    # (evalset.expected_identity: the sampler entry, seed, clip_denoise, the evaluation images)
    "evaluate": ("data.kind", "data.root", "data.image_size", "data.eval_subset",
                 "data.max_eval_images", "data.mask_source", "data.mask_seed", "evaluate",
                 "downloads.fid_reference", "downloads.cache_dir", "downloads.subset_fn",
                 "downloads.subset_label", "downloads.freeform_masks", "sample.seed",
                 "sample.clip_denoise"),
    "report": ("benchmark", "tasks", "tracking"),
    # train reads the whole resolved config (its options.json records it); this slice is what
    # changes the trained weights: tracking.* (live logging) and sample.precision (the
    # validation previews) are left out, so a new tracking server retrains nothing.
    "train": ("data.kind", "data.root", "data.image_size", "data.demo", "data.num_workers",
              "data.mask_source", "data.mask_seed", "network", "bridge", "downloads.adm_checkpoint",
              "downloads.freeform_masks", "downloads.cache_dir",
              *(f"train.{k}" for k in ("iterations", "batch_size", "microbatch", "lr", "lr_step",
                                       "lr_gamma", "weight_decay", "ema_decay", "grad_clip",
                                       "precision", "seed", "checkpoint_every", "validate_every",
                                       "validate_nfe", "validate_images", "log_every",
                                       "resources.gpus", "resources.nodes"))),
    # one slice per sampler label: samplers holds only that entry (see sampler_slice)
    "sample": (*_SAMPLE_DATA, "downloads.subset_fn", "downloads.subset_label",
               "downloads.freeform_masks", "downloads.cache_dir", "sample", "network.compile"),
}  # fmt: skip


def download_slice_keys(names: list[str]) -> tuple[str, ...]:
    """A download rule reads its own pre-placed paths and the cache folder."""
    return ("downloads.cache_dir", *(f"downloads.{n}" for n in names))


def slice_values(values: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """The nested sub-dict of ``values`` (a resolved config dict) holding exactly ``keys``."""
    out: dict[str, Any] = {}
    for key in keys:
        *parents, leaf = key.split(".")
        src, dst = values, out
        for name in parents:
            src, dst = src[name], dst.setdefault(name, {})
        dst[leaf] = src[leaf]
    return out


def sampler_slice(values: dict[str, Any], index: int, rule: str = "sample") -> dict[str, Any]:
    """The slice of a ``rule`` job (sample, evaluate) for samplers[index]: the rule's keys plus
    that samplers entry only, so a change to another sampler reruns none of its jobs."""
    return slice_values(values, SLICE_KEYS[rule]) | {"samplers": [values["samplers"][index]]}


def slice_digest(values: dict[str, Any]) -> str:
    """16 hex digits of the SHA-256 of the slice's canonical JSON: the slice file's name."""
    blob = json.dumps(values, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def write_slice(values: dict[str, Any], out: str | Path) -> None:
    """Write a slice file and remove the other versions of the same slice (its stale hashes)."""
    from i2sb.atomic import write_json

    out = Path(out)
    name, digest = out.stem.rsplit("-", 1)
    if digest != slice_digest(values):
        raise ValueError(f"{out}: the name's hash is not the hash of the slice's values")
    write_json(out, {"slice": name, "values": values})
    stale = re.compile(rf"{re.escape(name)}-[0-9a-f]{{16}}\.json")
    for other in out.parent.iterdir():
        if other != out and stale.fullmatch(other.name):
            other.unlink(missing_ok=True)


def read_slice(path: str | Path, where: dict[str, str] | None = None) -> Config:
    """A job's Config from its slice file; a key outside the slice fails when used, naming it.

    The slice must hold every value the job reads (else a change there would not rerun it), so
    a key the job reads but the slice lacks is an error, never a silent default. ``where``
    adds top-level keys that place the run (results_dir, benchmark), never what it computes.
    """
    from i2sb.config import config_from_dict, field_paths

    values = json.loads(Path(path).read_text())["values"] | dict(where or {})
    cfg = config_from_dict(values, source=str(path), across_sections=False)
    present = set(_dotted_keys(values))
    for key in field_paths():
        if not any(key == k or key.startswith(k + ".") for k in present):
            _mark_absent(cfg, key, path)
    return cfg


def _dotted_keys(values: dict[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for name, value in values.items():
        key = f"{prefix}{name}"
        if isinstance(value, dict) and value and key != "samplers":
            keys += _dotted_keys(value, key + ".")
        else:
            keys.append(key)
    return keys


def _mark_absent(cfg: Any, key: str, path: str | Path) -> None:
    *parents, leaf = key.split(".")
    owner = cfg
    for name in parents:
        owner = getattr(owner, name)
    object.__setattr__(owner, leaf, _NotInSlice(key, str(path)))


class _NotInSlice:
    """Stands for a config value the job's slice does not hold: any use of it raises."""

    def __init__(self, key: str, path: str) -> None:
        object.__setattr__(self, "_why", f"config key {key} is not in this job's slice {path} "
                           "(add it to SLICE_KEYS in i2sb/planning.py)")  # fmt: skip

    def _fail(self, *args: Any, **kwargs: Any) -> Any:
        raise ConfigError(object.__getattribute__(self, "_why"))

    def __getattr__(self, name: str) -> Any:
        self._fail()

    def __repr__(self) -> str:
        return "<not in slice>"

    __bool__ = __eq__ = __hash__ = __str__ = __int__ = __float__ = __index__ = _fail
    __iter__ = __len__ = __fspath__ = __format__ = __lt__ = __gt__ = __getitem__ = _fail


# ---- Inputs replaced in place: identities by stat, compared with the records jobs wrote ----


def tree_identity(folder: str | Path) -> str | None:
    """SHA-256 of every file's (relative name, size, mtime_ns) under ``folder`` (None when missing).

    Cheap enough to run at every planning (stat only, no file is opened); a photo replaced under
    the same name changes its mtime, so the LMDB built from the folder is converted again.
    Linked folders are walked as the readers walk them (a class folder, or paired data's A/,
    linked to shared storage), each real folder once, so a link cycle ends.
    """
    root = Path(folder)
    if not root.is_dir():
        return None
    digest = hashlib.sha256()
    walked: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        try:
            stat = os.stat(dirpath)
        except OSError:
            stat = None
        if stat is None or (stat.st_dev, stat.st_ino) in walked:
            dirnames[:], filenames[:] = [], []  # gone, or already walked through another link
        else:
            walked.add((stat.st_dev, stat.st_ino))
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath, name)
            try:
                stat = path.stat()
            except OSError:
                continue  # a dangling link: the conversion says what it skips
            entry = [str(path.relative_to(root)), stat.st_size, stat.st_mtime_ns]
            digest.update(json.dumps(entry).encode() + b"\n")
    return digest.hexdigest()


def _recorded(record: str | Path, key: str) -> Any:
    try:
        return json.loads(Path(record).read_text()).get(key)
    except (OSError, ValueError, AttributeError):
        return None


def recorded_folder(record: str | Path) -> str:
    """The run folder a record names ("folder": download_checkpoint's record of a published
    folder, or checkpoint_record's of the folder sampled): a job takes it from the record the job
    before it wrote, never from a path spelled again."""
    folder = _recorded(record, "folder")
    if not folder:
        raise ValueError(
            f"{record}: names no run folder (a JSON record with a 'folder' key expected)"
        )
    return folder


# What sampling reads from a run folder beside latest.pt: the bridge and network options
# (network.checkpoint.read_run_options: options.json, else the published options.pkl).
RUN_OPTION_FILES = ("options.json", "options.pkl")


def options_identity(folder: str | Path) -> dict[str, dict[str, int] | None]:
    """file_identity of each of the run folder's RUN_OPTION_FILES (None where it is not there)."""
    return {name: file_identity(Path(folder) / name) for name in RUN_OPTION_FILES}


def recorded_tree(record: str | Path) -> str | None:
    """The "tree" a sources record holds (convert_lmdb's, paired_sources'): the data's identity,
    which training keeps in options.json to resume only a run made from the same data."""
    return _recorded(record, "tree")


def checkpoint_changed(record: str | Path, folder: str | Path) -> bool:
    """Whether ``folder``'s latest.pt is no longer the file ``record`` fingerprinted, or is gone,
    or an options file beside it was replaced (a record without "options_identity", written
    before it was recorded, is compared by latest.pt alone).

    A run folder deleted to retrain (or a published folder removed) leaves the record behind, and
    Snakemake does not rerun a job whose input is missing while its output exists: the record must
    be forced so that training (or the download check) and everything after it run again.
    """
    if not Path(record).is_file():
        return False
    now = file_identity(Path(folder) / "latest.pt")
    if now is None or _recorded(record, "identity") != now:
        return True
    options = _recorded(record, "options_identity")
    return options is not None and options != options_identity(folder)


def sources_changed(record: str | Path, folder: str | Path) -> bool:
    """Whether the image folder ``record`` describes changed since (names, sizes, mtimes)."""
    return tree_changed(record, tree_identity(folder))


def tree_changed(record: str | Path, now: str | None) -> bool:
    """Whether the identity ``now`` of what ``record`` describes differs from its "tree". None
    (the source is gone) forces nothing: the job reading it says what is missing."""
    return Path(record).is_file() and now is not None and _recorded(record, "tree") != now


def recorded_files_changed(record: str | Path) -> bool:
    """Whether a file a download record names (``downloads.record_files``) was replaced in place
    or is gone since: its stat differs from the recorded ``<name>_identity``, or it is missing.

    A pre-placed FID reference overwritten, a cached mask file deleted: the download job must
    resolve and hash it again and the jobs reading its record rerun. An unreadable record is
    written again. A record written before stats were recorded is watched for a gone file only:
    forcing it would rerun everything after it (a benchmark's training and sampling) once.
    """
    if not Path(record).is_file():
        return False  # not written yet: its job runs anyway
    try:
        entries = json.loads(Path(record).read_text())
    except (OSError, ValueError):
        return True
    if not isinstance(entries, dict):
        return True
    for name in [key for key in entries if f"{key}_sha256" in entries]:
        now, recorded = file_identity(entries[name]), entries.get(f"{name}_identity")
        if now is None or (recorded is not None and recorded != now):
            return True
    return False
