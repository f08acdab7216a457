"""``python -m bmoe.net.cluster``: the same command as ``bmoe cluster``."""

from bmoe.net.cluster.command import main

main()
