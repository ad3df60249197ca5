"""`--set key.path=value` overrides shared by the commands that read a config (not a subcommand)."""

from __future__ import annotations

from typing import Any

import yaml


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """["train.lr=1e-3", "tasks=[jpeg-5]"] -> {"train": {"lr": 0.001}, "tasks": ["jpeg-5"]}."""
    nested: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects KEY=VALUE (e.g. train.lr=1e-3), got {item!r}")
        value = yaml.safe_load(raw) if raw else ""
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
