"""Read the run's configuration once, when the pipeline is built."""

from collections.abc import Mapping
from typing import Any

import hookline


class BatchSizeWatcher:
    def __init__(self) -> None:
        self.batch_size = 0
        self.config_source = ""

    @hookline.hookimpl
    def hookline_configure(self, config: Mapping[str, Any]) -> None:
        self.batch_size = config["batch_size"]
        self.config_source = config["source"]  # "defaults", or the file it was read from


watcher = BatchSizeWatcher()
