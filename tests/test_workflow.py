"""The Snakemake workflow: planning the full benchmark, targeted runs, lint, and the tiny DAG end to end."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from i2sb.data.build import DEMO_DATA_NAME

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def snakemake(
    *args: str, timeout: int = 600, env: dict | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*SNAKEMAKE, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout, env=env
    )


def job_counts(output: str) -> dict[str, int]:
    table = output[output.index("Job stats:") :]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


@pytest.fixture
def imagenet_root(tmp_path):
    """An (empty) ImageNet-style folder: planning needs data.root to exist, not its images."""
    for split in ("train", "val"):
        (tmp_path / "imagenet" / split / "n01440764").mkdir(parents=True)
    return f"data={{root: {tmp_path / 'imagenet'}}}"


def test_full_benchmark_plans_every_partition_as_its_own_job(tmp_path, imagenet_root):
    proc = snakemake("-n", "--cores", "8", "--configfile", "config/benchmark.yaml",
                     "--config", f"results_dir={tmp_path}", "partitions=8", imagenet_root)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    counts = job_counts(proc.stdout)
    assert counts["train"] == 9 and counts["sample"] == 72 and counts["gather"] == 9
    assert counts["evaluate"] == 9 and counts["track"] == 1 and counts["report"] == 1


def test_reproduce_plans_downloads_and_sampling_without_training(tmp_path, imagenet_root):
    """config/reproduce.yaml: the paper's tables from the nine published checkpoints.

    How long planning takes is a figure of benchmarks/bench_plan.py, not a test."""
    proc = snakemake("-n", "--cores", "8", "--configfile", "config/reproduce.yaml",
                     "--config", f"results_dir={tmp_path}", imagenet_root)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    counts = job_counts(proc.stdout)
    assert counts["download_checkpoint"] == 9 and "train" not in counts
    # ddpm: 9 tasks x NFE 999/100/50/20/10/5; implicit: 9 x 5/10/20/50; cddb: the 4 tasks where it
    # differs from ddpm x 10/20/50 (not jpeg-*: no operator; not inpaint-*: ddpm's images exactly);
    # dbim (order 2): 9 x 5/10/20
    evaluations = 9 * 6 + 9 * 4 + 4 * 3 + 9 * 3
    assert counts["sample"] == evaluations * 8 and counts["evaluate"] == evaluations
    # spec §7 references and the evaluation sets as DAG inputs; only the val split is converted
    assert counts["download_fid_reference"] == 1 and counts["fid_val_stats"] == 1
    assert counts["download_subset_lists"] == 1 and counts["convert_lmdb"] == 1
    logs = set(re.findall(r"logs/sample/(\S+)\.log", proc.stdout))
    for task, sampler, nfe in [("sr4x-pool", "ddpm", 999), ("jpeg-5", "ddpm", 100),
                               ("inpaint-center", "ddpm", 10), ("jpeg-10", "implicit-eta0", 20),
                               ("blur-uni", "cddb-lam1", 50)]:  # fmt: skip
        assert {f"{task}_{sampler}_nfe{nfe}_{i}_8" for i in range(8)} <= logs
    assert not any(log.startswith(("jpeg-", "inpaint-")) and "_cddb" in log for log in logs)
    tasks = ["sr4x-pool", "sr4x-bicubic", "jpeg-5", "jpeg-10", "blur-uni", "blur-gauss",
             "inpaint-center", "inpaint-freeform1020", "inpaint-freeform2030"]  # fmt: skip
    dbim = {log.rsplit("_", 2)[0] for log in logs if "_dbim-" in log}
    assert dbim == {f"{task}_dbim-o2_nfe{nfe}" for task in tasks for nfe in (5, 10, 20)}
    for nfe in (5, 10, 20):  # beside ddpm and implicit at the same NFE, on every task
        assert {
            f"{task}_{s}_nfe{nfe}_0_8" for task in tasks for s in ("ddpm", "implicit-eta0")
        } <= logs
    assert not any("implicit-eta0_nfe999" in log for log in logs)


def test_one_task_by_config_override(tmp_path, imagenet_root):
    proc = snakemake("-n", "--cores", "8", "--configfile", "config/benchmark.yaml",
                     "--config", f"results_dir={tmp_path}", "tasks=[jpeg-5]", imagenet_root)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    counts = job_counts(proc.stdout)
    assert counts["train"] == 1 and counts["sample"] == 8


def test_cddb_without_tasks_is_planned_only_where_it_differs_and_planning_says_so(tmp_path):
    """jpeg-10 (no operator) and inpaint-center (ddpm's images exactly) get no cddb job, and one
    line of the plan names them; sr4x-pool gets its cddb job."""
    proc = snakemake("-n", "--cores", "1", "--config", f"results_dir={tmp_path}", "nfe=[5]",
                     "tasks=[sr4x-pool,jpeg-10,inpaint-center]",
                     "samplers=[{name: ddpm}, {name: cddb}]")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    logs = set(re.findall(r"logs/gather/(\S+)\.log", proc.stdout))
    assert {log for log in logs if "cddb" in log} == {"sr4x-pool_cddb-lam1_nfe5"}
    (line,) = [line for line in proc.stderr.splitlines() if line.startswith("samplers[1]")]
    assert "not planned on jpeg-10: no differentiable forward operator" in line
    assert "inpaint-center: ddpm's images exactly" in line


def test_a_placeholder_data_root_stops_planning_and_names_the_key(tmp_path):
    # config/benchmark.yaml ships data.root: /path/to/imagenet
    proc = snakemake("-n", "--cores", "1", "--configfile", "config/benchmark.yaml",
                     "--config", f"results_dir={tmp_path}")  # fmt: skip
    assert proc.returncode != 0
    assert "data.root: /path/to/imagenet is not a folder" in proc.stdout + proc.stderr
    assert not any(tmp_path.iterdir())  # nothing planned, nothing written


def test_a_bad_config_value_stops_planning_and_names_the_key(tmp_path):
    proc = snakemake(
        "-n", "--cores", "1", "--config", f"results_dir={tmp_path}", "train={lr: fast}"
    )
    assert proc.returncode != 0
    assert "train.lr" in proc.stdout + proc.stderr


def test_planning_writes_no_file(tmp_path):
    results = tmp_path / "results"
    proc = snakemake("-n", "--cores", "2", "--config", f"results_dir={results}")
    assert proc.returncode == 0, proc.stderr
    assert "resolved_config" in proc.stdout  # the config file is a job's output, not a side effect
    assert not results.exists(), sorted(str(p) for p in results.rglob("*"))


def test_lint_is_clean():
    proc = snakemake("--lint")
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    overrides = [f"results_dir={results}",
                 f"tracking={{uri: 'sqlite:///{results}/mlflow.db', artifact_root: '{results}/art'}}"]  # fmt: skip
    # An empty TORCH_HOME: no Inception/ResNet-50 weights, so FID and CA must say why they are missing.
    env = os.environ | {"TORCH_HOME": str(results / "torch-home")}
    proc = snakemake("--cores", "2", "--configfile", "config/tiny.yaml", "--config", *overrides,
                     env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return results / "tiny", overrides


def test_tiny_pipeline_runs_every_stage(tiny_run):
    run, _ = tiny_run
    assert (run / "data" / "train_faster_imagefolder.index.json").is_file()
    assert (run / "train" / "sr4x-pool" / "latest.pt").is_file()
    # the sampler is a dimension of the DAG: config.yaml's ddpm and implicit (eta 0), tiny inherits them
    for sampler in ("ddpm", "implicit-eta0"):
        parts = (run / "samples" / "sr4x-pool" / sampler / "nfe2").glob("part_*")
        assert sorted(p.name for p in parts) == ["part_0_2.npz", "part_1_2.npz"]
    metrics = json.loads(
        (run / "eval" / "sr4x-pool" / "ddpm" / "nfe2" / "metrics.json").read_text()
    )
    assert metrics["sampler"] == {"name": "ddpm", "label": "ddpm", "options": {}}
    assert metrics["num_images"] == 6  # 2 classes x 3 validation images
    assert metrics["metrics"]["psnr"]["value"] > 5
    fid = metrics["metrics"]["fid"]
    assert fid["value"] is None and "weights" in fid["reason"]  # offline: a reason, never a number
    tables = json.loads((run / "tables" / "tables.json").read_text())
    assert tables["num_runs"] == 2  # one MLflow run per (task, sampler, NFE)
    superres = (run / "tables" / "table_superres.md").read_text()
    assert superres.count("–") > 0 and f"{DEMO_DATA_NAME}, 32 px, 6 images" in superres
    assert "ImageNet" not in (run / "tables" / "report.md").read_text()


def test_tiny_pipeline_rerun_does_nothing_and_retracking_keeps_one_run(tiny_run):
    run, overrides = tiny_run
    proc = snakemake("--cores", "2", "--configfile", "config/tiny.yaml", "--config", *overrides)
    assert proc.returncode == 0 and "Nothing to be done" in proc.stdout + proc.stderr
    proc = snakemake("--cores", "2", "--configfile", "config/tiny.yaml", "--config", *overrides,
                     "--forcerun", "track")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    tables = json.loads((run / "tables" / "tables.json").read_text())
    assert tables["num_runs"] == 2  # one MLflow run per (task, sampler, NFE)


def test_published_checkpoints_run_to_mlflow_and_tables_without_training(tmp_path):
    """checkpoints.source: published on CPU: a fake published folder (tests/fake_published.py,
    made as the reference makes its own) is checked, sampled, evaluated, tracked and tabled."""
    from fake_published import make_published_folder

    make_published_folder(tmp_path / "ckpt" / "sr4x-pool")
    results = tmp_path / "results"
    proc = snakemake("--cores", "2", "--configfile", "config/tiny.yaml", "--config",
                     f"results_dir={results}", "partitions=1",
                     f"tracking={{uri: 'sqlite:///{results}/mlflow.db', artifact_root: '{results}/art'}}",
                     f"checkpoints={{source: published, dir: {tmp_path / 'ckpt'}}}")  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run = results / "tiny"
    assert not (run / "train").exists()  # nothing was trained
    record = json.loads((run / "downloads" / "checkpoint_sr4x-pool.json").read_text())
    assert record["source"] == "pre-placed" and record["image_size"] == 32
    part = run / "samples" / "sr4x-pool" / "ddpm" / "nfe2" / "samples.npz"
    meta = json.loads(str(np.load(part)["meta"][()]))
    assert meta["checkpoint"] == str(tmp_path / "ckpt" / "sr4x-pool")
    tables = json.loads((run / "tables" / "tables.json").read_text())
    assert tables["num_runs"] == 2  # ddpm and implicit-eta0
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{results}/mlflow.db")
    experiment = client.get_experiment_by_name("tiny").experiment_id
    (found,) = client.search_runs([experiment], "params.nfe = '2' and params.sampler = 'ddpm'")
    assert found.data.params["config.checkpoints.source"] == "published"
    assert found.data.params["checkpoint"] == str(tmp_path / "ckpt" / "sr4x-pool")
    assert found.data.tags["train_run_unavailable_reason"].startswith(
        "not trained here: the published"
    )


def test_tiny_pipeline_logs_hold_the_story(tiny_run):
    run, _ = tiny_run
    logs = sorted(p for p in (run / "logs").rglob("*") if p.is_file())
    assert (
        len(logs) >= 9
    )  # one per job: photos, 2 conversions, train, 2 parts, gather, evaluate, ...
    assert not [str(p) for p in logs if p.stat().st_size == 0]
    train_log = (run / "logs" / "train" / "sr4x-pool.log").read_text()
    assert "command: " in train_log and "resolved settings: " in train_log
    # config/tiny.yaml: 4 iterations, log_every 1
    lines = re.findall(
        r"train sr4x-pool: iteration (\d)/4, loss [\d.]+, lr \S+, [\d.]+ it/s, ETA ", train_log
    )
    assert lines == ["1", "2", "3", "4"]
    part_logs = [p.read_text() for p in (run / "logs" / "sample").rglob("*1_2.log")]
    assert part_logs  # one per sampler
    for part_log in part_logs:
        assert '"rule": "sample"' in part_log and "rule sample done in" in part_log
        assert re.search(r"sample sr4x-pool (\S+ )?nfe2 part 1/2 .*100%", part_log)


def test_tiny_pipeline_trains_live_into_mlflow_and_links_the_evaluation(tiny_run):
    """tracking.live (default on): the train job logs its run while it trains; track links to it."""
    import mlflow

    run, _ = tiny_run
    client = mlflow.MlflowClient(f"sqlite:///{run.parent}/mlflow.db")
    training = client.get_experiment_by_name("tiny/training")
    (trained,) = client.search_runs([training.experiment_id])
    steps = [m.step for m in client.get_metric_history(trained.info.run_id, "train_loss")]
    assert steps == [1, 2, 3, 4]  # config/tiny.yaml: 4 iterations, log_every 1
    assert trained.data.params["config.bridge.beta_max"] == "0.3"
    assert trained.data.tags["mlflow.loggedImages"]  # validation grids logged live by the job
    (evaluation, *_) = client.search_runs([client.get_experiment_by_name("tiny").experiment_id])
    assert evaluation.data.tags["i2sb.train_run_id"] == trained.info.run_id
    tracked = json.loads((run / "tracking" / "tracked.json").read_text())
    assert "workflowType=machine_learning" in tracked["runs_page"]
