"""``/metrics`` over HTTP while a run lasts, for Prometheus to scrape.

The text served is hookline's own exposition of the run, written by :mod:`hookline.metrics`
(the one Prometheus writer): ``report.prometheus(pipeline.stats)`` is what ``hookline run
--metrics-file`` writes at the end, so a scrape and the file carry the same families and,
at the end, the same figures. The run loop publishes a new text after each committed batch;
the server thread only sends the last one, so a scrape never sees figures half-updated and
costs the run nothing. The standard library's HTTP server is enough for that: a dependency
such as prometheus-client would bring a second writer of the format.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: The content type of the Prometheus text format, version 0.0.4.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    body = b""


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:  # the name http.server calls
        if self.path.partition("?")[0] != "/metrics":
            self.send_error(404, "hookline-monitoring serves /metrics only")
            return
        body = self.server.body
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Say nothing per request: a scrape every few seconds would fill stderr."""


class Endpoint:
    """An HTTP server on ``host:port`` (port 0: any free one) answering ``GET /metrics``
    with the text last :meth:`publish`\\ ed, in a thread of its own until :meth:`close`.

    Raises OSError when the address cannot be listened on (a port in use, say).
    """

    def __init__(self, host: str, port: int) -> None:
        self._server = _Server((host, port), _Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="hookline-monitoring-metrics")
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        shown = host if isinstance(host, str) else host.decode()
        return f"http://{shown}:{port}/metrics"

    def publish(self, text: str) -> None:
        """Serve ``text`` from now on (one assignment: a scrape sends the old or the new)."""
        self._server.body = text.encode("utf-8")

    def close(self) -> None:
        """Stop serving and free the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
