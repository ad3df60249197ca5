"""UNet speed and memory: SDPA attention against the plain softmax(QK^T)V of the same weights.

Times are taken in one process on one model, alternating the two implementations run by
run, so a busy machine slows both alike; the median of the runs is reported. Peak memory is
measured by running one forward+backward of each implementation in its own subprocess
(VmHWM, or the CUDA allocator's peak). Prints times, the SDPA speed-up, the max abs
difference of the outputs and the peak memory.

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

IMPLS = ("plain", "sdpa")
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


def seconds(fn, device: str) -> float:
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def interleaved_times(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """Median forward and forward+backward seconds per implementation, runs interleaved."""
    unet, x, t = build(args.config, "sdpa", args.batch, args.device)

    def forward():
        with torch.no_grad():
            unet(x, t)

    def forward_backward():
        unet.zero_grad(set_to_none=True)
        unet(x, t).square().mean().backward()

    samples = {impl: {"forward_s": [], "fwd_bwd_s": []} for impl in IMPLS}
    for run in range(args.repeats + 1):  # the first round warms up
        for impl in IMPLS:
            set_attention_impl(unet, impl)
            for name, fn in (("forward_s", forward), ("fwd_bwd_s", forward_backward)):
                elapsed = seconds(fn, args.device)
                if run:
                    samples[impl][name].append(elapsed)
    return {
        impl: {name: sorted(v)[len(v) // 2] for name, v in by_name.items()}
        for impl, by_name in samples.items()
    }


def peak_rss_mb() -> float:
    """This process's peak resident memory. Linux carries ``ru_maxrss`` over from the parent
    across exec, so the per-address-space high-water mark VmHWM is read where it exists."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_worker(args: argparse.Namespace) -> None:
    unet, x, t = build(args.config, args.impl, args.batch, args.device)
    unet(x, t).square().mean().backward()
    result = {"peak_rss_mb": peak_rss_mb()}
    if args.device == "cuda":
        result["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    print(json.dumps(result))


def peak_memory(args: argparse.Namespace, impl: str) -> dict:
    command = [sys.executable, __file__, "--worker", "--impl", impl, "--config", args.config]
    command += ["--batch", str(args.batch), "--device", args.device, "--threads", str(args.threads)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def max_abs_difference(args: argparse.Namespace) -> float:
    outputs = []
    for impl in IMPLS:
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
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch default)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.worker:
        return memory_worker(args)
    size = CONFIGS[args.config]["image_size"]
    print(f"config={args.config} ({size} px) batch={args.batch} device={args.device} "
          f"threads={torch.get_num_threads()} repeats={args.repeats} (median)")  # fmt: skip
    results = interleaved_times(args)
    for impl in IMPLS:
        results[impl].update(peak_memory(args, impl))
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
