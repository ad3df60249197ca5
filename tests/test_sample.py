"""Partitioned sampling: parts gather to the whole set, reruns are identical, finished parts are kept."""

import argparse
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from i2sb.config import SampleConfig
from i2sb.network import PRESETS, build_i2sb_net, save_i2sb_checkpoint
from i2sb.network.fastpath import resolve_precision
from i2sb.sample.gather import gather_parts
from i2sb.sample.partitioned import SampleJob, sample_partition
from i2sb.sample.parts import read_part
from i2sb.sample.restorer import Restorer

INTERVAL = 100
SIZE = 32


def make_run(folder, task="sr4x-pool", cond_x1=False, published=False, seed=0):
    """A tiny-preset run folder: latest.pt with perturbed EMA weights + options (ours or published)."""
    torch.manual_seed(seed)
    net = build_i2sb_net("tiny", INTERVAL, cond_x1=cond_x1)
    generator = torch.Generator().manual_seed(seed + 1)
    shadow = [
        p.detach() + 0.05 * torch.randn(p.shape, generator=generator) for p in net.parameters()
    ]
    ema = {"decay": 0.99, "num_updates": 10, "shadow_params": shadow, "collected_params": None}
    folder.mkdir(parents=True, exist_ok=True)
    save_i2sb_checkpoint(folder / "latest.pt", net, ema, {}, None)
    common = {"interval": INTERVAL, "t0": 1e-4, "T": 1.0, "cond_x1": cond_x1}
    if published:
        options = argparse.Namespace(
            corrupt=task, image_size=SIZE, beta_max=0.3 if task.startswith(("sr", "jpeg")) else 1.0,
            ot_ode=task.startswith(("blur", "inpaint")),
            ckpt_path=Path("results") / task, load=None, clip_denoise=False, add_x1_noise=False,
            **common,
        )  # fmt: skip
        (folder / "options.pkl").write_bytes(pickle.dumps(options))
    else:
        options = {"task": task, "preset": "tiny", "image_size": SIZE, **common}
        (folder / "options.json").write_text(json.dumps(options))
    return folder


def smooth_images(count, seed=0):
    """Low-frequency colour images in [-1, 1], (count, 3, SIZE, SIZE)."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(count, 3, 4, 4, generator=generator) * 2 - 1
    return torch.nn.functional.interpolate(coarse, size=SIZE, mode="bilinear", align_corners=False)


@pytest.fixture(scope="module")
def dataset():
    images = smooth_images(10)
    return [(images[i], 100 + i) for i in range(10)]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("run") / "sr4x-pool")


def settings(nfe=2, trajectory=False, **sample_keys):
    """A SampleJob: ``sample_keys`` are keys of the config's sample section (batch size 4 here)."""
    return SampleJob(nfe, SampleConfig(**{"batch_size": 4, **sample_keys}), trajectory=trajectory)


def sample(run, dataset, part, out, **overrides):
    return sample_partition(
        str(run), dataset, list(range(len(dataset))), part, settings(**overrides), out
    )


def test_three_partitions_of_ten_images_gather_to_all_ten_in_order(run_dir, dataset, tmp_path):
    parts = [sample(run_dir, dataset, (i, 3), tmp_path / f"part_{i}_3.npz")[0] for i in (2, 0, 1)]
    assert [len(read_part(p)) for p in parts] == [4, 3, 3]
    gathered = read_part(gather_parts(parts, tmp_path / "samples.npz", expect_parts=3))
    assert gathered.indices.tolist() == list(range(10))
    assert gathered.labels.tolist() == [100 + i for i in range(10)]
    clean = ((torch.stack([x for x, _ in dataset]) + 1) / 2 * 255).round().byte().numpy()
    assert np.array_equal(gathered.clean, clean)
    assert gathered.recon.shape == gathered.degraded.shape == (10, 3, SIZE, SIZE)
    assert gathered.meta["num_images"] == 10 and gathered.meta["task"] == "sr4x-pool"


def test_a_seeded_rerun_of_a_partition_is_byte_identical(run_dir, dataset, tmp_path):
    first, _ = sample(run_dir, dataset[:6], (0, 2), tmp_path / "a" / "part_0_2.npz")
    second, _ = sample(run_dir, dataset[:6], (0, 2), tmp_path / "b" / "part_0_2.npz")
    other_seed, _ = sample(run_dir, dataset[:6], (0, 2), tmp_path / "c" / "part_0_2.npz", seed=1)
    assert np.array_equal(read_part(first).recon, read_part(second).recon)
    # sr4x-pool samples stochastically: the seed must matter, or the check above proves nothing
    assert not np.array_equal(read_part(first).recon, read_part(other_seed).recon)


