"""The bridge's closed forms, its posterior, and the sampler, checked independently of the code."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from i2sb.bridge import (
    Bridge,
    fill_hole_with_noise,
    log_steps_for,
    make_beta_schedule,
    nfe_steps,
    space_indices,
    symmetric_betas,
)
from i2sb.samplers import sample

N = 1000


@pytest.fixture(scope="module")
def bridge():
    return Bridge(symmetric_betas(N, 0.3))


def test_beta_schedule_is_squared_linspace_in_float64():
    betas = make_beta_schedule(10, 1e-4, 2e-2)
    assert betas.dtype == np.float64
    expected = [
        (math.sqrt(1e-4) + i * (math.sqrt(2e-2) - math.sqrt(1e-4)) / 9) ** 2 for i in range(10)
    ]
    np.testing.assert_allclose(betas, expected, rtol=1e-12)


def test_symmetric_schedule_scales_only_the_end():
    betas = symmetric_betas(1000, 0.3)
    assert betas.shape == (1000,)
    assert betas[0] == pytest.approx(1e-4)  # linear_start is not scaled by N
    np.testing.assert_array_equal(betas[:500], betas[::-1][:500])
    full = make_beta_schedule(1000, 1e-4, 0.3 / 1000)
    np.testing.assert_array_equal(betas[:500], full[:500])


def test_buffers_are_float32_with_closed_forms(bridge):
    for name in ("betas", "std_fwd", "std_bwd", "std_sb", "mu_x0", "mu_x1"):
        assert getattr(bridge, name).dtype == torch.float32
        assert getattr(bridge, name).shape == (N,)
    torch.testing.assert_close(bridge.mu_x0 + bridge.mu_x1, torch.ones(N))
    betas = symmetric_betas(N, 0.3)
    np.testing.assert_allclose(bridge.std_fwd.numpy() ** 2, np.cumsum(betas), rtol=1e-5)
    np.testing.assert_allclose(bridge.std_bwd.numpy() ** 2, np.cumsum(betas[::-1])[::-1], rtol=1e-5)
    # std_sb vanishes at both ends (down to one step's noise, sqrt(beta_0) = 0.01), peaks mid-way
    for end in (0, -1):
        assert bridge.std_sb[end].item() == pytest.approx(0.01, rel=0.02)
        assert bridge.std_sb[end] < 0.06 * bridge.std_sb.max()
    assert bridge.std_sb.argmax().item() in (N // 2 - 1, N // 2)


def test_marginals_at_the_ends_are_the_boundary_images(bridge):
    x0, x1 = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    torch.testing.assert_close(bridge.q_sample(0, x0, x1, ot_ode=True), x0, atol=2e-3, rtol=0)
    torch.testing.assert_close(bridge.q_sample(N - 1, x0, x1, ot_ode=True), x1, atol=2e-3, rtol=0)


def test_step_may_be_int_or_per_sample_tensor(bridge):
    x0, x1 = torch.zeros(3, 1, 2, 2), torch.ones(3, 1, 2, 2)
    steps = torch.tensor([0, 500, 999])
    xt = bridge.q_sample(steps, x0, x1, ot_ode=True)
    for i, step in enumerate(steps.tolist()):
        torch.testing.assert_close(
            xt[i], bridge.q_sample(step, x0[i : i + 1], x1[i : i + 1], True)[0]
        )
    torch.testing.assert_close(xt[:, 0, 0, 0], bridge.mu_x1[steps])


def test_label_and_pred_x0_invert_each_other(bridge):
    torch.manual_seed(0)
    x0, x1 = torch.rand(4, 3, 8, 8) * 2 - 1, torch.rand(4, 3, 8, 8) * 2 - 1
    step = torch.tensor([1, 10, 400, 999])
    xt = bridge.q_sample(step, x0, x1)
    label = bridge.compute_label(step, x0, xt)
    torch.testing.assert_close(bridge.compute_pred_x0(step, xt, label), x0, atol=1e-5, rtol=0)
    clipped = bridge.compute_pred_x0(step, xt, label * 50, clip_denoise=True)
    assert clipped.min() >= -1 and clipped.max() <= 1


@pytest.mark.parametrize("m, n", [(1, 999), (200, 700), (499, 500), (10, 990)])
def test_posterior_is_consistent_with_the_marginals(bridge, m, n):
    """x_n ~ q(x_n | x0, x1), then x_m ~ p(x_m | x_n, x0) must be distributed as q(x_m | x0, x1)."""
    torch.manual_seed(1)
    samples = 200_000
    x0 = torch.full((samples, 1, 1, 1), -0.7)
    x1 = torch.full((samples, 1, 1, 1), 0.9)
    x_n = bridge.q_sample(n, x0, x1)
    x_m = bridge.p_posterior(m, n, x_n, x0)
    mean = bridge.mu_x0[m] * -0.7 + bridge.mu_x1[m] * 0.9
    assert x_m.mean().item() == pytest.approx(mean.item(), abs=5e-3)
    assert x_m.std().item() == pytest.approx(bridge.std_sb[m].item(), rel=2e-2, abs=2e-3)


def test_posterior_rejects_a_step_that_does_not_go_back(bridge):
    with pytest.raises(ValueError, match="nprev < n"):
        bridge.p_posterior(5, 5, torch.zeros(1), torch.zeros(1))


@pytest.mark.parametrize("nfe", [1, 2, 10, 999])
def test_ot_ode_sampling_with_the_oracle_returns_x0(bridge, nfe):
    torch.manual_seed(0)
    x0, x1 = torch.rand(2, 3, 8, 8) * 2 - 1, torch.rand(2, 3, 8, 8) * 2 - 1
    steps = nfe_steps(N, nfe)
    xs, pred_x0s = sample("ddpm", bridge, steps, lambda xt, step: x0, x1, ot_ode=True)
    # With the oracle each step shrinks x_t - x0 by s_m^2 / s_n^2 (the posterior's weight on x_n);
    # only std_fwd[0] = 0.01 > 0 keeps the product from being exactly 0.
    s2 = bridge.std_fwd.double() ** 2
    shrink = math.prod((s2[m] / s2[n]).item() for m, n in zip(steps[:-1], steps[1:]))
    torch.testing.assert_close(xs[:, 0], x0 + shrink * (x1 - x0), atol=1e-5, rtol=0)
    assert (xs[:, 0] - x0).abs().max() < 2e-3
    assert xs.shape == pred_x0s.shape == (2, nfe, 3, 8, 8)


def test_trajectory_layout_starts_at_the_final_step(bridge):
    x1 = torch.zeros(1, 1, 2, 2)
    steps = nfe_steps(N, 20)
    log_steps = log_steps_for(steps, 5)
    assert log_steps[0] == 0 and len(log_steps) == 5
    seen = []

    def record(xt, step):
        seen.append(step)
        return torch.full_like(xt, float(step))

    xs, pred_x0s = sample("ddpm", bridge, steps, record, x1, ot_ode=True, log_steps=log_steps)
    assert seen == steps[:0:-1]
    # pred_x0 logged for prev_step p was predicted at the step right after p in the grid
    after = {p: steps[steps.index(p) + 1] for p in log_steps}
    assert [v.item() for v in pred_x0s[0, :, 0, 0, 0]] == [float(after[p]) for p in log_steps]


def test_masked_ot_ode_sampling_keeps_known_pixels_after_every_step(bridge):
    torch.manual_seed(0)
    x0 = torch.rand(2, 3, 8, 8) * 2 - 1
    mask = torch.zeros(2, 1, 8, 8)
    mask[..., 2:6, 2:6] = 1
    x1 = fill_hole_with_noise(x0 * (1 - mask) + mask, mask)
    torch.testing.assert_close(x1 * (1 - mask), x0 * (1 - mask))
    steps = nfe_steps(N, 10)
    xs, _ = sample(
        "ddpm", bridge, steps, lambda xt, s: torch.zeros_like(xt), x1, mask=mask, ot_ode=True
    )
    for frame in range(xs.shape[1]):
        torch.testing.assert_close(xs[:, frame] * (1 - mask), x1 * (1 - mask), atol=0, rtol=0)


def test_seeded_sampling_is_reproducible(bridge):
    x1 = torch.rand(2, 3, 4, 4)

    def run(seed=3):
        torch.manual_seed(seed)
        return sample("ddpm", bridge, nfe_steps(N, 5), lambda xt, s: xt * 0.5, x1)[0]

    torch.testing.assert_close(run(), run(), atol=0, rtol=0)
    assert not torch.equal(run(), run(seed=4))  # the seed matters, or the check proves nothing


@pytest.mark.parametrize(
    "nfe, expected",
    [
        (1, [0, 999]),
        (2, [0, 500, 999]),
        (3, [0, 333, 666, 999]),
        (10, [0, 100, 200, 300, 400, 500, 599, 699, 799, 899, 999]),
    ],
)
def test_space_indices_known_grids(nfe, expected):
    # 599 not 600: the stride 99.9 is accumulated in floating point and 599.4 rounds down.
    assert space_indices(N, nfe + 1) == expected


def test_space_indices_full_grid_and_half_even_rounding():
    assert space_indices(N, N) == list(range(N))
    # stride 2.5: positions 0, 2.5, 5, 7.5, 10 round half to even -> 2 and 8
    assert space_indices(11, 5) == [0, 2, 5, 8, 10]
    with pytest.raises(ValueError, match=r"count must be in \[1, num_steps=10\], got 11"):
        space_indices(10, 11)


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 1000), st.data())
def test_space_indices_are_sorted_and_span_the_range(num_steps, data):
    count = data.draw(st.integers(2, num_steps))
    idx = space_indices(num_steps, count)
    assert len(idx) == count and idx[0] == 0 and idx[-1] == num_steps - 1
    assert all(a < b for a, b in zip(idx, idx[1:]))


@settings(max_examples=30, deadline=None)
@given(st.sampled_from([10, 100, 1000]), st.floats(0.05, 2.0))
def test_bridge_closed_forms_hold_for_any_schedule(interval, beta_max):
    b = Bridge(symmetric_betas(interval, beta_max))
    torch.testing.assert_close(b.mu_x0 + b.mu_x1, torch.ones(interval))
    var = (
        b.std_fwd.double() ** 2
        * b.std_bwd.double() ** 2
        / (b.std_fwd.double() ** 2 + b.std_bwd.double() ** 2)
    )
    torch.testing.assert_close(b.std_sb.double() ** 2, var, rtol=1e-5, atol=1e-9)


def test_pred_x0_fn_passes_the_shared_step_as_an_int_and_cond(bridge):
    calls = []

    def net(xt, step, cond=None):
        calls.append((step, cond))
        return torch.ones_like(xt)

    cond = torch.zeros(2, 1, 2, 2)
    predict = bridge.pred_x0_fn(net, cond=cond)
    xt = torch.zeros(2, 1, 2, 2)
    out = predict(xt, 7)
    assert calls[0][0] == 7 and type(calls[0][0]) is int and calls[0][1] is cond
    torch.testing.assert_close(out, -bridge.std_fwd[7].expand_as(xt))
