"""The sampler table: one row per sampler (spec §2, §10), read by the config, the CLI and the walk.

A row names the sampler and points at its options dataclass and its update, both in the sampler's
own file. Imports neither torch nor numpy (the update functions import torch when called), so the
Snakefile can read the table and planning stays instant. Adding a sampler: its file, its row here,
and its row in tests/test_samplers_contract.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import i2sb.samplers.cddb as cddb
import i2sb.samplers.dbim as dbim
import i2sb.samplers.ddpm as ddpm
import i2sb.samplers.implicit as implicit
from i2sb.samplers.options import OptionField, option_fields


@dataclass(frozen=True)
class SamplerSpec:
    """What the pipeline knows of one sampler."""

    name: str
    options: type  # frozen dataclass of options declared with options.option()
    update: Callable[..., Any]  # update(ctx, x_n, pred_x0, options) -> x_m, see samplers.walk
    summary: str  # one line for --help
    needs_forward_operator: bool = False  # reads the task's operator A and measurement y
    memory: int = 0  # how many earlier grid points' pred_x0 the update reads (ctx.earlier)

    @property
    def fields(self) -> tuple[OptionField, ...]:
        return option_fields(self.options)


SAMPLERS: dict[str, SamplerSpec] = {
    spec.name: spec
    for spec in (
        SamplerSpec("ddpm", ddpm.DdpmOptions, ddpm.update, "the paper's posterior steps"),
        SamplerSpec(
            "implicit", implicit.ImplicitOptions, implicit.update,
            "I3SB's non-Markovian steps, eta of DDPM's noise",
        ),
        SamplerSpec(
            "cddb", cddb.CddbOptions, cddb.update,
            "DDPM plus a data-consistency step",
            needs_forward_operator=True,
        ),
        SamplerSpec(
            "dbim", dbim.DbimOptions, dbim.update,
            "DBIM's high-order bridge ODE steps after a DDPM first step", memory=2,
        ),
    )
}  # fmt: skip
SAMPLER_NAMES: tuple[str, ...] = tuple(SAMPLERS)


def sampler_spec(name: str) -> SamplerSpec:
    """The row of sampler ``name``, or a KeyError listing the samplers."""
    if name not in SAMPLERS:
        raise KeyError(f"unknown sampler {name!r}; valid samplers: {', '.join(SAMPLER_NAMES)}")
    return SAMPLERS[name]
