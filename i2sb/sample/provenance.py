"""What a sampling job reads, recorded for the workflow: the checkpoint's identity and content.

``RUN/checkpoints/<task>.json`` names the latest.pt sampling reads, its stat and that of the
options files beside it (which planning compares with the files to rerun sampling when one was
swapped in place) and its SHA-256.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from i2sb.atomic import write_json
from i2sb.identity import file_identity
from i2sb.network.checkpoint import checkpoint_file, checkpoint_fingerprint
from i2sb.planning import options_identity


def checkpoint_record(task: str, folder: str | Path, out: str | Path) -> dict[str, Any]:
    """The workflow's entry: write ``out`` naming ``folder``'s latest.pt, its identity on disk
    (i2sb.identity.file_identity) and its content fingerprint (hashed once, then cached)."""
    file = checkpoint_file(folder)
    identity = file_identity(file)  # before hashing: a swap during the hash reruns, never hides
    if identity is None:
        raise FileNotFoundError(f"checkpoint of task {task}: {file} does not exist")
    record = {"task": task, "folder": str(folder), "file": str(file), "identity": identity,
              "options_identity": options_identity(folder),
              "fingerprint": checkpoint_fingerprint(file)}  # fmt: skip
    write_json(out, record)
    return record
