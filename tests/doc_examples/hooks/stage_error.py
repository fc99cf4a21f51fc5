"""Log every exception a stage raises, with the stage's name."""

import logging
from collections.abc import Mapping
from typing import Any

import hookline

logger = logging.getLogger("stage-errors")


@hookline.hookimpl
def hookline_stage_error(stage: str, event: Mapping[str, Any], error: BaseException) -> None:
    logger.warning("%s raised %r", stage, error)
