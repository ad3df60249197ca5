"""What identifying the evaluation images by content costs, against reading them for sampling.

A sampling job hashes the whole set's index (``data_fingerprint``: names, sizes, labels, from
``stat``) and the bytes of its own part's files (``content_fingerprint``), so that a photo
replaced in place recomputes its part. This prints, for the demo's validation photos (the
settings of config/config.yaml) and for 1000 synthetic 256 px PNGs, the seconds of:

- ``index``: data_fingerprint of the whole set;
- ``content``: content_fingerprint of the whole set (what all parts together hash);
- ``decode``: loading every image as sampling does (``dataset[i]``: decode + the evaluation
  transform), the baseline: the content hash reads the same files once more.

``content %`` is content / decode in percent. Index and content are medians of 3 (the files are
in the page cache after the first pass, as they are for sampling right after the hash); decode
is one pass. ~2-3 min on 2 loaded cores, most of it decoding.

    .venv/bin/python benchmarks/bench_fingerprint.py
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from i2sb.config import Config
from i2sb.data.build import build_dataset
from i2sb.data.demo import make_demo_images
from i2sb.data.fingerprint import content_fingerprint, data_fingerprint


def median_seconds(work: Callable[[], object], repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def synthetic_folder(root: Path, count: int, size: int) -> Path:
    """``count`` PNGs of ``size`` px in 10 classes: smooth colour plus noise (~150 KB each)."""
    rng = np.random.default_rng(0)
    for index in range(count):
        folder = root / "val" / f"class{index % 10}"
        folder.mkdir(parents=True, exist_ok=True)
        coarse = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        smooth = np.asarray(Image.fromarray(coarse).resize((size, size), Image.BILINEAR))
        noisy = np.clip(smooth + rng.normal(0, 12, smooth.shape), 0, 255).astype(np.uint8)
        Image.fromarray(noisy).save(folder / f"{index}.png")
    return root


def measure(name: str, root: Path, image_size: int) -> None:
    dataset = build_dataset("imagefolder", root, "val", image_size, train=False)
    positions = list(range(len(dataset)))
    megabytes = sum(Path(p).stat().st_size for p in dataset.paths) / 2**20
    index = median_seconds(lambda: data_fingerprint(dataset, positions))
    content = median_seconds(lambda: content_fingerprint(dataset, positions))
    decode = median_seconds(lambda: [dataset[i] for i in positions], repeats=1)
    print(
        f"{name:<34}{len(positions):>6}{megabytes:>8.1f}{index:>9.3f}{content:>9.3f}"
        f"{decode:>9.3f}{100 * content / decode:>11.2f}"
    )


def main() -> None:
    config = Config()
    demo, size = config.data.demo, config.data.image_size
    print(f"{'images':<34}{'N':>6}{'MB':>8}{'index s':>9}{'content':>9}{'decode':>9}"
          f"{'content %':>11}")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench_fingerprint_") as tmp:
        photos = make_demo_images(
            Path(tmp) / "demo", demo.classes, demo.train_per_class, demo.val_per_class,
            size, demo.seed,
        )  # fmt: skip
        measure(f"demo val ({size} px PNG)", photos, size)
        measure("synthetic (256 px PNG)", synthetic_folder(Path(tmp) / "synthetic", 1000, 256), 256)


if __name__ == "__main__":
    main()
