"""Thresholded SVD of the 1-D matrices behind the separable operators (DDRM's construction).

Both sr4x-bicubic and blur replace their 1-D matrix A by its SVD with singular values below 0.03
set to 0 (spec §5). The decomposition is computed on the CPU in float32, as the reference does,
so singular values (and therefore the blur's sort order) are bit-identical whatever the device.
"""

from __future__ import annotations

import torch

SINGULAR_THRESHOLD = 0.03


def thresholded_svd(matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``U, s, V`` of ``matrix`` (m, n) with full U (m, m), V (n, n); s (min(m, n),) thresholded."""
    u, s, vh = torch.linalg.svd(matrix.to("cpu", torch.float32), full_matrices=True)
    s = torch.where(s < SINGULAR_THRESHOLD, torch.zeros_like(s), s)
    return u, s, vh.T


def low_rank(matrix: torch.Tensor) -> torch.Tensor:
    """``U diag(s) V1^T``: the matrix as the thresholded SVD represents it (float32, CPU)."""
    u, s, v = thresholded_svd(matrix)
    rank = s.shape[0]
    product = u[:, :rank].double() @ torch.diag(s.double()) @ v[:, :rank].double().T
    return product.float()
