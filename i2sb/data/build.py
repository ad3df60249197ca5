"""Pick the dataset for a config: LMDB if converted, else the image folder; paired data; evaluation sets.

Where the images come from, for split S and data root R:
- ``data.kind: paired``: ``R/S.csv`` if it exists, else the folder ``R/S`` with A/ and B/.
- otherwise: ``R/S_faster_imagefolder.lmdb`` (with its index) if that LMDB exists, else ``R/S/<class>/*``.
- ``data.root: ""``: R = ``<run dir>/data`` when its LMDB for S exists, else ``<run dir>/photos`` (the demo).
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


def data_root(config: Any, split: str) -> Path:
    """``data.root``, or for "" the run's converted LMDB if present, else its demo photos."""
    if config.data.root:
        return Path(config.data.root)
    converted = Path(config.run_dir) / "data"
    return (
        converted
        if lmdb_layout(converted, split).lmdb.is_dir()
        else Path(config.run_dir) / "photos"
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


def describe_eval_data(config: Any, task: str) -> dict[str, Any]:
    """What a (task, config) is evaluated on, for captions and MLflow: data set name and kind,
    resolution, and which evaluation subset (``full`` or ``10k``) of how many images at most.

    ``name`` is "ImageNet" only for an image folder whose classes are all WordNet ids (the rule
    of ``is_imagenet``); the demo is ``DEMO_DATA_NAME``; anything else names its folder.
    """
    data = config.data
    root = data_root(config, "val")
    imagenet = False
    if data.kind == "imagefolder":
        dataset = build_dataset(data.kind, root, "val", data.image_size, train=False)
        imagenet = is_imagenet(data.kind, getattr(dataset, "classes", []))
    if data.kind == "demo":
        name = DEMO_DATA_NAME
    elif imagenet:
        name = "ImageNet"
    else:
        name = f"{'paired folder' if data.kind == 'paired' else 'image folder'} {root}"
    return {
        "name": name,
        "kind": "imagenet" if imagenet else data.kind,
        "image_size": data.image_size,
        "eval_subset": resolve_eval_subset(data.eval_subset, task_spec(task).eval_set, imagenet),
        "max_eval_images": data.max_eval_images,
    }


def eval_set_for_config(config: Any, task: str) -> tuple[Any, list[int]]:
    """build_eval_set with every argument taken from an i2sb.config.Config."""
    data, downloads = config.data, config.downloads
    return build_eval_set(
        task, data.kind, data_root(config, "val"), data.image_size, data.eval_subset,
        data.max_eval_images, downloads.subset_fn, downloads.subset_label, downloads.cache_dir,
    )  # fmt: skip
