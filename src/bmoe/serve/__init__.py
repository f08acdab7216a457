"""bmoe serve: language models behind the OpenAI HTTP API, decoded with continuous batching, every response with
its receipt (docs/serving.md).

- ``openai_schema.py``: a request's JSON body -> a checked request, or the API's error;
- ``openai_responses.py``: the API's response and stream-chunk shapes;
- ``served_model.py``: the model served (pretrained by name, or a run directory's) and its identity;
- ``engine_request.py``: a checked request -> the engine's prompt ids and sampling settings;
- ``call_digest.py``: the digest of the expert calls one request caused;
- ``receipt.py``: what every response's receipt holds;
- ``scheduler.py``: the thread that owns the decoding engine;
- ``client_gone.py``: releasing a request whose client went away;
- ``app.py``: the routes.

In process for now: the experts run through the engine's caller (``ModelExperts``); a verified caller, the
ledger's receipts and the cluster are for the protocol's integration. Must not know: the command line.
"""
