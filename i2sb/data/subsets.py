"""Evaluation subsets: the whole validation set, or the 10k ImageNet subset of Palette (spec §6)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from i2sb.config.choices import EVAL_SUBSETS
from i2sb.tasks import EVAL_10K, EVAL_FULL

_WNID = re.compile(r"^n\d{8}$")


def is_imagenet(kind: str, classes: Sequence[str]) -> bool:
    """The rule for ``eval_subset: auto``: ImageNet = an image folder whose classes are all WordNet ids.

    Demo photos and paired data are never ImageNet, so the 10k subset cannot apply to them.
    """
    return kind == "imagefolder" and bool(classes) and all(_WNID.match(c) for c in classes)


def resolve_eval_subset(requested: str, task_eval_set: str, imagenet: bool) -> str:
    """``full`` or ``10k`` for ``data.eval_subset``: auto = the task's set on ImageNet, else full."""
    if requested not in EVAL_SUBSETS:
        raise ValueError(
            f"data.eval_subset must be one of {', '.join(EVAL_SUBSETS)}, got {requested!r}"
        )
    if requested == "auto":
        return task_eval_set if imagenet else EVAL_FULL
    if requested == EVAL_10K and not imagenet:
        raise ValueError(
            "data.eval_subset: 10k is the ImageNet validation subset; this data is not ImageNet "
            "(needs data.kind: imagefolder with WordNet-id class folders). Use full or auto."
        )
    return requested


def _lines(path: Path) -> list[str]:
    try:
        text = path.read_text()
    except OSError as err:
        raise FileNotFoundError(f"cannot read subset list {path}: {err}") from err
    return [line.strip("\r\n") for line in text.splitlines() if line.strip()]


def subset_key(path: str) -> str:
    """``<wnid>/<filename>``: the last two components of a path, the key both sides are matched by."""
    parts = path.replace("\\", "/").rstrip("/").split("/")
    return "/".join(parts[-2:])


def read_subset(fn_file: Path, label_file: Path) -> list[tuple[str, int]]:
    """(``<wnid>/<file>``, label) pairs from the published fn/label lists, in their order."""
    names, labels = _lines(fn_file), _lines(label_file)
    if len(names) != len(labels):
        raise ValueError(f"{fn_file} has {len(names)} lines but {label_file} has {len(labels)}")
    try:
        return [(subset_key(n), int(label)) for n, label in zip(names, labels)]
    except ValueError as err:
        raise ValueError(f"{label_file}: every line must be an integer label ({err})") from err


def eval_indices(
    dataset_paths: Sequence[str],
    subset: str,
    fn_file: str | Path | None = None,
    label_file: str | Path | None = None,
    dataset_labels: Sequence[int] | None = None,
    cache_dir: str = "",
) -> list[int]:
    """Positions in the dataset of the evaluation images, in the subset list's order.

    ``full`` = every image. ``10k`` matches the published lists (fetched through
    i2sb.downloads unless given) by ``<wnid>/<filename>``; any entry missing from the dataset is
    an error, as is a label that disagrees with the dataset's when ``dataset_labels`` is given.
    """
    if subset == EVAL_FULL:
        return list(range(len(dataset_paths)))
    if subset != EVAL_10K:
        raise ValueError(f"evaluation subset must be {EVAL_FULL!r} or {EVAL_10K!r}, got {subset!r}")
    from i2sb.downloads import fetch

    fn_path = fetch("subset_fn", str(fn_file or ""), cache_dir)
    label_path = fetch("subset_label", str(label_file or ""), cache_dir)
    position = {subset_key(path): i for i, path in enumerate(dataset_paths)}
    wanted = read_subset(fn_path, label_path)
    missing = [key for key, _ in wanted if key not in position]
    if missing:
        raise ValueError(
            f"{len(missing)} of {len(wanted)} images of the subset list {fn_path} are not in the "
            f"dataset (matched by <wnid>/<filename>); first: {', '.join(missing[:5])}"
        )
    indices = [position[key] for key, _ in wanted]
    if dataset_labels is not None:
        wrong = [key for (key, label), i in zip(wanted, indices) if dataset_labels[i] != label]
        if wrong:
            raise ValueError(
                f"{len(wrong)} labels in {label_path} differ from the dataset's class indices "
                f"(are the class folders the 1000 sorted WordNet ids?); first: {', '.join(wrong[:5])}"
            )
    return indices
