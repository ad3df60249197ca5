"""Part files and gather: exact coverage of the evaluation set, clear errors naming the culprit."""

import json

import numpy as np
import pytest

from i2sb.sample.gather import gather_parts
from i2sb.sample.parts import Part, read_part, why_incomplete, write_part

TOTAL = 10


def make_part(indices, partition, total=TOTAL, nfe=5, degraded=True):
    indices = np.asarray(indices, dtype=np.int64)
    pixels = (indices[:, None, None, None] * np.ones((1, 3, 4, 4))).astype(np.uint8)
    meta = {"task": "jpeg-5", "nfe": nfe, "checkpoint": "/runs/jpeg-5", "total": total,
            "partition": list(partition), "num_images": len(indices), "seconds": 2.0,
            "network_evaluations": 4}  # fmt: skip
    return Part(pixels, pixels + 1, indices, indices + 100, meta, pixels + 2 if degraded else None)


def write_three(folder, **overrides):
    spans = [range(0, 3), range(3, 6), range(6, 10)]
    return [
        write_part(folder / f"part_{i}_3.npz", make_part(span, (i, 3), **overrides))
        for i, span in enumerate(spans)
    ]


def test_write_and_read_round_trip_without_pickle(tmp_path):
    path = write_part(tmp_path / "p.npz", make_part([4, 5], (0, 1)))
    with np.load(path, allow_pickle=False) as data:
        assert json.loads(str(data["meta"]))["task"] == "jpeg-5"
        assert data["recon"].dtype == np.uint8 and data["indices"].dtype == np.int64
    part = read_part(path)
    assert part.indices.tolist() == [4, 5] and part.labels.tolist() == [104, 105]
    assert part.degraded is not None and part.degraded[1, 0, 0, 0] == 7
    assert not list(tmp_path.glob("*.tmp-*"))  # written through a temporary name


def test_gather_merges_parts_in_index_order(tmp_path):
    paths = write_three(tmp_path)
    out = gather_parts(list(reversed(paths)), tmp_path / "samples.npz", expect_parts=3)
    gathered = read_part(out)
    assert gathered.indices.tolist() == list(range(TOTAL))
    assert gathered.recon[:, 0, 0, 0].tolist() == list(range(TOTAL))
    assert gathered.labels.tolist() == [100 + i for i in range(TOTAL)]
    assert gathered.meta["num_images"] == TOTAL and gathered.meta["parts"] == 3
    assert gathered.meta["seconds_per_nfe"] == pytest.approx(6.0 / 12)
    assert gathered.meta["images_per_s"] == pytest.approx(TOTAL / 6.0)


def test_a_missing_part_fails_with_its_name(tmp_path):
    paths = write_three(tmp_path)
    with pytest.raises(FileNotFoundError, match="part_1_3.npz"):
        gather_parts([paths[0], paths[2]], tmp_path / "samples.npz")
    assert not (tmp_path / "samples.npz").exists()


def test_a_part_given_twice_fails(tmp_path):
    paths = write_three(tmp_path)
    copy = write_part(tmp_path / "copy.npz", read_part(paths[1]))
    with pytest.raises(
        ValueError, match=r"partition 1_3 given twice: .*part_1_3.npz and .*copy.npz"
    ):
        gather_parts([*paths, copy], tmp_path / "samples.npz")


def test_overlapping_parts_fail_naming_the_index_and_both_files(tmp_path):
    first = write_part(tmp_path / "part_0_2.npz", make_part(range(0, 6), (0, 2)))
    second = write_part(tmp_path / "part_1_2.npz", make_part(range(5, 10), (1, 2)))
    with pytest.raises(
        ValueError, match=r"index 5 appears in both .*part_0_2.npz and .*part_1_2.npz"
    ):
        gather_parts([first, second], tmp_path / "samples.npz")


def test_a_gap_in_the_indices_fails(tmp_path):
    first = write_part(tmp_path / "part_0_2.npz", make_part(range(0, 4), (0, 2)))
    second = write_part(tmp_path / "part_1_2.npz", make_part(range(5, 10), (1, 2)))
    with pytest.raises(ValueError, match=r"missing \[4\]"):
        gather_parts([first, second], tmp_path / "samples.npz")


def test_expect_parts_and_parts_of_other_runs_are_checked(tmp_path):
    paths = write_three(tmp_path)
    with pytest.raises(ValueError, match="--expect-parts says 4"):
        gather_parts(paths, tmp_path / "samples.npz", expect_parts=4)
    other = write_part(tmp_path / "other" / "part_2_3.npz", make_part(range(6, 10), (2, 3), nfe=20))
    with pytest.raises(ValueError, match="nfe=20"):
        gather_parts([paths[0], paths[1], other], tmp_path / "samples.npz")


def test_degraded_is_kept_only_when_every_part_has_it(tmp_path):
    paths = write_three(tmp_path)
    paths[2] = write_part(paths[2], make_part(range(6, 10), (2, 3), degraded=False))
    assert read_part(gather_parts(paths, tmp_path / "samples.npz")).degraded is None


def test_unreadable_or_incomplete_files_are_named(tmp_path):
    broken = tmp_path / "part_0_1.npz"
    broken.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="part_0_1.npz is not a readable npz"):
        read_part(broken)
    np.savez(tmp_path / "partial.npz", recon=np.zeros((1, 3, 2, 2), np.uint8))
    with pytest.raises(ValueError, match=r"partial.npz: missing keys \['clean'"):
        read_part(tmp_path / "partial.npz")


def test_why_incomplete_compares_indices_and_settings(tmp_path):
    path = write_part(tmp_path / "p.npz", make_part(range(3), (0, 3)))
    assert why_incomplete(path, np.arange(3), {"nfe": 5, "partition": [0, 3]}) == ""
    assert "nfe=5" in why_incomplete(path, np.arange(3), {"nfe": 10})
    assert "other indices" in why_incomplete(path, np.arange(4), {"partition": [0, 3]})
    assert why_incomplete(tmp_path / "none.npz", np.arange(3), {}) == "not written yet"
