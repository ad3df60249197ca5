"""Static checks of the Slurm profile: every key is a snakemake option, and the plugin turns its resources into the
sbatch lines docs/slurm.md promises (one rank per GPU across nodes, one GPU per sampling job). The real cluster run
is tests/test_slurm_real.py."""

import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "profiles" / "slurm"
OVERLAY = REPO / "tests" / "slurm" / "profile-local"
sys.path.insert(0, str(REPO / "scripts" / "slurm"))
from merge_profile import merged_profile  # noqa: E402


class FakeResources(dict):
    """The plugin reads resources both as `job.resources.get(key)` and as `job.resources.key`."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class FakeJob:
    def __init__(self, resources: dict[str, Any], threads: int = 1, name: str = "job") -> None:
        self.resources = FakeResources(resources)
        self.threads = threads
        self.name = name


def sbatch_line(resources: dict[str, Any], threads: int = 1) -> str:
    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    params = {
        "run_uuid": "uuid",
        "slurm_logfile": "log",
        "comment_str": "rule",
        "account": "-A acc",
        "partition": "-p part",
        "workdir": "/work",
    }
    job = FakeJob(resources, threads)
    # The plugin's submit step: the command, then the GPU options appended (as in its run_job).
    return get_submit_command(job, params) + set_gres_string(job)


def rule_resources(profile: dict[str, Any], rule: str, declared: dict[str, Any]) -> dict[str, Any]:
    """What a job gets: default-resources, then the rule's own resources, then the profile's set-resources."""
    return {**profile["default-resources"], **declared, **profile["set-resources"].get(rule, {})}


@pytest.fixture(scope="module")
def profile() -> dict[str, Any]:
    return yaml.safe_load((PROFILE / "config.yaml").read_text())


def test_every_profile_key_is_a_snakemake_option(profile: dict[str, Any]) -> None:
    from snakemake.cli import get_argument_parser

    options = {o for action in get_argument_parser()._actions for o in action.option_strings}
    for profile_dir in (PROFILE, OVERLAY):
        keys = yaml.safe_load((profile_dir / "config.yaml").read_text())
        # `partitions` is the plugin's (slurm-partition-config names this file); snakemake ignores it.
        unknown = sorted(k for k in keys if f"--{k}" not in options and k != "partitions")
        assert not unknown, f"{profile_dir}/config.yaml: not snakemake options: {unknown}"


def test_profile_uses_the_slurm_executor_with_retries_and_fast_status_checks(
    profile: dict[str, Any],
) -> None:
    assert profile["executor"] == "slurm"
    assert profile["retries"] >= 1 and profile["rerun-incomplete"] is True
    assert profile["slurm-init-seconds-before-status-checks"] <= 10
    assert {"runtime", "mem_mb", "cpus_per_task"} <= set(profile["default-resources"])


def test_account_is_left_to_the_site_overlay(profile: dict[str, Any]) -> None:
    assert "slurm_account" not in profile["default-resources"]


@pytest.mark.parametrize("gpus, nodes", [(8, 2), (4, 3)])
def test_multi_node_train_gets_one_rank_per_gpu(
    profile: dict[str, Any], gpus: int, nodes: int
) -> None:
    from i2sb.cluster import train_job_resources, train_launcher

    declared = train_job_resources(gpus, nodes, cpus_per_task=8, mem_mb=64000, runtime_min=2880)
    line = sbatch_line(rule_resources(profile, "train", declared), threads=8)
    assert f"--nodes={nodes}" in line and f"--gres=gpu:{gpus}" in line
    assert f"--ntasks-per-node={gpus}" in line and "--cpus-per-gpu=8" in line
    # --gpus is a job total and --ntasks-per-gpu would multiply ranks: neither may appear.
    assert (
        "--gpus=" not in line and "--ntasks-per-gpu" not in line and "--cpus-per-task" not in line
    )
    launcher = train_launcher("python", gpus, nodes)
    assert launcher.startswith(f"srun --nodes={nodes} --ntasks-per-node={gpus} ")


def test_single_node_training_is_one_task_with_torchrun_or_one_process(
    profile: dict[str, Any],
) -> None:
    from i2sb.cluster import train_job_resources, train_launcher

    gpu_line = sbatch_line(
        rule_resources(profile, "train", train_job_resources(4, 1, 8, 64000, 60)), 8
    )
    assert (
        "--gres=gpu:4" in gpu_line and "--ntasks-per" not in gpu_line and "--gpus=" not in gpu_line
    )
    assert "torch.distributed.run --standalone --nproc_per_node=4" in train_launcher("python", 4, 1)
    cpu_line = sbatch_line(
        rule_resources(profile, "train", train_job_resources(0, 1, 2, 8000, 60)), 2
    )
    assert "--cpus-per-task=2" in cpu_line and "gpu" not in cpu_line
    assert train_launcher("python", 0, 1) == "python -m i2sb train"


def test_sampling_job_gets_its_gpus_from_the_config_and_none_on_cpu(
    profile: dict[str, Any],
) -> None:
    from i2sb.cluster import sample_job_resources

    line = sbatch_line(rule_resources(profile, "sample", sample_job_resources(1, 4)), threads=1)
    assert "--gpus=1" in line and "--cpus-per-gpu=4" in line
    assert "--ntasks-per-gpu" not in line and "--gres" not in line
    cpu_line = sbatch_line(rule_resources(profile, "sample", sample_job_resources(0, 2)), threads=1)
    assert "--cpus-per-task=2" in cpu_line and "gpu" not in cpu_line


def test_cpu_rules_get_the_default_resources(profile: dict[str, Any]) -> None:
    line = sbatch_line(rule_resources(profile, "convert_lmdb", {}), threads=2)
    defaults = profile["default-resources"]
    assert f"--cpus-per-task={defaults['cpus_per_task']}" in line and "--ntasks=1" in line
    assert f"--mem {defaults['mem_mb']}" in line and f"-t {defaults['runtime']}" in line


def test_local_overlay_changes_single_resources_and_keeps_the_rest(profile: dict[str, Any]) -> None:
    merged = merged_profile(PROFILE, OVERLAY)
    assert merged["set-resources"]["sample"]["mem_mb"] == 1000
    assert (
        "gpu" not in merged["set-resources"]["sample"]
    )  # GPUs per sampling job come from the config
    assert "train" not in merged["set-resources"]  # training geometry comes from the config only
    assert merged["default-resources"]["slurm_account"] == "local"
    assert merged["retries"] == profile["retries"]


def test_overlay_merge_rejects_a_profile_that_is_not_a_mapping(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("- executor: slurm\n")
    with pytest.raises(ValueError, match="config.yaml: expected a mapping"):
        merged_profile(PROFILE, tmp_path)


@pytest.mark.parametrize(
    "script",
    sorted((REPO / "scripts" / "slurm").glob("*.sh")) + [OVERLAY.parent / "run-slurm-test.sh"],
)
def test_shell_scripts_parse(script: Path) -> None:
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def planned_jobs(profile_dir: Path, *args: str) -> list[tuple[str, dict[str, str], int]]:
    """(rule, resources, threads) of every job of a dry run with the profile, read from the job blocks snakemake
    prints (a dry run prints local rules, which never reach Slurm, the same way)."""
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--profile", str(profile_dir), *args],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    jobs = []
    for block in re.split(r"\n(?=rule \w+:\n)", proc.stdout):
        head = re.match(r"rule (\w+):\n", block)
        if not head:
            continue
        resources = re.search(r"^\s+resources: (.*)$", block, re.M)
        threads = re.search(r"^\s+threads: (\d+)$", block, re.M)
        pairs = resources[1].split(", ") if resources else []
        jobs.append(
            (head[1], dict(p.split("=", 1) for p in pairs), int(threads[1]) if threads else 1)
        )
    return jobs


def submitted_partition(profile_file: Path, resources: dict[str, str], threads: int) -> str:
    """The `-p` the plugin's submit step adds for this job (its own get_partition_arg, no cluster asked)."""
    import snakemake_executor_plugin_slurm as plugin
    from snakemake_executor_plugin_slurm.partitions import read_partition_file

    logger = SimpleNamespace(info=lambda msg: None, debug=lambda msg: None, warning=print)
    executor = SimpleNamespace(
        _partitions=read_partition_file(profile_file), _fallback_partition="", logger=logger
    )
    return plugin.Executor.get_partition_arg(executor, FakeJob(resources, threads)).strip()


