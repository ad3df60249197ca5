"""Evaluation sets (issue 5): partition, the 10k subset matching, auto/full/10k resolution."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from i2sb.data.build import build_eval_set
from i2sb.data.partition import partition
from i2sb.data.subsets import eval_indices, is_imagenet, resolve_eval_subset, subset_key


def test_partition_of_10_into_3_covers_every_index_once():
    parts = [partition(10, i, 3) for i in range(3)]
    assert [list(p) for p in parts] == [[0, 1, 2], [3, 4, 5], [6, 7, 8, 9]]


@given(st.integers(0, 500), st.integers(1, 64))
def test_partitions_are_contiguous_balanced_and_cover_everything(n, k):
    parts = [partition(n, i, k) for i in range(k)]
    assert [i for part in parts for i in part] == list(range(n))
    sizes = [len(part) for part in parts]
    assert max(sizes) - min(sizes) <= 1


@pytest.mark.parametrize(
    ("n", "i", "k"), [(-1, 0, 1), (5, 0, 0), (5, 3, 3), (5, -1, 3), (5, 0, 1.5)]
)
def test_partition_rejects_bad_arguments(n, i, k):
    with pytest.raises(ValueError, match="partition"):
        partition(n, i, k)


def test_partition_imports_without_torch():
    code = "import sys; import i2sb.data.partition; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def imagenet_like(root: Path, wnids: list[str], per_class: int) -> list[str]:
    paths = []
    for wnid in wnids:
        (root / wnid).mkdir(parents=True)
        for i in range(per_class):
            path = root / wnid / f"ILSVRC2012_val_{wnid[-2:]}{i:06d}.JPEG"
            Image.fromarray(np.full((8, 8, 3), i * 20, np.uint8)).save(path, "JPEG")
            paths.append(str(path))
    return paths


def subset_files(tmp_path: Path, entries: list[tuple[str, int]]) -> tuple[Path, Path]:
    fn, label = tmp_path / "fn.txt", tmp_path / "label.txt"
    fn.write_text("".join(f"/somewhere/val/{name}\n" for name, _ in entries))
    label.write_text("".join(f"{lab}\n" for _, lab in entries))
    return fn, label


def test_subset_is_matched_by_wnid_and_filename_in_list_order(tmp_path):
    paths = imagenet_like(tmp_path / "val", ["n00000001", "n00000002"], 3)
    entries = [(subset_key(paths[4]), 1), (subset_key(paths[0]), 0)]
    fn, label = subset_files(tmp_path, entries)
    assert eval_indices(paths, "10k", fn, label, dataset_labels=[0, 0, 0, 1, 1, 1]) == [4, 0]


def test_missing_subset_entries_are_counted_and_named(tmp_path):
    paths = imagenet_like(tmp_path / "val", ["n00000001"], 2)
    fn, label = subset_files(tmp_path, [(subset_key(paths[0]), 0), ("n00000009/gone.JPEG", 3)])
    with pytest.raises(ValueError, match=r"1 of 2 images .*n00000009/gone.JPEG"):
        eval_indices(paths, "10k", fn, label)


def test_subset_labels_must_agree_with_the_dataset(tmp_path):
    paths = imagenet_like(tmp_path / "val", ["n00000001"], 2)
    fn, label = subset_files(tmp_path, [(subset_key(paths[1]), 7)])
    with pytest.raises(ValueError, match="labels"):
        eval_indices(paths, "10k", fn, label, dataset_labels=[0, 0])


def test_auto_follows_the_task_table_only_on_imagenet():
    assert is_imagenet("imagefolder", ["n01440764", "n01443537"])
    assert not is_imagenet("demo", ["n01440764"]) and not is_imagenet("imagefolder", ["cat"])
    assert resolve_eval_subset("auto", "10k", imagenet=True) == "10k"
    assert resolve_eval_subset("auto", "10k", imagenet=False) == "full"
    with pytest.raises(ValueError, match="not ImageNet"):
        resolve_eval_subset("10k", "10k", imagenet=False)
    with pytest.raises(ValueError, match="data.eval_subset"):
        resolve_eval_subset("5k", "10k", imagenet=True)


def test_build_eval_set_uses_the_task_and_truncates(tmp_path):
    paths = imagenet_like(tmp_path / "data" / "val", ["n00000001", "n00000002"], 3)
    fn, label = subset_files(tmp_path, [(subset_key(paths[5]), 1), (subset_key(paths[1]), 0)])
    args = dict(kind="imagefolder", root=tmp_path / "data", image_size=8)
    dataset, indices = build_eval_set("jpeg-10", **args, subset_fn=str(fn), subset_label=str(label))
    assert indices == [5, 1] and len(dataset) == 6
    _, indices = build_eval_set("sr4x-pool", **args, max_eval_images=4)  # 4x SR: the full set
    assert indices == [0, 1, 2, 3]
    _, indices = build_eval_set("jpeg-10", **{**args, "kind": "demo"})  # not ImageNet: full
    assert indices == list(range(6))
