"""`i2sb track` against a real MLflow sqlite store: one run per key, updated in place on a rerun."""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pytest
from PIL import Image
from test_tracking_data import DDPM, make_run, write_samples

from i2sb.atomic import this_host
from i2sb.cli import main
from i2sb.tracking import build_record, track
from i2sb.tracking.grid import PAD, write_sample_grid


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One sqlite store for the module (creating one costs ~3 s); tests use their own experiments."""
    root = tmp_path_factory.mktemp("mlflow")
    return {"uri": f"sqlite:///{root}/mlflow.db", "artifacts": str(root / "art")}


def _track(store, args, experiment, **kw):
    return track(
        **args,
        tracking_uri=store["uri"],
        experiment=experiment,
        artifact_root=store["artifacts"],
        **kw,
    )


def _runs(store, experiment_id):
    return mlflow.MlflowClient(store["uri"]).search_runs([experiment_id])


def test_a_run_holds_params_metrics_reasons_and_artifacts(store, tmp_path):
    args = make_run(tmp_path / "bench", task="inpaint-center", nfe=3)
    (args["samples"].parent / "trajectory.png").write_bytes(b"\x89PNG fake but present")
    out = _track(store, args, "contents", marker=tmp_path / "marker.json")
    assert json.loads((tmp_path / "marker.json").read_text())["run_id"] == out["run_id"]
    assert out["key"] == "bench/inpaint-center/i2sb/ddpm/nfe3"
    (run,) = _runs(store, out["experiment_id"])
    params, tags, metrics = run.data.params, run.data.tags, run.data.metrics
    assert params["config.train.lr"] == "5e-05" and params["task"] == "inpaint-center"
    assert params["nfe"] == "3" and params["mask_source"] == "center"
    assert len(params["data_fingerprint"]) == 64 and tags["git_commit"]
    assert (params["dataset_name"], params["dataset_kind"]) == ("demo photos", "demo")
    assert (params["dataset_eval_subset"], params["image_size"]) == ("full", "32")
    assert params["fid_reference_kind"] == "file"
    assert metrics["psnr"] == 21.5 and metrics["sampling_images_per_s"] == 5.0
    assert "fid" not in metrics and "ca" not in metrics
    assert tags["fid_unavailable_reason"] == "Inception weights unavailable offline"
    assert tags["i2sb.key"] == out["key"]
    client = mlflow.MlflowClient(store["uri"])
    listed = {
        a.path
        for d in ("eval", "config", "train", "samples")
        for a in client.list_artifacts(run.info.run_id, d)
    }
    assert listed == {
        "eval/metrics.json",
        "config/config.json",
        "samples/sample_grid.png",
        "samples/trajectory.png",
    }
    location = client.get_experiment(out["experiment_id"]).artifact_location
    assert location.startswith(f"file://{store['artifacts']}/contents")
    assert client.get_experiment(out["experiment_id"]).tags["mlflow.experimentKind"] == (
        "custom_model_development"
    )


def test_a_killed_tracks_staged_grid_is_removed_by_the_next_and_a_run_leaves_none(store, tmp_path):
    """The sample grid is staged beside the samples (not in /tmp, where a kill left it for good):
    a dead writer's staging folder is removed by the next track, which leaves nothing itself."""
    args = make_run(tmp_path / "bench")
    folder = args["samples"].parent
    before = set(folder.iterdir())
    dead = folder / f"sample_grid.tmp-{this_host()}-{2**22 + 1}"  # above Linux's pid_max
    dead.mkdir()
    (dead / "sample_grid.png").write_bytes(b"half written")
    out = _track(store, args, "staging")
    assert set(folder.iterdir()) == before
    listed = mlflow.MlflowClient(store["uri"]).list_artifacts(out["run_id"], "samples")
    assert [a.path for a in listed] == ["samples/sample_grid.png"]


def test_tracking_twice_leaves_one_run_without_duplicate_steps(store, tmp_path):
    args = make_run(tmp_path / "bench")
    first = _track(store, args, "twice")
    second = _track(store, args, "twice")
    assert second["run_id"] == first["run_id"] and second["replaced_run_id"] is None
    (run,) = _runs(store, first["experiment_id"])
    assert run.info.status == "FINISHED"
    client = mlflow.MlflowClient(store["uri"])
    training = client.get_experiment_by_name("twice/training")
    (trained,) = client.search_runs([training.experiment_id])
    steps = [m.step for m in client.get_metric_history(trained.info.run_id, "train_loss")]
    assert sorted(steps) == [10, 20, 30, 40, 50]


