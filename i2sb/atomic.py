"""Write files so that a reader never sees a partial one: temporary name, then ``os.replace``.

A process killed between the temporary write and ``os.replace`` (kill -9, a node lost, a job
over its time) leaves ``<stem>.tmp-<host>-<pid><suffix>`` behind. Every write of a file removes
the leftovers of that same file first, so rerunning any command cleans up after its interrupted
run. A leftover is stale when its process no longer runs on this machine, or, written on another
machine (a shared file system), when nothing has written to it for an hour: a concurrent writer
of a shared cache on another node keeps its file. A write that fails names the file it was
writing (disk full included).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# <stem>.tmp-[<host>-]<pid><suffix>; names without a host (older versions) count as this machine's
TEMPORARY = re.compile(
    r"(?P<stem>.+)\.tmp-(?:(?P<host>[A-Za-z0-9_-]+)-)?(?P<pid>\d+)(?P<suffix>\.[^.]*)?"
)
ELSEWHERE_STALE_S = 3600  # another machine's temporary untouched this long: its writer is gone


def this_host() -> str:
    """This machine's name as it appears in temporary names (letters, digits, '_', '-')."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", platform.node() or "host")[:64]


def temporary_name(path: Path, pid: int) -> Path:
    """``x.npz`` -> ``x.tmp-<host>-<pid>.npz``: the suffix is kept so libraries that pick a format
    from the extension still do; the host tells whose process wrote it on a shared file system."""
    return path.with_name(f"{path.stem}.tmp-{this_host()}-{pid}{path.suffix}")


def is_stale(path: Path, host: str | None, pid: int) -> bool:
    """Whether the writer of the temporary ``path`` is gone (see the module's docstring)."""
    if host is None or host == this_host():
        return not process_alive(pid)
    try:
        return time.time() - path.stat().st_mtime > ELSEWHERE_STALE_S
    except OSError:
        return False


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
    """Delete ``atomic_path`` and ``staging_folder`` leftovers in ``folder``: those of the file ``name`` only, or with
    ``name=None`` every one (for a folder with one writer, such as a training run). Leftovers whose
    writer may still run are kept. Each removal is printed; returns the removed paths."""
    folder = Path(folder)
    target = Path(name) if name else None
    removed = []
    try:
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for entry in entries:
        match = TEMPORARY.fullmatch(entry.name)
        is_ours = entry.is_file(follow_symlinks=False) or entry.is_dir(follow_symlinks=False)
        if not match or not is_ours:  # a file, or a staging_folder; never a link's target
            continue
        if target and (match["stem"], match["suffix"] or "") != (target.stem, target.suffix):
            continue
        if is_stale(folder / entry.name, match["host"], int(match["pid"])):
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
        if "write failed" in str(err) and str(path) not in str(err):
            raise RuntimeError(f"{path}: {err}") from err
        raise
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def staging_folder(folder: str | Path, name: str) -> Iterator[Path]:
    """Yield an empty folder ``folder/<name>.tmp-<host>-<pid>`` for files made only to be copied
    elsewhere (MLflow artifacts); it is removed after the block.

    A process killed in the block (SIGKILL, or SIGTERM from a scheduler, which runs no
    ``finally``) leaves it behind where the next staging of ``name`` in ``folder`` finds and
    removes it, as :func:`atomic_path` does with its temporaries (a system temporary folder
    would keep it until the machine is cleaned).
    """
    import shutil

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(folder, name)
    staged = folder / f"{name}.tmp-{this_host()}-{os.getpid()}"
    shutil.rmtree(staged, ignore_errors=True)  # a dead process's, whose pid this one reuses
    staged.mkdir()
    try:
        yield staged
    finally:
        shutil.rmtree(staged, ignore_errors=True)


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")
