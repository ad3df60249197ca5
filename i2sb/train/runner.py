"""The training loop: microbatch accumulation under DDP, EMA, StepLR; checkpoints (checkpointing.py) resume it."""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel

from i2sb.atomic import remove_stale_temporaries, write_json
from i2sb.bridge import Bridge, bridge_for_task
from i2sb.config import Config
from i2sb.distributed import (
    DistContext,
    barrier,
    close_distributed,
    init_distributed,
    mean_across_ranks,
    rank_report,
)
from i2sb.joblog import LOG, format_seconds, progress_bar
from i2sb.network.fastpath import AUTOCAST_DTYPES, fast_network, resolve_precision
from i2sb.network.safe_pickle import write_options_pickle
from i2sb.sample.options import sampling_options
from i2sb.sample.restorer import Restorer
from i2sb.train.batches import BatchPlan, microbatch_loader
from i2sb.train.checkpointing import (
    latest_checkpoint,
    resume_training_state,
    save_training_state,
)
from i2sb.train.ema import EMA
from i2sb.train.logbook import MetricsLog, TrainMonitor, psnr, save_grid
from i2sb.train.objective import boundary_pair, bridge_loss
from i2sb.train.optimizer import adamw
from i2sb.train.setup import (
    TrainParts,
    build_parts,
    check_resume,
    published_options,
    resume_refusal,
    training_data_dir,
    training_options,
)


