"""Training: DDP with 2 gloo processes equals microbatch accumulation; exact resume; NaN stops cleanly."""

import faulthandler
import json
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from i2sb.config import config_from_dict
from i2sb.distributed import DistContext, close_distributed, first_host, init_distributed
from i2sb.train import TrainingDiverged, train

SIZE = 32


class Images:
    """A tiny deterministic image set: (x0 in [-1, 1], label), optionally poisoned with NaN.

    ``flip``: each item is mirrored with p=0.5 drawn from torch's global RNG, as the training transform
    (i2sb.data.transforms, RandomHorizontalFlip) does when DataLoader workers are off.
    """

    def __init__(self, count=16, seed=0, poison=False, flip=False):
        self.flip = flip
        generator = torch.Generator().manual_seed(seed)
        base = torch.rand(count, 3, SIZE // 8, SIZE // 8, generator=generator) * 2 - 1
        self.images = torch.nn.functional.interpolate(
            base, size=SIZE, mode="bilinear", align_corners=False
        )
        if poison:
            self.images[:] = float("nan")

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        if self.flip and torch.rand(()) < 0.5:
            return self.images[i].flip(-1), 0
        return self.images[i], 0


def tiny_config(**train):
    values = {
        "tasks": ["sr4x-pool"],
        "data": {"image_size": SIZE},
        "network": {"preset": "tiny"},
        "bridge": {"interval": 100},
        "nfe": [5],
        "train": {
            "iterations": 3,
            "batch_size": 8,
            "microbatch": 4,
            "lr": 1e-3,
            "checkpoint_every": 1,
            "validate_every": 1000,
            "validate_nfe": 3,
            "validate_images": 2,
            "log_every": 1,
            **train,
        },
    }
    return config_from_dict(values)


def flat_params(net):
    return torch.cat([p.detach().flatten() for p in net.parameters()])


def _ddp_worker(rank, port, out_dir, result_path):
    faulthandler.enable(all_threads=True)
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2"
    )
    torch.set_num_threads(1)
    ctx = init_distributed("cpu")
    try:
        result = train(
            tiny_config(),
            "sr4x-pool",
            out_dir,
            train_set=Images(flip=True),
            val_set=Images(4, 1),
            ctx=ctx,
            progress=False,
        )
        torch.save(flat_params(result.net), f"{result_path}.{rank}")
    finally:
        close_distributed()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _resume_worker(rank, port, out_dir, iterations, result_path):
    """One rank of one job, as ``srun i2sb train`` runs it: train() joins the group from the environment
    (and must leave it), then trains ``out_dir`` up to ``iterations``, resuming from its latest.pt if there."""
    # a native abort in a rank (SIGABRT) then shows the rank's Python stack in the test's output
    faulthandler.enable(all_threads=True)
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="3",
        CUDA_VISIBLE_DEVICES="",  # gloo on CPU even on a GPU machine
    )  # fmt: skip
    torch.set_num_threads(1)
    result = train(
        tiny_config(iterations=iterations, batch_size=6, microbatch=2),
        "sr4x-pool",
        out_dir,
        train_set=Images(flip=True),
        val_set=Images(4, 1),
        progress=False,
    )
    assert result.summary["world_size"] == 3
    if torch.distributed.is_initialized():
        raise AssertionError(f"rank {rank}: train() joined the process group and did not leave it")
    if rank == 0:
        torch.save(flat_params(result.net), result_path)


def _three_rank_job(out_dir, iterations, result_path):
    """A job as Slurm or torchrun runs it: 3 fresh processes, one process group, one train() call each."""
    mp.start_processes(
        _resume_worker,
        args=(free_port(), str(out_dir), iterations, str(result_path)),
        nprocs=3,
        start_method="spawn",
    )
    return torch.load(result_path)


def test_a_resumed_three_rank_run_ends_with_the_uninterrupted_weights(tmp_path):
    """With 3+ ranks the all-reduce's summation order follows DDP's buckets: a resumed run must keep them."""
    straight = _three_rank_job(tmp_path / "a", 2, tmp_path / "straight")
    # the job stops after 1 iteration; a restarted job (new processes, a fresh DDP wrapper) resumes from latest.pt
    _three_rank_job(tmp_path / "b", 1, tmp_path / "first")
    resumed = _three_rank_job(tmp_path / "b", 2, tmp_path / "resumed")
    torch.testing.assert_close(resumed, straight, atol=0, rtol=0)


