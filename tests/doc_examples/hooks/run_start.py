"""Announce each run, and keep state for the rest of the run in run.state."""

import sys
import time
from typing import Any

import hookline


@hookline.hookimpl
def hookline_run_start(run: Any) -> None:
    run.state["announce"] = {"started": time.monotonic()}
    print(f"run {run.run_id}: {len(run.inputs)} input(s) into {run.db}", file=sys.stderr)
