"""``python -m bmoe.net.edge``: the same command as ``bmoe edge``."""

from bmoe.net.edge.command import main

main()
