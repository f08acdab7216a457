"""A storage node and its client: content-addressed blobs over signed HTTP, replicated by rendezvous placement.

Owns :mod:`.service` (the node's Starlette app and replication), :mod:`.client` (``HttpBlobStore``, the
``BlobStore`` contract over nodes, trusting none), :mod:`.placement` (which nodes hold a CID) and
:mod:`.command` (``bmoe store``, ``python -m bmoe.net.store``). Knows bytes and CIDs, nothing of the round.
"""
