"""The trainer holds no extra copy of the weights while it validates or writes a checkpoint."""

import torch

from i2sb.train.ema import EMA


def make_ema():
    net = torch.nn.Linear(3, 2)
    ema = EMA(net.parameters(), 0.9)
    with torch.no_grad():
        for param in net.parameters():
            param.add_(1.0)  # the weights move away from their average
    ema.update()
    return net, ema


def test_average_parameters_swaps_the_ema_weights_in_without_a_copy():
    net, ema = make_ema()
    weights = [p.detach().clone() for p in net.parameters()]
    shadows = [s.clone() for s in ema.shadow_params]
    shadow_storage = [s.data_ptr() for s in ema.shadow_params]
    with ema.average_parameters():
        for param, shadow, pointer in zip(net.parameters(), shadows, shadow_storage, strict=True):
            assert torch.equal(param, shadow)
            assert param.data_ptr() == pointer  # the shadow's own storage: nothing was copied
    for param, weight in zip(net.parameters(), weights, strict=True):
        assert torch.equal(param, weight)
    for shadow, before in zip(ema.shadow_params, shadows, strict=True):
        assert torch.equal(shadow, before)


def test_ema_state_dict_shares_the_shadow_tensors():
    _, ema = make_ema()
    saved = ema.state_dict()["shadow_params"]
    assert all(a is b for a, b in zip(saved, ema.shadow_params, strict=True))
