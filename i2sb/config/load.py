"""Reading a config: schema validation and its messages, string coercion, cross-field checks, file I/O.

``model.py`` holds the dataclasses (every default); ``schema.yaml`` beside this file checks names,
types and ranges and is also what the Snakefile validates against. Imports neither torch nor mlflow.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from pathlib import Path
from typing import Any

import yaml

from i2sb.atomic import write_json
from i2sb.config.choices import CHOICES
from i2sb.config.model import Config
from i2sb.samplers import samplers_problem
from i2sb.samplers.entry import entry_schema
from i2sb.tasks import task_spec

SCHEMA_PATH = Path(__file__).with_name("schema.yaml")


class ConfigError(ValueError):
    """A configuration value is missing, misspelt or out of range; the message names the key."""


def _build(cls: type, values: Any, where: str) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"config key {where or '<root>'!r}: expected a mapping, got {values!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(
            f"unknown config key {_join(where, unknown[0])!r}; valid keys here: {', '.join(sorted(known))}"
        )
    kwargs = {}
    for name, value in values.items():
        kind = hints[name]
        if dataclasses.is_dataclass(kind):
            value = _build(kind, value, _join(where, name))
        elif typing.get_origin(kind) is tuple and isinstance(value, list):
            item = typing.get_args(kind)[0]
            if dataclasses.is_dataclass(item):
                value = [_build(item, v, f"{_join(where, name)}[{i}]") for i, v in enumerate(value)]
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def schema_errors(values: dict[str, Any]) -> list[str]:
    """One message per schema violation of a (partial) config, naming the key."""
    import jsonschema

    schema = resolved_schema()
    validator = jsonschema.Draft202012Validator(schema)
    non_finite = dict(_non_finite_numbers(values))
    messages = [
        f"config key {key!r}: got {value!r}, expected a finite number (not NaN or infinity)"
        for key, value in non_finite.items()
    ]
    for error in sorted(validator.iter_errors(values), key=lambda e: list(e.absolute_path)):
        key = ".".join(str(p) for p in error.absolute_path) or "<root>"
        if key in non_finite:  # said above, once
            continue
        if error.validator == "additionalProperties":
            messages.append(f"config key {key!r}: {error.message}")
        else:
            expected = error.schema.get("description") or _expected(error)
            messages.append(f"config key {key!r}: got {error.instance!r}, expected {expected}")
    return messages


def _non_finite_numbers(values: Any, key: str = "") -> typing.Iterator[tuple[str, float]]:
    """(dotted key, value) of every NaN or infinite float in ``values``, whatever its definition
    (sampler options too): JSON Schema cannot say "finite", NaN passes any minimum/maximum."""
    if isinstance(values, dict):
        for name, value in values.items():
            yield from _non_finite_numbers(value, _join(key, str(name)))
    elif isinstance(values, list | tuple):
        for i, value in enumerate(values):
            yield from _non_finite_numbers(value, _join(key, str(i)))
    elif isinstance(values, float) and not math.isfinite(values):
        yield key, values


def resolved_schema() -> dict[str, Any]:
    """schema.yaml, each ``choices: NAME`` as its enum, a samplers entry's from the table."""
    schema = _with_choices(yaml.safe_load(SCHEMA_PATH.read_text()))
    schema["properties"]["samplers"]["items"] = entry_schema()
    return schema


def key_choices(section: str, key: str) -> list[Any] | None:
    """The allowed values of ``section.key`` (its schema enum), or None for a free value."""
    section_schema = resolved_schema()["properties"].get(section, {})
    return section_schema.get("properties", {}).get(key, {}).get("enum")


def _with_choices(node: Any) -> Any:
    """Replace each ``choices: NAME`` with ``enum: CHOICES[NAME]``: a choice list is defined once."""
    if isinstance(node, list):
        return [_with_choices(item) for item in node]
    if not isinstance(node, dict):
        return node
    resolved = {key: _with_choices(value) for key, value in node.items() if key != "choices"}
    if "choices" in node:
        resolved["enum"] = list(CHOICES[node["choices"]])
    return resolved