@pytest.fixture
def imagenet_root(tmp_path: Path) -> str:
    """An (empty) ImageNet-style folder: planning needs data.root to exist, not its images."""
    for split in ("train", "val"):
        (tmp_path / "imagenet" / split / "n01440764").mkdir(parents=True)
    return f"data={{root: {tmp_path / 'imagenet'}}}"


def test_gpu_jobs_go_to_the_gpu_partition_and_cpu_only_jobs_to_the_cpu_partition(
    tmp_path: Path, imagenet_root: str
) -> None:
    """The site names its two partitions once (`i2sb slurm-profile --partition --cpu-partition`); the plugin then
    sends each job of the benchmark plan where what it asks for fits."""
    from i2sb.slurm_profile import install_profile

    site = install_profile(
        PROFILE, "acc", "a100", out_dir=tmp_path / "site", cpu_partition="cpu-short"
    )
    jobs = planned_jobs(site.path.parent, "--configfile", "config/benchmark.yaml",
                        "--config", f"results_dir={tmp_path / 'results'}", imagenet_root)  # fmt: skip
    partitions: dict[str, set[str]] = {}
    for rule, resources, threads in jobs:
        partitions.setdefault(rule, set()).add(submitted_partition(site.path, resources, threads))
    gpu_rules = {
        "train",
        "sample",
        "evaluate",
        "fid_val_stats",
    }  # train: 2 nodes x gres gpu:8; others gpu: 1
    assert {rule: partitions[rule] for rule in gpu_rules} == dict.fromkeys(gpu_rules, {"-p a100"})
    # Every other job, LMDB conversion and gather among them, asks for no GPU.
    assert {"convert_lmdb", "gather"} < set(partitions) - gpu_rules
    assert {rule: p for rule, p in partitions.items() if rule not in gpu_rules} == dict.fromkeys(
        set(partitions) - gpu_rules, {"-p cpu-short"}
    )


