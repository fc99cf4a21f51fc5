"""Add a subcommand to the hookline CLI (reserved: hookline does not call this hook yet)."""

import argparse
from typing import Any

import hookline


def greet(args: argparse.Namespace) -> int:
    print(f"hello, {args.name}")
    return 0


@hookline.hookimpl
def hookline_commands(cli: Any) -> None:
    hello = cli.add_parser("hello", help="say hello")
    hello.add_argument("name")
    hello.set_defaults(handler=greet)
