"""`i2sb train`: train one task (single process, torchrun, or srun)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train I2SB on one task (resumes from OUT/latest.pt if present)",
        description=(
            "Train I2SB on one task. One process: `i2sb train --task sr4x-pool --data-dir DATA "
            "--out DIR`. "
            "Several GPUs on one node: `torchrun --nproc_per_node=4 -m i2sb train ...`. "
            "Slurm: `srun i2sb train ...` (rank and master from SLURM_* variables). "
            "An existing OUT/latest.pt is resumed exactly (weights, EMA, optimizer, scheduler, RNG), "
            "and only when its options.json records the same task, preset, image size, bridge, data "
            "and weight-changing train settings (lr, lr_step, lr_gamma, ema_decay, seed, ...) and it "
            "is not past train.iterations (else an error names the field; with --restart-changed "
            "that latest.pt, its metrics.jsonl and validation grids are removed and training starts afresh, as the workflow's train jobs do "
            "after a config change). Leftover "
            "latest.tmp-<host>-<pid>.pt files of a killed write are removed on start."
        ),
    )
    parser.add_argument(
        "--config", default="config/config.yaml", help="YAML config (default: %(default)s)"
    )
    parser.add_argument(
        "--task", required=True, help="task name, e.g. sr4x-pool, jpeg-10, inpaint-center, paired"
    )
    parser.add_argument(
        "--out", required=True, help="run folder: latest.pt, options.json, metrics.jsonl"
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        metavar="DIR",
        help="the data folder: converted LMDBs (<split>_faster_imagefolder.lmdb), an image folder "
        "with train/ and val/, or paired data (default: data.root; one of them is required)",
    )
    parser.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a config key, e.g. train.lr=1e-4",
    )
    parser.add_argument(
        "--downloads",
        action="append",
        default=[],
        metavar="RECORD",
        help="a download record (the workflow's RUN/downloads/*.json): the files it names replace "
        "the config's downloads.* paths, so training reads the file its download job verified",
    )
    parser.add_argument(
        "--sources",
        action="append",
        default=[],
        metavar="RECORD",
        help="a sources record of the training data (the workflow's RUN/data/train_sources.json): "
        "kept in options.json, so a latest.pt made from other data is not resumed",
    )
    parser.add_argument(
        "--restart-changed",
        action="store_true",
        help="an OUT/latest.pt made under other settings (or past train.iterations) is removed with its metrics.jsonl and validation grids, "
        "with a log line naming the change, and training starts afresh instead of stopping; the "
        "workflow passes it, since its train job reruns exactly when those settings changed",
    )
    parser.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar on a terminal (the log line per train.log_every stays)",
    )
    parser.set_defaults(handler=run)


def run(args) -> int:
    from i2sb.distributed import rank_info_from_env
    from i2sb.joblog import LOG, console_logging

    console_logging()  # in a job's log: the command, the settings, a line per train.log_every
    first_rank = rank_info_from_env()[0] == 0
    with _said_on_sigterm(LOG if first_rank else None):
        return _train(args, first_rank)


def _train(args, first_rank: bool) -> int:
    import json
    import shlex
    import sys

    from i2sb.cli._overrides import parse_overrides
    from i2sb.config import load_config
    from i2sb.downloads import with_recorded_files
    from i2sb.joblog import LOG
    from i2sb.train import train
    from i2sb.train.setup import recorded_inputs, training_data_dir

    if first_rank:
        LOG.info("command: %s", shlex.join([sys.executable, *sys.argv]))
    cfg = with_recorded_files(load_config(args.config, parse_overrides(args.set)), args.downloads)
    training_data_dir(cfg, args.data_dir)  # no data folder: one line, before any logging setup
    if first_rank:
        LOG.info("resolved settings: %s", json.dumps(cfg.to_dict(), indent=2, sort_keys=True))
    monitor = None
    if cfg.tracking.live and first_rank:
        from i2sb.tracking.live import live_run_for

        monitor = live_run_for(cfg, args.task)  # MLflow while training runs, rank 0
    summary = train(
        cfg,
        args.task,
        args.out,
        data_dir=args.data_dir,
        progress=not args.no_progress,
        monitor=monitor,
        restart_changed=args.restart_changed,
        inputs=recorded_inputs(args.downloads, args.sources),
    ).summary
    print(
        f"trained {args.task}: {summary['iterations']} iterations, {summary['images_per_s']:.1f} images/s"
    )
    return 0


@contextlib.contextmanager
def _said_on_sigterm(log) -> Iterator[None]:
    """A SIGTERM (Slurm's time limit, scancel, torchrun shutting down) ends the run with a line in
    its log saying so, instead of a log that just stops; the exit status stays 128 + 15. The line
    is written after the run has unwound (checkpoint, MLflow's live run closed), so it is last."""
    import signal

    received = []

    def stop(signum, _frame):
        received.append(signum)
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        if received and log is not None:
            log.warning(
                "received SIGTERM (a Slurm time limit or scancel?): stopping; rerunning the same "
                "command resumes from the last checkpoint (OUT/latest.pt)"
            )
