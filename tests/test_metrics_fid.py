"""FID through clean-fid's legacy_pytorch pipeline, with a small fixed feature network in place of Inception."""

import numpy as np
import pytest
import torch
from PIL import Image

from i2sb.metrics import fid
from i2sb.metrics.fid_reference import reference_stats_from_images


def tiny_extractor(seed: int = 0):
    """A fixed random conv net: float (B, 3, 299, 299) in [0, 255] -> (B, 64), like clean-fid's models."""
    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 9, stride=8), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(2),
        torch.nn.Flatten(),
    ).eval()  # fmt: skip
    seen = []

    def model(x: torch.Tensor) -> torch.Tensor:
        seen.append(tuple(x.shape))
        return net(x / 255.0)

    model.seen = seen
    return model


@pytest.fixture
def images():
    return np.random.default_rng(0).integers(0, 256, (16, 3, 32, 32), dtype=np.uint8)


def fid_between(a, b, model):
    stats_a = fid.stats_of(fid.image_features(a, model, "cpu", batch_size=8))
    stats_b = fid.stats_of(fid.image_features(b, model, "cpu", batch_size=8))
    return fid.frechet_distance(*stats_a, *stats_b)


def test_fid_of_a_set_against_itself_is_zero_and_grows_when_shifted(images):
    model = tiny_extractor()
    darker = (images // 2).astype(np.uint8)
    same = fid_between(images, images, model)
    shifted = fid_between(darker, images, model)
    assert abs(same) < 1e-6
    assert shifted > 0.05 and shifted > 1000 * abs(same)


def test_features_come_from_299_pixel_batches_in_0_255(images):
    model = tiny_extractor()
    feats = fid.image_features(images, model, "cpu", batch_size=8)
    assert feats.shape == (16, 64)
    assert model.seen == [(8, 3, 299, 299), (8, 3, 299, 299)]


def test_reference_statistics_with_other_dimensions_are_refused(images):
    mu, sigma = fid.stats_of(fid.image_features(images, tiny_extractor(), "cpu"))
    with pytest.raises(ValueError, match="another feature extractor"):
        fid.frechet_distance(mu, sigma, np.zeros(2048), np.eye(2048))


def test_non_uint8_images_are_refused():
    with pytest.raises(ValueError, match="uint8"):
        fid.image_features(np.zeros((2, 3, 8, 8), np.float32), tiny_extractor(), "cpu")


def test_reference_file_without_mu_sigma_names_the_file(tmp_path):
    path = tmp_path / "ref.npz"
    np.savez(path, arr_0=np.zeros((2, 8, 8, 3), np.uint8))
    with pytest.raises(KeyError, match="ref.npz.*mu"):
        fid.load_reference_stats(path)


def test_reference_statistics_holding_nan_or_inf_are_refused_naming_the_file(tmp_path, images):
    """A NaN in a placed reference made FID NaN, written to metrics.json as a measured value."""
    mu, sigma = fid.stats_of(fid.image_features(images, tiny_extractor(), "cpu"))
    broken_mu, broken_sigma = mu.copy(), sigma.copy()
    broken_mu[0], broken_sigma[1, 2] = np.nan, np.inf
    assert np.isnan(fid.frechet_distance(mu, sigma, broken_mu, sigma))
    path = tmp_path / "ref.npz"
    np.savez(path, mu=broken_mu, sigma=broken_sigma)
    with pytest.raises(ValueError, match=r"ref\.npz: 2 values of mu/sigma are NaN or inf"):
        fid.load_reference_stats(path)


def test_reference_stats_of_arrays_are_cached_atomically_and_reused(tmp_path, images):
    model, cache = tiny_extractor(), tmp_path / "stats" / "val.npz"
    mu, sigma = reference_stats_from_images(images, cache, model, "cpu", batch_size=8)
    expected = fid.stats_of(fid.image_features(images, model, "cpu"))
    np.testing.assert_allclose(mu, expected[0], rtol=1e-6)
    np.testing.assert_allclose(sigma, expected[1], rtol=1e-6, atol=1e-12)
    with np.load(cache) as saved:
        assert int(saved["num_images"]) == 16 and str(saved["mode"]) == "legacy_pytorch"
    assert [p.name for p in cache.parent.iterdir()] == ["val.npz"]
    again = reference_stats_from_images(images[:4] // 3, cache, model, "cpu")
    np.testing.assert_array_equal(again[0], mu)


def test_reference_stats_of_a_folder_center_crop_each_image(tmp_path, images):
    folder = tmp_path / "val" / "class_a"
    folder.mkdir(parents=True)
    for i, image in enumerate(images[:6]):
        wide = np.pad(image, ((0, 0), (0, 0), (4, 4)), constant_values=255)  # 32 x 40
        Image.fromarray(wide.transpose(1, 2, 0)).save(folder / f"{i}.png")
    model = tiny_extractor()
    mu, sigma = reference_stats_from_images(tmp_path / "val", tmp_path / "s.npz", model, "cpu", 32)
    assert model.seen == [(6, 3, 299, 299)]
    expected = fid.stats_of(fid.image_features(images[:6], model, "cpu"))
    np.testing.assert_allclose(mu, expected[0], rtol=1e-6)


def test_an_empty_reference_folder_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no images"):
        reference_stats_from_images(tmp_path, tmp_path / "s.npz", tiny_extractor(), "cpu")


def test_batched_resize_equals_cleanfids_legacy_pytorch_resizer(images):
    from cleanfid.resize import build_resizer

    resize = build_resizer("legacy_pytorch")
    expected = np.stack([resize(image.transpose(1, 2, 0)) for image in images[:4]])
    resized = fid.resize_for_inception(images[:4]).numpy().transpose(0, 2, 3, 1)
    np.testing.assert_allclose(resized, expected, rtol=0, atol=1e-4)


def test_feature_extraction_shows_progress_and_no_library_deprecations(images, caplog, recwarn):
    caplog.set_level("INFO", logger="i2sb")
    feats = fid.image_features(images[:5], tiny_extractor(), "cpu", batch_size=2)
    assert "FID features (5 images): 3/3 batch (100%)" in caplog.text
    fid.frechet_distance(*fid.stats_of(feats), *fid.stats_of(feats))
    assert not [w for w in recwarn if issubclass(w.category, DeprecationWarning)]
