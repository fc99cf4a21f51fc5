"""The ``/metrics`` endpoint: the last published text, the format's content type, 404 else."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from hookline_monitoring._prometheus import CONTENT_TYPE, Endpoint


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    served = Endpoint("127.0.0.1", 0)
    yield served
    served.close()


def test_metrics_serves_the_last_published_text(endpoint: Endpoint) -> None:
    endpoint.publish("a_total{stage=\"x\"} 1\n")
    endpoint.publish("a_total{stage=\"x\"} 2\n")
    with urllib.request.urlopen(endpoint.url, timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == CONTENT_TYPE
        assert response.read() == b"a_total{stage=\"x\"} 2\n"


def test_other_paths_are_not_found(endpoint: Endpoint) -> None:
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(endpoint.url.replace("/metrics", "/"), timeout=10)
    assert missing.value.code == 404


def test_a_port_in_use_is_refused_and_close_frees_the_port() -> None:
    first = Endpoint("127.0.0.1", 0)
    port = int(first.url.rsplit(":", 1)[1].split("/")[0])
    try:
        with pytest.raises(OSError):
            Endpoint("127.0.0.1", port)
    finally:
        first.close()
    Endpoint("127.0.0.1", port).close()
