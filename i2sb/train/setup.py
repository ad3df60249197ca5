"""Everything a training run needs, built from the config: network, corruption, datasets."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from i2sb.config import Config
from i2sb.network.fastpath import to_channels_last
from i2sb.tasks import PAIRED_TASK, task_spec


@dataclass
class TrainParts:
    net: torch.nn.Module
    corruption: object | None  # None for paired data
    train_set: object
    val_set: object
    ot_ode: bool
    cond_x1: bool
    preset: str
    image_size: int
    validate_images: int
    device: torch.device
    _val_cache: tuple | None = field(default=None, repr=False)

    @property
    def mask_source(self) -> str | None:
        return getattr(self.corruption, "mask_source", None)

    @torch.no_grad()
    def validation_batch(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """The first ``validate_images`` validation images and their (fixed) degradations."""
        if self._val_cache is None:
            count = min(self.validate_images, len(self.val_set))
            items = [self.val_set[i] for i in range(count)]
            x0 = torch.stack([item[0] for item in items]).to(self.device)
            if self.corruption is None:
                x1, mask = torch.stack([item[1] for item in items]).to(self.device), None
            else:
                x1, mask = self.corruption(x0, indices=torch.arange(count))
            self._val_cache = (x0, x1, mask)
        return self._val_cache


def training_data_dir(cfg: Config, data_dir: str | Path | None) -> Path:
    """The data folder training reads: ``data_dir`` (``i2sb train --data-dir``), else ``data.root``."""
    from i2sb.data.build import given_data_dir

    return given_data_dir(data_dir, cfg, "training")


def datasets_from_config(cfg: Config, data_dir: str | Path) -> tuple[object, object]:
    """(train, val) datasets of the data folder ``data_dir`` (LMDB when converted, else the image
    folder), read as the config's ``data`` section says."""
    from i2sb.data.build import build_dataset

    size, kind = cfg.data.image_size, cfg.data.kind
    return (
        build_dataset(kind, data_dir, "train", size, train=True),
        build_dataset(kind, data_dir, "val", size, train=False),
    )


def build_network(cfg: Config) -> torch.nn.Module:
    """From scratch for a preset, or ADM's weights (spec §3 surgery) when network.adm_init is set."""
    from i2sb.bridge import noise_levels
    from i2sb.network import I2SBNet, build_i2sb_net, load_adm_from_downloads

    b = cfg.bridge
    if not cfg.network.adm_init:
        return build_i2sb_net(
            cfg.network.preset, b.interval, b.t0, b.T, b.cond_x1, cfg.network.use_checkpoint
        )
    if cfg.network.preset != "adm256":
        raise ValueError(
            f"network.adm_init needs network.preset: adm256, got {cfg.network.preset!r}"
        )
    unet = load_adm_from_downloads(b.cond_x1, cfg.downloads.adm_checkpoint, cfg.downloads.cache_dir)
    return I2SBNet(unet, noise_levels(b.interval, b.t0, b.T), cond_x1=b.cond_x1)


def build_parts(
    cfg: Config,
    task: str,
    device: torch.device,
    train_set=None,
    val_set=None,
    data_dir: str | Path | None = None,
) -> TrainParts:
    """Network, corruption and datasets of a run; the datasets are ``train_set`` and ``val_set``
    when given, else read from ``data_dir`` (else ``data.root``: ``training_data_dir``)."""
    spec = task_spec(task)
    if (task == PAIRED_TASK) != (cfg.data.kind == "paired"):
        raise ValueError(
            f"task {task!r} does not fit data.kind={cfg.data.kind!r}: paired data trains task 'paired'"
        )
    if train_set is None or val_set is None:
        train_set, val_set = datasets_from_config(cfg, training_data_dir(cfg, data_dir))
    corruption = None
    if task != PAIRED_TASK:
        from i2sb.corruption import build_corruption

        corruption = build_corruption(
            spec.name, cfg.data.image_size, device=device, **cfg.mask_options()
        )
    return TrainParts(
        net=to_channels_last(build_network(cfg).to(device)),
        corruption=corruption,
        train_set=train_set,
        val_set=val_set,
        ot_ode=cfg.ot_ode(task),
        cond_x1=cfg.bridge.cond_x1,
        preset=cfg.network.preset,
        image_size=cfg.data.image_size,
        validate_images=cfg.train.validate_images,
        device=device,
    )


