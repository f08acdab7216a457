"""An edge process: fetch work from the validator, run the edge's work handler, post signed answers.

Owns :mod:`.node` (the work loop around :class:`~bmoe.edge.work.WorkHandler`, the same handler the in-process
gateway uses) and :mod:`.command` (``bmoe edge``, ``python -m bmoe.net.edge``).
"""
