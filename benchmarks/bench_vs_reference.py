"""Our UNet's default path against guided-diffusion's own UNetModel: same weights, one process.

guided-diffusion (openai's code as packaged on PyPI, guided-diffusion-sdk, a test-only
dependency) is the reference. For each network configuration, the reference and ours run
interleaved round by round, so a busy machine slows both alike; medians are reported.

- train step: forward + backward + AdamW, the reference in float32 with torch's default AdamW
  (as its trainer) against our default path (channels_last, autocast at train.precision "auto",
  loss in float32, the trainer's fused AdamW);
- sample step: one forward under no_grad, the reference in float32 (its fp16 needs CUDA; with
  --reference-precision fp16 on CUDA it runs its own convert_to_fp16 torso) against our default
  (channels_last, autocast at sample.precision "auto" with the weights cast once, as the
  Restorer does, one shared time embedding), as one batch; "sample/blk" runs it as our Restorer does,
  on fixed blocks of COMPUTE_BLOCK images (batch-independent results, i2sb/sample/restorer.py), and
  on the CPU "sample/img" one image per call (the sampler's former path);
- max |ours - reference| of the sampling outputs, for our default and for our float32 path.

``--precision auto,fp32`` times our path at both precisions in the same interleaved rounds.

Configurations: small (the small preset, 64 px), adm256@64 (the adm256 network fed 64 px
images), adm256@256 with --with-256 (slow on a CPU). --ddp wraps our training step in
DistributedDataParallel (one process: nccl on CUDA, gloo on the CPU). --profile prints the torch
profiler's top operators of our train step and of our sampling step in blocks, to explain a
ratio. --tiny is the CI size (tiny preset, 32 px, 1 round). The ratio is reference time / our time (> 1: ours is faster).

    .venv/bin/python benchmarks/bench_vs_reference.py                     # small, adm256@64
    .venv/bin/python benchmarks/bench_vs_reference.py --with-256 --repeats 3
    .venv/bin/python benchmarks/bench_vs_reference.py --device cuda --reference-precision fp16 --ddp
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import socket
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from i2sb.network import PRESETS, create_unet
from i2sb.network.fastpath import (
    autocast,
    cast_autocast_weights,
    resolve_precision,
    to_channels_last,
)
from i2sb.sample.restorer import COMPUTE_BLOCK
from i2sb.train.optimizer import adamw

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)  # its torch.cuda.amp decorators
    from guided_diffusion.script_util import create_model

# name -> (create_model keywords, input size, default batch)
CONFIGS = {
    "tiny": (PRESETS["tiny"], 32, 2),
    "small": (PRESETS["small"], 64, 8),
    "adm256@64": (PRESETS["adm256"], 64, 1),
    "adm256@256": (PRESETS["adm256"], 256, 1),
}


@dataclass
class Pair:
    """The reference and our UNet with the same weights, and a fixed input."""

    reference: torch.nn.Module
    ours: torch.nn.Module
    x: torch.Tensor
    t: torch.Tensor
    target: torch.Tensor


def build_pair(config: str, batch: int, device: torch.device, reference_fp16: bool) -> Pair:
    kwargs, size, _ = CONFIGS[config]
    torch.manual_seed(0)
    reference = create_model(**kwargs)
    with torch.no_grad():  # leave ADM's zero init: every branch must contribute
        for param in reference.parameters():
            param.add_(0.02 * torch.randn_like(param))
    ours = create_unet(**kwargs)
    ours.load_state_dict(reference.state_dict(), strict=True)
    reference, ours = reference.to(device), to_channels_last(ours.to(device))
    if reference_fp16:
        reference.convert_to_fp16()
    x = torch.randn(batch, 3, size, size, device=device)
    t = torch.full((batch,), 500.0, device=device)
    return Pair(reference, ours, x, t, torch.randn_like(x))


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_step(model, x, t, target, precision: str, device, ours: bool) -> Callable[[], None]:
    # The reference code's AdamW is torch's default (a loop over the parameters on the CPU);
    # ours is the trainer's (fused, i2sb/train/optimizer.py).
    params = model.parameters()
    optimizer = adamw(params, 1e-6, 0.01, device) if ours else torch.optim.AdamW(params, lr=1e-6)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast(precision, device):
            out = model(x, t)
        F.mse_loss(out.float(), target).backward()  # the loss in float32, as bridge_loss
        optimizer.step()

    return step


def forward_step(model, x, t, precision: str, device) -> Callable[[], torch.Tensor]:
    @torch.no_grad()
    def step() -> torch.Tensor:
        with autocast(precision, device):
            return model(x, t).float()

    return step


def block_step(model, x, t, precision: str, device, block: int) -> Callable[[], torch.Tensor]:
    """Our network on fixed blocks of ``block`` images, one shared embedding: with COMPUTE_BLOCK
    what our Restorer runs (i2sb/sample/restorer.py); with 1, one image per call (its former path)."""

    @torch.no_grad()
    def step() -> torch.Tensor:
        with autocast(precision, device):
            return model(x, t[:1], compute_block=block).float()

    return step


@contextlib.contextmanager
def ddp_wrapped(module: torch.nn.Module, device: torch.device):
    """``module`` in DistributedDataParallel of one process (nccl on CUDA, gloo on the CPU)."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    if "MASTER_PORT" not in os.environ:
        with socket.socket() as probe:  # a free port: other jobs may share the machine
            probe.bind(("127.0.0.1", 0))
            os.environ["MASTER_PORT"] = str(probe.getsockname()[1])
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend, rank=0, world_size=1)
    try:
        ids = [device.index or 0] if device.type == "cuda" else None
        yield DistributedDataParallel(module, device_ids=ids)
    finally:
        dist.destroy_process_group()


