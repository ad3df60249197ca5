"""PSNR and SSIM of restored uint8 images against the clean ones, averaged over images.

PSNR is computed per image over all channels with data range 255 and capped at ``PSNR_CAP_DB``:
identical images would give +inf, which plain JSON cannot hold. (Two 256x256 RGB uint8 images
that differ by one level in one value already score ~101 dB, so the cap hides no real difference.)
SSIM is scikit-image's ``structural_similarity`` with the Wang et al. (2004) settings: 11x11
Gaussian window (sigma 1.5), population covariances, K1 = 0.01, K2 = 0.03, channels averaged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from i2sb.metrics.context import MetricContext

PSNR_CAP_DB = 100.0


def _check_pair(images: np.ndarray, reference: np.ndarray, what: str) -> None:
    if images.shape != reference.shape or images.ndim != 4 or len(images) == 0:
        raise ValueError(
            f"{what}: images {images.shape} and clean images {reference.shape} must be equal, "
            "non-empty (N, C, H, W)"
        )
    if images.dtype != np.uint8 or reference.dtype != np.uint8:
        raise ValueError(f"{what}: expected uint8 images, got {images.dtype} and {reference.dtype}")


def psnr_per_image(images: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """uint8 (N, C, H, W) pairs -> PSNR in dB (N,), capped at PSNR_CAP_DB."""
    _check_pair(images, reference, "PSNR")
    diff = images.astype(np.float64) - reference.astype(np.float64)
    mse = np.mean(diff**2, axis=(1, 2, 3))
    with np.errstate(divide="ignore"):
        psnr = 10.0 * np.log10(255.0**2 / mse)
    return np.minimum(psnr, PSNR_CAP_DB)


def ssim_per_image(images: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """uint8 (N, C, H, W) pairs -> SSIM (N,), Gaussian-window SSIM averaged over channels."""
    from skimage.metrics import structural_similarity

    _check_pair(images, reference, "SSIM")
    if min(images.shape[2:]) < 11:
        raise ValueError(f"SSIM needs images of at least 11x11 pixels, got {images.shape[2:]}")
    return np.array(
        [
            structural_similarity(
                image,
                clean,
                data_range=255,
                channel_axis=0,
                gaussian_weights=True,
                sigma=1.5,
                use_sample_covariance=False,
            )  # fmt: skip
            for image, clean in zip(images, reference, strict=True)
        ]
    )


def mean_psnr(images: np.ndarray, ctx: MetricContext) -> float:
    return float(np.mean(ctx.per_image(psnr_per_image, images)))


def mean_ssim(images: np.ndarray, ctx: MetricContext) -> float:
    return float(np.mean(ctx.per_image(ssim_per_image, images)))
