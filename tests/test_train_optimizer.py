"""The trainer's fused AdamW and in-place EMA: the same update as the slow forms they replace."""

from __future__ import annotations

import torch

from i2sb.train.ema import EMA
from i2sb.train.optimizer import adamw, load_optimizer_state


def _params(seed: int = 0) -> list[torch.nn.Parameter]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(shape, generator=gen)) for shape in [(4, 3, 3, 3), (7,)]]


def _steps(optimizer: torch.optim.Optimizer, params, count: int, seed: int = 1) -> None:
    gen = torch.Generator().manual_seed(seed)
    for _ in range(count):
        for p in params:
            p.grad = torch.randn(p.shape, generator=gen)
        optimizer.step()


def test_fused_adamw_makes_the_update_of_the_reference_loop():
    fused, loop = _params(), _params()
    _steps(adamw(fused, 1e-2, 0.05, torch.device("cpu")), fused, 5)
    _steps(torch.optim.AdamW(loop, lr=1e-2, weight_decay=0.05, foreach=False), loop, 5)
    for a, b in zip(fused, loop, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_a_state_saved_by_the_loop_optimizer_resumes_fused():
    """torch's load_state_dict adopts the saved ``fused: None``; the trainer's loader keeps fused."""
    params = _params()
    written = torch.optim.AdamW(params, lr=1e-2)  # as the reference code (and older runs) save it
    _steps(written, params, 2)
    resumed = adamw(params, 1e-2, 0.0, torch.device("cpu"))
    assert resumed.param_groups[0]["fused"] is True
    load_optimizer_state(resumed, written.state_dict())
    assert resumed.param_groups[0]["fused"] is True
    assert resumed.param_groups[0]["lr"] == 1e-2
    _steps(resumed, params, 1)  # the loaded moments are usable by the fused kernel


def test_ema_update_is_torch_ema_s_formula_with_its_warm_up():
    params = _params()
    ema = EMA(params, decay=0.9)
    shadows = [p.detach().clone() for p in params]
    gen = torch.Generator().manual_seed(3)
    for n in range(1, 40):
        with torch.no_grad():
            for p in params:
                p.add_(torch.randn(p.shape, generator=gen))
        ema.update()
        decay = min(0.9, (1 + n) / (10 + n))
        shadows = [s - (1 - decay) * (s - p.detach()) for s, p in zip(shadows, params, strict=True)]
    for got, want in zip(ema.shadow_params, shadows, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)
