"""Measurement consistency: how well a restoration explains what was measured (issue 24 §2).

PSNR of A(x̂) against y = A(x0), A the task's degradation built by i2sb/corruption: the 4x
decimation of super-resolution, the blur, the known pixels of inpainting (only those are
compared; the hole is not measured), and for jpeg-<q> the JPEG round trip at quality q (not
differentiable, so the cddb sampler cannot use it, but consistency only needs A's values: a
consistent restoration re-compresses to the JPEG the user holds). Images go to [-1, 1], so the
peak-to-peak range is 2, and the PSNR is capped like the image PSNR (``PSNR_CAP_DB``).

It is not a quality metric by itself: the degraded input of sr4x-pool, inpainting or JPEG is
consistent by construction (up to uint8 rounding), and a blurry restoration can be consistent. It says whether a sampler honours the
measurement, which is what the data-consistent sampler (cddb) is for.

Each image is measured alone in float64 on the CPU, so the value does not depend on the batch.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from i2sb.metrics.context import MetricContext, MetricUnavailable
from i2sb.metrics.image_quality import PSNR_CAP_DB
from i2sb.tasks import PAIRED_TASK, task_spec

PEAK_TO_PEAK = 2.0  # images in [-1, 1]


def _operator(ctx: MetricContext):
    """The task's corruption, built as sampling built it (same free-form masks), on the CPU."""
    from i2sb.corruption import build_corruption

    if ctx.task == PAIRED_TASK:
        raise MetricUnavailable(
            "paired data: the degradation of a paired data set is unknown, so there is no A"
        )
    # The options sampling built its corruption with (meta "corruption_options": the run's own
    # mask settings, which may not be the config's); samples that predate them: the config's.
    options = ctx.meta.get("corruption_options")
    options = options if isinstance(options, dict) else ctx.mask_options
    operator = build_corruption(ctx.task, int(ctx.clean.shape[-1]), "cpu", **options)
    sampled_with = ctx.meta.get("mask_source")
    if sampled_with is not None and sampled_with != operator.mask_source:
        raise MetricUnavailable(
            f"the samples were masked with {sampled_with!r} but the evaluation's masks are "
            f"{operator.mask_source!r} (data.mask_source / data.mask_seed / "
            "downloads.freeform_masks differ from sampling's)"
        )
    return operator


def _signed(image: np.ndarray) -> torch.Tensor:
    """uint8 (3, H, W) -> float64 (1, 3, H, W) in [-1, 1]."""
    return torch.from_numpy(image[None].astype(np.float64)) / 127.5 - 1.0


def _measure(operator, forward: bool, x: torch.Tensor, index: torch.Tensor, mask):
    """A(x) as the flat vector of what is measured (the known pixels only for inpainting)."""
    if forward:
        measured = operator.forward(x, mask)
    else:
        measured = operator(x, index)[0]  # jpeg: the encode-decode round trip
    if mask is None:
        return measured.flatten()
    known = (1 - mask).expand_as(measured) > 0
    return measured[known]


def consistency_per_image(images: np.ndarray, ctx: MetricContext) -> np.ndarray:
    """uint8 (N, 3, H, W) restorations (or degraded inputs) -> PSNR (N,) of A(x) against A(clean)."""
    if images.shape != ctx.clean.shape or images.ndim != 4 or len(images) == 0:
        raise ValueError(
            f"consistency: images {images.shape} and clean images {ctx.clean.shape} must be "
            "equal, non-empty (N, 3, H, W)"
        )
    operator = _operator(ctx)
    forward = task_spec(ctx.task).has_forward_operator
    scores = []
    for image, clean, position in zip(images, ctx.clean, ctx.indices, strict=True):
        index = torch.tensor([int(position)])
        clean_x = _signed(clean)
        mask = operator(clean_x, index)[1]  # the mask sampling used for this image (or None)
        y = _measure(operator, forward, clean_x, index, mask)
        restored = _measure(operator, forward, _signed(image), index, mask)
        mse = float(torch.mean((restored - y) ** 2))
        psnr = PSNR_CAP_DB if mse == 0 else 10 * math.log10(PEAK_TO_PEAK**2 / mse)
        scores.append(min(psnr, PSNR_CAP_DB))
    return np.array(scores)


def mean_consistency(images: np.ndarray, ctx: MetricContext) -> float:
    """Mean consistency (dB) of ``images``; unavailable, with the reason, for paired data."""
    return float(np.mean(consistency_per_image(images, ctx)))
