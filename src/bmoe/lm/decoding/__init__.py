"""Autoregressive decoding of :class:`bmoe.lm.model.MoETransformer` with a KV cache, continuous batching, seeded
sampling and rollback, the experts behind a pluggable caller (docs/lm.md, "Decoding with a KV cache").

- ``rows.py``: linear maps whose every row has the same bits whatever the rows around it;
- ``sampling.py``: the sampling settings of a request and the draw of one token;
- ``stop_text.py``: stop strings on decoded text, and the text a stream may show;
- ``kv_cache.py``: one sequence's keys and values per layer;
- ``expert_calls.py``: the expert-caller interface, the in-process caller, the call log;
- ``step.py``: one forward pass over the uncached tokens of a batch of sequences;
- ``engine.py``: the engine (requests in, token events out, rollback).

The trusted side (embedding, attention and its cache, norms, routers, head, sampling) runs here; the experts run
wherever the caller sends them. Must not know: the ledger, edges, the network, tokenizers (text comes through a
decode function).
"""
