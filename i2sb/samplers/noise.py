"""Per-image noise: image i of a run draws from its own generator, whatever batch it is in."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from i2sb.bridge import Noise


def image_seed(seed: int, index: int) -> int:
    """A 64-bit seed for image ``index`` of a run seeded with ``seed`` (numpy's SeedSequence)."""
    if index < 0:
        raise ValueError(f"image index must be >= 0, got {index}")
    state = np.random.SeedSequence([seed % 2**64, index]).generate_state(2, np.uint32)
    return int(state[0]) | (int(state[1]) << 32)


def image_noise(seed: int, indices: Sequence[int], device: str | torch.device = "cpu") -> Noise:
    """``noise(like)`` whose row i comes from image ``indices[i]``'s own generator.

    Image i's draws depend on (seed, indices[i]) and on how many draws came before, never on the
    other rows, so a sample does not change with the batch or partition it is sampled in. The
    generators live on ``device``: CPU and CUDA draw different (each reproducible) numbers.
    """
    generators = [torch.Generator(device).manual_seed(image_seed(seed, int(i))) for i in indices]

    def noise(like: torch.Tensor) -> torch.Tensor:
        if like.shape[0] != len(generators):
            raise ValueError(
                f"noise for {len(generators)} images asked for a batch of {like.shape[0]}"
            )
        rows = [
            torch.randn(like.shape[1:], generator=g, device=g.device, dtype=like.dtype)
            for g in generators
        ]
        return torch.stack(rows).to(like.device)

    return noise
