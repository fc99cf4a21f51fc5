"""Keep the dead letters that plugin stages caused, e.g. to alert on them."""

from collections.abc import Mapping
from typing import Any

import hookline


class RejectionLog:
    def __init__(self) -> None:
        self.entries: list[tuple[str | None, str, int]] = []

    @hookline.hookimpl
    def hookline_event_rejected(
        self, event: Mapping[str, Any], reason: str, stage: str | None
    ) -> None:
        self.entries.append((stage, reason, event["line"]))


log = RejectionLog()
