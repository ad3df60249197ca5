"""Clear Snakemake's lock when the run that took it is gone (`make demo` runs this first).

An interrupted Snakemake (Ctrl-C twice, kill -9, a closed terminal, a lost node) leaves its lock
files in ``.snakemake/locks/``; the next run in the folder stops with a LockException. The lock is
stale when no Snakemake process runs in this folder: then ``snakemake --unlock`` removes it safely.
When one runs, its lock is kept and this says which process holds it. Where processes cannot be
listed (no ``/proc``), it prints the exact command instead of guessing.

    python scripts/stale_lock.py [SNAKEMAKE [SNAKEMAKE ARGS...]]    # default: snakemake
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

PROC = Path("/proc")


def lock_files(folder: Path) -> list[Path]:
    locks = folder / ".snakemake" / "locks"
    return sorted(locks.glob("*.lock")) if locks.is_dir() else []


def is_snakemake(argv: list[str]) -> bool:
    """A Snakemake command line: ``snakemake ...``, ``python -m snakemake ...`` or a wrapper
    script named ``snakemake*``."""
    names = [os.path.basename(arg) for arg in argv[:3]]
    return any(name.startswith("snakemake") for name in names)


def snakemakes_in(folder: Path) -> list[int] | None:
    """Pids of Snakemake processes whose working folder is ``folder``; None if unknowable here."""
    if not (PROC / "self" / "cwd").exists():
        return None
    here, found = folder.resolve(), []
    for entry in PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:  # gone meanwhile, or another user's
            continue
        if cwd == here and is_snakemake(argv):
            found.append(int(entry.name))
    return sorted(found)


def clear_stale_lock(folder: Path, snakemake: list[str]) -> int:
    """0 when the folder is unlocked (or now is), 1 when a lock must stay or could not go."""
    locks = lock_files(folder)
    if not locks:
        return 0
    unlock = [*snakemake, "--unlock"]
    running = snakemakes_in(folder)
    if running is None:
        print(f"{folder} holds a Snakemake lock; if no Snakemake runs there, clear it with: "
              f"{shlex.join(unlock)}", file=sys.stderr)  # fmt: skip
        return 1
    if running:
        print(f"Snakemake (pid {', '.join(map(str, running))}) runs in {folder} and holds its "
              "lock: wait for it, or stop it first", file=sys.stderr)  # fmt: skip
        return 1
    print(f"clearing a stale Snakemake lock in {folder} (left by an interrupted run; no Snakemake "
          f"runs there): {shlex.join(unlock)}", file=sys.stderr)  # fmt: skip
    done = subprocess.run(unlock, cwd=folder, capture_output=True, text=True)
    if done.returncode != 0 or lock_files(folder):
        print(f"could not clear it ({done.stderr.strip()[-300:]}); run: {shlex.join(unlock)}",
              file=sys.stderr)  # fmt: skip
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(clear_stale_lock(Path.cwd(), sys.argv[1:] or ["snakemake"]))
