"""One read-only LMDB environment per (process, path).

py-lmdb refuses to open the same environment twice in one process, and a handle inherited through
fork must not be used by the child. So environments live here, keyed by path and owned by the
process that opened them; datasets hold only the path, which keeps them picklable.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

_OPEN: dict[str, tuple[int, Any]] = {}


def open_readonly(path: str | Path) -> Any:
    """This process's read-only environment for ``path``, opened on first use."""
    import lmdb

    key = os.path.abspath(path)
    entry = _OPEN.get(key)
    if entry is not None and entry[0] == os.getpid():
        return entry[1]
    if entry is not None:
        # Inherited from the parent through fork: closing unmaps only this process's copy
        # (lock=False, so there is no shared reader table to touch).
        entry[1].close()
    env = lmdb.open(key, readonly=True, lock=False, readahead=False, meminit=False)
    _OPEN[key] = (os.getpid(), env)
    return env


def release(path: str | Path) -> None:
    """Close this process's read-only handle on ``path`` (before writing to it, say)."""
    entry = _OPEN.pop(os.path.abspath(path), None)
    if entry is not None and entry[0] == os.getpid():
        entry[1].close()
