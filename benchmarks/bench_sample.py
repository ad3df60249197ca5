"""Sampling speed: images/s and seconds per network evaluation, fp32 against autocast bf16 (and fp16).

Uses the ``small`` preset (64 px; --preset/--size for others, e.g. adm256 at 256 px) with its
initial weights perturbed, batch 8, through the same ``Restorer.restore`` that ``i2sb sample``
runs. Each precision gets one warm-up batch, then the
precisions are timed interleaved (median per batch, so machine load hits all alike), and their
restorations are compared with fp32's (max abs difference in [-1, 1] units). On a CUDA
machine fp16 is measured too. Prints a table and the ratios against fp32 measured in this run.

    .venv/bin/python benchmarks/bench_sample.py               # CPU (and CUDA when present)
    .venv/bin/python benchmarks/bench_sample.py --nfe 10 --repeats 3 --device cpu
    .venv/bin/python benchmarks/bench_sample.py --device cuda --preset adm256 --size 256 --nfe 100

``--sampler-cost`` instead measures each sampler's own arithmetic per step (i2sb.samplers with a
pred_x0_fn that returns a precomputed tensor, so the network is excluded; per-image noise
included) against one evaluation of the ``--preset`` network (default small) on the same batch, interleaved,
and prints the ratio (the samplers must cost < 2% of the network).
"""

from __future__ import annotations

import argparse
import copy
import statistics

import torch
from bench_unet import seconds  # benchmarks/ is on sys.path when run as a script

from i2sb import samplers as sampler_lib
from i2sb.bridge import bridge_for_task, nfe_steps
from i2sb.corruption import build_corruption
from i2sb.network import build_i2sb_net
from i2sb.sample.options import SamplingOptions
from i2sb.sample.restorer import Restorer, per_image

INTERVAL = 1000


def perturbed_net(preset: str) -> torch.nn.Module:
    torch.manual_seed(0)
    net = build_i2sb_net(preset, INTERVAL)
    with torch.no_grad():  # ADM zero-initialises the output conv; make every layer contribute
        for param in net.parameters():
            param.add_(0.02 * torch.randn_like(param))
    return net


def samplers(net, device: str, precisions: list[str], args):
    size = args.size
    options = SamplingOptions(
        "sr4x-pool", args.preset, size, INTERVAL, 0.3, False, False, 1e-4, 1.0
    )
    x1 = torch.rand(args.batch, 3, size, size, generator=torch.Generator().manual_seed(1)) * 2 - 1
    built = {p: Restorer(copy.deepcopy(net), options, device, p) for p in precisions}
    for sampler in built.values():
        sampler.restore(x1, None, args.nfe, seed=0)  # warm-up (kernels, autocast caches)
    return built, x1


def measure(net, device: str, precisions: list[str], args) -> dict[str, dict]:
    """Median over ``repeats`` batches, the precisions interleaved so machine load hits all alike."""
    built, x1 = samplers(net, device, precisions, args)
    times: dict[str, list[float]] = {p: [] for p in precisions}
    recon: dict[str, torch.Tensor] = {}
    for _ in range(args.repeats):
        for precision, sampler in built.items():
            result = sampler.restore(x1, None, args.nfe, seed=0)
            times[precision].append(result.seconds / result.network_evaluations)
            recon[precision] = result.recon
    stats = {}
    for precision in precisions:
        per_nfe = statistics.median(times[precision])
        stats[precision] = {
            "seconds_per_nfe": per_nfe,
            "images_per_s": args.batch / (per_nfe * args.nfe),
            "max_diff": (recon[precision] - recon["fp32"]).abs().max().item(),
        }
    return stats


SAMPLER_CASES = (  # (label, sampler, options, task): the task gives the mask / operator
    ("ddpm", "ddpm", {}, "sr4x-pool"),
    ("ddpm inpaint", "ddpm", {}, "inpaint-center"),
    ("implicit eta=0", "implicit", {"eta": 0.0}, "sr4x-pool"),
    ("implicit eta=1", "implicit", {"eta": 1.0}, "sr4x-pool"),
    ("cddb sr4x-pool", "cddb", {"step_size": 1.0}, "sr4x-pool"),
    ("cddb blur-uni", "cddb", {"step_size": 1.0}, "blur-uni"),
    ("dbim order 2", "dbim", {"order": 2}, "sr4x-pool"),
    ("dbim order 3", "dbim", {"order": 3}, "sr4x-pool"),
)


