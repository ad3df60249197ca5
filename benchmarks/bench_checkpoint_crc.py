"""What checking a latest.pt's zip CRCs costs (i2sb.network.checkpoint.verify_archive).

Writes a torch checkpoint of ``--gb`` GB of float32 tensors (many members, as a real latest.pt
has one per tensor), then times, on the same file in the same run:

- ``read``: reading the file once in 16 MB blocks (the baseline: what any whole-file check costs);
- ``crc``: verify_archive, every member read through zipfile, which checks its CRC-32;
- ``sha256``: hashing the file as checkpoint_fingerprint does.

The file was just written, so it is read from the page cache: the figures are the CPU cost on top
of the disk. On a disk slower than these rates (a network filesystem, ~150-500 MB/s) the check
takes the time of one read of the file, e.g. ~1 min for a published 8.8 GB latest.pt at 150 MB/s.

    .venv/bin/python benchmarks/bench_checkpoint_crc.py --gb 2
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from pathlib import Path


def _read(path: Path) -> int:
    done = 0
    with open(path, "rb") as handle:
        while block := handle.read(1 << 24):
            done += len(block)
    return done


def _sha256(path: Path) -> int:
    digest, done = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        while block := handle.read(1 << 22):
            digest.update(block)
            done += len(block)
    return done


def main() -> None:
    import torch

    from i2sb.network.checkpoint import verify_archive

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=2.0, help="checkpoint size in GB")
    parser.add_argument("--dir", default=None, help="where to write it (default: a temp folder)")
    args = parser.parse_args()
    per_tensor = 1 << 22  # 16 MB float32 tensors
    count = max(1, int(args.gb * 1e9 / (per_tensor * 4)))
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        path = Path(folder) / "latest.pt"
        generator = torch.Generator().manual_seed(0)
        torch.save({"net": {f"w{i}": torch.rand(per_tensor, generator=generator)
                            for i in range(count)}}, path)  # fmt: skip
        size = path.stat().st_size
        times = {}
        for name, run in (("read", _read), ("crc", verify_archive), ("sha256", _sha256)):
            start = time.perf_counter()
            run(path)
            times[name] = time.perf_counter() - start
    print(f"latest.pt of {size / 1e9:.2f} GB, {count} tensors (read from the page cache)")
    for name, seconds in times.items():
        print(f"  {name:7s} {seconds:6.2f} s  {size / seconds / 1e9:5.2f} GB/s  "
              f"{seconds / times['read']:.2f}x read")  # fmt: skip


if __name__ == "__main__":
    main()