def test_two_gloo_ranks_equal_one_process_with_accumulation(tmp_path):
    result_path = str(tmp_path / "params")
    mp.start_processes(
        _ddp_worker,
        args=(free_port(), str(tmp_path / "ddp"), result_path),
        nprocs=2,
        start_method="spawn",
    )
    rank0, rank1 = torch.load(result_path + ".0"), torch.load(result_path + ".1")
    torch.testing.assert_close(rank0, rank1, atol=0, rtol=0)
    # summary.json names every rank and its host, with equal final weights on all of them
    ranks = json.loads((tmp_path / "ddp" / "summary.json").read_text())["ranks"]
    assert [entry["rank"] for entry in ranks] == [0, 1]
    assert all(entry["host"] == socket.gethostname() for entry in ranks)
    assert ranks[0]["weights_sha256"] == ranks[1]["weights_sha256"]

    single = train(
        tiny_config(),
        "sr4x-pool",
        tmp_path / "single",
        train_set=Images(flip=True),
        val_set=Images(4, 1),
        ctx=DistContext(),
        progress=False,
    )
    assert single.summary["world_size"] == 1
    # Equal up to float summation order, which Adam amplifies only where a gradient is ~0:
    # every weight within 10% of the largest possible Adam move (3 steps x lr), almost all exact.
    difference = (flat_params(single.net) - rank0).abs()
    assert difference.max() < 0.1 * 3 * 1e-3
    assert (difference < 1e-6).float().mean() > 0.99
    # and training really moved the weights
    fresh = train(
        tiny_config(iterations=1),
        "sr4x-pool",
        tmp_path / "one",
        train_set=Images(),
        val_set=Images(4, 1),
        ctx=DistContext(),
        progress=False,
    )
    assert not torch.allclose(flat_params(fresh.net), rank0)


def test_resumed_run_ends_with_the_same_weights_as_an_uninterrupted_one(tmp_path):
    kwargs = dict(train_set=Images(), val_set=Images(4, 1), ctx=DistContext(), progress=False)
    straight = train(tiny_config(iterations=6), "inpaint-center", tmp_path / "a", **kwargs)
    first = train(tiny_config(iterations=3), "inpaint-center", tmp_path / "b", **kwargs)
    assert first.summary["iterations"] == 3
    resumed = train(tiny_config(iterations=6), "inpaint-center", tmp_path / "b", **kwargs)
    assert resumed.summary["resumed_from"] == 3
    torch.testing.assert_close(flat_params(resumed.net), flat_params(straight.net), atol=0, rtol=0)
    for a, b in zip(resumed.ema.shadow_params, straight.ema.shadow_params, strict=True):
        torch.testing.assert_close(a, b, atol=0, rtol=0)
    steps = [
        line
        for line in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
        if '"loss"' in line
    ]
    assert len(steps) == 6  # no duplicated rows after the resume


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    kwargs = dict(val_set=Images(4, 1), ctx=DistContext(), progress=False)
    train(tiny_config(iterations=2), "sr4x-pool", tmp_path, train_set=Images(), **kwargs)
    with pytest.raises(TrainingDiverged, match="loss is nan at iteration 3"):
        train(
            tiny_config(iterations=5),
            "sr4x-pool",
            tmp_path,
            train_set=Images(poison=True),
            **kwargs,
        )
    saved = torch.load(tmp_path / "latest.pt", weights_only=True)
    assert saved["iteration"] == 2
    assert all(torch.isfinite(t).all() for t in saved["net"].values())


