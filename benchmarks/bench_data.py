"""Data benchmark: LMDB conversion and read throughput against plain baselines measured in the same run.

Conversion: ours (decode-verify in worker processes, batched transactions) versus a single-process
converter that commits one transaction per image (with and without decoding). Reading: decoded and
transformed images/s from our LMDB versus the same images as an image folder, DataLoader with 0 and
2 workers. Prints ratios; never gates CI.

    .venv/bin/python benchmarks/bench_data.py --per-class 250 --size 64
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import lmdb
import torch

from i2sb.data.demo import make_demo_images
from i2sb.data.folders import ImageFolderDataset, scan_image_folder
from i2sb.data.lmdb_convert import convert_folder, read_and_verify
from i2sb.data.lmdb_dataset import LMDBImageDataset
from i2sb.data.transforms import build_transform


def as_jpeg(src: Path, out: Path) -> Path:
    """The same folder re-encoded as JPEG (quality 90), like ImageNet's files."""
    from PIL import Image

    for path in sorted(src.rglob("*.png")):
        target = out / path.relative_to(src).with_suffix(".jpg")
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.open(path).save(target, "JPEG", quality=90)
    return out


def baseline_convert(src: Path, out: Path, decode: bool) -> float:
    """One process, one write transaction per image; returns images/s."""
    samples = scan_image_folder(src).samples
    start = time.perf_counter()
    env = lmdb.open(str(out), map_size=1 << 30)
    for path, _ in samples:
        if decode:
            _, data, _ = read_and_verify(path)
        else:
            data = Path(path).read_bytes()
        with env.begin(write=True) as txn:
            txn.put(path.encode(), data)
    env.close()
    return len(samples) / (time.perf_counter() - start)


def ours_convert(src: Path, out: Path, workers: int) -> float:
    start = time.perf_counter()
    report = convert_folder(src, "train", out, workers=workers, progress=False)
    return report.stored / (time.perf_counter() - start)  # includes pool start-up and the index


def read_rate(dataset, workers: int, epochs: int = 4) -> float:
    """Decoded + transformed images/s: the best epoch after the first (which warms the caches)."""
    loader = torch.utils.data.DataLoader(dataset, batch_size=32, shuffle=True, num_workers=workers)
    rates = []
    for _ in range(epochs):
        start, count = time.perf_counter(), 0
        for images, _ in loader:
            count += len(images)
        rates.append(count / (time.perf_counter() - start))
    return max(rates[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=8)
    parser.add_argument("--per-class", type=int, default=250)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--jpeg", action="store_true", help="JPEG files instead of PNG")
    parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        photos = make_demo_images(root / "photos", args.classes, args.per_class, 1, args.size, 0)
        src = as_jpeg(photos / "train", root / "jpeg") if args.jpeg else photos / "train"
        count = args.classes * args.per_class
        print(
            f"{count} {'JPEG' if args.jpeg else 'PNG'} images of {args.size}x{args.size}, {os.cpu_count()} CPUs"
        )
        base_raw = baseline_convert(src, root / "base_raw.lmdb", decode=False)
        base_dec = baseline_convert(src, root / "base_dec.lmdb", decode=True)
        ours = ours_convert(src, root / "data", args.workers)
        print(f"convert  baseline, 1 txn/image, no decode : {base_raw:8.0f} img/s")
        print(f"convert  baseline, 1 txn/image, decode    : {base_dec:8.0f} img/s")
        print(f"convert  ours ({args.workers} workers, decode, batched): {ours:8.0f} img/s  "
              f"= {ours / base_dec:.2f}x the decoding baseline, {ours / base_raw:.2f}x the raw one")  # fmt: skip
        transform = build_transform(args.size, train=True)
        for workers in (0, 2):
            folder = read_rate(ImageFolderDataset(src, transform), workers)
            from_lmdb = read_rate(LMDBImageDataset(root / "data", "train", transform), workers)
            print(f"read     {workers} workers: folder {folder:7.0f} img/s, LMDB {from_lmdb:7.0f} img/s "
                  f"= {from_lmdb / folder:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
