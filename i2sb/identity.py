"""A file's identity on disk, by stat: what records hold and planning compares with the file.

Its own light module because both sides use it: the jobs that write records (downloads,
checkpoint fingerprints, data sources) and planning, which reads them (i2sb.planning).
"""

from __future__ import annotations

from pathlib import Path


def file_identity(path: str | Path) -> dict[str, int] | None:
    """{"bytes", "mtime_ns"} of a file (None when missing): a file replaced in place differs.

    No inode: a results folder copied with its times (cp -a, rsync -a) is the same run.
    """
    try:
        stat = Path(path).stat()
    except OSError:
        return None
    return {"bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}