def test_checkpoint_has_the_published_layout_and_options(tmp_path):
    train(
        tiny_config(iterations=2),
        "jpeg-10",
        tmp_path,
        train_set=Images(),
        val_set=Images(4, 1),
        ctx=DistContext(),
        progress=False,
    )
    saved = torch.load(tmp_path / "latest.pt", weights_only=True)
    assert {"net", "ema", "optimizer", "sched"} <= set(saved)
    assert all(key.startswith("diffusion_model.") for key in saved["net"])
    assert set(saved["ema"]) >= {"decay", "num_updates", "shadow_params"}
    import json

    options = json.loads((tmp_path / "options.json").read_text())
    assert (
        options["task"] == "jpeg-10" and options["beta_max"] == 0.3 and options["ot_ode"] is False
    )
    # options.pkl beside it, in the published layout: what the reference's sample.py reads
    # (ckpt_util.build_ckpt_option, Runner, compute_batch), read back by our restricted unpickler.
    import pickle

    from i2sb.network.safe_pickle import load_options_pickle

    assert pickle.loads((tmp_path / "options.pkl").read_bytes()).__class__.__name__ == "Namespace"
    published = load_options_pickle(tmp_path / "options.pkl")
    reference_reads = {"corrupt", "interval", "beta_max", "t0", "T", "ot_ode", "cond_x1",
                       "add_x1_noise", "ema", "use_fp16", "device", "image_size"}  # fmt: skip
    assert reference_reads <= set(published)
    assert (published["corrupt"], published["beta_max"], published["interval"]) == (
        "jpeg-10", 0.3, options["interval"]
    )  # fmt: skip
    assert published["ckpt_path"] == str(tmp_path) and published["preset"] == "tiny"
    assert not list(tmp_path.glob("*.tmp-*"))  # written atomically, nothing left behind
    # and our loader opens the run from options.pkl alone, as it opens a published one
    (tmp_path / "options.json").unlink()
    from i2sb.sample.evalset import read_options

    assert read_options(tmp_path)[0].task == "jpeg-10"


def test_a_compiled_run_saves_the_eager_keys_and_records_its_precision(tmp_path, monkeypatch):
    from i2sb.network import fastpath

    monkeypatch.setattr(fastpath, "COMPILE_BACKEND", "eager")  # dynamo only: fast, still compiled
    cfg = config_from_dict(
        {**tiny_config(iterations=1).to_dict(), "network": {"preset": "tiny", "compile": True}}
    )
    result = train(cfg, "sr4x-pool", tmp_path, train_set=Images(), val_set=Images(4, 1), ctx=DistContext(), progress=False)  # fmt: skip
    saved = torch.load(tmp_path / "latest.pt", weights_only=True)
    assert result.summary["compiled"] and result.summary["compile_fallback"] is None
    assert list(saved["net"]) == list(result.net.state_dict())
    assert not any("_orig_mod" in key for key in saved["net"])
    assert result.summary["precision"] == fastpath.resolve_precision("auto", "cpu", training=True)


def test_bad_batch_split_is_a_clear_error(tmp_path):
    with pytest.raises(
        ValueError, match="train.batch_size=9 is not a multiple of world size x train.microbatch"
    ):
        train(
            tiny_config(microbatch=3, batch_size=9),
            "sr4x-pool",
            tmp_path,
            train_set=Images(),
            val_set=Images(4, 1),
            ctx=DistContext(world_size=2),
            progress=False,
        )


def test_first_host_of_a_slurm_nodelist():
    assert first_host("gpu[03-05,07],cpu1") == "gpu03"
    assert first_host("node7") == "node7"
    assert first_host("a-b[1,2]") == "a-b1"


@pytest.mark.parametrize(
    "task, changes, field",
    [
        ("jpeg-10", {}, "task"),
        ("sr4x-pool", {"network": {"preset": "small"}}, "preset"),
        ("sr4x-pool", {"bridge": {"beta_max": 0.5}}, "beta_max"),
        ("sr4x-pool", {"data": {"kind": "imagefolder", "root": "elsewhere"}}, "config.data.kind"),
        # restored from latest.pt (optimizer, scheduler, EMA): another value would be ignored
        ("sr4x-pool", {"train": {"lr": 5e-4}}, "config.train.lr"),
        ("sr4x-pool", {"train": {"lr_gamma": 0.5}}, "config.train.lr_gamma"),
        ("sr4x-pool", {"train": {"ema_decay": 0.5}}, "config.train.ema_decay"),
        ("sr4x-pool", {"train": {"seed": 7}}, "config.train.seed"),  # the batch order
    ],
)
def test_resuming_a_run_of_other_settings_is_refused_naming_the_field(
    tmp_path, task, changes, field
):
    kwargs = dict(train_set=Images(), val_set=Images(4, 1), ctx=DistContext(), progress=False)
    train(tiny_config(iterations=1), "sr4x-pool", tmp_path, **kwargs)
    before = (tmp_path / "options.json").read_text()
    values = tiny_config(iterations=2).to_dict()
    for section, entries in changes.items():
        values[section].update(entries)
    with pytest.raises(ValueError, match=f"cannot resume .* trained with {field}="):
        train(config_from_dict(values), task, tmp_path, **kwargs)
    assert (tmp_path / "options.json").read_text() == before  # not rewritten


