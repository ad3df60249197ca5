"""Our safe sample index beside an LMDB (JSON: no pickle needed), and the official pickled one.

``<split>_faster_imagefolder.index.json``: {"format", "version", "split", "source", "classes",
"samples": [[key, label], ...], "skipped": [{"path", "reason"}, ...]}. The keys are the LMDB keys.
"""

from __future__ import annotations

import json
from pathlib import Path

from i2sb.atomic import write_json
from i2sb.data.layout import INDEX_FORMAT, INDEX_VERSION, LmdbLayout, lmdb_layout

Samples = list[tuple[str, int]]


def write_index(
    layout: LmdbLayout, source: str, classes: list[str], samples: Samples, skipped: list[dict]
) -> None:
    """Write the index atomically; callers write it last, as the mark of a complete LMDB."""
    index = {
        "format": INDEX_FORMAT,
        "version": INDEX_VERSION,
        "split": layout.split,
        "source": source,
        "classes": classes,
        "samples": [[path, label] for path, label in samples],
        "skipped": skipped,
    }
    write_json(layout.index, index)


def read_index(path: Path) -> tuple[list[str], Samples]:
    """(classes, samples) from our JSON index."""
    try:
        index = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: cannot read the LMDB index ({err})") from err
    if not isinstance(index, dict) or index.get("format") != INDEX_FORMAT:
        raise ValueError(f"{path}: not an i2sb LMDB index (expected format {INDEX_FORMAT!r})")
    return list(index["classes"]), [(str(p), int(label)) for p, label in index["samples"]]


def read_official_pt(path: Path) -> tuple[list[str], Samples]:
    """(classes, samples) from the official pickled ImageFolder. Runs code from the file: opt-in only."""
    import torch

    folder = torch.load(path, weights_only=False)
    samples = getattr(folder, "imgs", None) or getattr(folder, "samples", None)
    if samples is None:
        raise ValueError(f"{path}: the pickled object has no 'imgs' or 'samples' list")
    return list(getattr(folder, "classes", [])), [(str(p), int(label)) for p, label in samples]


def index_official_lmdb(data_dir: str | Path, split: str) -> int:
    """Write our JSON index for an LMDB made by the reference code (reads its pickle once).

    Every key the pickle lists must be in the LMDB. Returns the number of samples indexed.
    """
    from i2sb.data.lmdb_env import open_readonly

    layout = lmdb_layout(data_dir, split)
    for needed in (layout.lmdb, layout.official_pt):
        if not needed.exists():
            raise FileNotFoundError(f"{needed} does not exist (needed to index an official LMDB)")
    classes, samples = read_official_pt(layout.official_pt)
    with open_readonly(layout.lmdb).begin() as txn:
        missing = [path for path, _ in samples if txn.get(path.encode("utf-8")) is None]
    if missing:
        raise ValueError(
            f"{layout.official_pt} lists {len(missing)} keys absent from {layout.lmdb}; "
            f"first: {', '.join(missing[:3])}"
        )
    write_index(layout, str(layout.official_pt), classes, samples, [])
    return len(samples)
