"""`i2sb slurm-profile` keeps what a user wrote (issue 22 §4): an existing, different profile is
refused without --force and backed up with it; a profile name is a name, never a path."""

import pytest
import yaml

from i2sb.cli import main

BASE = ["slurm-profile", "--account", "acc", "--partition", "gpu"]


def test_a_hand_written_profile_is_refused_without_force_and_kept(tmp_path, capsys):
    mine = tmp_path / "config.yaml"
    mine.write_text("executor: slurm\njobs: 3  # my own\n")
    assert main([*BASE, "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(mine) in err and "--force" in err
    assert mine.read_text() == "executor: slurm\njobs: 3  # my own\n"


def test_force_replaces_it_after_a_timestamped_backup_it_names(tmp_path, capsys):
    mine = tmp_path / "config.yaml"
    mine.write_text("jobs: 3  # my own\n")
    assert main([*BASE, "--out", str(tmp_path), "--force"]) == 0
    backups = list(tmp_path.glob("config.yaml.bak-*"))
    assert len(backups) == 1 and backups[0].read_text() == "jobs: 3  # my own\n"
    assert str(backups[0]) in capsys.readouterr().out
    assert yaml.safe_load(mine.read_text())["default-resources"]["slurm_account"] == "acc"


def test_rerunning_with_the_same_settings_needs_no_force(tmp_path, capsys):
    assert main([*BASE, "--out", str(tmp_path)]) == 0
    assert main([*BASE, "--out", str(tmp_path)]) == 0
    assert "already up to date" in capsys.readouterr().out
    assert not list(tmp_path.glob("config.yaml.bak-*"))


@pytest.mark.parametrize("name", ["..", "../escape", "a/b", "/etc/snakemake", "."])
def test_a_profile_name_that_is_a_path_is_refused_naming_the_option(name, tmp_path, monkeypatch,
                                                                    capsys):  # fmt: skip
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert main([*BASE, "--name", name]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--name" in err and "never a path" in err
    assert not list(tmp_path.rglob("config.yaml"))