def sampler_cost(net, device: str, args) -> None:
    """Seconds per step of each sampler's arithmetic vs one network evaluation (median, interleaved)."""
    net = net.to(device).eval()
    size = args.size
    x1 = torch.rand(args.batch, 3, size, size, generator=torch.Generator().manual_seed(1)) * 2 - 1
    x1, t = x1.to(device), torch.full((args.batch,), 500, device=device)
    pred = (x1 * 0.9).clone()
    bridge = bridge_for_task(INTERVAL, 0.3).to(device)
    steps = nfe_steps(INTERVAL, args.nfe)
    runs = {}
    for label, name, options, task in SAMPLER_CASES:
        corruption = build_corruption(task, size, device)
        y1, mask = corruption(x1)
        extra = dict(options)
        if name == "cddb":
            extra |= {"forward": lambda x, c=corruption, m=mask: c.forward(x, m),
                      "measurement": corruption.measurement(y1, mask)}  # fmt: skip

        def run(name=name, y1=y1, mask=mask, extra=extra, task=task):
            noise = sampler_lib.image_noise(0, range(args.batch), device)
            sampler_lib.sample(name, bridge, steps, lambda xt, step: pred, y1, mask=mask,
                               ot_ode=task == "inpaint-center", noise=noise, **extra)  # fmt: skip

        runs[label] = run
    with torch.no_grad():
        runs["network, one evaluation"] = lambda: net(x1, t)
        # what Restorer runs on the CPU: one image per call, so samples do not depend on the batch
        runs["network, image by image"] = lambda: per_image(lambda x, s: net(x, s), x1, t)
        for fn in runs.values():
            fn()  # warm-up
        times = {label: [] for label in runs}
        for _ in range(args.repeats):
            for label, fn in runs.items():
                times[label].append(seconds(fn, device))
    network = statistics.median(times.pop("network, one evaluation"))
    by_image = statistics.median(times.pop("network, image by image"))
    print(f"{device}: network ({args.preset} preset, {size} px, batch {args.batch}, one evaluation): "
          f"{network * 1e3:.2f} ms; image by image (Restorer's CPU path): {by_image * 1e3:.2f} ms "
          f"(x{by_image / network:.2f})")  # fmt: skip
    print(f"{'sampler':18} {'ms/step':>8} {'x network':>10}")
    for label, samples in times.items():
        per_step = statistics.median(samples) / args.nfe
        print(f"{label:18} {per_step * 1e3:8.3f} {per_step / network:10.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=("tiny", "small", "adm256"), default="small")
    parser.add_argument("--size", type=int, default=64, help="image size in pixels")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--nfe", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="all", help="cpu, cuda, or all available")
    parser.add_argument(
        "--sampler-cost", action="store_true", help="each sampler's arithmetic vs the network"
    )
    args = parser.parse_args()
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    devices = [d for d in devices if d != "cuda" or torch.cuda.is_available()]
    net = perturbed_net(args.preset)
    if args.sampler_cost:
        print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, NFE {args.nfe}, "
              f"median of {args.repeats} interleaved runs")  # fmt: skip
        for device in devices:
            sampler_cost(net, device, args)
        return
    print(f"{args.preset} preset, {args.size} px, batch {args.batch}, NFE {args.nfe}, median of {args.repeats} interleaved batches; "
          f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")  # fmt: skip
    print(
        f"{'device':7} {'precision':9} {'images/s':>9} {'s/NFE':>8} {'x fp32':>7} {'max|diff|':>10}"
    )
    for device in devices:
        precisions = ["fp32", "bf16"] + (["fp16"] if device == "cuda" else [])
        stats = measure(net, device, precisions, args)
        for precision, row in stats.items():
            ratio = row["images_per_s"] / stats["fp32"]["images_per_s"]
            print(f"{device:7} {precision:9} {row['images_per_s']:9.2f} "
                  f"{row['seconds_per_nfe']:8.4f} {ratio:7.2f} {row['max_diff']:10.4f}")  # fmt: skip


if __name__ == "__main__":
    main()
