"""Bridge samplers (spec §2 and §10): one file per sampler, one row each in ``registry``.

- ``ddpm``: the paper's posterior step (OT-ODE: its mean).
- ``implicit`` (option ``eta`` in [0, 1]): the non-Markovian I3SB step; the first step is DDPM.
- ``cddb`` (option ``step_size``): the DDPM step, then a data-consistency step along
  grad ||A(pred_x0) - y||^2 (needs ``forward`` = A and ``measurement`` = y).
- ``dbim`` (option ``order`` 2 or 3): DBIM's high-order ODE steps after a DDPM first step; it
  reads the pred_x0 of earlier grid points, which the walk keeps for it (``ctx.earlier``).

A sampler's file holds its frozen options dataclass (fields with default, range and help, see
``options.option``) and its ``update(ctx, x_n, pred_x0, options) -> x_m``; ``walk`` shares the
rest. The config entry (``entry.SamplerConfig``), its schema, the CLI flags, the labels and the
range checks are derived from the options dataclasses. Adding a sampler: its file, its row in
``registry.SAMPLERS``, its row in tests/test_samplers_contract.py.

This package and its table import neither torch nor numpy, so the Snakefile reads them; the
torch half (``sample``, ``walk``, ``image_noise``, ...) is loaded on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from i2sb.samplers.entry import SamplerConfig, find_sampler, samplers_problem, skipped_tasks
from i2sb.samplers.registry import SAMPLER_NAMES, SAMPLERS, SamplerSpec, sampler_spec
from i2sb.samplers.step import Estimate, Measurement, StepContext

# name -> the torch module that defines it (imported on first access, PEP 562)
_TORCH_NAMES = {
    "sample": "walk",
    "Trajectory": "walk",
    "image_noise": "noise",
    "image_seed": "noise",
}


def __getattr__(name: str) -> Any:
    if name not in _TORCH_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_TORCH_NAMES[name]}"), name)


__all__ = [
    "SAMPLERS",
    "SAMPLER_NAMES",
    "SamplerConfig",
    "SamplerSpec",
    "StepContext",
    "Estimate",
    "Measurement",
    "find_sampler",
    "sampler_spec",
    "samplers_problem",
    "skipped_tasks",
    *_TORCH_NAMES,
]
