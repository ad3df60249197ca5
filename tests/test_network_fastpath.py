"""The network's fast path (i2sb/network/fastpath.py): precision choice, layout, fused ops, compile."""

import logging

import pytest
import torch

from i2sb.network import PRESETS, build_i2sb_net, create_unet, fastpath
from i2sb.network.fastpath import (
    CompiledOrEager,
    autocast,
    cast_autocast_weights,
    native_bf16,
    resolve_precision,
    to_channels_last,
)


def perturbed_tiny_unet():
    torch.manual_seed(0)
    unet = create_unet(**PRESETS["tiny"]).eval()
    with torch.no_grad():  # leave no zero-initialised branch
        for param in unet.parameters():
            param.add_(0.02 * torch.randn_like(param))
    return unet


def test_auto_precision_resolves_per_device_and_use():
    cpu = "bf16" if native_bf16(torch.device("cpu")) else "fp32"
    assert resolve_precision("auto", "cpu", training=False) == cpu
    assert resolve_precision("auto", "cpu", training=True) == cpu
    assert resolve_precision("auto", "cuda", training=False) == "fp16"
    assert resolve_precision("fp32", "cpu", training=True) == "fp32"


def test_bad_precisions_are_clear_errors():
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        resolve_precision("fp16", "cpu", training=False)
    with pytest.raises(ValueError, match="train.precision must be one of"):
        resolve_precision("fp16", "cuda", training=True)  # no loss scaling: not offered
    with pytest.raises(ValueError, match="sample.precision must be one of"):
        resolve_precision("int8", "cpu", training=False)


def test_channels_last_changes_layout_not_the_function():
    unet = perturbed_tiny_unet()
    x, t = torch.randn(2, 3, 32, 32), torch.tensor([3.0, 900.0])
    with torch.no_grad():
        expected = unet(x, t)
        to_channels_last(unet)
        assert unet.input_blocks[0][0].weight.is_contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(unet(x, t), expected, atol=1e-5, rtol=0)


def test_a_shared_time_gives_what_the_repeated_times_give():
    unet = perturbed_tiny_unet()
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(unet(x, torch.tensor([250.0])), unet(x, torch.full((3,), 250.0)))
    with pytest.raises(ValueError, match=r"t must have shape \(3,\) or \(1,\)"):
        unet(x, torch.ones(2))


def test_the_wrapper_embeds_one_time_for_a_batch_that_shares_its_step(monkeypatch):
    net = build_i2sb_net("tiny", interval=100)
    seen = []
    real = net.diffusion_model.forward
    monkeypatch.setattr(
        net.diffusion_model, "forward", lambda x, t, **kw: seen.append(t) or real(x, t, **kw)
    )
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        by_int, by_tensor = net(x, 40), net(x, torch.tensor([40, 40]))
        net(x, torch.tensor([40, 41]))
    assert [tuple(t.shape) for t in seen] == [(1,), (1,), (2,)]
    torch.testing.assert_close(by_int, by_tensor, atol=0, rtol=0)


def test_bf16_autocast_output_is_float32_and_close():
    net = build_i2sb_net("tiny", interval=100)
    with torch.no_grad():
        for param in net.parameters():
            param.add_(0.02 * torch.randn_like(param))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = net(x, 50)
        with autocast("bf16", "cpu"):
            fast = net(x, 50)
    assert fast.dtype == torch.float32
    assert (fast - expected).norm() / expected.norm() < 0.03


def test_weights_cast_once_give_autocast_s_output_bit_for_bit():
    """Sampling stores conv/linear weights in the autocast dtype once; the output must not move."""
    net = build_i2sb_net("tiny", interval=100)
    with torch.no_grad():
        for param in net.parameters():
            param.add_(0.02 * torch.randn_like(param))
    to_channels_last(net)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad(), autocast("bf16", "cpu"):
        expected = net(x, 50)
        cast_autocast_weights(net, "bf16")
        got = net(x, 50)
    assert torch.equal(got, expected)
    unet = net.diffusion_model
    assert unet.input_blocks[0][0].weight.dtype == torch.bfloat16
    assert unet.time_embed[0].weight.dtype == torch.bfloat16
    assert unet.out[0].weight.dtype == torch.float32  # the norms stay float32
    assert (
        cast_autocast_weights(unet, "fp32").out[2].weight.dtype == torch.bfloat16
    )  # fp32: untouched


def small_module():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.SiLU(), torch.nn.Linear(8, 2))


def test_compile_falls_back_to_eager_with_the_reason_logged(monkeypatch, caplog):
    def broken_backend(graph, example_inputs):
        raise RuntimeError("no compiler today")

    monkeypatch.setattr(fastpath, "COMPILE_BACKEND", broken_backend)
    module = small_module()
    run = CompiledOrEager(module, torch.device("cpu"))
    x = torch.randn(3, 4)
    with caplog.at_level(logging.WARNING, logger="i2sb.network.fastpath"):
        torch.testing.assert_close(run(x), module(x), atol=0, rtol=0)
    assert not run.active and "no compiler today" in run.reason
    assert "running eager" in caplog.text
    torch.testing.assert_close(run(x), module(x), atol=0, rtol=0)  # and stays eager


