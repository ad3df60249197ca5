"""`i2sb slurm-profile`: the merged profile lands where `snakemake --profile slurm` finds it, and plans."""

import os
import subprocess
import sys
from pathlib import Path

import yaml

from i2sb.slurm_profile import install_profile, user_profile_dir

REPO = Path(__file__).resolve().parents[1]
BASE = REPO / "profiles" / "slurm"


def test_site_settings_and_overlay_are_merged_key_by_key(tmp_path):
    overlay = tmp_path / "site"
    overlay.mkdir()
    (overlay / "config.yaml").write_text(
        "slurm-status-command: squeue\nset-resources: {sample: {runtime: 30}}\n"
    )
    path = install_profile(BASE, "proj", "a100", "high", overlay, tmp_path / "out").path
    profile = yaml.safe_load(path.read_text())
    base = yaml.safe_load((BASE / "config.yaml").read_text())
    resources = profile["default-resources"]
    assert (resources["slurm_account"], resources["qos"]) == ("proj", "high")
    # One partition named: every job goes there (the plugin picks from this list; no slurm_partition overrides it).
    assert profile["partitions"] == {"a100": {"max_gpu": 8}} and "slurm_partition" not in resources
    assert resources["mem_mb"] == base["default-resources"]["mem_mb"]  # the rest is kept
    assert profile["set-resources"]["sample"] == {**base["set-resources"]["sample"], "runtime": 30}
    assert profile["slurm-status-command"] == "squeue" and profile["executor"] == "slurm"


def test_without_qos_no_qos_is_set(tmp_path):
    path = install_profile(BASE, "proj", "gpu", out_dir=tmp_path).path
    assert "qos" not in yaml.safe_load(path.read_text())["default-resources"]


def test_the_user_folder_follows_xdg_config_home_like_snakemake(tmp_path, monkeypatch):
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert user_profile_dir() == tmp_path / ".config" / "snakemake" / "slurm"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert user_profile_dir("site") == tmp_path / "xdg" / "snakemake" / "site"


def test_snakemake_profile_slurm_plans_after_the_install_command(tmp_path):
    env = {**os.environ, "HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    install = subprocess.run(
        [sys.executable, "-m", "i2sb", "slurm-profile", "--account", "acc", "--partition", "gpu"],
        cwd=REPO, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr
    assert (tmp_path / "xdg" / "snakemake" / "slurm" / "config.yaml").is_file()
    plan = subprocess.run(
        [sys.executable, "-m", "snakemake", "--profile", "slurm", "-n", "--configfile",
         "config/tiny.yaml", "--config", f"results_dir={tmp_path / 'results'}"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    output = plan.stdout + plan.stderr
    assert plan.returncode == 0, output[-3000:]
    assert "Using profile slurm" in output and "Job stats:" in output


def test_a_missing_base_profile_is_named(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "i2sb", "slurm-profile", "--account", "a", "--partition", "p",
         "--base", str(tmp_path / "nope"), "--out", str(tmp_path / "out")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 1
    assert f"{tmp_path / 'nope' / 'config.yaml'}: no such profile file" in proc.stderr


def test_gpu_and_cpu_partitions_are_named_once_on_the_command_line(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "i2sb", "slurm-profile", "--account", "acc", "--partition", "a100",
         "--cpu-partition", "short", "--gpus-per-node", "4", "--out", str(out)],
        cwd=REPO, capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    profile = yaml.safe_load((out / "config.yaml").read_text())
    assert profile["partitions"] == {"a100": {"max_gpu": 4}, "short": {"max_gpu": 0}}
    # The plugin reads the list from the profile's own file, which snakemake finds beside it.
    assert profile["slurm-partition-config"] == "config.yaml"


def test_a_gpu_partition_without_gpus_is_refused_in_one_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "i2sb", "slurm-profile", "--account", "a", "--partition", "p",
         "--gpus-per-node", "0", "--out", str(tmp_path / "out")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().endswith("--gpus-per-node must be at least 1, got 0")
