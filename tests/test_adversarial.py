"""Adversarial suite (issue 14): bad inputs and faults, run through the `i2sb` command line, as a table.

Each case names what a careful user expects: ``error`` (a clear message naming the file, key or
option, no traceback) or ``handled`` (the command succeeds and does the right thing, checked on
its output). The outcome is one of:
- ``clear error``: the command failed with a message containing the expected words;
- ``unclear error``: it failed, but the message does not say what the case needs;
- ``handled``: it succeeded and the check on its output holds;
- ``traceback``: an exception escaped the command line;
- ``silently wrong``: it succeeded where it should have failed, or its output is wrong.
The table and its counts are printed (`pytest -s`, or `python tests/test_adversarial.py`); the
test fails on any traceback, silently wrong or unclear outcome. Cases use only the command line
and file formats, so the same file runs against older commits (for "before" counts).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import struct
import subprocess
import sys
import textwrap
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_sample import make_run  # a tiny trained-looking run folder

from i2sb.cli import main

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "profiles" / "slurm"  # the suite runs from any folder


@dataclass
class Result:
    code: int | None  # exit status; None when an exception escaped
    out: str
    err: str


def cli(*argv: str) -> Result:
    """Run ``i2sb ARGV`` in this process; an escaping exception is a traceback outcome."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exit_:  # argparse
            code = exit_.code if isinstance(exit_.code, int) else 1
        except Exception as exc:  # noqa: BLE001 - the outcome being measured
            return Result(None, out.getvalue(), f"{type(exc).__name__}: {exc}")
    return Result(code, out.getvalue(), err.getvalue())


@dataclass
class Case:
    name: str
    expected: str  # "error" (words: what the message must contain) or "handled"
    run: Callable[[Path], Result]
    words: tuple[str, ...] = ()  # error: all must be in the message
    check: Callable[[Result, Path], bool] | None = None  # handled: the output is right
    one_line: bool = True  # error: the message is one line on stderr (every error case so far)


def outcome(case: Case, tmp: Path) -> tuple[str, str]:
    """(outcome, detail) of one case in its own folder."""
    tmp.mkdir(parents=True)
    try:
        result = case.run(tmp)
    except Exception as exc:  # noqa: BLE001 - a failure of the set-up is a traceback too
        return "traceback", f"{type(exc).__name__}: {exc}"[:160]
    message = (result.err.strip().splitlines() or [""])[-1][:160]
    if result.code is None:
        return "traceback", result.err[:160]
    if case.expected == "error":
        if result.code == 0:
            return "silently wrong", "exit 0: " + (result.out.strip()[-120:] or message)
        text = result.err + result.out
        has_words = all(w.lower() in text.lower() for w in case.words)
        lines = len(result.err.strip().splitlines())
        if case.one_line and lines != 1:
            return "unclear error", f"{lines} lines: {message}"
        return ("clear error" if has_words else "unclear error"), message
    if result.code != 0:
        return ("traceback" if "Traceback" in result.err else "unclear error"), message
    try:
        right = case.check(result, tmp) if case.check else True
    except Exception as exc:  # noqa: BLE001
        return "traceback", f"check: {type(exc).__name__}: {exc}"[:160]
    lines = [
        line
        for line in (result.out + "\n" + result.err).splitlines()
        if line.strip() and "/s]" not in line
    ]  # fmt: skip  (no progress bars)
    return ("handled" if right else "silently wrong"), (lines[-1] if lines else "")[:160]


