"""Published run folders: the pre-placed (offline) path, the checks and their one-line errors, the
download path (gdown faked: tests have no network), and light loading."""

import json
import pickle
import subprocess
import sys
import textwrap

import pytest
from fake_published import make_published_folder

from i2sb.cli import main
from i2sb.config import ConfigError, config_from_dict
from i2sb.downloads import PUBLISHED_CHECKPOINTS, DownloadError, gdown_folder, published_folder
from i2sb.planning import missing_inputs
from i2sb.sample.published import (
    CheckpointLayoutError,
    check_run_folder,
    fetch_published_checkpoint,
)


def never_called(folder_id, output):
    raise AssertionError("a pre-placed folder must not be downloaded")


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """One fake published sr4x-pool folder, copied by the tests that change it."""
    return make_published_folder(tmp_path_factory.mktemp("published") / "sr4x-pool")


def copy_of(source, folder):
    folder.mkdir(parents=True)
    for name in ("latest.pt", "options.pkl"):
        (folder / name).write_bytes((source / name).read_bytes())
    return folder


def test_a_pre_placed_folder_is_checked_and_used_offline(source):
    record = fetch_published_checkpoint("sr4x-pool", source, 32, downloader=never_called)
    assert record["source"] == "pre-placed" and record["image_size"] == 32
    assert record["files"]["latest.pt"] == (source / "latest.pt").stat().st_size > 0


def test_cli_accepts_a_pre_placed_folder(source, capsys):
    rc = main(
        ["download-checkpoint", "sr4x-pool", "--dir", str(source.parent), "--image-size", "32"]
    )
    assert rc == 0
    assert "sr4x-pool: pre-placed run folder" in capsys.readouterr().out


def one_line_error(capsys, folder, task="sr4x-pool", size="32"):
    rc = main(["download-checkpoint", task, "--dir", str(folder.parent), "--image-size", size])
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1, err
    return err


