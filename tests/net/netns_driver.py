"""Lay out, start and train a cluster from inside a network namespace (run by ``test_net_netns.py``).

    ip netns exec bmoe-PID-ctl python tests/net/netns_driver.py SPEC.json

SPEC.json: ``{"root", "config" (a RunConfig dict), "stores", "rounds", "edge_timeout", "hosts", "wrap"}``.
The driver runs as the publisher, in its own namespace: it writes the cluster (``plan`` with each
process's address and ``ip netns exec`` prefix), starts it (health checks over the bridge), publishes
the training rounds, and prints one JSON line: the sealed records, the validator's ``/head`` and
``/stats``. The processes it started keep running; the test stops them (``cluster.json``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx

from bmoe.data import load_dataset
from bmoe.ledger.keys import load_identity
from bmoe.net.cluster.launch import plan, start
from bmoe.net.http.auth import SignedAuth
from bmoe.net.node_setup import dataset_shape
from bmoe.net.publish.command import publish_training
from bmoe.run.config import from_dict

START_TIMEOUT_S = 60.0
TASK_TIMEOUT_S = 60.0


def main(spec_file: str) -> None:
    spec = json.loads(Path(spec_file).read_text())
    config = from_dict(spec["config"])
    shape, num_classes = dataset_shape(config)
    stores = int(spec["stores"])
    cluster = plan(Path(spec["root"]), config, shape, num_classes, stores, min(2, stores), float(spec["edge_timeout"]),
                   0, hosts=spec["hosts"], wrap=spec["wrap"], seeded_keys=True)  # compared with an in-process run
    cluster.save()
    publisher = load_identity(cluster.path(cluster.publisher_key))
    validators = [record.address for record in cluster.by_role("validator")]
    auth = SignedAuth(publisher, trusted=validators[:1])
    start(cluster, auth, START_TIMEOUT_S, lambda record: print(f"ready: {record.name} {record.url or ''}",
                                                               file=sys.stderr, flush=True))
    data = load_dataset(config.dataset, None, config.seed, config.limit_train, config.limit_test)
    records = publish_training(cluster.validator, publisher, config, data, int(spec["rounds"]),
                               timeout=TASK_TIMEOUT_S, validators=validators)
    with httpx.Client(auth=auth, timeout=10.0) as client:
        head = client.get(f"{cluster.validator}/head").json()
        stats = client.get(f"{cluster.validator}/stats").json()
    print(json.dumps({"records": records, "head": head, "stats": stats}))


if __name__ == "__main__":
    main(sys.argv[1])
