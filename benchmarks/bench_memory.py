"""Peak memory of whole jobs: a sampling job on a published adm256 folder, before and after.

Writes a fake published run folder the way bench_checkpoint_load.py does (formula weights, no
download): latest.pt with net, EMA, AdamW state and StepLR state, ~8.85 GB for adm256 like each
of the paper's nine folders, and options.pkl. A 256 px photo (scikit-image's astronaut) is the
validation folder. Then the same whole job, ``i2sb sample`` at NFE 1 on it (checkpoint
fingerprint, data, sampling, part file), runs in a fresh process under
``/usr/bin/time -v`` twice:

- ``before``: the previous loading (the network keeps the memory-mapped EMA tensors; the sampler
  then makes its channels_last / cast copies while the mapping, kept alive by the tensors that
  were not copied, still holds the pages it read: the weights twice);
- ``after``: ``Restorer.load`` now: each weight copied once into its final layout and dtype,
  group by group, and the mapping released.

Reports "Maximum resident set size" of each job (the whole process) and checks both wrote the
same restorations. ``--preset small`` is a quick dry run. Needs ~9 GB of free RAM while the
checkpoint is written, and ~9 GB of disk (``--tmp``), deleted at the end.

``--job train``: a whole ``i2sb train`` job, one iteration at batch 1 from scratch (no ADM
download), ending as every run does with a checkpoint (latest.pt) and a validation pass
(1 image, NFE 1), at ``--train-size`` px. With ``--baseline REV`` the same job also runs on the
code of git revision REV (``git archive``, on PYTHONPATH), e.g. the commit before a change.
Needs ~15 GB of free RAM on adm256. The weights' share of the peak follows from the preset's
size W (fp32): the net, its gradients, AdamW's two moments and the EMA make 5 W at the
optimizer step, what the official trainer holds too. With ``--official`` the official trainer's
own sequence (official_train_sequence.py: guided-diffusion's UNet, torch_ema, DDP, AdamW, its
checkpoint and validation at iteration 0) runs too, at the same size, under the same timer.

    .venv/bin/python benchmarks/bench_memory.py [--preset adm256] [--precision auto]
    .venv/bin/python benchmarks/bench_memory.py --job train [--train-size 256] [--baseline REV]
        [--official]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_checkpoint_load import WRITE

# The whole `i2sb sample` job with Restorer.load as it was before the weights were held once.
PREVIOUS = """
import sys
from pathlib import Path
from i2sb.cli import main
from i2sb.network import load_i2sb_checkpoint
from i2sb.sample.options import sampling_options
from i2sb.sample.restorer import Restorer

def previous_load(cls, ckpt, device="cpu", precision="auto", compile=False):
    net, raw = load_i2sb_checkpoint(ckpt)  # the network's tensors are the mapped ones
    options = sampling_options(raw, source=str(ckpt))
    return cls(net, options, device, precision, checkpoint=str(Path(ckpt).resolve()),
               compile=compile)

