"""`i2sb corrupt` on a user's own image files."""

import numpy as np
import skimage.data
from PIL import Image

from i2sb.cli import main


def test_corrupt_writes_clean_and_degraded_pngs(tmp_path, capsys):
    source = tmp_path / "astronaut.jpg"
    Image.fromarray(skimage.data.astronaut()[:, 50:]).save(source)  # not square: gets cropped
    out = tmp_path / "out"
    assert (
        main(["corrupt", "--task", "sr4x-pool", str(source), "--out", str(out), "--size", "64"])
        == 0
    )
    clean = np.asarray(Image.open(out / "astronaut_clean.png"))
    degraded = np.asarray(Image.open(out / "astronaut_sr4x-pool.png"))
    assert clean.shape == degraded.shape == (64, 64, 3)
    # 4x4 blocks of the degraded image are constant (pooled, then nearest-upsampled)
    assert np.all(degraded == np.repeat(np.repeat(degraded[::4, ::4], 4, 0), 4, 1))
    assert str(out / "astronaut_sr4x-pool.png") in capsys.readouterr().out


def test_corrupt_freeform_reports_the_mask_source(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("I2SB_FREEFORM_MASKS", raising=False)
    paths = []
    for name in ("a", "b"):
        paths.append(tmp_path / f"{name}.png")
        Image.fromarray(skimage.data.chelsea()).save(paths[-1])
    argv = [
        "corrupt",
        "--task",
        "inpaint-freeform1020",
        *map(str, paths),
        "--out",
        str(tmp_path / "o"),
    ]
    argv += ["--size", "64", "--mask-source", "generated", "--seed", "5"]
    assert main(argv) == 0
    assert "masks: generated brush strokes seed=5" in capsys.readouterr().out
    first = np.asarray(Image.open(tmp_path / "o" / "a_inpaint-freeform1020.png"))
    second = np.asarray(Image.open(tmp_path / "o" / "b_inpaint-freeform1020.png"))
    assert not np.array_equal(first, second)  # mask i for image i: different holes


def test_corrupt_reports_bad_input_without_traceback(tmp_path, capsys):
    missing = tmp_path / "missing.png"
    assert main(["corrupt", "--task", "jpeg-10", str(missing), "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "missing.png: not a readable image" in err and "Traceback" not in err
    assert main(["corrupt", "--task", "jpeg-999", str(missing), "--out", str(tmp_path)]) == 1
    assert "valid names" in capsys.readouterr().err
