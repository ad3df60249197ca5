"""The sample, gather and restore subcommands end to end on an image folder."""

import numpy as np
import pytest
from PIL import Image
from test_sample import SIZE, make_run

from i2sb.cli import main
from i2sb.sample.parts import read_part


def image_folder(root, count=5):
    """root/val/<class>/<image>.png with two classes of random photos (larger than the model)."""
    rng = np.random.default_rng(0)
    for i in range(count):
        folder = root / "val" / f"class{i % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"img{i}.png")
    return root


def test_sample_two_partitions_then_gather(tmp_path, capsys):
    run, data = make_run(tmp_path / "run"), image_folder(tmp_path / "photos")
    common = ["--ckpt", str(run), "--data-dir", str(data), "--nfe", "2", "--batch-size", "2"]
    parts = [tmp_path / "samples" / f"part_{i}_2.npz" for i in range(2)]
    for i, part in enumerate(parts):
        assert main(["sample", *common, "--partition", f"{i}_2", "--out", str(part)]) == 0
    assert main(["sample", *common, "--partition", "1_2", "--out", str(parts[1])]) == 0
    assert "already complete, not recomputed" in capsys.readouterr().out
    out = tmp_path / "samples" / "samples.npz"
    assert main(["gather", *map(str, parts), "--out", str(out), "--expect-parts", "2"]) == 0
    gathered = read_part(out)
    assert gathered.indices.tolist() == [0, 1, 2, 3, 4]
    assert gathered.labels.tolist() == [0, 0, 0, 1, 1]  # ImageFolder order: class0 first
    assert gathered.recon.shape == (5, 3, SIZE, SIZE)


def test_cli_errors_name_the_problem(tmp_path, capsys):
    run, data = make_run(tmp_path / "run"), image_folder(tmp_path / "photos", count=2)
    base = ["sample", "--ckpt", str(run), "--data-dir", str(data), "--nfe", "2"]
    assert main([*base, "--partition", "2_2", "--out", str(tmp_path / "p.npz")]) == 1
    assert "--partition must be i_n" in capsys.readouterr().err
    assert main([*base, "--image-size", "64", "--out", str(tmp_path / "p.npz")]) == 1
    assert (
        "64 (--image-size / data.image_size) differs from the model's 32" in capsys.readouterr().err
    )
    assert main([*base, "--fp16", "--device", "cpu", "--out", str(tmp_path / "p.npz")]) == 1
    assert "fp16 needs a CUDA device" in capsys.readouterr().err
    assert main(["gather", str(tmp_path / "nothing.npz"), "--out", str(tmp_path / "s.npz")]) == 1
    assert "nothing.npz does not exist" in capsys.readouterr().err


def test_restore_command_writes_pngs(tmp_path, capsys):
    run, data = make_run(tmp_path / "run"), image_folder(tmp_path / "photos", count=2)
    inputs = sorted(str(p) for p in (data / "val").rglob("*.png"))
    args = ["restore", "--ckpt", str(run), "--nfe", "2", *inputs, "--out", str(tmp_path / "out")]
    assert main([*args, "--bf16", "--device", "cpu", "--trajectory", "gif"]) == 0
    printed = capsys.readouterr().out.split()
    assert [p.rsplit("/", 1)[1] for p in printed] == ["img0_restored.png", "img1_restored.png"]
    assert (tmp_path / "out" / "img1_trajectory.gif").is_file()


