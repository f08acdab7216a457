"""A local deployment on this machine: ``bmoe cluster up | status | restart | down``.

Owns :mod:`.launch` (keys, enrolment, config, then the processes), :mod:`.engines` (an anvil and a js-ipfs
daemon), :mod:`.processes` (detached process lifetime), :mod:`.pids` and :mod:`.proc_scan` (which live processes
are the cluster's). Every role's process is started by its own command; this folder only lays out and
supervises. The command line that drives it is :mod:`bmoe.cli.cluster`.
"""
