"""The Slurm profile a user runs with ``snakemake --profile slurm``: ours merged with their site's settings.

Snakemake finds a profile given by name only in the working directory, the user's config folder
(``~/.config/snakemake``, or ``$XDG_CONFIG_HOME/snakemake``) and the site's (``/etc/xdg/snakemake``),
never in a repository's ``profiles/``; ``i2sb slurm-profile`` writes the merged profile there.
Nested keys are merged (the overlay wins), because snakemake's own ``--workflow-profile`` replaces
a whole top-level key such as ``default-resources``, silently dropping the base profile's values.
No torch import: a login node runs this before anything else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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


def user_profile_dir(name: str = "slurm") -> Path:
    """Where ``snakemake --profile NAME`` looks first after the working directory (as Snakemake computes it)."""
    from platformdirs import user_config_dir

    return Path(user_config_dir("snakemake", "snakemake")) / name


def write_profile(profile: dict[str, Any], out_dir: str | Path) -> Path:
    """Write ``profile`` as OUT_DIR/config.yaml (atomically); returns the file."""
    path = Path(out_dir) / "config.yaml"
    write_text(path, yaml.safe_dump(profile, sort_keys=False))
    return path


def install_profile(
    base_dir: str | Path,
    account: str,
    partition: str,
    qos: str | None = None,
    overlay_dir: str | Path | None = None,
    out_dir: str | Path | None = None,
) -> Path:
    """Merge ours, an optional overlay folder and the site settings; write it where snakemake finds it."""
    profile = load_profile(base_dir)
    if overlay_dir:
        profile = merge_profiles(profile, load_profile(overlay_dir))
    profile = merge_profiles(profile, site_overlay(account, partition, qos))
    return write_profile(profile, out_dir or user_profile_dir())
