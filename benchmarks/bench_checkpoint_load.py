"""Peak memory of loading a full-size published checkpoint for sampling: whole file vs light load.

Writes an adm256 run folder in the published layout (latest.pt with net, EMA, AdamW state and
StepLR state; options.pkl) from formula weights (no download): ~8.8 GB, like each of the paper's
nine folders. Then, each in a fresh subprocess, loads it for sampling two ways and reports the
peak RSS (ru_maxrss of that process, and VmHWM as a cross-check):

- ``full``: the previous loader: ``torch.load`` of the whole file (optimizer state included), the
  network built on meta and given the EMA weights;
- ``light``: ``i2sb.network.load_i2sb_checkpoint``: latest.pt memory-mapped, only the EMA tensors
  (and buffers) become the network's; the optimizer state is never read.

Both end by reading every parameter once (what sampling does), so the light load's pages are
counted too. The checkpoint is written to a temporary folder (default under /tmp) and deleted.

    .venv/bin/python benchmarks/bench_checkpoint_load.py            # needs ~9 GB free RAM, ~9 GB disk
    .venv/bin/python benchmarks/bench_checkpoint_load.py --preset small   # a quick dry run
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WRITE = """
import argparse, pickle, sys, torch
from pathlib import Path
from i2sb.network import build_i2sb_net
from i2sb.network.checkpoint import CHECKPOINT_KEYS

preset, folder = sys.argv[1], Path(sys.argv[2])
with torch.device("meta"):
    net = build_i2sb_net(preset, 1000)
named = list(net.named_parameters())

def formula(index, shape, offset):
    # deterministic, cheap and distinct per tensor: no RNG, no download
    return torch.full(shape, 1e-3 * ((index + offset) % 97 + 1))

state = {name: formula(i, p.shape, 0) for i, (name, p) in enumerate(named)}
state.update({name: formula(0, b.shape, 0) for name, b in net.named_buffers()})
shadow = [formula(i, p.shape, 1) for i, (_, p) in enumerate(named)]
adam = {i: {"step": torch.tensor(5000.0), "exp_avg": formula(i, p.shape, 2),
            "exp_avg_sq": formula(i, p.shape, 3)} for i, (_, p) in enumerate(named)}
groups = [{"lr": 5e-5, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0, "amsgrad": False,
           "foreach": None, "maximize": False, "capturable": False, "differentiable": False,
           "fused": None, "params": list(range(len(named)))}]
checkpoint = dict(zip(CHECKPOINT_KEYS, (
    state, {"decay": 0.99, "num_updates": 5000, "shadow_params": shadow, "collected_params": None},
    {"state": adam, "param_groups": groups}, {"step_size": 1000, "gamma": 0.99, "last_epoch": 5000},
)))
torch.save(checkpoint, folder / "latest.pt")
options = argparse.Namespace(corrupt="sr4x-pool", interval=1000, t0=1e-4, T=1.0, beta_max=0.3,
                             ot_ode=False, cond_x1=False, add_x1_noise=False, image_size=256,
                             ema=0.99, use_fp16=False, device="cuda", preset=preset,
                             ckpt_path=Path("results/sr4x-pool"), load=None)
(folder / "options.pkl").write_bytes(pickle.dumps(options))
print(sum(p.numel() for _, p in named))
"""

LOAD = """
import json, resource, sys, time, torch
from pathlib import Path

mode, folder = sys.argv[1], Path(sys.argv[2])
start = time.perf_counter()
if mode == "light":
    from i2sb.network import load_i2sb_checkpoint
    net, _ = load_i2sb_checkpoint(folder)
else:
    from i2sb.network.checkpoint import (_load_strict, _network_for, _torch_load, ema_state_dict,
                                         read_run_options)
    options, ours = read_run_options(folder)
    checkpoint = _torch_load(folder / "latest.pt", mmap=False)
    with torch.device("meta"):
        net = _network_for(options, ours, folder)
    _load_strict(net, ema_state_dict(net, checkpoint, folder), folder, assign=True)
    net.eval()
loaded = time.perf_counter() - start
total = sum(float(p.double().sum()) for p in net.parameters())  # every weight read once
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"mode": mode, "ru_maxrss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                  / 2**20, "vmhwm_gb": hwm / 2**20, "load_s": loaded, "checksum": total}))
"""


def run(code: str, *args: str) -> str:
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"subprocess {args} failed:\n{done.stderr[-3000:]}")
    return done.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="adm256", help="network preset (default: adm256)")
    parser.add_argument("--tmp", default="/tmp", help="where the checkpoint is written and deleted")
    parser.add_argument("--out", default=None, help="also write the results as JSON here")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="i2sb-bench-ckpt-", dir=args.tmp))
    try:
        start = time.perf_counter()
        params = int(run(WRITE, args.preset, str(folder)))
        size = (folder / "latest.pt").stat().st_size
        print(f"{args.preset}: {params / 1e6:.0f} M parameters; latest.pt {size / 1e9:.2f} GB "
              f"(net + EMA + AdamW state), written in {time.perf_counter() - start:.0f} s")  # fmt: skip
        results = {mode: json.loads(run(LOAD, mode, str(folder))) for mode in ("full", "light")}
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    full, light = results["full"], results["light"]
    if full["checksum"] != light["checksum"]:
        sys.exit(f"the two loads disagree: {full['checksum']} != {light['checksum']}")
    for r in (full, light):
        print(f"{r['mode']:>5}: peak RSS {r['ru_maxrss_gb']:.2f} GB (ru_maxrss; VmHWM "
              f"{r['vmhwm_gb']:.2f} GB), load {r['load_s']:.1f} s")  # fmt: skip
    ratio = light["ru_maxrss_gb"] / full["ru_maxrss_gb"]
    print(
        f"light / full peak RSS: {ratio:.2f}; same EMA weights (checksum {light['checksum']:.6g})"
    )
    if args.out:
        Path(args.out).write_text(json.dumps({"preset": args.preset, "bytes": size, **results}))


if __name__ == "__main__":
    main()
