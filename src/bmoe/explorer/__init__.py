"""``bmoe explorer``: a read-only web explorer of a run directory's ledger, or of a live local cluster.

Pages are HTML rendered on the server from what replaying the chain derives (``ledger/state.py``),
after ``bmoe audit``'s own checks (``bmoe.run.audit``, ``bmoe.net.cluster.audit``) have passed; plots are
inline SVG drawn from the same data, so the pages need no network and no JavaScript. Layers, each a module with one job:

- ``source``: where the chain, the store, the config and the metrics of a run or a cluster are
  (``lm_source``: a language model's run directory, its ``lm.json`` and ``history.json``);
- ``index`` and ``task_view``: the replay, indexed for pages (blocks, tasks, edges, experts, objects);
  ``lm_index``: a language model's manifest, routing by layer and losses, read from it;
- ``snapshot``: the audited index currently served, rebuilt when the chain changes;
- ``generation_index`` and ``receipts``: a verified server's generation chunks on the chain, and its responses
  (``receipts.jsonl``) checked against them;
- ``html``, ``svg``, ``pages/``: rendering; ``app``: the routes; ``command``: the command line.
"""
