"""Declare a feature flag, and gate a stage with it."""

from typing import Any

import hookline


@hookline.hookimpl
def hookline_flags() -> list[dict[str, Any]]:
    return [
        {
            "name": "ranking.boost_new_users",
            "rollout": 0.1,  # on for 10 % of users, the same users in every run
            "description": "Tag the events of new users for a boosted score.",
        }
    ]


class BoostNewUsers(
    hookline.Stage, phase="score", name="boost_new_users", flag="ranking.boost_new_users"
):
    def process(self, event: hookline.Event) -> None:
        if "new_user" in event.tags:
            event.tags = [*event.tags, "boosted"]
