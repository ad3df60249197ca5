"""docs/lmdb.md's commands do what it says: the 10k list rewritten by its sed lines names our LMDB's keys.

The rewrite is run exactly as the document spells it (read from its code blocks), on list lines in the
authors' layout, against an LMDB our converter wrote; so a change of our key layout, or of the document,
that breaks the official reader's way into our files fails here.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
from PIL import Image

from i2sb.data.layout import lmdb_layout
from i2sb.data.lmdb_convert import convert_folder
from i2sb.data.lmdb_env import open_readonly
from i2sb.data.subsets import subset_key

DOC = Path(__file__).resolve().parents[1] / "docs" / "lmdb.md"
AUTHORS_ROOT = "/fast2/data/imagenet/val/"


def _sed_lines() -> list[str]:
    lines = [line for line in DOC.read_text().splitlines() if line.startswith("sed ")]
    assert len(lines) == 2, lines
    return lines


def _rewrite(sed_line: str, listing: str, folder: Path) -> list[str]:
    """Run the documented line with its input file holding ``listing``; the lines it wrote."""
    source = re.search(r"(\S+\.orig)", sed_line).group(1)
    target = sed_line.rsplit("> ", 1)[1].strip()
    (folder / Path(source).parent).mkdir(parents=True, exist_ok=True)
    (folder / source).write_text(listing)
    subprocess.run(["bash", "-c", sed_line], cwd=folder, check=True)
    return (folder / target).read_text().splitlines()


def test_our_keys_are_relative_and_the_rewritten_10k_list_names_them(tmp_path):
    src = tmp_path / "val"
    names = [
        ("n01440764", "ILSVRC2012_val_00039905.JPEG"),
        ("n01443537", "ILSVRC2012_val_00045761.JPEG"),
    ]
    for wnid, name in names:
        (src / wnid).mkdir(parents=True)
        Image.fromarray(np.full((8, 8, 3), 100, np.uint8)).save(src / wnid / name, format="JPEG")
    convert_folder(src, "val", tmp_path / "lmdb", workers=0, progress=False)
    with open_readonly(lmdb_layout(tmp_path / "lmdb", "val").lmdb).begin() as txn:
        keys = {key.decode() for key, _ in txn.cursor()}
    assert keys == {f"{wnid}/{name}" for wnid, name in names}

    listing = "".join(f"{AUTHORS_ROOT}{wnid}/{name}\n" for wnid, name in names)
    ours, other_root = _sed_lines()
    assert set(_rewrite(ours, listing, tmp_path / "checkout")) == keys
    rewritten = _rewrite(other_root, listing, tmp_path / "checkout2")
    assert rewritten == [f"/data/imagenet/val/{wnid}/{name}" for wnid, name in names]
    # our own reader matches either spelling by <wnid>/<file>
    assert {subset_key(line) for line in listing.splitlines()} == keys
    assert {subset_key(line) for line in rewritten} == keys