@pytest.mark.parametrize("task", ["sr4x-pool", "jpeg-10", "inpaint-center"])
def test_gathered_images_do_not_depend_on_partitions_or_batch_size(dataset, tmp_path, task):
    """Image p's noise comes from (seed, p) alone: 1 partition x batch 8 = 3 partitions x batch 3."""
    run = make_run(tmp_path / task, task=task)
    one = sample(run, dataset, (0, 1), tmp_path / "one" / "part_0_1.npz", batch_size=8, nfe=3)[0]
    three = [
        sample(run, dataset, (i, 3), tmp_path / "three" / f"part_{i}_3.npz", batch_size=3, nfe=3)[0]
        for i in range(3)
    ]
    whole = read_part(gather_parts([one], tmp_path / "one.npz"))
    split = read_part(gather_parts(three, tmp_path / "three.npz"))
    for key in ("recon", "clean", "degraded", "indices", "labels"):
        assert np.array_equal(getattr(whole, key), getattr(split, key)), key
    # the noise matters (sr4x-pool samples stochastically; inpainting fills the hole with noise)
    other = sample(run, dataset, (0, 1), tmp_path / "seed1.npz", batch_size=8, nfe=3, seed=1)[0]
    assert not np.array_equal(read_part(other).recon, whole.recon)


def test_a_finished_partition_is_not_recomputed(run_dir, dataset, tmp_path):
    out = tmp_path / "part_1_2.npz"
    _, computed = sample(run_dir, dataset[:4], (1, 2), out)
    stamp = out.stat().st_mtime_ns
    _, again = sample(run_dir, dataset[:4], (1, 2), out)
    assert computed and not again
    assert out.stat().st_mtime_ns == stamp
    _, other_nfe = sample(run_dir, dataset[:4], (1, 2), out, nfe=3)  # other settings: recomputed
    assert other_nfe and read_part(out).meta["nfe"] == 3


def test_meta_records_speed_and_network_evaluations(run_dir, dataset, tmp_path):
    out, _ = sample(run_dir, dataset[:6], (0, 1), tmp_path / "part_0_1.npz", nfe=3)
    meta = read_part(out).meta
    assert meta["network_evaluations"] == 3 * 2  # 6 images in batches of 4 -> 2 batches
    assert meta["images_per_s"] > 0 and meta["seconds_per_nfe"] > 0
    assert meta["partition"] == [0, 1] and meta["total"] == 6
    # the default precision "auto" is recorded as what ran
    assert meta["precision"] == resolve_precision("auto", "cpu", training=False) != "auto"


def test_the_published_layout_samples_like_ours(tmp_path, dataset, monkeypatch):
    # The loader builds published runs as adm256; at test size that preset is swapped for tiny.
    monkeypatch.setitem(PRESETS, "adm256", PRESETS["tiny"])
    ours = make_run(tmp_path / "ours", task="blur-uni", cond_x1=True)
    published = make_run(tmp_path / "published", task="blur-uni", cond_x1=True, published=True)
    a, _ = sample(ours, dataset[:4], (0, 1), tmp_path / "ours.npz")
    b, _ = sample(published, dataset[:4], (0, 1), tmp_path / "published.npz")
    assert read_part(b).meta["options"]["preset"] == "adm256"
    assert np.array_equal(read_part(a).recon, read_part(b).recon)


def test_inpainting_keeps_the_known_pixels_and_fills_the_hole(tmp_path, dataset):
    run = make_run(tmp_path / "inpaint", task="inpaint-center")
    part = read_part(sample(run, dataset[:4], (0, 1), tmp_path / "p.npz")[0])
    hole = (slice(None), slice(None), slice(8, 24), slice(8, 24))
    outside = np.ones(part.recon.shape, bool)
    outside[hole] = False
    # OT-ODE: outside the hole x_t is reset to the known pixels after every step
    assert np.array_equal(part.recon[outside], part.clean[outside])
    assert (part.degraded[hole] == 255).all()  # stored x1 is the white-filled input, not the noise
    assert not (part.recon[hole] == 255).all()
    assert part.meta["mask_source"] is None  # the center square needs no mask bank


def test_bf16_sampling_runs_on_the_cpu_and_fp16_asks_for_cuda(run_dir, dataset, tmp_path):
    sampler = Restorer.load(run_dir, "cpu", "bf16")
    out, _ = sample_partition(
        sampler, dataset[:4], range(4), (0, 1), settings(), tmp_path / "bf16.npz"
    )
    part = read_part(out)
    assert part.meta["precision"] == "bf16" and part.recon.shape == (4, 3, SIZE, SIZE)
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        Restorer.load(run_dir, "cpu", "fp16")