def test_the_workflow_entry_takes_every_setting_from_the_config(tmp_path):
    from i2sb.config import config_from_dict
    from i2sb.sample.evalset import sample_run_partition

    run, data = make_run(tmp_path / "run"), image_folder(tmp_path / "photos", count=3)
    values = {"data": {"kind": "imagefolder", "root": str(data), "image_size": SIZE},
              "sample": {"batch_size": 2, "precision": "bf16", "save_degraded": False}}  # fmt: skip
    values["samplers"] = [{"name": "ddpm"}, {"name": "implicit", "eta": 0.0}]
    config = config_from_dict(values)
    out, computed = sample_run_partition(
        config, run, data, "implicit-eta0", 2, (0, 1), tmp_path / "part_0_1.npz",
        task="sr4x-pool", image_size=SIZE, trajectory=True,
    )  # fmt: skip
    part = read_part(out)
    assert computed and len(part) == 3 and part.degraded is None
    assert part.meta["precision"] == "bf16" and part.meta["batch_size"] == 2
    assert part.meta["sampler"] == {
        "name": "implicit",
        "label": "implicit-eta0",
        "options": {"eta": 0.0},
    }
    assert (tmp_path / "trajectory.png").is_file()
    with pytest.raises(ValueError, match="trained for sr4x-pool, not jpeg-5"):
        sample_run_partition(
            config, run, data, "ddpm", 2, (0, 1), tmp_path / "x.npz", task="jpeg-5"
        )
    with pytest.raises(ValueError, match="no sampler labelled 'cddb-lam1'"):
        sample_run_partition(config, run, data, "cddb-lam1", 2, (0, 1), tmp_path / "x.npz")


def test_sampler_options_on_the_command_line(tmp_path, capsys):
    run, data = make_run(tmp_path / "run"), image_folder(tmp_path / "photos", count=2)
    base = ["sample", "--ckpt", str(run), "--data-dir", str(data), "--nfe", "2"]
    out = tmp_path / "implicit.npz"
    assert main([*base, "--sampler", "implicit", "--eta", "0", "--out", str(out)]) == 0
    assert read_part(out).meta["sampler"]["label"] == "implicit-eta0"
    dbim = tmp_path / "dbim.npz"
    assert main([*base, "--nfe", "3", "--sampler", "dbim", "--order", "3", "--out", str(dbim)]) == 0
    assert read_part(dbim).meta["sampler"] == {
        "name": "dbim", "label": "dbim-o3", "options": {"order": 3}
    }  # fmt: skip
    assert main([*base, "--sampler", "dbim", "--order", "4", "--out", str(dbim)]) == 1
    assert "--order: got 4, expected one of 2, 3" in capsys.readouterr().err
    assert (
        main([*base, "--sampler", "cddb", "--step-size", "0.5", "--out", str(tmp_path / "c.npz")])
        == 0
    )
    assert read_part(tmp_path / "c.npz").meta["sampler"]["options"] == {"step_size": 0.5}
    capsys.readouterr()
    assert main([*base, "--sampler", "ddpm", "--eta", "0.5", "--out", str(tmp_path / "x.npz")]) == 1
    assert "sampler ddpm takes no option eta" in capsys.readouterr().err
    assert (
        main([*base, "--sampler", "implicit", "--eta", "2", "--out", str(tmp_path / "x.npz")]) == 1
    )
    assert (
        "--eta: got 2.0, expected a number in [0, 1]" in capsys.readouterr().err
    )  # ImplicitOptions
    for bad in ("nan", "inf"):
        assert main([*base, "--sampler", "cddb", "--step-size", bad, "--out", str(out)]) == 1
        assert f"--step-size: got {bad}, expected a finite number >= 0" in capsys.readouterr().err
    jpeg = make_run(tmp_path / "jpeg", task="jpeg-10")
    jpeg_args = ["sample", "--ckpt", str(jpeg), "--data-dir", str(data), "--nfe", "2"]
    assert main([*jpeg_args, "--sampler", "cddb", "--out", str(tmp_path / "x.npz")]) == 1
    err = capsys.readouterr().err
    assert "cddb needs the task's differentiable forward operator, which task jpeg-10" in err
    assert not (tmp_path / "x.npz").exists()


def test_without_a_config_the_data_dir_is_an_image_folder_not_the_demo():
    """So an ImageNet folder given by --data-dir alone is recognised (10k subset where due)."""
    from i2sb.cli import build_parser
    from i2sb.cli.sample import _config

    argv = ["sample", "--ckpt", "r", "--nfe", "2", "--data-dir", "d", "--out", "p.npz"]
    assert _config(build_parser().parse_args(argv)).data.kind == "imagefolder"
    paired = build_parser().parse_args([*argv, "--data-kind", "paired"])
    assert _config(paired).data.kind == "paired"
