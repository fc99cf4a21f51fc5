"""``hookline ranking train`` and ``hookline ranking experiment``, added to the ``hookline``
command through the ``hookline_commands`` hook.

Adding the commands imports nothing heavy: numpy and the readout load when a command runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import hookline


def _horizon(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, not {text}")
    return value


def _share(text: str) -> float:
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive), not {text}")
    return value


@hookline.hookimpl
def hookline_commands(cli: Any) -> None:
    """Add ``hookline ranking`` and its two subcommands."""
    ranking = cli.add_parser(
        "ranking", help="the ranking model: train its weights, read its experiment",
        description="Commands of hookline-ranking: fit the scorers' weights from stored events, "
                    "and read the ranking.experimental experiment.")
    commands = ranking.add_subparsers(dest="ranking_command", required=True, metavar="COMMAND")

    train = commands.add_parser(
        "train", help="fit the weights from a database's events and print the held-out AUC",
        description="Fit the control and freshness weights from the stored events (label: the "
                    "user purchased within the next K events) and write them as a weights file "
                    "for [settings.ranking] model. Needs numpy: pip install "
                    "'hookline-ranking[train]'.")
    train.add_argument("--db", default="hookline.db",
                       help="SQLite database of a run (a path or sqlite:///path; default "
                            "hookline.db)")
    train.add_argument("--out", required=True, metavar="PATH",
                       help="the weights file to write (JSON)")
    train.add_argument("--horizon", type=_horizon, default=10, metavar="K",
                       help="label: a purchase within the user's next K events (default 10)")
    train.add_argument("--holdout", type=_share, default=0.2, metavar="SHARE",
                       help="share of users held out to measure the AUC (default 0.2)")
    train.set_defaults(handler=_train)

    experiment = commands.add_parser(
        "experiment", help="per variant: users, events, mean score, conversion with its "
                           "95 %% confidence interval, and the difference",
        description="Read the ranking.experimental experiment from a database: per variant "
                    "(score_model) its users, events, mean score and purchase conversion (share "
                    "of users with a purchase) with a 95 %% Wilson interval, and the difference "
                    "between the variants with Newcombe's interval.")
    experiment.add_argument("--db", default="hookline.db",
                            help="SQLite database of a run (a path or sqlite:///path; default "
                                 "hookline.db)")
    experiment.add_argument("--format", choices=("text", "json"), default="text")
    experiment.set_defaults(handler=_experiment)


def _train(args: argparse.Namespace) -> int:
    from hookline_ranking._db import DatabaseProblem, connect

    try:
        from hookline_ranking._train import TrainingProblem, train
    except ImportError as exc:
        print(f"hookline ranking train: needs numpy ({exc}): pip install "
              "'hookline-ranking[train]'", file=sys.stderr)
        return 1
    try:
        connection = connect(args.db)
    except DatabaseProblem as exc:
        print(f"hookline ranking train: {exc}", file=sys.stderr)
        return 1
    try:
        outcome = train(connection, args.db, horizon=args.horizon, holdout=args.holdout)
    except TrainingProblem as exc:
        print(f"hookline ranking train: {exc}", file=sys.stderr)
        return 1
    finally:
        connection.close()
    try:
        outcome.model.write(args.out)
    except OSError as exc:
        print(f"hookline ranking train: cannot write {args.out}: {exc.strerror or exc}",
              file=sys.stderr)
        return 1
    print(outcome.format())
    print(f"wrote {args.out}")
    return 0


def _experiment(args: argparse.Namespace) -> int:
    from hookline_ranking._db import DatabaseProblem, connect
    from hookline_ranking._experiment import read

    try:
        connection = connect(args.db, needs=("score", "score_model"))
    except DatabaseProblem as exc:
        print(f"hookline ranking experiment: {exc}", file=sys.stderr)
        return 1
    try:
        readout = read(connection, args.db)
    finally:
        connection.close()
    if args.format == "json":
        print(json.dumps(readout.as_dict(), indent=2))
    else:
        print(readout.format())
    return 0