def test_trajectory_png_is_written_beside_partition_zero(run_dir, dataset, tmp_path):
    from PIL import Image

    sample(run_dir, dataset[:2], (1, 2), tmp_path / "part_1_2.npz", trajectory=True)
    assert not (tmp_path / "trajectory.png").exists()
    sample(run_dir, dataset[:8], (0, 2), tmp_path / "part_0_2.npz", trajectory=True, nfe=3)
    with Image.open(tmp_path / "trajectory.png") as image:
        # 4 rows (first images of the batch), degraded + 3 logged frames, 2-pixel gutters
        assert image.size == (4 * SIZE + 3 * 2, 4 * SIZE + 3 * 2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_fp16_sampling_on_cuda(run_dir, dataset, tmp_path):
    sampler = Restorer.load(run_dir, "cuda", "fp16")
    out, _ = sample_partition(
        sampler, dataset[:4], range(4), (0, 1), settings(), tmp_path / "fp16.npz"
    )
    assert read_part(out).meta["precision"] == "fp16"


def test_more_partitions_than_images_gives_empty_parts_that_still_gather(
    run_dir, dataset, tmp_path
):
    parts = [
        sample(run_dir, dataset[:2], (i, 3), tmp_path / f"part_{i}_3.npz")[0] for i in range(3)
    ]
    assert [len(read_part(p)) for p in parts] == [0, 1, 1]
    assert read_part(gather_parts(parts, tmp_path / "samples.npz")).indices.tolist() == [0, 1]


def test_paired_data_is_sampled_from_its_own_degraded_images(tmp_path, dataset):
    run = make_run(tmp_path / "paired", task="paired")
    degraded = smooth_images(3, seed=5)
    pairs = [(dataset[i][0], degraded[i], 0) for i in range(3)]
    part = read_part(sample(run, pairs, (0, 1), tmp_path / "p.npz")[0])
    assert np.array_equal(part.degraded, ((degraded + 1) / 2 * 255).round().byte().numpy())
    assert part.meta["mask_source"] is None
    with pytest.raises(ValueError, match="needs paired data"):
        sample(run, dataset[:2], (0, 1), tmp_path / "q.npz")


def test_the_sampler_runs_the_ema_weights(run_dir):
    checkpoint = torch.load(run_dir / "latest.pt", weights_only=True)
    params = list(Restorer.load(run_dir, precision="fp32").net.parameters())  # bf16 casts weights
    assert all(
        torch.equal(p, s) for p, s in zip(params, checkpoint["ema"]["shadow_params"], strict=True)
    )
    assert not torch.equal(params[-1], checkpoint["net"]["diffusion_model.out.2.bias"])


def test_run_options_are_normalised_from_both_layouts():
    from i2sb.sample.options import sampling_options

    ours = {"task": "blur-gauss", "preset": "small", "image_size": 64, "interval": 1000,
            "cond_x1": True, "t0": 1e-4, "T": 1.0}  # fmt: skip
    typed = sampling_options(ours)
    assert (typed.beta_max, typed.ot_ode, typed.preset) == (1.0, True, "small")  # task table
    published = {"corrupt": "jpeg-10", "image_size": 256, "interval": 1000, "beta_max": 0.3,
                 "ot_ode": False, "cond_x1": False, "t0": 1e-4, "T": 1.0}  # fmt: skip
    assert sampling_options(published).task == "jpeg-10"
    assert sampling_options(published).preset == "adm256"
    with pytest.raises(KeyError, match=r"run7: options lack \['interval'\]"):
        sampling_options({k: v for k, v in ours.items() if k != "interval"}, source="run7")
    with pytest.raises(KeyError, match="unknown task 'mixture'"):
        sampling_options({**published, "corrupt": "mixture"})


def test_a_retrained_run_or_other_images_make_a_finished_part_stale(tmp_path, dataset, capsys):
    run = make_run(tmp_path / "run", seed=0)
    out = tmp_path / "part_0_1.npz"
    assert sample(run, dataset[:4], (0, 1), out)[1]
    make_run(tmp_path / "run", seed=5)  # retrained in place: same path, same settings
    assert sample(run, dataset[:4], (0, 1), out)[1]
    assert "other checkpoint contents" in capsys.readouterr().err
    others = [(x.flip(-1), label) for x, label in dataset[:4]]  # other photos, same labels
    assert sample(run, others, (0, 1), out)[1]
    assert "other evaluation images" in capsys.readouterr().err
    assert not sample(run, others, (0, 1), out)[1]
    meta = read_part(out).meta
    assert meta["checkpoint_fingerprint"]["iteration"] is None  # this test run records none
    assert meta["data_fingerprint"]["images"] == 4


def test_a_data_folder_fingerprint_sees_a_replaced_file_but_not_a_moved_folder(tmp_path):
    from PIL import Image

    from i2sb.data.fingerprint import data_fingerprint
    from i2sb.data.folders import ImageFolderDataset

    for name in ("a", "b"):
        (tmp_path / "one" / "cls").mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8), (10, 20, 30)).save(tmp_path / "one" / "cls" / f"{name}.png")
    first = data_fingerprint(ImageFolderDataset(tmp_path / "one"), [0, 1])
    (tmp_path / "one").rename(tmp_path / "two")
    assert data_fingerprint(ImageFolderDataset(tmp_path / "two"), [0, 1]) == first
    Image.effect_noise((8, 8), 50).convert("RGB").save(tmp_path / "two" / "cls" / "b.png")
    assert data_fingerprint(ImageFolderDataset(tmp_path / "two"), [0, 1]) != first


