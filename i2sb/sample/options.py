"""SamplingOptions: one typed view of a run's options, whether ours (options.json) or published.

Our runs write ``options.json`` with {"task", "preset", "image_size", "cond_x1", "interval", "t0",
"T", "beta_max", "ot_ode"}; the reference's ``options.pkl`` names the task ``corrupt`` and always
used the ADM 256 network. The sampler reads only this dataclass, never either raw form.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from i2sb.preset_table import preset_kwargs
from i2sb.tasks import task_spec

PUBLISHED_PRESET = "adm256"  # the reference's Image256Net; the network loader assumes it too


@dataclass(frozen=True)
class SamplingOptions:
    """What sampling needs from a trained run (spec sections 1-3)."""

    task: str
    preset: str
    image_size: int
    interval: int
    beta_max: float
    ot_ode: bool
    cond_x1: bool
    t0: float
    T: float  # noqa: N815 (the reference's option name)
    add_x1_noise: bool = False  # the reference's decolorization option: x1 += N(0, I) after cond

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _require(options: dict[str, Any], keys: tuple[str, ...], source: str) -> None:
    missing = [key for key in keys if key not in options]
    if missing:
        raise KeyError(f"{source}: options lack {missing} needed for sampling")


def sampling_options(options: dict[str, Any], source: str = "options") -> SamplingOptions:
    """Normalise ``load_i2sb_checkpoint``'s options (ours or the published pickle's) to one dataclass.

    ``beta_max`` and ``ot_ode`` come from the run when recorded, else from the task table; the
    image size of a published run is its ``image_size`` option, else the preset's.
    """
    ours = "task" in options
    task_key = "task" if ours else "corrupt"
    _require(options, (task_key, "interval", "cond_x1", "t0", "T"), source)
    check = _OptionCheck(options, source)
    task = check.text(task_key)
    try:
        spec = task_spec(task)
    except KeyError as err:
        raise KeyError(f"{source}: {err.args[0]}") from None
    # The reference's own pickles name no preset (always ADM 256); ours add it to options.pkl too.
    preset = check.text("preset", PUBLISHED_PRESET)
    try:
        preset_size = preset_kwargs(preset)["image_size"]
    except KeyError as err:
        raise KeyError(f"{source}: option 'preset': {err.args[0]}") from None
    image_size = check.integer("image_size", preset_size, minimum=8, multiple=8)
    t0 = check.number("t0", above=0.0)
    return SamplingOptions(
        task=task,
        preset=preset,
        image_size=image_size,
        interval=check.integer("interval", minimum=2),
        beta_max=check.number("beta_max", spec.beta_max, above=0.0),
        ot_ode=check.flag("ot_ode", spec.ot_ode),
        cond_x1=check.flag("cond_x1"),
        t0=t0,
        T=check.number("T", above=t0),
        add_x1_noise=check.flag("add_x1_noise", False),
    )


_ABSENT = object()


class _OptionCheck:
    """Each option the sampler uses, read with its exact type and range, or a ValueError naming
    the file and the option: the string 'False' is not a bool (``bool('False')`` is True), NaN
    is not a beta_max, 1000.5 is not an interval."""

    def __init__(self, options: dict[str, Any], source: str) -> None:
        self.options, self.source = options, source

    def _get(self, key: str, default: Any) -> Any:
        value = self.options.get(key, default)
        # None (or an absent key) takes the default: the reference writes image_size=None
        return default if value is None and default is not _ABSENT else value

    def _refuse(self, key: str, value: Any, expected: str) -> ValueError:
        return ValueError(
            f"{self.source}: option {key!r} is {value!r} ({type(value).__name__}), expected {expected}"
        )

    def text(self, key: str, default: Any = _ABSENT) -> str:
        value = self._get(key, default)
        if not isinstance(value, str) or not value:
            raise self._refuse(key, value, "a name (a non-empty string)")
        return value

    def flag(self, key: str, default: Any = _ABSENT) -> bool:
        value = self._get(key, default)
        if not isinstance(value, bool):
            raise self._refuse(key, value, "True or False (a bool)")
        return value

    def integer(self, key: str, default: Any = _ABSENT, minimum: int = 1, multiple: int = 1) -> int:
        value = self._get(key, default)
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or value < minimum
            or value % multiple
        ):
            multiple_of = f", a multiple of {multiple}" if multiple > 1 else ""
            raise self._refuse(key, value, f"an integer >= {minimum}{multiple_of}")
        return value

    def number(self, key: str, default: Any = _ABSENT, above: float = 0.0) -> float:
        value = self._get(key, default)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or not value > above
        ):
            raise self._refuse(key, value, f"a finite number > {above:g}")
        return float(value)