def median_times(candidates: dict[str, Callable], repeats: int, device) -> dict[str, dict]:
    """Median seconds (and CUDA peak memory) per candidate, run interleaved round by round."""
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    peaks: dict[str, int] = dict.fromkeys(candidates, 0)
    for round_ in range(repeats + 1):  # round 0 warms up (allocator, oneDNN primitives)
        for name, fn in candidates.items():
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            synchronize(device)
            start = time.perf_counter()
            fn()
            synchronize(device)
            if round_:
                samples[name].append(time.perf_counter() - start)
            if device.type == "cuda":
                peaks[name] = max(peaks[name], torch.cuda.max_memory_allocated(device))
    result = {}
    for name, values in samples.items():
        values = sorted(values)
        result[name] = {"median_s": values[len(values) // 2], "runs": len(values)}
        if device.type == "cuda":
            result[name]["peak_mb"] = peaks[name] / 2**20
    return result


def output_differences(pair: Pair, sample_precision: str, reference_precision: str, device):
    """max |ours - reference| of one sampling forward: our float32 path and our default path.

    Leaves ``pair.ours`` as our sampler runs it (weights cast once to the sampling precision).
    """
    ref = forward_step(pair.reference, pair.x, pair.t, "fp32", device)()
    ours_fp32 = forward_step(pair.ours, pair.x, pair.t, "fp32", device)()
    cast_autocast_weights(pair.ours, sample_precision)  # what our Restorer does, from here on
    ours_default = forward_step(pair.ours, pair.x, pair.t[:1], sample_precision, device)()
    return {
        "reference": reference_precision,
        "max_abs_default": (ours_default - ref).abs().max().item(),
        "rel_l2_default": ((ours_default - ref).norm() / ref.norm()).item(),
        "max_abs_fp32": (ours_fp32 - ref).abs().max().item(),
        "reference_output_std": ref.std().item(),
    }


def bench_config(config: str, args: argparse.Namespace, device: torch.device) -> dict:
    """Each of ``args.precision`` (comma-separated) as "ours@<precision>", all interleaved."""
    batch = args.batch or CONFIGS[config][2]
    reference_fp16 = args.reference_precision == "fp16"
    pair = build_pair(config, batch, device, reference_fp16)
    names = [p for p in args.precision.split(",") if p]
    train_precisions = {p: resolve_precision(p, device, training=True) for p in names}
    sample_precisions = {p: resolve_precision(p, device, training=False) for p in names}
    result = {"config": config, "batch": batch, "size": pair.x.shape[-1],
              "train_precision": train_precisions, "sample_precision": sample_precisions}  # fmt: skip
    x, t = pair.x, pair.t
    sampling = {"reference": forward_step(pair.reference, x, t, "fp32", device)}
    result["difference"] = {}
    for name, precision in sample_precisions.items():
        ours = copy.deepcopy(pair.ours)  # each precision casts its own copy of the weights
        result["difference"][name] = output_differences(
            Pair(pair.reference, ours, x, t, pair.target),
            precision,
            args.reference_precision,
            device,
        )
        sampling[f"ours@{name}"] = forward_step(ours, x, t[:1], precision, device)
        if batch > 1:
            sampling[f"ours@{name}/blk"] = block_step(ours, x, t, precision, device, COMPUTE_BLOCK)
        if device.type == "cpu" and batch > 1:
            sampling[f"ours@{name}/img"] = block_step(ours, x, t, precision, device, 1)
    result["sample"] = median_times(sampling, args.repeats, device)
    if args.profile:
        for name in [n for n in sampling if n.endswith("/blk")]:
            print_profile(sampling[name], f"{config}, {name}", what="sampling step")
    del pair, sampling
    result["train"] = train_times(config, batch, train_precisions, args, device)
    return result


def train_times(config: str, batch: int, precisions: dict, args, device) -> dict[str, dict]:
    """Median train-step seconds, reference (float32) and ours, interleaved round by round.

    An AdamW training state of adm256 is ~9 GB per model, so with --one-at-a-time (default for
    adm256 on the CPU) each round builds one model, warms it up with one step, times one step and frees it
    before the other; otherwise both stay built and each round times one step of each.
    """
    one_at_a_time = args.one_at_a_time or (config.startswith("adm256") and device.type == "cpu")

    def candidates(names: list[str]) -> tuple[dict[str, Callable], contextlib.ExitStack]:
        pair = build_pair(config, batch, device, reference_fp16=False)
        stack = contextlib.ExitStack()
        ours = stack.enter_context(ddp_wrapped(pair.ours, device)) if args.ddp else pair.ours
        steps = {
            "reference": train_step(
                pair.reference, pair.x, pair.t, pair.target, "fp32", device, ours=False
            )
        }
        for index, name in enumerate(n for n in names if n != "reference"):
            # one model and optimizer state per precision (--ddp wraps the first one only)
            model = ours if index == 0 else copy.deepcopy(pair.ours)
            precision = precisions[name.removeprefix("ours@")]
            steps[name] = train_step(model, pair.x, pair.t, pair.target, precision, device, True)
        return steps, stack

    ours_names = [f"ours@{name}" for name in precisions]
    if not one_at_a_time:
        steps, stack = candidates(["reference", *ours_names])
        with stack:
            times = median_times(steps, args.repeats, device)
            if args.profile:
                for name in ours_names:
                    print_profile(steps[name], f"{config}, {name}")
        return times
    rounds: dict[str, list[dict]] = {name: [] for name in ["reference", *ours_names]}
    for _ in range(args.repeats):
        for name in rounds:
            steps, stack = candidates([name])
            with stack:
                steps[name]()  # warm-up: AdamW state, oneDNN primitives
                rounds[name].append(median_times(steps, 1, device)[name])
            del steps
    if args.profile:
        for name in ours_names:
            steps, stack = candidates([name])
            with stack:
                print_profile(steps[name], f"{config}, {name}")
    return {
        name: {**sorted(values, key=lambda v: v["median_s"])[len(values) // 2], "runs": len(values)}
        for name, values in rounds.items()
    }


def print_profile(
    step: Callable[[], object], config: str, rows: int = 15, what: str = "train step"
) -> None:
    from torch.profiler import profile

    step()
    with profile() as prof:
        step()
    print(f"--- profile of our {what}, {config} (self CPU time) ---")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows))


def report(results: list[dict]) -> None:
    """One row per (step, our variant): /blk = blocks of COMPUTE_BLOCK (the sampler's path),
    /img = one image per call (its former CPU path)."""
    print(f"{'step':<12}{'config':<12}{'batch':>6}{'reference':>12}{'ours':>12}{'ratio':>8}"
          f"{'max|diff|':>11}{'rel L2':>9}  precision")  # fmt: skip
    for res in results:
        for step in ("train", "sample"):
            times = res[step]
            for name in [n for n in times if n != "reference"]:
                asked, _, variant = name.removeprefix("ours@").partition("/")
                precision = res[f"{step}_precision"][asked]
                ref_s, our_s = times["reference"]["median_s"], times[name]["median_s"]
                label = f"{step}/{variant}" if variant else step
                diff = res["difference"][asked]
                diff_cols = (f"{diff['max_abs_default']:>11.2e}{diff['rel_l2_default']:>9.2%}"
                             if step == "sample" else f"{'':>11}{'':>9}")  # fmt: skip
                print(f"{label:<12}{res['config']:<12}{res['batch']:>6}{ref_s * 1e3:>10.1f}ms"
                      f"{our_s * 1e3:>10.1f}ms{ref_s / our_s:>7.2f}x{diff_cols}  "
                      f"{precision} ({asked})")  # fmt: skip
        for step in ("train", "sample"):
            mem = {k: v["peak_mb"] for k, v in res[step].items() if "peak_mb" in v}
            if mem:
                print(f"{'':<12}{res['config']:<12} peak CUDA memory, {step} step: "
                      + ", ".join(f"{k} {v:.0f} MB" for k, v in mem.items()))  # fmt: skip
        diff = next(iter(res["difference"].values()))
        print(f"{'':<12}{res['config']:<12} float32 path: max|ours - reference| = "
              f"{diff['max_abs_fp32']:.2e} (tests allow 1e-5 on the small preset); reference "
              f"{diff['reference']} output std {diff['reference_output_std']:.3f}")  # fmt: skip


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="small,adm256@64",
                        help=f"comma-separated of {', '.join(CONFIGS)} (default small,adm256@64)")  # fmt: skip
    parser.add_argument("--with-256", action="store_true", help="also adm256@256 (slow on a CPU)")
    parser.add_argument("--tiny", action="store_true", help="CI size: tiny preset, 1 round")
    parser.add_argument("--batch", type=int, default=0, help="images per step (0: per config)")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds (median)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch default)")
    parser.add_argument("--reference-precision", choices=("fp32", "fp16"), default="fp32",
                        help="the reference's sampling precision (fp16: CUDA only)")  # fmt: skip
    parser.add_argument("--precision", default="auto",
                        help="our train and sample precision, comma-separated to time several "
                        "interleaved, e.g. auto,fp32 (default auto, as train.precision "
                        "and sample.precision; fp32 | bf16 | fp16 on CUDA)")  # fmt: skip
    parser.add_argument("--ddp", action="store_true", help="our train step under DDP (1 process)")
    parser.add_argument("--profile", action="store_true",
                        help="profile our train step and our sampler's (blocks) step")  # fmt: skip
    parser.add_argument("--one-at-a-time", action="store_true",
                        help="train steps: one model in memory at a time (default: adm256 on CPU)")  # fmt: skip
    parser.add_argument("--json", default="", help="also write the results to this file")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if args.reference_precision == "fp16" and device.type != "cuda":
        parser.error("--reference-precision fp16 needs a CUDA device")
    if args.threads:
        torch.set_num_threads(args.threads)
    configs = ["tiny"] if args.tiny else [c for c in args.configs.split(",") if c]
    if args.with_256 and "adm256@256" not in configs:
        configs.append("adm256@256")
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        parser.error(f"unknown config(s) {unknown}; known: {', '.join(CONFIGS)}")
    if args.tiny:
        args.repeats = 1
    print(f"torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}, "
          f"{args.repeats} interleaved rounds (median), load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    results = [bench_config(config, args, device) for config in configs]
    report(results)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)
    return results


if __name__ == "__main__":
    main()
