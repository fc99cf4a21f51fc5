"""Behaviours by hand: retry, timeout, cached, timed, logged and traced, and inject()."""

import asyncio
from typing import Any

import hookline
from hookline import behaviors
from hookline.behaviors import cached, logged, retry, timed, timeout, traced


class SegmentService:
    """A stand-in for a remote service that fails the first time it is asked about a user."""

    def __init__(self) -> None:
        self.calls = 0
        self.seen: set[str] = set()

    def ask(self, user_id: str) -> str:
        self.calls += 1
        if user_id not in self.seen:
            self.seen.add(user_id)
            raise ConnectionError("segment service: connection reset")
        return "gold" if user_id.endswith("1") else "silver"


SERVICE = SegmentService()


# --8<-- [start:cached]
@cached(maxsize=10_000, ttl=60)
def segment_of(user_id: str) -> str:
    """Ask the segment service (slow, sometimes down); each answer is kept for a minute."""
    return SERVICE.ask(user_id)
# --8<-- [end:cached]


# --8<-- [start:stage]
class Segment(hookline.Stage, phase="enrich", name="segment"):
    """Tag each event with its user's segment."""

    @retry(attempts=3, backoff=0.01, on=ConnectionError)
    @timeout(0.5)
    def process(self, event: hookline.Event) -> None:
        event.tags = [*event.tags, f"segment:{segment_of(event.user_id)}"]
# --8<-- [end:stage]


# --8<-- [start:timed]
metrics = behaviors.Metrics()


@timed(name="pricing.convert", metrics=metrics)
def convert(amount: float, rate: float) -> float:
    return round(amount * rate, 2)
# --8<-- [end:timed]


# --8<-- [start:logged]
@logged(level="INFO", name="billing.charge")
def charge(user_id: str, amount: float) -> str:
    if amount <= 0:
        raise hookline.Reject(f"nothing to charge for {amount}")
    return f"charged {user_id} {amount}"
# --8<-- [end:logged]


# --8<-- [start:traced]
@traced(name="geo.country")
async def country_of(ip: str) -> str:
    await asyncio.sleep(0)  # a real lookup would await a network call here
    return "NO" if ip.startswith("10.") else "SE"
# --8<-- [end:traced]


# --8<-- [start:inject]
def score(event: Any) -> None:
    """A function written without behaviours, given some from outside."""
    event.properties = {**event.properties, "score": len(event.tags)}


scored = behaviors.inject(score, ["retry(attempts=2)", "timed"], name="ranking.score",
                          metrics=metrics)
# --8<-- [end:inject]


# --8<-- [start:main]
if __name__ == "__main__":
    pipeline = hookline.Pipeline.from_plugins([("crm", Segment)])
    event = pipeline.process({"event_id": "e1", "user_id": "u1", "kind": "click", "ts": 1})
    print(event.tags, "after", SERVICE.calls, "calls to the service")
    again = pipeline.process({"event_id": "e2", "user_id": "u1", "kind": "click", "ts": 2})
    print(again.tags, "from the cache:", SERVICE.calls, "calls to the service")

    print(convert(10.0, 1.1), convert(20.0, 1.1))
    print(charge("u1", 5.0))
    try:
        charge("u1", 0)
    except hookline.Reject as rejected:
        print("rejected:", rejected.reason)
    print(asyncio.run(country_of("10.0.0.7")))

    scored(event)
    print(event.properties, behaviors.applied(scored))
    figures = metrics.snapshot()
    print({name: (f["calls"], f["errors"]) for name, f in figures.items()})
    print(metrics.prometheus_text().splitlines()[2])
# --8<-- [end:main]