# ----------------------------------------------------------------------------- shared inputs
def photo(path: Path, value: int = 90, size: int = 40, seed: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if seed is None:
        pixels = np.full((size, size, 3), value, np.uint8)
    else:
        coarse = np.random.default_rng(seed).integers(0, 256, (4, 4, 3), dtype=np.uint8)
        pixels = np.asarray(Image.fromarray(coarse).resize((size, size), Image.BILINEAR))
    Image.fromarray(pixels).save(path)
    return path


def photo_folder(root: Path, seed: int = 0, per_class: int = 2) -> Path:
    for split in ("train", "val"):
        for label in ("a", "b"):
            for i in range(per_class):
                photo(
                    root / split / label / f"{label}{i}.png", seed=seed * 100 + i + 10 * len(label)
                )
    return root


def gray16_png(path: Path) -> tuple[Path, float]:
    """A real 16-bit PNG of mean ~119 in 8-bit terms; returns (path, that mean)."""
    values = np.tile(np.linspace(20000, 41000, 40), (40, 1)).round().astype(np.uint16)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(values).save(path)
    return path, float((values / 65535 * 255).mean())


def train_config(tmp: Path, photos: Path, **train) -> Path:
    settings = {"iterations": 1, "batch_size": 2, "microbatch": 2, "checkpoint_every": 1,
                "validate_every": 100, "validate_nfe": 2, "validate_images": 2, "log_every": 1,
                **train}  # fmt: skip
    config = {
        "benchmark": "adv", "results_dir": str(tmp / "results"), "tasks": ["sr4x-pool"],
        "nfe": [2], "data": {"kind": "imagefolder", "root": str(photos), "image_size": 32},
        "network": {"preset": "tiny"}, "bridge": {"interval": 100}, "train": settings,
        "tracking": {"live": False},  # no MLflow store in the working directory
    }  # fmt: skip
    path = tmp / "config.json"  # JSON is YAML
    path.write_text(json.dumps(config))
    return path


def sample(run: Path, photos: Path, out: Path) -> Result:
    return cli("sample", "--ckpt", run, "--data-dir", photos, "--nfe", "2", "--batch-size", "4",
               "--max-images", "4", "--partition", "0_1", "--out", out, "--device", "cpu")  # fmt: skip


def lmdb_entries(data: Path, split: str) -> int:
    import lmdb

    with lmdb.open(
        str(data / f"{split}_faster_imagefolder.lmdb"), readonly=True, lock=False
    ) as env:
        return env.stat()["entries"]


def lmdb_image(data: Path, split: str) -> np.ndarray:
    import lmdb

    with lmdb.open(
        str(data / f"{split}_faster_imagefolder.lmdb"), readonly=True, lock=False
    ) as env:
        with env.begin() as txn:
            _, value = next(iter(txn.cursor()))
    with Image.open(io.BytesIO(value)) as image:
        return np.asarray(image.convert("RGB") if image.mode in ("RGB", "L", "P") else image)


def convert(src: Path, out: Path, split: str = "val") -> Result:
    return cli("data", "convert", "--src", src, "--split", split, "--out", out, "--workers", "0")


# ----------------------------------------------------------------------------- the cases
def _retrained(tmp: Path) -> Result:
    run, photos = make_run(tmp / "run", seed=0), photo_folder(tmp / "photos")
    sample(run, photos, tmp / "part_0_1.npz")
    make_run(tmp / "run", seed=7)  # the run is retrained in place
    return sample(run, photos, tmp / "part_0_1.npz")


def _other_photos(tmp: Path) -> Result:
    run = make_run(tmp / "run")
    sample(run, photo_folder(tmp / "photos"), tmp / "part_0_1.npz")
    return sample(run, photo_folder(tmp / "others", seed=5), tmp / "part_0_1.npz")


def _recomputed(result: Result, tmp: Path) -> bool:
    return "written" in result.out and "recomputing" in result.err


def _same_size_swap(tmp: Path) -> Result:
    """A validation photo replaced in place by another picture of the same byte size (BMP)."""
    run = make_run(tmp / "run")
    for number in range(4):
        path = tmp / "photos" / "val" / "ab"[number % 2] / f"{number}.bmp"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (40, 40), (number * 50, 9, 9)).save(path)
    sample(run, tmp / "photos", tmp / "part_0_1.npz")
    Image.new("RGB", (40, 40), (1, 220, 3)).save(tmp / "photos" / "val" / "a" / "0.bmp")
    return sample(run, tmp / "photos", tmp / "part_0_1.npz")


def _two_seeds(tmp: Path) -> list[Path]:
    """Parts 0 and 1 of 2, sampled with seeds 0 and 1."""
    run, photos = make_run(tmp / "run"), photo_folder(tmp / "photos")
    parts = []
    for index in (0, 1):
        parts.append(tmp / f"part_{index}_2.npz")
        result = cli("sample", "--ckpt", run, "--data-dir", photos, "--nfe", "2", "--max-images",
                     "4", "--partition", f"{index}_2", "--seed", index, "--out", parts[-1])  # fmt: skip
        assert result.code == 0, result.err
    return parts


def _gather_mixed_seeds(tmp: Path) -> Result:
    return cli("gather", *_two_seeds(tmp), "--out", tmp / "samples.npz")


def _evaluate_other_seed(tmp: Path) -> Result:
    """Samples made with seed 0, evaluated under a config whose sample.seed is 7."""
    run, photos = make_run(tmp / "run"), photo_folder(tmp / "photos")
    sample(run, photos, tmp / "part_0_1.npz")
    assert cli("gather", tmp / "part_0_1.npz", "--out", tmp / "samples.npz").code == 0
    config = tmp / "c.yaml"
    config.write_text(
        f"data: {{kind: imagefolder, root: '{photos}', max_eval_images: 4}}\nsample: {{seed: 7}}\n"
    )
    return cli("evaluate", tmp / "samples.npz", "--task", "sr4x-pool", "--out", tmp / "m.json",
               "--config", config, "--check-data", "--metrics", "psnr")  # fmt: skip


def _lone_part(tmp: Path) -> Result:
    run, photos = make_run(tmp / "run"), photo_folder(tmp / "photos")
    sample(run, photos, tmp / "part_0_2.npz")
    sample_result = cli("sample", "--ckpt", run, "--data-dir", photos, "--nfe", "2",
                        "--max-images", "4", "--partition", "0_2", "--out", tmp / "part_0_2.npz")  # fmt: skip
    assert sample_result.code == 0, sample_result.err
    return cli("evaluate", tmp / "part_0_2.npz", "--task", "sr4x-pool", "--out", tmp / "m.json",
               "--metrics", "psnr", "ssim")  # fmt: skip


def _gather_onto_part(tmp: Path) -> Result:
    run = make_run(tmp / "run")
    sample(run, photo_folder(tmp / "photos"), tmp / "part_0_1.npz")
    return cli("gather", tmp / "part_0_1.npz", "--out", tmp / "part_0_1.npz")


def _train(tmp: Path, task: str, config: Path, *extra: str) -> Result:
    return cli("train", "--config", config, "--task", task, "--out", tmp / "run", "--no-progress",
               *extra)  # fmt: skip


