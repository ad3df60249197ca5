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
from i2sb.tracking.store import store_lock


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