def test_the_evaluation_links_its_training_run_which_holds_curve_and_resolved_params(
    store, tmp_path
):
    args = make_run(tmp_path / "bench", task="sr4x-pool")
    out = _track(store, args, "linked")
    client = mlflow.MlflowClient(store["uri"])
    (run,) = _runs(store, out["experiment_id"])
    assert "train_loss" not in run.data.metrics  # the curve is the training run's
    trained = client.get_run(run.data.tags["i2sb.train_run_id"])
    training = client.get_experiment(trained.info.experiment_id)
    assert training.name == "linked/training"
    assert trained.data.tags["i2sb.key"] == "bench/sr4x-pool/train"
    assert trained.data.metrics["val_psnr"] == 20.0
    assert f"runs/{trained.info.run_id}" in run.data.tags["mlflow.note.content"]
    # Params hold what was used, not the config's "null = from the task table".
    for params in (run.data.params, trained.data.params):
        assert params["config.bridge.beta_max"] == "0.3"
        assert params["config.bridge.ot_ode"] == "false"
    # Real times: the training run spans its logged steps, the evaluation its files.
    assert (trained.info.start_time, trained.info.end_time) == (
        1_700_000_010_000,
        1_700_000_050_000,
    )
    assert run.info.start_time == int(args["samples"].stat().st_mtime * 1000)
    assert run.info.end_time == int(args["metrics_json"].stat().st_mtime * 1000)


def test_a_metric_that_becomes_available_is_added_and_its_reason_removed(store, tmp_path):
    first = _track(store, make_run(tmp_path / "bench"), "fid-later")
    second = _track(store, make_run(tmp_path / "bench", fid=42.0), "fid-later")
    assert second["run_id"] == first["run_id"]
    (run,) = _runs(store, first["experiment_id"])
    assert run.data.metrics["fid"] == 42.0
    assert "fid_unavailable_reason" not in run.data.tags


def test_a_changed_result_replaces_the_run_and_says_why(store, tmp_path):
    first = _track(store, make_run(tmp_path / "bench", psnr=20.0), "changed")
    second = _track(store, make_run(tmp_path / "bench", psnr=25.0), "changed")
    assert second["replaced_run_id"] == first["run_id"] != second["run_id"]
    (run,) = _runs(store, first["experiment_id"])
    assert run.data.metrics["psnr"] == 25.0
    assert run.data.tags["i2sb.replaces"] == first["run_id"]
    note = run.data.tags["mlflow.note.content"]
    assert note.startswith("Evaluation of bench/sr4x-pool/i2sb/ddpm/nfe5")  # the link stays
    assert f"Replaces run {first['run_id']}" in note
    assert "metric psnr at step 0 20.0 -> 25.0" in note
    third = _track(store, make_run(tmp_path / "bench", psnr=25.0), "changed")  # same: in place
    assert third["run_id"] == second["run_id"]
    (run,) = _runs(store, first["experiment_id"])
    assert run.data.tags["mlflow.note.content"] == note  # still says what it replaced


def test_a_rerun_that_measured_the_same_keeps_the_run_id(store, tmp_path, monkeypatch):
    """Resampling gives other timings and a new commit may be checked out: same run, updated."""
    import i2sb.tracking

    args = make_run(tmp_path / "bench")
    first = _track(store, args, "same")
    metrics = json.loads(args["metrics_json"].read_text())
    metrics["sampling"] = {"images_per_s": 9.0, "seconds_per_nfe": 0.02}
    args["metrics_json"].write_text(json.dumps(metrics))
    monkeypatch.setattr(i2sb.tracking, "git_commit", lambda directory: ("c0ffee", None))
    for _ in range(2):
        second = _track(store, args, "same")
        assert second["run_id"] == first["run_id"] and second["replaced_run_id"] is None
    client = mlflow.MlflowClient(store["uri"])
    (run,) = _runs(store, first["experiment_id"])
    assert run.data.metrics["sampling_images_per_s"] == 9.0 and run.data.metrics["psnr"] == 21.5
    assert run.data.tags["git_commit"] == "c0ffee"
    history = client.get_metric_history(run.info.run_id, "sampling_images_per_s")
    assert sorted(m.value for m in history) == [5.0, 9.0]  # logged once more, not per rerun
    deleted = client.search_runs([first["experiment_id"]], run_view_type=2)  # DELETED_ONLY
    assert deleted == []


def test_each_nfe_and_variant_has_its_own_run(store, tmp_path):
    one = _track(store, make_run(tmp_path / "bench", nfe=2), "keys")
    two = _track(store, make_run(tmp_path / "bench", nfe=4), "keys")
    other = _track(store, make_run(tmp_path / "bench", nfe=4), "keys", variant="ablation")
    assert len({one["run_id"], two["run_id"], other["run_id"]}) == 3
    assert other["key"] == "bench/sr4x-pool/ablation/ddpm/nfe4"


