"""What every corruption operator shares: input checks, working precision, the call signature."""

from __future__ import annotations

import torch

from i2sb.tasks import family_patterns


class Corruption:
    """A degradation x0 -> x1 of a fixed image size, built once on one device.

    ``corruption(x0, indices=None)`` returns ``(x1, mask)``: x0 and x1 are (B, 3, H, W) in [-1, 1]
    (x1 may leave that range, as the reference's does); ``mask`` is None except for inpainting,
    where it is (B, 1, H, W) with 1 in the hole. ``indices`` (B,) are evaluation-set positions;
    only free-form inpainting uses them (mask i for image i), the other operators ignore them.
    The arithmetic runs in float32 (float64 for float64 input) and the result is cast back to the
    input dtype, so bfloat16 batches get the same degradation rather than bfloat16 rounding noise.

    Tasks with a differentiable operator (``task_spec(name).has_forward_operator``, the
    families of ``family_patterns("forward_operator")``) also give ``forward(x, mask)`` = A(x), in measurement space (the
    low-resolution image, the blurred image, the known pixels), and ``measurement(x1, mask)`` = the
    y = A(x0) that the degraded image x1 holds, for the data-consistent sampler (spec §10).
    """

    mask_source: str | None = None

    def __init__(self, name: str, image_size: int, device: str | torch.device = "cpu") -> None:
        self.name = name
        self.image_size = int(image_size)
        self.device = torch.device(device)

    def __call__(
        self,
        x0: torch.Tensor,
        indices: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        self._check(x0)
        work = torch.float64 if x0.dtype == torch.float64 else torch.float32
        x1, mask = self.apply(x0.to(work), indices, generator)
        return x1.to(x0.dtype), None if mask is None else mask.to(x0.dtype)

    def apply(
        self,
        x0: torch.Tensor,
        indices: torch.Tensor | None,
        generator: torch.Generator | None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The operator itself, on a checked batch in working precision."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """A(x): (B, 3, H, W) in [-1, 1] -> measurement space, differentiable in x."""
        raise self._no_operator()

    def measurement(self, x1: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """y = A(x0), read off the degraded image x1 = this corruption of x0."""
        raise self._no_operator()

    def _no_operator(self) -> ValueError:
        return ValueError(
            f"task {self.name} has no differentiable forward operator (the data-consistent sampler "
            f"cddb needs one: {family_patterns('forward_operator')})"
        )

    def _check(self, x0: torch.Tensor) -> None:
        size = self.image_size
        if x0.dim() != 4 or x0.shape[1] != 3 or tuple(x0.shape[2:]) != (size, size):
            raise ValueError(
                f"{self.name}: expected x0 of shape (B, 3, {size}, {size}) (built for image size "
                f"{size}), got {tuple(x0.shape)}"
            )
        if not x0.is_floating_point():
            raise ValueError(
                f"{self.name}: expected a floating-point x0 in [-1, 1], got {x0.dtype}"
            )
        if x0.device.type != self.device.type:
            raise ValueError(
                f"{self.name}: x0 is on {x0.device} but the operator was built for {self.device}; "
                "pass device= to build_corruption"
            )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, image_size={self.image_size})"
