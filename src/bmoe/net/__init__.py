"""Services and clients for the multi-process deployment: signed transport, storage nodes, validator, edges.

* :mod:`~bmoe.net.auth` - signed requests and replies (wire format, replay guard, httpx client auth);
* :mod:`~bmoe.net.guard` - the ASGI middleware that enforces them on a server;
* :mod:`~bmoe.net.enrolment` - the file of participants a node accepts;
* :mod:`~bmoe.net.placement` - rendezvous hashing of CIDs onto storage nodes;
* :mod:`~bmoe.net.store_service` - the storage node (Starlette app over a ``DirectoryStore``);
* :mod:`~bmoe.net.http_store` - ``HttpBlobStore``, the ``BlobStore`` contract over storage nodes;
* :mod:`~bmoe.net.serve`, :mod:`~bmoe.net.store_main` - running a node (``bmoe store``);
* :mod:`~bmoe.net.tcp` - ``TCP_NODELAY`` on every connection (small writes, no 40 ms stalls).

The multi-process deployment (one PoW validator, M edges, a publisher; imported on demand, they
pull in the protocol and PyTorch):

* :mod:`~bmoe.net.work_wire` - the JSON of work items (``GET /work``) and edges' answers (``POST /txs``);
* :mod:`~bmoe.net.network_edges` - ``NetworkEdges``, the round's ``EdgeGateway`` over HTTP;
* :mod:`~bmoe.net.task_records`, :mod:`~bmoe.net.validator_service`, :mod:`~bmoe.net.validator_main` -
  the validator process (``bmoe validator``);
* :mod:`~bmoe.net.edge_node`, :mod:`~bmoe.net.edge_main` - an edge process (``bmoe edge``);
* :mod:`~bmoe.net.publisher` - publishing tasks and waiting for their blocks (``bmoe publish``);
* :mod:`~bmoe.net.cluster_file`, :mod:`~bmoe.net.processes`, :mod:`~bmoe.net.cluster_launch`,
  :mod:`~bmoe.net.cluster` - a local cluster (``bmoe cluster up | status | down``);
* :mod:`~bmoe.net.node_setup`, :mod:`~bmoe.net.cli_support` - start-up checks and one-line errors.

The transport and storage modules sit above ``storage`` and ``ledger.keys``; the deployment modules sit
above ``protocol`` and drive its ``Session``. Nothing below ``protocol`` imports ``net``.
"""

from bmoe.net.auth import SignedAuth
from bmoe.net.enrolment import load_enrolment, save_enrolment
from bmoe.net.errors import DeleteRefused, EnrolmentError, NetError, RemoteStoreError, UnauthenticResponse
from bmoe.net.http_store import HttpBlobStore
from bmoe.net.placement import normalize_url, rendezvous_order
from bmoe.net.store_service import NodeConfig, StoreNode

__all__ = [
    "DeleteRefused",
    "EnrolmentError",
    "HttpBlobStore",
    "NetError",
    "NodeConfig",
    "RemoteStoreError",
    "SignedAuth",
    "StoreNode",
    "UnauthenticResponse",
    "load_enrolment",
    "normalize_url",
    "rendezvous_order",
    "save_enrolment",
]