def test_the_store_holds_one_run_per_task_sampler_and_nfe(store, tmp_path):
    implicit = {"name": "implicit", "label": "implicit-eta0", "options": {"eta": 0.0}}
    keys = []
    for _ in range(2):  # a rerun updates the runs in place
        for task in ("sr4x-pool", "inpaint-center"):
            for sampler in (DDPM, implicit):
                for nfe in (2, 4):
                    args = make_run(tmp_path / "bench", task=task, nfe=nfe, sampler=sampler)
                    keys.append(_track(store, args, "grid")["key"])
    assert len(set(keys)) == 8 and "bench/inpaint-center/i2sb/implicit-eta0/nfe4" in keys
    runs = _runs(
        store, mlflow.MlflowClient(store["uri"]).get_experiment_by_name("grid").experiment_id
    )
    assert sorted(r.data.tags["i2sb.key"] for r in runs) == sorted(set(keys))
    params = {r.data.tags["i2sb.key"]: r.data.params for r in runs}
    chosen = params["bench/sr4x-pool/i2sb/implicit-eta0/nfe2"]
    assert (chosen["sampler"], chosen["sampler_name"]) == ("implicit-eta0", "implicit")
    assert json.loads(chosen["sampler_options"]) == {"eta": 0.0}


def test_samples_without_a_recorded_sampler_are_refused(store, tmp_path):
    args = make_run(tmp_path / "bench")
    write_samples(args["samples"], "sr4x-pool", 5, sampler=None)
    with pytest.raises(ValueError, match="records no sampler"):
        _track(store, args, "old")


def test_samples_of_another_task_are_refused(store, tmp_path):
    args = make_run(tmp_path / "bench", task="jpeg-5")
    args["samples"] = make_run(tmp_path / "other", task="jpeg-10")["samples"]
    with pytest.raises(ValueError, match="is for task='jpeg-10'"):
        _track(store, args, "mismatch")


