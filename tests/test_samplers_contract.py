"""The contract every sampler of the table keeps (spec §2, §10), one parametrised test per clause.

Adding a sampler: add its row to CASES (the options to run it with, and how many draws of its
own each step takes); test_every_sampler_has_a_contract_row fails until then.
"""

import pytest
import torch

from i2sb.bridge import Bridge, fill_hole_with_noise, nfe_steps, symmetric_betas
from i2sb.samplers import SAMPLERS, image_noise, sample

INTERVAL = 1000
STEPS = nfe_steps(INTERVAL, 6)  # 7 grid points: 6 steps, the last one into 0


def own_draws_every_step_but_the_last(number: int, m: int) -> int:
    return int(m > 0)


def own_draws_in_the_first_step_only(number: int, m: int) -> int:
    return int(number == 0 and m > 0)


# name -> (options, own draws of step `number` into grid point m, not OT-ODE)
CASES = {
    "ddpm": ({}, own_draws_every_step_but_the_last),
    "implicit": ({"eta": 0.5}, own_draws_every_step_but_the_last),
    "cddb": ({"step_size": 1.0}, own_draws_every_step_but_the_last),
    "dbim": ({"order": 3}, own_draws_in_the_first_step_only),
}


@pytest.fixture(scope="module")
def bridge():
    return Bridge(symmetric_betas(INTERVAL, 1.0))


@pytest.fixture(scope="module")
def images():
    """x0 (clean), x1 (degraded) of 3 images, and a hole mask (1 in the hole)."""
    generator = torch.Generator().manual_seed(0)
    x0 = torch.rand(3, 3, 4, 4, generator=generator) * 2 - 1
    x1 = torch.nn.functional.interpolate(forward(x0), scale_factor=2, mode="nearest")
    mask = torch.zeros(3, 1, 4, 4)
    mask[..., 1:3, 1:3] = 1
    return x0, x1, mask


def forward(x: torch.Tensor) -> torch.Tensor:
    """A differentiable operator A for the samplers that read one: 2x2 average pooling."""
    return torch.nn.functional.avg_pool2d(x, 2)


def run(name, bridge, x1, pred_x0_fn, x0=None, **kwargs):
    """sample() with the contract's options; A and y = A(x0) for the samplers that need them."""
    options, _ = CASES[name]
    if SAMPLERS[name].needs_forward_operator:
        kwargs |= {"forward": forward, "measurement": forward(x0 if x0 is not None else x1)}
    return sample(name, bridge, STEPS, pred_x0_fn, x1, **options, **kwargs)


def a_network(xt, step):
    """An elementwise stand-in for the network: each image's estimate depends on it alone."""
    return torch.tanh(1.3 * xt) * (1 - step / INTERVAL)


class Draws:
    """noise(like) handing out the constants ``values`` in turn; ``count`` draws so far."""

    def __init__(self, values):
        self.values, self.count = list(values), 0

    def __call__(self, like):
        value = self.values[self.count]
        self.count += 1
        return torch.full_like(like, value)


def test_every_sampler_has_a_contract_row():
    assert set(CASES) == set(SAMPLERS)


@pytest.mark.parametrize("name", CASES)
def test_the_ot_ode_oracle_returns_x0(name, bridge, images):
    """pred_x0 = the true x0 and OT-ODE: the walk ends at x0 (another estimate does not).

    Up to the bridge's own offset at step 0 (std_fwd[0] = 0.01: step 0 is t0, not exactly x0).
    The noise draws zeros: implicit with eta > 0 injects noise even under OT-ODE (spec §10).
    """
    x0, x1, _ = images
    xs, pred_x0s = run(name, bridge, x1, lambda xt, s: x0, x0, ot_ode=True, noise=torch.zeros_like)
    torch.testing.assert_close(xs[:, 0], x0, atol=0.2 * bridge.std_fwd[0].item(), rtol=0)
    assert torch.equal(pred_x0s[:, 0], x0) and xs.shape[1] == len(STEPS) - 1
    other = run(name, bridge, x1, a_network, ot_ode=True, noise=torch.zeros_like)[0]
    assert (other[:, 0] - x0).abs().max() > 0.1


@pytest.mark.parametrize("ot_ode", [False, True])
@pytest.mark.parametrize("name", CASES)
def test_known_pixels_are_kept(name, ot_ode, bridge, images):
    """Inpainting: after every step the pixels outside the hole are x1 + std_sb[m] eps, eps the
    step's last draw (OT-ODE: x1 exactly), whatever the sampler's update did there."""
    _, x1, mask = images
    x1 = fill_hole_with_noise(x1, mask, image_noise(0, range(3)))
    outside = (1 - mask).expand_as(x1).bool()
    draws, frames = Draws([0.1 * (k + 1) for k in range(40)]), []
    run(name, bridge, x1, a_network, mask=mask, ot_ode=ot_ode, noise=draws,
        callback=lambda m, x, pred: frames.append((m, draws.count, x.clone())))  # fmt: skip
    assert [m for m, _, _ in frames] == STEPS[-2::-1]
    for m, count, x in frames:
        known = (
            x1 if ot_ode else x1 + bridge.std_sb[m] * torch.full_like(x1, draws.values[count - 1])
        )
        assert torch.equal(x[outside], known[outside]), f"step {m}"
    assert ot_ode or draws.count > 0


@pytest.mark.parametrize("name", CASES)
def test_every_draw_goes_through_noise_in_the_spec_order(name, bridge, images):
    """Inpainting without OT-ODE: each step takes its own draws (as many as its row says), then
    the known-pixel draw (test_known_pixels_are_kept: the step's last); changing a draw changes
    the step that took it and no step before; the global generator is neither used nor moved."""
    _, x1, mask = images
    _, own_draws = CASES[name]
    base = [0.1 * (k + 1) for k in range(40)]

    def walk(values):
        draws, frames = Draws(values), []

        def observe(m, x, pred):
            frames.append((m, draws.count, x.clone()))

        torch.manual_seed(0)
        state = torch.get_rng_state()
        run(name, bridge, x1, a_network, mask=mask, noise=draws, callback=observe)
        assert torch.equal(torch.get_rng_state(), state)  # the global generator is not used
        return frames

    frames = walk(base)
    before, step_of_draw = 0, {}
    for number, (m, count, _) in enumerate(frames):
        assert count - before == own_draws(number, m) + 1, f"draws of step {number} (into {m})"
        step_of_draw |= {k: number for k in range(before, count)}
        before = count
    for k, number in step_of_draw.items():
        changed = walk([v + 1.0 if i == k else v for i, v in enumerate(base)])
        same = [torch.equal(a[2], b[2]) for a, b in zip(frames, changed, strict=True)]
        assert all(same[:number]), f"draw {k} of step {number} changed an earlier step"
        assert not same[number], f"draw {k} of step {number} is not used there"


@pytest.mark.parametrize("name", CASES)
def test_results_do_not_depend_on_the_batch(name, bridge, images):
    """Three images together equal each alone, byte for byte (per-image noise, elementwise net)."""
    _, x1, mask = images

    def restore(rows):
        noise = image_noise(5, rows)
        x1_rows = fill_hole_with_noise(x1[rows], mask[rows], noise)
        return run(name, bridge, x1_rows, a_network, mask=mask[rows], noise=noise)[0]

    together = restore([0, 1, 2])
    alone = torch.cat([restore([i]) for i in range(3)])
    assert torch.equal(together, alone)
