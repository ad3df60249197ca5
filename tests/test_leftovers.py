"""Nothing left behind or overwritten (issue 14 item 7): gather onto a part, unbounded demo images,
tables of an experiment that has no runs, MLflow store folders created without a word."""

import numpy as np
import pytest
from test_tracking_data import make_run

from i2sb.cli import main
from i2sb.data.demo import make_demo_images
from i2sb.sample.gather import gather_parts
from i2sb.sample.parts import Part, write_part
from i2sb.tracking import track
from i2sb.tracking.transport import store_lock


def test_gather_refuses_an_output_that_is_one_of_its_parts(tmp_path):
    pixels = np.zeros((2, 3, 8, 8), np.uint8)
    meta = {"task": "jpeg-5", "nfe": 1, "checkpoint": "c", "total": 2, "partition": [0, 1]}
    part = write_part(
        tmp_path / "part_0_1.npz", Part(pixels, pixels, np.arange(2), np.arange(2), meta)
    )
    before = part.read_bytes()
    with pytest.raises(ValueError, match="is one of the part files"):
        gather_parts([part], tmp_path / "." / "part_0_1.npz")
    assert part.read_bytes() == before


@pytest.mark.parametrize(
    "kwargs, message",
    [({"size": 100_000}, "at most 1024 px"), ({"train_per_class": 10**7}, "at most 10000")],
)
def test_demo_images_are_bounded_before_any_work(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_demo_images(tmp_path / "photos", **kwargs)
    assert not (tmp_path / "photos").exists()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    uri = f"sqlite:///{root}/mlflow.db"
    track(**make_run(root / "bench", task="jpeg-5", nfe=5), tracking_uri=uri,
          artifact_root=str(root / "art"))  # fmt: skip
    return uri, root


@pytest.mark.parametrize("experiment, state", [("bnech", "does not exist"),
                                               ("empty", "has no evaluation runs")])  # fmt: skip
def test_tables_of_a_misspelt_or_empty_experiment_is_an_error_naming_those_with_runs(
    store, tmp_path, capsys, experiment, state
):
    import mlflow

    uri, _ = store
    if experiment == "empty":
        mlflow.MlflowClient(uri).create_experiment("empty")
    argv = [
        "tables",
        "--tracking-uri",
        uri,
        "--experiment",
        experiment,
        "--out",
        str(tmp_path / "t"),
    ]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert f"{experiment!r} at {uri} {state}; experiments with evaluation runs: bench" in err
    assert not (tmp_path / "t").exists()


def test_tables_do_not_create_a_missing_sqlite_store(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path}/nowhere/mlflow.db"
    assert (
        main(["tables", "--tracking-uri", uri, "--experiment", "x", "--out", str(tmp_path / "t")])
        == 1
    )
    assert "no MLflow store at" in capsys.readouterr().err and not (tmp_path / "nowhere").exists()


def test_a_store_folder_is_created_only_with_a_line_saying_where(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path}/new/folder/mlflow.db"
    with store_lock(uri):
        pass
    assert (
        f"creating folder {tmp_path / 'new' / 'folder'} for the MLflow store"
        in capsys.readouterr().err
    )


# --- issue 22 §5: a write killed mid-way leaves a temporary that the next run of the same command
# removes; a leftover of a process still running is kept; a failed write names its file.
KILLED_WRITE = """
import os, signal, sys
from i2sb.atomic import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    tmp.write_bytes(b"half written")
    os.kill(os.getpid(), signal.SIGKILL)
"""


def killed_write(path):
    """Write ``path`` in a child killed by SIGKILL before its rename; returns the leftover."""
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-c", KILLED_WRITE, str(path)], timeout=60,
                          env={"PYTHONPATH": str(repo), "PATH": "/usr/bin:/bin"})  # fmt: skip
    assert proc.returncode == -9
    (leftover,) = path.parent.glob(f"{path.stem}.tmp-*{path.suffix}")
    return leftover


