"""SamplingOptions: one typed view of a run's options, whether ours (options.json) or published.

Our runs write ``options.json`` with {"task", "preset", "image_size", "cond_x1", "interval", "t0",
"T", "beta_max", "ot_ode"}; the reference's ``options.pkl`` names the task ``corrupt`` and always
used the ADM 256 network. The sampler reads only this dataclass, never either raw form.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

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
    from i2sb.network.presets import preset_kwargs

    ours = "task" in options
    task_key = "task" if ours else "corrupt"
    _require(options, (task_key, "interval", "cond_x1", "t0", "T"), source)
    task = str(options[task_key])
    try:
        spec = task_spec(task)
    except KeyError as err:
        raise KeyError(f"{source}: {err.args[0]}") from None
    # The reference's own pickles name no preset (always ADM 256); ours add it to options.pkl too.
    preset = str(options.get("preset", PUBLISHED_PRESET))
    image_size = options.get("image_size") or preset_kwargs(preset)["image_size"]
    return SamplingOptions(
        task=task,
        preset=preset,
        image_size=int(image_size),
        interval=int(options["interval"]),
        beta_max=float(options.get("beta_max", spec.beta_max)),
        ot_ode=bool(options.get("ot_ode", spec.ot_ode)),
        cond_x1=bool(options["cond_x1"]),
        t0=float(options["t0"]),
        T=float(options["T"]),
        add_x1_noise=bool(options.get("add_x1_noise", False)),
    )
