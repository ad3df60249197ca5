"""A sampler's options as a frozen dataclass whose fields carry default, range and help.

Each sampler file declares its options with :func:`option`; everything else a user meets is read
from those fields: the config schema's entry, the ``i2sb sample`` flags and their help, the label
of a config entry (``implicit-eta0``) and the range check with its message. Imports neither torch
nor numpy, so planning a workflow stays instant.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class OptionInfo:
    """What a field of an options dataclass says about itself (its ``metadata["option"]``)."""

    help: str  # one line for --help and the schema: what the option does
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[Any, ...] = ()  # the allowed values, when a list says it better than a range
    label: str = ""  # its short name in a config entry's label (step_size -> lam: cddb-lam1)


def option(
    default: Any,
    help: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    choices: tuple[Any, ...] = (),
    label: str = "",
) -> Any:
    """A field of an options dataclass: ``eta: float = option(0.0, "...", minimum=0, maximum=1)``."""
    info = OptionInfo(help, minimum, maximum, tuple(choices), label)
    return dataclasses.field(default=default, metadata={"option": info})


@dataclass(frozen=True)
class OptionField:
    """One option of one sampler: its name, type (int or float), default and :class:`OptionInfo`."""

    name: str
    kind: type
    default: Any
    info: OptionInfo

    def expected(self) -> str:
        """The allowed values in words, e.g. 'a number in [0, 1]' or 'one of 2, 3'."""
        info = self.info
        if info.choices:
            return "one of " + ", ".join(f"{c:g}" for c in info.choices)
        noun = "an integer" if self.kind is int else "a number"
        if info.minimum is not None and info.maximum is not None:
            return f"{noun} in [{info.minimum:g}, {info.maximum:g}]"
        if info.minimum is not None:
            return f"a finite {noun.split()[-1]} >= {info.minimum:g}"
        if info.maximum is not None:
            return f"a finite {noun.split()[-1]} <= {info.maximum:g}"
        return f"a finite {noun.split()[-1]}"

    def problem(self, value: Any) -> str | None:
        """'got V, expected E' when ``value`` is not allowed (wrong type, NaN or infinite, out of
        range); None when it is."""
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        if self.kind is int and is_number and not float(value).is_integer():
            is_number = False
        info = self.info
        allowed = (
            is_number
            and math.isfinite(value)
            and (info.minimum is None or value >= info.minimum)
            and (info.maximum is None or value <= info.maximum)
            and (not info.choices or value in info.choices)
        )
        return None if allowed else f"got {value!r}, expected {self.expected()}"

    def schema(self) -> dict[str, Any]:
        """The JSON-schema of this option in a config entry (null = the sampler's default)."""
        node: dict[str, Any] = {"type": ["integer" if self.kind is int else "number", "null"]}
        if self.info.choices:
            node["enum"] = [*self.info.choices, None]
        if self.info.minimum is not None:
            node["minimum"] = self.info.minimum
        if self.info.maximum is not None:
            node["maximum"] = self.info.maximum
        return node


def option_fields(options_cls: type) -> tuple[OptionField, ...]:
    """The options of an options dataclass, in declaration order."""
    hints = typing.get_type_hints(options_cls)
    fields = []
    for field in dataclasses.fields(options_cls):
        if "option" not in field.metadata:
            raise TypeError(f"{options_cls.__name__}.{field.name} is not declared with option()")
        if hints[field.name] not in (int, float):
            raise TypeError(f"{options_cls.__name__}.{field.name}: options are int or float")
        fields.append(
            OptionField(field.name, hints[field.name], field.default, field.metadata["option"])
        )
    return tuple(fields)


def build_options(options_cls: type, values: dict[str, Any], sampler: str) -> Any:
    """``options_cls(**values)`` with defaults filled in, checked and cast to each field's type.

    Raises ValueError naming the sampler and the option: an unknown option, or a value out of
    range (NaN and infinities included).
    """
    fields = {f.name: f for f in option_fields(options_cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ValueError(
            f"sampler {sampler} takes no option(s) {unknown}; accepted: {list(fields) or 'none'}"
        )
    resolved = {}
    for name, field in fields.items():
        value = values.get(name, field.default)
        problem = field.problem(value)
        if problem:
            raise ValueError(f"sampler {sampler} option {name}: {problem}")
        resolved[name] = field.kind(value)
    return options_cls(**resolved)
