import re
import subprocess
import sys

import pytest

from i2sb.cli import main


def test_help_lists_subcommands(capsys):
    """``i2sb --help`` exits 0 and names every registered subcommand."""
    from i2sb.cli import build_parser

    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    (subparsers,) = build_parser()._subparsers._group_actions
    assert {"config", "train", "sample"} <= set(subparsers.choices)
    for command in subparsers.choices:
        assert re.search(rf"^    {re.escape(command)}\b", out, re.MULTILINE), command


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


def test_every_evaluate_key_is_a_flag_and_flags_override_the_config(tmp_path):
    """A key added to EvaluateConfig reaches `i2sb evaluate` without touching the CLI."""
    import dataclasses

    from i2sb.cli import build_parser
    from i2sb.cli.evaluate import _config
    from i2sb.config import EvaluateConfig

    config = tmp_path / "c.yaml"
    config.write_text("evaluate: {batch_size: 16, metrics: [psnr, lpips]}\n")
    argv = ["evaluate", "s.npz", "--task", "jpeg-10", "--out", "m.json", "--config", str(config)]
    parser = build_parser()
    given = parser.parse_args(
        argv + ["--metrics", "psnr", "consistency", "--no-require-external-metrics",
                "--fid-val-stats", "v.npz"]
    )  # fmt: skip
    assert {f"evaluate.{f.name}" for f in dataclasses.fields(EvaluateConfig)} <= set(vars(given))
    settings = _config(given).evaluate
    assert (settings.metrics, settings.require_external_metrics) == (("psnr", "consistency"), False)
    assert settings.batch_size == 16 and settings.fid_val_stats == "v.npz"
    assert _config(parser.parse_args(argv)).evaluate.metrics == ("psnr", "lpips")  # the config's


def test_a_flag_built_from_a_config_key_offers_the_keys_choices(capsys):
    from i2sb.cli import build_parser
    from i2sb.config.choices import SAMPLE_PRECISIONS

    argv = ["sample", "--ckpt", "r", "--nfe", "2", "--data-dir", "d", "--out", "p.npz"]
    assert (
        vars(build_parser().parse_args(argv + ["--precision", "bf16"]))["sample.precision"]
        == "bf16"
    )
    with pytest.raises(SystemExit):
        build_parser().parse_args(argv + ["--precision", "fp8"])
    assert ", ".join(map(repr, SAMPLE_PRECISIONS)) in capsys.readouterr().err
