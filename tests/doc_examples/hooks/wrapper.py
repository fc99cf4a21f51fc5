"""A phase wrapper: time every validate phase and count how it ended."""

import time
from collections import Counter
from collections.abc import Generator
from typing import Any

import hookline


class ValidateTimer:
    def __init__(self) -> None:
        self.outcomes: Counter[str] = Counter()
        self.total_ns = 0

    @hookline.hookimpl(wrapper=True)
    def hookline_validate(self, event: hookline.Event) -> Generator[None, Any, Any]:
        started = time.perf_counter_ns()
        try:
            result = yield  # every validate implementation runs here, in order
        except BaseException as exc:  # Reject and Drop included: count them, re-raise
            self.outcomes[type(exc).__name__] += 1
            raise
        finally:
            self.total_ns += time.perf_counter_ns() - started
        self.outcomes["passed"] += 1
        return result


timer = ValidateTimer()
