"""``python -m bmoe.net.validator``: the same command as ``bmoe validator``."""

from bmoe.net.validator.command import main

main()
