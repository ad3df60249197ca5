"""Planning's identity of a source folder (i2sb.planning.tree_identity): what a rerun compares.

The readers follow linked folders (torchvision's ImageFolder walk, paired data's A/ and B/), so a
photo replaced in a linked folder is a change of what they read, as one in a plain folder is.
"""

import os
from pathlib import Path

import pytest

from i2sb.data.sources import paired_sources_identity
from i2sb.planning import tree_identity


def replace_in_place(path: Path) -> None:
    """New bytes of the same size under the same name, dated a day earlier (as `cp -p` leaves it)."""
    stat = path.stat()
    path.write_bytes(bytes(reversed(path.read_bytes())))
    day = 86400 * 10**9
    os.utime(path, ns=(stat.st_atime_ns - day, stat.st_mtime_ns - day))


def shared_folder(root: Path) -> Path:
    root.mkdir(parents=True)
    for name in ("a.png", "b.png"):
        (root / name).write_bytes(name.encode() * 16)
    return root


@pytest.mark.parametrize("layout", ["class folder", "paired A/"])
def test_a_photo_replaced_in_a_linked_folder_changes_the_identity(tmp_path, layout):
    shared = shared_folder(tmp_path / "shared")
    split = tmp_path / "data" / "val"
    split.mkdir(parents=True)
    if layout == "class folder":
        (split / "n01440764").symlink_to(shared, target_is_directory=True)
        identity = lambda: tree_identity(split)  # noqa: E731
    else:
        (split / "A").symlink_to(shared, target_is_directory=True)
        (split / "B").symlink_to(shared, target_is_directory=True)
        identity = lambda: paired_sources_identity(tmp_path / "data", "val")  # noqa: E731
    before = identity()
    assert identity() == before
    replace_in_place(shared / "b.png")
    assert identity() != before


def test_a_link_cycle_is_walked_once(tmp_path):
    folder = shared_folder(tmp_path / "val" / "c0")
    (folder / "loop").symlink_to(tmp_path / "val", target_is_directory=True)
    before = tree_identity(tmp_path / "val")
    replace_in_place(folder / "a.png")
    assert tree_identity(tmp_path / "val") not in (None, before)
