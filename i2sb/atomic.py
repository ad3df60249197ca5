"""Write files so that a reader never sees a partial one: temporary name, then ``os.replace``."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; it replaces ``path`` only if the block succeeds.

    The temporary name keeps the suffix (``x.tmp-123.npz``) so libraries that pick a format
    from the extension still do.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.tmp-{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Delete ``atomic_path`` leftovers (``<stem>.tmp-<pid><suffix>``) of processes that died.

    A kill between the temporary write and ``os.replace`` leaves one behind; on the next start
    no other writer of the folder runs, so every such file is stale. Each removal is printed.
    """
    import re
    import sys

    removed = []
    pattern = re.compile(r".+\.tmp-\d+(\.[^.]*)?")
    for path in sorted(Path(folder).glob("*.tmp-*")):
        if path.is_file() and pattern.fullmatch(path.name):
            print(f"removing {path}: left behind by an interrupted write", file=sys.stderr)
            path.unlink()
            removed.append(path)
    return removed


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")
