"""Checkpoint I/O: ADM surgery, the published run layout, our layout, and safe unpickling."""

import argparse
import json
import os
import pickle
from pathlib import Path

import pytest
import torch

from i2sb.bridge import noise_levels
from i2sb.network import (
    PRESETS,
    I2SBNet,
    build_i2sb_net,
    create_unet,
    load_adm_checkpoint,
    load_adm_from_downloads,
    load_i2sb_checkpoint,
    save_i2sb_checkpoint,
)
from i2sb.network.safe_pickle import load_options_pickle, write_options_pickle


def perturbed(module, seed):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in module.parameters():
            param.add_(0.05 * torch.randn(param.shape, generator=gen))
    return module


@pytest.fixture(scope="module")
def fake_adm(tmp_path_factory):
    """An ADM-style checkpoint (6 output channels) of the tiny architecture."""
    state = perturbed(create_unet(**{**PRESETS["tiny"], "learn_sigma": True}), 0).state_dict()
    path = tmp_path_factory.mktemp("adm") / "adm.pt"
    torch.save(state, path)
    return path, state


def test_adm_surgery_keeps_the_first_three_output_channels(fake_adm):
    path, adm = fake_adm
    unet = load_adm_checkpoint(path, preset="tiny")
    state = unet.state_dict()
    assert torch.equal(state["out.2.weight"], adm["out.2.weight"][:3])
    assert torch.equal(state["out.2.bias"], adm["out.2.bias"][:3])
    for key in state.keys() - {"out.2.weight", "out.2.bias"}:
        assert torch.equal(state[key], adm[key]), key


def test_adm_surgery_for_cond_x1_keeps_fresh_init_on_the_extra_channels(fake_adm):
    path, adm = fake_adm
    torch.manual_seed(7)
    fresh = create_unet(**{**PRESETS["tiny"], "in_channels": 6}).input_blocks[0][0].weight
    torch.manual_seed(7)
    weight = load_adm_checkpoint(path, cond_x1=True, preset="tiny").input_blocks[0][0].weight
    assert weight.shape == (32, 6, 3, 3)
    assert torch.equal(weight[:, :3], adm["input_blocks.0.0.weight"])
    assert torch.equal(weight[:, 3:], fresh[:, 3:])
    assert weight[:, 3:].abs().sum() > 0  # random, not zeros


def test_adm_checkpoint_is_taken_from_the_downloads_registry(fake_adm, tmp_path, monkeypatch):
    path, adm = fake_adm
    monkeypatch.delenv("I2SB_ADM_CHECKPOINT", raising=False)
    unet = load_adm_from_downloads(explicit=str(path), cache=str(tmp_path), preset="tiny")
    assert torch.equal(unet.state_dict()["out.2.weight"], adm["out.2.weight"][:3])


def test_adm_loader_names_a_file_that_is_not_an_adm_unet(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"weight": torch.zeros(3)}, path)
    with pytest.raises(KeyError, match="other.pt"):
        load_adm_checkpoint(path, preset="tiny")
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_adm_checkpoint(tmp_path / "missing.pt", preset="tiny")


def trained_run(folder: Path, cond_x1=True, interval=100):
    """A run folder as a trainer leaves it: net, EMA different from net, optimizer, scheduler."""
    net = perturbed(build_i2sb_net("tiny", interval, cond_x1=cond_x1), 1)
    params = list(net.parameters())
    optimizer = torch.optim.AdamW(params, lr=5e-5)
    sched = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1000, gamma=0.99)
    x = torch.randn(2, 3, 32, 32)
    net(x, torch.tensor([0, interval - 1]), cond=x if cond_x1 else None).square().mean().backward()
    optimizer.step()
    sched.step()
    shadow = [p.detach() + 0.5 for p in params]  # torch_ema layout, deliberately unlike net
    ema = {"decay": 0.99, "num_updates": 1, "shadow_params": shadow, "collected_params": None}
    save_i2sb_checkpoint(folder / "latest.pt", net, ema, optimizer.state_dict(), sched.state_dict())
    return net, shadow


def published_options(cond_x1=True, interval=100):
    return argparse.Namespace(
        cond_x1=cond_x1, interval=interval, t0=1e-4, T=1.0, beta_max=0.3, ot_ode=False,
        corrupt="jpeg-10", device="cuda", ckpt_path=Path("results/jpeg-10"), load=None,
    )  # fmt: skip


def test_saved_checkpoint_has_the_published_layout(tmp_path):
    trained_run(tmp_path)
    checkpoint = torch.load(tmp_path / "latest.pt", weights_only=True)
    assert set(checkpoint) == {"net", "ema", "optimizer", "sched"}
    assert all(key.startswith("diffusion_model.") for key in checkpoint["net"])
    assert [p.name for p in tmp_path.iterdir()] == ["latest.pt"]  # no temporary left behind