def _cross_task(tmp: Path) -> Result:
    config = train_config(tmp, photo_folder(tmp / "photos"))
    first = _train(tmp, "sr4x-pool", config)
    assert first.code == 0, first.err
    return _train(tmp, "jpeg-10", config, "--set", "train.iterations=2")


def _other_beta(tmp: Path) -> Result:
    config = train_config(tmp, photo_folder(tmp / "photos"))
    assert _train(tmp, "sr4x-pool", config).code == 0
    return _train(tmp, "sr4x-pool", config, "--set", "bridge.beta_max=0.7", "--set",
                  "train.iterations=2")  # fmt: skip


def _other_lr(tmp: Path) -> Result:
    config = train_config(tmp, photo_folder(tmp / "photos"))
    assert _train(tmp, "sr4x-pool", config).code == 0
    return _train(tmp, "sr4x-pool", config, "--set", "train.lr=0.001", "--set",
                  "train.iterations=2")  # fmt: skip


def _fewer_iterations(tmp: Path) -> Result:
    config = train_config(tmp, photo_folder(tmp / "photos"))
    assert _train(tmp, "sr4x-pool", config, "--set", "train.iterations=2").code == 0
    return _train(tmp, "sr4x-pool", config)


def _nan_weights(tmp: Path) -> Result:
    from i2sb.network import build_i2sb_net, save_i2sb_checkpoint

    run = make_run(tmp / "run")
    net = build_i2sb_net("tiny", 100)
    shadow = [torch.full_like(p, float("nan")) for p in net.parameters()]
    ema = {"decay": 0.99, "num_updates": 1, "shadow_params": shadow, "collected_params": None}
    save_i2sb_checkpoint(run / "latest.pt", net, ema, {}, None)
    return sample(run, photo_folder(tmp / "photos"), tmp / "part_0_1.npz")


def _stale_temporary(tmp: Path) -> Result:
    config = train_config(tmp, photo_folder(tmp / "photos"))
    (tmp / "run").mkdir()
    (tmp / "run" / "latest.tmp-999999.pt").write_bytes(b"half a checkpoint")
    return _train(tmp, "sr4x-pool", config)


def _integral_float_iterations(tmp: Path) -> Result:
    config = train_config(tmp, photo_folder(tmp / "photos"))
    return _train(tmp, "sr4x-pool", config, "--set", "train.iterations=2.0")


def _trained_two(result: Result, tmp: Path) -> bool:
    saved = torch.load(tmp / "run" / "latest.pt", weights_only=True)
    return int(saved["iteration"]) == 2


def _config_value(tmp: Path, values: dict) -> Result:
    path = tmp / "c.yaml"
    path.write_text(json.dumps(values))
    return cli("config", path)


def _config_prints(key: str, expected) -> Callable[[Result, Path], bool]:
    def check(result: Result, tmp: Path) -> bool:
        value = json.loads(result.out)
        for part in key.split("."):
            value = value[part]
        return value == expected and type(value) is type(expected)

    return check


def _snakemake_override(tmp: Path) -> Result:
    code = textwrap.dedent(
        f"""
        import shutil, sys
        from pathlib import Path
        repo, work = Path({str(REPO)!r}), Path({str(tmp)!r})
        for name in ("Snakefile", "workflow", "config", "envs", "profiles"):
            src = repo / name
            (shutil.copytree if src.is_dir() else shutil.copy)(src, work / name)
        from snakemake.cli import main
        main(["-n", "--cores", "1", "--config", "tasks=[jpeg-5]", "nfe=[10,100]"])
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)  # fmt: skip
    return Result(proc.returncode, proc.stdout, proc.stderr)


def _planned_nfe_10_and_100(result: Result, tmp: Path) -> bool:
    """The override replaced config.yaml's NFEs (5, 20): jobs at nfe10/nfe100, none at nfe20."""
    return "nfe10/" in result.out and "nfe100/" in result.out and "nfe20/" not in result.out


def _broken_checkpoint(content: bytes) -> Callable[[Path], Result]:
    def run(tmp: Path) -> Result:
        run_dir = make_run(tmp / "run")
        (run_dir / "latest.pt").write_bytes(content)
        return cli("restore", "--ckpt", run_dir, "--nfe", "2", photo(tmp / "x.png"), "--out",
                   tmp / "out")  # fmt: skip

    return run


def _no_torch_advice(result: Result, tmp: Path) -> bool:
    return "weights_only" not in result.err


def _truncated_lmdb(tmp: Path) -> Result:
    assert convert(photo_folder(tmp / "photos") / "val", tmp / "data").code == 0
    data_mdb = tmp / "data" / "val_faster_imagefolder.lmdb" / "data.mdb"
    data_mdb.write_bytes(data_mdb.read_bytes()[:100])
    return sample(make_run(tmp / "run"), tmp / "data", tmp / "part_0_1.npz")


def _decompression_bomb(tmp: Path) -> Result:
    path = tmp / "bomb.png"

    # a valid PNG header claiming 30000 x 30000 pixels (Pillow refuses it as a bomb when opened)
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                     + chunk(b"IDAT", zlib.compress(b"\x00" * 100)) + chunk(b"IEND", b""))  # fmt: skip
    return cli("corrupt", "--task", "jpeg-10", path, "--out", tmp / "out", "--size", "32")


