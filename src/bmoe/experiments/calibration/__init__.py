"""Calibration: how far honest edges' float results differ across numeric profiles, and the bound
a tolerance comparison should use (``bmoe calibrate``).

``compute`` runs experts under one profile through the edge's own runtime, ``worker`` does so in a
process started with a profile's environment, ``measure`` turns outputs into divergence
distributions, ``bound`` recommends a bound from them, ``report`` writes the files, ``command`` is
the click command.
"""
