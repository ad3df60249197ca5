"""Paired data and transforms (issue 5, spec §6)."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from i2sb.data.build import build_dataset
from i2sb.data.paired import PairedDataset
from i2sb.data.sources import paired_sources_identity, paired_sources_record
from i2sb.data.transforms import PairTransform, build_transform


def gradient(width: int = 24, height: int = 16) -> Image.Image:
    ramp = np.tile(np.linspace(0, 255, width, dtype=np.uint8), (height, 1))
    return Image.fromarray(np.stack([ramp, ramp[:, ::-1], np.full_like(ramp, 128)], axis=2))


def paired_folder(root: Path, names=("a.png", "b.png", "sub/c.png")) -> Path:
    for side in ("A", "B"):
        for name in names:
            (root / side / name).parent.mkdir(parents=True, exist_ok=True)
            image = gradient() if side == "A" else gradient().point(lambda v: v // 2)
            image.save(root / side / name)
    return root


def test_transform_resizes_crops_and_maps_to_signed_range():
    x = build_transform(8, train=False)(gradient())
    assert x.shape == (3, 8, 8) and x.min() >= -1 and x.max() <= 1
    assert x[0, 0, 0] < x[0, 0, -1]  # no flip at evaluation: the ramp still rises left to right


def test_training_transform_flips_about_half_the_time():
    torch.manual_seed(0)
    transform = build_transform(8, train=True)
    flipped = sum(bool(transform(gradient())[0, 0, 0] > 0) for _ in range(200))
    assert 70 < flipped < 130


def test_pairs_are_matched_by_relative_name(tmp_path):
    dataset = PairedDataset(paired_folder(tmp_path))
    assert [Path(a).relative_to(tmp_path / "A").as_posix() for a, _ in dataset.pairs] == [
        "a.png",
        "b.png",
        "sub/c.png",
    ]
    assert all(Path(a).name == Path(b).name for a, b in dataset.pairs)
    x0, x1, label = dataset[2]
    assert x0.shape == x1.shape == (3, 16, 24) and label == 0 and not torch.equal(x0, x1)


def test_a_missing_partner_is_an_error_naming_the_file(tmp_path):
    root = paired_folder(tmp_path)
    (root / "B" / "b.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"B/b\.png"):
        PairedDataset(root)
    (root / "A" / "b.png").unlink()
    (root / "A" / "a.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"A/a\.png"):
        PairedDataset(root)


def test_both_images_of_a_pair_get_the_same_flip(tmp_path):
    dataset = PairedDataset(paired_folder(tmp_path), PairTransform(8, train=True))
    torch.manual_seed(1)
    directions = set()
    for _ in range(40):
        x0, x1, _ = dataset[0]
        x0_rises, x1_rises = bool(x0[0, 0, 0] < x0[0, 0, -1]), bool(x1[0, 0, 0] < x1[0, 0, -1])
        assert x0_rises == x1_rises
        directions.add(x0_rises)
    assert directions == {True, False}


def test_pairs_from_csv_relative_to_the_csv(tmp_path):
    paired_folder(tmp_path)
    listing = tmp_path / "val.csv"
    listing.write_text("clean,degraded\nA/a.png,B/a.png\nA/b.png,B/b.png\n")
    dataset = build_dataset("paired", tmp_path, "val", image_size=8, train=False)
    assert len(dataset) == 2 and dataset[1][0].shape == (3, 8, 8)
    listing.write_text("clean,degraded\nA/a.png,B/nope.png\n")
    with pytest.raises(FileNotFoundError, match=r"line 2: degraded image .*nope\.png"):
        PairedDataset(listing)
    listing.write_text("x,y\nA/a.png,B/a.png\n")
    with pytest.raises(ValueError, match="clean,degraded"):
        PairedDataset(listing)


def test_unknown_data_kind_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="data.kind"):
        build_dataset("lmdb", tmp_path, "val", image_size=8, train=False)


def _replace_in_place(path: Path) -> None:
    """The same name, new bytes of the same size, dated a day earlier (as `cp -p` may leave it)."""
    stat = path.stat()
    path.write_bytes(bytes(reversed(path.read_bytes())))
    day = 86400 * 10**9
    os.utime(path, ns=(stat.st_atime_ns - day, stat.st_mtime_ns - day))


@pytest.mark.parametrize("side", ["A", "B"])
def test_either_side_of_a_pair_replaced_in_place_changes_the_folders_identity(tmp_path, side):
    paired_folder(tmp_path / "val")
    before = paired_sources_identity(tmp_path, "val")
    assert paired_sources_identity(tmp_path, "val") == before  # stat only: stable
    _replace_in_place(tmp_path / "val" / side / "sub" / "c.png")
    assert paired_sources_identity(tmp_path, "val") != before
    assert paired_sources_identity(tmp_path, "train") is None  # no such split: nothing to compare


def test_a_listed_file_outside_the_root_or_the_listing_itself_changes_the_csv_identity(tmp_path):
    """A CSV may name files anywhere: each is part of the identity, and so is the CSV."""
    images = paired_folder(tmp_path / "elsewhere")
    root = tmp_path / "root"
    root.mkdir()
    rows = [f"{images}/A/{n},{images}/B/{n}" for n in ("a.png", "b.png")]
    (root / "val.csv").write_text("clean,degraded\n" + "\n".join(rows) + "\n")
    before = paired_sources_identity(root, "val")
    assert paired_sources_record(root, "val") == {"source": str(root / "val.csv"), "tree": before}
    _replace_in_place(images / "B" / "b.png")
    swapped = paired_sources_identity(root, "val")
    assert swapped != before
    _replace_in_place(images / "B" / "sub" / "c.png")  # not listed: no change
    assert paired_sources_identity(root, "val") == swapped
    (root / "val.csv").write_text("clean,degraded\n" + rows[0] + "\n")
    assert paired_sources_identity(root, "val") not in (before, swapped)
