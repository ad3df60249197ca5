"""NarrowGroupNorm: the training backward of narrow groups in channels_last equals PyTorch's."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from i2sb.network.layers import GroupNorm32, NarrowGroupNorm


@pytest.mark.parametrize("shape", [(3, 32, 8, 8), (2, 64, 5, 7), (2, 96, 4, 4)])
def test_narrow_group_norm_gradients_equal_pytorch_s(shape):
    gen = torch.Generator().manual_seed(0)
    x = (3 * torch.randn(shape, generator=gen) + 1.5).to(memory_format=torch.channels_last)
    weight = torch.randn(shape[1], generator=gen)
    bias = torch.randn(shape[1], generator=gen)
    grad = torch.randn(shape, generator=gen)
    results = []
    for narrow in (False, True):
        leaves = [t.clone().requires_grad_() for t in (x, weight, bias)]
        if narrow:
            out = NarrowGroupNorm.apply(leaves[0], leaves[1], leaves[2], 32, 1e-5)
        else:
            out = F.group_norm(leaves[0], 32, leaves[1], leaves[2], 1e-5)
        out.backward(grad)
        results.append((out.detach(), *(t.grad for t in leaves)))
    torch.testing.assert_close(results[1][0], results[0][0], atol=0, rtol=0)  # PyTorch's forward
    for got, want in zip(results[1][1:], results[0][1:], strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert results[1][1].is_contiguous(memory_format=torch.channels_last)


def test_group_norm32_takes_the_narrow_path_only_where_it_is_faster(monkeypatch):
    calls = []
    real = NarrowGroupNorm.apply
    monkeypatch.setattr(NarrowGroupNorm, "apply", lambda *a: calls.append(a[0].shape) or real(*a))
    cl = torch.channels_last
    for channels, layout, grad, bf16 in [
        (32, cl, True, True),  # training, 1 channel a group, under bf16: narrow
        (64, cl, True, False),  # 2 channels a group: narrow
        (128, cl, True, False),  # 4 channels a group: PyTorch's
        (32, torch.contiguous_format, True, False),  # PyTorch's kernel is fast there
        (32, cl, False, False),  # sampling (no gradient): PyTorch's forward either way
    ]:
        norm = GroupNorm32(32, channels)
        x = torch.randn(2, channels, 6, 6).to(memory_format=layout)
        x = x.bfloat16() if bf16 else x
        out = norm(x.requires_grad_(grad))
        assert out.dtype == x.dtype
        if grad:
            out.float().sum().backward()
    assert calls == [(2, 32, 6, 6), (2, 64, 6, 6)]
