"""config/reproduce.yaml plus the documented CPU overrides (config/reproduce-cpu.yaml) runs end to end, offline.

As a user on a workstation would run it before the cluster: the published folders pre-placed and read-only,
an ImageNet-style data root holding only val/ (nothing is trained), no weights for FID/CA/LPIPS. The only
further overrides are what makes it a test: two tasks, fake published folders of the tiny preset at 32 px
(tests/fake_published.py), and the results and MLflow store in a temporary folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
TASKS = ("sr4x-pool", "inpaint-center")


def _tree_state(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
    }


@pytest.mark.slow
def test_reproduce_with_the_cpu_overrides_runs_offline_on_a_read_only_published_folder(tmp_path):
    from fake_published import make_published_folder

    published = tmp_path / "published"
    for task in TASKS:
        make_published_folder(published / task, task=task)
    rng = np.random.default_rng(0)
    for wnid in ("n01440764", "n01443537"):
        (tmp_path / "imagenet" / "val" / wnid).mkdir(parents=True)
        for i in range(3):
            pixels = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "imagenet" / "val" / wnid / f"v{i}.png")
    before = _tree_state(published)
    modes = {p: p.stat().st_mode for p in [published, *published.rglob("*")]}
    for path in modes:
        path.chmod(modes[path] & ~0o222)
    results = tmp_path / "results"
    env = {
        **os.environ,
        "I2SB_CACHE": str(tmp_path / "cache"),
    }  # no pre-placed weights in the cache
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "snakemake", "--cores", "2",
             "--configfile", "config/reproduce.yaml", "config/reproduce-cpu.yaml", "--config",
             f"data={{root: {tmp_path / 'imagenet'}, image_size: 32}}",
             f"checkpoints={{dir: {published}}}",
             f"tasks=[{','.join(TASKS)}]", "network={preset: tiny}", f"results_dir={results}",
             f"tracking={{uri: 'sqlite:///{results}/mlflow.db', artifact_root: '{results}/art'}}"],
            cwd=REPO, capture_output=True, text=True, timeout=900, env=env,
        )  # fmt: skip
    finally:
        for path, mode in modes.items():
            path.chmod(mode)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert _tree_state(published) == before  # nothing written into checkpoints.dir
    run = results / "reproduce256-cpu"
    assert not (run / "train").exists()
    tables = json.loads((run / "tables" / "tables.json").read_text())
    assert tables["num_runs"] == len(TASKS) * 2  # ddpm and implicit-eta0 at NFE 10
    for task in TASKS:
        metrics = json.loads((run / "eval" / task / "ddpm" / "nfe10" / "metrics.json").read_text())
        assert metrics["num_images"] == 4
        assert metrics["metrics"]["psnr"]["value"] is not None
        fid = metrics["metrics"]["fid"]
        assert fid["value"] is None and fid["reason"]  # offline: unavailable, with the reason
