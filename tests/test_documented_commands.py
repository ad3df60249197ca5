"""Every command line documented in README.md and config/README.md works (issue 14 item 5).

The lines are read from the documents themselves (fenced code blocks, and inline code spans that
start with a command), so a newly documented line is tested without touching this file. Each is
run in a form that stays fast and writes nothing into the repository:
- ``snakemake ...``: planned with ``-n`` in a sandbox copy of the workflow (``--lint`` as is);
- ``i2sb ...`` (also behind ``torchrun``/``srun``): parsed by the real argument parser, so every
  documented option, choice and type must exist; ``i2sb slurm-profile`` runs for real in the
  sandbox (the next documented line uses the profile it installs);
- ``make TARGET``: ``make -n TARGET``; ``mlflow ui ...``: its options checked by mlflow's CLI.
Placeholders: ``/data/imagenet`` becomes an (empty) ImageNet-style folder, ``[--opt]`` groups
are included, ``FILE``/``DIR`` name a real file/folder, ``...`` elides required arguments.
A line with a command this file does not know how to check fails the test.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCUMENTS = ("README.md", "config/README.md")
COMMANDS = ("snakemake", "i2sb", "make", "torchrun", "srun", "mlflow")
PLACEHOLDER_ROOT = "/data/imagenet"


def _strip_venv(line: str) -> str:
    return re.sub(r"^\.venv/bin/", "", line.strip())


def documented_lines(document: str) -> list[str]:
    """Command lines of ``document``: code-block lines (continuations joined) and inline spans.

    An inline span may only mention a command (`i2sb slurm-profile`): it ends in " ..." here,
    so its missing required arguments are not held against it (its options still are).
    """
    text = (REPO / document).read_text()
    lines: list[str] = []
    in_block, pending = False, ""
    for raw in text.splitlines():
        if raw.lstrip().startswith("```"):
            in_block, pending = not in_block, ""
            continue
        if in_block:
            joined = pending + raw.strip()
            if joined.endswith("\\"):
                pending = joined[:-1] + " "
                continue
            pending = ""
            if _strip_venv(joined).split(" ")[0] in COMMANDS:
                lines.append(_strip_venv(joined))
        else:
            for span in re.findall(r"`([^`]+)`", raw):
                words = _strip_venv(span).split()
                if len(words) > 1 and words[0] in COMMANDS:
                    lines.append(_strip_venv(span) + " ...")
    return lines


ALL_LINES = sorted({(doc, line) for doc in DOCUMENTS for line in documented_lines(doc)})


def test_the_documents_hold_the_lines_the_issue_names():
    lines = {line for _, line in ALL_LINES}
    assert "snakemake --config 'tasks=[jpeg-5]' nfe='[10,100]' ..." in lines
    assert any(line.startswith("i2sb sample --ckpt") and "--bf16" in line for line in lines)
    assert len(lines) > 20


def words_of(line: str, sandbox: Path) -> tuple[list[str], bool]:
    """(argv with placeholders filled, whether the line elides arguments with '...')."""
    line = re.sub(r"\[(--[^\]]*)\]", r"\1", line)  # optional groups: test the fullest form
    words = shlex.split(line, comments=True)
    elided = "..." in words
    words = [w for w in words if w != "..."]
    fill = {"FILE": "config/config.yaml", "DIR": str(sandbox / "data")}
    words = [fill.get(w, w.replace(PLACEHOLDER_ROOT, str(sandbox / "imagenet"))) for w in words]
    return words, elided


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory) -> Path:
    """A copy of the workflow files (results go here, not into the repository)."""
    root = tmp_path_factory.mktemp("documented")
    for name in ("Snakefile", "workflow", "config", "envs", "profiles"):
        source = REPO / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, root / name)
    for split in ("train", "val"):
        (root / "imagenet" / split / "n01440764").mkdir(parents=True)
    (root / "data").mkdir()
    return root


def _environment(sandbox: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "XDG_CONFIG_HOME": str(sandbox / "xdg"),
            "I2SB_CACHE": str(sandbox / "cache")}  # fmt: skip


def _run(argv: list[str], cwd: Path, sandbox: Path) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, env=_environment(sandbox), capture_output=True,
                          text=True, timeout=300)  # fmt: skip


def check_snakemake(args: list[str], elided: bool, sandbox: Path, capfd) -> None:
    """Plan in-process (Snakemake's own CLI entry point): a subprocess costs seconds to start."""
    from snakemake.cli import main as snakemake_main

    if elided and "config/benchmark.yaml" in args and not any("data=" in a for a in args):
        # the elided part of the benchmark line is the data root
        at = args.index("--config") + 1 if "--config" in args else len(args)
        args = [*args[:at], *(["--config"] if at == len(args) else []),
                f"data={{root: {sandbox / 'imagenet'}}}", *args[at:]]  # fmt: skip
    if "--lint" not in args and "-n" not in args:
        args = [*args, "-n"]
    if "--cores" not in args:
        args = [*args, "--cores", "1"]
    try:
        snakemake_main([*args, "--quiet"])
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    assert code == 0, (
        f"snakemake {' '.join(args)} exited {code}:\n" + capfd.readouterr().err[-3000:]
    )


def check_i2sb(args: list[str], elided: bool, sandbox: Path) -> None:
    from i2sb.cli import build_parser

    if args and args[0] == "slurm-profile" and not elided:
        proc = _run([sys.executable, "-m", "i2sb", *args], REPO, sandbox)
        assert proc.returncode == 0, proc.stderr
        return
    try:
        parsed = build_parser().parse_args(args)
    except SystemExit as exit_:
        if exit_.code == 0:  # --help
            return
        raise AssertionError(f"i2sb {' '.join(args)}: the parser refuses it") from None
    assert elided or getattr(parsed, "handler", None) or args == [], args


def check_i2sb_tolerating_elision(args: list[str], elided: bool, sandbox: Path, capfd) -> None:
    try:
        check_i2sb(args, elided, sandbox)
    except AssertionError:
        error = capfd.readouterr().err
        if not (elided and "the following arguments are required" in error):
            raise AssertionError(f"i2sb {' '.join(args)}: {error.strip()}") from None


def after_module(words: list[str], module: str) -> list[str]:
    """The arguments after ``-m MODULE`` (torchrun/srun lines)."""
    at = words.index("-m")
    assert words[at + 1] == module, words
    return words[at + 2 :]


@pytest.mark.parametrize("document, line", ALL_LINES, ids=[line for _, line in ALL_LINES])
def test_documented_command_line_works(document, line, sandbox, capfd, monkeypatch):
    monkeypatch.chdir(sandbox)
    for name, value in _environment(sandbox).items():
        monkeypatch.setenv(name, value)
    words, elided = words_of(line, sandbox)
    command, args = words[0], words[1:]
    if command == "snakemake":
        check_snakemake(args, elided, sandbox, capfd)
    elif command == "i2sb":
        check_i2sb_tolerating_elision(args, elided, sandbox, capfd)
    elif command in ("torchrun", "srun"):
        check_i2sb_tolerating_elision(after_module(words, "i2sb"), elided, sandbox, capfd)
    elif command == "make":
        proc = _run(["make", "-n", *args], REPO, sandbox)
        assert proc.returncode == 0, proc.stderr
    elif command == "mlflow":  # click checks every option name before acting on --help
        from mlflow.cli import cli

        with pytest.raises(SystemExit) as exit_:  # click exits after --help
            cli.main([*args, "--help"], prog_name="mlflow")
        assert exit_.value.code == 0, capfd.readouterr().err[-2000:]
    else:
        pytest.fail(f"{document}: no way to check {command!r} lines; add one to this test")
