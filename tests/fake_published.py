"""A fake published run folder, made the way the reference makes its own (for tests only).

latest.pt: a tiny network's net, a torch_ema-layout EMA (unlike net), a real AdamW state and a
StepLR state. options.pkl: an ``argparse.Namespace`` with ``pathlib`` paths and the option names of
the reference's train.py, pickled with plain ``pickle.dump``. One departure, stated: the real
folders hold the 2 GB ADM 256 network and name no preset; this one adds ``preset="tiny"`` (which
the reference ignores) so a test can run it in seconds.
"""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path

import torch

from i2sb.network import build_i2sb_net, save_i2sb_checkpoint
from i2sb.tasks import task_spec


def reference_options(
    task: str, interval: int, image_size: int, preset: str | None
) -> argparse.Namespace:
    spec = task_spec(task)
    options = argparse.Namespace(
        seed=0, name=task, ckpt=None, gpu=None, n_gpu_per_node=8, master_address="localhost",
        node_rank=0, num_proc_node=2, image_size=image_size, corrupt=task, t0=1e-4, T=1.0,
        interval=interval, beta_max=spec.beta_max, ot_ode=spec.ot_ode, clip_denoise=False,
        cond_x1=False, add_x1_noise=False, batch_size=256, microbatch=2, num_itr=1000000,
        lr=5e-5, lr_gamma=0.99, lr_step=1000, l2_norm=0.0, ema=0.99,
        dataset_dir=Path("/dataset"), log_dir=Path(".log"), log_writer=None, wandb_api_key=None,
        wandb_user=None, device="cuda", distributed=True, use_fp16=False,
        ckpt_path=Path("results") / task, load=None, global_size=16,
    )  # fmt: skip
    if preset is not None:
        options.preset = preset
    return options


def make_published_folder(
    folder: Path, task: str = "sr4x-pool", interval: int = 100, image_size: int = 32,
    preset: str | None = "tiny",
) -> Path:  # fmt: skip
    """Write ``folder``/{latest.pt, options.pkl}; returns ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    net = build_i2sb_net("tiny", interval)
    optimizer = torch.optim.AdamW(net.parameters(), lr=5e-5)
    sched = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1000, gamma=0.99)
    x = torch.randn(2, 3, 32, 32)
    net(x, torch.tensor([0, interval - 1])).square().mean().backward()
    optimizer.step()
    sched.step()
    shadow = [p.detach().clone() * 0.5 for p in net.parameters()]
    ema = {"decay": 0.99, "num_updates": 1, "shadow_params": shadow, "collected_params": None}
    save_i2sb_checkpoint(folder / "latest.pt", net, ema, optimizer.state_dict(), sched.state_dict())
    with open(folder / "options.pkl", "wb") as handle:
        pickle.dump(reference_options(task, interval, image_size, preset), handle)
    return folder
