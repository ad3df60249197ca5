"""Pixel conversion and trajectory pictures."""

import numpy as np
import pytest
import torch
from PIL import Image

from i2sb.sample.images import from_uint8, grid, save_gif, save_png, to_uint8, trajectory_rows


def test_uint8_conversion_rounds_and_clamps_as_the_contract_says():
    values = torch.tensor([-2.0, -1.0, 0.0, 1.0, 3.0, 2 * 100.6 / 255 - 1, 2 * 100.4 / 255 - 1])
    # 100.6 -> 101: rounded, where the reference's truncation would give 100
    assert to_uint8(values).tolist() == [0, 0, 128, 255, 255, 101, 100]
    pixels = np.arange(256, dtype=np.uint8)
    assert np.array_equal(to_uint8(from_uint8(pixels)), pixels)
    with pytest.raises(ValueError, match="uint8"):
        from_uint8(pixels.astype(np.int64))


def test_trajectory_rows_run_from_degraded_to_final():
    degraded = torch.full((2, 3, 4, 4), -1.0)
    # Bridge.sample order: index 0 = final (step 0), last = noisiest logged step
    frames = torch.stack([torch.full((2, 3, 4, 4), v) for v in (1.0, 0.0, -0.5)], dim=1)
    rows = trajectory_rows(degraded, frames)
    assert rows.shape == (2, 4, 3, 4, 4)
    assert rows[0, :, 0, 0, 0].tolist() == [0, 64, 128, 255]
    with pytest.raises(ValueError, match="frames must be"):
        trajectory_rows(degraded[:1], frames)


def test_grid_puts_white_gutters_between_tiles():
    rows = np.zeros((2, 3, 3, 4, 5), np.uint8)
    picture = grid(rows, pad=1)
    assert picture.shape == (3, 2 * 4 + 1, 3 * 5 + 2)
    assert (picture[:, 4, :] == 255).all() and (picture[:, :, 5] == 255).all()
    assert (picture[:, :4, :5] == 0).all()


def test_png_and_gif_files(tmp_path):
    frame = np.zeros((3, 6, 8), np.uint8)
    frame[0] = 200
    with Image.open(save_png(tmp_path / "a.png", frame)) as image:
        assert image.size == (8, 6) and image.getpixel((0, 0)) == (200, 0, 0)
    frames = [frame, 255 - frame, frame]
    with Image.open(save_gif(tmp_path / "a.gif", frames)) as image:
        assert image.n_frames == 3 and image.size == (8, 6)
    with pytest.raises(ValueError, match="at least one frame"):
        save_gif(tmp_path / "empty.gif", [])
