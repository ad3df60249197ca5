"""Peak memory of gather and evaluate against the number of images, at 256 px.

Writes synthetic part files (uint8 recon, clean and degraded of 256 x 256 px, as a 4x SR or
deblurring run saves them) for N images in 4 partitions. Then, each in a fresh subprocess, it
measures the peak RSS of:

- ``imports``: importing what gather and evaluate import, and nothing else (the floor);
- ``gather``: ``i2sb.sample.gather.gather_parts``, which streams the images chunk by chunk;
- ``gather whole``: the previous way, the baseline: every part loaded whole, the arrays
  concatenated in index order and saved with ``np.savez`` (only up to ``--whole-max`` images);
- ``evaluate``: ``evaluate_samples`` with the weight-free metrics, which reads the images in
  batches of evaluate.batch_size: PSNR at every N, PSNR + SSIM at the smallest only (SSIM
  costs ~0.1-0.3 s an image on 2 loaded cores);
- with ``--models``, ``evaluate models``: FID (reference from the clean images) and CA with
  randomly initialised Inception-v3 and ResNet-50 (the layers, activations and memory of the
  real ones, no download), PSNR and SSIM, at the smallest N, on the CPU.

The peak is the child's VmHWM (/proc/self/status), not ru_maxrss: Linux carries the parent's
high-water mark over fork and exec into the child's ru_maxrss, which here would count the
parent's part-writing buffers. It prints each peak, the part above the import floor, and a straight-line fit of the peak
against N extrapolated to the 50k ImageNet validation images (the fit's slope is the memory per
image; streamed, it should be ~0). Run time ~3 min on 2 loaded cores (the writing of the
synthetic parts takes half); temporary files (up to 3.4 GB at the default sizes) go under
--tmp and are deleted.

    .venv/bin/python benchmarks/bench_gather_memory.py
    .venv/bin/python benchmarks/bench_gather_memory.py --models     # + FID/CA models, ~1 min more
    .venv/bin/python benchmarks/bench_gather_memory.py --gather-sizes 500,2000,8000 --evaluate-sizes 500,2000
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SIZE = 256
PARTS = 4
FULL_SET = 50_000

CHILD = """
import sys, time
from pathlib import Path
import numpy as np
from i2sb.config import EvaluateConfig
from i2sb.metrics.evaluate import evaluate_samples
from i2sb.sample.gather import gather_parts
from i2sb.sample.parts import Part, read_part, write_part

what, folder = sys.argv[1], Path(sys.argv[2])
parts = sorted(folder.glob("part_*.npz"))
start = time.perf_counter()
if what == "gather":
    gather_parts(parts, folder / "samples.npz")
elif what == "gather whole":
    loaded = [read_part(p) for p in parts]
    order = np.argsort(np.concatenate([p.indices for p in loaded]), kind="stable")
    def joined(key):
        return np.concatenate([getattr(p, key) for p in loaded])[order]
    whole = Part(joined("recon"), joined("clean"), joined("indices"), joined("labels"),
                 {}, joined("degraded"))
    write_part(folder / "whole.npz", whole)
elif what == "evaluate models":
    import torch, torchvision
    torch.manual_seed(0)  # random weights: the same layers, activations and memory as the real ones
    inception = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False)
    inception.fc = torch.nn.Identity()
    resnet = torchvision.models.resnet50(weights=None)
    settings = EvaluateConfig(metrics=("fid", "ca", "psnr", "ssim"), fid_reference_from_clean=True)
    evaluate_samples(folder / "samples.npz", "sr4x-pool", folder / "metrics.json", settings,
                     inception.eval(), resnet.eval(), device="cpu")
elif what.startswith("evaluate"):
    metrics = tuple(what.split()[1:])
    evaluate_samples(folder / "samples.npz", "sr4x-pool", folder / "metrics.json",
                     EvaluateConfig(metrics=metrics), device="cpu")
