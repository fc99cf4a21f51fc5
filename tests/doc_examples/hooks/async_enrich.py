"""An async stage: hookline awaits it; different users' events overlap their awaits."""

import asyncio

import hookline

COUNTRIES = {"u1": "NO", "u2": "FR"}


async def country_of(user_id: str) -> str | None:
    await asyncio.sleep(0)  # stands for a call to a user service
    return COUNTRIES.get(user_id)


class Country(hookline.Stage, phase="enrich", name="country"):
    async def process(self, event: hookline.Event) -> None:
        country = await country_of(event.user_id)
        if country is not None:
            event.tags = [*event.tags, f"country:{country}"]
