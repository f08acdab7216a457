"""The bundled attacks; importing this package registers them all."""

from bmoe.edge.attacks import (  # noqa: F401
    bound_hug,
    gaussian,
    gaussian_persistent,
    random_output,
    replay,
    scale,
    sign_flip,
    sleeper,
    withhold,
)
