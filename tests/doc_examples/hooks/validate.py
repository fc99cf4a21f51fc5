"""A validate stage: refuse what must not go further, filter out what does not count."""

import hookline


class Sanity(hookline.Stage, phase="validate", name="sanity"):
    def process(self, event: hookline.Event) -> None:
        if event.kind == "refund" and event.amount == 0:
            raise hookline.Reject("a refund of 0 refunds nothing")
        if "bot" in event.tags:
            raise hookline.Drop("traffic from a bot")
