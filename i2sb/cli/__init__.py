"""The ``i2sb`` command line: each module in this package adds one or more subcommands.

A command module defines ``register(subparsers)``; it parses arguments and calls one library
function. Heavy imports (torch, mlflow) happen inside the handlers so ``i2sb --help`` is fast.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from i2sb import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="i2sb",
        description="I2SB (Image-to-Image Schrodinger Bridge): data, training, sampling, "
        "evaluation and reporting. Run `i2sb COMMAND --help` for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"i2sb {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if module.name.startswith("_"):  # shared helpers, not commands
            continue
        importlib.import_module(f"{__name__}.{module.name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except (ValueError, FileNotFoundError, KeyError, RuntimeError) as err:
        # Library errors name the file, key or option at fault; a traceback adds nothing for users.
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"i2sb {args.command}: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
