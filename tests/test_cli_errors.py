"""Errors a user can fix end in one line naming the file and what to do; --debug keeps the traceback."""

import errno
import pickle

import numpy as np
import pytest
from PIL import Image
from test_sample import make_run

from i2sb.cli import main
from i2sb.cli._errors import describe


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def photo(path):
    Image.fromarray(np.full((40, 40, 3), 90, np.uint8)).save(path)
    return str(path)


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"", "is empty or truncated"),
        (pickle.dumps({"net": object()}), "holds Python objects, not only tensors"),
        (b"hello, not a checkpoint\n", "is not a PyTorch checkpoint of weights"),
    ],
    ids=["empty", "pickled-object", "text"],
)
def test_an_empty_or_foreign_checkpoint_is_one_line(tmp_path, capsys, content, expected):
    run = make_run(tmp_path / "run")
    (run / "latest.pt").write_bytes(content)
    argv = ["restore", "--ckpt", str(run), "--nfe", "2", photo(tmp_path / "a.png"), "--out", "o"]
    assert main(argv) == 1
    line = error_line(capsys)
    assert f"{run / 'latest.pt'}" in line and expected in line
    assert "weights_only" not in line  # torch's advice to run the file's code is not repeated


def test_debug_keeps_the_traceback(tmp_path):
    run = make_run(tmp_path / "run")
    (run / "latest.pt").write_bytes(b"")
    argv = ["restore", "--ckpt", str(run), "--nfe", "2", photo(tmp_path / "a.png"), "--out", "o"]
    with pytest.raises(RuntimeError, match="empty or truncated"):
        main([*argv, "--debug"])


def test_an_output_under_a_file_is_one_line_naming_it(tmp_path, capsys):
    (tmp_path / "blocker").write_text("a file where a folder is expected")
    assert main(["data", "demo", str(tmp_path / "blocker" / "photos"), "--classes", "1",
                 "--train-per-class", "1", "--val-per-class", "1"]) == 1  # fmt: skip
    assert "blocker" in error_line(capsys)


def test_a_truncated_lmdb_is_one_line_saying_what_to_do(tmp_path, capsys):
    source = tmp_path / "src" / "cls"
    source.mkdir(parents=True)
    photo(source / "a.png")
    argv = ["data", "convert", "--src", str(tmp_path / "src"), "--split", "val",
            "--out", str(tmp_path / "data"), "--workers", "0"]  # fmt: skip
    assert main(argv) == 0
    data_mdb = tmp_path / "data" / "val_faster_imagefolder.lmdb" / "data.mdb"
    data_mdb.write_bytes(data_mdb.read_bytes()[:100])
    capsys.readouterr()
    assert main(argv) == 1
    line = error_line(capsys)
    assert "LMDB" in line and "copy it again or rerun `i2sb data convert`" in line


def test_a_decompression_bomb_is_one_line_naming_the_image(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 40x40 > 2 x 100 pixels: a "bomb"
    bomb = photo(tmp_path / "bomb.png")
    assert main(["corrupt", "--task", "jpeg-10", bomb, "--out", str(tmp_path / "o")]) == 1
    line = error_line(capsys)
    assert "bomb.png" in line and "decompression bomb" in line


@pytest.mark.parametrize(
    "err, expected",
    [
        (PermissionError(errno.EACCES, "Permission denied", "/ro/out.npz"),
         "/ro/out.npz: Permission denied: choose a folder you can write to"),
        (OSError(errno.ENOSPC, "No space left on device", "/full/latest.pt"),
         "/full/latest.pt: No space left on device: free disk space"),
        (EOFError("Ran out of input"), "ended early"),
        (TypeError("'<' not supported between 'str' and 'int'"), "rerun with --debug"),
        (ZeroDivisionError("a bug"), None),
    ],
)  # fmt: skip
def test_system_errors_map_to_a_sentence_and_bugs_keep_their_traceback(err, expected):
    message = describe(err)
    assert message is None if expected is None else expected in message


def test_an_mlflow_rest_error_is_one_line():
    from mlflow.exceptions import RestException

    err = RestException(
        {"error_code": "RESOURCE_ALREADY_EXISTS", "message": "Experiment 'x' exists"}
    )
    message = describe(err)
    assert message.startswith("MLflow: RESOURCE_ALREADY_EXISTS") and "tracking.uri" in message
