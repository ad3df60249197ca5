"""Write files so that a reader never sees a partial one: temporary name, then ``os.replace``.

A process killed between the temporary write and ``os.replace`` (kill -9, a node lost, a job
over its time) leaves ``<stem>.tmp-<pid><suffix>`` behind. Every write of a file removes the
leftovers of that same file first, so rerunning any command cleans up after its interrupted run;
a leftover whose process still runs on this machine is kept (it may be a concurrent writer of a
shared cache). A write that fails names the file it was writing (disk full included).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

TEMPORARY = re.compile(r"(?P<stem>.+)\.tmp-(?P<pid>\d+)(?P<suffix>\.[^.]*)?")


def temporary_name(path: Path, pid: int) -> Path:
    """``x.npz`` -> ``x.tmp-<pid>.npz``: the suffix is kept so libraries that pick a format from
    the extension still do."""
    return path.with_name(f"{path.stem}.tmp-{pid}{path.suffix}")


def process_alive(pid: int) -> bool:
    """Whether ``pid`` runs on this machine (ours, or another user's)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OverflowError:
        return False
    return True


def _remove(path: Path) -> None:
    import shutil

    print(f"removing {path}: left behind by an interrupted write", file=sys.stderr)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def remove_stale_temporaries(folder: str | Path, name: str | None = None) -> list[Path]:
    """Delete ``atomic_path`` leftovers in ``folder``: those of the file ``name`` only, or with
    ``name=None`` every one (for a folder with one writer, such as a training run). Leftovers of a
    process still alive here are kept. Each removal is printed; returns the removed paths."""
    folder = Path(folder)
    target = Path(name) if name else None
    removed = []
    try:
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for entry in entries:
        match = TEMPORARY.fullmatch(entry.name)
        if not match or process_alive(int(match["pid"])):
            continue
        if target and (match["stem"], match["suffix"] or "") != (target.stem, target.suffix):
            continue
        if entry.is_file(follow_symlinks=False):
            _remove(folder / entry.name)
            removed.append(folder / entry.name)
    return removed


def remove_stale_folders(path: str | Path) -> list[Path]:
    """Delete leftovers ``.<name>.tmp-<pid>`` of a folder built under a temporary name and renamed
    to ``path`` (as the demo photos are), when their process is gone."""
    path = Path(path)
    pattern = re.compile(re.escape(f".{path.name}.tmp-") + r"(\d+)")
    removed = []
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for entry in sorted(os.scandir(path.parent), key=lambda entry: entry.name):
            match = pattern.fullmatch(entry.name)
            if match and not process_alive(int(match[1])):
                _remove(path.parent / entry.name)
                removed.append(path.parent / entry.name)
    return removed


def _naming(err: OSError, path: Path, tmp: Path) -> OSError:
    """``err`` with the file the user asked for as its filename (writes on an open handle, e.g.
    ENOSPC, carry none; others name the temporary)."""
    if err.errno is None or err.filename not in (None, os.fspath(tmp)):
        return err  # a message of its own, or about another file (an input)
    return OSError(err.errno, err.strerror or os.strerror(err.errno), str(path))


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; it replaces ``path`` only if the block succeeds.

    Leftovers of earlier, interrupted writes of ``path`` are removed first. An OSError in the
    block (disk full, quota, permissions) names ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path.parent, path.name)
    tmp = temporary_name(path, os.getpid())
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as err:
        raise _naming(err, path, tmp) from err
    except RuntimeError as err:  # torch.save's "file write failed" (its ENOSPC) names no file
        if "write" in str(err) and str(path) not in str(err):
            raise RuntimeError(f"{path}: {err}") from err
        raise
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")
