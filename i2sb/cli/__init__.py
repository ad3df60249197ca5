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
    parser.add_argument(
        "--debug", action="store_true", help="show the full traceback of an error (any position)"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if module.name.startswith("_"):  # shared helpers, not commands
            continue
        importlib.import_module(f"{__name__}.{module.name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    from i2sb.cli._errors import describe

    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv  # accepted anywhere on the line, also after the subcommand
    args = parser.parse_args([a for a in argv if a != "--debug"])
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except Exception as err:
        # Errors a user can fix get one line naming the file, key or option; bugs keep the
        # traceback, and --debug keeps it for everything.
        message = None if debug else describe(err)
        if message is None:
            raise
        print(f"i2sb {args.command}: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
