"""Sample files streamed, and joined or evaluated only when made alike (issues 22 §1, 25 item 7).

gather and evaluate read images in chunks (samplefile.ImageStream): the result does not depend on
the chunk size. gather refuses parts that differ in any setting, naming it; evaluate refuses a
samples file whose recorded identity differs from what it is asked to evaluate.
"""

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from i2sb.config import EvaluateConfig, config_from_dict, deep_merge
from i2sb.data.build import eval_set_for_config
from i2sb.data.fingerprint import content_fingerprint
from i2sb.metrics.evaluate import evaluate_for_config, evaluate_samples
from i2sb.sample.evalset import expected_identity
from i2sb.sample.gather import gather_parts
from i2sb.sample.parts import Part, read_part, write_part
from i2sb.sample.samplefile import open_samples

SETTINGS = {
    "task": "sr4x-pool", "nfe": 5, "seed": 0, "clip_denoise": False, "precision": "fp32",
    "sampler": {"name": "ddpm", "label": "ddpm", "options": {}}, "noise": "per-image",
    "checkpoint": "/runs/a", "checkpoint_fingerprint": {"sha256": "a" * 64, "bytes": 10},
    "data_fingerprint": {"images": 10, "sha256": "d" * 64}, "corruption_options": {},
    "total": 10, "batch_size": 4,
    "dataset": {"name": "image folder /data", "kind": "imagefolder", "image_size": 16,
                "eval_subset": "full", "max_eval_images": 0},
}  # fmt: skip


def random_part(indices, partition, number, **changed):
    rng = np.random.default_rng(number)
    count = len(indices)

    def images():
        return rng.integers(0, 256, (count, 3, 16, 16), dtype=np.uint8)

    meta = {**SETTINGS, "partition": list(partition), "num_images": count, "seconds": 1.0,
            "data_content": {"images": count, "sha256": f"{number:064d}"}, **changed}  # fmt: skip
    labels = np.asarray(indices) % 3
    return Part(images(), images(), np.asarray(indices), labels, meta, images())


def write_parts(folder, spans=((0, 4), (4, 7), (7, 10)), every=None, **changed_in_last):
    """Parts of one run (with ``every`` changed in all), the last one changed by ``changed_in_last``."""
    paths = []
    for number, (start, stop) in enumerate(spans):
        changed = changed_in_last if number == len(spans) - 1 else {}
        part = random_part(
            range(start, stop), (number, len(spans)), number, **(every or {}), **changed
        )
        paths.append(write_part(folder / f"part_{number}_{len(spans)}.npz", part))
    return paths


def test_gathered_arrays_do_not_depend_on_the_chunk_size_and_load_with_numpy(tmp_path):
    paths = write_parts(tmp_path)
    # a part whose indices are out of order exercises reads that go back in a member
    shuffled = random_part([9, 7, 8], (2, 3), 2)
    paths[2] = write_part(paths[2], shuffled)
    one = gather_parts(paths[::-1], tmp_path / "one.npz", chunk_images=1)
    many = gather_parts(paths, tmp_path / "many.npz", chunk_images=1000)
    parts = [read_part(p) for p in paths]
    order = np.argsort(np.concatenate([p.indices for p in parts]))
    with np.load(one) as a, np.load(many) as b:
        assert a.files == b.files == ["recon", "clean", "indices", "labels", "meta", "degraded"]
        for key in ("recon", "clean", "degraded", "labels"):
            whole = np.concatenate([getattr(p, key) for p in parts])[order]
            assert np.array_equal(a[key], whole) and np.array_equal(b[key], whole)
        assert a["indices"].tolist() == list(range(10))
        assert str(a["meta"]) == str(b["meta"])


@pytest.mark.parametrize("task", ["sr4x-pool", "inpaint-center"])
def test_weight_free_metrics_do_not_depend_on_the_batch_read(tmp_path, task):
    """PSNR, SSIM and consistency read the streamed images evaluate.batch_size at a time."""
    paths = write_parts(tmp_path, every={"task": task})
    samples = gather_parts(paths, tmp_path / "samples.npz")
    results = [
        evaluate_samples(
            samples, task, tmp_path / f"m{batch}.json",
            EvaluateConfig(metrics=("psnr", "ssim", "consistency"), batch_size=batch),
        )["metrics"]
        for batch in (1, 3, 64)
    ]  # fmt: skip
    assert results[0] == results[1] == results[2]
    assert all(results[0][name]["value"] is not None for name in ("psnr", "ssim_degraded"))
    assert results[0]["consistency"]["value"] is not None