def test_equal_checkpoints_are_equal_files_whatever_their_name(tmp_path):
    """The file's bytes (whose sha256 sampling records) hold no temporary name of the writing process."""
    net = build_i2sb_net("tiny", 100)
    ema = {"decay": 0.99, "num_updates": 0, "shadow_params": [p.detach() for p in net.parameters()]}
    for name in ("latest.pt", "other.pt"):
        save_i2sb_checkpoint(tmp_path / name, net, ema, {}, {})
    assert (tmp_path / "latest.pt").read_bytes() == (tmp_path / "other.pt").read_bytes()


def test_published_layout_round_trip_applies_ema_weights(tmp_path, monkeypatch):
    # Published runs are always ADM 256; the tiny architecture stands in for it here.
    monkeypatch.setitem(PRESETS, "adm256", PRESETS["tiny"])
    net, shadow = trained_run(tmp_path)
    (tmp_path / "options.pkl").write_bytes(pickle.dumps(published_options()))
    loaded, options = load_i2sb_checkpoint(tmp_path)
    assert options["interval"] == 100 and options["ckpt_path"] == "results/jpeg-10"
    assert loaded.cond_x1 and not loaded.training
    for got, ema_value, raw in zip(loaded.parameters(), shadow, net.parameters(), strict=True):
        assert torch.equal(got, ema_value)
        assert not torch.equal(got, raw)
    torch.testing.assert_close(loaded.noise_levels, noise_levels(100))
    # the loaded network computes what a network holding the EMA weights computes
    reference = build_i2sb_net("tiny", 100, cond_x1=True)
    with torch.no_grad():
        for param, value in zip(reference.parameters(), shadow, strict=True):
            param.copy_(value)
        x, steps = torch.randn(2, 3, 32, 32), torch.tensor([3, 97])
        torch.testing.assert_close(loaded(x, steps, cond=x), reference(x, steps, cond=x))


def test_our_layout_is_read_from_options_json_and_latest_pt_path(tmp_path):
    _, shadow = trained_run(tmp_path, cond_x1=False, interval=50)
    options = {"task": "jpeg-10", "preset": "tiny", "image_size": 32, "cond_x1": False,
               "interval": 50, "t0": 1e-4, "T": 1.0, "beta_max": 0.3, "ot_ode": False}  # fmt: skip
    (tmp_path / "options.json").write_text(json.dumps(options))
    # options.json wins over a pickle, which is then never opened
    (tmp_path / "options.pkl").write_bytes(b"not a pickle")
    loaded, read = load_i2sb_checkpoint(tmp_path / "latest.pt")
    assert read == options
    assert all(torch.equal(a, b) for a, b in zip(loaded.parameters(), shadow, strict=True))


def test_missing_options_are_named(tmp_path):
    trained_run(tmp_path, cond_x1=False)
    with pytest.raises(FileNotFoundError, match="options.json nor options.pkl"):
        load_i2sb_checkpoint(tmp_path)
    (tmp_path / "options.json").write_text(json.dumps({"preset": "tiny", "interval": 100}))
    with pytest.raises(KeyError, match="cond_x1"):
        load_i2sb_checkpoint(tmp_path)


class RunsShell:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_malicious_options_pickle_is_refused_before_running(tmp_path):
    marker = tmp_path / "pwned"
    evil = argparse.Namespace(interval=1000, payload=RunsShell(marker))
    (tmp_path / "options.pkl").write_bytes(pickle.dumps(evil))
    with pytest.raises(ValueError, match="refusing .*system"):
        load_options_pickle(tmp_path / "options.pkl")
    trained_run(tmp_path)
    with pytest.raises(ValueError, match="options.pkl"):
        load_i2sb_checkpoint(tmp_path)
    assert not marker.exists()


def test_options_pickle_admits_only_namespace_paths_and_builtins(tmp_path):
    path = tmp_path / "options.pkl"
    path.write_bytes(pickle.dumps({"f": eval}))
    with pytest.raises(ValueError, match="builtins.eval"):
        load_options_pickle(path)
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        path.write_bytes(pickle.dumps(published_options(), protocol=protocol))
        assert load_options_pickle(path)["ckpt_path"] == "results/jpeg-10"


def test_written_options_pickle_reads_back_and_refuses_foreign_types(tmp_path):
    path = tmp_path / "options.pkl"
    write_options_pickle(path, published_options())
    assert load_options_pickle(path)["corrupt"] == "jpeg-10"
    with pytest.raises(ValueError, match=r"cannot write .*options2.pkl: refusing builtins.eval"):
        write_options_pickle(tmp_path / "options2.pkl", argparse.Namespace(f=eval))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["options.pkl"]