def _output_under_a_file(tmp: Path) -> Result:
    run = make_run(tmp / "run")
    sample(run, photo_folder(tmp / "photos"), tmp / "part_0_1.npz")
    (tmp / "blocker").write_text("a file where a folder is expected")
    return cli("gather", tmp / "part_0_1.npz", "--out", tmp / "blocker" / "samples.npz")


def _corrupt_16bit(tmp: Path) -> Result:
    path, _ = gray16_png(tmp / "gray16.png")
    return cli("corrupt", "--task", "jpeg-10", path, "--out", tmp / "out", "--size", "32")


def _clean_mean_right(result: Result, tmp: Path) -> bool:
    _, mean = gray16_png(tmp / "again" / "gray16.png")
    clean = next((tmp / "out").glob("*clean*"))
    return abs(np.asarray(Image.open(clean).convert("RGB"), float).mean() - mean) < 5


def _convert_16bit(tmp: Path) -> Result:
    gray16_png(tmp / "src" / "cls" / "gray16.png")
    return convert(tmp / "src", tmp / "data")


def _stored_16bit_right(result: Result, tmp: Path) -> bool:
    _, mean = gray16_png(tmp / "again" / "gray16.png")
    return abs(lmdb_image(tmp / "data", "val").astype(float).mean() - mean) < 1


def _garbled_jpeg(tmp: Path) -> Result:
    path = tmp / "src" / "cls" / "g.jpg"
    path.parent.mkdir(parents=True)
    pixels = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, "JPEG", quality=90)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 50] = np.random.default_rng(3).integers(0, 256, 50, np.uint8).tobytes()
    path.write_bytes(bytes(data))
    return convert(tmp / "src", tmp / "data")


def _warned(result: Result, tmp: Path) -> bool:
    return "warning" in result.out.lower() and "g.jpg" in result.out


def _absolute_then_relative(tmp: Path) -> Result:
    photo_folder(tmp / "photos")
    assert convert(tmp / "photos" / "val", tmp / "data").code == 0
    cwd = os.getcwd()
    os.chdir(tmp)
    try:
        return convert(Path("photos") / "val", tmp / "data")
    finally:
        os.chdir(cwd)


def _changed_source(tmp: Path) -> Result:
    photo_folder(tmp / "photos")
    assert convert(tmp / "photos" / "val", tmp / "data").code == 0
    (tmp / "photos" / "val" / "a" / "a0.png").write_bytes(b"\x89PNG now corrupt")
    os.utime(tmp / "photos" / "val" / "a" / "a0.png", ns=(1, 1))
    return convert(tmp / "photos" / "val", tmp / "data")


def _non_utf8_name(tmp: Path) -> Result:
    photo_folder(tmp / "photos")
    bad = os.path.join(os.fsencode(tmp / "photos" / "val" / "a"), b"caf\xe9.png")
    with open(bad, "wb") as handle:
        handle.write((tmp / "photos" / "val" / "a" / "a0.png").read_bytes())
    return convert(tmp / "photos" / "val", tmp / "data")


def _huge_demo(tmp: Path) -> Result:
    # In a child with 3 GB of address space: without a bound the request fails on memory.
    code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30)); "
            "from i2sb.cli import main; sys.exit(main(sys.argv[1:]))")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", code, "data", "demo", str(tmp / "photos"),
                           "--size", "100000"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO)})  # fmt: skip
    traceback = "Traceback" in proc.stderr or proc.returncode < 0
    return Result(None if traceback else proc.returncode, proc.stdout, proc.stderr[-300:])


def _tables(tmp: Path, experiment: str, uri: str | None = None) -> Result:
    return cli("tables", "--tracking-uri", uri or f"sqlite:///{tmp}/mlflow.db", "--experiment",
               experiment, "--out", tmp / "tables", "--artifact-root", tmp / "art")  # fmt: skip


def _misspelt_experiment(tmp: Path) -> Result:
    from test_tracking_data import make_run as make_tracked

    from i2sb.tracking import track

    track(**make_tracked(tmp / "bench", task="jpeg-5", nfe=5),
          tracking_uri=f"sqlite:///{tmp}/mlflow.db", artifact_root=str(tmp / "art"))  # fmt: skip
    return _tables(tmp, "bnech")


def _new_store_path(tmp: Path) -> Result:
    return _tables(tmp, "demo", f"sqlite:///{tmp}/not/made/yet/mlflow.db")


def _missing_partition(tmp: Path) -> Result:
    run, photos = make_run(tmp / "run"), photo_folder(tmp / "photos")
    cli("sample", "--ckpt", run, "--data-dir", photos, "--nfe", "2", "--max-images", "4",
        "--partition", "0_2", "--out", tmp / "part_0_2.npz")  # fmt: skip
    return cli("gather", tmp / "part_0_2.npz", "--out", tmp / "samples.npz")


def _truncated_jpeg(tmp: Path) -> Result:
    photo_folder(tmp / "photos")
    path = tmp / "photos" / "val" / "a" / "t.jpg"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(path, "JPEG")
    path.write_bytes(path.read_bytes()[:200])
    return convert(tmp / "photos" / "val", tmp / "data")