def test_streamed_images_refuse_a_whole_load_and_a_corrupt_member_is_named(tmp_path):
    paths = write_parts(tmp_path)
    with open_samples(paths[0]) as opened, pytest.raises(TypeError, match="read in slices"):
        np.asarray(opened.recon)
    data = bytearray(paths[1].read_bytes())
    with zipfile.ZipFile(paths[1]) as archive:
        info = archive.getinfo("clean.npy")
    data[info.header_offset + 200] ^= 0xFF  # a byte of clean's data: the CRC no longer holds
    paths[1].write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"part_1_3.npz: .*CRC.*clean.npy"):
        gather_parts(paths, tmp_path / "samples.npz")
    assert not (tmp_path / "samples.npz").exists() and len(list(tmp_path.iterdir())) == 3


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("seed", 7),
        ("clip_denoise", True),
        ("precision", "bf16"),
        ("checkpoint_fingerprint", {"sha256": "b" * 64, "bytes": 10}),
        ("data_fingerprint", {"images": 10, "sha256": "e" * 64}),
        ("sampler", {"name": "implicit", "label": "implicit-eta0", "options": {"eta": 0.0}}),
        ("corruption_options", {"mask_source": "file"}),
        ("noise", "global generator"),
        ("batch_size", 8),
        ("a_setting_added_later", 1),
        ("dataset", {"name": "ImageNet", "kind": "imagenet", "image_size": 16,
                     "eval_subset": "10k", "max_eval_images": 0}),
    ],
)  # fmt: skip
def test_gather_refuses_parts_made_differently_naming_the_field(tmp_path, key, value):
    with pytest.raises(ValueError) as caught:
        gather_parts(write_parts(tmp_path, **{key: value}), tmp_path / "samples.npz")
    message = str(caught.value)
    assert "\n" not in message and f"{key}=" in message and "part_2_3.npz" in message
    if key in ("checkpoint_fingerprint", "data_fingerprint"):
        assert "sha256 bbbbbbbbbbbb" in message or "sha256 eeeeeeeeeeee" in message
    else:
        assert json.dumps(value, sort_keys=True) in message
        before = SETTINGS.get(key)
        assert (json.dumps(before, sort_keys=True) if before is not None else "not recorded") in (
            message
        )
    assert not (tmp_path / "samples.npz").exists()


def test_gathered_meta_records_the_common_settings_and_every_parts_data(tmp_path):
    meta = read_part(gather_parts(write_parts(tmp_path), tmp_path / "samples.npz")).meta
    assert {key: meta[key] for key in SETTINGS} == SETTINGS
    assert "partition" not in meta and meta["parts"] == 3 and meta["num_images"] == 10
    assert meta["data_content"]["images"] == 10 and meta["data_content"]["parts"] == 3
    # another part's content changes the gathered record
    other = write_parts(tmp_path / "b", data_content={"images": 3, "sha256": "f" * 64})
    assert (
        read_part(gather_parts(other, tmp_path / "b.npz")).meta["data_content"]
        != (meta["data_content"])
    )


def write_photos(root, count=6):
    for number in range(count):
        folder = root / "val" / f"c{number % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (16, 16), (number * 20, 5, 5)).save(folder / f"{number}.bmp")


@pytest.fixture
def made(tmp_path):
    """(config, samples.npz) recording exactly what the config's evaluation of sr4x-pool expects."""
    write_photos(tmp_path / "data")
    cfg = config_from_dict(
        {"data": {"kind": "imagefolder", "root": str(tmp_path / "data"), "image_size": 16},
         "evaluate": {"metrics": ["psnr", "ssim"]}}
    )  # fmt: skip
    identity = expected_identity(cfg, "sr4x-pool", 2, "ddpm", 5, cfg.data.root)
    identity.pop("data_content")  # the parts record their own, as sampling does
    dataset, indices = eval_set_for_config(cfg, "sr4x-pool", cfg.data.root)
    for number, (start, stop) in enumerate(((0, 3), (3, 6))):
        part = random_part(range(start, stop), (number, 2), number, **identity, total=6)
        part.meta["data_content"] = content_fingerprint(dataset, indices[start:stop])
        write_part(tmp_path / f"part_{number}_2.npz", part)
    parts = [tmp_path / f"part_{i}_2.npz" for i in range(2)]
    return cfg, gather_parts(parts, tmp_path / "samples.npz")


def test_evaluate_accepts_samples_made_as_configured(made, tmp_path):
    cfg, samples = made
    result = evaluate_for_config(
        cfg, samples, "sr4x-pool", tmp_path / "m.json", sampler="ddpm", nfe=5
    )
    assert result["metrics"]["psnr"]["value"] > 0


def test_gather_carries_the_parts_record_of_their_data(tmp_path):
    meta = read_part(gather_parts(write_parts(tmp_path), tmp_path / "samples.npz")).meta
    assert meta["dataset"] == SETTINGS["dataset"]
    assert meta["data_fingerprint"] == SETTINGS["data_fingerprint"]


def test_evaluation_reads_what_the_data_is_from_the_samples_not_the_data(made, tmp_path):
    """The workflow's evaluation opens no data: it works with the data folder gone, and
    metrics.json says what the samples recorded."""
    import shutil

    cfg, samples = made
    shutil.rmtree(cfg.data.root)
    result = evaluate_for_config(cfg, samples, "sr4x-pool", tmp_path / "m.json", sampler="ddpm")
    assert result["dataset"] == SETTINGS["dataset"]
    with pytest.raises(FileNotFoundError):  # reading the images again needs them
        evaluate_for_config(cfg, samples, "sr4x-pool", tmp_path / "m.json", data_dir=cfg.data.root)