seconds = time.perf_counter() - start
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
print(int(status["VmHWM"].split()[0]) / 1024, seconds)
"""


def write_parts(folder: Path, count: int) -> None:
    """``count`` images in PARTS part files, from 64 random images (copies, so writing is quick)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from i2sb.sample.parts import Part, write_part

    rng = np.random.default_rng(0)
    pool = rng.integers(0, 256, (64, 3, SIZE, SIZE), dtype=np.uint8)
    noise = rng.integers(0, 8, (64, 3, SIZE, SIZE), dtype=np.uint8)
    meta = {
        "task": "sr4x-pool",
        "nfe": 5,
        "total": count,
        "seed": 0,
        "clip_denoise": False,
        "dataset": {"name": "synthetic", "kind": "imagefolder"},
    }  # evaluation reads it
    for index in range(PARTS):
        positions = np.arange(index * count // PARTS, (index + 1) * count // PARTS)
        clean = pool[positions % 64]
        recon = clean + noise[positions % 61]
        degraded = clean + noise[positions % 59] * 4
        part_meta = {**meta, "partition": [index, PARTS], "num_images": len(positions)}
        part = Part(recon, clean, positions, positions % 1000, part_meta, degraded)
        write_part(folder / f"part_{index}_{PARTS}.npz", part)


def measure(what: str, folder: Path) -> tuple[float, float]:
    """(peak RSS in MB, seconds) of ``what`` in a fresh interpreter."""
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, what, str(folder)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(f"{what} on {folder} failed:\n{proc.stderr[-2000:]}")
    peak, seconds = proc.stdout.split()[-2:]
    return float(peak), float(seconds)


def fit(points: list[tuple[int, float]]) -> str:
    """'a + b MB/image -> X MB at 50k' from (N, MB) points (least squares)."""
    if len(points) < 2:
        return "(one point: no fit)"
    counts, peaks = np.array([p[0] for p in points]), np.array([p[1] for p in points])
    slope, intercept = np.polyfit(counts, peaks, 1)
    return (
        f"{intercept:.0f} MB + {slope * 1024:.1f} KB/image -> "
        f"{intercept + slope * FULL_SET:,.0f} MB at {FULL_SET:,} images"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gather-sizes", default="100,1000,3000")
    parser.add_argument("--evaluate-sizes", default="100,1000")
    parser.add_argument("--whole-max", type=int, default=1000, help="largest N for the baseline")
    parser.add_argument("--models", action="store_true", help="also evaluate with FID and CA")
    parser.add_argument("--tmp", default=tempfile.gettempdir())
    args = parser.parse_args()
    gather_sizes = [int(n) for n in args.gather_sizes.split(",")]
    evaluate_sizes = [int(n) for n in args.evaluate_sizes.split(",")]
    image_mb = 3 * SIZE * SIZE * 3 / 2**20  # recon + clean + degraded of one image
    print(f"{SIZE} px, recon + clean + degraded = {image_mb:.2f} MB an image, {PARTS} parts")
    root = Path(tempfile.mkdtemp(prefix="bench_gather_", dir=args.tmp))
    rows: dict[str, list[tuple[int, float]]] = {}
    try:
        floor, _ = measure("imports", root)
        print(f"imports only: {floor:.0f} MB peak RSS\n")
        print(f"{'measurement':<22}{'N':>7}{'data MB':>9}{'peak MB':>9}{'above floor':>12}{'s':>7}")
        for count in sorted(set(gather_sizes) | set(evaluate_sizes)):
            folder = root / str(count)
            folder.mkdir()
            started = time.perf_counter()
            write_parts(folder, count)
            todo = ["gather"] if count in gather_sizes else []
            if count <= args.whole_max and count in gather_sizes:
                todo.append("gather whole")
            if count in evaluate_sizes:
                todo.append("evaluate psnr")
                if count == min(evaluate_sizes):
                    todo += ["evaluate psnr ssim"] + (["evaluate models"] if args.models else [])
                if "gather" not in todo:
                    todo.insert(0, "gather")
            for what in todo:
                peak, seconds = measure(what, folder)
                if what != "gather" or count in gather_sizes:
                    rows.setdefault(what, []).append((count, peak))
                print(
                    f"{what:<22}{count:>7}{count * image_mb:>9.0f}{peak:>9.0f}"
                    f"{peak - floor:>12.0f}{seconds:>7.1f}"
                )
            shutil.rmtree(folder)
            print(f"{'':<22}{'':>7}(N={count} took {time.perf_counter() - started:.0f} s)")
        print("\nstraight-line fit of the peak (least squares over N):")
        for what, points in rows.items():
            print(f"  {what:<20} {fit(points)}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
