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


def merge_profiles(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``overlay``'s keys merged in, nested mappings key by key (the overlay wins)."""
    return deep_merge(base, overlay)


def merged_profile(base_dir: str | Path, overlay_dir: str | Path) -> dict[str, Any]:
    """The base profile folder with the overlay folder's keys merged in."""
    return merge_profiles(load_profile(base_dir), load_profile(overlay_dir))


def site_overlay(account: str, partition: str, qos: str | None = None) -> dict[str, Any]:
    """The site's settings as profile keys: sbatch -A, -p and --qos for every job."""
    resources = {"slurm_account": account, "slurm_partition": partition}
    if qos:
        resources["qos"] = qos
    return {"default-resources": resources}


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
) -> Installed:
    """Merge ours, an optional overlay folder and the site settings; write it where snakemake finds it."""
    profile = load_profile(base_dir)
    if overlay_dir:
        profile = merge_profiles(profile, load_profile(overlay_dir))
    profile = merge_profiles(profile, site_overlay(account, partition, qos))
    return write_profile(profile, out_dir or user_profile_dir(), force)
