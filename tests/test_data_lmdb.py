"""LMDB conversion and readers (issue 5): round trip, bad files, interruption, official layout, workers."""

import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from i2sb.data import lmdb_convert
from i2sb.data.folders import ImageFolderDataset
from i2sb.data.layout import lmdb_layout
from i2sb.data.lmdb_convert import convert_folder
from i2sb.data.lmdb_dataset import LMDBImageDataset


def make_folder(root: Path, classes=("cat", "dog"), per_class=4, size=16, fmt="PNG") -> Path:
    rng = np.random.default_rng(0)
    for name in classes:
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (size, size + 4, 3), dtype=np.uint8)
            suffix = "png" if fmt == "PNG" else "jpg"
            Image.fromarray(pixels).save(root / name / f"{name}{i}.{suffix}", fmt)
    return root


def files_of(root: Path) -> dict[str, bytes]:
    """{path relative to root: bytes}: what the LMDB stores (keys relative to the source)."""
    return {
        os.path.relpath(os.path.join(d, f), root): Path(d, f).read_bytes()
        for d, _, fs in os.walk(root)
        for f in fs
    }


def test_round_trip_keeps_every_file_byte_for_byte(tmp_path):
    src = make_folder(tmp_path / "src")
    report = convert_folder(src, "train", tmp_path / "data", workers=0, progress=False)
    dataset = LMDBImageDataset(tmp_path / "data", "train")
    stored = {path: dataset.read_bytes(i) for i, path in enumerate(dataset.paths)}
    assert stored == files_of(src)
    assert report.stored == report.written == 8 and not report.skipped
    assert dataset.classes == ["cat", "dog"] and dataset.labels == [0] * 4 + [1] * 4


def test_items_are_tensors_in_signed_range_with_labels(tmp_path):
    convert_folder(
        make_folder(tmp_path / "src"), "val", tmp_path / "data", workers=0, progress=False
    )
    image, label = LMDBImageDataset(tmp_path / "data", "val")[5]
    assert image.shape == (3, 16, 20) and label == 1
    assert image.min() >= -1 and image.max() <= 1 and image.min() < 0 < image.max()


def test_lmdb_and_image_folder_give_the_same_items(tmp_path):
    src = make_folder(tmp_path / "src")
    convert_folder(src, "train", tmp_path / "data", workers=0, progress=False)
    from_lmdb, from_folder = LMDBImageDataset(tmp_path / "data", "train"), ImageFolderDataset(src)
    assert from_lmdb.samples == [(os.path.relpath(p, src), y) for p, y in from_folder.samples]
    assert torch.equal(from_lmdb[3][0], from_folder[3][0])


