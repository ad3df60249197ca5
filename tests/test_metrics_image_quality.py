"""PSNR and SSIM of uint8 images against the clean ones."""

import numpy as np
import pytest

from i2sb.metrics.image_quality import PSNR_CAP_DB, psnr_per_image, ssim_per_image


@pytest.fixture
def clean():
    return np.random.default_rng(0).integers(20, 236, (3, 3, 32, 32), dtype=np.uint8)


def test_psnr_of_identical_images_is_the_documented_cap(clean):
    np.testing.assert_array_equal(psnr_per_image(clean, clean), [PSNR_CAP_DB] * 3)


def test_psnr_of_a_known_noise_level_matches_the_closed_form(clean):
    signs = np.random.default_rng(1).choice([-1, 1], size=clean.shape)
    for sigma in (1, 5, 20):
        noisy = (clean.astype(int) + sigma * signs).astype(
            np.uint8
        )  # no clipping: 20 <= clean < 236
        expected = 10 * np.log10(255.0**2 / sigma**2)
        np.testing.assert_allclose(psnr_per_image(noisy, clean), expected, rtol=1e-12)


def test_ssim_of_an_image_with_itself_is_one_and_drops_with_noise(clean):
    np.testing.assert_allclose(ssim_per_image(clean, clean), 1.0, rtol=1e-12)
    noisy = np.clip(clean + np.random.default_rng(2).normal(0, 25, clean.shape), 0, 255)
    assert np.all(ssim_per_image(noisy.astype(np.uint8), clean) < 0.95)


def test_shape_and_dtype_mismatches_are_errors(clean):
    with pytest.raises(ValueError, match="must be equal"):
        psnr_per_image(clean[:2], clean)
    with pytest.raises(ValueError, match="uint8"):
        ssim_per_image(clean.astype(np.float32), clean)
    with pytest.raises(ValueError, match="11x11"):
        ssim_per_image(clean[:, :, :8, :8], clean[:, :, :8, :8])
