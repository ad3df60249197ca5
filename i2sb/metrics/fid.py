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

from i2sb.downloads import fetch
from i2sb.metrics.context import MetricContext, MetricUnavailable
from i2sb.metrics.weights import load_hub_weights
from i2sb.tasks import FID_REF_TRAIN, task_spec

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


UNAVAILABLE_KEY = "unavailable_reason"


def write_unavailable_stats(path: str | Path, reason: str) -> None:
    """A statistics file that says why there are none (offline, no Inception weights): loading it
    raises ReferenceUnavailable with ``reason``, so FID is reported unavailable, never invented."""
    from i2sb.atomic import atomic_path

    with atomic_path(Path(path)) as tmp:
        np.savez(tmp, **{UNAVAILABLE_KEY: np.str_(reason)})


def load_reference_stats(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """mu, sigma from an npz (ADM's VIRTUAL_imagenet256_labeled.npz or our cache); images not loaded."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"FID reference statistics {path}: no such file")
    with np.load(path, allow_pickle=False) as stats:
        if UNAVAILABLE_KEY in stats.files:  # written by write_unavailable_stats
            raise ReferenceUnavailable(str(stats[UNAVAILABLE_KEY]))
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
    broken = int(np.count_nonzero(~np.isfinite(mu)) + np.count_nonzero(~np.isfinite(sigma)))
    if broken:  # else FID is NaN, written to metrics.json and the tables as if measured
        raise ValueError(
            f"FID reference statistics {path}: {broken} values of mu/sigma are NaN or inf; "
            "recompute the statistics or place an intact file"
        )
    return mu, sigma


class ReferenceUnavailable(MetricUnavailable):
    """No FID reference statistics were given or can be fetched for the task."""


# What an FID in metrics.json was measured against (``fid_reference_kind``): only the first two
# are the paper's references (spec section 7); the others are never comparable with its table.
FID_REFERENCE_KINDS = ("adm_train_batch", "val_stats", "clean_images", "file")


def _reference(ctx: MetricContext, model: FeatureModel) -> tuple[np.ndarray, np.ndarray, str, str]:
    """mu, sigma, a description and the kind (FID_REFERENCE_KINDS) of the FID reference (spec §7)."""
    train_reference = task_spec(ctx.task).fid_reference == FID_REF_TRAIN
    given = ctx.fid_reference or ("" if train_reference else ctx.settings.fid_val_stats)
    if given:
        # A file given for a validation-set task is its validation statistics (i2sb fid-reference).
        kind = "file" if train_reference else "val_stats"
        return *load_reference_stats(given), f"file {given}", kind
    if train_reference:
        adm = fetch("fid_reference", ctx.downloads.fid_reference, ctx.downloads.cache_dir)
        return (
            *load_reference_stats(adm),
            f"ADM training-set batch (mu/sigma) {adm}",
            "adm_train_batch",
        )
    if ctx.settings.fid_reference_from_clean:
        feats = image_features(ctx.clean, model, ctx.device, ctx.batch_size)
        return (
            *stats_of(feats),
            f"clean images of {ctx.samples_path} ({len(ctx.clean)} images; not the full "
            "validation set, so not comparable with the paper)",
            "clean_images",
        )
    raise ReferenceUnavailable(
        f"task {ctx.task} compares with validation-set statistics: make them once with `i2sb "
        "fid-reference VAL_FOLDER --out STATS.npz` and pass --fid-reference STATS.npz "
        "(config evaluate.fid_val_stats), or --fid-reference-from-clean for a rough reference"
    )


def measure_fid(images: np.ndarray, ctx: MetricContext) -> float:
    """FID of ``images`` against the task's reference, which it records in ``ctx.facts``
    (``fid_reference``: a description, ``fid_reference_kind``: one of FID_REFERENCE_KINDS)."""
    model = ctx.model("inception", lambda device: load_inception(device))
    mu_ref, sigma_ref, described, kind = _reference(ctx, model)
    feats = image_features(images, model, ctx.device, ctx.batch_size)
    ctx.facts |= {"fid_reference": described, "fid_reference_kind": kind}
    return frechet_distance(*stats_of(feats), mu_ref, sigma_ref)
