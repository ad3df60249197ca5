"""Special files and EXIF orientation (issue 22 §4): a FIFO, socket, device or link to /dev/zero
named *.png is skipped and named, never read; photos are read upright, as viewers show them."""

import io
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from i2sb.cli import main
from i2sb.data.decode import load_rgb
from i2sb.data.folders import scan_image_folder

REPO = Path(__file__).resolve().parents[1]
# a child that reads /dev/zero without the fix must fail on memory, not fill the machine's
LIMITED = ("import resource, sys; resource.setrlimit(resource.RLIMIT_DATA, (2 << 30, 2 << 30)); "
           "from i2sb.cli import main; sys.exit(main(sys.argv[1:]))")  # fmt: skip
RED, BLUE = (255, 0, 0), (0, 0, 255)


def _photo(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(path)
    return path


def _special(path: Path, kind: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(path))  # the file stays after the socket object is collected
        server.close()
    else:
        path.symlink_to("/dev/zero")
    return path


def _i2sb(*argv, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", LIMITED, *map(str, argv)], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "PYTHONPATH": str(REPO)})  # fmt: skip


@pytest.mark.parametrize("kind", ["fifo", "socket", "zero"])
def test_convert_skips_a_special_file_and_names_it_in_one_line(tmp_path, kind):
    _photo(tmp_path / "src" / "a" / "good.png")
    special = _special(tmp_path / "src" / "a" / "bad.png", kind)
    proc = _i2sb("data", "convert", "--src", tmp_path / "src", "--split", "val", "--out",
                 tmp_path / "data", "--workers", "0")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [line for line in proc.stdout.splitlines() if "special files" in line]
    assert len(lines) == 1 and str(special) in lines[0], proc.stdout
    assert "1 images stored" in proc.stdout


def test_scanning_never_lists_a_special_file_as_an_image(tmp_path):
    _photo(tmp_path / "a" / "good.png")
    fifo = _special(tmp_path / "a" / "pipe.png", "fifo")
    listing = scan_image_folder(tmp_path)
    assert [path for path, _ in listing.samples] == [str(tmp_path / "a" / "good.png")]
    assert listing.special == [str(fifo)]


@pytest.mark.parametrize("kind", ["fifo", "zero"])
def test_corrupt_refuses_a_special_input_in_one_line_without_reading_it(tmp_path, kind):
    special = _special(tmp_path / "in.png", kind)
    proc = _i2sb("corrupt", "--task", "jpeg-10", special, "--out", tmp_path / "out", "--size", "16")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and str(special) in proc.stderr
    assert "not a regular file" in proc.stderr


def _rotated_jpeg(path: Path) -> Path:
    """Stored as 40 x 20 px, left red, right blue, tagged orientation 6 (turn 90 degrees clockwise):
    a viewer shows 20 x 40 px, red on top, blue below."""
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :20], pixels[:, 20:] = RED, BLUE
    exif = Image.Exif()
    exif[0x0112] = 6
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, "JPEG", quality=95, exif=exif)
    return path


def _red_on_top(image: Image.Image) -> bool:
    pixels = np.asarray(image.convert("RGB"), float)
    top, bottom = pixels[: pixels.shape[0] // 4], pixels[-pixels.shape[0] // 4 :]
    return top[..., 0].mean() > 200 > top[..., 2].mean() and bottom[..., 2].mean() > 200


def test_photos_are_read_upright_as_viewers_show_them(tmp_path):
    image = load_rgb(_rotated_jpeg(tmp_path / "p.jpg"))
    assert image.size == (20, 40) and _red_on_top(image)


def test_convert_stores_an_exif_rotated_photo_upright_for_every_reader(tmp_path, capsys):
    import lmdb

    _rotated_jpeg(tmp_path / "src" / "a" / "p.jpg")
    _photo(tmp_path / "src" / "a" / "plain.png")
    assert main(["data", "convert", "--src", str(tmp_path / "src"), "--split", "val",
                 "--out", str(tmp_path / "data"), "--workers", "0"]) == 0  # fmt: skip
    assert "1 photos with an EXIF orientation stored upright" in capsys.readouterr().out
    with lmdb.open(str(tmp_path / "data" / "val_faster_imagefolder.lmdb"), readonly=True,
                   lock=False) as env, env.begin() as txn:  # fmt: skip
        stored = txn.get(b"a/p.jpg")
        plain = txn.get(b"a/plain.png")
    with Image.open(io.BytesIO(stored)) as official:  # the reference reader ignores EXIF
        assert official.size == (20, 40) and _red_on_top(official)
    assert plain == (tmp_path / "src" / "a" / "plain.png").read_bytes()  # others byte-identical


def test_corrupt_degrades_the_upright_photo(tmp_path):
    photo = _rotated_jpeg(tmp_path / "p.jpg")
    assert main(["corrupt", "--task", "jpeg-10", str(photo), "--out", str(tmp_path / "out"),
                 "--size", "16"]) == 0  # fmt: skip
    with Image.open(tmp_path / "out" / "p_clean.png") as clean:
        assert _red_on_top(clean)


def test_a_failed_lmdb_write_names_the_lmdb_in_one_line(tmp_path):
    """Writes past RLIMIT_FSIZE fail as a full disk does; LMDB reports them as a bare I/O error."""
    for i in range(8):
        pixels = np.random.default_rng(i).integers(0, 256, (256, 256, 3), dtype=np.uint8)
        _photo(tmp_path / "src" / "a" / f"{i}.png")
        Image.fromarray(pixels).save(tmp_path / "src" / "a" / f"{i}.png")
    code = ("import resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
            "resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20)); "
            "from i2sb.cli import main; sys.exit(main(sys.argv[1:]))")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", code, "data", "convert", "--src", tmp_path / "src",
                           "--split", "val", "--out", tmp_path / "data", "--workers", "0",
                           "--batch-images", "2"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO)})  # fmt: skip
    errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert len(errors) == 1 and str(tmp_path / "data" / "val_faster_imagefolder.lmdb") in errors[0]
    assert "damaged" not in errors[0]


def test_restore_reads_the_photo_upright(tmp_path):
    from test_sample import make_run

    photo = _rotated_jpeg(tmp_path / "p.jpg")
    assert main(["restore", "--ckpt", str(make_run(tmp_path / "run")), "--nfe", "2",
                 "--keep-size", str(photo), "--out", str(tmp_path / "out")]) == 0  # fmt: skip
    with Image.open(tmp_path / "out" / "p_restored.png") as restored:
        assert restored.size == (20, 40)  # the viewer's shape, not the stored 40 x 20
