"""A stage that returns a new event: the next implementation gets the replacement."""

import hashlib

import hookline


class Pseudonymize(hookline.Stage, phase="enrich", name="pseudonymize"):
    def process(self, event: hookline.Event) -> hookline.Event:
        data = event.to_dict()
        data["user_id"] = hashlib.sha256(data["user_id"].encode()).hexdigest()[:16]
        data["properties"] = {k: v for k, v in data["properties"].items() if k != "email"}
        return type(event).from_dict(data)  # the pipeline's own event class, validated
