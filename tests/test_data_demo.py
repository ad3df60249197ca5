"""Embedded demo photos (issue 5): real crops, deterministic, atomic, and usable end to end."""

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from i2sb.cli import main
from i2sb.data.demo import make_demo_images
from i2sb.data.lmdb_dataset import LMDBImageDataset

SMALL = dict(classes=2, train_per_class=3, val_per_class=2, size=16)


def digests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*.png"))
    }


def test_same_seed_gives_byte_identical_pngs(tmp_path):
    first = digests(make_demo_images(tmp_path / "a", **SMALL, seed=3))
    second = digests(make_demo_images(tmp_path / "b", **SMALL, seed=3))
    other = digests(make_demo_images(tmp_path / "c", **SMALL, seed=4))
    assert first == second and len(first) == 10
    assert first != other


def test_layout_sizes_and_distinct_crops(tmp_path):
    root = make_demo_images(tmp_path / "demo", **SMALL, seed=0)
    assert sorted(p.name for p in (root / "train").iterdir()) == ["astronaut", "chelsea"]
    images = [np.asarray(Image.open(p)) for p in sorted(root.rglob("*.png"))]
    assert all(image.shape == (16, 16, 3) for image in images)
    assert len({image.tobytes() for image in images}) == len(images)  # train and val never repeat


def test_a_finished_folder_is_reused_and_a_foreign_one_refused(tmp_path):
    root = make_demo_images(tmp_path / "demo", **SMALL)
    before = digests(root)
    assert digests(make_demo_images(root, **SMALL)) == before
    with pytest.raises(ValueError, match="remove it"):
        make_demo_images(root, **{**SMALL, "size": 32})
    assert not list(tmp_path.glob(".demo.tmp-*"))


def test_too_many_classes_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="data.demo.classes"):
        make_demo_images(tmp_path / "demo", classes=99)


def test_cli_builds_demo_then_converts_it(tmp_path, capsys):
    photos, data = tmp_path / "photos", tmp_path / "data"
    assert main(["data", "demo", str(photos), "--classes", "2", "--train-per-class", "2",
                 "--val-per-class", "1", "--size", "16"]) == 0  # fmt: skip
    assert main(["data", "convert", "--src", str(photos / "val"), "--split", "val",
                 "--out", str(data), "--workers", "0"]) == 0  # fmt: skip
    assert "2 images stored" in capsys.readouterr().out
    assert len(LMDBImageDataset(data, "val")) == 2
    assert main(["data", "convert", "--src", str(tmp_path / "nope"), "--split", "val",
                 "--out", str(data)]) == 1  # fmt: skip
    assert "does not exist" in capsys.readouterr().err
