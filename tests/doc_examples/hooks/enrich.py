"""An enrich hook written as a plain function: tidy the tags of every event."""

import hookline


@hookline.hookimpl
def hookline_enrich(event: hookline.Event) -> None:
    tidy = sorted({tag.strip().lower() for tag in event.tags} - {""})
    if tidy != event.tags:
        event.tags = tidy  # an assignment is validated: a list of str, or ValidationError