def test_a_run_past_the_asked_iterations_is_refused_not_kept_under_the_new_config(tmp_path):
    """iterations 3 -> 2: resuming trained nothing and options.json said 2 of a 3-iteration run."""
    kwargs = dict(train_set=Images(), val_set=Images(4, 1), ctx=DistContext(), progress=False)
    train(tiny_config(iterations=3), "sr4x-pool", tmp_path, **kwargs)
    before = (tmp_path / "options.json").read_text()
    with pytest.raises(ValueError, match="at iteration 3, past train.iterations=2; .*remove"):
        train(tiny_config(iterations=2), "sr4x-pool", tmp_path, **kwargs)
    assert (tmp_path / "options.json").read_text() == before  # not rewritten
    # the same length again, or longer, resumes
    assert (
        train(tiny_config(iterations=3), "sr4x-pool", tmp_path, **kwargs).summary["resumed_from"]
        == 3
    )


def test_restart_changed_trains_afresh_where_a_resume_is_refused(tmp_path, caplog):
    """The workflow's train job reruns because its settings changed: it must train under the new
    ones (from scratch, as a fresh folder would), not stop nor resume the old weights."""
    kwargs = dict(train_set=Images(), val_set=Images(4, 1), ctx=DistContext(), progress=False)
    train(tiny_config(iterations=3), "sr4x-pool", tmp_path, **kwargs)
    values = tiny_config(iterations=2).to_dict()
    values["train"]["lr"] = 3e-4
    changed = config_from_dict(values)
    fresh = tmp_path / "fresh"
    train(changed, "sr4x-pool", fresh, **kwargs)
    with caplog.at_level("WARNING", logger="i2sb"):
        again = train(changed, "sr4x-pool", tmp_path, restart_changed=True, **kwargs)
    assert "trained with config.train.lr=0.001" in caplog.text and "training afresh" in caplog.text
    assert again.summary["resumed_from"] == 0
    assert json.loads((tmp_path / "options.json").read_text())["config"]["train"]["lr"] == 3e-4
    ours, theirs = (
        torch.load(d / "latest.pt", weights_only=True)["net"] for d in (tmp_path, fresh)
    )
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs)  # as a fresh folder trains
    # past train.iterations only: afresh to the asked length too
    long = tmp_path / "long"
    train(tiny_config(iterations=3, validate_every=1), "sr4x-pool", long, **kwargs)
    short = train(tiny_config(iterations=2, validate_every=1), "sr4x-pool", long,
                  restart_changed=True, **kwargs)  # fmt: skip
    assert short.summary["resumed_from"] == 0 and short.summary["iterations"] == 2
    # nothing of the longer run stands beside the new one: grids and metrics rows of iteration 3
    assert sorted(p.name for p in (long / "validation").iterdir()) == [
        "val_0000001.png", "val_0000002.png"
    ]  # fmt: skip
    steps = [json.loads(row)["step"] for row in (long / "metrics.jsonl").read_text().splitlines()]
    assert max(steps) == 2


def test_a_run_made_from_other_external_files_is_not_resumed(tmp_path, caplog):
    """An ADM checkpoint (or masks file) replaced in place reruns the workflow's train job: resuming
    the finished latest.pt made from the old file would train nothing and keep its weights."""
    kwargs = dict(train_set=Images(), val_set=Images(4, 1), ctx=DistContext(), progress=False)
    old, new = {"adm_checkpoint": "a" * 64}, {"adm_checkpoint": "b" * 64}
    train(tiny_config(iterations=2), "sr4x-pool", tmp_path, inputs=old, **kwargs)
    assert json.loads((tmp_path / "options.json").read_text())["inputs"] == old
    resumed = train(tiny_config(iterations=2), "sr4x-pool", tmp_path, inputs=old, **kwargs)
    assert resumed.summary["resumed_from"] == 2  # the same files: resumed
    with pytest.raises(ValueError, match=f"trained from adm_checkpoint {'a' * 16}"):
        train(tiny_config(iterations=2), "sr4x-pool", tmp_path, inputs=new, **kwargs)
    with caplog.at_level("WARNING", logger="i2sb"):
        again = train(tiny_config(iterations=2), "sr4x-pool", tmp_path, inputs=new,
                      restart_changed=True, **kwargs)  # fmt: skip
    assert again.summary["resumed_from"] == 0 and "training afresh" in caplog.text
    assert json.loads((tmp_path / "options.json").read_text())["inputs"] == new


