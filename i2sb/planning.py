"""Planning-time checks of a config against the disk: what the workflow will read must be there.

Run by the Snakefile before it plans, so a placeholder such as ``data.root: /path/to/imagenet``
stops ``snakemake -n`` naming the key, instead of failing a job hours later. Light: imports
neither torch nor mlflow.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from i2sb.config import Config, ConfigError


def missing_inputs(cfg: Config) -> list[str]:
    """Each configured input the workflow reads that is not on disk, naming its config key.

    Checked when the workflow is planned, so a placeholder such as ``data.root: /path/to/imagenet``
    stops ``snakemake -n`` instead of a job hours later.
    """
    problems = []
    root = Path(cfg.data.root)
    if cfg.data.kind in ("imagefolder", "paired") and cfg.data.root:  # "" = the run's own photos
        if not root.is_dir():
            problems.append(f"data.root: {root} is not a folder (expected train/ and val/ inside)")
        else:
            for split in ("train", "val"):
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
    from i2sb.downloads import PUBLISHED_CHECKPOINTS, PUBLISHED_IMAGE_SIZE

    problems = []
    for task in cfg.tasks:
        folder = cfg.checkpoint_folder(task)
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
