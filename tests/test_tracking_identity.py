"""Track and report never mix results of different identity, and a re-run report after a config
change shows only the runs of the current configuration."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_tracking_data import make_run, write_samples

from i2sb.cli import main
from i2sb.config import Config, TrackingConfig
from i2sb.tables import make_tables, make_tables_to
from i2sb.tracking import track_all


def _config(path, uri, artifacts, iterations):
    config = Config(benchmark="bench").to_dict()
    config["tracking"] |= {"uri": uri, "artifact_root": artifacts}
    config["train"]["iterations"] = iterations
    path.write_text(json.dumps(config))
    return path


def _runs(root, nfes):
    made = [make_run(root / "bench", task="sr4x-pool", nfe=nfe) for nfe in nfes]
    return [{"metrics": str(a["metrics_json"]), "train_dir": str(a["train_dir"]),
             "samples": str(a["samples"])} for a in made]  # fmt: skip


def test_a_report_after_a_config_change_shows_only_the_current_configurations_runs(
    tmp_path, capsys
):
    uri, artifacts = f"sqlite:///{tmp_path}/mlflow.db", str(tmp_path / "art")
    before = _config(tmp_path / "before.json", uri, artifacts, iterations=300)
    track_all(_runs(tmp_path, (5, 20)), before, tmp_path / "tracked_before.json")
    # The configuration changes: another training length, and NFE 20 is no longer asked for.
    after = _config(tmp_path / "after.json", uri, artifacts, iterations=600)
    track_all(_runs(tmp_path, (5,)), after, tmp_path / "tracked_after.json")

    tracking = TrackingConfig(uri=uri, artifact_root=artifacts)
    out = tmp_path / "tables"
    result = make_tables_to(
        tracking, "bench", out, out / "tables.json", ("sr4x-pool",), tmp_path / "tracked_after.json"
    )
    assert result["num_runs"] == 1
    table = (out / "nfe_psnr.csv").read_text().splitlines()
    assert table[0] == "task,sampler,degraded input,NFE 5"  # no NFE 20 row of the old config
    assert "600 training iterations" in (out / "report.md").read_text()
    # All runs of the experiment hold two configurations: refused, naming what differs.
    with pytest.raises(ValueError, match="differ in iterations: '600' .* vs '300'"):
        make_tables(uri, "bench", tmp_path / "all")
    argv = [
        "tables",
        "--tracking-uri",
        uri,
        "--experiment",
        "bench",
        "--out",
        str(tmp_path / "cli"),
    ]
    assert main(argv) == 1 and "differ in iterations" in capsys.readouterr().err
    assert main([*argv, "--tracked", str(tmp_path / "tracked_after.json")]) == 0
    assert "1 runs" in capsys.readouterr().out


def test_track_refuses_evaluations_of_one_task_made_from_different_data(tmp_path, capsys):
    uri, artifacts = f"sqlite:///{tmp_path}/mlflow.db", str(tmp_path / "art")
    config = _config(tmp_path / "config.json", uri, artifacts, iterations=300)
    runs = _runs(tmp_path, (5, 20))
    write_samples(Path(runs[1]["samples"]), "sr4x-pool", 20, n=6)  # scored on other images
    with pytest.raises(ValueError, match="task sr4x-pool differ in data_fingerprint"):
        track_all(runs, config, tmp_path / "tracked.json")
    assert not (tmp_path / "tracked.json").exists() and not (tmp_path / "mlflow.db").exists()


def test_editing_where_or_beside_what_runs_ran_keeps_their_ids(tmp_path):
    """Another NFE list or more partitions change no result: the runs stay, with the new value."""
    import mlflow

    uri, artifacts = f"sqlite:///{tmp_path}/mlflow.db", str(tmp_path / "art")
    config = _config(tmp_path / "config.json", uri, artifacts, iterations=300)
    runs = _runs(tmp_path, (5,))
    (first,) = track_all(runs, config, tmp_path / "tracked.json")
    edited = json.loads(config.read_text()) | {"nfe": [5, 10], "partitions": 4}
    config.write_text(json.dumps(edited))
    (second,) = track_all(runs, config, tmp_path / "tracked.json")
    assert second["run_id"] == first["run_id"] and second["replaced_run_id"] is None
    run = mlflow.MlflowClient(uri).get_run(first["run_id"])
    assert run.data.tags["config.nfe"] == "[5, 10]" and run.data.tags["config.partitions"] == "4"
    assert "config.nfe" not in run.data.params and run.data.params["config.train.iterations"]
    edited["train"]["iterations"] = 600  # what was measured changed: the run is replaced
    config.write_text(json.dumps(edited))
    (third,) = track_all(runs, config, tmp_path / "tracked.json")
    assert third["replaced_run_id"] == first["run_id"]
