"""`evaluate_samples` / `i2sb evaluate`: samples.npz in, metrics.json (docs/CONTRACTS.md) out."""

import json
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from i2sb.cli import main
from i2sb.config import DownloadConfig, EvaluateConfig
from i2sb.data.build import DEMO_DATA_NAME
from i2sb.metric_table import METRIC_NAMES, result_names
from i2sb.metrics import fid
from i2sb.metrics.classifier import IMAGENET_MEAN, IMAGENET_STD
from i2sb.metrics.evaluate import evaluate_samples
from i2sb.metrics.image_quality import psnr_per_image, ssim_per_image
from i2sb.sample.parts import Part, write_part

# metrics.json holds every row of the metric table and each degraded twin (a new row adds its own)
METRICS = set(result_names())


def without(*names):
    """evaluate.metrics: every metric of the table but ``names``."""
    return tuple(name for name in METRIC_NAMES if name not in names)


def tiny_extractor(device="cpu"):
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 9, stride=8), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(2),
        torch.nn.Flatten(),
    ).eval().to(device)  # fmt: skip
    return lambda x: net(x / 255.0)


def tiny_lpips(a, b):
    """Stands in for LPIPS(alex) (tests/test_metrics_perceptual.py has the real network): (B,1,1,1)."""
    return ((a - b) ** 2).mean(dim=(1, 2, 3), keepdim=True)


def tiny_classifier():
    """Class 1 for bright images, 0 for dark ones, from the normalised 224-pixel input's channel means."""
    threshold = sum((0.5 - m) / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD, strict=True))
    head = torch.nn.Linear(3, 2)
    head.weight.data = torch.tensor([[-1.0] * 3, [1.0] * 3])
    head.bias.data = torch.tensor([threshold, -threshold])
    return torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), head)


# what sampling records of its data (meta "dataset"); evaluation copies it into metrics.json
DATASET = {"name": "image folder /data", "kind": "imagefolder", "image_size": 32,
           "eval_subset": "full", "max_eval_images": 0}  # fmt: skip