def _expected(error: Any) -> str:
    schema = error.schema
    if error.validator == "enum":
        return "one of " + ", ".join(map(repr, schema["enum"]))
    if error.validator in ("minimum", "maximum", "exclusiveMinimum"):
        return f"{error.validator} {schema[error.validator]}"
    if error.validator == "type":
        return f"type {schema['type']}"
    return error.message


_NULLS = ("null", "none", "~", "")
_BOOLS = {"true": True, "false": False}


def _coerce_scalar(kind: Any, value: Any) -> Any:
    """``value`` as ``kind`` when that is unambiguous ('10' or 4.0 for an int); else unchanged.

    Strings arrive from ``snakemake --config`` (which reads every nested value as a string) and
    integral floats from YAML (``4.0``, ``1e3``); what cannot be read without guessing is left
    for the schema to reject, naming the key.
    """
    args = typing.get_args(kind)
    if type(None) in args:  # Optional[X]
        if value is None or (isinstance(value, str) and value.strip().lower() in _NULLS):
            return None
        kind = next(a for a in args if a is not type(None))
    if isinstance(value, bool):
        return value
    if kind is bool and isinstance(value, str):
        return _BOOLS.get(value.strip().lower(), value)
    if kind is int:
        number = _number(value)
        return int(number) if number is not None and float(number).is_integer() else value
    if kind is float:
        number = _number(value)
        return float(number) if number is not None else value
    if kind is str and isinstance(value, int | float):
        return str(value)
    return value


def _number(value: Any) -> float | int | None:
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            pass
        try:
            number = float(text)
        except ValueError:
            return None
        return number  # NaN and inf too: refused by schema_errors, naming the key
    return None


def coerce_values(values: Any, cls: type = Config) -> Any:
    """A copy of a config mapping with unambiguous values turned into the declared types.

    The dataclasses' type hints are the one definition of each key's type. Unknown keys and
    values of the wrong shape are kept as they are: validation then names them.
    """
    if not isinstance(values, dict):
        return values
    hints = typing.get_type_hints(cls)
    coerced = {}
    for name, value in values.items():
        kind = hints.get(name)
        if kind is None:
            coerced[name] = value
        elif dataclasses.is_dataclass(kind):
            coerced[name] = coerce_values(value, kind)
        elif typing.get_origin(kind) is tuple:
            item = typing.get_args(kind)[0]
            if isinstance(value, str) and value.strip().startswith("["):
                value = _yaml_list(value)  # a list given as text: 'nfe=[10,100]'
            if isinstance(value, str | int | float) and not isinstance(value, bool):
                value = [value]  # one item given without brackets: 'tasks=jpeg-5'
            if not isinstance(value, list | tuple):
                coerced[name] = value
            elif dataclasses.is_dataclass(item):  # e.g. samplers: [{name: implicit, eta: '0'}]
                coerced[name] = [coerce_values(v, item) for v in value]
            else:
                coerced[name] = [_coerce_scalar(item, v) for v in value]
        else:
            coerced[name] = _coerce_scalar(kind, value)
    return coerced


