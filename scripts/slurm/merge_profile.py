"""Layer a site overlay on a Snakemake profile: nested keys are merged, so an overlay changes single resources.

Snakemake's own `--workflow-profile` replaces a top-level key (e.g. all of `set-resources`) as a whole, which would
drop the base profile's per-rule settings; merging keeps the tested values those of the real profile.
Usage: python merge_profile.py BASE_DIR OVERLAY_DIR OUT_DIR   (writes OUT_DIR/config.yaml)
Users install theirs with `i2sb slurm-profile --account A --partition P [--cpu-partition C]` (same merge,
i2sb/slurm_profile.py; an overlay's `partitions:` list replaces the base's).
"""

import sys
from pathlib import Path

# One merge for this script and `i2sb slurm-profile` (which installs the result as `--profile slurm`).
from i2sb.slurm_profile import merged_profile, write_profile


def main(argv: list[str]) -> None:
    if len(argv) != 3:
        raise SystemExit("usage: merge_profile.py BASE_DIR OVERLAY_DIR OUT_DIR")
    base, overlay, out = (Path(a) for a in argv)
    write_profile(merged_profile(base, overlay), out, force=True)  # a scratch profile, rewritten


if __name__ == "__main__":
    main(sys.argv[1:])
