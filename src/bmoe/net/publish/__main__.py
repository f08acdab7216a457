"""``python -m bmoe.net.publish``: the same command as ``bmoe publish``."""

from bmoe.net.publish.command import main

main()
