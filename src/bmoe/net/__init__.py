"""Services and clients for the multi-process deployment: signed transport and storage nodes.

* :mod:`~bmoe.net.auth` - signed requests and replies (wire format, replay guard, httpx client auth);
* :mod:`~bmoe.net.guard` - the ASGI middleware that enforces them on a server;
* :mod:`~bmoe.net.enrolment` - the file of participants a node accepts;
* :mod:`~bmoe.net.placement` - rendezvous hashing of CIDs onto storage nodes;
* :mod:`~bmoe.net.store_service` - the storage node (Starlette app over a ``DirectoryStore``);
* :mod:`~bmoe.net.http_store` - ``HttpBlobStore``, the ``BlobStore`` contract over storage nodes;
* :mod:`~bmoe.net.serve`, :mod:`~bmoe.net.store_main` - running a node (``bmoe store``).

Sits above ``storage`` and ``ledger.keys``; nothing below ``protocol`` imports it.
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