def test_every_job_of_a_cpu_config_goes_to_the_cpu_partition(tmp_path: Path) -> None:
    jobs = planned_jobs(PROFILE, "--configfile", "config/tiny.yaml",
                        "--config", f"results_dir={tmp_path / 'results'}")  # fmt: skip
    rules = {rule for rule, _, _ in jobs}
    assert {"train", "sample", "gather", "evaluate", "convert_lmdb"} <= rules
    assert {submitted_partition(PROFILE / "config.yaml", res, t) for _, res, t in jobs} == {
        "-p cpu"
    }


# The rules of the workflow that Snakemake runs in its own process on any executor (its `localrules:`), read the
# way Snakemake reads the Snakefile (config/tiny.yaml planned into argv[1]). A dry run cannot tell: it prints every
# job as `rule X:`.
LOCAL_RULES = """
import sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

with SnakemakeApi(OutputSettings()) as api:
    config = ConfigSettings(configfiles=[Path("config/tiny.yaml").absolute()], config={"results_dir": sys.argv[1]})
    workflow = api.workflow(ResourceSettings(), config, snakefile=Path("Snakefile"))._workflow
    print(" ".join(sorted(workflow._localrules)))
"""


def test_record_jobs_run_in_the_snakemake_process_and_never_wait_in_the_queue(
    tmp_path: Path,
) -> None:
    """The config slices and the checkpoint record are hashes of seconds; the record sits between training and
    sampling, so as a Slurm job it would queue there (it held the two-node suite's sampling jobs back behind a
    DOWN partition: tests/slurm/multinode_suite.py, fault 4)."""
    proc = subprocess.run(
        [sys.executable, "-c", LOCAL_RULES, str(tmp_path / "results")],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    local = set(proc.stdout.split())
    assert {"config_slice", "checkpoint_record", "resolved_config", "track", "report"} <= local
    assert not {"train", "sample", "gather", "convert_lmdb"} & local


def test_a_site_overlay_replaces_the_partition_list_as_a_whole() -> None:
    merged = merged_profile(PROFILE, OVERLAY)
    assert merged["partitions"] == {"local": {"max_gpu": 0}, "local-gpu": {"max_gpu": 2}}
    assert "slurm_partition" not in merged["default-resources"]  # it would override the choice
