"""What the tests share besides fixtures: the plugin they monitor, an alert receiver, a
free port, and a reader of the Prometheus text."""

from __future__ import annotations

import re
import socket
import textwrap
from typing import Any

import hookline

#: The plugin the tests monitor. Its stage decides by the event's kind; a ``sleep`` property
#: slows an event down (in seconds).
GATE = textwrap.dedent('''
    import time

    import hookline


    class Check(hookline.Stage, phase="validate", name="check"):
        def process(self, event):
            if event.kind == "bad":
                raise hookline.Reject("bad kind")
            if event.kind == "noise":
                raise hookline.Drop("noise")
            if event.kind == "boom":
                raise KeyError("boom")


    class Slow(hookline.Stage, phase="enrich", name="slow"):
        def process(self, event):
            if event.properties.get("sleep"):
                time.sleep(event.properties["sleep"])
''')



class Pager:
    """Another plugin's ``hookline_alert``: keeps every alert it receives."""

    def __init__(self) -> None:
        self.alerts: list[Any] = []

    @hookline.hookimpl
    def hookline_alert(self, alert: Any) -> None:
        self.alerts.append(alert)


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{.*\})?) (\S+)$")


def samples(text: str) -> dict[str, float]:
    """The samples of a Prometheus text exposition: ``'name{labels}' -> value``."""
    found = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            match = _SAMPLE.match(line)
            assert match, f"not a Prometheus sample line: {line!r}"
            found[match.group(1)] = float(match.group(2))
    return found
