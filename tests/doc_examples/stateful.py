"""A stateful stage: refuse a user's purchases past a number per day, across runs."""

import hookline

DAY_MS = 24 * 60 * 60 * 1000


class DailyLimit(hookline.Stage, phase="validate", name="daily_limit"):
    def process(self, event: hookline.Event) -> None:
        if event.kind != "purchase":
            return
        key = f"{event.user_id}:{event.ts // DAY_MS}"
        count = self.state.get(key, 0) + 1
        self.state[key] = count  # a JSON value; committed with the batch that changed it
        if count > 3:
            raise hookline.Reject(f"purchase number {count} of {event.user_id} today")
