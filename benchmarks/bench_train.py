"""Training throughput of the `small` preset on CPU, with the step time split into phases.

Phases: data (LMDB-free in-memory batch + corruption), forward, backward, optimizer (+EMA).
Baseline in the same run: the same global batch of 16 as one microbatch of 16 versus two
accumulated microbatches of 8 (config/config.yaml's train.microbatch comment quotes it), so the ratio shows the cost of
accumulation. Usage: .venv/bin/python benchmarks/bench_train.py [--steps 10]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from i2sb.bridge import bridge_for_task, fill_hole_with_noise
from i2sb.corruption import build_corruption
from i2sb.network import build_i2sb_net
from i2sb.train.ema import EMA


def run(microbatch: int, accumulation: int, steps: int, task: str = "sr4x-pool") -> dict:
    torch.manual_seed(0)
    net = build_i2sb_net("small", interval=1000)
    ema = EMA(net.parameters(), 0.99)
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-4)
    bridge = bridge_for_task(1000, 0.3)
    corruption = build_corruption(task, 64)
    images = torch.rand(microbatch * accumulation * 4, 3, 64, 64) * 2 - 1
    phases = dict.fromkeys(("data", "forward", "backward", "optimizer"), 0.0)
    for step in range(steps + 1):  # step 0 warms up and is not counted
        marks = {}
        optimizer.zero_grad(set_to_none=True)
        for micro in range(accumulation):
            t0 = time.perf_counter()
            start = ((step * accumulation + micro) * microbatch) % len(images)
            x0 = images[start : start + microbatch]
            x1, mask = corruption(x0)
            x1 = fill_hole_with_noise(x1, mask)
            n = torch.randint(0, 1000, (microbatch,))
            xt = bridge.q_sample(n, x0, x1)
            label = bridge.compute_label(n, x0, xt)
            t1 = time.perf_counter()
            loss = F.mse_loss(net(xt, n), label) / accumulation
            t2 = time.perf_counter()
            loss.backward()
            t3 = time.perf_counter()
            for key, value in zip(("data", "forward", "backward"), (t1 - t0, t2 - t1, t3 - t2)):
                marks[key] = marks.get(key, 0.0) + value
        t4 = time.perf_counter()
        optimizer.step()
        ema.update()
        marks["optimizer"] = time.perf_counter() - t4
        if step:
            for key in phases:
                phases[key] += marks[key]
    total = sum(phases.values())
    return {"images_per_s": steps * microbatch * accumulation / total, "step_s": total / steps,
            **{k: v / steps for k, v in phases.items()}}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, small preset, 64 px, CPU")
    results = {"1 x 16": run(16, 1, args.steps), "2 x 8 (demo)": run(8, 2, args.steps)}
    for name, r in results.items():
        split = ", ".join(f"{k} {r[k] * 1000:.0f} ms ({r[k] / r['step_s']:.0%})" for k in
                          ("data", "forward", "backward", "optimizer"))  # fmt: skip
        print(
            f"{name:>13}: {r['images_per_s']:.1f} images/s, step {r['step_s'] * 1000:.0f} ms = {split}"
        )
    ratio = results["2 x 8 (demo)"]["images_per_s"] / results["1 x 16"]["images_per_s"]
    print(f"accumulated (2 x 8) / single (1 x 16) throughput: {ratio:.2f}x")


if __name__ == "__main__":
    main()
