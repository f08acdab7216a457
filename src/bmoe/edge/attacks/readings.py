"""The paper's attack, read two ways (docs/attacks.md): fresh noise on the downloaded weights in each round an
edge strikes (``gaussian``), or noise that stays in the copy the edge keeps and accumulates over its strikes
(``gaussian_persistent``). The demo and the reproduction run both; this names them once."""

from __future__ import annotations

from bmoe.edge.attacks.gaussian import GaussianWeightNoise
from bmoe.edge.attacks.gaussian_persistent import PersistentGaussianNoise

READINGS = {"transient": GaussianWeightNoise.name, "persistent": PersistentGaussianNoise.name}