def _gathered_parts(tmp_path):
    pixels = np.zeros((2, 3, 8, 8), np.uint8)
    meta = {"task": "jpeg-5", "nfe": 1, "checkpoint": "c", "total": 2, "partition": [0, 1]}
    return write_part(tmp_path / "parts" / "part_0_1.npz",
                      Part(pixels, pixels, np.arange(2), np.arange(2), meta))  # fmt: skip


def test_gather_after_a_kill_mid_write_removes_the_leftover(tmp_path, capsys):
    part = _gathered_parts(tmp_path)
    leftover = killed_write(tmp_path / "samples.npz")
    assert main(["gather", str(part), "--out", str(tmp_path / "samples.npz")]) == 0
    assert not leftover.exists() and (tmp_path / "samples.npz").is_file()
    assert f"removing {leftover}: left behind by an interrupted write" in capsys.readouterr().err


def test_demo_after_a_kill_mid_build_removes_the_half_built_folder(tmp_path, capsys):
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    half = tmp_path / f".photos.tmp-{dead}"
    (half / "train" / "astronaut").mkdir(parents=True)
    (half / "train" / "astronaut" / "astronaut_0000.png").write_bytes(b"half")
    make_demo_images(tmp_path / "photos", classes=1, train_per_class=1, val_per_class=1, size=8)
    assert not half.exists() and (tmp_path / "photos" / "demo.json").is_file()
    assert f"removing {half}" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["metrics.json", "report.md", "tracked.json",
                                  "val_faster_imagefolder.lmdb.pt", "index"])  # fmt: skip
def test_every_atomic_write_removes_its_own_leftovers_only(tmp_path, name):
    from i2sb.atomic import write_text

    leftover = killed_write(tmp_path / name)
    other = killed_write(tmp_path / "other.json")  # another file's: not this write's business
    write_text(tmp_path / name, "done\n")
    assert not leftover.exists() and other.exists()
    assert (tmp_path / name).read_text() == "done\n"


def test_a_leftover_of_a_process_still_running_is_kept(tmp_path):
    import os

    from i2sb.atomic import write_text

    alive = tmp_path / f"metrics.tmp-{os.getppid()}.json"  # e.g. a concurrent writer of a cache
    alive.write_text("being written")
    dead = tmp_path / f"metrics.tmp-{2**22 + 1}.json"  # above Linux's pid_max: never running
    dead.write_text("interrupted")
    write_text(tmp_path / "metrics.json", "{}\n")
    assert alive.exists() and not dead.exists()  # the same kind of name goes when its pid is dead


def test_a_disk_full_write_names_the_file_in_one_line(tmp_path, monkeypatch, capsys):
    from pathlib import Path

    def onto_a_full_disk(self, text, *args, **kwargs):
        with open("/dev/full", "w") as handle:  # a real ENOSPC, raised on flush
            handle.write(text)

    monkeypatch.setattr(Path, "write_text", onto_a_full_disk)
    argv = ["slurm-profile", "--account", "a", "--partition", "p", "--out", str(tmp_path / "p")]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(tmp_path / "p" / "config.yaml") in err
    assert "No space left on device" in err and "free disk space" in err
    assert not list((tmp_path / "p").glob("*.tmp-*"))


def test_another_machine_s_leftover_goes_only_once_nothing_writes_to_it(tmp_path):
    """On a shared file system a pid says nothing about another node's process: its temporary is
    kept while it is being written (a concurrent writer of a shared cache), removed when idle."""
    import os
    import time

    from i2sb.atomic import ELSEWHERE_STALE_S, write_text

    busy = tmp_path / "fingerprint.tmp-othernode-1.json"
    idle = tmp_path / "fingerprint.tmp-othernode-2.json"
    for path in (busy, idle):
        path.write_text("being written elsewhere")
    old = time.time() - ELSEWHERE_STALE_S - 60
    os.utime(idle, (old, old))
    write_text(tmp_path / "fingerprint.json", "{}\n")
    assert busy.exists() and not idle.exists()