def test_bad_files_are_skipped_and_named_in_the_report(tmp_path):
    src = make_folder(tmp_path / "src", fmt="JPEG")
    good = (src / "cat" / "cat0.jpg").read_bytes()
    (src / "cat" / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (src / "dog" / "notes.jpg").write_text("this is not an image\n")
    (src / "dog" / "README.txt").write_text("ignored: no image extension\n")
    report = convert_folder(src, "train", tmp_path / "data", workers=2, progress=False)
    skipped = {Path(item["path"]).name for item in report.skipped}
    assert skipped == {"truncated.jpg", "notes.jpg"}
    assert [Path(p).name for p in report.ignored] == ["README.txt"]
    written = lmdb_layout(tmp_path / "data", "train").report.read_text()
    assert "truncated.jpg" in written and "notes.jpg" in written
    assert len(LMDBImageDataset(tmp_path / "data", "train")) == 8


def test_the_map_grows_when_full(tmp_path):
    src = make_folder(tmp_path / "src", per_class=6, size=48)
    convert_folder(src, "train", tmp_path / "data", workers=0, map_size=32 << 10, progress=False)
    dataset = LMDBImageDataset(tmp_path / "data", "train")
    assert {p: dataset.read_bytes(i) for i, p in enumerate(dataset.paths)} == files_of(src)


def test_an_interrupted_conversion_is_incomplete_and_a_rerun_finishes_it(tmp_path, monkeypatch):
    src = make_folder(tmp_path / "src")
    real_commit, calls = lmdb_convert._commit, []

    def failing_commit(env, batch):
        calls.append(len(batch))
        if len(calls) == 2:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C in the middle of the writes
        real_commit(env, batch)

    monkeypatch.setattr(lmdb_convert, "_commit", failing_commit)
    with pytest.raises(KeyboardInterrupt):
        convert_folder(src, "train", tmp_path / "data", workers=0, batch_images=3, progress=False)
    with pytest.raises(FileNotFoundError, match="incomplete"):
        LMDBImageDataset(tmp_path / "data", "train")
    monkeypatch.setattr(lmdb_convert, "_commit", real_commit)
    report = convert_folder(src, "train", tmp_path / "data", workers=0, progress=False)
    assert report.written == 5 and report.stored == 8  # the first 3 were kept from the first run
    dataset = LMDBImageDataset(tmp_path / "data", "train")
    assert {p: dataset.read_bytes(i) for i, p in enumerate(dataset.paths)} == files_of(src)


def test_a_conversion_killed_with_sigkill_resumes(tmp_path):
    src = make_folder(tmp_path / "src")
    script = textwrap.dedent(f"""
        import os, signal
        from i2sb.data import lmdb_convert
        real, calls = lmdb_convert._commit, []
        def commit_then_die(env, batch):
            real(env, batch); calls.append(1)
            if len(calls) == 2:
                os.kill(os.getpid(), signal.SIGKILL)
        lmdb_convert._commit = commit_then_die
        lmdb_convert.convert_folder({str(src)!r}, "val", {str(tmp_path / "data")!r},
                                    workers=0, batch_images=2, progress=False)
    """)
    killed = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert killed.returncode == -9
    assert not lmdb_layout(tmp_path / "data", "val").index.exists()
    report = convert_folder(src, "val", tmp_path / "data", workers=0, progress=False)
    assert report.written == 4 and report.stored == 8
    dataset = LMDBImageDataset(tmp_path / "data", "val")
    assert {p: dataset.read_bytes(i) for i, p in enumerate(dataset.paths)} == files_of(src)


def test_official_pickle_is_read_only_on_opt_in(tmp_path):
    convert_folder(
        make_folder(tmp_path / "src"), "val", tmp_path / "data", workers=0, progress=False
    )
    layout = lmdb_layout(tmp_path / "data", "val")
    layout.index.unlink()  # as with an LMDB made by the reference code: only the .pt
    with pytest.raises(ValueError, match="allow_pickle"):
        LMDBImageDataset(tmp_path / "data", "val")
    dataset = LMDBImageDataset(tmp_path / "data", "val", allow_pickle=True)
    assert len(dataset) == 8 and dataset[7][1] == 1


def test_an_official_lmdb_can_be_indexed_once_then_read_without_pickle(tmp_path, capsys):
    from i2sb.cli import main

    src = make_folder(tmp_path / "src")
    convert_folder(src, "val", tmp_path / "data", workers=0, progress=False)
    layout = lmdb_layout(tmp_path / "data", "val")
    layout.index.unlink()
    assert main(["data", "index", str(tmp_path / "data"), "--split", "val"]) == 1
    assert "--trust-pickle" in capsys.readouterr().err
    assert main(["data", "index", str(tmp_path / "data"), "--split", "val", "--trust-pickle"]) == 0
    dataset = LMDBImageDataset(tmp_path / "data", "val")
    relative = [(os.path.relpath(p, src), y) for p, y in ImageFolderDataset(src).samples]
    assert dataset.samples == relative and dataset.classes == ["cat", "dog"]


def test_official_pt_is_what_the_reference_reader_expects(tmp_path):
    src = make_folder(tmp_path / "src")
    convert_folder(src, "train", tmp_path / "data", workers=0, progress=False)
    from torchvision.datasets import ImageFolder

    folder = torch.load(lmdb_layout(tmp_path / "data", "train").official_pt, weights_only=False)
    assert isinstance(folder, ImageFolder)
    reference = [(os.path.relpath(p, src), y) for p, y in ImageFolder(str(src)).imgs]
    assert folder.imgs == folder.samples == reference and folder.classes == ["cat", "dog"]


def test_pickled_dataset_carries_no_open_environment(tmp_path):
    convert_folder(
        make_folder(tmp_path / "src"), "train", tmp_path / "data", workers=0, progress=False
    )
    dataset = LMDBImageDataset(tmp_path / "data", "train")
    first = dataset[0][0]  # opens the environment in this process
    copy = pickle.loads(pickle.dumps(dataset))  # an lmdb.Environment would refuse to pickle
    assert torch.equal(copy[0][0], first)


def test_dataloader_with_two_workers_reads_the_lmdb(tmp_path):
    convert_folder(
        make_folder(tmp_path / "src"), "train", tmp_path / "data", workers=0, progress=False
    )
    dataset = LMDBImageDataset(tmp_path / "data", "train")
    dataset[0]  # an environment opened in the parent must not leak into the workers
    loader = torch.utils.data.DataLoader(dataset, batch_size=3, num_workers=2)
    images, labels = zip(*loader)
    assert torch.cat(images).shape == (8, 3, 16, 20)
    assert torch.cat(labels).tolist() == dataset.labels


def test_missing_lmdb_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="i2sb data convert"):
        LMDBImageDataset(tmp_path, "train")
    with pytest.raises(ValueError, match="split"):
        LMDBImageDataset(tmp_path, "test")


