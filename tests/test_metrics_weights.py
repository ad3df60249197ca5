"""Pretrained weights: an offline machine is checked first and told what to place where, with no
"Downloading" line and no deprecation warnings from the libraries that build the networks."""

import warnings

import pytest
import torch

from i2sb.downloads import unreachable
from i2sb.metrics.weights import WeightsUnavailable, load_hub_weights

NOWHERE = "https://weights.invalid/models/net-1234.pth"  # .invalid never resolves (RFC 2606)


def test_an_unresolvable_host_is_unreachable_with_the_reason():
    reason = unreachable(NOWHERE)
    assert reason is not None and reason.startswith("weights.invalid cannot be reached")


def test_offline_without_the_file_says_what_and_where_before_any_download(
    tmp_path, monkeypatch, capfd
):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    called = []
    with pytest.raises(WeightsUnavailable) as err:
        load_hub_weights("Net (X)", "net-1234.pth", NOWHERE, lambda: called.append(1))
    assert not called  # torch.hub never started, so it printed no "Downloading ..." line
    message = str(err.value)
    assert f"net-1234.pth is not in {tmp_path / 'hub' / 'checkpoints'}" in message
    assert "weights.invalid cannot be reached" in message and "TORCH_HOME" in message
    assert "Downloading" not in capfd.readouterr().err


def test_a_placed_file_is_used_offline_and_library_deprecations_stay_quiet(tmp_path, monkeypatch):
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    placed = tmp_path / "hub" / "checkpoints" / "net-1234.pth"
    placed.parent.mkdir(parents=True)
    torch.save({}, placed)

    def build():  # what clean-fid and lpips do inside: torchvision's deprecated `pretrained=`
        return torchvision.models.resnet18(pretrained=False)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = load_hub_weights("Net (X)", "net-1234.pth", NOWHERE, build)
    assert isinstance(model, torch.nn.Module)
    assert not [w for w in caught if "pretrained" in str(w.message)]