def _named_skip(words: str) -> Callable[[Result, Path], bool]:
    return lambda result, tmp: all(w in result.out for w in words.split("|"))


def _profile(tmp: Path, *extra) -> Result:
    return cli("slurm-profile", "--base", PROFILE, "--account", "a", "--partition", "p", *extra)


def _hand_written_profile(tmp: Path) -> Result:
    (tmp / "config.yaml").write_text("jobs: 3  # mine\n")
    return _profile(tmp, "--out", tmp)


def _special_sources(tmp: Path) -> Result:
    photo_folder(tmp / "photos")
    os.mkfifo(tmp / "photos" / "val" / "a" / "pipe.png")
    (tmp / "photos" / "val" / "b" / "zero.png").symlink_to("/dev/zero")
    return convert(tmp / "photos" / "val", tmp / "data")


def _rotated_photo(tmp: Path) -> Result:
    """Stored 40 x 20 (left dark, right bright) with EXIF orientation 6: viewers show 20 x 40."""
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, 20:] = 255
    exif = Image.Exif()
    exif[0x0112] = 6
    (tmp / "src" / "cls").mkdir(parents=True)
    Image.fromarray(pixels).save(tmp / "src" / "cls" / "r.jpg", "JPEG", exif=exif)
    return convert(tmp / "src", tmp / "data")


def _stored_upright(result: Result, tmp: Path) -> bool:
    stored = lmdb_image(tmp / "data", "val")  # decoded as the official reader does (no EXIF)
    return stored.shape[:2] == (40, 20) and stored[:10].mean() < 60 < 200 < stored[-10:].mean()


def _gather_after_kill(tmp: Path) -> Result:
    from test_leftovers import killed_write

    run = make_run(tmp / "run")
    sample(run, photo_folder(tmp / "photos"), tmp / "part_0_1.npz")
    killed_write(tmp / "samples.npz")
    return cli("gather", tmp / "part_0_1.npz", "--out", tmp / "samples.npz")


def _demo_after_kill(tmp: Path) -> Result:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    (tmp / f".photos.tmp-{dead}" / "train").mkdir(parents=True)
    return cli("data", "demo", tmp / "photos", "--classes", "1", "--train-per-class", "1",
               "--val-per-class", "1", "--size", "8")  # fmt: skip


def _disk_full(tmp: Path) -> Result:
    from unittest import mock

    def onto_a_full_disk(self: Path, text: str, *args, **kwargs) -> None:
        with open("/dev/full", "w") as handle:
            handle.write(text)

    with mock.patch.object(Path, "write_text", onto_a_full_disk):
        return _profile(tmp, "--out", tmp / "p")


def _dead_server(tmp: Path) -> Result:
    """In a child with a deadline: MLflow's own retries used to stall for minutes."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_HTTP")}
    try:
        proc = subprocess.run([sys.executable, "-m", "i2sb", "tables", "--tracking-uri",
                               f"http://127.0.0.1:{port}", "--experiment", "x", "--out", tmp / "t"],
                              capture_output=True, text=True, timeout=90,
                              env={**env, "PYTHONPATH": str(REPO)})  # fmt: skip
    except subprocess.TimeoutExpired:
        return Result(None, "", "no answer within 90 s")
    traceback = "Traceback" in proc.stderr
    return Result(None if traceback else proc.returncode, proc.stdout, proc.stderr[-300:])


def _scancelled_slurm_job(tmp: Path) -> Result:
    """Issue 22 §6: sacct says 'CANCELLED by 0'; one status round of the Slurm plugin as the workflow leaves it.
    Exit 1 is the plugin still waiting for the job (Snakemake would hang): the check calls that silently wrong."""
    proc = subprocess.run([sys.executable, REPO / "tests/slurm/cancelled_job_round.py", tmp], cwd=REPO,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO)})  # fmt: skip
    if "Traceback" in proc.stderr:
        return Result(None, proc.stdout, proc.stderr[-300:])
    return Result(
        0 if proc.returncode in (0, 1) else proc.returncode, proc.stdout, proc.stderr[-300:]
    )


def _yaml_config(text: str) -> Callable[[Path], Result]:
    """``i2sb config`` on a YAML file holding ``text`` (YAML's own .nan / .inf, not JSON's)."""

    def run(tmp: Path) -> Result:
        (tmp / "c.yaml").write_text(text)
        return cli("config", tmp / "c.yaml")

    return run


def _published(tmp: Path, **options) -> Path:
    """A fake published sr4x-pool folder (tests/fake_published.py), options.pkl changed."""
    from fake_published import make_published_folder, reference_options

    folder = make_published_folder(tmp / "sr4x-pool")
    changed = reference_options("sr4x-pool", 100, 32, "tiny")
    for key, value in options.items():
        setattr(changed, key, value)
    (folder / "options.pkl").write_bytes(pickle.dumps(changed))
    return folder


def _check_published(folder: Path) -> Result:
    return cli("download-checkpoint", "sr4x-pool", "--dir", folder.parent, "--image-size", "32")


def _pickle_beside_json(tmp: Path) -> Result:
    folder = _published(tmp)
    options = {"task": "sr4x-pool", "preset": "tiny", "image_size": 32, "cond_x1": False,
               "interval": 100, "t0": 1e-4, "T": 1.0, "beta_max": 0.3, "ot_ode": False}  # fmt: skip
    (folder / "options.json").write_text(json.dumps(options))
    (folder / "options.pkl").write_bytes(pickle.dumps({"net": subprocess.Popen}))
    return _check_published(folder)


def _flipped_crc(tmp: Path) -> Result:
    import zipfile

    folder = _published(tmp)
    latest = folder / "latest.pt"
    data = bytearray(latest.read_bytes())
    with zipfile.ZipFile(latest) as archive:
        member = max(archive.infolist(), key=lambda info: info.file_size)
    name_len, extra_len = struct.unpack_from("<HH", data, member.header_offset + 26)
    data[member.header_offset + 30 + name_len + extra_len + member.file_size // 2] ^= 1
    latest.write_bytes(bytes(data))
    return _check_published(folder)


class _Calls:
    """Pickles as ``func(*args)``."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _bytearray_checkpoint(tmp: Path) -> Result:
    """A latest.pt whose pickle asks for bytearray(10**8): torch's weights_only admits it."""
    buffer = io.BytesIO()
    torch.save({"net": _Calls(bytearray, 10**8)}, buffer)
    return _broken_checkpoint(buffer.getvalue())(tmp)


