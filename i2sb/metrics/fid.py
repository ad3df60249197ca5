"""FID with clean-fid in ``legacy_pytorch`` mode (spec §7), on uint8 image arrays.

We drive clean-fid's own pieces (its Inception port, its Fréchet distance) and its legacy_pytorch
resize (bilinear to 299x299 on float pixels, batched here) on in-memory arrays, as the reference
does, instead of writing images to a folder. A feature model is any callable mapping float (B, 3, 299, 299) in
[0, 255] to (B, D) features: clean-fid's Inception in production, a small network in tests.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from i2sb.metrics.weights import load_hub_weights

MODE = "legacy_pytorch"
INCEPTION_FILE = "pt_inception-2015-12-05-6726825d.pth"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")

FeatureModel = Callable[[torch.Tensor], torch.Tensor]


def load_inception(device: torch.device | str) -> FeatureModel:
    """clean-fid's legacy_pytorch Inception; raises WeightsUnavailable when offline without weights."""
    from cleanfid.features import build_feature_extractor
    from cleanfid.inception_pytorch import FID_WEIGHTS_URL

    return load_hub_weights(
        "Inception (FID)",
        INCEPTION_FILE,
        FID_WEIGHTS_URL,
        lambda: build_feature_extractor(MODE, torch.device(device), use_dataparallel=False),
    )


def resize_for_inception(images: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 (B, 3, H, W) -> float (B, 3, 299, 299) in [0, 255] on ``device``.

    The same operation as clean-fid's legacy_pytorch resizer (bilinear, align_corners=False, on
    float pixels, clipped to [0, 255]; a test checks equality), run on the whole batch on the
    feature model's device instead of image by image on the CPU (about as fast on CPU).
    """
    pixels = torch.from_numpy(np.ascontiguousarray(images)).to(device).float()
    resized = F.interpolate(pixels, size=(299, 299), mode="bilinear", align_corners=False)
    return resized.clamp(0, 255)


def check_images(images: np.ndarray, what: str) -> None:
    """Raise unless ``images`` is uint8 (N, 3, H, W) with N >= 1."""
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1] != 3 or len(images) == 0:
        raise ValueError(
            f"{what}: expected uint8 images (N, 3, H, W) with N >= 1, "
            f"got {images.dtype} {tuple(images.shape)}"
        )


def batch_features(
    batches: Iterable[np.ndarray],
    model: FeatureModel,
    device: torch.device | str,
    total: int | None = None,
    desc: str = "FID features",
) -> np.ndarray:
    """Features (N, D) of uint8 (B, 3, H, W) batches; progress shown when ``total`` batches is given."""
    from cleanfid.fid import get_batch_features

    from i2sb.joblog import progress

    device = torch.device(device)
    if total is not None:
        batches = progress(batches, desc, total=total, unit="batch")
    feats = [get_batch_features(resize_for_inception(b, device), model, device) for b in batches]
    return np.concatenate(feats).astype(np.float64)


def chunks(images: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    """Consecutive slices of at most ``batch_size`` images."""
    for start in range(0, len(images), batch_size):
        yield images[start : start + batch_size]


def image_features(
    images: np.ndarray, model: FeatureModel, device: torch.device | str, batch_size: int = 32
) -> np.ndarray:
    """images: uint8 (N, 3, H, W) -> features (N, D)."""
    check_images(images, "FID images")
    total = -(-len(images) // batch_size)
    return batch_features(
        chunks(images, batch_size), model, device, total, f"FID features ({len(images)} images)"
    )


def stats_of(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and covariance (D, D) of features (N, D), as clean-fid computes them."""
    if len(features) < 2:
        raise ValueError(f"FID statistics need at least 2 images, got {len(features)}")
    return np.mean(features, axis=0), np.cov(features, rowvar=False)


def frechet_distance(
    mu: np.ndarray, sigma: np.ndarray, ref_mu: np.ndarray, ref_sigma: np.ndarray
) -> float:
    """clean-fid's Fréchet distance; shapes must agree (a 2048-d reference needs Inception features)."""
    from cleanfid.fid import frechet_distance as cleanfid_frechet

    if mu.shape != ref_mu.shape or sigma.shape != ref_sigma.shape:
        raise ValueError(
            f"FID reference statistics have mu {ref_mu.shape}, sigma {ref_sigma.shape}, but the "
            f"features give mu {mu.shape}, sigma {sigma.shape}: was the reference made with "
            "another feature extractor?"
        )
    with warnings.catch_warnings():
        # clean-fid 0.1.35 passes scipy's deprecated `disp=` to sqrtm: not ours to fix, not the user's.
        warnings.filterwarnings(
            "ignore", message=".*`disp` argument is deprecated", category=DeprecationWarning
        )
        return float(cleanfid_frechet(mu, sigma, ref_mu, ref_sigma))


def load_reference_stats(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """mu, sigma from an npz (ADM's VIRTUAL_imagenet256_labeled.npz or our cache); images not loaded."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"FID reference statistics {path}: no such file")
    with np.load(path, allow_pickle=False) as stats:
        missing = [key for key in ("mu", "sigma") if key not in stats.files]
        if missing:
            raise KeyError(
                f"FID reference statistics {path}: missing {missing}; expected keys 'mu' (D,) and "
                f"'sigma' (D, D), found {stats.files}"
            )
        mu, sigma = stats["mu"].astype(np.float64), stats["sigma"].astype(np.float64)
    if mu.ndim != 1 or sigma.shape != (len(mu), len(mu)):
        raise ValueError(
            f"FID reference statistics {path}: mu {mu.shape} and sigma {sigma.shape} do not form (D,), (D, D)"
        )
    return mu, sigma
