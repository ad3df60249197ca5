"""What paired data's split is read from, by stat: the record the workflow's paired_sources rule
writes and planning compares, so a pair replaced in place reruns the jobs reading it.

Paired data is read where it lies (never converted into an LMDB, whose conversion keeps its own
sources record), so this record is what training and sampling depend on. Light: planning imports it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from i2sb.data.layout import listed_pairs, paired_source
from i2sb.identity import file_identity
from i2sb.planning import tree_changed, tree_identity


def paired_sources_identity(root: str | Path, split: str) -> str | None:
    """SHA-256 of what paired data's ``split`` is read from, by stat (None when it is missing).

    A listing CSV (``root/<split>.csv``): the CSV and every file it names, wherever it lies (a
    listing that cannot be parsed counts by its own stat: the job reading it says why); else the
    folder ``root/<split>`` (A/ and B/) as ``planning.tree_identity``. Either side of a pair
    replaced in place changes it; no image is opened.
    """
    source = paired_source(root, split)
    if source.is_dir():
        return tree_identity(source)
    if not source.is_file():
        return None
    try:
        files = [file for pair in listed_pairs(source) for file in pair]
    except (OSError, ValueError, UnicodeDecodeError):
        files = []
    digest = hashlib.sha256()
    for file in [str(source), *files]:
        digest.update(json.dumps([file, file_identity(file)]).encode() + b"\n")
    return digest.hexdigest()


def paired_sources_record(root: str | Path, split: str) -> dict[str, Any]:
    """RUN/data/<split>_paired_sources.json: {"source", "tree"} (:func:`paired_sources_identity`)."""
    return {"source": str(paired_source(root, split)), "tree": paired_sources_identity(root, split)}


def paired_sources_changed(record: str | Path, root: str | Path, split: str) -> bool:
    """Whether the pairs ``record`` describes changed since (a file replaced, added or removed)."""
    return tree_changed(record, paired_sources_identity(root, split))