def _huge_bytearray_pickle(tmp: Path) -> Result:
    folder = _published(tmp)
    # copyreg._reconstructor(bytearray, bytearray, 10**10): bytearray(10**10) while unpickling
    (folder / "options.pkl").write_bytes(
        b"ccopyreg\n_reconstructor\n(c__builtin__\nbytearray\nc__builtin__\nbytearray\n"
        b"I10000000000\ntR."
    )
    return _check_published(folder)


CASES = [
    # item 1: stale parts
    Case("retrained run, same part file", "handled", _retrained, check=_recomputed),
    Case("other photos, same part file", "handled", _other_photos, check=_recomputed),
    Case("evaluate a lone part", "error", _lone_part, ("part_0_2.npz", "gather")),
    Case("a photo replaced in place, same byte size", "handled", _same_size_swap,
         check=_recomputed),
    Case("gather parts sampled with different seeds", "error", _gather_mixed_seeds,
         ("seed=1", "seed=0", "part_1_2.npz")),
    Case("evaluate samples of seed 0 under a config of seed 7", "error", _evaluate_other_seed,
         ("samples.npz", "seed is 0", "7 now")),
    # item 2: cross-task resume
    Case("train jpeg-10 into an sr4x run", "error", _cross_task, ("task", "sr4x-pool")),
    Case("resume with another beta_max", "error", _other_beta, ("beta_max",)),
    Case("resume with another train.lr (latest.pt restores the old one)", "error", _other_lr,
         ("config.train.lr", "remove")),
    Case("resume a run past train.iterations", "error", _fewer_iterations,
         ("past train.iterations=1",)),
    # NaN: sampling a checkpoint with NaN weights wrote black images that evaluation scored
    Case("sample a checkpoint with NaN weights", "error", _nan_weights,
         ("part_0_1.npz", "NaN or inf")),
    # item 4: 16-bit and garbled images
    Case("16-bit PNG through corrupt", "handled", _corrupt_16bit, check=_clean_mean_right),
    Case("16-bit PNG through convert", "handled", _convert_16bit, check=_stored_16bit_right),
    Case("garbled JPEG in convert", "handled", _garbled_jpeg, check=_warned),
    # item 5: config types and rules
    Case("train.iterations=2.0 (--set)", "handled", _integral_float_iterations, check=_trained_two),
    Case("iterations: 4.0 in YAML", "handled",
         lambda t: _config_value(t, {"train": {"iterations": 4.0}}),
         check=_config_prints("train.iterations", 4)),
    Case("image_size: 32.0 in YAML", "handled",
         lambda t: _config_value(t, {"data": {"image_size": 32.0}}),
         check=_config_prints("data.image_size", 32)),
    Case("partitions: '2' (a string)", "handled", lambda t: _config_value(t, {"partitions": "2"}),
         check=_config_prints("partitions", 2)),
    Case("partitions: 2.5", "error", lambda t: _config_value(t, {"partitions": 2.5}), ("partitions",)),
    Case("iterations: 'many'", "error",
         lambda t: _config_value(t, {"train": {"iterations": "many"}}), ("train.iterations",)),
    Case("bridge t0 >= T", "error", lambda t: _config_value(t, {"bridge": {"t0": 1.0, "T": 0.5}}),
         ("bridge.t0",)),
    Case("validate_nfe >= interval", "error",
         lambda t: _config_value(t, {"train": {"validate_nfe": 5000}}), ("train.validate_nfe",)),
    Case("documented snakemake --config nfe='[10,100]'", "handled", _snakemake_override,
         check=_planned_nfe_10_and_100),
    Case("misspelt config key", "error", lambda t: _config_value(t, {"train": {"iteratons": 3}}),
         ("iteratons",)),
    Case("unknown task", "error", lambda t: _config_value(t, {"tasks": ["denoise"]}), ("denoise",)),
    # item 6: tracebacks where a message belongs
    Case("empty latest.pt", "error", _broken_checkpoint(b""), ("latest.pt", "empty")),
    Case("pickled object as latest.pt", "error",
         _broken_checkpoint(pickle.dumps({"net": object()})), ("latest.pt", "does not run code")),
    Case("text file as latest.pt", "error", _broken_checkpoint(b"hello\n"), ("latest.pt",)),
    Case("truncated data.mdb", "error", _truncated_lmdb, ("lmdb", "convert")),
    Case("decompression bomb PNG", "error", _decompression_bomb, ("bomb.png",)),
    Case("output folder is a file", "error", _output_under_a_file, ("blocker",)),
    Case("missing run folder", "error",
         lambda t: cli("restore", "--ckpt", t / "nope", "--nfe", "2", photo(t / "x.png"), "--out", t),
         ("nope",)),
    Case("partition 3_2", "error",
         lambda t: cli("sample", "--ckpt", make_run(t / "run"), "--data-dir", t, "--nfe", "2",
                       "--partition", "3_2", "--out", t / "p.npz"), ("--partition",)),
    Case("gather with a partition missing", "error", _missing_partition, ("part_1_2",)),
    Case("evaluate a text file", "error",
         lambda t: cli("evaluate", photo(t / "x.png"), "--task", "jpeg-10", "--out", t / "m.json",
                       "--metrics", "psnr", "ssim"), ("x.png",)),
    Case("config file is not YAML", "error",
         lambda t: (t / "c.yaml").write_text("train: [unclosed\n") and cli("config", t / "c.yaml"),
         ("c.yaml", "yaml")),
    Case("--set without '='", "error",
         lambda t: cli("train", "--task", "sr4x-pool", "--out", t / "run", "--set", "train.lr"),
         ("KEY=VALUE",)),
    Case("--set a misspelt key", "error",
         lambda t: cli("train", "--config", REPO / "config" / "config.yaml", "--task",
                     "sr4x-pool", "--out", t / "run", "--set", "train.lrr=1"),
         ("lrr",)),
    Case("--set a value that is not YAML", "error",
         lambda t: cli("train", "--task", "sr4x-pool", "--out", t / "run", "--set", "nfe=[10,"),
         ("--set nfe", "[10,", "line 1")),
    Case("nfe: '[10,' (a list as text, not YAML)", "error",
         lambda t: _config_value(t, {"nfe": "[10,"}), ("nfe", "[10,")),
    Case("a retired evaluate.<metric> boolean", "error",
         lambda t: cli("evaluate", "s.npz", "--task", "jpeg-10", "--out", t / "m.json",
                       "--config", REPO / "config" / "config.yaml", "--set", "evaluate.fid=false"),
         ("evaluate.fid", "evaluate.metrics")),
    Case("an unknown metric name", "error",
         lambda t: cli("evaluate", "s.npz", "--task", "jpeg-10", "--out", t / "m.json",
                       "--metrics", "psnr", "sharpness"), ("evaluate.metrics", "sharpness")),
    Case("options.json is not JSON", "error",
         lambda t: (make_run(t / "run") / "options.json").write_text("{oops")
         and cli("restore", "--ckpt", t / "run", "--nfe", "2", photo(t / "x.png"), "--out", t),
         ("options.json",)),
    Case("restore a text file as an image", "error",
         lambda t: (t / "notes.png").write_text("not an image")
         and cli("restore", "--ckpt", make_run(t / "run"), "--nfe", "2", t / "notes.png",
                 "--out", t / "out"), ("notes.png",)),
    Case("sample an empty data folder", "error",
         lambda t: (t / "val").mkdir() or cli("sample", "--ckpt", make_run(t / "run"), "--data-dir",
                                              t, "--nfe", "2", "--out", t / "p.npz"), ("val",)),
    # item 7: data left behind or overwritten
    Case("gather --out = its input", "error", _gather_onto_part, ("part_0_1.npz",)),
    Case("stale latest.tmp-<pid>.pt", "handled", _stale_temporary,
         check=lambda r, t: not (t / "run" / "latest.tmp-999999.pt").exists()),
    Case("convert: absolute then relative source", "handled", _absolute_then_relative,
         check=lambda r, t: lmdb_entries(t / "data", "val") == 4),
    Case("convert: source file corrupt since", "handled", _changed_source,
         check=_named_skip("a0.png")),
    Case("convert: non-UTF-8 file name", "handled", _non_utf8_name,
         check=_named_skip("caf\\xe9.png|UTF-8")),
    Case("convert: truncated JPEG", "handled", _truncated_jpeg, check=_named_skip("t.jpg")),
    Case("data demo --size 100000", "error", _huge_demo, ("size",)),
    Case("tables: misspelt experiment", "error", _misspelt_experiment, ("bnech", "bench")),
    Case("tables: sqlite store in a new folder", "error", _new_store_path, ("not/made/yet",)),
    # issue 22 §4-5: the user's files kept, names never paths, special files, leftovers
    Case("slurm-profile over a hand-written profile", "error", _hand_written_profile,
         ("config.yaml", "--force")),
    Case("slurm-profile --name ../escape", "error",
         lambda t: _profile(t, "--name", "../escape"),
         ("--name", "never a path")),
    Case("benchmark: '..'", "error", lambda t: _config_value(t, {"benchmark": ".."}),
         ("benchmark", "never a path")),
    Case("a task named '../x'", "error", lambda t: _config_value(t, {"tasks": ["../x"]}),
         ("tasks", "../x")),
    Case("convert: a FIFO and a link to /dev/zero named *.png", "handled", _special_sources,
         check=_named_skip("special files|pipe.png|zero.png")),
    Case("restore a FIFO named *.png", "error",
         lambda t: os.mkfifo(t / "pipe.png") or cli("restore", "--ckpt", make_run(t / "run"),
                                                   "--nfe", "2", t / "pipe.png", "--out", t / "o"),
         ("pipe.png", "not a regular file")),
    Case("convert: EXIF-rotated JPEG", "handled", _rotated_photo, check=_stored_upright),
    Case("gather after a kill -9 mid-write", "handled", _gather_after_kill,
         check=lambda r, t: not list(t.glob("samples.tmp-*")) and (t / "samples.npz").is_file()),
    Case("data demo after a kill -9 mid-build", "handled", _demo_after_kill,
         check=lambda r, t: not list(t.glob(".photos.tmp-*")) and (t / "photos").is_dir()),
    Case("disk full (ENOSPC) while writing", "error", _disk_full, ("config.yaml", "no space")),
    Case("tables: dead tracking server", "error", _dead_server, ("unreachable", "http://127.0.0.1")),
    Case("Slurm: a scancelled job (sacct 'CANCELLED by 0')", "handled", _scancelled_slurm_job,
         check=lambda r, t: "reported failed: SLURM-job '12' failed" in r.out),
    # issue 22 §2: no GPU on no-ops
    Case("cddb listed on inpaint-center (ddpm's images)", "error",
         lambda t: _config_value(t, {"tasks": ["inpaint-center"], "samplers": [
             {"name": "ddpm"}, {"name": "cddb", "tasks": ["inpaint-center"]}]}),
         ("samplers[1]", "inpaint-center", "ddpm's images exactly")),
    Case("restore --sampler cddb on inpaint-center", "error",
         lambda t: cli("restore", "--ckpt", make_run(t / "run", task="inpaint-center"), "--nfe", "2",
                       photo(t / "x.png"), "--out", t / "o", "--sampler", "cddb"),
         ("inpaint-center", "ddpm's images exactly")),
    # issue 22 §3: every number finite, a published folder checked in full
    Case("train.lr: .nan in YAML", "error", _yaml_config("train:\n  lr: .nan\n"),
         ("train.lr", "finite")),
    Case("rendezvous_timeout_s: .inf (a dead node hangs)", "error",
         _yaml_config("train:\n  resources:\n    rendezvous_timeout_s: .inf\n"),
         ("train.resources.rendezvous_timeout_s", "finite")),
    Case("sample --eta nan", "error",
         lambda t: cli("sample", "--ckpt", make_run(t / "run"), "--data-dir", t, "--nfe", "2",
                       "--out", t / "x.npz", "--sampler", "implicit", "--eta", "nan"),
         ("--eta", "got nan")),
    Case("published options.pkl: ot_ode 'False' (a string)", "error",
         lambda t: _check_published(_published(t, ot_ode="False")),
         ("options.pkl", "ot_ode", "'False'")),
    Case("published options.pkl: beta_max NaN", "error",
         lambda t: _check_published(_published(t, beta_max=float("nan"))),
         ("options.pkl", "beta_max", "finite")),
    Case("hostile options.pkl beside a good options.json", "error", _pickle_beside_json,
         ("options.pkl", "refusing subprocess.Popen")),
    Case("latest.pt: a flipped byte inside a member", "error", _flipped_crc,
         ("latest.pt", "member", "CRC")),
    Case("options.pkl asking for bytearray(10**10)", "error", _huge_bytearray_pickle,
         ("options.pkl", "refusing")),
    Case("latest.pt asking for bytearray(10**8)", "error", _bytearray_checkpoint,
         ("latest.pt", "bytearray", "refusing")),
]  # fmt: skip


