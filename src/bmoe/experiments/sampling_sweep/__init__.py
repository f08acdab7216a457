"""``bmoe sweep-sampling``: accuracy under a colluding attack with sampled replication (r of M edges per
(task, expert)) against the paper's ``all``, and how often a manipulated result is accepted, measured
against an honest edge's own computation, next to the bound of ``verify/sampling_bound.py``."""
