"""High-bit-depth images are scaled to 8 bits by every reader (issue 14 item 4), with real 16-bit PNGs."""

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from i2sb.data.decode import UnreadableImage, load_rgb


def ramp16(height=32, width=40, low=20000, high=41000) -> np.ndarray:
    """uint16 (H, W): a horizontal ramp with mean ~ 119 in 8-bit terms (not near white)."""
    return np.tile(np.linspace(low, high, width), (height, 1)).round().astype(np.uint16)


def write_gray16_png(path: Path, values: np.ndarray) -> Path:
    image = Image.fromarray(values)  # Pillow keeps uint16 as mode I;16 and writes a 16-bit PNG
    assert image.mode == "I;16"
    image.save(path)
    return path


def write_rgb16_png(path: Path, rgb: np.ndarray) -> Path:
    """A 48-bit RGB PNG written chunk by chunk (Pillow cannot write one)."""
    height, width, _ = rgb.shape

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    rows = b"".join(b"\x00" + rgb[y].astype(">u2").tobytes() for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
                     + chunk(b"IEND", b""))  # fmt: skip
    return path


def expected_8bit(values: np.ndarray) -> float:
    return float((values / 65535 * 255).mean())


def test_a_16_bit_gray_png_is_scaled_not_clipped(tmp_path):
    values = ramp16()
    path = write_gray16_png(tmp_path / "gray16.png", values)
    assert np.asarray(Image.open(path).convert("RGB")).mean() > 250  # what Pillow alone does
    pixels = np.asarray(load_rgb(str(path)))
    assert pixels.shape == (32, 40, 3) and pixels.dtype == np.uint8
    assert abs(pixels.mean() - expected_8bit(values)) < 0.6


def test_a_16_bit_rgb_png_keeps_its_colours(tmp_path):
    values = ramp16()
    rgb = np.stack([values, values // 2, values // 4], axis=-1)
    pixels = np.asarray(load_rgb(str(write_rgb16_png(tmp_path / "rgb16.png", rgb))))
    for channel in range(3):
        assert abs(pixels[..., channel].mean() - expected_8bit(rgb[..., channel])) < 1.0


def test_float_images_outside_zero_one_are_refused_by_name(tmp_path):
    path = tmp_path / "float.tiff"
    Image.fromarray(np.full((8, 8), 3.5, np.float32)).save(path)
    with pytest.raises(UnreadableImage, match="float.tiff: float pixels outside"):
        load_rgb(str(path))


def test_folder_readers_lmdb_conversion_and_restore_read_16_bit_alike(tmp_path):
    from i2sb.data.folders import ImageFolderDataset
    from i2sb.data.lmdb_convert import convert_folder
    from i2sb.data.lmdb_dataset import LMDBImageDataset
    from i2sb.sample.restore import _open

    (tmp_path / "src" / "cls").mkdir(parents=True)
    values = ramp16()
    path = write_gray16_png(tmp_path / "src" / "cls" / "a.png", values)
    report = convert_folder(tmp_path / "src", "val", tmp_path / "data", workers=0, progress=False)
    assert report.rescaled == [str(path)]
    from_folder = ImageFolderDataset(tmp_path / "src")[0][0]
    from_lmdb = LMDBImageDataset(tmp_path / "data", "val")[0][0]
    assert from_folder.equal(from_lmdb)
    mean_8bit = float(((from_folder + 1) / 2 * 255).mean())
    assert abs(mean_8bit - expected_8bit(values)) < 0.6
    # the stored bytes are an 8-bit PNG, so the reference's reader (Pillow's convert) agrees
    stored = LMDBImageDataset(tmp_path / "data", "val").read_bytes(0)
    assert abs(np.asarray(load_rgb(stored)).mean() - expected_8bit(values)) < 0.6
    assert abs(np.asarray(_open(path, "RGB")).mean() - expected_8bit(values)) < 0.6
