"""The samplers of spec §10 against hand-worked numbers, their noise, options and errors."""

import math

import numpy as np
import pytest
import torch
from test_samplers_contract import Draws  # noise handing out given constants, counted

from i2sb.bridge import Bridge, nfe_steps, symmetric_betas
from i2sb.samplers import Estimate, StepContext, image_noise, sample
from i2sb.samplers.dbim import DbimOptions
from i2sb.samplers.dbim import update as dbim_update
from i2sb.samplers.implicit import ImplicitOptions
from i2sb.samplers.implicit import update as implicit_update

N = 1000


@pytest.fixture(scope="module")
def bridge():
    return Bridge(symmetric_betas(N, 1.0))


def spec_schedule(interval, beta_max):
    """s_k, b_k, std_sb_k in float64 from spec §1's formulas (independent of i2sb.bridge)."""
    root = np.linspace(math.sqrt(1e-4), math.sqrt(beta_max / interval), interval)
    half = (root**2)[: interval // 2]
    betas = np.concatenate([half, half[::-1]])
    s2, b2 = np.cumsum(betas), np.cumsum(betas[::-1])[::-1]
    return np.sqrt(s2), np.sqrt(b2), np.sqrt(s2 * b2 / (s2 + b2))


def test_implicit_reproduces_spec_on_a_hand_worked_case():
    """Grid 9 -> 6 -> 3 -> 0 of a 10-step bridge: DDPM first, then the implicit update."""
    interval, eta, x1_value = 10, 0.5, 0.8
    s, b, sb = spec_schedule(interval, 1.0)
    pred = {9: -0.3, 6: 0.1, 3: 0.25}  # pred_x0 at each step
    eps = [0.7, -1.3]  # the two draws: DDPM step 9 -> 6, implicit step 6 -> 3 (none into step 0)

    def mean(k, x0):
        return (b[k] ** 2 * x0 + s[k] ** 2 * x1_value) / (s[k] ** 2 + b[k] ** 2)

    d2 = s[9] ** 2 - s[6] ** 2
    x = (d2 * pred[9] + s[6] ** 2 * x1_value) / (s[6] ** 2 + d2)
    x += math.sqrt(s[6] ** 2 * d2 / (s[6] ** 2 + d2)) * eps[0]
    for n, m, draw in ((6, 3, eps[1]), (3, 0, None)):
        d = math.sqrt(s[n] ** 2 - s[m] ** 2)
        g = eta * s[m] * d / math.sqrt(s[m] ** 2 + d**2)
        assert g < sb[m]  # the branch this case exercises
        x = mean(m, pred[n]) + math.sqrt(sb[m] ** 2 - g**2) / sb[n] * (x - mean(n, pred[n]))
        if draw is not None:
            x += g * draw
    noise = Draws(eps)
    xs, pred_x0s = sample(
        "implicit", Bridge(symmetric_betas(interval, 1.0)), [0, 3, 6, 9],
        lambda xt, step: torch.full_like(xt, pred[step]), torch.full((1, 1, 1, 1), x1_value),
        noise=noise, eta=eta,
    )  # fmt: skip
    assert noise.count == 2
    assert xs[0, 0].item() == pytest.approx(x, abs=1e-6)
    assert [v.item() for v in pred_x0s[0, :, 0, 0, 0]] == pytest.approx([0.25, 0.1, -0.3])


@pytest.mark.parametrize("m, n", [(1, 50), (200, 700), (499, 500), (10, 990)])
def test_implicit_with_eta_one_injects_the_ddpm_posterior_noise_level(bridge, m, n):
    x_n, x1 = torch.full((1, 3, 2, 2), 0.2), torch.full((1, 3, 2, 2), -0.4)
    pred_x0 = torch.full((1, 3, 2, 2), 0.5)

    def implicit(value):
        ctx = StepContext(bridge, m, n, 1, x1, False, lambda like: torch.full_like(like, value))
        return implicit_update(ctx, x_n, pred_x0, ImplicitOptions(eta=1.0))

    def ddpm(value):
        return bridge.p_posterior(
            m, n, x_n, pred_x0, noise=lambda like: torch.full_like(like, value)
        )

    torch.testing.assert_close(implicit(1.0) - implicit(0.0), ddpm(1.0) - ddpm(0.0))
    assert (implicit(1.0) - implicit(0.0)).min() > 0


@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
def test_implicit_with_the_true_x0_keeps_the_bridge_marginal(bridge, eta):
    """x_n ~ q(x_n | x0, x1), one implicit step with pred_x0 = x0 -> x_m ~ q(x_m | x0, x1)."""
    torch.manual_seed(2)
    m, n = 300, 600
    x0 = torch.full((100_000, 1, 1, 1), -0.7)
    x1 = torch.full((100_000, 1, 1, 1), 0.9)
    x_n = bridge.q_sample(n, x0, x1)
    x_m = implicit_update(
        StepContext(bridge, m, n, 1, x1, False, torch.randn_like), x_n, x0, ImplicitOptions(eta)
    )
    expected = bridge.mu_x0[m] * -0.7 + bridge.mu_x1[m] * 0.9
    assert x_m.mean().item() == pytest.approx(expected.item(), abs=5e-3)
    assert x_m.std().item() == pytest.approx(bridge.std_sb[m].item(), rel=2e-2)


def test_implicit_first_step_is_ddpm_and_eta_zero_is_deterministic_afterwards(bridge):
    x1 = torch.rand(2, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    steps = nfe_steps(N, 4)

    def run(name, seed, **options):
        noise = image_noise(seed, [0, 1])
        return sample(name, bridge, steps, lambda xt, s: xt * 0.5, x1, noise=noise, **options)[0]

    ddpm, implicit = run("ddpm", 0), run("implicit", 0, eta=0.0)
    torch.testing.assert_close(implicit[:, -1], ddpm[:, -1], rtol=0, atol=0)  # after step 1
    assert not torch.equal(implicit[:, 0], ddpm[:, 0])
    # eta = 0: only the first (DDPM) draw is random; reseeding changes that step ...
    other = run("implicit", 1, eta=0.0)
    assert not torch.equal(other[:, -1], implicit[:, -1])
    # ... and whatever the later draws are, the walk after it is the same
    same_first, draws = image_noise(0, [0, 1]), []

    def then_other_draws(like):
        draws.append(like)
        return same_first(like) if len(draws) == 1 else torch.full_like(like, 100.0)

    later = sample("implicit", bridge, steps, lambda xt, s: xt * 0.5, x1, noise=then_other_draws,
                   eta=0.0)[0]  # fmt: skip
    assert len(draws) == 3 and torch.equal(later, implicit)  # into 749 (DDPM), 500, 250 (g = 0)


def test_cddb_with_step_size_zero_is_ddpm_and_it_moves_towards_the_measurement(bridge):
    torch.manual_seed(0)
    x0 = torch.rand(2, 3, 8, 8) * 2 - 1

    def forward(x):
        return torch.nn.functional.avg_pool2d(x, 4)

    x1 = torch.nn.functional.interpolate(forward(x0), scale_factor=4, mode="nearest")
    steps = nfe_steps(N, 5)

    def predict(xt, step):
        return xt  # a poor denoiser: pred_x0 = x_t

    def run(name, **options):
        return sample(name, bridge, steps, predict, x1, noise=image_noise(0, [0, 1]), **options)[0]

    ddpm = run("ddpm")
    y = forward(x0)
    torch.testing.assert_close(run("cddb", step_size=0.0, forward=forward, measurement=y), ddpm)
    cddb = run("cddb", step_size=1.0, forward=forward, measurement=y)
    assert (forward(cddb[:, 0]) - y).norm() < (forward(ddpm[:, 0]) - y).norm()


def test_sampler_options_are_checked(bridge):
    x1 = torch.zeros(1, 3, 2, 2)

    def run(name, **options):
        return sample(name, bridge, [0, 999], lambda xt, s: xt, x1, **options)

    with pytest.raises(KeyError, match="unknown sampler 'ddim'; valid samplers: ddpm, implicit"):
        run("ddim")
    with pytest.raises(ValueError, match=r"sampler ddpm takes no option\(s\) \['eta'\]"):
        run("ddpm", eta=0.0)
    with pytest.raises(ValueError, match=r"option eta: got 1.5, expected a number in \[0, 1\]"):
        run("implicit", eta=1.5)
    for bad in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(
            ValueError, match=r"option step_size: got -?(nan|inf), expected a finite"
        ):
            run("cddb", step_size=bad)
    with pytest.raises(ValueError, match="cddb needs forward="):
        run("cddb", step_size=1.0)
    with pytest.raises(ValueError, match="sampler ddpm reads no forward= or measurement="):
        run("ddpm", forward=lambda x: x, measurement=x1)
    run("implicit")  # eta defaults to 0 (ImplicitOptions)


def test_image_noise_rows_do_not_depend_on_the_batch():
    like = torch.zeros(3, 2, 4, 4)
    together = image_noise(7, [4, 5, 6])
    first, second = together(like), together(like)
    alone = image_noise(7, [5])
    assert torch.equal(alone(like[:1]), first[1:2]) and torch.equal(alone(like[:1]), second[1:2])
    assert not torch.equal(first[0], first[1]) and not torch.equal(first, second)
    assert not torch.equal(image_noise(8, [4])(like[:1]), first[:1])
    with pytest.raises(ValueError, match="noise for 3 images asked for a batch of 2"):
        together(like[:2])


def test_dbim_order_one_is_implicit_with_eta_zero_step_for_step(bridge):
    """Spec §10's check on a fine grid: every step n -> m of NFE 50 at order 1 (the step after
    the first one; the step into 0 whatever the history) equals implicit's with eta = 0."""
    generator = torch.Generator().manual_seed(3)
    x1, x_n, pred_x0 = (torch.rand(2, 3, 4, 4, generator=generator) * 2 - 1 for _ in range(3))
    earlier = tuple(Estimate(k, torch.rand(2, 3, 4, 4, generator=generator)) for k in (999, 990))
    steps = nfe_steps(N, 50)
    for m, n in zip(steps[-2::-1], steps[:0:-1], strict=True):
        number = 9 if m == 0 else 1  # into 0: order 1 even with history
        ctx = StepContext(bridge, m, n, number, x1, False, torch.zeros_like, earlier)
        implicit = implicit_update(ctx, x_n, pred_x0, ImplicitOptions(eta=0.0))
        for order in (2, 3):
            got = dbim_update(ctx, x_n, pred_x0, DbimOptions(order=order))
            torch.testing.assert_close(got, implicit, atol=2e-6, rtol=1e-5, msg=f"{n} -> {m}")


def test_dbim_on_two_steps_is_implicit_with_eta_zero():
    """NFE 2: the DDPM first step (same draw), then the order-1 step into 0."""
    x1 = torch.rand(2, 3, 4, 4, generator=torch.Generator().manual_seed(4)) * 2 - 1
    bridge = Bridge(symmetric_betas(N, 0.3))

    def run(name, **options):
        noise = image_noise(0, [0, 1])
        return sample(name, bridge, nfe_steps(N, 2), lambda xt, s: xt * 0.5, x1, noise=noise,
                      **options)[0]  # fmt: skip

    torch.testing.assert_close(run("dbim"), run("implicit", eta=0.0), atol=2e-6, rtol=1e-5)


@pytest.mark.parametrize("order", [2, 3])
def test_dbim_reproduces_spec_on_a_hand_worked_case(order):
    """Grid 15 -> 12 -> 9 -> 6 -> 3 -> 0 of a 16-step bridge in float64, from spec §10's formulas:
    DDPM first (its one draw), then orders 1, 2, min(order, 3), and 1 into step 0."""
    interval, eps = 16, 0.7
    s, b_std, sb = spec_schedule(interval, 1.0)
    a, b, c = s**2 / (s**2 + b_std**2), b_std**2 / (s**2 + b_std**2), sb  # x_k = a x1 + b x0 + c e
    lam = np.log(b / c)
    x1 = np.array([0.8, -0.5])
    pred = {15: [-0.3, 0.2], 12: [0.1, 0.4], 9: [0.25, -0.1], 6: [0.3, 0.05], 3: [0.32, 0.0]}
    pred = {k: np.array(v) for k, v in pred.items()}

    d2 = s[15] ** 2 - s[12] ** 2  # the first step: spec §2's posterior, one draw
    x = (d2 * pred[15] + s[12] ** 2 * x1) / (s[12] ** 2 + d2)
    x = x + math.sqrt(s[12] ** 2 * d2 / (s[12] ** 2 + d2)) * eps
    for n, m, k in ((12, 9, 1), (9, 6, 2), (6, 3, min(order, 3)), (3, 0, 1)):
        r = c[m] / c[n]
        base = r * x + (a[m] - r * a[n]) * x1
        if k == 1:
            x = base + (b[m] - r * b[n]) * pred[n]
            continue
        h, u1, u2 = lam[m] - lam[n], n + 3, n + 6
        if k == 2:
            h2 = lam[n] - lam[u1]
            x = base + b[m] * ((1 - np.exp(-h)) * pred[n]
                               + (np.exp(-h) + h - 1) * (pred[n] - pred[u1]) / h2)  # fmt: skip
        else:
            h1, h2 = lam[n] - lam[u1], lam[u1] - lam[u2]
            first, second = pred[n] - pred[u1], pred[u1] - pred[u2]
            D1 = (first * (2 * h1 + h2) / h1 - second * h1 / h2) / (h1 + h2)  # noqa: N806
            D2 = 2 * (first / h1 - second / h2) / (h1 + h2)  # noqa: N806
            x = base + b[m] * ((1 - np.exp(-h)) * pred[n] + (np.exp(-h) + h - 1) * D1
                               + (h**2 / 2 - h + 1 - np.exp(-h)) * D2)  # fmt: skip

    def as_image(values):
        return torch.tensor(values, dtype=torch.float64).reshape(1, 2, 1, 1)

    noise = Draws([eps])
    xs, _ = sample("dbim", Bridge(symmetric_betas(interval, 1.0)), [0, 3, 6, 9, 12, 15],
                   lambda xt, step: as_image(pred[step]), as_image(x1), noise=noise, order=order)  # fmt: skip
    assert noise.count == 1 and xs.dtype == torch.float64
    np.testing.assert_allclose(xs[0, 0, :, 0, 0].numpy(), x, rtol=1e-5, atol=1e-6)


def test_dbim_orders_differ_and_are_checked():
    x1 = torch.full((1, 1, 1, 1), 0.8)
    bridge = Bridge(symmetric_betas(16, 1.0))

    def run(**options):
        return sample("dbim", bridge, [0, 3, 6, 9, 12, 15], lambda xt, s: xt * s / 16, x1,
                      ot_ode=True, **options)[0]  # fmt: skip

    assert not torch.equal(run(order=2), run(order=3)) and torch.equal(run(), run(order=2))
    for bad in (1, 4, 2.5, float("nan"), True):
        with pytest.raises(
            ValueError, match=r"sampler dbim option order: got .*, expected one of 2, 3"
        ):
            run(order=bad)
