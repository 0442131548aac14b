"""The ``llmobs`` console command: one subcommand per module, each with ``configure`` and ``main``."""

from __future__ import annotations

import argparse
import sys
from importlib import import_module
from typing import Protocol, cast

# Each module's docstring's first line is its help; heavy imports stay inside its ``main``.
COMMANDS = {
    "assets": "llmobs._assets.cli",
    "audit": "llmobs._audit",
    "demo": "llmobs._demo",
    "run": "llmobs._launcher",
    "report": "llmobs._report",
    "profile": "llmobs._profiling.cli",
}


class Command(Protocol):
    """What a subcommand module provides."""

    def configure(self, parser: argparse.ArgumentParser) -> None: ...

    def main(self, args: argparse.Namespace, parser: argparse.ArgumentParser) -> int: ...


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="llmobs", description="llmobs: observability for model serving")
    subparsers = parser.add_subparsers(dest="command", required=True)
    chosen: dict[str, tuple[Command, argparse.ArgumentParser]] = {}
    for name, path in COMMANDS.items():
        module = cast(Command, import_module(path))
        summary = (getattr(module, "__doc__", None) or "").strip().splitlines()[0]
        sub = subparsers.add_parser(name, help=summary, description=summary)
        module.configure(sub)
        chosen[name] = (module, sub)
    args = parser.parse_args(argv)
    module, sub = chosen[args.command]
    return module.main(args, sub)


if __name__ == "__main__":
    sys.exit(main())
