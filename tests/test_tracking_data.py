"""Pipeline files in the formats of docs/CONTRACTS.md, made small, and the readers of i2sb.tracking.inputs.

The helpers here are shared by the tracking and tables tests (pytest puts tests/ on sys.path).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from i2sb.config import Config
from i2sb.tracking.inputs import (
    data_fingerprint,
    flatten,
    git_commit,
    read_eval_metrics,
    read_head,
    read_samples_summary,
    read_training_curve,
)

DDPM = {"name": "ddpm", "label": "ddpm", "options": {}}  # SamplerConfig().describe()
# what sampling records of its data (meta "dataset", "data_fingerprint"); tracking reads only these
DEMO_DATASET = {"name": "demo photos", "kind": "demo", "eval_subset": "full"}
EVAL_SET = {"images": 10, "sha256": "e" * 64}


def write_samples(
    path: Path,
    task: str,
    nfe: int,
    n: int = 10,
    size: int = 8,
    degraded=True,
    sampler=DDPM,
    data: dict | None = None,
):
    """A gathered samples file; ``data`` replaces (None values drop) its record of the data."""
    recorded = {"dataset": DEMO_DATASET, "data_fingerprint": EVAL_SET} | (data or {})
    rng = np.random.default_rng(nfe)
    arrays = {
        "recon": rng.integers(0, 256, (n, 3, size, size), dtype=np.uint8),
        "clean": rng.integers(0, 256, (n, 3, size, size), dtype=np.uint8),
        "indices": np.arange(n, dtype=np.int64),
        "labels": np.arange(n, dtype=np.int64) % 4,
        "meta": np.array(
            json.dumps(
                {
                    "task": task,
                    "sampler": sampler,
                    "nfe": nfe,
                    "checkpoint": f"train/{task}/latest.pt",
                    "precision": "fp32",
                    "images_per_s": 5.0,
                    "seconds_per_nfe": 0.01,
                    "mask_source": "center" if task.startswith("inpaint") else None,
                    **{k: v for k, v in recorded.items() if v is not None},
                }
            )
        ),
    }
    if degraded:
        arrays["degraded"] = rng.integers(0, 256, (n, 3, size, size), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return arrays


def make_run(
    run: Path,
    task: str = "sr4x-pool",
    nfe: int = 5,
    fid: float | None = None,
    psnr=21.5,
    sampler=DDPM,
) -> dict:
    """Write train/, samples/ and eval/ for one (task, sampler, NFE); returns the `track` arguments."""
    train = run / "train" / task
    train.mkdir(parents=True, exist_ok=True)
    rows = [
        {
            "step": s,
            "loss": 1.0 / s,
            "lr": 5e-5,
            "it_per_s": 2.0,
            "images_per_s": 16.0,
            "time": 1.7e9 + s,
        }
        for s in range(10, 60, 10)
    ]
    rows.append({"step": 50, "val_psnr": 20.0, "val_psnr_degraded": 18.0})
    (train / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (train / "options.json").write_text(json.dumps({"task": task}))
    samples = run / "samples" / task / sampler["label"] / f"nfe{nfe}" / "samples.npz"
    write_samples(samples, task, nfe, sampler=sampler)
    metrics = run / "eval" / task / sampler["label"] / f"nfe{nfe}" / "metrics.json"
    metrics.parent.mkdir(parents=True, exist_ok=True)
    metric = lambda v, why: {"value": v, "reason": None if v is not None else why}  # noqa: E731
    metrics.write_text(
        json.dumps(
            {
                "task": task,
                "sampler": sampler,
                "nfe": nfe,
                "num_images": 10,
                "samples": str(samples),
                "metrics": {
                    "fid": metric(fid, "Inception weights unavailable offline"),
                    "ca": metric(None, "ResNet-50 weights unavailable offline"),
                    "psnr": metric(psnr, ""),
                    "ssim": metric(0.61, ""),
                },
                "fid_reference": "test statistics",
                "fid_reference_kind": "file",
                "image_size": 32,
                "dataset": DEMO_DATASET,
                "sampling": {"images_per_s": 5.0, "seconds_per_nfe": 0.01},
            }
        )
    )
    config = run / "config.json"
    config.write_text(json.dumps(Config(benchmark=run.name).to_dict()))
    return {"metrics_json": metrics, "train_dir": train, "samples": samples, "config_json": config}


def test_eval_metrics_keep_values_and_reasons(tmp_path):
    args = make_run(tmp_path / "bench")
    result = read_eval_metrics(args["metrics_json"])
    assert (result.task, result.nfe) == ("sr4x-pool", 5)
    assert result.values == {
        "psnr": 21.5,
        "ssim": 0.61,
        "sampling_images_per_s": 5.0,
        "sampling_seconds_per_nfe": 0.01,
    }
    assert result.reasons["fid"] == "Inception weights unavailable offline"
    assert "ca" in result.reasons and "fid" not in result.values


def test_eval_metrics_reject_a_non_numeric_value_naming_the_file(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps({"task": "jpeg-5", "nfe": 2, "metrics": {"fid": {"value": "x"}}}))
    with pytest.raises(ValueError, match=r"metrics.json: metrics.fid.value"):
        read_eval_metrics(path)


def test_training_curve_maps_fields_and_keeps_the_last_of_a_repeated_step(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text(
        '{"step": 1, "loss": 3.0, "lr": 0.1}\n\n{"step": 1, "loss": 2.0}\n'
        '{"step": 2, "val_psnr": 9.5}\n'
    )
    assert read_training_curve(path) == {
        "train_loss": {1: 2.0},
        "lr": {1: 0.1},
        "val_psnr": {2: 9.5},
    }


def test_training_curve_names_the_line_without_a_step(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "loss": 3.0}\n{"loss": 2.0}\n')
    with pytest.raises(ValueError, match=r"metrics.jsonl:2: .*'step'"):
        read_training_curve(path)


def test_flatten_gives_dotted_keys():
    assert flatten({"a": {"b": 1, "c": [5, 20]}, "d": "x", "e": None}) == {
        "a.b": "1",
        "a.c": "[5, 20]",
        "d": "x",
        "e": "null",
    }


def test_git_commit_outside_a_checkout_is_unknown_with_a_reason(tmp_path):
    commit, why = git_commit(tmp_path)
    assert commit == "unknown" and str(tmp_path) in why


def test_fingerprint_depends_on_labels_the_recorded_set_and_index_file(tmp_path):
    idx = np.arange(5)
    base, covers = data_fingerprint(idx, idx % 2, EVAL_SET)
    assert base == data_fingerprint(idx.copy(), idx % 2, dict(EVAL_SET))[0]
    assert base != data_fingerprint(idx, (idx + 1) % 2, EVAL_SET)[0]
    other_set = {"images": 10, "sha256": "f" * 64}  # same indices, other evaluation images
    assert base != data_fingerprint(idx, idx % 2, other_set)[0]
    index = tmp_path / "index.json"
    index.write_text("[]")
    with_index, covers_index = data_fingerprint(idx, idx % 2, EVAL_SET, index)
    assert with_index != base and covers_index.endswith("+ index.json") and "5" in covers
    assert "recorded by sampling" in covers


def test_read_head_reads_the_first_rows_only(tmp_path):
    arrays = write_samples(tmp_path / "s.npz", "jpeg-5", 2, n=12)
    head = read_head(tmp_path / "s.npz", "recon", 8)
    np.testing.assert_array_equal(head, arrays["recon"][:8])
    assert read_head(tmp_path / "s.npz", "nothing", 8) is None


def test_samples_summary_requires_the_contract_keys(tmp_path):
    np.savez(tmp_path / "bad.npz", recon=np.zeros((1, 3, 2, 2), np.uint8))
    with pytest.raises(KeyError, match="has no array 'clean'"):
        read_samples_summary(tmp_path / "bad.npz")
    write_samples(tmp_path / "ok.npz", "jpeg-5", 2)
    summary = read_samples_summary(tmp_path / "ok.npz")
    assert summary.num_images == 10 and summary.meta["task"] == "jpeg-5"


def test_samples_without_a_recorded_evaluation_set_are_refused_naming_the_key(tmp_path):
    """Samples from before sampling recorded its data: tracking does not reopen the data."""
    write_samples(tmp_path / "old.npz", "jpeg-5", 2, data={"data_fingerprint": None})
    with pytest.raises(ValueError) as caught:
        read_samples_summary(tmp_path / "old.npz")
    message = str(caught.value)
    assert "'data_fingerprint'" in message and "sample it again" in message
    assert "\n" not in message