def test_compile_blocked_upfront_says_why(monkeypatch, caplog):
    monkeypatch.setattr(fastpath.shutil, "which", lambda name: None)
    with caplog.at_level(logging.WARNING, logger="i2sb.network.fastpath"):
        run = CompiledOrEager(small_module(), torch.device("cpu"))
    assert not run.active and "C++ compiler" in run.reason and "C++ compiler" in caplog.text


def test_a_compiled_module_leaves_the_state_dict_alone(monkeypatch):
    monkeypatch.setattr(fastpath, "COMPILE_BACKEND", "eager")  # dynamo only: fast, still compiled
    module = small_module()
    keys = list(module.state_dict())
    run = CompiledOrEager(module, torch.device("cpu"))
    x = torch.randn(3, 4)
    torch.testing.assert_close(run(x), module(x))
    assert run.active and list(run.module.state_dict()) == keys
    assert not isinstance(run, torch.nn.Module)  # cannot be registered inside another module


def test_blocks_of_one_are_the_single_image_calls_with_one_embedding(monkeypatch):
    """compute_block=1 runs the torso per image but projects a shared time once per ResBlock."""
    unet = cast_autocast_weights(to_channels_last(perturbed_tiny_unet()), "bf16")
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad(), autocast("bf16", "cpu"):
        singles = torch.cat([unet(x[i : i + 1], torch.tensor([250.0])) for i in range(3)])
        per_time = torch.cat([unet(x[i : i + 1], torch.tensor([9.0 * i])) for i in range(3)])
        projections = []
        for block in unet.modules():
            if hasattr(block, "emb_layers"):
                real = block.emb_layers.forward
                monkeypatch.setattr(
                    block.emb_layers,
                    "forward",
                    lambda e, real=real: projections.append(1) or real(e),
                )
        shared = unet(x, torch.tensor([250.0]), compute_block=1)
        blocks = len(projections)
        times = unet(x, torch.tensor([0.0, 9.0, 18.0]), compute_block=1)
    assert torch.equal(shared, singles) and torch.equal(times, per_time)
    assert blocks == sum(hasattr(m, "emb_layers") for m in unet.modules())  # once, not per image


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_in_fixed_blocks_an_image_depends_on_nothing_but_itself(precision):
    """compute_block=K: image z's output is the same bytes at every position of any batch size,
    whatever its block-mates (random images or the zero padding), with one shared time or with
    per-image times of the same value."""
    unet = cast_autocast_weights(to_channels_last(perturbed_tiny_unet()), precision)
    generator = torch.Generator().manual_seed(1)
    z = torch.randn(1, 3, 32, 32, generator=generator)
    outputs = []
    with torch.no_grad(), autocast(precision, "cpu"):
        for count, position in [(1, 0), (2, 1), (3, 0), (3, 2), (4, 3), (5, 4), (6, 1), (8, 5)]:
            x = torch.randn(count, 3, 32, 32, generator=generator)
            x[position] = z[0]
            for t in (torch.tensor([250.0]), torch.full((count,), 250.0)):
                outputs.append(unet(x, t, compute_block=4)[position])
    assert all(torch.equal(out, outputs[0]) for out in outputs[1:])


def test_a_negative_compute_block_is_refused():
    with pytest.raises(ValueError, match="compute_block must be >= 0"):
        perturbed_tiny_unet()(torch.randn(1, 3, 32, 32), torch.tensor([1.0]), compute_block=-1)


def test_cpu_training_convolves_small_maps_in_float32_and_everything_else_as_autocast_says():
    """layers.Conv2d: maps of <= 4x4, training, CPU autocast -> float32, whatever the batch."""
    from i2sb.network.layers import Conv2d

    torch.manual_seed(0)
    conv = Conv2d(8, 8, 3, padding=1).train()
    assert set(conv.state_dict()) == set(torch.nn.Conv2d(8, 8, 3).state_dict())
    small = torch.randn(1, 8, 4, 4, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = conv(small)
    assert out.dtype == torch.float32
    assert torch.equal(out, torch.nn.functional.conv2d(small, conv.weight, conv.bias, padding=1))
    out.sum().backward()
    assert conv.weight.grad.dtype == torch.float32 and small.grad.dtype == torch.float32

    # the precision follows the map, not the batch: a microbatch of 2 gives each image what 2 of 1 give
    pair = torch.randn(2, 8, 4, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        together, alone = conv(pair), torch.cat([conv(pair[:1]), conv(pair[1:])])
    assert together.dtype == torch.float32
    torch.testing.assert_close(together, alone, atol=1e-6, rtol=1e-6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert conv(torch.randn(1, 8, 8, 8)).dtype == torch.bfloat16  # 64 positions
        assert conv.eval()(small).dtype == torch.bfloat16  # sampling and validation
        conv.train().to(torch.bfloat16)  # weights cast once, as the Restorer does: left to autocast
        assert conv(small).dtype == torch.bfloat16
