"""i2sb restore: a user's degraded image files in, one restored PNG each out."""

import numpy as np
import pytest
from PIL import Image
from test_sample import SIZE, make_run

from i2sb.config import SampleConfig
from i2sb.sample.restore import fit, restore_images


def write_photo(path, width, height, seed=0):
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture(scope="module")
def sr_run(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("run") / "sr4x-pool")


def test_crop_mode_writes_one_model_sized_png_per_input(sr_run, tmp_path):
    inputs = [
        write_photo(tmp_path / "wide.jpg", 80, 48),
        write_photo(tmp_path / "tall.png", 40, 70, 1),
    ]
    written = restore_images(
        str(sr_run),
        inputs,
        tmp_path / "out",
        nfe=2,
        settings=SampleConfig(batch_size=1),
        resize_mode="crop",
    )
    assert [p.name for p in written] == ["wide_restored.png", "tall_restored.png"]
    for path in written:
        with Image.open(path) as image:
            assert image.size == (SIZE, SIZE) and image.mode == "RGB"


def test_restored_pngs_do_not_depend_on_the_batch_size(sr_run, tmp_path):
    inputs = [write_photo(tmp_path / f"p{i}.png", 40, 40, i) for i in range(3)]
    one = restore_images(
        str(sr_run), inputs, tmp_path / "one", nfe=2, settings=SampleConfig(batch_size=1)
    )
    three = restore_images(
        str(sr_run), inputs, tmp_path / "three", nfe=2, settings=SampleConfig(batch_size=3)
    )
    for a, b in zip(one, three, strict=True):
        assert a.read_bytes() == b.read_bytes()


def test_restore_with_the_implicit_sampler(sr_run, tmp_path):
    from i2sb.samplers import SamplerConfig

    photo = write_photo(tmp_path / "p.png", 40, 40)
    (ddpm,) = restore_images(str(sr_run), [photo], tmp_path / "ddpm", nfe=3)
    implicit = SamplerConfig("implicit", eta=0.0)
    (first,) = restore_images(str(sr_run), [photo], tmp_path / "a", nfe=3, method=implicit)
    (again,) = restore_images(str(sr_run), [photo], tmp_path / "b", nfe=3, method=implicit)
    assert first.read_bytes() == again.read_bytes() != ddpm.read_bytes()


def test_pad_mode_keeps_the_aspect_ratio(sr_run, tmp_path):
    photo = write_photo(tmp_path / "wide.png", 64, 32)
    (path,) = restore_images(str(sr_run), [photo], tmp_path, nfe=2, resize_mode="pad")
    with Image.open(path) as image:
        assert image.size == (SIZE, SIZE // 2)


def test_fit_pads_by_edge_replication_and_reports_the_content_box():
    image = Image.fromarray(np.full((10, 20, 3), 7, np.uint8))
    padded, box = fit(image, 8, "pad")
    assert padded.size == (8, 8) and box == (0, 2, 8, 6)
    assert (np.asarray(padded) == 7).all()
    with pytest.raises(ValueError, match="--resize-mode"):
        fit(image, 8, "stretch")


def test_trajectory_as_strip_and_gif(sr_run, tmp_path):
    photo = write_photo(tmp_path / "a.png", SIZE, SIZE)
    restore_images(str(sr_run), [photo], tmp_path, nfe=3, trajectory="png")
    with Image.open(tmp_path / "a_trajectory.png") as strip:
        assert strip.size == (4 * SIZE + 3 * 2, SIZE)  # degraded + 3 logged frames
    restore_images(str(sr_run), [photo], tmp_path, nfe=3, trajectory="gif")
    with Image.open(tmp_path / "a_trajectory.gif") as gif:
        assert gif.n_frames == 4


def test_inpainting_uses_the_given_mask_and_keeps_known_pixels(tmp_path):
    run = make_run(tmp_path / "run", task="inpaint-freeform1020")
    photo = write_photo(tmp_path / "a.png", SIZE, SIZE)
    hole = np.zeros((SIZE, SIZE), np.uint8)
    hole[4:12, 4:20] = 255
    Image.fromarray(hole).save(tmp_path / "mask.png")
    with pytest.raises(ValueError, match="needs --mask"):
        restore_images(str(run), [photo], tmp_path, nfe=2)
    (path,) = restore_images(str(run), [photo], tmp_path, nfe=2, masks=[tmp_path / "mask.png"])
    restored, original = np.asarray(Image.open(path)), np.asarray(Image.open(photo))
    known = hole == 0
    assert np.array_equal(restored[known], original[known])  # OT-ODE resets the known pixels
    assert not np.array_equal(restored[~known], original[~known])


def test_inputs_are_checked_before_any_sampling(sr_run, tmp_path):
    photo = write_photo(tmp_path / "a.png", SIZE, SIZE)
    with pytest.raises(ValueError, match=r"only for the tasks with a hole \(inpaint-\*\)"):
        restore_images(str(sr_run), [photo], tmp_path, nfe=2, masks=[photo])
    with pytest.raises(ValueError, match="distinct names"):
        restore_images(str(sr_run), [photo, tmp_path / "x" / "a.jpg"], tmp_path, nfe=2)
    with pytest.raises(FileNotFoundError, match="missing.png"):
        restore_images(str(sr_run), [tmp_path / "missing.png"], tmp_path, nfe=2)


def test_resizing_is_said_and_keep_size_runs_at_the_inputs_own_size(sr_run, tmp_path, caplog):
    caplog.set_level("INFO", logger="i2sb")
    photos = [write_photo(tmp_path / "wide.png", 80, 48), write_photo(tmp_path / "odd.png", 45, 33)]
    restore_images(str(sr_run), photos[:1], tmp_path / "crop", nfe=2, resize_mode="crop")
    assert f"{photos[0]}: 80x48 resized to the model's {SIZE}x{SIZE}" in caplog.text
    caplog.clear()
    written = restore_images(str(sr_run), photos, tmp_path / "keep", nfe=2, resize_mode="keep")
    assert "resized" not in caplog.text
    sizes = [Image.open(path).size for path in written]
    assert sizes == [(80, 48), (45, 33)]  # padded to 96x64 and 64x64 for the network, cropped back


def test_keep_size_pads_to_a_multiple_of_32_by_edge_replication():
    image = Image.fromarray(np.full((33, 45, 3), 5, np.uint8))
    padded, box = fit(image, SIZE, "keep")
    assert padded.size == (64, 64) and box == (9, 15, 54, 48)
    assert (np.asarray(padded) == 5).all()


def test_cli_keep_size_flag(sr_run, tmp_path):
    from i2sb.cli import main

    photo = write_photo(tmp_path / "p.png", 40, 40)
    assert main(["restore", "--ckpt", str(sr_run), "--nfe", "2", str(photo), "--out",
                 str(tmp_path / "o"), "--keep-size", "--device", "cpu"]) == 0  # fmt: skip
    assert Image.open(tmp_path / "o" / "p_restored.png").size == (40, 40)
