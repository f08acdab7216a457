"""``python -m bmoe.net.store``: the same command as ``bmoe store``."""

from bmoe.net.store.command import main

main()
