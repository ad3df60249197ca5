"""Evaluate a gathered ``samples.npz`` and write ``metrics.json`` (docs/CONTRACTS.md).

PSNR/SSIM need nothing external and are always computed. FID and CA need pretrained weights (and
FID a reference); when those cannot be had, the metric is written with ``"value": null`` and the
reason, unless ``require_external_metrics`` turns that into an error. A number is never invented.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from i2sb.atomic import write_json
from i2sb.config import DownloadConfig, EvaluateConfig
from i2sb.distributed import resolve_device
from i2sb.downloads import DownloadError, PlacedFileMissing, fetch
from i2sb.metrics import fid as fid_lib
from i2sb.metrics.classifier import classifier_accuracy, load_resnet50
from i2sb.metrics.image_quality import psnr_per_image, ssim_per_image
from i2sb.metrics.perceptual import load_lpips, lpips_per_image
from i2sb.metrics.weights import WeightsUnavailable
from i2sb.sample.parts import Part, read_part
from i2sb.tasks import FID_REF_TRAIN, task_spec


class ReferenceUnavailable(RuntimeError):
    """No FID reference statistics were given or can be fetched for the task."""


LOG = logging.getLogger(__name__)
UNAVAILABLE = (WeightsUnavailable, DownloadError, ReferenceUnavailable)


_DEFAULTS, _NO_PLACED_FILES = EvaluateConfig(), DownloadConfig()


@dataclass(frozen=True)
class _How:
    """One evaluation call's arguments, passed down together (not a settings class: the settings
    are ``EvaluateConfig`` and ``DownloadConfig``)."""

    settings: EvaluateConfig
    downloads: DownloadConfig
    device: str
    reference: str  # an explicit FID reference npz for any task (i2sb evaluate --fid-reference)


def measured(value: float) -> dict[str, Any]:
    return {"value": float(value), "reason": None}


def unavailable(reason: str) -> dict[str, Any]:
    return {"value": None, "reason": reason}


# What an FID in metrics.json was measured against (``fid_reference_kind``): only the first two
# are the paper's references (spec section 7); the others are never comparable with its table.
FID_REFERENCE_KINDS = ("adm_train_batch", "val_stats", "clean_images", "file")


def _reference(
    samples: Part, path: Path, task: str, how: _How, model: fid_lib.FeatureModel
) -> tuple[np.ndarray, np.ndarray, str, str]:
    """mu, sigma, a description and the kind (FID_REFERENCE_KINDS) of the FID reference (spec §7)."""
    train_reference = task_spec(task).fid_reference == FID_REF_TRAIN
    given = how.reference or ("" if train_reference else how.settings.fid_val_stats)
    if given:
        # A file given for a validation-set task is its validation statistics (i2sb fid-reference).
        kind = "file" if train_reference else "val_stats"
        return *fid_lib.load_reference_stats(given), f"file {given}", kind
    if train_reference:
        adm = fetch("fid_reference", how.downloads.fid_reference, how.downloads.cache_dir)
        return (
            *fid_lib.load_reference_stats(adm),
            f"ADM training-set batch (mu/sigma) {adm}",
            "adm_train_batch",
        )
    if how.settings.fid_reference_from_clean:
        feats = fid_lib.image_features(samples.clean, model, how.device, how.settings.batch_size)
        return (
            *fid_lib.stats_of(feats),
            f"clean images of {path} ({len(samples)} images; not the full validation set, so "
            "not comparable with the paper)",
            "clean_images",
        )
    raise ReferenceUnavailable(
        f"task {task} compares with validation-set statistics: make them once with `i2sb "
        "fid-reference VAL_FOLDER --out STATS.npz` and pass --fid-reference STATS.npz "
        "(config evaluate.fid_val_stats), or --fid-reference-from-clean for a rough reference"
    )


def compute_fid(
    samples: Part, path: Path, task: str, how: _How, model: Any = None
) -> tuple[dict[str, Any], tuple[str, str] | None]:
    """FID entry and (reference description, kind); ``model`` defaults to clean-fid's Inception."""
    if not how.settings.fid:
        return unavailable("disabled (evaluate.fid is false)"), None
    if model is None:
        model = fid_lib.load_inception(how.device)
    mu_ref, sigma_ref, described, kind = _reference(samples, path, task, how, model)
    feats = fid_lib.image_features(samples.recon, model, how.device, how.settings.batch_size)
    fid = fid_lib.frechet_distance(*fid_lib.stats_of(feats), mu_ref, sigma_ref)
    return measured(fid), (described, kind)


def compute_ca(samples: Part, how: _How, model: Any = None) -> dict[str, Any]:
    """CA entry; ``model`` defaults to ResNet-50 IMAGENET1K_V1."""
    if not how.settings.classifier_accuracy:
        return unavailable("disabled (evaluate.classifier_accuracy is false)")
    if model is None:
        model = load_resnet50(how.device)
    batch = how.settings.batch_size
    return measured(classifier_accuracy(samples.recon, samples.labels, model, how.device, batch))


