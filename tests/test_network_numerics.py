"""The UNet computes ADM's function: compared with a plain functional forward written here from
the state_dict alone (explicit per-head attention, cos-then-sin time embedding)."""

import math

import pytest
import torch
import torch.nn.functional as F

from i2sb.network import PRESETS, create_unet, set_attention_impl
from i2sb.network.layers import timestep_embedding


def randomized(unet, seed=0):
    """Perturb every parameter: ADM zero-inits residual outputs, which would hide wiring bugs."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in unet.parameters():
            param.add_(0.05 * torch.randn(param.shape, generator=gen))
    return unet


def reference_embedding(t, dim):
    half = dim // 2
    freqs = torch.tensor([10000.0 ** (-i / half) for i in range(half)], dtype=torch.float64)
    args = t.double()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1).float()


def reference_attention(x, sd, prefix, head_dim, new_order=False):
    """One loop iteration per head, slicing qkv rows by hand."""
    batch, channels, height, width = x.shape
    flat = x.reshape(batch, channels, -1)
    normed = F.group_norm(flat, 32, sd[f"{prefix}.norm.weight"], sd[f"{prefix}.norm.bias"])
    qkv = F.conv1d(normed, sd[f"{prefix}.qkv.weight"], sd[f"{prefix}.qkv.bias"])
    heads = []
    for h in range(channels // head_dim):
        if new_order:  # [q heads | k heads | v heads]
            rows = [
                slice(part * channels + h * head_dim, part * channels + (h + 1) * head_dim)
                for part in range(3)
            ]
        else:  # legacy: [head 0: q k v | head 1: q k v | ...]
            base = 3 * head_dim * h
            rows = [
                slice(base + part * head_dim, base + (part + 1) * head_dim) for part in range(3)
            ]
        q, k, v = (qkv[:, r] for r in rows)  # (B, d, T)
        weight = torch.softmax(q.transpose(1, 2) @ k / math.sqrt(head_dim), dim=-1)  # (B, T, T)
        heads.append(v @ weight.transpose(1, 2))
    out = F.conv1d(
        torch.cat(heads, 1), sd[f"{prefix}.proj_out.weight"], sd[f"{prefix}.proj_out.bias"]
    )
    return (flat + out).reshape(batch, channels, height, width)


def reference_resblock(x, emb, sd, prefix, resample=None):
    def norm(t, name):
        return F.group_norm(t, 32, sd[f"{prefix}.{name}.weight"], sd[f"{prefix}.{name}.bias"])

    h = F.silu(norm(x, "in_layers.0"))
    if resample == "down":
        h, x = F.avg_pool2d(h, 2), F.avg_pool2d(x, 2)
    elif resample == "up":
        h, x = F.interpolate(h, scale_factor=2.0), F.interpolate(x, scale_factor=2.0)
    h = F.conv2d(h, sd[f"{prefix}.in_layers.2.weight"], sd[f"{prefix}.in_layers.2.bias"], padding=1)
    film = F.linear(
        F.silu(emb), sd[f"{prefix}.emb_layers.1.weight"], sd[f"{prefix}.emb_layers.1.bias"]
    )
    scale, shift = film[:, :, None, None].chunk(2, dim=1)
    h = F.silu(norm(h, "out_layers.0") * (1 + scale) + shift)
    h = F.conv2d(
        h, sd[f"{prefix}.out_layers.3.weight"], sd[f"{prefix}.out_layers.3.bias"], padding=1
    )
    if f"{prefix}.skip_connection.weight" in sd:
        x = F.conv2d(
            x, sd[f"{prefix}.skip_connection.weight"], sd[f"{prefix}.skip_connection.bias"]
        )
    return x + h


def reference_tiny_forward(sd, x, t, new_order=False):
    """ADM forward for the tiny preset (see test_network_layout.tiny_layout for the blocks)."""
    emb = reference_embedding(t, 32)
    emb = F.linear(F.silu(F.linear(emb, sd["time_embed.0.weight"], sd["time_embed.0.bias"])),
                   sd["time_embed.2.weight"], sd["time_embed.2.bias"])  # fmt: skip
    attn = lambda h, p: reference_attention(h, sd, p, 32, new_order)  # noqa: E731
    skips = [F.conv2d(x, sd["input_blocks.0.0.weight"], sd["input_blocks.0.0.bias"], padding=1)]
    skips.append(reference_resblock(skips[-1], emb, sd, "input_blocks.1.0"))
    skips.append(reference_resblock(skips[-1], emb, sd, "input_blocks.2.0", "down"))
    skips.append(
        attn(reference_resblock(skips[-1], emb, sd, "input_blocks.3.0"), "input_blocks.3.1")
    )
    h = reference_resblock(skips[-1], emb, sd, "middle_block.0")
    h = reference_resblock(attn(h, "middle_block.1"), emb, sd, "middle_block.2")
    h = attn(
        reference_resblock(torch.cat([h, skips.pop()], 1), emb, sd, "output_blocks.0.0"),
        "output_blocks.0.1",
    )
    h = attn(
        reference_resblock(torch.cat([h, skips.pop()], 1), emb, sd, "output_blocks.1.0"),
        "output_blocks.1.1",
    )
    h = reference_resblock(h, emb, sd, "output_blocks.1.2", "up")
    h = reference_resblock(torch.cat([h, skips.pop()], 1), emb, sd, "output_blocks.2.0")
    h = reference_resblock(torch.cat([h, skips.pop()], 1), emb, sd, "output_blocks.3.0")
    h = F.silu(F.group_norm(h, 32, sd["out.0.weight"], sd["out.0.bias"]))
    return F.conv2d(h, sd["out.2.weight"], sd["out.2.bias"], padding=1)


@pytest.fixture(scope="module")
def batch():
    gen = torch.Generator().manual_seed(1)
    return torch.randn(2, 3, 32, 32, generator=gen), torch.tensor([3.7, 812.0])


def test_time_embedding_is_cosines_then_sines():
    t = torch.tensor([0.0, 1.5, 999.9])
    torch.testing.assert_close(
        timestep_embedding(t, 32), reference_embedding(t, 32), atol=1e-4, rtol=0
    )
    assert timestep_embedding(t, 33).shape == (3, 33)


@pytest.mark.parametrize("impl", ["sdpa", "plain"])
@pytest.mark.parametrize("new_order", [False, True])
def test_unet_matches_the_functional_reference(batch, impl, new_order):
    unet = randomized(create_unet(**{**PRESETS["tiny"], "use_new_attention_order": new_order}))
    set_attention_impl(unet, impl)
    x, t = batch
    with torch.no_grad():
        ours = unet(x, t)
        expected = reference_tiny_forward(unet.state_dict(), x, t, new_order)
    assert ours.abs().max() > 0.1  # a real signal, not the zero-initialised output head
    assert (ours - expected).abs().max() <= 1e-5


def test_sdpa_and_plain_attention_agree_in_gradients(batch):
    x, t = batch
    unet = randomized(create_unet(**PRESETS["tiny"]))
    grads = {}
    for impl in ("sdpa", "plain"):
        set_attention_impl(unet, impl)
        unet.zero_grad()
        unet(x, t).square().mean().backward()
        grads[impl] = [p.grad.clone() for p in unet.parameters()]
    for a, b in zip(grads["sdpa"], grads["plain"], strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_activation_checkpointing_gives_the_same_gradients(batch, monkeypatch):
    from i2sb.network import layers

    x, t = batch
    plain = randomized(create_unet(**PRESETS["tiny"]))
    ckpt = create_unet(**{**PRESETS["tiny"], "use_checkpoint": True})
    ckpt.load_state_dict(plain.state_dict())
    checkpointed = []  # blocks run through torch's checkpoint, per network
    real = layers.checkpoint
    monkeypatch.setattr(
        layers, "checkpoint", lambda *a, **k: checkpointed.append(1) or real(*a, **k)
    )
    for net in (plain, ckpt):
        before = len(checkpointed)
        net(x, t).square().mean().backward()
        assert (len(checkpointed) > before) == (net is ckpt)  # else the test compares plain twice
    for (name, a), b in zip(plain.named_parameters(), ckpt.parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, atol=1e-6, rtol=1e-5, msg=name)


def test_channels_last_gives_the_same_output(batch):
    x, t = batch
    unet = randomized(create_unet(**PRESETS["tiny"]))
    with torch.no_grad():
        expected = unet(x, t)
        unet = unet.to(memory_format=torch.channels_last)
        out = unet(x.contiguous(memory_format=torch.channels_last), t)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def relative_error(out, expected):
    return ((out.float() - expected).norm() / expected.norm()).item()


def test_bf16_weights_and_autocast_stay_close_to_fp32(batch):
    x, t = batch
    unet = randomized(create_unet(**PRESETS["tiny"]))
    with torch.no_grad():
        expected = unet(x, t)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            autocast_out = unet(x, t)
        unet.set_torso_dtype(torch.bfloat16)
        weights_out = unet(x, t)
    assert unet.input_blocks[1][0].in_layers[2].weight.dtype == torch.bfloat16
    assert unet.time_embed[0].weight.dtype == torch.float32  # as ADM's convert_to_fp16
    assert weights_out.dtype == torch.float32
    assert relative_error(autocast_out, expected) < 0.03
    assert relative_error(weights_out, expected) < 0.03


@pytest.mark.skipif(not torch.cuda.is_available(), reason="fp16 convolutions need CUDA")
def test_fp16_on_cuda_stays_close_to_fp32(batch):
    x, t = (v.cuda() for v in batch)
    unet = randomized(create_unet(**PRESETS["tiny"])).cuda()
    with torch.no_grad():
        expected = unet(x, t)
        fp16 = create_unet(**{**PRESETS["tiny"], "use_fp16": True}).cuda()
        fp16.load_state_dict(unet.state_dict())
        out = fp16(x, t)
    assert relative_error(out, expected) < 5e-3
