"""Network namespaces for the tests: one per party, joined by veth pairs to a bridge in a hub namespace.

Everything lives in namespaces this module creates, named ``bmoe-<pid>-<role>``; the host's own
interfaces and routes are never touched (each veth pair is created inside the hub namespace with
its peer moved straight into the party's namespace). Addresses come from the benchmarking range
198.18.0.0/15 (RFC 2544) and exist only on those veths, so no traffic can leave the namespaces.

``Topology.teardown`` kills every process still inside the namespaces (``ip netns pids``), then
deletes them (which deletes their veths and the bridge). Building needs root and iproute2's ``ip``:
:func:`unavailable` says why namespaces cannot be used here, or None.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time

SUBNET_PREFIX = "198.18.0."  # inside 198.18.0.0/15 (RFC 2544, benchmarking); /24 on the bridge
IP_TIMEOUT_S = 10


class NetnsError(RuntimeError):
    """An ``ip`` command failed (its command line and stderr in the message)."""


def ip_binary() -> str | None:
    return shutil.which("ip") or next((p for p in ("/usr/sbin/ip", "/sbin/ip", "/bin/ip") if os.access(p, os.X_OK)),
                                      None)


def unavailable() -> str | None:
    """Why network namespaces cannot be built here (not root, no ``ip``), or None."""
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add); skipped"
    if ip_binary() is None:
        return "iproute2's `ip` is not installed (Debian package iproute2); skipped"
    return None


class Topology:
    """Namespaces ``PREFIX<role>`` with one address each on a shared bridge in ``PREFIX<hub>``."""

    def __init__(self, prefix: str) -> None:
        ip = ip_binary()
        assert ip is not None
        self.ip_path = ip
        self.prefix = prefix
        self.hub = f"{prefix}hub"
        self.created: list[str] = []
        self.addresses: dict[str, str] = {}  # role -> address
        self.ports: dict[str, str] = {}  # role -> the hub's veth for it

    def namespace(self, role: str) -> str:
        return f"{self.prefix}{role}"

    def ip(self, *args: str, netns: str | None = None) -> str:
        argv = [self.ip_path, *(["-n", netns] if netns else []), *args]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=IP_TIMEOUT_S, stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            raise NetnsError(f"`{' '.join(argv)}` failed: {result.stderr.strip() or result.returncode}")
        return result.stdout

    def exec_prefix(self, role: str) -> list[str]:
        """The command prefix that runs a command inside ``role``'s namespace."""
        return [self.ip_path, "netns", "exec", self.namespace(role)]

    def _add_namespace(self, name: str) -> None:
        self.ip("netns", "add", name)
        self.created.append(name)
        self.ip("link", "set", "lo", "up", netns=name)

    def create_hub(self) -> None:
        """The hub namespace and its bridge; the first ``ip netns add`` (raises NetnsError if refused)."""
        self._add_namespace(self.hub)
        self.ip("link", "add", "br0", "type", "bridge", netns=self.hub)
        self.ip("link", "set", "br0", "up", netns=self.hub)

    def add(self, role: str, host: int) -> str:
        """A namespace for ``role`` with address 198.18.0.HOST on its ``eth0``, bridged in the hub."""
        name, port, address = self.namespace(role), f"p{len(self.ports)}", f"{SUBNET_PREFIX}{host}"
        self._add_namespace(name)
        self.ip("link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", name, netns=self.hub)
        self.ip("link", "set", port, "master", "br0", netns=self.hub)
        self.ip("link", "set", port, "up", netns=self.hub)
        self.ip("addr", "add", f"{address}/24", "dev", "eth0", netns=name)
        self.ip("link", "set", "eth0", "up", netns=name)
        self.addresses[role], self.ports[role] = address, port
        return address

    def namespace_of(self, pid: int) -> str:
        """The name of the namespace process ``pid`` runs in ("" for the host's)."""
        return self.ip("netns", "identify", str(pid)).strip()

    def pids(self, name: str) -> list[int]:
        try:
            return [int(pid) for pid in self.ip("netns", "pids", name).split()]
        except NetnsError:
            return []

    def hub_port_bytes(self, role: str) -> tuple[int, int]:
        """(rx, tx) bytes counted on the hub's side of ``role``'s veth."""
        [link] = json.loads(self.ip("-j", "-s", "link", "show", self.ports[role], netns=self.hub))
        stats = link["stats64"]
        return int(stats["rx"]["bytes"]), int(stats["tx"]["bytes"])

    def teardown(self) -> list[str]:
        """Kill every process left in the namespaces, delete them all; the problems met (empty: clean)."""
        problems = []
        for name in self.created:
            for pid in self.pids(name):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(self.pids(name) for name in self.created):
            time.sleep(0.05)
        for name in reversed(self.created):
            if self.pids(name):
                problems.append(f"processes still in {name}: {self.pids(name)}")
            try:
                self.ip("netns", "del", name)
            except NetnsError as exc:
                problems.append(str(exc))
        self.created.clear()
        return problems
