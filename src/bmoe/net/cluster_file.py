"""``cluster.json``: the description of a local deployment that ``bmoe cluster up`` writes and every role reads.

Owns the file's format. Paths inside are relative to the cluster directory::

    {"version": 1, "seed": 0, "config": "config.json", "input_shape": [1, 8, 8], "num_classes": 4,
     "edge_timeout": 5.0, "enrolment": "enrolled.json", "stores": [url, ...], "validator": url,
     "publisher_key": "keys/publisher.key", ["ipfs_api": url, with "stores": [] under --store ipfs,]
     ["lm": "lm.json", "tokenizer": "tokenizer.json", a language model's deployment (bmoe lm cluster),]
     "processes": [{"name": "store-0", "role": "store", "url": ..., "address": ..., "key": "keys/store-0.key",
                    "log": "logs/store-0.log", "pid": 1234, "start_time": 5678, "argv": [...],
                    "index": null, "behaviour": null, "data": "store-0", "host": null, "wrap": []}, ...]}

An edge its operator runs (``cluster up --enrol``) has ``"key": ""`` and ``"argv": []``: the cluster
holds no key for it and never starts it.

``start_time`` is the process's start in clock ticks since boot (``/proc/PID/stat``), so a later
``status`` or ``down`` never mistakes a recycled pid for one of the cluster's processes.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bmoe.fileio import read_regular_text
from bmoe.net.node_setup import SetupError

CLUSTER_FILE = "cluster.json"
VERSION = 1


@dataclass
class ProcessRecord:
    """One process of the cluster."""

    name: str
    role: str  # store | validator | edge | engine (an Ethereum or IPFS node the cluster started)
    url: str | None
    address: str
    key: str
    log: str
    pid: int | None = None
    start_time: int | None = None
    argv: list[str] = field(default_factory=list)
    index: int | None = None  # edges: the edge's index in the genesis
    behaviour: dict[str, Any] | None = None  # edges: {"name": ..., params...}
    data: str | None = None  # stores: data directory; validator: run directory
    host: str | None = None  # the address a store or the validator listens on (None: 127.0.0.1)
    wrap: list[str] = field(default_factory=list)  # a prefix ``argv`` starts with, e.g. ``ip netns exec NAME``


@dataclass
class ClusterDescription:
    root: Path
    seed: int
    config: str
    input_shape: list[int]
    num_classes: int
    edge_timeout: float
    enrolment: str
    stores: list[str]
    validator: str
    publisher_key: str
    processes: list[ProcessRecord] = field(default_factory=list)
    ipfs_api: str | None = None  # --store ipfs: the IPFS node holding the objects (no storage nodes then)
    lm: str | None = None  # a language model's deployment (bmoe lm cluster): its settings, lm.json
    tokenizer: str | None = None  # and its tokenizer's saved bytes

    def path(self, relative: str) -> Path:
        return self.root / relative

    def process(self, name: str) -> ProcessRecord:
        for record in self.processes:
            if record.name == name:
                return record
        raise SetupError(f"{self.root / CLUSTER_FILE} has no process called {name!r}")

    def run_dir(self, record: ProcessRecord) -> Path:
        """A validator's run directory (its chain and config), as the cluster records it."""
        return self.path(record.data or record.name)

    def by_role(self, role: str) -> list[ProcessRecord]:
        return [record for record in self.processes if record.role == role]

    def edge(self, index: int) -> ProcessRecord:
        for record in self.by_role("edge"):
            if record.index == index:
                return record
        raise SetupError(f"{self.root / CLUSTER_FILE} has no edge with index {index}")

    def to_dict(self) -> dict[str, Any]:
        body = {key: value for key, value in asdict(self).items() if key not in ("root", "processes")}
        for optional in ("ipfs_api", "lm", "tokenizer"):
            if body[optional] is None:
                del body[optional]  # a classifier's cluster on bmoe's storage nodes: the file as before
        return {"version": VERSION, **body, "processes": [asdict(record) for record in self.processes]}

    def save(self) -> None:
        """Write atomically (temporary file, then rename): a reader never sees half a file."""
        target = self.root / CLUSTER_FILE
        fd, tmp = tempfile.mkstemp(prefix=f".{CLUSTER_FILE}.", dir=self.root)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(self.to_dict(), handle, indent=2)
                handle.write("\n")
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def load_cluster(root: Path) -> ClusterDescription:
    """Read ``root/cluster.json``; :class:`SetupError` with a one-line reason if it is missing or malformed."""
    path = root / CLUSTER_FILE
    try:
        body = json.loads(read_regular_text(path))
    except FileNotFoundError:
        raise SetupError(f"{path} does not exist: start a cluster with `bmoe cluster up --dir {root}`") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise SetupError(f"cannot read {path}: {exc}") from None
    try:
        if body.pop("version") != VERSION:
            raise SetupError(f"{path}: unsupported version")
        processes = [ProcessRecord(**record) for record in body.pop("processes")]
        return ClusterDescription(root=root, processes=processes, **body)
    except (AttributeError, KeyError, TypeError) as exc:
        raise SetupError(f"{path}: malformed cluster description ({exc})") from None
