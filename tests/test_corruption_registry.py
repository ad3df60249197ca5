"""Looking operators up by name, and the errors a user sees for a bad name, size or input."""

import pytest
import torch

from i2sb.corruption import CORRUPTION_NAMES, build_corruption
from i2sb.tasks import BENCHMARK_TASKS


def test_every_benchmark_task_has_an_operator():
    assert set(CORRUPTION_NAMES) == set(BENCHMARK_TASKS)
    for task in BENCHMARK_TASKS:
        assert build_corruption(task, 64, mask_source="generated").name == task


def test_any_jpeg_quality_is_accepted():
    assert build_corruption("jpeg-37", 64).quality == 37
    for bad in ("jpeg-0", "jpeg-101"):
        with pytest.raises(KeyError, match=rf"'{bad}'; valid names: jpeg-5, .*, jpeg-<q> \(q in"):
            build_corruption(bad, 64)


@pytest.mark.parametrize("name", ["sr4x", "blur", "paired", "inpaint-freeform3040"])
def test_unknown_names_list_the_valid_ones(name):
    valid = ", ".join([*CORRUPTION_NAMES, r"jpeg-<q> \(q in 1\.\.100\)"])
    with pytest.raises(KeyError, match=f"unknown corruption '{name}'; valid names: {valid}"):
        build_corruption(name, 64)


def test_a_task_row_without_a_builder_is_named_not_a_bare_key_error(monkeypatch):
    """A new task of a family that has corruptions still needs its own builder; until it has
    one, the lookup says so with the valid names (it does not inherit its family's)."""
    from i2sb.tasks import TASKS, TaskSpec

    monkeypatch.setitem(TASKS, "sr4x-lanczos", TaskSpec("sr4x-lanczos", "superres"))
    with pytest.raises(KeyError, match="unknown corruption 'sr4x-lanczos'; valid names"):
        build_corruption("sr4x-lanczos", 64)


@pytest.mark.parametrize(
    ("task", "size", "message"),
    [
        ("sr4x-pool", 30, "multiple of 4"),
        ("jpeg-10", 40, "multiple of 16"),
        ("blur-uni", 8, "smaller than the kernel"),
    ],
)
def test_sizes_an_operator_cannot_handle_are_rejected(task, size, message):
    with pytest.raises(ValueError, match=message):
        build_corruption(task, size)


def test_mask_options_matter_only_for_freeform_and_unknown_ones_are_rejected():
    assert build_corruption("sr4x-bicubic", 64, seed=1).mask_source is None
    assert build_corruption("inpaint-center", 64, mask_source="published").mask_source is None
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['sed'\]"):
        build_corruption("inpaint-center", 64, sed=1)


def test_input_of_the_wrong_shape_is_rejected():
    operator = build_corruption("blur-gauss", 64)
    with pytest.raises(ValueError, match=r"expected x0 of shape \(B, 3, 64, 64\)"):
        operator(torch.zeros(1, 3, 32, 32))
    with pytest.raises(ValueError, match="floating-point"):
        operator(torch.zeros(1, 3, 64, 64, dtype=torch.uint8))


def test_other_operators_ignore_indices():
    x0 = torch.rand(2, 3, 64, 64) * 2 - 1
    operator = build_corruption("jpeg-10", 64)
    assert torch.equal(operator(x0)[0], operator(x0, torch.tensor([3, 8]))[0])


@pytest.mark.parametrize("task", BENCHMARK_TASKS)
def test_forward_operator_and_measurement_agree_with_the_degradation(task):
    """A(x0) is the measurement y the degraded image holds; tasks without A say so by name."""
    from i2sb.tasks import task_spec

    operator = build_corruption(task, 64, mask_source="generated")
    x0 = (torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1).double()
    x1, mask = operator(x0, torch.tensor([0, 1]))
    if not task_spec(task).has_forward_operator:
        for call in (lambda: operator.forward(x0, mask), lambda: operator.measurement(x1, mask)):
            with pytest.raises(ValueError, match=f"task {task} has no differentiable forward"):
                call()
        return
    y = operator.forward(x0, mask)
    torch.testing.assert_close(operator.measurement(x1, mask), y, rtol=0, atol=1e-12)
    side = 16 if task.startswith("sr4x") else 64
    assert y.shape == (2, 3, side, side)
    # differentiable: the gradient of ||A(x) - y||^2, y read from the degraded image as a
    # sampler reads it, vanishes at x0 and not elsewhere
    y_of_x1 = operator.measurement(x1, mask)

    def gradient_at(x):
        x = x.clone().requires_grad_(True)
        return torch.autograd.grad((operator.forward(x, mask) - y_of_x1).pow(2).sum(), x)[0]

    torch.testing.assert_close(gradient_at(x0), torch.zeros_like(x0), rtol=0, atol=1e-9)
    assert gradient_at(x0 + 0.1).abs().max() > 0