def test_cli_reports_a_missing_file_without_traceback(store, tmp_path, capsys):
    args = make_run(tmp_path / "bench")
    code = main(
        [
            "track",
            "--metrics",
            str(tmp_path / "nope.json"),
            "--train-dir",
            str(args["train_dir"]),
            "--samples",
            str(args["samples"]),
            "--config",
            str(args["config_json"]),
            "--tracking-uri",
            store["uri"],
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and "nope.json does not exist" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_sample_grid_rows_are_clean_degraded_restored(tmp_path):
    args = make_run(tmp_path / "bench")
    columns = write_sample_grid(args["samples"], tmp_path / "grid.png")
    assert columns == ["clean", "degraded", "recon"]
    grid = np.asarray(Image.open(tmp_path / "grid.png"))
    size, arrays = 8, np.load(args["samples"])
    assert grid.shape == (8 * (size + PAD) - PAD, 3 * (size + PAD) - PAD, 3)
    for col, key in enumerate(columns):
        left = col * (size + PAD)
        top = 7 * (size + PAD)  # the eighth image, last row
        tile = grid[top : top + size, left : left + size]
        np.testing.assert_array_equal(tile, arrays[key][7].transpose(1, 2, 0))


def test_the_fingerprint_is_the_samples_record_not_a_file_of_the_results_layout(tmp_path):
    """The library builds no results path: an LMDB index where the workflow would put one is
    not read; the evaluation set sampling recorded in the samples' meta is."""
    args = make_run(tmp_path / "bench")
    config = json.loads(args["config_json"].read_text()) | {"results_dir": str(tmp_path)}
    inputs = (args["metrics_json"], args["train_dir"], args["samples"], config, "i2sb")
    before = build_record(*inputs).params
    index = tmp_path / "bench" / "data" / "val_faster_imagefolder.index.json"
    index.parent.mkdir(parents=True)
    index.write_text('{"entries": []}')
    assert build_record(*inputs).params["data_fingerprint"] == before["data_fingerprint"]
    other = {"data_fingerprint": {"images": 10, "sha256": "0" * 64}}
    write_samples(args["samples"], "sr4x-pool", 5, data=other)
    assert build_record(*inputs).params["data_fingerprint"] != before["data_fingerprint"]


def test_the_data_set_params_come_from_the_samples_meta(tmp_path):
    args = make_run(tmp_path / "bench")
    config = json.loads(args["config_json"].read_text())
    metrics = json.loads(args["metrics_json"].read_text())
    args["metrics_json"].write_text(json.dumps(metrics | {"dataset": None}))  # evaluated blind
    inputs = (args["metrics_json"], args["train_dir"], args["samples"], config, "i2sb")
    params = build_record(*inputs).params
    assert (params["dataset_name"], params["dataset_kind"]) == ("demo photos", "demo")


@pytest.mark.parametrize(
    ("recorded", "expected"),
    [
        ({"dataset": None}, "records no dataset description (meta 'dataset')"),
        ({"dataset": {"name": "image folder /x", "kind": "imagefolder"}}, "'demo photos'"),
    ],
)
def test_samples_without_or_with_another_data_set_are_refused(tmp_path, recorded, expected):
    args = make_run(tmp_path / "bench")
    write_samples(args["samples"], "sr4x-pool", 5, data=recorded)
    config = json.loads(args["config_json"].read_text())
    inputs = (args["metrics_json"], args["train_dir"], args["samples"], config, "i2sb")
    with pytest.raises(ValueError) as caught:
        build_record(*inputs)
    assert expected in str(caught.value) and "\n" not in str(caught.value)


def test_sample_grid_without_degraded_images_has_two_columns(tmp_path):
    write_samples(tmp_path / "s.npz", "jpeg-5", 2, n=3, degraded=False)
    assert write_sample_grid(tmp_path / "s.npz", tmp_path / "grid.png") == ["clean", "recon"]
    assert np.asarray(Image.open(tmp_path / "grid.png")).shape == (3 * 10 - PAD, 2 * 10 - PAD, 3)


def test_the_runs_page_opens_model_training_mode_with_the_key_columns(store, tmp_path):
    out = _track(store, make_run(tmp_path / "bench"), "view")
    assert out["runs_page"].startswith("http://127.0.0.1:5000/#/")  # `mlflow ui` on the sqlite file
    assert out["runs_page"].endswith(
        f"/#/experiments/{out['experiment_id']}/runs?workflowType=machine_learning"
        "&viewStateShareKey=i2sb"
    )
    tags = mlflow.MlflowClient(store["uri"]).get_experiment(out["experiment_id"]).tags
    view = json.loads(tags["mlflow.sharedViewState.i2sb"])
    assert {"metrics.`psnr`", "metrics.`fid`", "metrics.`nfe`", "params.`sampler`"} <= set(
        view["selectedColumns"]
    )
    assert view["orderByKey"] == "metrics.`nfe`"
    (run,) = _runs(store, out["experiment_id"])
    assert run.data.metrics["nfe"] == 5.0  # a number: the table sorts 5 before 20


def test_a_runs_view_lost_to_a_concurrent_writer_is_set_again():
    """MLflow's SQL store answers a concurrent first set of one tag with a unique-constraint error."""
    from mlflow.exceptions import MlflowException

    from i2sb.tracking.ui import set_runs_view

    class Client:
        def __init__(self, failures):
            self.failures, self.tags = list(failures), {}

        def set_experiment_tag(self, experiment_id, key, value):
            if self.failures:
                raise self.failures.pop(0)
            self.tags[key] = value

    race = MlflowException(
        "(sqlite3.IntegrityError) UNIQUE constraint failed: experiment_tags.key", "BAD_REQUEST"
    )
    client = Client([race])
    set_runs_view(client, "1", ("params.`task`",), "params.`task`")
    assert json.loads(client.tags["mlflow.sharedViewState.i2sb"])["selectedColumns"] == [
        "params.`task`"
    ]
    with pytest.raises(MlflowException, match="permission"):
        set_runs_view(Client([MlflowException("no permission")]), "1", (), "x")
    with pytest.raises(MlflowException, match="UNIQUE"):
        set_runs_view(Client([race, race, race]), "1", (), "x")


@pytest.mark.parametrize(
    ("uri", "page", "served_by"),
    [("https://mlflow.example.org:8443/", "https://mlflow.example.org:8443/#/experiments/7/", ""),
     ("http://10.0.0.5:5001", "http://10.0.0.5:5001/#/experiments/7/", ""),
     ("sqlite:///results/mlflow.db", "http://127.0.0.1:5000/#/experiments/7/",
      "mlflow ui --backend-store-uri sqlite:///results/mlflow.db")],
)  # fmt: skip
def test_the_runs_link_is_built_from_the_tracking_uri(uri, page, served_by):
    from i2sb.tracking.ui import runs_page, ui_command

    assert runs_page("7", uri).startswith(page)
    assert ui_command(uri).startswith(served_by) and bool(ui_command(uri)) == bool(served_by)


def test_deleting_a_run_tolerates_only_one_already_deleted(store):
    from mlflow.exceptions import MlflowException

    from i2sb.tracking.store import delete_run

    client = mlflow.MlflowClient(store["uri"])
    experiment = client.create_experiment("deletions")
    run_id = client.create_run(experiment).info.run_id
    delete_run(client, run_id)
    delete_run(client, run_id)  # another writer's settle got there first: fine
    assert client.get_run(run_id).info.lifecycle_stage == "deleted"

    class Refusing:  # an authentication or network failure is not swallowed
        def delete_run(self, run_id):
            raise MlflowException("401 Unauthorized", "PERMISSION_DENIED")

        def get_run(self, run_id):
            return client.get_run(active)

    active = client.create_run(experiment).info.run_id
    with pytest.raises(MlflowException, match="Unauthorized"):
        delete_run(Refusing(), active)
