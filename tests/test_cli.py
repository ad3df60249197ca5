import subprocess
import sys

from i2sb.cli import main


def test_help_lists_subcommands(capsys):
    try:
        main(["--help"])
    except SystemExit as exit_:
        assert exit_.code == 0
    out = capsys.readouterr().out
    assert "config" in out


def test_config_command_reports_a_bad_key_without_traceback(tmp_path):
    bad = tmp_path / "c.yaml"
    bad.write_text("train:\n  lr: fast\n")
    proc = subprocess.run(
        [sys.executable, "-m", "i2sb", "config", str(bad)], capture_output=True, text=True
    )
    assert proc.returncode == 1
    assert "train.lr" in proc.stderr and "Traceback" not in proc.stderr


def test_set_overrides_nest_and_parse_values():
    import pytest

    from i2sb.cli._overrides import parse_overrides

    assert parse_overrides(
        ["train.lr=1e-3", "tasks=[jpeg-5, sr4x-pool]", "train.resources.gpus=2"]
    ) == {
        "train": {"lr": 1e-3, "resources": {"gpus": 2}},
        "tasks": ["jpeg-5", "sr4x-pool"],
    }
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_overrides(["train.lr"])
