"""The Slurm profile a user runs with ``snakemake --profile slurm``: ours merged with their site's settings.

Snakemake finds a profile given by name only in the working directory, the user's config folder
(``~/.config/snakemake``, or ``$XDG_CONFIG_HOME/snakemake``) and the site's (``/etc/xdg/snakemake``),
never in a repository's ``profiles/``; ``i2sb slurm-profile`` writes the merged profile there.
Nested keys are merged (the overlay wins), because snakemake's own ``--workflow-profile`` replaces
a whole top-level key such as ``default-resources``, silently dropping the base profile's values.
No torch import: a login node runs this before anything else.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from i2sb.atomic import write_text
from i2sb.config import deep_merge


def load_profile(profile_dir: str | Path) -> dict[str, Any]:
    """A profile folder's config.yaml as a mapping; anything else is an error naming the file."""
    path = Path(profile_dir) / "config.yaml"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no such profile file (expected a Snakemake profile folder)"
        )
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(
            f"{path}: expected a mapping of snakemake options, got {type(data).__name__}"
        )
    return data


# The plugin's partition list (read through `slurm-partition-config`, which names the profile's own file).
PARTITIONS_KEY = "partitions"


def merge_profiles(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``overlay``'s keys merged in, nested mappings key by key (the overlay wins).

    The overlay's ``partitions`` replaces the base's as a whole: merged, our example names (``gpu``, ``cpu``)
    would stay beside a site's own and the plugin could pick a partition the cluster does not have.
    """
    merged = deep_merge(base, overlay)
    if PARTITIONS_KEY in overlay:
        merged[PARTITIONS_KEY] = overlay[PARTITIONS_KEY]
    return merged


def merged_profile(base_dir: str | Path, overlay_dir: str | Path) -> dict[str, Any]:
    """The base profile folder with the overlay folder's keys merged in."""
    return merge_profiles(load_profile(base_dir), load_profile(overlay_dir))


def site_partitions(
    gpu_partition: str, cpu_partition: str | None = None, gpus_per_node: int = 8
) -> dict[str, Any]:
    """The plugin's partition list: GPU jobs to ``gpu_partition``, CPU-only jobs to ``cpu_partition``.

    Without a CPU partition every job goes to the GPU partition (the only one listed).
    """
    if gpus_per_node < 1:
        raise ValueError(f"--gpus-per-node must be at least 1, got {gpus_per_node}")
    partitions: dict[str, Any] = {gpu_partition: {"max_gpu": gpus_per_node}}
    if cpu_partition and cpu_partition != gpu_partition:
        partitions[cpu_partition] = {"max_gpu": 0}
    return partitions


def site_overlay(
    account: str,
    partition: str,
    qos: str | None = None,
    cpu_partition: str | None = None,
    gpus_per_node: int = 8,
) -> dict[str, Any]:
    """The site's settings as profile keys: sbatch -A and --qos for every job, -p from the partition list."""
    resources = {"slurm_account": account}
    if qos:
        resources["qos"] = qos
    return {
        "default-resources": resources,
        PARTITIONS_KEY: site_partitions(partition, cpu_partition, gpus_per_node),
    }


def check_profile_name(name: str) -> str:
    """``name`` if it is a plain folder name; ``..``, a separator or an absolute path would place the
    profile outside Snakemake's profile folder, so they are refused naming ``--name``."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise ValueError(
            f"--name {name!r}: a profile name is a folder name (letters, digits, '-', '_'), "
            "never a path; use --out DIR to write the profile somewhere else"
        )
    return name


def user_profile_dir(name: str = "slurm") -> Path:
    """Where ``snakemake --profile NAME`` looks first after the working directory (as Snakemake computes it)."""
    from platformdirs import user_config_dir

    return Path(user_config_dir("snakemake", "snakemake")) / check_profile_name(name)


class Installed(NamedTuple):
    path: Path  # the profile written (or found identical)
    backup: Path | None  # the user's previous file, kept beside it (with --force)
    changed: bool  # False when the file already held exactly this profile


def backup_path(path: Path) -> Path:
    """``config.yaml.bak-YYYYmmddTHHMMSSZ`` beside ``path``, not yet taken (UTC, second resolution)."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    candidate, number = path.with_name(f"{path.name}.bak-{stamp}"), 1
    while candidate.exists():
        candidate, number = path.with_name(f"{path.name}.bak-{stamp}-{number}"), number + 1
    return candidate


def write_profile(profile: dict[str, Any], out_dir: str | Path, force: bool = False) -> Installed:
    """Write ``profile`` as OUT_DIR/config.yaml (atomically), keeping a different existing file.

    A user's hand-written profile is never lost: without ``force`` an existing, different file is
    an error naming it and ``--force``; with ``force`` it is first copied to a timestamped backup.
    """
    path = Path(out_dir) / "config.yaml"
    text = yaml.safe_dump(profile, sort_keys=False)
    backup = None
    if path.exists() or path.is_symlink():
        if path.is_file() and path.read_text(errors="replace") == text:
            return Installed(path, None, False)
        if not force:
            raise ValueError(
                f"{path} exists and differs from the profile to write; rerun with --force to "
                "replace it (a timestamped backup of it is kept beside it)"
            )
        backup = backup_path(path)
        shutil.copy2(path, backup)
    write_text(path, text)
    return Installed(path, backup, True)


def install_profile(
    base_dir: str | Path,
    account: str,
    partition: str,
    qos: str | None = None,
    overlay_dir: str | Path | None = None,
    out_dir: str | Path | None = None,
    force: bool = False,
    cpu_partition: str | None = None,
    gpus_per_node: int = 8,
) -> Installed:
    """Merge ours, an optional overlay folder and the site settings; write it where snakemake finds it."""
    profile = load_profile(base_dir)
    if overlay_dir:
        profile = merge_profiles(profile, load_profile(overlay_dir))
    site = site_overlay(account, partition, qos, cpu_partition, gpus_per_node)
    profile = merge_profiles(profile, site)
    return write_profile(profile, out_dir or user_profile_dir(), force)
