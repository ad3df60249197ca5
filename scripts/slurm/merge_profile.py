"""Layer a site overlay on a Snakemake profile: nested keys are merged, so an overlay changes single resources.

Snakemake's own `--workflow-profile` replaces a top-level key (e.g. all of `set-resources`) as a whole, which would
drop the base profile's per-rule settings; merging keeps the tested values those of the real profile.
Usage: python merge_profile.py BASE_DIR OVERLAY_DIR OUT_DIR   (writes OUT_DIR/config.yaml)
"""

import sys
from pathlib import Path
from typing import Any

import yaml

# The config loader's deep merge (nested mappings merged, everything else replaced) is exactly the rule needed here.
from i2sb.config import _deep_merge as merge


def load(profile_dir: Path) -> dict[str, Any]:
    """The profile's config.yaml as a mapping; anything else is an error naming the file."""
    path = profile_dir / "config.yaml"
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(
            f"{path}: expected a mapping of snakemake options, got {type(data).__name__}"
        )
    return data


def merged_profile(base_dir: Path, overlay_dir: Path) -> dict[str, Any]:
    """The base profile with the overlay's keys merged in (the overlay wins)."""
    return merge(load(base_dir), load(overlay_dir))


def main(argv: list[str]) -> None:
    if len(argv) != 3:
        raise SystemExit("usage: merge_profile.py BASE_DIR OVERLAY_DIR OUT_DIR")
    base, overlay, out = (Path(a) for a in argv)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "config.yaml.tmp"
    tmp.write_text(yaml.safe_dump(merged_profile(base, overlay), sort_keys=False))
    tmp.replace(out / "config.yaml")


if __name__ == "__main__":
    main(sys.argv[1:])
