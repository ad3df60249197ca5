"""`--set key.path=value` overrides shared by the commands that read a config (not a subcommand)."""

from __future__ import annotations

from typing import Any

import yaml

from i2sb.config.load import yaml_problem


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """["train.lr=1e-3", "tasks=[jpeg-5]"] -> {"train": {"lr": 0.001}, "tasks": ["jpeg-5"]}."""
    nested: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects KEY=VALUE (e.g. train.lr=1e-3), got {item!r}")
        try:
            value = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError as err:
            raise ValueError(
                f"--set {key}: {raw!r} is not a YAML value: {yaml_problem(err)}"
            ) from None
        if isinstance(value, str) and _looks_numeric(raw):
            value = float(raw)
        node = nested
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def _looks_numeric(raw: str) -> bool:
    try:
        float(raw)
    except ValueError:
        return False
    return True


def add_section_flags(
    parser, section: str, names: dict[str, str] | None = None, skip: tuple[str, ...] = ()
) -> None:
    """One flag per key of the config section ``section`` (a field of ``Config``), so a new key
    reaches the command line without touching it: booleans as ``--key/--no-key``, the rest typed.

    ``names`` renames a flag (``{"batch_size": "eval_batch"}``). Defaults are None: an absent
    flag leaves the config's value; ``section_flags`` collects the given ones as overrides.
    """
    import argparse
    import dataclasses
    import typing

    from i2sb.config import Config, key_choices

    section_cls = typing.get_type_hints(Config)[section]
    hints = typing.get_type_hints(section_cls)
    group = parser.add_argument_group(
        f"config keys {section}.* (default: --config's value, else the one shown)"
    )
    for field in dataclasses.fields(section_cls):
        if field.name in skip:
            continue
        flag = "--" + (names or {}).get(field.name, field.name).replace("_", "-")
        kind, key = hints[field.name], f"{section}.{field.name}"
        shown = f"{key} (default {field.default!r})"
        if kind is bool:
            group.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=None, dest=key, help=shown
            )
        elif typing.get_origin(kind) is tuple:  # a list key: --metrics psnr ssim
            item = typing.get_args(kind)[0]
            group.add_argument(flag, nargs="+", type=item, default=None, dest=key, help=shown)
        else:
            choices = key_choices(section, field.name)
            group.add_argument(flag, type=kind, default=None, dest=key, choices=choices,
                               metavar=None if choices else field.name.upper(), help=shown)  # fmt: skip


def section_flags(args, section: str) -> dict[str, Any]:
    """{section: {key: value}} of the ``add_section_flags`` flags that were given."""
    given = {
        name.split(".", 1)[1]: value
        for name, value in vars(args).items()
        if name.startswith(section + ".") and value is not None
    }
    return {section: given} if given else {}


def config_from_args(args, sections: tuple[str, ...], base: dict[str, Any] | None = None):
    """The config of a command: ``--config`` + ``--set`` + the given flags of the config keys of
    ``sections`` (``add_section_flags``), validated as a whole. Without ``--config``: ``base`` (the
    command's own defaults over the config's) + the flags; ``--set`` then has nothing to override."""
    from i2sb.config import config_from_dict, deep_merge, load_config

    overrides = parse_overrides(args.set)
    if args.config is None and overrides:
        raise ValueError("--set needs --config (the file it overrides)")
    for section in sections:
        overrides = deep_merge(overrides, section_flags(args, section))
    if args.config:
        return load_config(args.config, overrides)
    return config_from_dict(deep_merge(base or {}, overrides))