def training_options(
    cfg: Config, task: str, parts: TrainParts, world_size: int, inputs: dict[str, str] | None = None
) -> dict:
    """options.json: what sampling needs to rebuild the run, plus the whole resolved config, and
    the SHA-256 of the external files read (``inputs``, when known: resume_refusal compares them)."""
    options = {
        "task": task,
        "preset": parts.preset,
        "image_size": parts.image_size,
        "cond_x1": parts.cond_x1,
        "interval": cfg.bridge.interval,
        "t0": cfg.bridge.t0,
        "T": cfg.bridge.T,
        "beta_max": cfg.beta_max(task),
        "ot_ode": parts.ot_ode,
        "world_size": world_size,
        "mask_source": parts.mask_source,
        "config": cfg.to_dict(),
    }
    return options | ({"inputs": dict(inputs)} if inputs else {})


# Data settings that change what a run learns from (not how fast it reads them).
RESUME_DATA_KEYS = ("kind", "root", "image_size", "mask_source", "mask_seed", "demo")
# Training settings that change the weights: a resume restores the optimizer's lr, the scheduler
# and the EMA decay from latest.pt, so another value would be ignored while options.json (and
# MLflow) recorded it; the batch order follows seed and batch_size. (microbatch, the world size
# and the checkpoint/validation cadence split or watch the same work.)
RESUME_TRAIN_KEYS = ("batch_size", "lr", "lr_step", "lr_gamma", "weight_decay", "ema_decay",
                     "grad_clip", "precision", "seed")  # fmt: skip


def _resume_fields(cfg: Config, task: str) -> dict[str, Any]:
    """What a resumed run must share with the run on disk, by the name options.json uses."""
    b = cfg.bridge
    fields: dict[str, Any] = {
        "task": task,
        "preset": cfg.network.preset,
        "image_size": cfg.data.image_size,
        "cond_x1": b.cond_x1,
        "interval": b.interval,
        "t0": b.t0,
        "T": b.T,
        "beta_max": cfg.beta_max(task),
        "ot_ode": cfg.ot_ode(task),
    }
    values = cfg.to_dict()
    fields.update({f"config.data.{key}": values["data"][key] for key in RESUME_DATA_KEYS})
    fields.update({f"config.train.{key}": values["train"][key] for key in RESUME_TRAIN_KEYS})
    fields["config.network.adm_init"] = values["network"]["adm_init"]
    return fields


def resume_refusal(
    out_dir: str | Path, cfg: Config, task: str, inputs: dict[str, str] | None = None
) -> str | None:
    """Why ``out_dir/latest.pt`` cannot be resumed under ``cfg`` (None: it can, or there is none).

    Task, preset, image size, bridge, data and the training settings that change the weights
    must match, and the run must not be past ``train.iterations``. Without this a copied sr4x
    run folder would silently continue as jpeg-10 and options.json would be rewritten to say so.
    So must the external files both runs name in ``inputs`` (name -> SHA-256): an ADM checkpoint
    replaced in place reruns the workflow's train job, which would else resume the finished run.
    """
    from i2sb.train.checkpointing import latest_checkpoint, saved_iteration

    out_dir = Path(out_dir)
    options_path, latest = out_dir / "options.json", latest_checkpoint(out_dir)
    if not latest.exists():
        return None
    if not options_path.is_file():
        return (
            f"{latest} has no options.json beside it, so what it was trained for is unknown: "
            "resume refused"
        )
    try:
        recorded = json.loads(options_path.read_text())
    except json.JSONDecodeError as err:
        return f"{options_path} is not valid JSON: {err}"
    for name, wanted in _resume_fields(cfg, task).items():
        value: Any = recorded
        for part in name.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value != wanted:
            return (
                f"cannot resume {latest}: it was trained with {name}={value!r}, this run asks "
                f"for {name}={wanted!r}"
            )
    changed = _changed_input(recorded.get("inputs") or {}, inputs or {})
    if changed:
        return f"cannot resume {latest}: {changed}"
    reached = saved_iteration(latest)
    if reached > cfg.train.iterations:
        return (
            f"cannot resume {latest}: it is at iteration {reached}, past train.iterations="
            f"{cfg.train.iterations}"
        )
    return None


