"""Follow a run batch by batch: each batch's dead-letter share and its slowest stage."""

import sys
from typing import Any

import hookline


@hookline.hookimpl
def hookline_batch_committed(run: Any, report: Any, pipeline: Any) -> None:
    read, dead = run.state.get("progress", (0, 0))  # the counts at the previous batch
    run.state["progress"] = (report.read, report.dead_lettered)
    batch = report.read - read
    share = (report.dead_lettered - dead) / batch if batch else 0.0
    p99 = {name: stage.latency.quantile(0.99) or 0.0
           for name, stage in pipeline.stats.stages.items()}
    slowest = max(p99, key=p99.__getitem__, default="-")
    print(f"{batch} events, {share:.0%} dead-lettered, slowest stage {slowest}",
          file=sys.stderr)
