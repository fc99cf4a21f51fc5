"""Add a section to the run report: printed by `hookline run`, stored in the runs table."""

from typing import Any

import hookline


@hookline.hookimpl
def hookline_run_end(run: Any, report: Any) -> None:
    share = report.accepted / report.read if report.read else 0.0
    worst = report.stages.most_common(1)
    report.sections["quality"] = {
        "accepted_share": round(share, 3),
        "most_dead_letters_from": worst[0][0] if worst else None,
    }