@pytest.mark.parametrize("task", ["sr4x-pool", "inpaint-center"])
def test_cddb_against_ddpm_on_a_tiny_checkpoint(tmp_path, task):
    """CDDB's step pulls the restoration towards the measurement: ||A(x) - y|| drops for 4x SR.

    For inpainting the known-pixel reset after every step overwrites CDDB's step outside the hole,
    and the gradient of ||(1 - m)(x - y)||^2 is zero inside it: cddb gives ddpm's images exactly.
    """
    from i2sb.corruption import build_corruption
    from i2sb.samplers import SamplerConfig

    sampler, corruption = Restorer.load(make_run(tmp_path, task=task)), build_corruption(task, SIZE)
    x0 = smooth_images(4)
    x1, mask = corruption(x0)
    y = corruption.forward(x0, mask)
    ddpm = sampler.restore(x1, mask, 5, seed=0).recon
    cddb = sampler.restore(x1, mask, 5, seed=0, sampler=SamplerConfig("cddb", step_size=1.0)).recon

    def residual(x):
        return (corruption.forward(x, mask) - y).norm().item()

    if task == "inpaint-center":
        assert torch.equal(cddb, ddpm)
    else:
        assert residual(cddb) < 0.85 * residual(ddpm)  # measured 2.30 vs 3.07
        assert ((cddb - x0) ** 2).mean() < ((ddpm - x0) ** 2).mean()


def test_the_checkpoint_hash_is_cached_outside_its_folder_until_the_file_changes(
    tmp_path, monkeypatch
):
    import i2sb.network.checkpoint as checkpoint

    monkeypatch.setenv("I2SB_CACHE", str(tmp_path / "cache"))
    run = make_run(tmp_path / "run", seed=0)
    listing = sorted(p.name for p in run.iterdir())
    hashed = []
    real = checkpoint._hash_checkpoint
    monkeypatch.setattr(checkpoint, "_hash_checkpoint", lambda f: hashed.append(f) or real(f))
    first = checkpoint.checkpoint_fingerprint(run)
    assert checkpoint.checkpoint_fingerprint(run) == first and len(hashed) == 1  # read once
    assert sorted(p.name for p in run.iterdir()) == listing  # nothing written beside latest.pt
    assert len(list((tmp_path / "cache" / "fingerprints").iterdir())) == 1
    make_run(tmp_path / "run", seed=5)  # retrained in place
    assert checkpoint.checkpoint_fingerprint(run)["sha256"] != first["sha256"]
    assert len(hashed) == 2


def test_nan_restored_images_are_refused_not_written_black(tmp_path, dataset):
    """A checkpoint with NaN weights (or a network that overflowed in fp16) restored black images
    that were written and scored; now the part fails, naming itself, and nothing is written."""
    run = make_run(tmp_path / "run")
    net = build_i2sb_net("tiny", INTERVAL)
    shadow = [torch.full_like(p, float("nan")) for p in net.parameters()]
    ema = {"decay": 0.99, "num_updates": 10, "shadow_params": shadow, "collected_params": None}
    save_i2sb_checkpoint(run / "latest.pt", net, ema, {}, None)
    out = tmp_path / "part_0_2.npz"
    with pytest.raises(ValueError, match=r"part_0_2\.npz: evaluation images 0-3 .* 4 of 4 images"):
        sample(run, dataset, (0, 2), out, trajectory=True)
    assert not out.exists() and not (tmp_path / "trajectory.png").exists()
