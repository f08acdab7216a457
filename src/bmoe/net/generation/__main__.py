"""``python -m bmoe.net.generation``: run one generation edge (``bmoe lm generation-edge``)."""

from bmoe.net.generation.command import main

main()