def recorded_inputs(downloads: list[str | Path], sources: list[str | Path]) -> dict[str, str]:
    """What a workflow train job reads, by content (name -> identity, options.json "inputs"): the
    SHA-256 of each file its download records name, and the tree of each sources record (by its
    name, e.g. train_sources: the split's names, sizes and mtimes)."""
    from i2sb.downloads import recorded_digests
    from i2sb.planning import recorded_tree

    trees = {Path(record).stem: recorded_tree(record) for record in sources}
    return recorded_digests(downloads) | {name: tree for name, tree in trees.items() if tree}


def _changed_input(recorded: dict[str, str], inputs: dict[str, str]) -> str | None:
    """The first external file known to both (name -> SHA-256) whose content differs, described."""
    for name, digest in sorted(inputs.items()):
        before = recorded.get(name)
        if before is not None and before != digest:
            return f"it was trained from {name} {before[:16]}..., this run reads {digest[:16]}..."
    return None


def check_resume(
    out_dir: str | Path, cfg: Config, task: str, inputs: dict[str, str] | None = None
) -> None:
    """Raise resume_refusal's reason, with what the user can do about it."""
    why = resume_refusal(out_dir, cfg, task, inputs)
    if why is not None:
        raise ValueError(
            f"{why}; use another --out folder, the same settings, or remove {out_dir} (or pass "
            "--restart-changed) to train afresh"
        )


def published_options(
    cfg: Config,
    task: str,
    parts: TrainParts,
    world_size: int,
    out_dir: str | Path,
    data_dir: str | Path | None = None,
) -> argparse.Namespace:
    """options.pkl in the published layout: the reference's training option names, so its
    ``sample.py --ckpt`` can open our run (its network is the ADM 256 UNet: adm256 runs only).

    Everything the reference's sampler reads is here (corrupt, interval, beta_max, t0, T, ot_ode,
    cond_x1, add_x1_noise, ema, use_fp16, device), its paths are ``pathlib`` paths as in its own
    pickles, and ``preset`` is ours (the reference ignores unknown names). ``dataset_dir`` is the
    data folder trained on (None for datasets given in memory).
    """
    out_dir = Path(out_dir)
    train = cfg.train
    return argparse.Namespace(
        name=task, corrupt=task, image_size=parts.image_size, preset=parts.preset,
        t0=cfg.bridge.t0, T=cfg.bridge.T, interval=cfg.bridge.interval,
        beta_max=cfg.beta_max(task), ot_ode=parts.ot_ode, clip_denoise=False,
        cond_x1=parts.cond_x1, add_x1_noise=False,
        batch_size=train.batch_size, microbatch=train.microbatch, num_itr=train.iterations,
        lr=train.lr, lr_gamma=train.lr_gamma, lr_step=train.lr_step,
        l2_norm=train.weight_decay, ema=train.ema_decay, seed=train.seed,
        dataset_dir=Path(data_dir) if data_dir else None, log_dir=out_dir, log_writer=None,
        ckpt_path=out_dir, load=None, device="cuda", distributed=world_size > 1,
        global_size=world_size, use_fp16=False,
    )  # fmt: skip
