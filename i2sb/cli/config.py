"""`i2sb config`: validate a config file and print it resolved, with every default filled in."""

from __future__ import annotations

import json


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "config",
        help="validate a config file and print the resolved configuration as JSON",
        description="Validate CONFIG against the schema and print every key, defaults included.",
    )
    parser.add_argument("config", nargs="?", default="config/config.yaml", help="YAML config file")
    parser.set_defaults(handler=run)


def run(args) -> int:
    from i2sb.config import load_config

    print(json.dumps(load_config(args.config).to_dict(), indent=2))
    return 0
