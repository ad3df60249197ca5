"""What Snakemake reruns: a change to any input reruns exactly the jobs that read it.

One finished tiny run (trained, one partition, ddpm only) is built once in a working folder of its
own, with relative paths; each case copies that folder (so without Snakemake's .snakemake/
metadata unless the case keeps it), changes one thing, and reads the plan of `snakemake -n`.
The results folder's name holds a space, a quote and $(...): every case also checks that no
path reaches a shell unquoted.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
RESULTS = "res 'q $(touch pwned)"  # a results_dir a shell would split, unquote and execute
RUN = f"{RESULTS}/tiny"
# Every config change rewrites the whole resolved config (RUN/config.json), which track records.
RECORDS = {"config_slice", "resolved_config", "track", "report", "all"}
AFTER_SAMPLING = {"sample", "gather", "evaluate"} | RECORDS
AFTER_TRAINING = {"train", "checkpoint_record"} | AFTER_SAMPLING


def snakemake(work: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), *args],
        cwd=work, capture_output=True, text=True, timeout=900, env=env,
    )  # fmt: skip


def planned(where: tuple[Path, dict], *config: str) -> set[str]:
    """The rules `snakemake -n` would run in the working folder ``where`` = (folder, environment),
    with ``config`` overrides (set() for "Nothing to be done")."""
    work, env = where
    args = ["-n", "--cores", "2", "--configfile", "config/tiny.yaml", "case.yaml"]
    proc = snakemake(work, *args, *(["--config", *config] if config else []), env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    if "Nothing to be done" in proc.stdout + proc.stderr:
        return set()
    table = proc.stdout[proc.stdout.index("Job stats:") :]
    return {m[1] for m in re.finditer(r"^(\w+)\s+\d+$", table, re.M)} - {"total"}


def swap_older_file_in(path: Path) -> None:
    """Replace ``path`` by another file of the same size dated a day earlier, as `mv` or `cp -p` of
    an older file leaves it: its mtime is older than every output, so only its identity tells."""
    stat = path.stat()
    other = path.with_name("swapped.tmp")
    shutil.copyfile(path, other)
    os.replace(other, path)
    day = 86400 * 10**9
    os.utime(path, ns=(stat.st_atime_ns - day, stat.st_mtime_ns - day))


def _listing(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in sorted(folder.rglob("*"))}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A working folder holding one finished tiny run, its MLflow store and its .snakemake/."""
    work = tmp_path_factory.mktemp("work")
    (work / "config").symlink_to(REPO / "config")  # the Snakefile's configfile: config/config.yaml
    (work / "case.yaml").write_text(
        json.dumps({"results_dir": RESULTS, "partitions": 1, "samplers": [{"name": "ddpm"}]})
    )
    env = os.environ | {"TORCH_HOME": str(work / "torch-home"), "I2SB_CACHE": str(work / "cache")}
    proc = snakemake(work, "--cores", "2", "--configfile", "config/tiny.yaml", "case.yaml", env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert not list(work.rglob("pwned"))  # the train rule's shell command quoted every path
    made = {p.name for p in work.iterdir()}  # nothing beside the run, MLflow's store and caches
    assert made <= {"config", "case.yaml", RESULTS, "results", "torch-home", "cache", ".snakemake"}
    assert (work / RUN / "tables" / "tables.json").is_file()
    return work, env


@pytest.fixture
def case(finished, tmp_path):
    """A copy of the finished working folder without .snakemake/ (another folder, a fresh clone)."""
    work, env = finished
    copy = tmp_path / "work"
    shutil.copytree(work, copy, symlinks=True, ignore=shutil.ignore_patterns(".snakemake"))
    return copy, env


def test_a_finished_run_plans_nothing_with_and_without_metadata(finished, case):
    assert planned(finished) == set()
    assert planned(case) == set()


@pytest.mark.parametrize(
    ("change", "reruns"),
    [
        ("sample={seed: 7}", AFTER_SAMPLING),
        ("sample={batch_size: 2}", AFTER_SAMPLING),  # read by sample (images unchanged)
        ("train={iterations: 3}", AFTER_TRAINING),
        ("train={resources: {mem_mb: 9000}}", RECORDS),  # where a job runs, not what it makes
        ("network={use_checkpoint: true}", AFTER_TRAINING),
        ("bridge={t0: 0.0002}", AFTER_TRAINING),
        ("data={max_eval_images: 4}", AFTER_SAMPLING),
        ("data={demo: {seed: 1}}", AFTER_TRAINING | {"demo_photos", "convert_lmdb"}),
        ("evaluate={metrics: [psnr, ssim]}", {"evaluate"} | RECORDS),
        ("tracking={experiment: other}", RECORDS),
    ],
)
def test_a_config_change_reruns_exactly_the_jobs_reading_it(case, change, reruns):
    assert planned(case, change) == reruns


def test_a_changed_training_setting_retrains_afresh_when_run(case):
    """Planned is not enough: the train job that reruns because train.lr changed must train under
    the new value from scratch (i2sb train --restart-changed), not stop at the old latest.pt."""
    work, env = case
    args = ["--cores", "2", "--configfile", "config/tiny.yaml", "case.yaml"]
    target = f"{RUN}/train/sr4x-pool/summary.json"  # the train job is what this checks
    proc = snakemake(work, target, *args, "--config", "train={lr: 0.0002}", env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    log = (work / RUN / "logs" / "train" / "sr4x-pool.log").read_text()
    assert "trained with config.train.lr=0.0005" in log and "training afresh" in log
    options = json.loads((work / RUN / "train" / "sr4x-pool" / "options.json").read_text())
    assert options["config"]["train"]["lr"] == 0.0002
    summary = json.loads((work / RUN / "train" / "sr4x-pool" / "summary.json").read_text())
    assert summary["resumed_from"] == 0


def test_the_first_call_after_a_change_reruns_what_reads_it_with_metadata(finished, tmp_path):
    """The masking bug: with .snakemake/ metadata a new sample.seed reran only the records."""
    work, env = finished
    copy = tmp_path / "work"
    shutil.copytree(work, copy, symlinks=True)
    assert planned((copy, env), "sample={seed: 7}") == AFTER_SAMPLING


def test_a_pre_placed_fid_reference_reruns_the_evaluation(case):
    work, env = case
    (work / "ref.npz").write_bytes(b"placed")
    plan = planned(case, f"downloads={{fid_reference: {work / 'ref.npz'}}}")
    assert plan == {"download_fid_reference", "evaluate"} | RECORDS


def test_a_pre_placed_fid_reference_replaced_in_place_reruns_its_record_and_the_evaluation(case):
    """Another file under the placed name, dated a day earlier: only its download record's stat
    tells, so the download job hashes it again and exactly the evaluation reading it reruns."""
    work, env = case
    placed = work / "ref.npz"
    placed.write_bytes(b"placed")  # offline FID is unavailable before the reference is read
    change = f"downloads={{fid_reference: {placed}}}"
    args = ["--cores", "2", "--configfile", "config/tiny.yaml", "case.yaml", "--config", change]
    proc = snakemake(work, *args, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert planned(case, change) == set()  # the recorded stat is the file's
    swap_older_file_in(placed)
    assert planned(case, change) == {"download_fid_reference", "evaluate", "track", "report", "all"}


def test_switching_a_value_back_reruns_again(case):
    """A -> B -> A: writing slice B removed slice A, so A's jobs are due again."""
    work, env = case
    config = ["--configfile", "config/tiny.yaml", "case.yaml"]
    target = f"{RUN}/config.json"
    proc = snakemake(work, target, "--cores", "1", *config, "--config", "tracking={experiment: b}",
                     env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(list((work / RUN / "config").glob("all-*.json"))) == 1  # the stale version is gone
    assert planned((work, env)) == RECORDS


def test_a_photo_replaced_in_place_reruns_the_conversion_and_everything_after(case):
    work, env = case
    photos = sorted((work / RUN / "photos" / "val").rglob("*.png"))
    # Another photo's bytes under the same name, dated a day earlier, as `cp -p` may leave it.
    shutil.copyfile(photos[1], photos[0])
    day = 86400 * 10**9
    os.utime(photos[0], ns=(photos[1].stat().st_atime_ns - day, photos[1].stat().st_mtime_ns - day))
    unchanged_config = {"config_slice", "resolved_config"}
    assert planned((work, env)) == {"convert_lmdb"} | (AFTER_TRAINING - unchanged_config)


def test_a_training_photo_replaced_in_place_trains_afresh_when_run(case):
    """Planned is not enough: the train job rerun after its split was converted again must not
    resume the finished latest.pt (made from the old photos), which trains nothing."""
    work, env = case
    photos = sorted((work / RUN / "photos" / "train").rglob("*.png"))
    shutil.copyfile(photos[1], photos[0])  # another photo's bytes under the same name
    args = ["--cores", "2", "--configfile", "config/tiny.yaml", "case.yaml"]
    proc = snakemake(work, f"{RUN}/train/sr4x-pool/summary.json", *args, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "training afresh" in (work / RUN / "logs" / "train" / "sr4x-pool.log").read_text()
    summary = json.loads((work / RUN / "train" / "sr4x-pool" / "summary.json").read_text())
    assert summary["resumed_from"] == 0 and summary["iterations"] == 4


def test_a_latest_pt_swapped_in_place_reruns_sampling_and_everything_after(case):
    work, env = case
    latest = work / RUN / "train" / "sr4x-pool" / "latest.pt"
    swap_older_file_in(latest)
    expected = {"checkpoint_record", "track", "report", "all"} | {"sample", "gather", "evaluate"}
    assert planned((work, env)) == expected


@pytest.mark.parametrize("name", ["options.json", "options.pkl"])
def test_a_run_options_file_swapped_in_place_reruns_sampling_and_everything_after(case, name):
    """Sampling reads the bridge (interval, beta_max, ot_ode, cond_x1) from the run folder's
    options file, not from latest.pt: one replaced in place is a changed checkpoint too."""
    work, env = case
    swap_older_file_in(work / RUN / "train" / "sr4x-pool" / name)
    expected = {"checkpoint_record", "track", "report", "all"} | {"sample", "gather", "evaluate"}
    assert planned((work, env)) == expected


def test_a_deleted_trained_run_is_trained_again_with_everything_after(case):
    """rm -r RUN/train/<task> (to retrain it) plans training and all that read the checkpoint."""
    work, _ = case
    shutil.rmtree(work / RUN / "train" / "sr4x-pool")
    assert planned(case) == AFTER_TRAINING - {"config_slice", "resolved_config"}


def test_published_mode_samples_a_read_only_folder_without_a_train_split_offline(tmp_path):
    """checkpoints.source: published with an image folder holding only val/: nothing is trained,
    nothing is written into the (read-only) published folder, FID statistics are unavailable
    offline with the reason (no failure), and a latest.pt swapped there reruns what read it."""
    sys.path.insert(0, str(Path(__file__).parent))
    from fake_published import make_published_folder

    from i2sb.data.demo import make_demo_images

    work = tmp_path / "work"
    work.mkdir()
    (work / "config").symlink_to(REPO / "config")
    make_demo_images(tmp_path / "images", 2, 1, 2, 32, 0)
    shutil.rmtree(tmp_path / "images" / "train")
    folder = make_published_folder(tmp_path / "published" / "inpaint-center", "inpaint-center")
    before = _listing(folder.parent)
    subprocess.run(["chmod", "-R", "a-w", str(folder.parent)], check=True)
    case = {"results_dir": "results", "tasks": ["inpaint-center"], "partitions": 1,
            "samplers": [{"name": "ddpm"}], "evaluate": {"metrics": ["fid", "psnr"]},
            "data": {"kind": "imagefolder", "root": str(tmp_path / "images")},
            "checkpoints": {"source": "published", "dir": str(folder.parent)}}  # fmt: skip
    (work / "case.yaml").write_text(json.dumps(case))
    env = os.environ | {"TORCH_HOME": str(work / "torch-home"), "I2SB_CACHE": str(work / "cache")}
    try:
        proc = snakemake(work, "--cores", "2", "--configfile", "config/tiny.yaml", "case.yaml",
                         env=env)  # fmt: skip
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert _listing(folder.parent) == before  # root ignores a-w: the listing is the check
        run = work / "results" / "tiny"
        assert not (run / "train").exists() and not (run / "data" / "train_sources.json").exists()
        with np.load(run / "fid" / "val_stats_32.npz") as stats:
            assert "unavailable" in str(stats["unavailable_reason"])  # and why, not a failure
        metrics = json.loads((run / "eval/inpaint-center/ddpm/nfe2/metrics.json").read_text())
        assert metrics["metrics"]["fid"]["value"] is None and metrics["metrics"]["fid"]["reason"]
        record = json.loads((run / "checkpoints" / "inpaint-center.json").read_text())
        assert record["folder"] == str(folder) and len(record["fingerprint"]["sha256"]) == 64

        subprocess.run(["chmod", "u+w", str(folder)], check=True)
        latest = folder / "latest.pt"
        swap_older_file_in(latest)
        assert planned((work, env)) == {
            "download_checkpoint", "checkpoint_record", "sample", "gather", "evaluate", "track",
            "report", "all",
        }  # fmt: skip

        # external metrics required: the statistics job fails, naming what is missing
        proc = snakemake(work, "--cores", "1", "--configfile", "config/tiny.yaml", "case.yaml",
                         "--config", "evaluate={require_external_metrics: true}",
                         "--forcerun", "fid_val_stats", "--until", "fid_val_stats", env=env)  # fmt: skip
        assert proc.returncode != 0
        log = (run / "logs" / "fid_val_stats.log").read_text()
        assert "external metrics are required (evaluate.require_external_metrics)" in log
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(folder.parent)], check=True)


def test_fid_val_stats_replaced_in_place_reruns_its_record_and_the_evaluation(tmp_path):
    """evaluate.fid_val_stats (the user's statistics, read by a non-SR task's evaluation) is
    recorded as a download is: replaced in place, dated a day earlier, it reruns its record and
    the evaluation reading it. Published mode with a fake folder: nothing is trained."""
    sys.path.insert(0, str(Path(__file__).parent))
    from fake_published import make_published_folder

    from i2sb.data.demo import make_demo_images

    work = tmp_path / "work"
    work.mkdir()
    (work / "config").symlink_to(REPO / "config")
    make_demo_images(tmp_path / "images", 2, 1, 2, 32, 0)
    folder = make_published_folder(tmp_path / "published" / "inpaint-center", "inpaint-center")
    stats = tmp_path / "val_stats.npz"
    stats.write_bytes(b"placed")  # offline FID is unavailable before the statistics are read
    case = {"results_dir": "results", "tasks": ["inpaint-center"], "partitions": 1,
            "samplers": [{"name": "ddpm"}], "evaluate": {"metrics": ["fid"], "fid_val_stats": str(stats)},
            "data": {"kind": "imagefolder", "root": str(tmp_path / "images")},
            "checkpoints": {"source": "published", "dir": str(folder.parent)}}  # fmt: skip
    (work / "case.yaml").write_text(json.dumps(case))
    env = os.environ | {"TORCH_HOME": str(work / "torch-home"), "I2SB_CACHE": str(work / "cache")}
    args = ["--cores", "2", "--configfile", "config/tiny.yaml", "case.yaml"]
    proc = snakemake(work, *args, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    record = json.loads(
        (work / "results" / "tiny" / "downloads" / "fid_val_stats.json").read_text()
    )
    assert record["fid_val_stats"] == str(stats)
    assert planned((work, env)) == set()
    swap_older_file_in(stats)
    expected = {"placed_fid_val_stats", "evaluate", "track", "report", "all"}
    assert planned((work, env)) == expected


def test_a_moved_results_folder_reruns_only_the_records_and_tracks_the_training_where_it_is(case):
    """The checkpoint record still names the old run folder; track links the training from the
    folder the workflow trains into now (a published folder alone is read from its record)."""
    import mlflow

    work, env = case
    (work / RESULTS).rename(work / "moved")
    for store in ("tiny-mlflow.db", "tiny-mlartifacts"):  # a fresh store: track makes every run
        shutil.rmtree(work / "results" / store, ignore_errors=True)
        (work / "results" / store).unlink(missing_ok=True)
    assert planned(case, "results_dir=moved") == RECORDS  # the config and where the run lives
    args = ["--cores", "2", "--configfile", "config/tiny.yaml", "case.yaml"]
    proc = snakemake(work, *args, "--config", "results_dir=moved", env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    client = mlflow.MlflowClient(f"sqlite:///{work}/results/tiny-mlflow.db")
    (evaluation,) = client.search_runs([client.get_experiment_by_name("tiny").experiment_id])
    assert "train_run_unavailable_reason" not in evaluation.data.tags
    assert evaluation.data.tags["i2sb.train_run_id"]
