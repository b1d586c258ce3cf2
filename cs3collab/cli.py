"""The ``cs3collab`` command: one subcommand per part of the stack.

Each subcommand is declared by the package that implements it, so this module
only dispatches; it never holds a part's settings itself.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys


def build_parser() -> argparse.ArgumentParser:
    from cs3collab.demo import add_demo_parser
    from cs3collab.devstack.cli import add_devstack_parser

    parser = argparse.ArgumentParser(
        prog="cs3collab",
        description="Real-time collaboration for Jupyter notebooks stored in CS3 storage.",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="logging threshold for all cs3collab loggers (default: INFO)",
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_devstack_parser(subparsers)
    add_demo_parser(subparsers)
    serve = subparsers.add_parser(
        "serve",
        help="run the collaboration service of a site (options: cs3collab serve --help-all)",
        add_help=False,
    )
    serve.set_defaults(run=_run_service, options=[])
    return parser


async def _run_service(args: argparse.Namespace) -> None:
    from cs3collab.service.app import run_service

    await run_service(args.options)


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.command == "serve":
        args.options = rest  # the service's own traitlets options
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    # one line per HTTP request to a data server is noise at INFO
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))
    try:
        asyncio.run(args.run(args))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
