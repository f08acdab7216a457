"""Run wiring around the round: settings, ``RunConfig``, run directories, dataset fit, ``Session``."""