def test_the_train_cli_reads_the_digests_its_download_records_hold(tmp_path):
    from i2sb.atomic import write_json
    from i2sb.downloads import recorded_digests

    write_json(tmp_path / "adm.json", {"adm_checkpoint": "x.pt", "adm_checkpoint_sha256": "c" * 64,
                                       "adm_checkpoint_identity": {"bytes": 1, "mtime_ns": 2}})  # fmt: skip
    assert recorded_digests([tmp_path / "adm.json"]) == {"adm_checkpoint": "c" * 64}


def test_temporaries_left_by_a_killed_checkpoint_write_are_removed_on_start(tmp_path, capsys):
    stale = tmp_path / "latest.tmp-999999.pt"
    tmp_path.mkdir(exist_ok=True)
    stale.write_bytes(b"half a checkpoint")
    kwargs = dict(train_set=Images(), val_set=Images(4, 1), ctx=DistContext(), progress=False)
    train(tiny_config(iterations=1), "sr4x-pool", tmp_path, **kwargs)
    assert not stale.exists()
    assert f"removing {stale}" in capsys.readouterr().err


def test_validation_restores_as_sampling_the_saved_checkpoint_does(tmp_path):
    """Validation runs the Restorer of ``i2sb sample`` on the weights in memory: restoring its
    batch from latest.pt (EMA weights, sample.precision, seed train.seed) gives the logged PSNR
    (inpainting: the hole's noise and the mask included)."""
    from i2sb.sample.restorer import Restorer
    from i2sb.train.logbook import psnr
    from i2sb.train.setup import build_parts

    raw = tiny_config(iterations=2, validate_images=3).to_dict()
    raw["tasks"] = ["inpaint-center"]
    cfg = config_from_dict(raw)
    train(cfg, "inpaint-center", tmp_path, train_set=Images(), val_set=Images(4, 1),
          ctx=DistContext(), progress=False)  # fmt: skip
    logged = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    (val_psnr,) = [row["val_psnr"] for row in logged if "val_psnr" in row]
    parts = build_parts(cfg, "inpaint-center", torch.device("cpu"), Images(), Images(4, 1))
    x0, x1, mask = parts.validation_batch()
    restorer = Restorer.load(tmp_path, precision=cfg.sample.precision)
    restored = restorer.restore(x1, mask, cfg.train.validate_nfe, cfg.train.seed).recon
    assert psnr(restored, x0) == val_psnr


def test_train_without_a_data_folder_stops_naming_data_dir_and_data_root(tmp_path, capsys):
    """No --data-dir and data.root "": one line naming both, before any work, and no guess of a
    folder of the results layout (a RUN/photos the demo would build is there and not read)."""
    from test_adversarial import photo_folder

    from i2sb.cli import main

    photo_folder(tmp_path / "results" / "demo" / "photos")
    config = tmp_path / "c.yaml"
    config.write_text(
        f"results_dir: {tmp_path / 'results'}\nnetwork: {{preset: tiny}}\n"
        "data: {image_size: 32}\ntracking: {live: false}\n"
        "train: {iterations: 1, batch_size: 2, microbatch: 2, validate_every: 100}\n"
    )
    argv = ["train", "--config", str(config), "--task", "sr4x-pool", "--out", str(tmp_path / "run")]
    assert main([*argv, "--no-progress"]) == 1
    err = capsys.readouterr().err.strip()
    assert "--data-dir" in err and "data.root" in err and "\n" not in err
    assert not (tmp_path / "run").exists()


def test_train_reads_the_data_dir_it_is_given_and_records_it(tmp_path):
    """``data_dir`` is the data folder trained on (an image folder here); options.pkl's
    dataset_dir, what the reference's sampler would read, names it."""
    from test_adversarial import photo_folder

    from i2sb.network.safe_pickle import load_options_pickle

    photos = photo_folder(tmp_path / "photos")
    raw = tiny_config(iterations=1, batch_size=2, microbatch=2, validate_images=2).to_dict()
    cfg = config_from_dict(raw | {"data": {"kind": "imagefolder", "image_size": SIZE}})
    run = tmp_path / "run"
    train(cfg, "sr4x-pool", run, data_dir=photos, ctx=DistContext(), progress=False)
    assert str(load_options_pickle(run / "options.pkl")["dataset_dir"]) == str(photos)
    with pytest.raises(FileNotFoundError, match="elsewhere"):
        train(cfg, "sr4x-pool", tmp_path / "b", data_dir=tmp_path / "elsewhere", ctx=DistContext())
