"""Paired data (data.kind: paired) replaced in place reruns exactly the jobs that read it.

Paired images are read where they lie (no LMDB conversion and its sources record), so each split
has a record of its pairs, RUN/data/<split>_paired_sources.json (stat only), that training and
sampling read; planning rewrites it when either side of a pair was replaced under the same name.
One finished tiny paired run, trained: the training pairs as a folder (A/ clean, B/ degraded), the
validation pairs as a CSV listing files in another folder, so both layouts are covered.
"""

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import test_workflow_reruns
from PIL import Image
from test_workflow_reruns import REPO, snakemake, swap_older_file_in

RUN = "results/tiny"
# a copy of this module's `finished` folder without .snakemake/ (another folder, a fresh clone)
case = test_workflow_reruns.case
# every job after the record of a split: training reads both splits (val: its previews)
AFTER_PAIRS = {"train", "checkpoint_record", "sample", "gather", "evaluate", "track", "report",
               "all"}  # fmt: skip


def write_pairs(root: Path) -> None:
    """train/{A,B}/<n>.png (8 pairs) and val.csv naming 3 pairs under val_images/ (32 px)."""
    rng = np.random.default_rng(0)
    for count, folder in ((8, root / "train"), (3, root / "val_images")):
        for side in ("A", "B"):
            (folder / side).mkdir(parents=True)
        for n in range(count):
            clean = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            Image.fromarray(clean).save(folder / "A" / f"{n}.png")
            Image.fromarray(clean // 2).save(folder / "B" / f"{n}.png")
    rows = [f"val_images/A/{n}.png,val_images/B/{n}.png" for n in range(3)]
    (root / "val.csv").write_text("clean,degraded\n" + "\n".join(rows) + "\n")


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    work = tmp_path_factory.mktemp("work")
    (work / "config").symlink_to(REPO / "config")
    write_pairs(work / "pairs")
    settings = {"results_dir": "results", "partitions": 1, "tasks": ["paired"],
                "samplers": [{"name": "ddpm"}], "evaluate": {"metrics": ["psnr"]},
                "data": {"kind": "paired", "root": "pairs"}}  # fmt: skip
    (work / "case.yaml").write_text(json.dumps(settings))
    env = os.environ | {"TORCH_HOME": str(work / "torch-home"), "I2SB_CACHE": str(work / "cache")}
    proc = snakemake(work, "--cores", "2", "--configfile", "config/tiny.yaml", "case.yaml", env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    record = json.loads((work / RUN / "data" / "val_paired_sources.json").read_text())
    assert record["source"] == "pairs/val.csv" and len(record["tree"]) == 64
    return work, env


def planned(where: tuple[Path, dict]) -> dict[str, int]:
    """Rule -> jobs `snakemake -n` plans in the working folder ``where`` ({}: "Nothing to be done")."""
    work, env = where
    args = ["-n", "--cores", "2", "--configfile", "config/tiny.yaml", "case.yaml"]
    proc = snakemake(work, *args, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    if "Nothing to be done" in proc.stdout + proc.stderr:
        return {}
    table = proc.stdout[proc.stdout.index("Job stats:") :]
    counts = {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}
    return {rule: count for rule, count in counts.items() if rule != "total"}


def test_unchanged_pairs_plan_nothing_with_and_without_metadata(finished, case):
    assert planned(finished) == {}
    assert planned(case) == {}


@pytest.mark.parametrize(
    "swapped", ["pairs/val_images/B/1.png", "pairs/val_images/A/0.png", "pairs/train/B/3.png"]
)
def test_a_pair_replaced_in_place_rewrites_its_splits_record_and_reruns_what_reads_it(
    case, swapped
):
    work, _ = case
    swap_older_file_in(work / swapped)  # same name and size, dated a day earlier
    plan = planned(case)
    assert set(plan) == {"paired_sources"} | AFTER_PAIRS
    assert plan["paired_sources"] == 1  # the other split's record stands


def test_a_listing_that_names_other_files_reruns_what_reads_it(case):
    work, _ = case
    listing = work / "pairs" / "val.csv"
    stat = listing.stat()
    listing.write_text(listing.read_text().replace("B/2.png", "B/1.png"))
    day = 86400 * 10**9
    os.utime(listing, ns=(stat.st_atime_ns - day, stat.st_mtime_ns - day))
    plan = planned(case)
    assert set(plan) == {"paired_sources"} | AFTER_PAIRS and plan["paired_sources"] == 1
