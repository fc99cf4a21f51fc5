"""Across hosts: the scheduler, two workers and the run each in a network namespace of
their own, joined by veth pairs to a bridge on a private test subnet that the test makes,
so that everything between them crosses a network interface, none of it a loopback: the
database is the one an inline run leaves.

Making namespaces takes root (CAP_NET_ADMIN) and ``ip``: without them the test fails with
the reason; ``pytest -m "not netns"`` leaves it out on purpose.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _dask_support import RUN_OPTIONS, Cluster, hookline_run, succeeded

from hookline.testing import database_content

pytestmark = pytest.mark.netns

ROLES = ("scheduler", "one", "two", "client")


class Network:
    """A hub namespace with a bridge, and one namespace per role wired to it by a veth pair,
    each with an address on ``10.213.N.0/24``; all of it removed at the end."""

    def __init__(self) -> None:
        self.tag = f"hl{random.randrange(16**4):04x}"
        self.subnet = f"10.213.{random.randrange(256)}"
        self.hub = f"{self.tag}-hub"
        self.made: list[str] = []
        self.address = {role: f"{self.subnet}.{at}" for at, role in enumerate(ROLES, 1)}

    def namespace(self, role: str) -> str:
        return f"{self.tag}-{role}"

    def prefix(self, role: str) -> tuple[str, ...]:
        return ("ip", "netns", "exec", self.namespace(role))

    def up(self) -> None:
        ip = _ip
        for name in (self.hub, *map(self.namespace, ROLES)):
            ip("netns", "add", name)
            self.made.append(name)
        ip("-n", self.hub, "link", "add", "br0", "type", "bridge")
        ip("-n", self.hub, "link", "set", "br0", "up")
        for at, role in enumerate(ROLES, 1):
            inside, outside, space = f"{self.tag}v{at}", f"{self.tag}h{at}", self.namespace(role)
            ip("link", "add", inside, "type", "veth", "peer", "name", outside)
            ip("link", "set", inside, "netns", space)
            ip("link", "set", outside, "netns", self.hub)
            ip("-n", self.hub, "link", "set", outside, "master", "br0", "up")
            ip("-n", space, "addr", "add", f"{self.address[role]}/24", "dev", inside)
            ip("-n", space, "link", "set", inside, "up")
            ip("-n", space, "link", "set", "lo", "up")

    def down(self) -> None:
        for name in reversed(self.made):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise OSError(f"ip {' '.join(args)}: {done.stderr.strip()}")


@pytest.fixture
def network() -> Iterator[Network]:
    if shutil.which("ip") is None:
        pytest.fail("this test makes network namespaces with `ip` (iproute2), which is not "
                    "installed; run with -m 'not netns' to leave it out")
    made = Network()
    try:
        made.up()
    except OSError as exc:
        made.down()
        pytest.fail(f"cannot make network namespaces here ({exc}): this test needs root "
                    "(CAP_NET_ADMIN); run with -m 'not netns' to leave it out")
    try:
        yield made
    finally:
        made.down()


def test_scheduler_workers_and_run_in_namespaces_of_their_own(
    network: Network, cluster: Cluster, events_100k: Path, inline_100k: dict[str, Any],
    environment: dict[str, str], work: Path, tmp_path: Path
) -> None:
    address = cluster.scheduler(network.address["scheduler"], network.prefix("scheduler"))
    for role in ("one", "two"):
        cluster.worker(role, network.address[role], network.prefix(role))
    cluster.wait_for(2, network.prefix("client"))
    done = succeeded(hookline_run(
        str(events_100k), "--db", str(tmp_path / "hosts.db"), *RUN_OPTIONS, "--executor",
        "dask", "--scheduler", address, "--format", "json", env=environment, cwd=work,
        prefix=network.prefix("client")))
    assert database_content(tmp_path / "hosts.db") == inline_100k
    executor = json.loads(done.stdout)["executor"]
    assert executor["scheduler"] == f"tcp://{network.address['scheduler']}:8786"
    workers = {worker.rpartition(":")[0] for worker in executor["events_by_worker"]}
    assert workers == {f"tcp://{network.address[role]}" for role in ("one", "two")}
    assert os.path.exists(tmp_path / "hosts.db")
