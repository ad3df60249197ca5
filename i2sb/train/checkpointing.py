"""A training run's latest.pt: written atomically at each checkpoint, read back to resume.

The file has the published layout (i2sb/network/checkpoint.py: net, ema, optimizer, sched) plus
what an exact resume needs: the iteration reached and the torch RNG state. The runner decides
when; this module knows what goes in and how it comes back.
"""

from __future__ import annotations

from pathlib import Path

import torch

from i2sb.train.ema import EMA
from i2sb.train.optimizer import load_optimizer_state

LATEST = "latest.pt"


def latest_checkpoint(out_dir: str | Path) -> Path:
    """The one checkpoint of a run folder, overwritten at every train.checkpoint_every."""
    return Path(out_dir) / LATEST


def save_training_state(
    path: Path,
    net: torch.nn.Module,
    ema: EMA,
    optimizer: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LRScheduler,
    iteration: int,
) -> None:
    """Write ``path`` atomically: weights, EMA, optimizer, scheduler, iteration, torch RNG."""
    from i2sb.network import save_i2sb_checkpoint

    extra = {"iteration": iteration, "rng": {"torch": torch.get_rng_state()}}
    save_i2sb_checkpoint(
        path, net, ema.state_dict(), optimizer.state_dict(), sched.state_dict(), extra
    )


def resume_training_state(
    path: Path,
    net: torch.nn.Module,
    ema: EMA,
    optimizer: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LRScheduler,
    device: torch.device,
) -> int:
    """Load ``path`` into the given parts and the torch RNG; returns the iteration it reached.

    A file torch cannot read is a RuntimeError naming it and what to do (load_error_message).
    """
    try:
        saved = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # torch raises several types; say which file and what to do
        from i2sb.network.checkpoint import load_error_message

        raise RuntimeError(load_error_message(path, err)) from None
    net.load_state_dict(saved["net"])
    ema.load_state_dict(saved["ema"])
    load_optimizer_state(optimizer, saved["optimizer"])
    sched.load_state_dict(saved["sched"])
    torch.set_rng_state(saved["rng"]["torch"].cpu())
    return int(saved["iteration"])


def saved_iteration(path: Path) -> int:
    """The iteration ``path`` reached, read without loading its tensors (memory-mapped)."""
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:  # torch raises several types; say which file and what to do
        from i2sb.network.checkpoint import load_error_message

        raise RuntimeError(load_error_message(path, err)) from None
    return int(saved["iteration"])