def test_the_same_source_given_absolute_then_relative_is_stored_once(tmp_path, monkeypatch):
    make_folder(tmp_path / "src")
    convert_folder(tmp_path / "src", "train", tmp_path / "data", workers=0, progress=False)
    monkeypatch.chdir(tmp_path)
    report = convert_folder("src", "train", tmp_path / "data", workers=0, progress=False)
    assert report.written == 0 and report.stored == 8 and report.removed == 0
    dataset = LMDBImageDataset(tmp_path / "data", "train")
    with lmdb_convert.lmdb.open(str(dataset.lmdb_path), readonly=True, lock=False) as env:
        assert env.stat()["entries"] == 8


def test_a_rerun_redoes_changed_files_and_reports_corrupt_and_deleted_ones(tmp_path):
    src = make_folder(tmp_path / "src")
    convert_folder(src, "train", tmp_path / "data", workers=0, progress=False)
    Image.new("RGB", (16, 20), (200, 10, 10)).save(src / "cat" / "cat1.png")  # replaced
    (src / "dog" / "dog2.png").write_bytes(b"\x89PNG garbage")  # became corrupt
    (src / "dog" / "dog3.png").unlink()  # deleted
    os.utime(src / "cat" / "cat1.png", ns=(1, 1))  # a new mtime even on coarse file systems
    os.utime(src / "dog" / "dog2.png", ns=(1, 1))
    report = convert_folder(src, "train", tmp_path / "data", workers=0, progress=False)
    assert sorted(Path(p).name for p in report.changed) == ["cat1.png", "dog2.png"]
    assert [Path(item["path"]).name for item in report.skipped] == ["dog2.png"]
    assert report.removed == 1 and report.stored == 6 and report.written == 1
    dataset = LMDBImageDataset(tmp_path / "data", "train")
    stored = {path: dataset.read_bytes(i) for i, path in enumerate(dataset.paths)}
    assert stored["cat/cat1.png"] == (src / "cat" / "cat1.png").read_bytes()


def test_a_file_name_that_is_not_utf8_is_skipped_and_named(tmp_path, capsys):
    from i2sb.cli import main

    src = make_folder(tmp_path / "src")
    bad = os.path.join(os.fsencode(src / "cat"), b"caf\xe9.png")
    with open(bad, "wb") as handle:
        handle.write((src / "cat" / "cat0.png").read_bytes())
    assert main(["data", "convert", "--src", str(src), "--split", "val",
                 "--out", str(tmp_path / "data"), "--workers", "0"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "8 images stored" in out and "caf\\xe9.png: file name is not valid UTF-8" in out
    assert len(LMDBImageDataset(tmp_path / "data", "val")) == 8


def test_a_repaired_jpeg_is_a_warning_in_the_report(tmp_path):
    src = make_folder(tmp_path / "src", fmt="JPEG", size=64)
    path = src / "dog" / "dog1.jpg"
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(3)
    middle = len(data) // 2
    data[middle : middle + 50] = rng.integers(0, 256, 50, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    Image.open(path).load()  # Pillow decodes it without a word
    report = convert_folder(src, "train", tmp_path / "data", workers=0, progress=False)
    assert [Path(w["path"]).name for w in report.warnings] == ["dog1.jpg"]
    assert "Corrupt JPEG data" in report.warnings[0]["warning"] and report.stored == 8
