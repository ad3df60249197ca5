"""Jobs read the files their download jobs recorded, never a path looked up again from the config.

A tiny published run of inpaint-freeform1020 with the published masks: the download jobs record the
configured run folder and masks; the records are then pointed at copies elsewhere while the
configured ones are spoiled. Sampling must read the recorded copies (it fails on the spoiled ones).
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
TASK = "inpaint-freeform1020"


def masks_file(path: Path) -> Path:
    """A small file in the published masks' layout (np.packbits of (N, 256, 256) 0/1 per key)."""
    rng = np.random.default_rng(0)
    keys = {"10-20% freeform": 0.15, "20-30% freeform": 0.25}
    np.savez(path, **{k: np.packbits(rng.random((8, 256, 256)) < p) for k, p in keys.items()})
    return path


def snakemake(work: Path, *targets: str) -> subprocess.CompletedProcess:
    env = os.environ | {"TORCH_HOME": str(work / "torch-home"), "I2SB_CACHE": str(work / "cache")}
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), *targets, "--cores", "2",
         "--configfile", "config/tiny.yaml", "case.yaml"],
        cwd=work, capture_output=True, text=True, timeout=900, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def test_sampling_reads_the_run_folder_and_masks_its_download_records_name(tmp_path):
    sys.path.insert(0, str(Path(__file__).parent))
    from fake_published import make_published_folder

    work = tmp_path / "work"
    work.mkdir()
    (work / "config").symlink_to(REPO / "config")
    configured = make_published_folder(tmp_path / "published" / TASK, TASK)
    configured_masks = masks_file(tmp_path / "masks.npz")
    case = {"results_dir": "results", "tasks": [TASK], "partitions": 1, "samplers": [{"name": "ddpm"}],
            "data": {"mask_source": "published"}, "downloads": {"freeform_masks": str(configured_masks)},
            "checkpoints": {"source": "published", "dir": str(configured.parent)}}  # fmt: skip
    (work / "case.yaml").write_text(json.dumps(case))
    run = Path("results", "tiny")  # targets as the workflow spells them: relative to work
    folder_record = work / run / "downloads" / f"checkpoint_{TASK}.json"
    masks_record = work / run / "downloads" / "freeform_masks.json"
    snakemake(work, *(str(p.relative_to(work)) for p in (folder_record, masks_record)))

    # copies elsewhere, named by the records; the configured ones no longer usable
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(configured, elsewhere / TASK)
    shutil.copy2(configured_masks, elsewhere / "masks.npz")
    (configured / "latest.pt").unlink()
    configured_masks.write_text("<html>not the masks</html>")
    record = json.loads(folder_record.read_text())
    folder_record.write_text(json.dumps(record | {"folder": str(elsewhere / TASK)}))
    record = json.loads(masks_record.read_text())
    masks_record.write_text(json.dumps(record | {"freeform_masks": str(elsewhere / "masks.npz")}))

    part = run / "samples" / TASK / "ddpm" / "nfe2" / "part_0_1.npz"
    snakemake(work, str(part))
    fingerprinted = json.loads((work / run / "checkpoints" / f"{TASK}.json").read_text())
    assert fingerprinted["folder"] == str(elsewhere / TASK)
    with np.load(work / part) as saved:
        meta = json.loads(str(saved["meta"][()]))
    assert meta["checkpoint"] == str(elsewhere / TASK)