def compute_lpips(samples: Part, how: _How, model: Any = None) -> dict[str, dict[str, Any]]:
    """lpips of recon (and lpips_degraded of the inputs) against clean; ``model``: LPIPS(alex)."""
    if not how.settings.lpips:
        off = unavailable("disabled (evaluate.lpips is false)")
        return {"lpips": off, "lpips_degraded": off}
    if model is None:
        model = load_lpips(how.device)
    entries = {}
    for name, images in (("lpips", samples.recon), ("lpips_degraded", samples.degraded)):
        if images is None:
            entries[name] = unavailable("the samples file holds no degraded images")
            continue
        distances = lpips_per_image(
            images, samples.clean, model, how.device, how.settings.batch_size
        )
        entries[name] = measured(np.mean(distances))
    return entries


def _external(name: str, how: _How, compute: Callable[[], tuple]) -> tuple:
    """Run ``compute`` -> (entry, extra); missing weights/references become (unavailable, None)."""
    try:
        return compute()
    except PlacedFileMissing:
        raise  # a configured path that is wrong is an error, not an unavailable metric
    except UNAVAILABLE as err:
        if how.settings.require_external_metrics:
            raise RuntimeError(
                f"{name} cannot be computed and external metrics are required "
                f"(evaluate.require_external_metrics / --require-external-metrics): {err}"
            ) from None
        LOG.warning("%s unavailable: %s", name, err)  # said once, in the job's log or the console
        return unavailable(str(err)), None


def image_quality(samples: Part) -> dict[str, dict[str, Any]]:
    """psnr/ssim of recon (and psnr_degraded/ssim_degraded of the inputs) against clean."""
    entries = {}
    for suffix, images in (("", samples.recon), ("_degraded", samples.degraded)):
        if images is None:
            reason = "the samples file holds no degraded images"
            entries[f"psnr{suffix}"] = entries[f"ssim{suffix}"] = unavailable(reason)
            continue
        entries[f"psnr{suffix}"] = measured(np.mean(psnr_per_image(images, samples.clean)))
        entries[f"ssim{suffix}"] = measured(np.mean(ssim_per_image(images, samples.clean)))
    return entries


def evaluate_samples(
    samples_path: str | Path,
    task: str,
    out: str | Path,
    settings: EvaluateConfig = _DEFAULTS,
    feature_model: Any = None,
    classifier: Any = None,
    dataset: dict[str, Any] | None = None,
    lpips_model: Any = None,
    *,
    downloads: DownloadConfig = _NO_PLACED_FILES,
    device: str = "auto",
    fid_reference: str = "",
) -> dict[str, Any]:
    """Compute every metric of ``samples_path`` and write ``out`` (metrics.json) atomically.

    ``settings`` is the config's ``evaluate`` section and ``downloads`` its ``downloads`` section
    (pre-placed ADM reference batch, cache). ``fid_reference`` names a reference npz for any
    task; otherwise SR tasks use ADM's batch and the others ``settings.fid_val_stats``.
    ``dataset`` (``i2sb.data.build.describe_eval_data``) says what the images are; None is
    recorded as unknown (an evaluation without a config).
    """
    how = _How(settings, downloads, resolve_device(device), fid_reference)
    path = Path(samples_path)
    samples = read_part(path)
    if "partition" in samples.meta:
        index, count = samples.meta["partition"]
        raise ValueError(
            f"{path} is part {index} of {count} of a sampling run, not a gathered set: gather "
            f"all {count} parts first (i2sb gather part_*_{count}.npz --out samples.npz)"
        )
    task_spec(task)  # unknown task names fail here, before any work
    recorded = samples.meta.get("task")
    if recorded is not None and recorded != task:
        raise ValueError(f"{path}: sampled for task {recorded!r}, but --task is {task!r}")
    with torch.inference_mode():
        fid, reference = _external(
            "FID", how, lambda: compute_fid(samples, path, task, how, feature_model)
        )
        ca, _ = _external("CA", how, lambda: (compute_ca(samples, how, classifier), None))
        lpips, _ = _external("LPIPS", how, lambda: (compute_lpips(samples, how, lpips_model), None))
    if "value" in lpips:  # unavailable: the one reason holds for both entries
        lpips = {"lpips": lpips, "lpips_degraded": lpips}
    result = {
        "task": task,
        "sampler": samples.meta.get("sampler"),  # {"name", "label", "options"} (sampler_table)
        "nfe": samples.meta.get("nfe"),
        "num_images": len(samples),
        "image_size": int(samples.recon.shape[-1]),
        "dataset": dataset,
        "samples": str(path),
        "metrics": {"fid": fid, "ca": ca, **image_quality(samples), **lpips},
        "fid_reference": reference[0] if reference else None,
        "fid_reference_kind": reference[1] if reference else None,
        "sampling": {k: samples.meta.get(k) for k in ("images_per_s", "seconds_per_nfe")},
    }
    write_json(out, result)
    return result


def evaluate_for_config(
    cfg: Any, samples_path: str | Path, task: str, out: str | Path, fid_val_stats: str = ""
) -> dict[str, Any]:
    """The workflow's entry: evaluate with every setting taken from an i2sb Config.

    ``fid_val_stats`` (the workflow's cached validation statistics) replaces
    ``evaluate.fid_val_stats`` for the tasks whose FID reference is the validation set.
    """
    from i2sb.data.build import describe_eval_data

    settings = cfg.evaluate
    if fid_val_stats:
        settings = dataclasses.replace(settings, fid_val_stats=fid_val_stats)
    dataset = describe_eval_data(cfg, task)
    return evaluate_samples(
        samples_path, task, out, settings, dataset=dataset, downloads=cfg.downloads
    )
