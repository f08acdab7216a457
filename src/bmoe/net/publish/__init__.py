"""The task publisher of a deployment: store and sign each task, post it to the validator, wait until sealed.

Owns :mod:`.command` (``bmoe publish``, ``python -m bmoe.net.publish``, and the publishing functions the
experiments and tests call).
"""