@dataclass
class TrainResult:
    summary: dict
    net: torch.nn.Module  # the trained network (raw weights; EMA in ema)
    ema: EMA


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last checkpoint on disk is the last good one."""


@dataclass
class _State:
    parts: TrainParts
    bridge: Bridge
    ema: EMA
    optimizer: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.StepLR
    iteration: int = 0


def train(
    cfg: Config,
    task: str,
    out_dir: str | Path,
    *,
    data_dir: str | Path | None = None,
    train_set=None,
    val_set=None,
    ctx: DistContext | None = None,
    progress: bool = True,
    monitor: TrainMonitor | None = None,
    restart_changed: bool = False,
    inputs: dict[str, str] | None = None,
) -> TrainResult:
    """Train (or resume training of) one task; the summary is also written to summary.json.

    The images come from ``train_set`` and ``val_set`` when given, else from the data folder
    ``data_dir`` (``i2sb train --data-dir``; default ``data.root``, and an error without either).

    A latest.pt made under other settings (resume_refusal) is refused, or with ``restart_changed``
    (the workflow's train jobs, which rerun because the settings changed) removed with a log line
    naming the change, and the run trains afresh. So is one made from other external files:
    ``inputs`` (name -> SHA-256, the download records' ADM checkpoint and masks; kept in
    options.json) names what this run reads.

    ``monitor`` (rank 0 only) sees the options, every metrics row and validation grid, and the end.
    A process group that train() joins itself (``ctx`` None, under torchrun or srun) it also leaves when
    it ends well: torch asks every process to destroy its group before exiting, and a gloo group left to
    the interpreter's shutdown can abort a finished job (SIGABRT), which Slurm would then count as failed.
    """
    in_memory = train_set is not None and val_set is not None
    data_dir = None if in_memory else training_data_dir(cfg, data_dir)  # fails before any work
    own_group = ctx is None
    ctx = ctx or init_distributed(rendezvous_timeout_s=cfg.train.resources.rendezvous_timeout_s)
    out_dir = Path(out_dir)
    refusal = resume_refusal(out_dir, cfg, task, inputs)  # every rank reads the same folder
    if refusal is not None and not restart_changed:
        check_resume(out_dir, cfg, task, inputs)  # raises, with what the user can do
    if refusal is not None:
        barrier(ctx)  # every rank has read it before rank 0 removes the old latest.pt
    if ctx.is_main:
        if refusal is not None:
            LOG.warning("%s: training afresh (--restart-changed), removing it", refusal)
            _remove_previous_run(out_dir)
        remove_stale_temporaries(out_dir)
    torch.manual_seed(cfg.train.seed)  # same initial weights on every rank
    parts = build_parts(cfg, task, ctx.device, train_set, val_set, data_dir)
    state = _new_state(cfg, task, parts, ctx)
    checkpoint = latest_checkpoint(out_dir)
    if refusal is None and checkpoint.exists():
        state.iteration = resume_training_state(
            checkpoint, parts.net, state.ema, state.optimizer, state.sched, ctx.device
        )
    monitor = monitor if ctx.is_main else None
    if ctx.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        options = training_options(cfg, task, parts, ctx.world_size, inputs)
        write_json(out_dir / "options.json", options)
        write_options_pickle(
            out_dir / "options.pkl",
            published_options(cfg, task, parts, ctx.world_size, out_dir, data_dir),
        )
    if monitor is not None:
        monitor.start(options)
    try:
        summary = _loop(cfg, state, out_dir, ctx, progress, task, monitor)
    except BaseException as err:
        if monitor is not None:
            monitor.end("KILLED" if isinstance(err, KeyboardInterrupt) else "FAILED")
        raise
    if monitor is not None:
        monitor.end("FINISHED")
    # Every rank's host and final weights: under DDP all replicas must have ended equal.
    summary["ranks"] = rank_report(ctx, parts.net)
    digests = {entry["weights_sha256"] for entry in summary["ranks"]}
    if len(digests) != 1:
        raise RuntimeError(f"the ranks ended with different weights: {summary['ranks']}")
    if ctx.is_main:
        write_json(out_dir / "summary.json", summary)
    barrier(ctx)
    if own_group:
        close_distributed()
    return TrainResult(summary, parts.net, state.ema)


def _new_state(cfg: Config, task: str, parts: TrainParts, ctx: DistContext) -> _State:
    net = parts.net
    ema = EMA(net.parameters(), cfg.train.ema_decay)
    optimizer = adamw(net.parameters(), cfg.train.lr, cfg.train.weight_decay, ctx.device)
    sched = torch.optim.lr_scheduler.StepLR(
        optimizer, step_size=cfg.train.lr_step, gamma=cfg.train.lr_gamma
    )
    bridge = bridge_for_task(cfg.bridge.interval, cfg.beta_max(task)).to(ctx.device)
    return _State(parts, bridge, ema, optimizer, sched)


def _loop(
    cfg: Config,
    state: _State,
    out_dir: Path,
    ctx: DistContext,
    progress: bool,
    task: str,
    monitor: TrainMonitor | None = None,
) -> dict:
    tcfg, parts = cfg.train, state.parts
    plan = BatchPlan(
        len(parts.train_set), tcfg.batch_size, tcfg.microbatch, ctx.world_size, tcfg.seed
    )
    model = parts.net
    if ctx.distributed:
        # DDP normally re-buckets the gradients after its first iteration, so a resumed run's first iteration
        # would all-reduce in other buckets than an uninterrupted run's; with 3+ ranks the order of the sum then
        # differs and so do the weights. On CPU (where results are promised byte-identical) keep the first
        # layout for good: find_unused_parameters switches the re-bucketing off (at a graph walk per step).
        model = DistributedDataParallel(parts.net, find_unused_parameters=ctx.device.type == "cpu")
    # The compiled callable is used for the forward only; checkpoints save parts.net.
    forward = fast_network(model, ctx.device, cfg.network.compile)
    precision = resolve_precision(tcfg.precision, ctx.device, training=True)
    loader = microbatch_loader(
        parts.train_set,
        plan,
        ctx.rank,
        state.iteration,
        tcfg.iterations,
        cfg.data.num_workers,
        pin_memory=ctx.device.type == "cuda",
    )
    log = MetricsLog(out_dir / "metrics.jsonl", state.iteration, monitor) if ctx.is_main else None
    # Validation restores as sampling does, on the weights in memory (sample.precision, ddpm).
    options = sampling_options(training_options(cfg, task, parts, ctx.world_size), "training")
    restorer = Restorer(parts.net, options, ctx.device, cfg.sample.precision, training=True)
    batches = iter(loader)
    start_iteration, started = state.iteration, time.perf_counter()
    window_start, window_iters = started, 0
    # A bar on a terminal only; a job's log gets the line per log_every below instead.
    bar = progress_bar(tcfg.iterations, f"train {task}", initial=state.iteration,
                       enabled=progress and ctx.is_main, lines=False)  # fmt: skip
    if ctx.is_main:
        LOG.info("train %s: iterations %d -> %d, world size %d, %s", task, state.iteration,
                 tcfg.iterations, ctx.world_size, ctx.device)  # fmt: skip
    model.train()
    while state.iteration < tcfg.iterations:
        loss = _iteration(cfg, state, model, forward, precision, batches, plan, ctx)
        state.iteration += 1
        window_iters += 1
        bar.update(1)
        done = state.iteration == tcfg.iterations
        if log is not None and (state.iteration % tcfg.log_every == 0 or done):
            elapsed = time.perf_counter() - window_start
            _log_progress(task, state, tcfg.iterations, loss, window_iters / elapsed)
            log.write(
                step=state.iteration,
                loss=loss,
                lr=state.optimizer.param_groups[0]["lr"],
                it_per_s=window_iters / elapsed,
                images_per_s=window_iters * tcfg.batch_size / elapsed,
                time=time.time(),
            )
            bar.set_postfix(loss=f"{loss:.4f}")
            window_start, window_iters = time.perf_counter(), 0
        if state.iteration % tcfg.checkpoint_every == 0 or done:
            if ctx.is_main:
                save_training_state(latest_checkpoint(out_dir), parts.net, state.ema,
                                    state.optimizer, state.sched, state.iteration)  # fmt: skip
            barrier(ctx)
        if ctx.is_main and (state.iteration % tcfg.validate_every == 0 or done):
            scores = _validate(cfg, state, restorer, out_dir)
            LOG.info("train %s: validation at iteration %d, PSNR %.2f dB (degraded input %.2f dB)",
                     task, state.iteration, scores["val_psnr"], scores["val_psnr_degraded"])  # fmt: skip
            log.write(step=state.iteration, **scores, time=time.time())
            if monitor is not None:
                monitor.image(_grid_path(out_dir, state.iteration), state.iteration)
    bar.close()
    seconds = time.perf_counter() - started
    trained = state.iteration - start_iteration
    if log is not None:
        log.close()
    return {
        "iterations": state.iteration,
        "resumed_from": start_iteration,
        "seconds": seconds,
        "images_per_s": trained * tcfg.batch_size / seconds if seconds > 0 else None,
        "world_size": ctx.world_size,
        "precision": precision,
        "compiled": bool(getattr(forward, "active", False)),
        "compile_fallback": getattr(forward, "reason", None),
    }


def _log_progress(task: str, state: _State, iterations: int, loss: float, it_per_s: float) -> None:
    """The job log's line per train.log_every (also above the bar on a terminal)."""
    eta = (iterations - state.iteration) / it_per_s if it_per_s > 0 else 0.0
    LOG.info(
        "train %s: iteration %d/%d, loss %.4f, lr %.2e, %.2f it/s, ETA %s", task, state.iteration,
        iterations, loss, state.optimizer.param_groups[0]["lr"], it_per_s, format_seconds(eta),
    )  # fmt: skip


def _iteration(
    cfg: Config,
    state: _State,
    model,
    forward,
    precision: str,
    batches,
    plan: BatchPlan,
    ctx: DistContext,
) -> float:
    tcfg, parts = cfg.train, state.parts
    state.optimizer.zero_grad(set_to_none=True)
    total = torch.zeros((), device=ctx.device)
    autocast = AUTOCAST_DTYPES.get(precision)
    for micro in range(plan.accumulation):
        last = micro == plan.accumulation - 1
        # Skip the gradient all-reduce on all but the last microbatch.
        sync = contextlib.nullcontext() if last or not ctx.distributed else model.no_sync()
        devices = [ctx.device] if ctx.device.type == "cuda" else []
        with sync, torch.random.fork_rng(devices=devices):
            torch.manual_seed(plan.slot_seed(state.iteration, micro, ctx.rank))
            # Loaded under the slot's seed: a random flip of the training transform (num_workers 0) is then the
            # same whichever rank or accumulation step the slot falls to, and on resume.
            batch = next(batches)
            x0, x1, mask = boundary_pair(batch, parts.corruption, ctx.device)
            loss = (
                bridge_loss(
                    forward,
                    state.bridge,
                    x0,
                    x1,
                    mask,
                    ot_ode=parts.ot_ode,
                    cond_x1=parts.cond_x1,
                    autocast_dtype=autocast,
                )
                / plan.accumulation
            )
            loss.backward()
        total += loss.detach()
    mean_loss = float(mean_across_ranks(total, ctx))
    if not math.isfinite(mean_loss):
        raise TrainingDiverged(
            f"training loss is {mean_loss} at iteration {state.iteration + 1}; stopped before the optimizer "
            "step. The last checkpoint (latest.pt) is the last good state: lower train.lr or set train.grad_clip"
        )
    if tcfg.grad_clip is not None:
        torch.nn.utils.clip_grad_norm_(parts.net.parameters(), tcfg.grad_clip)
    state.optimizer.step()
    state.ema.update()
    state.sched.step()
    # The next step starts from none anyway; freed now, the gradients (one more copy of the
    # weights) are not held while a checkpoint is written or the validation runs.
    state.optimizer.zero_grad(set_to_none=True)
    return mean_loss


def _remove_previous_run(out_dir: Path) -> None:
    """What a run made under other settings left: its checkpoint, metrics rows and validation
    grids (a shorter new run would leave the old later grids standing beside its own)."""
    import shutil

    latest_checkpoint(out_dir).unlink()
    (out_dir / "metrics.jsonl").unlink(missing_ok=True)
    shutil.rmtree(out_dir / "validation", ignore_errors=True)


def _grid_path(out_dir: Path, iteration: int) -> Path:
    return out_dir / "validation" / f"val_{iteration:07d}.png"


@torch.no_grad()
def _validate(cfg: Config, state: _State, restorer: Restorer, out_dir: Path) -> dict:
    """Restore a fixed validation batch with the EMA weights; PSNR and a PNG grid.

    Through the Restorer that ``i2sb sample`` uses, around the network in memory (one restore
    sequence). Validation image i draws its noise from a generator seeded by (train.seed, i), as
    sampling does, so the training RNG is not touched.
    """
    x0, x1, mask = state.parts.validation_batch()
    net = state.parts.net
    net.eval()
    with state.ema.average_parameters():
        result = restorer.restore(x1, mask, cfg.train.validate_nfe, cfg.train.seed, log_count=1)
    net.train()
    restored = result.recon.to(x0.device)
    save_grid(_grid_path(out_dir, state.iteration), [x0, x1, restored])
    return {"val_psnr": psnr(restored, x0), "val_psnr_degraded": psnr(x1, x0)}
