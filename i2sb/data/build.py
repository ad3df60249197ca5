"""Pick the dataset in a data folder: LMDB if converted, else the image folder; paired data; evaluation sets.

Where the images come from, for split S and data folder R:
- ``data.kind: paired``: ``R/S.csv`` if it exists, else the folder ``R/S`` with A/ and B/.
- otherwise: ``R/S_faster_imagefolder.lmdb`` (with its index) if that LMDB exists, else ``R/S/<class>/*``.

R is always given by the caller (``--data-dir``, ``data.root``, or the workflow's converted LMDB
folder): the library never guesses a folder of the results layout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from i2sb.config.choices import DATA_KINDS
from i2sb.data.layout import lmdb_layout
from i2sb.data.subsets import eval_indices, is_imagenet, resolve_eval_subset
from i2sb.tasks import task_spec


def build_dataset(kind: str, root: str | Path, split: str, image_size: int, train: bool,
                  allow_pickle: bool = False) -> Any:  # fmt: skip
    """The dataset of ``split``: items ``(x0, label)``, or ``(x0, x1, 0)`` for paired data."""
    from i2sb.data.transforms import PairTransform, build_transform

    if kind not in DATA_KINDS:
        raise ValueError(f"data.kind must be one of {', '.join(DATA_KINDS)}, got {kind!r}")
    root = Path(root)
    if kind == "paired":
        from i2sb.data.layout import paired_source
        from i2sb.data.paired import PairedDataset

        return PairedDataset(paired_source(root, split), PairTransform(image_size, train))
    transform = build_transform(image_size, train)
    if lmdb_layout(root, split).lmdb.is_dir():
        from i2sb.data.lmdb_dataset import LMDBImageDataset

        return LMDBImageDataset(root, split, transform, allow_pickle=allow_pickle)
    from i2sb.data.folders import ImageFolderDataset

    return ImageFolderDataset(root / split, transform)


def given_data_dir(data_dir: str | Path | None, config: Any, needed_by: str) -> Path:
    """The data folder a command reads: ``data_dir`` (its ``--data-dir``), else ``data.root``.
    With neither it stops with one line naming both: the library never guesses a folder of the
    results layout (the workflow passes its converted LMDB folder explicitly)."""
    if data_dir:
        return Path(data_dir)
    if config.data.root:
        return Path(config.data.root)
    raise ValueError(
        f"{needed_by} needs the data folder (converted LMDBs, an image folder with train/ and "
        "val/, or paired data): pass --data-dir DIR or set data.root"
    )


def build_eval_set(
    task: str,
    kind: str,
    root: str | Path,
    image_size: int,
    eval_subset: str = "auto",
    max_eval_images: int = 0,
    subset_fn: str = "",
    subset_label: str = "",
    cache_dir: str = "",
    allow_pickle: bool = False,
) -> tuple[Any, list[int]]:
    """(validation dataset, positions to evaluate) for ``task``; the first ``max_eval_images`` if > 0."""
    if max_eval_images < 0:
        raise ValueError(f"data.max_eval_images must be >= 0, got {max_eval_images}")
    dataset = build_dataset(kind, root, "val", image_size, train=False, allow_pickle=allow_pickle)
    imagenet = is_imagenet(kind, getattr(dataset, "classes", []))
    subset = resolve_eval_subset(eval_subset, task_spec(task).eval_set, imagenet)
    indices = eval_indices(
        dataset.paths, subset, subset_fn, subset_label, dataset.labels, cache_dir
    )
    return dataset, indices[:max_eval_images] if max_eval_images else indices


# Every caption, MLflow run and table names the data set by this: the demo's validation crops are cut from
# the photos its training crops come from, and a reader must not take its gains for unseen photos.
DEMO_DATA_NAME = "demo photos (validation crops cut from the training photos)"


def describe_eval_data(
    task: str,
    kind: str,
    root: str | Path,
    val_set: Any,
    image_size: int,
    eval_subset: str = "auto",
    max_eval_images: int = 0,
) -> dict[str, Any]:
    """What ``task`` is evaluated on, for captions and MLflow: data set name and kind, resolution,
    and which evaluation subset (``full`` or ``10k``) of how many images at most. ``val_set`` is
    the validation dataset already built from the data folder ``root`` (``build_eval_set``):
    sampling records this in its part meta ("dataset"), so evaluation and tracking never reopen
    the data to say what it was.

    ``name`` is "ImageNet" only for an image folder whose classes are all WordNet ids (the rule
    of ``is_imagenet``); the demo is ``DEMO_DATA_NAME``; anything else names its folder.
    """
    imagenet = kind == "imagefolder" and is_imagenet(kind, getattr(val_set, "classes", []))
    if kind == "demo":
        name = DEMO_DATA_NAME
    elif imagenet:
        name = "ImageNet"
    else:
        name = f"{'paired folder' if kind == 'paired' else 'image folder'} {root}"
    return {
        "name": name,
        "kind": "imagenet" if imagenet else kind,
        "image_size": image_size,
        "eval_subset": resolve_eval_subset(eval_subset, task_spec(task).eval_set, imagenet),
        "max_eval_images": max_eval_images,
    }


def eval_set_for_config(config: Any, task: str, root: str | Path) -> tuple[Any, list[int]]:
    """build_eval_set of the data folder ``root``, every other argument taken from an i2sb Config."""
    data, downloads = config.data, config.downloads
    return build_eval_set(
        task, data.kind, root, data.image_size, data.eval_subset,
        data.max_eval_images, downloads.subset_fn, downloads.subset_label, downloads.cache_dir,
    )  # fmt: skip
