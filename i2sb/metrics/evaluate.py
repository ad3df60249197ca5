"""Evaluate a gathered ``samples.npz`` and write ``metrics.json`` (docs/CONTRACTS.md).

Which metrics exist, and the function measuring each, is the metric table (i2sb/metric_table.py);
``evaluate.metrics`` says which of them to measure. A metric that cannot be measured (weights or
a reference missing, not applicable to the task) is written with ``"value": null`` and the
reason; ``require_external_metrics`` turns that into an error for the weight-needing ones. A
number is never invented.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from i2sb.atomic import write_json
from i2sb.config import DownloadConfig, EvaluateConfig
from i2sb.distributed import resolve_device
from i2sb.downloads import DownloadError, PlacedFileMissing
from i2sb.metric_table import METRICS, MetricSpec, degraded_name, result_names
from i2sb.metrics.context import MetricContext, MetricUnavailable
from i2sb.metrics.fid import FID_REFERENCE_KINDS, ReferenceUnavailable
from i2sb.metrics.weights import WeightsUnavailable
from i2sb.sample.parts import check_shapes, identity_mismatch, recorded_dataset
from i2sb.sample.samplefile import SampleFile, open_samples
from i2sb.tasks import task_spec

__all__ = ["FID_REFERENCE_KINDS", "ReferenceUnavailable", "evaluate_samples"]

LOG = logging.getLogger(__name__)
UNAVAILABLE = (WeightsUnavailable, DownloadError, MetricUnavailable)
_DEFAULTS, _NO_PLACED_FILES = EvaluateConfig(), DownloadConfig()
NO_DEGRADED = "the samples file holds no degraded images"


def measured(value: float) -> dict[str, Any]:
    return {"value": float(value), "reason": None}


def unavailable(reason: str) -> dict[str, Any]:
    return {"value": None, "reason": reason}


def implementation(spec: MetricSpec) -> Callable[[np.ndarray, MetricContext], float]:
    """The function a metric-table row names ("module:function")."""
    module, function = spec.implementation.split(":")
    return getattr(importlib.import_module(module), function)


def _measure_one(
    spec: MetricSpec, ctx: MetricContext, recon: np.ndarray, degraded: np.ndarray | None
) -> dict[str, dict[str, Any]]:
    """{name: entry} of ``spec`` (and of its degraded twin); a metric that cannot be measured is
    unavailable with the reason, or an error when its weights are required."""
    names = (spec.name, degraded_name(spec.name)) if spec.degraded_twin else (spec.name,)
    if spec.name not in ctx.settings.metrics:
        return dict.fromkeys(names, unavailable("not measured: not in evaluate.metrics"))
    measure = implementation(spec)
    try:
        entries = {spec.name: measured(measure(recon, ctx))}
        if spec.degraded_twin:
            twin = (
                unavailable(NO_DEGRADED) if degraded is None else measured(measure(degraded, ctx))
            )
            entries[names[1]] = twin
        return entries
    except PlacedFileMissing:
        raise  # a configured path that is wrong is an error, not an unavailable metric
    except UNAVAILABLE as err:
        if spec.needs_weights and ctx.settings.require_external_metrics:
            raise RuntimeError(
                f"metric {spec.name!r} cannot be computed and external metrics are required "
                f"(evaluate.require_external_metrics / --require-external-metrics): {err}"
            ) from None
        LOG.warning("metric %r unavailable: %s", spec.name, err)  # said once, in the job's log
        return dict.fromkeys(names, unavailable(str(err)))


def measure_all(
    ctx: MetricContext, recon: np.ndarray, degraded: np.ndarray | None
) -> dict[str, dict[str, Any]]:
    """Every metric of the table, in its order, then the degraded twins (metrics.json's order)."""
    entries: dict[str, dict[str, Any]] = {}
    for spec in METRICS:
        entries |= _measure_one(spec, ctx, recon, degraded)
    return {name: entries[name] for name in result_names()}


def evaluate_samples(
    samples_path: str | Path,
    task: str,
    out: str | Path,
    settings: EvaluateConfig = _DEFAULTS,
    feature_model: Any = None,
    classifier: Any = None,
    lpips_model: Any = None,
    *,
    downloads: DownloadConfig = _NO_PLACED_FILES,
    device: str = "auto",
    fid_reference: str = "",
    mask_options: dict[str, Any] | None = None,
    expected: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Compute every metric of ``samples_path`` and write ``out`` (metrics.json) atomically.

    ``settings`` is the config's ``evaluate`` section and ``downloads`` its ``downloads`` section
    (pre-placed ADM reference batch, cache). ``fid_reference`` names a reference npz for any
    task; otherwise SR tasks use ADM's batch and the others ``settings.fid_val_stats``.
    What the images are (metrics.json "dataset") is the samples' own record (meta "dataset",
    written by sampling): the data is not opened again, and a file without it is refused. ``mask_options``
    (``Config.mask_options()``) rebuild the free-form masks sampling used, for consistency.
    The models (FID's Inception, CA's ResNet-50, LPIPS) default to the pretrained ones.
    ``expected`` (meta key -> value, ``evalset.expected_identity``) is what the file must record;
    a difference is refused, naming the key, before any metric. The images are streamed
    (``samplefile.ImageStream``): the metrics read them a batch at a time.
    """
    path = Path(samples_path)
    with open_samples(path) as samples:  # images are read in chunks, never whole
        _check_samples(samples, path, task, expected or {})
        dataset = recorded_dataset(samples.meta, path)
        ctx = MetricContext(
            task, samples.clean, samples.labels, samples.indices, samples.meta, path,
            settings, downloads, resolve_device(device), fid_reference, dict(mask_options or {}),
            {"inception": feature_model, "resnet50": classifier, "alexnet": lpips_model},
        )  # fmt: skip
        with torch.inference_mode():
            metrics = measure_all(ctx, samples.recon, samples.degraded)
    result = {
        "task": task,
        "sampler": samples.meta.get("sampler"),  # {"name", "label", "options"} (i2sb.samplers)
        "nfe": samples.meta.get("nfe"),
        "num_images": len(samples),
        "image_size": int(samples.recon.shape[-1]),
        "dataset": dataset,
        "samples": str(path),
        "metrics": metrics,
        "fid_reference": ctx.facts.get("fid_reference"),
        "fid_reference_kind": ctx.facts.get("fid_reference_kind"),
        "sampling": {k: samples.meta.get(k) for k in ("images_per_s", "seconds_per_nfe")},
    }
    write_json(out, result)
    return result


def _check_samples(samples: SampleFile, path: Path, task: str, expected: dict[str, Any]) -> None:
    """A gathered file, for ``task``, recording what the caller ``expected`` (meta keys)."""
    check_shapes(samples, str(path))
    if len(samples) == 0:
        raise ValueError(f"{path} holds no images")
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
    mismatch = identity_mismatch(samples.meta, expected)
    if mismatch:
        raise ValueError(f"{path} was not made with what is evaluated: {mismatch}")


def evaluate_for_config(
    cfg: Any,
    samples_path: str | Path,
    task: str,
    out: str | Path,
    fid_val_stats: str = "",
    *,
    sampler: str | None = None,
    nfe: int | None = None,
    data_dir: str | Path | None = None,
) -> dict[str, Any]:
    """The workflow's entry: evaluate with every setting taken from an i2sb Config.

    ``fid_val_stats`` (the workflow's cached validation statistics) replaces
    ``evaluate.fid_val_stats`` for the tasks whose FID reference is the validation set. The
    samples must record the config's sample settings (and ``sampler``, a label of
    ``cfg.samplers``, and ``nfe`` when given) and, when ``data_dir`` is given, still match the
    evaluation images read again from that data folder: ``evalset.expected_identity``. The
    workflow passes no ``data_dir``: what the data is comes from the samples' meta, and a change
    to the data reruns sampling.
    """
    from i2sb.sample.evalset import expected_for_samples

    settings = cfg.evaluate
    if fid_val_stats:
        settings = dataclasses.replace(settings, fid_val_stats=fid_val_stats)
    expected = expected_for_samples(cfg, task, samples_path, sampler, nfe, data_dir)
    return evaluate_samples(
        samples_path, task, out, settings, downloads=cfg.downloads,
        mask_options=cfg.mask_options(), expected=expected,
    )  # fmt: skip