def replace_photo_same_size(cfg):
    """Another picture under the same name, of the same byte size (BMP: size follows the shape)."""
    path = sorted(Path(cfg.data.root).rglob("*.bmp"))[0]
    size = path.stat().st_size
    Image.new("RGB", (16, 16), (1, 200, 3)).save(path)
    assert path.stat().st_size == size


@pytest.mark.parametrize(
    ("key", "change"),
    [
        ("seed", lambda cfg: {"sample": {"seed": 7}}),
        ("clip_denoise", lambda cfg: {"sample": {"clip_denoise": True}}),
        ("data_fingerprint", lambda cfg: {"data": {"max_eval_images": 5}}),
        ("data_content", lambda cfg: replace_photo_same_size(cfg) or {}),
        ("nfe", lambda cfg: "nfe"),
        ("sampler", lambda cfg: "sampler"),
        ("task", lambda cfg: "task"),
    ],
)
def test_evaluate_refuses_samples_of_another_identity_naming_the_field(made, tmp_path, key, change):
    cfg, samples = made
    asked = {"task": "sr4x-pool", "sampler": "ddpm", "nfe": 5}
    changed = change(cfg)
    if changed == "nfe":
        asked["nfe"] = 10
    elif changed == "sampler":
        samplers = {"samplers": [{"name": "ddpm"}, {"name": "implicit"}]}
        cfg = config_from_dict(deep_merge(cfg.to_dict(), samplers))
        asked["sampler"] = "implicit-eta0"
    elif changed == "task":
        asked["task"] = "sr4x-bicubic"
    else:
        cfg = config_from_dict(deep_merge(cfg.to_dict(), changed))
    out = tmp_path / "m.json"
    with pytest.raises(ValueError) as caught:
        evaluate_for_config(cfg, samples, asked.pop("task"), out, **asked, data_dir=cfg.data.root)
    message = str(caught.value)
    assert "\n" not in message and "samples.npz" in message and f"{key} is " in message
    assert not out.exists()


def test_a_photo_replaced_in_place_by_one_of_the_same_size_recomputes_only_its_part(
    tmp_path, capsys
):
    """The part records the bytes of its own images: the replaced photo's part is sampled again,
    the other part is kept; the set's index fingerprint (names, sizes, labels) does not move."""
    from test_sample import SIZE, make_run, settings

    from i2sb.data.fingerprint import data_fingerprint
    from i2sb.data.folders import ImageFolderDataset
    from i2sb.sample.partitioned import sample_partition

    run = make_run(tmp_path / "run")
    for number in range(4):
        folder = tmp_path / "val" / f"c{number % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (SIZE, SIZE), (number * 40, 9, 9)).save(folder / f"{number}.bmp")

    def sample_both():
        dataset = ImageFolderDataset(tmp_path / "val")
        return [
            sample_partition(
                str(run), dataset, [0, 1, 2, 3], (i, 2), settings(), tmp_path / f"p{i}.npz"
            )[1]
            for i in range(2)
        ]

    assert sample_both() == [True, True]
    index = data_fingerprint(ImageFolderDataset(tmp_path / "val"), range(4))
    last = ImageFolderDataset(tmp_path / "val").paths[3]  # evaluation image 3: partition 1
    size = Path(last).stat().st_size
    Image.new("RGB", (SIZE, SIZE), (0, 250, 0)).save(last)
    assert Path(last).stat().st_size == size
    assert data_fingerprint(ImageFolderDataset(tmp_path / "val"), range(4)) == index
    capsys.readouterr()
    assert sample_both() == [False, True]
    assert "p1.npz was made from other evaluation image contents" in capsys.readouterr().err
    assert sample_both() == [False, False]


def test_the_cli_checks_the_config_sampler_nfe_and_with_check_data_the_images(
    made, tmp_path, capsys
):
    import yaml

    from i2sb.cli import main

    cfg, samples = made
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"data": {"kind": "imagefolder", "root": cfg.data.root}}))
    argv = ["evaluate", str(samples), "--task", "sr4x-pool", "--out", str(tmp_path / "m.json"),
            "--config", str(config), "--metrics", "psnr", "--sampler", "ddpm", "--nfe", "5"]  # fmt: skip
    assert main([*argv, "--check-data"]) == 0
    replace_photo_same_size(cfg)
    assert main(argv) == 0  # the images are not read again without --check-data
    assert main([*argv, "--check-data"]) == 1
    assert "data_content is" in capsys.readouterr().err
    assert main([*argv[:-4], "--nfe", "10"]) == 1
    assert "nfe is 5 in the file, 10 now" in capsys.readouterr().err
    assert main([*argv[:6], "--sampler", "ddpm"]) == 1
    assert "--sampler needs --config" in capsys.readouterr().err