def test_save_refuses_an_ema_that_does_not_fit_the_network(tmp_path):
    net = build_i2sb_net("tiny", 10)
    with pytest.raises(ValueError, match="shadow_params"):
        save_i2sb_checkpoint(tmp_path / "latest.pt", net, {"shadow_params": []}, {}, None)
    ema = {"shadow_params": [p.detach() for p in net.parameters()]}
    with pytest.raises(ValueError, match="overwrite"):
        save_i2sb_checkpoint(tmp_path / "latest.pt", net, ema, {}, None, extra={"net": 1})
    assert not (tmp_path / "latest.pt").exists()


def test_wrapper_feeds_noise_levels_and_concatenates_x1():
    unet = perturbed(create_unet(**{**PRESETS["tiny"], "in_channels": 6}), 2)
    levels = noise_levels(100)
    net = I2SBNet(unet, levels, cond_x1=True)
    assert all(key.startswith("diffusion_model.") for key in net.state_dict())
    x, x1, steps = torch.randn(2, 3, 32, 32), torch.randn(2, 3, 32, 32), torch.tensor([5, 60])
    with torch.no_grad():
        expected = unet(torch.cat([x, x1], 1), levels[steps])
        torch.testing.assert_close(net(x, steps, cond=x1), expected)
        same_step = net(x, 5, cond=x1)
        torch.testing.assert_close(same_step, unet(torch.cat([x, x1], 1), levels[[5, 5]]))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert net(x, steps, cond=x1).dtype == torch.float32
    with pytest.raises(ValueError, match="cond_x1"):
        net(x, steps)
    with pytest.raises(ValueError, match="steps"):
        net(x, torch.tensor([1, 2, 3]), cond=x1)


class Calls:
    """Pickles as ``func(*args)``: how a hostile file asks an allowed class for a huge object."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _shared_lists(depth: int, fan_out: int) -> bytes:
    """A pickle of a few hundred bytes whose list holds one list ``fan_out`` times, ``depth``
    levels down: fan_out**depth values to walk."""
    data = b"\x80\x04]K\x01a\x94"  # memo 0: [1]
    for level in range(depth):
        data += b"](" + (b"h" + bytes([level])) * fan_out + b"e\x94"  # [memo[level]] * fan_out
    return data + b"."


RESOURCE_PICKLES = {
    "bytearray of 10^10 bytes": (pickle.dumps(Calls(bytearray, 10**10), protocol=4), "bytearray of"),
    "set of range(10^10)": (pickle.dumps(Calls(set, Calls(range, 10**10)), protocol=4), "range of"),
    "range longer than sys.maxsize": (
        pickle.dumps(Calls(frozenset, Calls(range, 10**30)), protocol=4), "range of"),
    "copyreg rebuilding bytearray(10^10)": (
        b"ccopyreg\n_reconstructor\n(c__builtin__\nbytearray\nc__builtin__\nbytearray\n"
        b"I10000000000\ntR.", "only plain objects"),
    "lists nested 100000 deep": (b"\x80\x04" + b"]" * 100_000 + b"a" * 99_999 + b".", "deeper"),
    "one list shared 4^20 times": (_shared_lists(20, 4), "values in all"),
    "a 1.2 MB options file": (b"\x80\x04](" + b"K\x01" * 600_000 + b"e.", "bytes, more than"),
}  # fmt: skip


@pytest.mark.parametrize("name", RESOURCE_PICKLES)
def test_resource_exhausting_pickles_are_refused_with_a_clear_error(tmp_path, name):
    data, words = RESOURCE_PICKLES[name]
    path = tmp_path / "options.pkl"
    path.write_bytes(data)
    with pytest.raises(ValueError) as caught:
        load_options_pickle(path)
    message = str(caught.value)
    assert message.startswith(f"cannot read options pickle {path}: ") and words in message
    assert "\n" not in message


@pytest.mark.parametrize("protocol", [2, 4])
def test_a_checkpoint_asking_for_a_huge_bytearray_is_refused_before_loading(tmp_path, protocol):
    """torch's weights_only unpickler admits bytearray: bytearray(10**10) zeroes 10 GB (9.8 GB RSS
    measured). Refused whatever n; 10**8 here, so that a regression costs 100 MB, not 10 GB."""
    path = tmp_path / "latest.pt"
    torch.save({"net": Calls(bytearray, 10**8)}, path, pickle_protocol=protocol)
    options = {"preset": "tiny", "interval": 100, "cond_x1": False, "t0": 1e-4, "T": 1.0}
    (tmp_path / "options.json").write_text(json.dumps(options))
    for load in (load_i2sb_checkpoint, load_adm_checkpoint):
        with pytest.raises(RuntimeError, match=r"latest.pt asks for bytearray\(...\) while load"):
            load(path)
