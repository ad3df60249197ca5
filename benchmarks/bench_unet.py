"""UNet speed and memory: SDPA attention against the plain softmax(QK^T)V of the same weights.

Each attention implementation is timed in its own subprocess, so the peak resident memory
(``ru_maxrss``) belongs to that variant alone. The parent checks that both give the same
output. Prints times, the SDPA speed-up, the max abs difference and the peak memory.

    .venv/bin/python benchmarks/bench_unet.py                 # small preset, 64 px, batch 4
    .venv/bin/python benchmarks/bench_unet.py --config attn256 --batch 1
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch

from i2sb.network import PRESETS, create_unet, set_attention_impl

CONFIGS = {
    "small": PRESETS["small"],
    # 256 px with attention down to 64 px (4096 positions): a configuration where attention
    # dominates, like the 32 px attention of ADM 256 does at larger widths.
    "attn256": {
        **PRESETS["small"],
        "image_size": 256,
        "channel_mult": "1,1,2,2",
        "attention_resolutions": "64,32",
    },
}


def build(config: str, impl: str, batch: int, device: str):
    torch.manual_seed(0)  # same weights and inputs in every process
    unet = create_unet(**CONFIGS[config]).to(device)
    with torch.no_grad():  # leave ADM's zero init: every branch must contribute
        for param in unet.parameters():
            param.add_(0.02 * torch.randn_like(param))
    set_attention_impl(unet, impl)
    size = CONFIGS[config]["image_size"]
    x = torch.randn(batch, 3, size, size, device=device)
    t = torch.rand(batch, device=device) * 1000
    return unet, x, t


def timed(fn, repeats: int, device: str) -> float:
    """Median seconds of ``fn`` over ``repeats`` runs after one warm-up run."""
    fn()
    samples = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        samples.append(time.perf_counter() - start)
    return sorted(samples)[len(samples) // 2]


def worker(args: argparse.Namespace) -> None:
    unet, x, t = build(args.config, args.impl, args.batch, args.device)

    def forward():
        with torch.no_grad():
            unet(x, t)

    def forward_backward():
        unet.zero_grad(set_to_none=True)
        unet(x, t).square().mean().backward()

    result = {
        "forward_s": timed(forward, args.repeats, args.device),
        "fwd_bwd_s": timed(forward_backward, args.repeats, args.device),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if args.device == "cuda":
        result["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    print(json.dumps(result))


def run_variant(args: argparse.Namespace, impl: str) -> dict:
    command = [sys.executable, __file__, "--worker", "--impl", impl, "--config", args.config]
    command += ["--batch", str(args.batch), "--repeats", str(args.repeats), "--device", args.device]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def max_abs_difference(args: argparse.Namespace) -> float:
    outputs = []
    for impl in ("sdpa", "plain"):
        unet, x, t = build(args.config, impl, args.batch, args.device)
        with torch.no_grad():
            outputs.append(unet(x, t))
    return (outputs[0] - outputs[1]).abs().max().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=sorted(CONFIGS), default="small")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--impl", choices=("sdpa", "plain"), default="sdpa")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    size = CONFIGS[args.config]["image_size"]
    print(f"config={args.config} ({size} px) batch={args.batch} device={args.device} "
          f"threads={torch.get_num_threads()} repeats={args.repeats} (median)")  # fmt: skip
    results = {impl: run_variant(args, impl) for impl in ("plain", "sdpa")}
    for impl, res in results.items():
        extra = f"  peak CUDA {res['peak_cuda_mb']:.0f} MB" if "peak_cuda_mb" in res else ""
        print(f"{impl:6s} forward {res['forward_s'] * 1e3:8.1f} ms   forward+backward "
              f"{res['fwd_bwd_s'] * 1e3:8.1f} ms   peak RSS {res['peak_rss_mb']:.0f} MB{extra}")  # fmt: skip
    plain, sdpa = results["plain"], results["sdpa"]
    print(f"speed-up of sdpa over plain: forward {plain['forward_s'] / sdpa['forward_s']:.2f}x, "
          f"forward+backward {plain['fwd_bwd_s'] / sdpa['fwd_bwd_s']:.2f}x")  # fmt: skip
    print(f"max abs difference of outputs: {max_abs_difference(args):.2e}")


if __name__ == "__main__":
    main()
