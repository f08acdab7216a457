"""Verified generation's edges as processes: an HTTP service computing a language model's expert calls and signing
commitments (``service.py``, ``command.py``), and the validator side that reaches it (``remote.py``)."""
