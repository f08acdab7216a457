"""``bmoe lm generation-edge``: the command of :mod:`bmoe.net.generation.command`, under ``bmoe lm``."""

from bmoe.net.generation.command import generation_edge_command

__all__ = ["generation_edge_command"]
