"""Pass each alert on: here into a list; in production, to a pager or a chat channel."""

from typing import Any

import hookline


class Pager:
    def __init__(self) -> None:
        self.pages: list[str] = []

    @hookline.hookimpl
    def hookline_alert(self, alert: Any) -> None:
        self.pages.append(f"run {alert.run_id}, batch {alert.batch}: {alert.message}")


pager = Pager()
