"""Add a subcommand to the hookline CLI: hello NAME [--shout]."""

import argparse
from typing import Any

import hookline


def greet(args: argparse.Namespace) -> int:
    text = f"hello, {args.name}"
    print(text.upper() if args.shout else text)
    return 0 if args.name.strip() else 1  # the exit status of the command


@hookline.hookimpl
def hookline_commands(cli: Any) -> None:
    hello = cli.add_parser("hello", help="greet someone", description="Say hello to NAME.")
    hello.add_argument("name", help="who to greet")
    hello.add_argument("--shout", action="store_true", help="in capitals")
    hello.set_defaults(handler=greet)
