"""Each operator reproduces the reference implementation's outputs (spec §9 test vectors).

tests/data/ref_corruptions_64.npz: x0 (2, 3, 64, 64) and the NVlabs/I2SB operators' x1 for each
task, computed on CPU with torch 2.14.1 at image size 64.
"""

from pathlib import Path

import numpy as np
import pytest
import torch

from i2sb.corruption import build_corruption

VECTORS = Path(__file__).parent / "data" / "ref_corruptions_64.npz"
REFERENCE_TASKS = (
    "jpeg-5",
    "jpeg-10",
    "sr4x-pool",
    "sr4x-bicubic",
    "blur-uni",
    "blur-gauss",
    "inpaint-center",
)


@pytest.fixture(scope="module")
def vectors():
    with np.load(VECTORS) as npz:
        return {key: torch.from_numpy(npz[key]) for key in npz.files}


@pytest.mark.parametrize("task", REFERENCE_TASKS)
def test_operator_matches_the_reference_outputs(task, vectors):
    x1, _ = build_corruption(task, 64)(vectors["x0"])
    assert (x1 - vectors[task]).abs().max().item() < 1e-4


def test_center_mask_matches_the_reference(vectors):
    _, mask = build_corruption("inpaint-center", 64)(vectors["x0"])
    expected = vectors["inpaint-center-mask"].expand(2, -1, -1, -1)
    assert torch.equal(mask, expected)


def test_blur_without_the_singular_value_quirk_would_not_match(vectors):
    """The test vectors do pin the (3p + c) scaling: the textbook operator misses them badly."""
    import i2sb.corruption.blur as blur

    operator = build_corruption("blur-uni", 64)
    u, singular, v = blur.thresholded_svd(blur.band_matrix(64, blur.uniform_taps()))
    unit = (vectors["x0"] + 1) / 2
    textbook = u @ (torch.outer(singular, singular) * (v.T @ unit @ v)) @ u.T * 2 - 1
    assert (textbook - vectors["blur-uni"]).abs().max().item() > 0.1
    assert (operator(vectors["x0"])[0] - vectors["blur-uni"]).abs().max().item() < 1e-4