def _yaml_list(text: str) -> Any:
    """``text`` read as YAML, or left as text when it is not YAML (the schema then names the key)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def config_from_dict(
    values: dict[str, Any] | None, source: str = "<dict>", *, across_sections: bool = True
) -> Config:
    """Coerce, validate a (partial) config mapping and fill in every default.

    ``across_sections=False`` skips the checks that relate sections (samplers vs tasks, nfe vs
    bridge.interval, ...): a job's slice of a checked config (i2sb.planning) holds only some.
    """
    values = _every_metric_for_all(coerce_values(values or {}), source)
    errors = schema_errors(values)
    if errors:
        sep = " " if len(errors) == 1 else "\n  "  # one error: one line
        raise ConfigError(f"invalid configuration in {source}:{sep}" + "\n  ".join(errors))
    cfg = _build(Config, values, "")
    if across_sections:
        _check_consistency(cfg, source)
    return cfg


def _every_metric_for_all(values: dict[str, Any], source: str) -> dict[str, Any]:
    """``evaluate.metrics: all`` as the metric table's names, read before anything else sees it: the
    resolved config (and each job's slice) then names them, so a metric added reruns evaluation."""
    evaluate = values.get("evaluate")
    metrics = evaluate.get("metrics") if isinstance(evaluate, dict) else None
    if not (isinstance(metrics, list) and "all" in metrics):
        return values
    if metrics != ["all"]:
        raise ConfigError(
            f"config key 'evaluate.metrics' in {source}: 'all' (every metric of the table) stands "
            f"alone, got {metrics}"
        )
    every = [name for name in CHOICES["metric_selection"] if name != "all"]
    return {**values, "evaluate": {**evaluate, "metrics": every}}


def _check_consistency(cfg: Config, source: str) -> None:
    for task in cfg.tasks:
        try:
            task_spec(task)
        except KeyError as err:
            raise ConfigError(f"config key 'tasks' in {source}: {err.args[0]}") from None
    nfes = [("nfe", cfg.nfe)] + [(f"samplers[{i}].nfe", e.nfe) for i, e in enumerate(cfg.samplers)]
    for key, nfe in ((key, nfe) for key, values in nfes for nfe in values):
        if not 0 < nfe < cfg.bridge.interval:
            raise ConfigError(
                f"config key {key!r} in {source}: {nfe} is outside [1, bridge.interval - 1 = "
                f"{cfg.bridge.interval - 1}]"
            )
    problem = samplers_problem(cfg.samplers, [task_spec(task) for task in cfg.tasks])
    if problem:
        key, why = problem.split(": ", 1)
        raise ConfigError(f"config key {key!r} in {source}: {why}")
    bridge, train = cfg.bridge, cfg.train
    if not bridge.t0 < bridge.T:
        raise ConfigError(
            f"config key 'bridge.t0' in {source}: {bridge.t0} must be smaller than bridge.T = "
            f"{bridge.T}"
        )
    if not train.validate_nfe < bridge.interval:
        raise ConfigError(
            f"config key 'train.validate_nfe' in {source}: {train.validate_nfe} must be smaller "
            f"than bridge.interval = {bridge.interval}"
        )
    if train.batch_size % train.microbatch:
        raise ConfigError(
            f"config key 'train.batch_size' in {source}: {train.batch_size} is not a multiple of "
            f"train.microbatch = {train.microbatch}"
        )


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> Config:
    """Read a YAML config file (plus optional nested overrides) into a :class:`Config`."""
    path = Path(path)
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {yaml_problem(err)}") from None
    if not isinstance(values, dict):
        raise ConfigError(
            f"config file {path}: expected a mapping at the top, got {type(values).__name__}"
        )
    return config_from_dict(deep_merge(values, overrides or {}), source=str(path))


def yaml_problem(err: yaml.YAMLError) -> str:
    """PyYAML's error in one line (its own text spans several, with a caret under the spot)."""
    problem = getattr(err, "problem", None) or " ".join(str(err).split())
    mark = getattr(err, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    context = getattr(err, "context", None)
    context_mark = getattr(err, "context_mark", None)
    if context and context_mark:
        where += f" ({context} at line {context_mark.line + 1}, column {context_mark.column + 1})"
    return problem + where


def save_config(cfg: Config, path: str | Path) -> None:
    """Write the resolved config as JSON (atomically); ``config_from_dict`` reads it back exactly."""
    write_json(path, cfg.to_dict())


def field_paths(cls: type = Config, prefix: str = "") -> list[str]:
    """Every leaf key as a dotted path (used to check that config.yaml documents them all)."""
    paths = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        kind = hints[f.name]
        if dataclasses.is_dataclass(kind):
            paths += field_paths(kind, _join(prefix, f.name))
        else:
            paths.append(_join(prefix, f.name))
    return paths
