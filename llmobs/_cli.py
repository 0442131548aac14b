"""The ``llmobs`` console command."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="llmobs", description="llmobs: observability for model serving")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run a simulated streaming model under load and show the summary")
    demo.add_argument("--duration", type=float, default=15.0, help="seconds of load (default 15)")
    demo.add_argument("--concurrency", type=int, default=8, help="concurrent clients (default 8)")
    demo.add_argument("--interval", type=float, default=5.0, help="seconds between summaries (default 5)")
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.concurrency < 1 or args.interval <= 0:
        parser.error("--duration and --interval must be positive and --concurrency at least 1")
    from . import _demo as demo_module

    demo_module.run(args.duration, args.concurrency, args.interval)
    return 0


if __name__ == "__main__":
    sys.exit(main())
