"""LPIPS: computed with a pre-placed AlexNet (random weights here), never downloaded, else unavailable."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from test_metrics_evaluate import make_samples, offline, without  # noqa: F401 (fixture)
from torchvision.models import alexnet

from i2sb.config import EvaluateConfig
from i2sb.metrics.evaluate import evaluate_samples
from i2sb.metrics.perceptual import ALEXNET_FILE, load_lpips, lpips_per_image
from i2sb.metrics.weights import WeightsUnavailable


@pytest.fixture
def hub_dir(request, tmp_path):
    """The empty torch.hub checkpoint folder of the offline fixture (TORCH_HOME under tmp_path)."""
    request.getfixturevalue("offline")
    return tmp_path / "torch_home" / "hub" / "checkpoints"


@pytest.fixture
def placed(hub_dir):
    """A random-weight AlexNet under torchvision's file name; the classifier layers, which LPIPS
    does not use, are left out to keep the file small."""
    torch.manual_seed(0)
    features = {k: v for k, v in alexnet(weights=None).state_dict().items() if "features" in k}
    hub_dir.mkdir(parents=True)
    torch.save(features, hub_dir / ALEXNET_FILE)
    return features


def test_the_pre_placed_backbone_and_the_wheel_heads_are_loaded(placed):
    import lpips

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no deprecation noise from building the network
        model = load_lpips("cpu")
    loaded = dict(model.net.named_parameters())
    assert torch.equal(loaded["slice1.0.weight"], placed["features.0.weight"])
    assert torch.equal(loaded["slice5.10.bias"], placed["features.10.bias"])
    heads = torch.load(
        f"{lpips.__path__[0]}/weights/v0.1/alex.pth", map_location="cpu", weights_only=True
    )
    assert torch.equal(model.lins[4].model[1].weight, heads["lin4.model.1.weight"])


def test_lpips_is_zero_for_identical_images_and_grows_with_the_difference(placed):
    model = load_lpips("cpu")
    rng = np.random.default_rng(0)
    clean = rng.integers(0, 256, (3, 3, 32, 32), dtype=np.uint8)
    slightly = np.clip(clean.astype(int) + rng.integers(-8, 9, clean.shape), 0, 255).astype(
        np.uint8
    )
    far = rng.integers(0, 256, clean.shape, dtype=np.uint8)
    assert np.all(lpips_per_image(clean, clean, model) == 0)
    near_d, far_d = lpips_per_image(slightly, clean, model), lpips_per_image(far, clean, model)
    assert np.all(near_d > 0) and np.all(far_d > near_d)
    # batching does not change the numbers
    np.testing.assert_allclose(lpips_per_image(far, clean, model, batch_size=2), far_d, rtol=1e-5)


def test_evaluate_reports_lpips_of_recon_and_of_the_degraded_input(placed, tmp_path):
    path, part = make_samples(tmp_path / "samples.npz")
    opts = EvaluateConfig(metrics=without("fid", "ca"))
    metrics = evaluate_samples(path, "jpeg-10", tmp_path / "m.json", opts)["metrics"]
    expected = lpips_per_image(part.recon, part.clean, load_lpips("cpu")).mean()
    assert metrics["lpips"] == {"value": pytest.approx(expected), "reason": None}
    assert metrics["lpips"]["value"] < metrics["lpips_degraded"]["value"]


def test_without_the_file_lpips_is_unavailable_with_the_reason(hub_dir, tmp_path):
    with pytest.raises(WeightsUnavailable, match=ALEXNET_FILE):
        load_lpips("cpu")
    path, _ = make_samples(tmp_path / "samples.npz")
    opts = EvaluateConfig(metrics=without("fid", "ca"))
    metrics = evaluate_samples(path, "jpeg-10", tmp_path / "m.json", opts)["metrics"]
    for name in ("lpips", "lpips_degraded"):
        assert metrics[name]["value"] is None
        assert ALEXNET_FILE in metrics[name]["reason"] and str(hub_dir) in metrics[name]["reason"]
    assert not hub_dir.exists()  # nothing was downloaded into the cache
    required = EvaluateConfig(metrics=without("fid", "ca"), require_external_metrics=True)
    with pytest.raises(RuntimeError, match="'lpips' cannot be computed"):
        evaluate_samples(path, "jpeg-10", tmp_path / "r.json", required)


def test_a_foreign_file_is_an_error_naming_it(hub_dir):
    hub_dir.mkdir(parents=True)
    (hub_dir / ALEXNET_FILE).write_bytes(b"not a state dict")
    with pytest.raises(ValueError, match=ALEXNET_FILE):
        load_lpips("cpu")
    torch.save({"features.0.weight": torch.zeros(1)}, hub_dir / ALEXNET_FILE)
    with pytest.raises(ValueError, match="missing"):
        load_lpips("cpu")


def test_lpips_can_be_switched_off(hub_dir, tmp_path):
    path, _ = make_samples(tmp_path / "samples.npz")
    opts = EvaluateConfig(metrics=without("fid", "ca", "lpips"))
    metrics = evaluate_samples(path, "jpeg-10", tmp_path / "m.json", opts)["metrics"]
    assert metrics["lpips"]["reason"] == "not measured: not in evaluate.metrics"
