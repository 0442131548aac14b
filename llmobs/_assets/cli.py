"""write the Grafana dashboards, alert rules, Zabbix template or Kubernetes/Collector manifests

``llmobs assets KIND --out DIR``: the files come from the installed package (dashboards) or are rendered
from its names and the thresholds (``--set KEY=VALUE``, ``--values FILE``). Files are created 0600 and
never written through a symbolic link; an existing file is kept unless ``--force`` replaces it."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

KINDS = ("grafana", "rules", "zabbix", "kubernetes", "collector")
UNTHRESHOLDED = ("collector",)


def configure(parser: argparse.ArgumentParser) -> None:
    from .thresholds import describe

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = "thresholds (--set KEY=VALUE):\n" + "\n".join(
        f"  {key:<24} {default:<6} {meaning}" for key, default, meaning in describe()
    )
    parser.add_argument("kind", choices=KINDS, help="what to write")
    parser.add_argument("--out", type=Path, required=True, help="the folder to write into (created if missing)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a threshold; repeatable")
    parser.add_argument("--values", type=Path, help="a file of KEY=VALUE lines, applied before --set")
    parser.add_argument(
        "--force", action="store_true", help="replace files that exist (a link is replaced, not followed)"
    )


def main(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .._config import ConfigError
    from .render import render
    from .thresholds import apply, read_values

    if args.kind in UNTHRESHOLDED and (args.set or args.values):
        parser.error(f"{args.kind} takes no thresholds: --set and --values apply to the other kinds")
    try:
        thresholds = apply([*(read_values(args.values) if args.values else []), *args.set])
        files = render(args.kind, thresholds)
        written = write(args.out, files, args.force)
    except (ConfigError, OSError) as exc:
        parser.error(str(exc))
    for path in written:
        print(path)
    return 0


def write(directory: Path, files: dict[str, str], force: bool) -> list[Path]:
    """Write ``files`` (name -> text) into ``directory``, all or none refused up front."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        present = [name for name in files if _exists(name, fd)]
        if present and not force:
            raise FileExistsError(f"{', '.join(present)} already in {directory}: pass --force to replace them")
        for name, text in files.items():
            _replace(name, text.encode(), fd)
    finally:
        os.close(fd)
    return [directory / name for name in files]


def _exists(name: str, dir_fd: int) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def _replace(name: str, data: bytes, dir_fd: int) -> None:
    """Write a private temporary file beside ``name``, then rename it over ``name``: an existing file or
    link is replaced whole, never written through."""
    temporary = f".{name}.{os.getpid()}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(temporary, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        os.unlink(temporary, dir_fd=dir_fd)
        raise
