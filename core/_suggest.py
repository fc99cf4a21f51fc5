"""The "did you mean" of every error message that names something unknown.

One rule for the whole core (flags, behaviour specs, stage contracts): the closest candidate
by :func:`difflib.get_close_matches` at its default similarity, 0.6, or nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["did_you_mean"]


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` with the candidate closest to ``name``, or ``""`` when none
    is close: ready to put after the part of a message that names the unknown ``name``."""
    import difflib  # on the error path only: importing it costs more than the rest

    found = difflib.get_close_matches(name, list(candidates), n=1)
    return f"; did you mean {found[0]!r}?" if found else ""
