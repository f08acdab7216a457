"""Experiments: the demo, metrics files and (later) the paper's figures."""