Restorer.load = classmethod(previous_load)
sys.exit(main(sys.argv[1:]))
"""
NOW = "import sys; from i2sb.cli import main; sys.exit(main(sys.argv[1:]))"


def peak_rss_gb(
    code: str, args: list[str], env: dict | None = None, cwd: Path | None = None
) -> tuple[float, float]:
    """(peak RSS in GB, seconds) of ``python -c code args`` under /usr/bin/time -v.

    ``python -c`` puts its working directory first on sys.path: run code from another tree
    (PYTHONPATH) with ``cwd`` outside the repository, or the repository's i2sb is imported.
    """
    if not Path("/usr/bin/time").is_file():
        sys.exit("/usr/bin/time is missing: apt-get install time")
    start = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-v", sys.executable, "-c", code, *args],
                          capture_output=True, text=True, env=env, cwd=cwd)  # fmt: skip
    if done.returncode:
        sys.exit(f"job {args} failed:\n{done.stderr[-3000:]}")
    kbytes = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))
    return kbytes / 2**20, time.perf_counter() - start


def write_photos(root: Path, size: int) -> Path:
    """root/val/photos/astronaut.png at size x size."""
    from PIL import Image
    from skimage import data

    folder = root / "val" / "photos"
    folder.mkdir(parents=True)
    for name in ("astronaut",):
        image = Image.fromarray(getattr(data, name)()).resize((size, size), Image.BICUBIC)
        image.save(folder / f"{name}.png")
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--job", choices=("sample", "train"), default="sample")
    parser.add_argument("--preset", default="adm256", help="network preset (default: adm256)")
    parser.add_argument("--precision", default="auto", help="sample.precision (default: auto)")
    parser.add_argument("--train-size", type=int, default=256, help="training image size")
    parser.add_argument("--baseline", default=None, help="git revision to run the train job on too")
    parser.add_argument("--official", action="store_true",
                        help="train job: also the official trainer's sequence (adm256 only)")  # fmt: skip
    parser.add_argument("--tmp", default="/tmp", help="where the folder is written and deleted")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="i2sb-bench-memory-", dir=args.tmp))
    try:
        if args.job == "train":
            bench_train(root, args)
        else:
            bench_sample(root, args)
    finally:
        shutil.rmtree(root, ignore_errors=True)


TRAIN_SETTINGS = (
    "data.kind=imagefolder", "train.iterations=1", "train.batch_size=1", "train.microbatch=1",
    "train.checkpoint_every=1", "train.validate_every=1", "train.validate_nfe=1",
    "train.validate_images=1", "train.log_every=1", "tracking.live=false",
)  # fmt: skip


def bench_train(root: Path, args) -> None:
    """Peak RSS of one training iteration (+ checkpoint + validation), now and at --baseline."""
    data = write_photos(root / "photos", args.train_size)
    shutil.copytree(data / "val", data / "train")
    settings = [*TRAIN_SETTINGS, f"data.root={data}", f"data.image_size={args.train_size}",
                f"network.preset={args.preset}"]  # fmt: skip
    trees = {"now": Path(__file__).resolve().parents[1]}
    if args.baseline:
        trees[f"at {args.baseline}"] = _code_at(args.baseline, root / "baseline")
    results = {}
    for label, tree in trees.items():
        command = ["train", "--config", str(trees["now"] / "config" / "config.yaml"),
                   "--task", "sr4x-pool", "--out", str(root / f"run-{len(results)}"),
                   "--no-progress", *(f"--set={item}" for item in settings)]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(tree)}
        results[label] = peak_rss_gb(NOW, command, env, cwd=root)
        print(f"{label:>12}: whole train job ({args.preset}, {args.train_size} px, batch 1, one "
              f"iteration + checkpoint + validation) peak RSS {results[label][0]:.2f} GB, "
              f"{results[label][1]:.0f} s")  # fmt: skip
    if args.baseline:
        now, before = results["now"][0], results[f"at {args.baseline}"][0]
        print(f"now / baseline peak RSS: {now / before:.2f} ({before - now:+.2f} GB saved)")
    if args.official:
        official = _official_sequence(root, args)
        print(f"now / official trainer's sequence peak RSS: {results['now'][0] / official:.2f}")


def _official_sequence(root: Path, args) -> float:
    """Peak RSS of official_train_sequence.py (the official trainer's iteration 0) at --train-size."""
    if args.preset != "adm256":
        sys.exit("--official: the official trainer builds adm256 only (--preset adm256)")
    missing = [name for name in ("torch_ema", "guided_diffusion") if not _importable(name)]
    if missing:
        sys.exit(f"--official needs {', '.join(missing)}: pip install -e '.[dev]'")
    script = Path(__file__).with_name("official_train_sequence.py").read_text()
    out = root / "official"
    out.mkdir()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    peak, seconds = peak_rss_gb(script, [str(args.train_size), str(out)], env, cwd=root)
    print(f"{'official':>12}: the official trainer's sequence (guided-diffusion UNet, torch_ema, "
          f"DDP, AdamW; adm256, {args.train_size} px, batch 1, iteration 0 + checkpoint + "
          f"validation) peak RSS {peak:.2f} GB, {seconds:.0f} s")  # fmt: skip
    return peak


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def _code_at(revision: str, folder: Path) -> Path:
    """The i2sb package as of git ``revision``, extracted into ``folder``."""
    folder.mkdir(parents=True)
    repo = Path(__file__).resolve().parents[1]
    archive = subprocess.run(["git", "-C", str(repo), "archive", revision, "i2sb"],
                             capture_output=True, check=True).stdout  # fmt: skip
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def bench_sample(root: Path, args) -> None:
    env_note = f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}"
    folder = root / "published"
    folder.mkdir()
    done = subprocess.run([sys.executable, "-c", WRITE, args.preset, str(folder)],
                          capture_output=True, text=True, check=True)  # fmt: skip
    params = int(done.stdout.split()[-1])
    size = (folder / "latest.pt").stat().st_size
    print(f"{args.preset}: {params / 1e6:.0f} M parameters ({params * 4 / 1e9:.2f} GB in "
          f"fp32); latest.pt {size / 1e9:.2f} GB (net + EMA + AdamW state); {env_note}")  # fmt: skip
    data = write_photos(root / "photos", 256)
    results = {}
    for label, code in (("before", PREVIOUS), ("after", NOW)):
        out = root / f"{label}.npz"
        job = ["sample", "--ckpt", str(folder), "--data-dir", str(data), "--nfe", "1",
               "--partition", "0_1", "--batch-size", "1", "--device", "cpu",
               "--precision", args.precision, "--out", str(out)]  # fmt: skip
        results[label] = peak_rss_gb(code, job)
        print(f"{label:>6}: whole sampling job (1 image, NFE 1) peak RSS "
              f"{results[label][0]:.2f} GB, {results[label][1]:.0f} s")  # fmt: skip
    same = _recon(root / "before.npz") == _recon(root / "after.npz")
    print(f"after / before peak RSS: {results['after'][0] / results['before'][0]:.2f}; "
          f"restorations {'identical' if same else 'DIFFER'}")  # fmt: skip
    if not same:
        sys.exit("the two loaders gave different restorations")


def _recon(path: Path) -> bytes:
    from i2sb.sample.parts import read_part

    return read_part(path).recon.tobytes()


if __name__ == "__main__":
    main()