def make_samples(path, task="jpeg-10", degraded=True, count=16, meta=None):
    """Half dark, half bright clean images (labels 0 and 1); recon close to clean, degraded farther."""
    rng = np.random.default_rng(0)
    labels = np.arange(count) % 2
    clean = (rng.integers(30, 100, (count, 3, 32, 32)) + 126 * labels[:, None, None, None]).astype(
        np.uint8
    )
    recon = (clean.astype(int) + rng.integers(-6, 7, clean.shape)).astype(np.uint8)
    noisy = (clean.astype(int) + rng.integers(-30, 31, clean.shape)).astype(np.uint8)
    meta = {"task": task, "nfe": 5, "images_per_s": 3.5, "seconds_per_nfe": 0.25, "seed": 0,
            "clip_denoise": False, "dataset": DATASET, **(meta or {})}  # fmt: skip
    part = Part(recon, clean, np.arange(count), labels, meta, noisy if degraded else None)
    return write_part(path, part), part


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No network and empty weight caches: every download fails at once."""

    def refuse(*args, **kwargs):
        raise OSError("network disabled by the test")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setenv("I2SB_CACHE", str(tmp_path / "i2sb_cache"))


def test_metrics_json_follows_the_contract(tmp_path):
    path, part = make_samples(tmp_path / "samples.npz")
    out = tmp_path / "eval" / "metrics.json"
    opts = EvaluateConfig(fid_reference_from_clean=True, batch_size=8)
    result = evaluate_samples(
        path, "jpeg-10", out, opts, tiny_extractor(), tiny_classifier(), lpips_model=tiny_lpips
    )
    assert json.loads(out.read_text()) == result
    assert [p.name for p in out.parent.iterdir()] == ["metrics.json"]
    assert result["task"] == "jpeg-10" and result["nfe"] == 5 and result["num_images"] == 16
    assert result["sampling"] == {"images_per_s": 3.5, "seconds_per_nfe": 0.25}
    assert set(result["metrics"]) == METRICS
    assert all(entry["reason"] is None for entry in result["metrics"].values())
    metrics = result["metrics"]
    assert metrics["psnr"]["value"] == pytest.approx(psnr_per_image(part.recon, part.clean).mean())
    assert metrics["ssim"]["value"] == pytest.approx(ssim_per_image(part.recon, part.clean).mean())
    assert metrics["psnr"]["value"] > metrics["psnr_degraded"]["value"]
    assert metrics["ssim"]["value"] > metrics["ssim_degraded"]["value"]
    assert metrics["lpips"]["value"] < metrics["lpips_degraded"]["value"]
    assert metrics["ca"]["value"] == 1.0  # the tiny classifier separates bright from dark
    assert 0 < metrics["fid"]["value"] < 1 and "clean images" in result["fid_reference"]
    assert result["fid_reference_kind"] == "clean_images"
    assert result["image_size"] == 32 and result["dataset"] == DATASET  # the samples' record


def test_metrics_json_says_what_the_images_are(tmp_path, monkeypatch):
    """The workflow's entry records the data set (name, kind, subset) that sampling recorded, and
    the reference kind; the data folder is not opened (here it is gone)."""
    import shutil

    from i2sb.config import config_from_dict
    from i2sb.data.build import build_eval_set, describe_eval_data
    from i2sb.metrics.evaluate import FID_REFERENCE_KINDS, evaluate_for_config
    from i2sb.sample.evalset import expected_identity

    cfg = config_from_dict({"evaluate": {"metrics": list(without("ca"))}})
    photos = tmp_path / "photos"
    for number in range(16):  # the demo's validation photos the samples were made from
        folder = photos / "val" / f"c{number % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8), (number, 0, 0)).save(folder / f"{number}.png")
    val_set, _ = build_eval_set("jpeg-10", "demo", photos, 64)
    described = describe_eval_data("jpeg-10", "demo", photos, val_set, 64)
    shutil.rmtree(photos)
    identity = {**expected_identity(cfg, "jpeg-10", 1), "parts": 1, "dataset": described}
    path, part = make_samples(tmp_path / "samples.npz", meta=identity)
    mu, sigma = fid.stats_of(fid.image_features(part.clean, tiny_extractor(), "cpu"))
    stats = tmp_path / "val_stats.npz"
    np.savez(stats, mu=mu, sigma=sigma)
    monkeypatch.setattr(fid, "load_inception", lambda device: tiny_extractor())
    result = evaluate_for_config(cfg, path, "jpeg-10", tmp_path / "m.json", str(stats))
    assert result["dataset"] == {
        "name": DEMO_DATA_NAME, "kind": "demo", "image_size": 64, "eval_subset": "full",
        "max_eval_images": 0,
    }  # fmt: skip
    assert result["fid_reference_kind"] == "val_stats" in FID_REFERENCE_KINDS


@pytest.mark.parametrize(
    ("classes", "name", "kind"),
    [(["n01440764", "n01443537"], "ImageNet", "imagenet"), (["cats", "dogs"], None, "imagefolder")],
)
def test_only_a_wordnet_image_folder_is_called_imagenet(tmp_path, classes, name, kind):
    from i2sb.data.build import build_eval_set, describe_eval_data

    for label in classes:
        (tmp_path / "val" / label).mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(tmp_path / "val" / label / "a.png")
    val_set, _ = build_eval_set("sr4x-pool", "imagefolder", tmp_path, 8)
    described = describe_eval_data("sr4x-pool", "imagefolder", tmp_path, val_set, 8)
    assert described["kind"] == kind
    assert described["name"] == (name or f"image folder {tmp_path}")


def test_metrics_json_says_what_the_samples_record_of_their_data(tmp_path):
    path, _ = make_samples(tmp_path / "samples.npz", task="sr4x-pool")
    settings = EvaluateConfig(metrics=("psnr",))
    assert evaluate_samples(path, "sr4x-pool", tmp_path / "m.json", settings)["dataset"] == DATASET


def test_samples_without_a_data_set_record_are_refused_before_any_metric(tmp_path):
    path, _ = make_samples(tmp_path / "samples.npz", task="sr4x-pool", meta={"dataset": None})
    with pytest.raises(ValueError) as caught:
        evaluate_samples(path, "sr4x-pool", tmp_path / "m.json", EvaluateConfig())
    message = str(caught.value)
    assert "records no dataset description (meta 'dataset')" in message
    assert "sample it again" in message and "\n" not in message
    assert not (tmp_path / "m.json").exists()


def test_sr_tasks_use_the_pre_placed_adm_reference(tmp_path):
    path, part = make_samples(tmp_path / "samples.npz", task="sr4x-pool")
    model = tiny_extractor()
    mu, sigma = fid.stats_of(fid.image_features(part.clean, model, "cpu"))
    ref = tmp_path / "VIRTUAL_imagenet256_labeled.npz"
    np.savez(ref, arr_0=part.clean.transpose(0, 2, 3, 1), mu=mu, sigma=sigma)
    # Validation-set statistics in the config are for the other tasks: 4x SR keeps ADM's batch.
    opts = EvaluateConfig(metrics=without("ca"), fid_val_stats=str(tmp_path / "val.npz"))
    result = evaluate_samples(
        path, "sr4x-pool", tmp_path / "m.json", opts, model,
        downloads=DownloadConfig(fid_reference=str(ref)),
    )  # fmt: skip
    assert str(ref) in result["fid_reference"] and "ADM" in result["fid_reference"]
    assert result["fid_reference_kind"] == "adm_train_batch"
    assert 0 < result["metrics"]["fid"]["value"] < 1
    assert result["metrics"]["ca"] == {
        "value": None,
        "reason": "not measured: not in evaluate.metrics",
    }


def test_offline_fid_and_ca_are_unavailable_with_a_reason(tmp_path, offline):
    path, _ = make_samples(tmp_path / "samples.npz", task="sr4x-pool")
    result = evaluate_samples(path, "sr4x-pool", tmp_path / "m.json", EvaluateConfig())
    metrics = result["metrics"]
    assert metrics["fid"]["value"] is None and "pt_inception-2015-12-05" in metrics["fid"]["reason"]
    assert metrics["ca"]["value"] is None and "resnet50-0676ba61.pth" in metrics["ca"]["reason"]
    assert "torch_home" in metrics["ca"]["reason"] and result["fid_reference"] is None
    assert metrics["psnr"]["value"] > 30 and metrics["ssim_degraded"]["value"] < 1


def test_offline_with_external_metrics_required_is_an_error(tmp_path, offline):
    path, _ = make_samples(tmp_path / "samples.npz")
    opts = EvaluateConfig(metrics=without("fid"), require_external_metrics=True)
    with pytest.raises(
        RuntimeError, match="'ca' cannot be computed.*required.*weights unavailable"
    ):
        evaluate_samples(path, "jpeg-10", tmp_path / "m.json", opts)
    assert not (tmp_path / "m.json").exists()


def test_non_sr_tasks_without_validation_statistics_say_how_to_make_them(tmp_path):
    path, _ = make_samples(tmp_path / "samples.npz")
    opts = EvaluateConfig(metrics=without("ca"))
    result = evaluate_samples(path, "jpeg-10", tmp_path / "m.json", opts, tiny_extractor())
    assert result["metrics"]["fid"]["value"] is None
    assert "i2sb fid-reference" in result["metrics"]["fid"]["reason"]
    required = EvaluateConfig(metrics=without("ca"), require_external_metrics=True)
    with pytest.raises(RuntimeError, match="'fid' cannot be computed"):
        evaluate_samples(path, "jpeg-10", tmp_path / "m.json", required, tiny_extractor())


def test_samples_without_degraded_images_report_why(tmp_path):
    path, _ = make_samples(tmp_path / "samples.npz", degraded=False)
    opts = EvaluateConfig(metrics=without("fid", "ca"))
    metrics = evaluate_samples(path, "jpeg-10", tmp_path / "m.json", opts)["metrics"]
    assert metrics["psnr_degraded"] == {
        "value": None,
        "reason": "the samples file holds no degraded images",
    }
    assert metrics["fid"]["reason"] == "not measured: not in evaluate.metrics"


def test_a_task_other_than_the_sampled_one_is_refused(tmp_path):
    path, _ = make_samples(tmp_path / "samples.npz", task="jpeg-5")
    with pytest.raises(ValueError, match="sampled for task 'jpeg-5'"):
        evaluate_samples(
            path, "jpeg-10", tmp_path / "m.json", EvaluateConfig(metrics=without("fid"))
        )


def test_a_lone_part_file_is_refused_where_a_gathered_set_is_expected(tmp_path):
    path, part = make_samples(tmp_path / "part_0_2.npz")
    part.meta.update(partition=[0, 2], total=32)
    write_part(path, part)
    with pytest.raises(ValueError, match="part 0 of 2 .* gather all 2 parts first"):
        evaluate_samples(
            path, "jpeg-10", tmp_path / "m.json", EvaluateConfig(metrics=without("fid"))
        )
    assert not (tmp_path / "m.json").exists()


def test_cli_writes_metrics_offline_and_fails_when_they_are_required(tmp_path, offline, capsys):
    path, _ = make_samples(tmp_path / "samples.npz", task="sr4x-pool")
    out = tmp_path / "metrics.json"
    assert (
        main(["evaluate", str(path), "--task", "sr4x-pool", "--out", str(out), "--device", "cpu"])
        == 0
    )
    assert json.loads(out.read_text())["metrics"]["ca"]["value"] is None
    assert "ca: n/a" in capsys.readouterr().out
    argv = ["evaluate", str(path), "--task", "sr4x-pool", "--out", str(tmp_path / "r.json"),
            "--require-external-metrics", "--metrics", "fid", "psnr"]  # fmt: skip
    assert main(argv) == 1
    assert "'fid' cannot be computed" in capsys.readouterr().err


def test_cli_reads_the_evaluate_section_of_a_config(tmp_path, capsys):
    path, _ = make_samples(tmp_path / "samples.npz")
    config = Path(__file__).resolve().parents[1] / "config" / "config.yaml"
    argv = ["evaluate", str(path), "--task", "jpeg-10", "--out", str(tmp_path / "m.json"),
            "--config", str(config), "--set", "evaluate.metrics=[psnr,ssim]"]  # fmt: skip
    assert main(argv) == 0
    metrics = json.loads((tmp_path / "m.json").read_text())["metrics"]
    assert metrics["fid"]["reason"] == "not measured: not in evaluate.metrics"
    assert metrics["psnr"]["value"] > 30


def test_cli_fid_reference_offline_fails_clearly_and_keeps_an_existing_cache(
    tmp_path, offline, capsys
):
    (tmp_path / "val").mkdir()
    out = tmp_path / "stats.npz"
    assert main(["fid-reference", str(tmp_path / "val"), "--out", str(out)]) == 1
    assert "no images" in capsys.readouterr().err
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "val" / "a.png")
    assert main(["fid-reference", str(tmp_path / "val"), "--out", str(out), "--device", "cpu"]) == 1
    assert "Inception (FID) weights unavailable" in capsys.readouterr().err
    np.savez(out, mu=np.zeros(2), sigma=np.eye(2))
    assert main(["fid-reference", str(tmp_path / "val"), "--out", str(out)]) == 0
    assert "kept" in capsys.readouterr().out


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_gives_the_cpu_numbers(tmp_path):
    path, _ = make_samples(tmp_path / "samples.npz")
    results = {}
    for device in ("cpu", "cuda"):
        opts = EvaluateConfig(fid_reference_from_clean=True)
        models = (tiny_extractor(device), tiny_classifier().to(device))
        results[device] = evaluate_samples(
            path, "jpeg-10", tmp_path / f"{device}.json", opts, *models, lpips_model=tiny_lpips,
            device=device,
        )  # fmt: skip
    assert results["cpu"]["metrics"] and set(results["cuda"]["metrics"]) == set(
        results["cpu"]["metrics"]
    )
    for name, entry in results["cpu"]["metrics"].items():
        cuda_value = results["cuda"]["metrics"][name]["value"]
        assert cuda_value == pytest.approx(entry["value"], rel=1e-2, abs=1e-2)  # TF32 convolutions


def place_random_weights(checkpoints: Path, monkeypatch) -> None:
    """Random weights for the real Inception and ResNet-50 under the file names torch.hub looks for."""
    import cleanfid.inception_pytorch as cleanfid_inception
    from torchvision.models import resnet50

    built = {}
    with monkeypatch.context() as patch:  # build clean-fid's Inception without loading any weights
        patch.setattr(cleanfid_inception, "load_state_dict_from_url", lambda *a, **k: None)
        patch.setattr(
            torch.nn.Module,
            "load_state_dict",
            lambda m, _sd: built.setdefault("sd", m.state_dict()),
        )
        cleanfid_inception.fid_inception_v3()
    checkpoints.mkdir(parents=True)
    torch.save(built["sd"], checkpoints / "pt_inception-2015-12-05-6726825d.pth")
    torch.save(resnet50(weights=None).state_dict(), checkpoints / "resnet50-0676ba61.pth")


def test_weights_pre_placed_in_torch_home_are_used_offline(tmp_path, offline, monkeypatch):
    place_random_weights(tmp_path / "torch_home" / "hub" / "checkpoints", monkeypatch)
    path, part = make_samples(tmp_path / "samples.npz", count=2)
    features = fid.image_features(part.recon, fid.load_inception("cpu"), "cpu")
    assert features.shape == (2, 2048) and np.isfinite(features).all()
    # (a 2048-d FID needs a 2048x2048 matrix square root: ~20 s here, so it is left to real runs)
    metrics = evaluate_samples(
        path, "jpeg-10", tmp_path / "m.json", EvaluateConfig(metrics=without("fid"))
    )["metrics"]
    assert metrics["ca"]["reason"] is None and 0 <= metrics["ca"]["value"] <= 1


def test_a_configured_reference_path_that_is_missing_is_an_error_not_unavailable(tmp_path):
    from i2sb.downloads import PlacedFileMissing

    path = tmp_path / "samples.npz"
    images = np.zeros((2, 3, 8, 8), np.uint8)
    meta = np.str_(json.dumps({"task": "sr4x-pool", "nfe": 1, "dataset": DATASET}))
    np.savez(
        path,
        recon=images,
        clean=images,
        indices=np.arange(2),
        labels=np.zeros(2, np.int64),
        meta=meta,
    )
    opts = EvaluateConfig(metrics=without("ca"))
    placed = DownloadConfig(fid_reference=str(tmp_path / "typo.npz"), cache_dir=str(tmp_path))
    with pytest.raises(PlacedFileMissing, match="downloads.fid_reference points at .*typo.npz"):
        evaluate_samples(
            path, "sr4x-pool", tmp_path / "m.json", opts, feature_model=lambda x: x,
            downloads=placed,
        )  # fmt: skip
    assert not (tmp_path / "m.json").exists()
