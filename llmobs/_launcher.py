"""run a command with llmobs started in every Python process it runs

``llmobs run -- python app.py`` (or ``llmobs-instrument python app.py``), in the spirit of
``opentelemetry-instrument``: the configuration is checked here, then the command runs with
``llmobs/_bootstrap`` first on PYTHONPATH, whose ``sitecustomize`` calls ``llmobs.init()`` from the
environment and instruments transformers when the program imports it."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from . import _config

BOOTSTRAP = str(Path(__file__).with_name("_bootstrap"))
INSTRUMENT = "LLMOBS_LAUNCHER_INSTRUMENT"
"""Read by the bootstrap: a comma-separated list of libraries to instrument (``transformers`` or empty)."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-transformers", action="store_true", help="do not instrument transformers' generate() and pipelines"
    )
    parser.add_argument("program", nargs=argparse.REMAINDER, help="the command, after --: llmobs run -- python app.py")


def main(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    command = args.program[1:] if args.program[:1] == ["--"] else args.program
    if not command:
        parser.error("name the command to run: llmobs run -- python app.py")
    executable = shutil.which(command[0])
    if executable is None:
        parser.error(f"{command[0]!r} is not a program on PATH")
    try:
        _config.load()  # the environment's settings fail here, before the program starts
    except _config.ConfigError as error:
        print(f"llmobs: {error}", file=sys.stderr)
        return 2
    os.environ["PYTHONPATH"] = os.pathsep.join([BOOTSTRAP, *_python_path()])
    os.environ[INSTRUMENT] = "" if args.no_transformers else "transformers"
    os.execv(executable, command)


def _python_path() -> list[str]:
    """PYTHONPATH without the bootstrap, with the working directory, as the program would import from."""
    paths = [path for path in os.environ.get("PYTHONPATH", "").split(os.pathsep) if path and path != BOOTSTRAP]
    return paths if os.getcwd() in paths else [os.getcwd(), *paths]


def instrument_main() -> int:
    """``llmobs-instrument COMMAND...``: the same as ``llmobs run -- COMMAND...``."""
    parser = argparse.ArgumentParser(prog="llmobs-instrument", description=(__doc__ or "").splitlines()[0])
    configure(parser)
    args = parser.parse_args()
    return main(args, parser)
