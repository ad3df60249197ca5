"""Sampling holds a run's weights once: in the dtype and layout it uses, the file's mapping gone."""

import sys
from pathlib import Path

import pytest
import torch
from test_sample import make_run

from i2sb.network import load_i2sb_checkpoint
from i2sb.network.weights_copy import copy_in_groups
from i2sb.sample.options import sampling_options
from i2sb.sample.restorer import Restorer


def mapped(path: Path) -> bool:
    """Whether this process maps ``path`` (Linux /proc/self/maps)."""
    return str(path.resolve()) in Path("/proc/self/maps").read_text()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
def test_loading_for_sampling_leaves_no_mapping_of_the_checkpoint(tmp_path):
    run = make_run(tmp_path / "run")
    sampler = Restorer.load(run, precision="bf16")
    assert not mapped(run / "latest.pt")
    assert sampler.net.diffusion_model.input_blocks[0][0].weight.dtype == torch.bfloat16
    # Without a layout the network's tensors are the mapped ones (a quick look).
    net, _ = load_i2sb_checkpoint(run)
    assert mapped(run / "latest.pt")
    del net


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_sampling_weights_equal_a_copy_then_cast(tmp_path, precision):
    run = make_run(tmp_path / "run")
    loaded = Restorer.load(run, precision=precision)
    net, raw = load_i2sb_checkpoint(run)  # the previous way: mapped tensors, then copied and cast
    previous = Restorer(net, sampling_options(raw, source=str(run)), precision=precision)
    for (name, ours), theirs in zip(
        loaded.net.state_dict().items(), previous.net.state_dict().values(), strict=True
    ):
        assert ours.dtype == theirs.dtype and ours.stride() == theirs.stride(), name
        assert torch.equal(ours, theirs), name


def test_copy_in_groups_reads_a_fresh_state_per_group():
    target = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 2))
    source = {name: torch.randn(t.shape) for name, t in target.state_dict().items()}
    reads = []

    def read_state():
        reads.append(1)
        return source

    copy_in_groups(target, read_state, group_bytes=48)  # stops once a group holds >= 48 bytes
    assert len(reads) == 3  # [0.weight: 64], [0.bias: 16, 1.weight: 32], [1.bias: 8]
    for name, value in target.state_dict().items():
        assert torch.equal(value, source[name]), name