def test_truncated_latest_pt_is_a_one_line_error_naming_it(source, tmp_path, capsys):
    folder = copy_of(source, tmp_path / "sr4x-pool")
    data = (folder / "latest.pt").read_bytes()
    (folder / "latest.pt").write_bytes(data[: len(data) // 2])
    err = one_line_error(capsys, folder)
    assert f"{folder / 'latest.pt'}: not a complete torch checkpoint" in err


def test_a_foreign_options_pickle_is_a_one_line_error_naming_it(source, tmp_path, capsys):
    folder = copy_of(source, tmp_path / "sr4x-pool")
    (folder / "options.pkl").write_bytes(pickle.dumps({"net": subprocess.Popen}))
    err = one_line_error(capsys, folder)
    assert f"cannot read options pickle {folder / 'options.pkl'}: refusing subprocess.Popen" in err


def test_options_of_another_task_or_size_are_named(source, tmp_path, capsys):
    folder = copy_of(source, tmp_path / "jpeg-10")
    err = one_line_error(capsys, folder, task="jpeg-10")
    assert f"{folder / 'options.pkl'}: a run of task sr4x-pool, expected jpeg-10" in err
    with pytest.raises(
        CheckpointLayoutError, match=r"options.pkl: a model of 32 px, but data.image_size is 256"
    ):
        check_run_folder(source, "sr4x-pool", 256)


def test_latest_pt_without_ema_or_a_file_missing_is_named(source, tmp_path):
    import torch

    folder = copy_of(source, tmp_path / "sr4x-pool")
    saved = torch.load(folder / "latest.pt", weights_only=True)
    torch.save({"net": saved["net"]}, folder / "latest.pt")
    with pytest.raises(CheckpointLayoutError, match=r"latest.pt lacks \['ema'\]"):
        check_run_folder(folder, "sr4x-pool", 32)
    (folder / "options.pkl").unlink()
    with pytest.raises(CheckpointLayoutError, match=r"sr4x-pool/options.pkl: missing"):
        check_run_folder(folder, "sr4x-pool", 32)


def downloader_from(source, cut=None):
    """A stand-in for gdown: 'downloads' by copying the fake folder (cut: truncate latest.pt)."""
    calls = []

    def download(folder_id, output):
        calls.append((folder_id, output))
        for name in ("latest.pt", "options.pkl"):
            data = (source / name).read_bytes()
            (output / name).write_bytes(data[:cut] if name == "latest.pt" and cut else data)

    return download, calls


def test_a_download_lands_in_a_partial_folder_and_is_renamed_once_checked(source, tmp_path):
    # image size None: the fake folder is 32 px, the published ones 256 px (checked before download)
    download, calls = downloader_from(source)
    folder = tmp_path / "sr4x-pool"
    record = fetch_published_checkpoint("sr4x-pool", folder, None, downloader=download)
    assert calls == [(PUBLISHED_CHECKPOINTS["sr4x-pool"], tmp_path / "sr4x-pool.partial")]
    assert record["source"] == "downloaded" and sorted(p.name for p in tmp_path.iterdir()) == [
        "sr4x-pool"
    ]
    # a second call finds the checked folder and downloads nothing
    assert (
        fetch_published_checkpoint("sr4x-pool", folder, 32, never_called)["source"] == "pre-placed"
    )


def test_a_half_downloaded_folder_is_never_taken_for_a_finished_one(source, tmp_path):
    download, _ = downloader_from(source, cut=1000)
    with pytest.raises(
        DownloadError, match=r"sr4x-pool.partial/latest.pt: not a complete torch checkpoint"
    ):
        fetch_published_checkpoint("sr4x-pool", tmp_path / "sr4x-pool", None, downloader=download)
    assert not (tmp_path / "sr4x-pool").exists() and (tmp_path / "sr4x-pool.partial").is_dir()


def test_offline_download_says_where_to_place_the_folder(tmp_path):
    def offline(folder_id, output):
        raise OSError("Network is unreachable")

    with pytest.raises(
        DownloadError, match=r"Offline\? Place its latest.pt and options.pkl in .*jpeg-5"
    ):
        fetch_published_checkpoint("jpeg-5", tmp_path / "jpeg-5", 256, downloader=offline)
    with pytest.raises(DownloadError, match="task jpeg-20 has no published checkpoint"):
        fetch_published_checkpoint("jpeg-20", tmp_path / "jpeg-20", 256, downloader=offline)
    with pytest.raises(CheckpointLayoutError, match="model is 256 px, but data.image_size is 64"):
        fetch_published_checkpoint("jpeg-5", tmp_path / "jpeg-5", 64, downloader=never_called)


def test_gdown_is_called_for_the_folder_id_with_resume(source, tmp_path, monkeypatch):
    """gdown.download_folder itself is replaced by a fake here (no network in tests): this checks
    how we call it and what we do with its result, not Google Drive."""
    gdown = pytest.importorskip("gdown")
    seen = {}

    def fake_download_folder(**kwargs):
        seen.update(kwargs)
        download, _ = downloader_from(source)
        download(kwargs["id"], tmp_path / "sr4x-pool.partial")
        return [str(tmp_path / "sr4x-pool.partial" / n) for n in ("latest.pt", "options.pkl")]

    monkeypatch.setattr(gdown, "download_folder", fake_download_folder)
    record = fetch_published_checkpoint("sr4x-pool", tmp_path / "sr4x-pool", None)
    assert seen["id"] == PUBLISHED_CHECKPOINTS["sr4x-pool"] and seen["resume"] is True
    assert (
        seen["output"] == str(tmp_path / "sr4x-pool.partial") and record["source"] == "downloaded"
    )
    monkeypatch.setattr(gdown, "download_folder", lambda **kwargs: [])
    with pytest.raises(DownloadError, match="gdown fetched nothing"):
        gdown_folder("some-id", tmp_path)


def test_checkpoints_config_is_validated_and_planning_names_unpublished_tasks(tmp_path):
    with pytest.raises(ConfigError, match="checkpoints.source"):
        config_from_dict({"checkpoints": {"source": "hub"}})
    cfg = config_from_dict({"tasks": ["jpeg-20", "sr4x-pool"], "data": {"image_size": 256},
                            "checkpoints": {"source": "published", "dir": str(tmp_path)}})  # fmt: skip
    assert published_folder("sr4x-pool", cfg.checkpoints.dir) == tmp_path / "sr4x-pool"
    (problem,) = missing_inputs(cfg)
    assert (
        "no published checkpoint of task jpeg-20" in problem
        and str(tmp_path / "jpeg-20") in problem
    )
    (tmp_path / "jpeg-20").mkdir()  # a run folder placed there is accepted
    assert missing_inputs(cfg) == []
    cfg = config_from_dict(
        {"tasks": ["jpeg-5"], "checkpoints": {"source": "published", "dir": str(tmp_path)}}
    )
    assert missing_inputs(cfg) == [
        "data.image_size: 64, but the published jpeg-5 model is 256 px (checkpoints.source: published)"
    ]
    # no checkpoints.dir: the cache's checkpoints/ (downloads.cache_dir, else $I2SB_CACHE)
    assert published_folder("jpeg-5", "", str(tmp_path)) == tmp_path / "checkpoints" / "jpeg-5"


def test_loading_for_sampling_never_reads_the_optimizer_state(tmp_path):
    """Peak RSS of loading a checkpoint with a 256 MB optimizer state stays far below 256 MB more
    than the baseline: the state is memory-mapped, never read (a plain torch.load reads it all)."""
    import torch

    folder = make_published_folder(tmp_path / "sr4x-pool")
    saved = torch.load(folder / "latest.pt", weights_only=True)
    saved["optimizer"]["bulk"] = torch.ones(64 * 2**20)  # 256 MB of fp32
    torch.save(saved, folder / "latest.pt")
    # VmHWM, not ru_maxrss: a child's ru_maxrss starts at its parent's (pytest's) peak on Linux.
    probe = textwrap.dedent(f"""
        import sys, torch
        from i2sb.network import load_i2sb_checkpoint
        def peak():
            return next(int(line.split()[1]) for line in open("/proc/self/status")
                        if line.startswith("VmHWM:"))
        before = peak()
        if sys.argv[1] == "light":
            net, _ = load_i2sb_checkpoint({str(folder)!r})
            sum(float(p.sum()) for p in net.parameters())  # every weight is used
        else:
            torch.load({str(folder / "latest.pt")!r}, weights_only=True)
        print((peak() - before) / 1024)
    """)
    grown = {mode: float(subprocess.run([sys.executable, "-c", probe, mode], capture_output=True,
                                        text=True, check=True).stdout) for mode in ("light", "full")}  # fmt: skip
    assert grown["full"] > 200, grown  # the probe sees the state when it is read
    assert grown["light"] < 64, grown


def write_options(folder, **changes):
    """options.pkl of the fake folder with some options changed, pickled as the reference does."""
    from fake_published import reference_options

    options = reference_options("sr4x-pool", 100, 32, "tiny")
    for key, value in changes.items():
        setattr(options, key, value)
    (folder / "options.pkl").write_bytes(pickle.dumps(options))


@pytest.mark.parametrize(
    "changes, expected",
    [
        ({"ot_ode": "False"}, "option 'ot_ode' is 'False' (str), expected True or False"),
        ({"cond_x1": 0}, "option 'cond_x1' is 0 (int), expected True or False"),
        ({"beta_max": float("nan")}, "option 'beta_max' is nan (float), expected a finite number"),
        ({"beta_max": True}, "option 'beta_max' is True (bool), expected a finite number"),
        ({"t0": float("nan")}, "option 't0' is nan (float), expected a finite number > 0"),
        ({"T": float("inf")}, "option 'T' is inf (float), expected a finite number > 0.0001"),
        ({"T": 1e-5}, "option 'T' is 1e-05 (float), expected a finite number > 0.0001"),
        ({"interval": 100.5}, "option 'interval' is 100.5 (float), expected an integer >= 2"),
        ({"interval": 1}, "option 'interval' is 1 (int), expected an integer >= 2"),
        ({"image_size": "32"}, "option 'image_size' is '32' (str), expected an integer >= 8"),
        ({"image_size": 30}, "option 'image_size' is 30 (int), expected an integer >= 8, a multiple"),
        ({"corrupt": ["sr4x-pool"]}, "option 'corrupt' is ['sr4x-pool'] (list), expected a name"),
    ],
)  # fmt: skip
def test_every_option_the_sampler_uses_has_its_type_and_range(source, tmp_path, capsys,
                                                             changes, expected):  # fmt: skip
    """The string 'False' is not read as True (bool('False')), NaN is no beta_max: one line each."""
    folder = copy_of(source, tmp_path / "sr4x-pool")
    write_options(folder, **changes)
    err = one_line_error(capsys, folder)
    assert f"{folder / 'options.pkl'}: {expected}" in err


def our_options_json(folder, **changes):
    options = {"task": "sr4x-pool", "preset": "tiny", "image_size": 32, "cond_x1": False,
               "interval": 100, "t0": 1e-4, "T": 1.0, "beta_max": 0.3, "ot_ode": False, **changes}  # fmt: skip
    (folder / "options.json").write_text(json.dumps(options))


def test_options_pkl_is_checked_even_beside_options_json(source, tmp_path, capsys):
    """The reference's sample.py unpickles options.pkl whatever options.json says."""
    folder = copy_of(source, tmp_path / "sr4x-pool")
    our_options_json(folder)
    assert check_run_folder(folder, "sr4x-pool", 32)["image_size"] == 32
    (folder / "options.pkl").write_bytes(pickle.dumps({"net": subprocess.Popen}))
    err = one_line_error(capsys, folder)
    assert f"cannot read options pickle {folder / 'options.pkl'}: refusing subprocess.Popen" in err
    write_options(folder, ot_ode="False")
    assert f"{folder / 'options.pkl'}: option 'ot_ode' is 'False'" in one_line_error(capsys, folder)
    write_options(folder, beta_max=1.0)
    err = one_line_error(capsys, folder)
    assert f"{folder}: options.json and options.pkl disagree on beta_max (0.3 vs 1.0)" in err
    write_options(folder)
    our_options_json(folder, ot_ode="false")
    assert f"{folder / 'options.json'}: option 'ot_ode' is 'false'" in one_line_error(
        capsys, folder
    )


def test_a_flipped_byte_inside_a_member_of_latest_pt_is_named(source, tmp_path, capsys):
    """torch.load (mmap) reads no tensor bytes: only the members' CRC-32 can see this."""
    import struct
    import zipfile

    folder = copy_of(source, tmp_path / "sr4x-pool")
    latest = folder / "latest.pt"
    with zipfile.ZipFile(latest) as archive:
        member = max(archive.infolist(), key=lambda info: info.file_size)
    data = bytearray(latest.read_bytes())
    # the member's data follows its local header: 30 bytes, then its name and extra field
    name_len, extra_len = struct.unpack_from("<HH", data, member.header_offset + 26)
    start = member.header_offset + 30 + name_len + extra_len
    data[start + member.file_size // 2] ^= 0x01
    latest.write_bytes(bytes(data))
    err = one_line_error(capsys, folder)
    assert f"{latest}: member {member.filename} of the archive is damaged (Bad CRC-32" in err