def run_suite(root: Path) -> list[tuple[Case, str, str]]:
    rows = []
    for number, case in enumerate(CASES):
        kind, detail = outcome(case, root / f"case{number:02d}")
        rows.append((case, kind, detail))
    return rows


def table(rows: list[tuple[Case, str, str]]) -> str:
    lines = ["| case | expected | outcome | detail |", "|---|---|---|---|"]
    for case, kind, detail in rows:
        detail = detail.replace("|", "/").replace("\n", " ")
        lines.append(f"| {case.name} | {case.expected} | {kind} | {detail} |")
    counts = Counter(kind for _, kind, _ in rows)
    lines.append("")
    lines.append(
        f"tried {len(rows)}: clear error {counts['clear error']}, handled {counts['handled']}, "
        f"traceback {counts['traceback']}, silently wrong {counts['silently wrong']}, "
        f"unclear error {counts['unclear error']}"
    )
    return "\n".join(lines)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_adversarial_case(case, tmp_path, monkeypatch):
    """One case of the table: a clear error (naming what it must) or handled, never a
    traceback, silently wrong or unclear error. ``python tests/test_adversarial.py`` prints the
    whole table with its counts."""
    monkeypatch.setenv("I2SB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no weights: FID/CA never run
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        kind, detail = outcome(case, tmp_path / "case")
    finally:
        torch.set_num_threads(threads)
    assert kind in ("clear error", "handled"), f"{case.name}: {kind}: {detail}"


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        print(table(run_suite(Path(folder))))
