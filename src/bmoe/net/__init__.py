"""The multi-process deployment: signed HTTP between processes, storage nodes, validators, edges, a publisher.

A folder per role; a module two roles share sits at this package's top. Nothing is re-exported here, so
importing one module (a storage node's) loads only what that module needs:

===============  ======================================================================================
``http/``        the plumbing every service and client shares: signed requests and replies (``auth``),
                 the ASGI guard that enforces them, bounded JSON bodies, serving on a bound socket,
                 ``TCP_NODELAY``, a node's counters
``store/``       a storage node (``bmoe store``): its app and replication, ``HttpBlobStore`` (its client),
                 rendezvous placement of CIDs onto nodes
``validator/``   the validator process (``bmoe validator``): its app and task queue, the round's edges
                 over HTTP (``NetworkEdges``), task records, the PBFT replica's host and service, the
                 genesis fetched from validator-0
``edge/``        an edge process (``bmoe edge``): the work loop around the edge's work handler
``publish/``     the task publisher (``bmoe publish``)
``cluster/``     a local deployment (``bmoe cluster up | status | restart | down``): layout and launch,
                 engines (anvil, js-ipfs), process lifetime, finding a cluster's processes
(top)            shared by several roles: the network errors, the enrolment file, ``cluster.json``,
                 start-up checks (``node_setup``), the entry-point wrapper (``cli_support``), the fleet
                 rule (``fleet_check``), the wire form of edge work (``work_wire``)
===============  ======================================================================================

Each role folder runs as ``python -m bmoe.net.ROLE`` (its ``__main__``), the same command as ``bmoe ROLE``.
Layers: ``http/`` sits above ``storage`` and ``ledger.keys``; ``store/`` above ``http/``; the other roles sit
above ``protocol`` and drive its ``Session``; ``cluster/`` above them all. Nothing below ``net`` imports it,
and ``net`` imports no command-line module (tests/test_layers.py).
"""
